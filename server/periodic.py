"""A background task that runs one step every few seconds until stopped (samplers, pollers).

A failing step never ends the loop: it is handed to `on_error` (logging is the caller's choice) and the next step
runs on schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class Periodic:
    """`start()` once inside the running loop, `stop()` at shutdown."""

    def __init__(self, name: str, step: Callable[[], Awaitable[object]], interval: float,
                 on_error: Callable[[Exception], None]) -> None:
        self._name = name
        self._step = step
        self._interval = interval
        self._on_error = on_error
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._step()
            except Exception as exc:  # noqa: BLE001 - the loop must keep going
                self._on_error(exc)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
