"""Starting the web console beside the gRPC port: one place for a single process and for the supervisor of
`COSTEST_WORKERS` processes (where the console runs once, in the supervisor, and the kernel spreads its calls over
the workers like any other client's). In front of a TLS port the console serves HTTPS with the port's certificate
and reaches the port over verified TLS (`COSTEST_CONSOLE_*` settings)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from cryptography import x509

from server.settings import Settings

if TYPE_CHECKING:
    from console.server import ConsoleServer

log = logging.getLogger(__name__)


async def launch_console(settings: Settings, grpc_port: int, dev_token: str | None) -> ConsoleServer | None:
    """The started console, or None when it is off or cannot run (said in a warning: the service stays up)."""
    port = settings.effective_console_port
    if not port:
        return None
    tls: dict[str, Any] = {}
    if settings.tls_enabled:
        if settings.tls_client_ca_file and not settings.console_cert_file:
            log.warning("the web console is off: the gRPC port requires client certificates (mTLS); set "
                        "COSTEST_CONSOLE_CERT_FILE and COSTEST_CONSOLE_KEY_FILE to one the console may present")
            return None
        tls = _tls(settings)
    from console.server import ConsoleConfig, ConsoleServer

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    target = f"[{host}]:{grpc_port}" if ":" in host else f"{host}:{grpc_port}"
    console = ConsoleServer(ConsoleConfig(host=settings.host, port=port, grpc_target=target,
                                          loopback=settings.is_loopback, dev_token=dev_token, **tls))
    try:
        await console.start()
    except OSError as exc:  # the service is up: a busy console port is worth a warning, not a stop
        log.warning("the web console is off: cannot listen on %s:%d (%s); set COSTEST_CONSOLE_PORT (0 = off)",
                    settings.host, port, exc.strerror)
        return None
    return console  # its address is logged: "web console on http://..."


def _tls(settings: Settings) -> dict[str, Any]:
    """The console in front of a TLS port: HTTPS with the port's own certificate, and a verified TLS channel to it."""
    assert settings.tls_cert_file is not None and settings.tls_key_file is not None
    client = settings.console_cert_file, settings.console_key_file
    credentials = grpc.ssl_channel_credentials(
        root_certificates=settings.console_ca_file.read_bytes() if settings.console_ca_file else None,
        private_key=client[1].read_bytes() if client[1] else None,
        certificate_chain=client[0].read_bytes() if client[0] else None,
    )
    return {"credentials": credentials,
            "server_name": settings.console_server_name or certificate_name(settings.tls_cert_file),
            "https_cert_file": settings.tls_cert_file, "https_key_file": settings.tls_key_file}


def certificate_name(chain_file: Path) -> str:
    """The first DNS name of the chain's leaf certificate (else its common name, else `localhost`): what the console
    checks the port's certificate against, since it dials an address the certificate need not name."""
    leaf = x509.load_pem_x509_certificate(chain_file.read_bytes())  # the first PEM block: the leaf
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = names.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    if dns:
        return str(dns[0])
    common = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(common[0].value) if common else "localhost"
