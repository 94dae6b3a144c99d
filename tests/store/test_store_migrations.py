"""Migrations: they build the schema from nothing on both backends, match the table definitions exactly, are
idempotent and safe when several processes start at once, and work through the documented command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from server.store import create_engine_for, current_revision, head_revision, migrate, sqlite_url_for
from server.store.migrate import upgrade_sql
from server.store.tables import metadata
from tests.store.helpers import Target, drop_schema, new_schema_name

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"alembic_version", "eligibility_requests", "eligibility_responses", "eligibility_attempts", "data_keys"}


@pytest.fixture
def fresh(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """An empty database: a SQLite path that does not exist yet, or a PostgreSQL schema that does not exist yet.

    Synchronous on purpose: it may be the first to request the session-scoped `postgres_server`, which cannot be
    set up from inside a running function-scoped event loop.
    """
    if backend == "sqlite":
        yield Target("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'new-dir' / 'store.sqlite3'}")
        return
    url: str = request.getfixturevalue("postgres_server")
    schema = new_schema_name("m")
    try:
        yield Target("postgres", url, schema)
    finally:
        asyncio.run(drop_schema(url, schema))


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _diff(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata))


async def test_migrate_builds_schema_from_nothing(fresh: Target) -> None:
    sqlite_file = Path(fresh.url.split("///", 1)[1]) if fresh.backend == "sqlite" else None
    assert sqlite_file is None or not sqlite_file.parent.exists()
    await migrate(fresh.url, schema=fresh.schema)
    assert sqlite_file is None or sqlite_file.is_file()
    assert await current_revision(fresh.url, schema=fresh.schema) == head_revision()
    engine = create_engine_for(fresh.url, schema=fresh.schema)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_table_names) == TABLES
            # The migrations build exactly what tables.py describes (columns, types, indexes, constraints).
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_migrate_is_idempotent_and_concurrent_safe(fresh: Target) -> None:
    """Several processes starting together on an empty database all succeed."""
    await asyncio.gather(*(migrate(fresh.url, schema=fresh.schema) for _ in range(3)))
    await migrate(fresh.url, schema=fresh.schema)
    assert await current_revision(fresh.url, schema=fresh.schema) == head_revision()


async def test_sqlite_engine_settings(tmp_path: Path) -> None:
    url = sqlite_url_for(tmp_path / "data")
    await migrate(url)
    engine = create_engine_for(url, sqlite_busy_timeout_ms=12_345)
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() == 12_345
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_schema_isolation(postgres_schema: Target) -> None:
    """The session's tables live in its own schema, not in public."""
    engine = create_engine_for(postgres_schema.url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT table_schema FROM information_schema.tables WHERE table_name = 'eligibility_requests'")
            )
            schemas = {r[0] for r in rows}
    finally:
        await engine.dispose()
    assert postgres_schema.schema in schemas



def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "COSTEST_DATABASE_URL")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "server.store", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_migrate_creates_the_embedded_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh-data"
    done = _cli("migrate", "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    assert "migrated" in done.stdout and head_revision() in done.stdout
    assert (data_dir / "costestimator.sqlite3").is_file()
    current = _cli("current", env={"COSTEST_DATA_DIR": str(data_dir)})
    assert current.returncode == 0, current.stderr
    assert f"at {head_revision()}" in current.stdout


def test_cli_uses_database_url(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "x.db"
    done = _cli("migrate", env={"DATABASE_URL": f"sqlite:///{db}"})
    assert done.returncode == 0, done.stderr
    assert db.is_file()


@pytest.mark.parametrize("url", ["sqlite:///x.db", "postgresql://u@h/db"])
def test_upgrade_sql_renders_ddl(url: str) -> None:
    sql = upgrade_sql(url)
    assert "CREATE TABLE eligibility_requests" in sql
    assert "CREATE TABLE eligibility_attempts" in sql
    if url.startswith("postgresql"):
        assert "JSONB" in sql and "WHERE status = 'PENDING'" in sql
