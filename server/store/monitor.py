"""Is the database there? A small loop that pings it about every second, for health checking.

It uses its own single connection (plain asyncpg, not the application's pool), so a busy pool never reads as
an outage and a dead connection is dropped at once (`terminate`, no graceful close to wait for). Listeners hear
each change (True = reachable again, False = unreachable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from server.periodic import Periodic

from .engine import check_schema_name, normalize_url

log = logging.getLogger(__name__)

Listener = Callable[[bool], None]


def asyncpg_dsn(url: str) -> tuple[str, str | None]:
    """The DSN asyncpg accepts, from our SQLAlchemy URL, and its `ssl` option (other query options are
    SQLAlchemy's or the pool's, not the server's)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError("the database monitor is for PostgreSQL")
    ssl = parsed.query.get("ssl") or parsed.query.get("sslmode")
    dsn = make_url(parsed).set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    return dsn, ssl if isinstance(ssl, str) else None


class DatabaseMonitor:
    """`start()` once, `stop()` at shutdown; `up` is the last verdict (True until a ping fails)."""

    def __init__(
        self,
        url: str,
        *,
        interval: float = 1.0,
        timeout: float = 1.0,
        schema: str | None = None,
    ) -> None:
        self._dsn, self._ssl = asyncpg_dsn(url)
        self._timeout = timeout
        self._settings = {"application_name": "costestimator-monitor"}
        if schema is not None:
            self._settings["search_path"] = f'"{check_schema_name(schema)}"'
        self._conn: Any = None
        self._listeners: list[Listener] = []
        self._loop = Periodic("database-monitor", self._tick, interval,
                              lambda exc: log.error("database monitor step failed: %s", type(exc).__name__))
        self.up = True

    def subscribe(self, listener: Listener) -> None:
        """`listener(up)` on every change; called at once with the current verdict."""
        self._listeners.append(listener)
        listener(self.up)

    async def ping(self) -> bool:
        """One `SELECT 1` within the timeout (connecting first if needed)."""
        try:
            async with asyncio.timeout(self._timeout):
                if self._conn is None or self._conn.is_closed():
                    options: dict[str, Any] = {"ssl": self._ssl} if self._ssl else {}
                    self._conn = await asyncpg.connect(self._dsn, timeout=self._timeout,
                                                       server_settings=self._settings, **options)
                await self._conn.fetchval("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable now"
            self._drop()
            return False

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.terminate()
            self._conn = None

    def _set(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        if up:
            log.warning("database reachable again")
        else:
            log.error("database unreachable (no answer within %.1fs)", self._timeout)
        for listener in self._listeners:
            try:
                listener(up)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop monitoring
                log.exception("database monitor listener failed")

    async def _tick(self) -> None:
        self._set(await self.ping())

    async def start(self) -> None:
        """The first verdict before returning, then one ping per interval."""
        await self._tick()
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        self._drop()
