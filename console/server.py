"""Serving the console next to the gRPC service: one hypercorn server on its own port, in the same event loop.

`server/__main__.py` starts it once the gRPC port serves and stops it before the gRPC server drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import grpc
from hypercorn.asyncio import serve
from hypercorn.config import Config

from console.bridge import BridgeApp, Forwarder
from console.web import ConsoleApp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsoleConfig:
    """Where the console listens and how it reaches the service."""

    host: str
    port: int  # 0 = any free port (tests)
    grpc_target: str  # e.g. 127.0.0.1:50051
    loopback: bool
    dev_token: str | None = None  # loopback only: used when the browser sends no token
    credentials: grpc.ChannelCredentials | None = None  # the gRPC port speaks TLS
    server_name: str | None = None  # TLS: the name to verify the service with
    # HTTPS for the browser (a console in front of a TLS port must not carry member data in plaintext)
    https_cert_file: Path | None = None
    https_key_file: Path | None = None


class ConsoleServer:
    """`await start()`, then `url`; `await stop()`."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self._socket: socket.socket | None = None
        self._channel: grpc.aio.Channel | None = None
        self._shutdown = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        host = self.config.host
        scheme = "https" if self.config.https_cert_file else "http"
        return f"{scheme}://{'[' + host + ']' if ':' in host else host}:{self.port}/"

    async def start(self) -> None:
        """Bind first (a taken port raises OSError before anything else), then serve in the background."""
        c = self.config
        family = socket.AF_INET6 if ":" in c.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((c.host, c.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        self._socket = sock
        self.port = sock.getsockname()[1]
        if c.credentials is not None:
            options = [("grpc.ssl_target_name_override", c.server_name)] if c.server_name else []
            self._channel = grpc.aio.secure_channel(c.grpc_target, c.credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(c.grpc_target)
        allowed = None
        if c.loopback:
            allowed = {f"{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]", c.host)}
        app = ConsoleApp(BridgeApp(Forwarder(self._channel, c.dev_token if c.loopback else None)), allowed)
        hyper = Config()
        hyper.bind = [f"fd://{os.dup(sock.fileno())}"]  # hypercorn owns (and closes) the fd it is given
        hyper.accesslog = None  # paths only, but the service's own access log is the one that counts
        hyper.errorlog = logging.getLogger("console.http")
        hyper.graceful_timeout = 1.0
        if c.https_cert_file and c.https_key_file:
            hyper.certfile, hyper.keyfile = str(c.https_cert_file), str(c.https_key_file)
        self._task = asyncio.get_running_loop().create_task(
            serve(app, hyper, shutdown_trigger=self._shutdown.wait, mode="asgi"))  # type: ignore[arg-type]
        log.info("web console on %s", self.url)

    async def stop(self) -> None:
        """Stop accepting, end open streams, close the channel to the service."""
        self._shutdown.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)
            self._task = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
