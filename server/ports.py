"""Is the gRPC port free? Checked before anything is started or written, so a second start fails fast and clean.

gRPC only says "failed to bind" (and logs a C-level error line); a plain socket bind tells "address in use"
apart from the other reasons. The probe binds WITHOUT SO_REUSEPORT, so it also sees a port held by a group of
SO_REUSEPORT workers: a second, independent start is refused even in multi-process mode.
"""

from __future__ import annotations

import errno
import socket


class PortInUse(OSError):
    """Another process listens on the configured address (typically a server already running)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"{host}:{port} is already in use (is another server running?)")
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)


def _addresses(host: str, port: int) -> list[tuple[int, tuple[object, ...]]]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


def ensure_port_free(host: str, port: int) -> None:
    """Raise PortInUse when something is bound to host:port; other bind errors are left to the server."""
    if port == 0:
        return
    for family, sockaddr in _addresses(host, port):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does: TIME_WAIT is no conflict
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUse(host, port) from None


def reserve_shared_port(host: str, port: int) -> socket.socket:
    """Bind (never listen) an SO_REUSEPORT socket: it fixes the port (when 0) and keeps non-reuseport servers out.

    A bound socket that does not listen receives no connections, so it does not take a share of the traffic.
    """
    family, sockaddr = _addresses(host, port)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        raise
    return sock

