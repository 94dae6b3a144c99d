"""A TCP proxy on loopback that a test can cut, black-hole and restore (a database outage on demand).

* `cut()`: every open connection is closed and new ones are closed as soon as they are accepted (the client
  sees a reset / EOF at once, like a stopped server).
* `blackhole()`: connections stay open but nothing is forwarded either way; new connections are accepted and
  then ignored (like a network partition: the client waits until its own timeout).
* `mute()`: what the client sends still reaches the server, but nothing comes back (answers lost in flight: a
  statement commits and the client never hears of it); new connections are muted too.
* `restore()`: connections left from a cut, black-hole or mute are closed (they are dead to the client anyway), new
  ones are forwarded again.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

__all__ = ["TcpProxy"]

_OPEN, _CUT, _BLACKHOLE, _MUTE = "open", "cut", "blackhole", "mute"


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    dead: bool = False

    def close(self) -> None:
        self.dead = True
        for writer in (self.client, self.upstream):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class TcpProxy:
    """`await start()` → the local port; `cut()` / `blackhole()` / `restore()`; `await close()` at the end."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._mode = _OPEN
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()
        self._held: set[_Link] = set()  # links alive during a cut or black-hole: closed on restore
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def mode(self) -> str:
        return self._mode

    def cut(self) -> None:
        self._mode = _CUT
        self._flowing.set()
        for link in list(self._links):
            link.close()
        self._links.clear()

    def blackhole(self) -> None:
        self._mode = _BLACKHOLE
        self._flowing.clear()
        self._held.update(self._links)

    def mute(self) -> None:
        self._mode = _MUTE
        self._flowing.set()
        self._held.update(self._links)

    def restore(self) -> None:
        for link in list(self._held):
            link.close()
            self._links.discard(link)
        self._held.clear()
        self._mode = _OPEN
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links | self._held):
            link.close()
        self._links.clear()
        self._held.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        if self._mode == _CUT:
            link.close()
            return
        if self._mode == _BLACKHOLE:
            self._held.add(link)
            return
        # A connection opened while muted is forwarded, its answers lost: the client's handshake waits.
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            link.close()
            return
        link.upstream = up_writer
        if self._mode == _CUT:  # cut while connecting
            link.close()
            return
        self._links.add(link)
        if self._mode in (_BLACKHOLE, _MUTE):  # black-holed or muted while connecting
            self._held.add(link)
        link.tasks = [
            asyncio.create_task(self._pump(link, reader, up_writer)),
            asyncio.create_task(self._pump(link, up_reader, writer, answers=True)),
        ]

    async def _pump(self, link: _Link, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *,
                    answers: bool = False) -> None:
        try:
            while not link.dead:
                await self._flowing.wait()
                data = await source.read(65536)
                if not data:
                    break
                await self._flowing.wait()  # read just before a black-hole began: hold it
                if link.dead:
                    break
                if answers and self._mode == _MUTE:
                    continue  # lost in flight
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            return
        link.close()
        self._links.discard(link)
