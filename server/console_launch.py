"""Starting the web console beside the gRPC port: one place for a single process and for the supervisor of
`COSTEST_WORKERS` processes (where the console runs once, in the supervisor, and the kernel spreads its calls over
the workers like any other client's)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from server.settings import Settings

if TYPE_CHECKING:
    from console.server import ConsoleServer

log = logging.getLogger(__name__)


async def launch_console(settings: Settings, grpc_port: int, dev_token: str | None) -> ConsoleServer | None:
    """The started console, or None when it is off or cannot run (said in a warning: the service stays up)."""
    port = settings.effective_console_port
    if not port:
        return None
    if settings.tls_enabled:
        log.warning("the web console is off: it cannot reach a TLS gRPC port yet")
        return None
    from console.server import ConsoleConfig, ConsoleServer

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    target = f"[{host}]:{grpc_port}" if ":" in host else f"{host}:{grpc_port}"
    console = ConsoleServer(ConsoleConfig(host=settings.host, port=port, grpc_target=target,
                                          loopback=settings.is_loopback, dev_token=dev_token))
    try:
        await console.start()
    except OSError as exc:  # the service is up: a busy console port is worth a warning, not a stop
        log.warning("the web console is off: cannot listen on %s:%d (%s); set COSTEST_CONSOLE_PORT (0 = off)",
                    settings.host, port, exc.strerror)
        return None
    return console  # its address is logged: "web console on http://..."
