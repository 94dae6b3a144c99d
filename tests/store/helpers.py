"""Shared helpers of the store tests (imported by conftest and the test modules)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from server.store import Keyring, PoolOptions, Sealer, create_engine_for

SECRET = b"store-tests-page-token-secret-0123456789"
#: Seals the store tests' rows (member data at rest); one random key per test process.
SEALER = Sealer(Keyring.parse(Keyring.new_entry("store-tests"), where="tests"))


@dataclass(frozen=True)
class Target:
    """Where a test's database lives."""

    backend: str
    url: str
    schema: str | None = None


class FakeClock:
    """A settable clock for repositories under test (stale checks, leases, freshness)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def new_tenant() -> str:
    """A tenant id of its own for each use, so tests never depend on each other's rows."""
    return f"tenant-{secrets.token_hex(4)}"


def new_schema_name(tag: str = "t") -> str:
    """Unique per process and call, so parallel test runs sharing one database never collide."""
    return f"costest_{tag}_{os.getpid()}_{secrets.token_hex(4)}"


async def drop_schema(url: str, schema: str) -> None:
    engine = create_engine_for(url, pool=PoolOptions(pool_size=1, max_overflow=0))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()
