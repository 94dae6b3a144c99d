"""Writes that must land even when the database is away for a while (a check's final state, a hand-over).

The caller waits for the first try only: it gets the result, or the `StoreUnavailable` of that try. A try that
fails for lack of the database is repeated in a background task (backoff, cut short by `nudge()` when the database
is seen again) until it lands, so a decided check reaches its final state soon after the database returns, not
at the end of the stale window. `drain()` at shutdown gives the last ones a moment, then cancels them (the stale
sweeper of any process remains the safety net).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from server.store import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


def _consume(future: asyncio.Future[Any]) -> None:
    """Mark the first try's outcome as seen, so a caller that left does not leave an unretrieved exception."""
    if not future.cancelled():
        future.exception()


class DurableWrites:
    """`await run(label, make)`: `make()` builds one try; retried in the background on `StoreUnavailable`."""

    def __init__(self, *, backoff: float = 0.25, backoff_max: float = 2.0) -> None:
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._tasks: set[asyncio.Task[None]] = set()
        self._nudge = asyncio.Event()

    @property
    def pending(self) -> int:
        """Writes still waiting for the database."""
        return len(self._tasks)

    def nudge(self) -> None:
        """The database answers again: retry now instead of at the end of the current backoff."""
        self._nudge.set()

    async def run(self, label: str, make: Callable[[], Awaitable[T]]) -> T:
        """The first try's result (shielded: a cancelled caller does not cancel the write)."""
        return await asyncio.shield(self._start(label, make))

    def later(self, label: str, make: Callable[[], Awaitable[object]]) -> None:
        """The same write, with nobody waiting for it: for a caller already answered (or gone)."""
        self._start(label, make)

    def _start(self, label: str, make: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        first: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        first.add_done_callback(_consume)
        task = asyncio.create_task(self._until_done(label, make, first), name=f"durable-write {label}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return first

    async def _until_done(self, label: str, make: Callable[[], Awaitable[T]], first: asyncio.Future[T]) -> None:
        delay = self._backoff
        tries = 0
        while True:
            tries += 1
            try:
                result = await make()
            except StoreUnavailable as exc:
                if not first.done():
                    first.set_exception(exc)
                    log.warning("%s: database unavailable; retrying in the background until it lands", label)
                await self._pause(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            except asyncio.CancelledError:
                if not first.done():
                    first.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - not an outage: hand it to the caller (if still there)
                if not first.done():
                    first.set_exception(exc)
                else:
                    log.exception("%s: failed after the database returned", label)
                return
            if not first.done():
                first.set_result(result)
            else:
                log.info("%s: landed after %d tries", label, tries)
            return

    async def _pause(self, delay: float) -> None:
        """Wait `delay` seconds, less when nudged (the database answers again, or shutdown drains the writes)."""
        self._nudge.clear()
        try:
            async with asyncio.timeout(delay):
                await self._nudge.wait()
        except TimeoutError:
            pass

    async def drain(self, timeout: float = 5.0) -> None:
        """At shutdown: wait up to `timeout` for the writes in flight, then cancel the rest."""
        if not self._tasks:
            return
        tasks = list(self._tasks)
        nudged = asyncio.get_running_loop().call_soon(self.nudge)
        _done, left = await asyncio.wait(tasks, timeout=timeout)
        nudged.cancel()
        for task in left:
            task.cancel()
        if left:
            log.warning("%d write(s) could not reach the database before shutdown; the stale-pending sweeper "
                        "will finish those checks", len(left))
            await asyncio.gather(*left, return_exceptions=True)
