"""Samples the eligibility backlog into gauges: PENDING checks, and the worker lag (how long the longest-waiting
due check has been waiting for a worker; 0 when every due check is being worked).

A sample every few seconds rather than bookkeeping per check: the database is shared by every process, so only
it knows the true backlog, and the hot path pays nothing. A failed sample keeps the last values (the database
monitor and the health status report an outage).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from server.periodic import Periodic
from server.store.backlog import Backlog

log = logging.getLogger(__name__)


class Settable(Protocol):
    def set(self, value: float) -> None: ...


class BacklogSampler:
    """`start()` once, `stop()` at shutdown; `sample()` for one reading now (tests)."""

    def __init__(self, read: Callable[[], Awaitable[Backlog]], pending: Settable, lag: Settable, *,
                 interval: float = 5.0, timeout: float = 2.0) -> None:
        self._read = read
        self._pending = pending
        self._lag = lag
        self._timeout = timeout
        self._periodic = Periodic("eligibility-backlog-sampler", self.sample, interval, self._failed)

    async def sample(self) -> Backlog:
        async with asyncio.timeout(self._timeout):
            backlog = await self._read()
        self._pending.set(backlog.pending)
        due_at = backlog.oldest_due_at
        self._lag.set(max(0.0, (datetime.now(UTC) - due_at).total_seconds()) if due_at is not None else 0.0)
        return backlog

    @staticmethod
    def _failed(exc: Exception) -> None:
        log.debug("eligibility backlog sample failed (%s)", type(exc).__name__)

    async def start(self) -> None:
        """A first sample now (failures only logged), then one every interval."""
        try:
            await self.sample()
        except Exception as exc:  # noqa: BLE001 - metrics must never stop the service
            self._failed(exc)
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
