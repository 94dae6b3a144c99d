"""Starting the web console beside the gRPC port: one place for a single process and for the supervisor of
`COSTEST_WORKERS` processes (where the console runs once, in the supervisor, and the kernel spreads its calls over
the workers like any other client's). In front of a TLS port the console serves HTTPS with the port's certificate
and reaches the port over verified TLS (`COSTEST_CONSOLE_*` settings)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

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
    credentials: grpc.ChannelCredentials | None = None
    server_name: str | None = None
    if settings.tls_enabled:
        if settings.tls_client_ca_file and not settings.console_cert_file:
            log.warning("the web console is off: the gRPC port requires client certificates (mTLS); set "
                        "COSTEST_CONSOLE_CERT_FILE and COSTEST_CONSOLE_KEY_FILE to one the console may present")
            return None
        credentials, server_name = _channel_trust(settings)
    from console.server import ConsoleConfig, ConsoleServer

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    target = f"[{host}]:{grpc_port}" if ":" in host else f"{host}:{grpc_port}"
    # In front of a TLS port the console serves HTTPS with the port's own certificate: member data never in clear.
    console = ConsoleServer(ConsoleConfig(host=settings.host, port=port, grpc_target=target,
                                          loopback=settings.is_loopback, dev_token=dev_token,
                                          credentials=credentials, server_name=server_name,
                                          https_cert_file=settings.tls_cert_file,
                                          https_key_file=settings.tls_key_file))
    try:
        await console.start()
    except OSError as exc:  # the service is up: a busy console port is worth a warning, not a stop
        log.warning("the web console is off: cannot listen on %s:%d (%s); set COSTEST_CONSOLE_PORT (0 = off)",
                    settings.host, port, exc.strerror)
        return None
    return console  # its address is logged: "web console on http(s)://..."


def _channel_trust(settings: Settings) -> tuple[grpc.ChannelCredentials, str]:
    """The console's verified TLS channel to the port: the CA it trusts and its own certificate (mTLS), and the
    name the port's certificate must carry."""
    assert settings.tls_cert_file is not None
    ca, cert, key = settings.console_ca_file, settings.console_cert_file, settings.console_key_file
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes() if ca else None,  # None: the system roots
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    return credentials, settings.console_server_name or certificate_name(settings.tls_cert_file)


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
