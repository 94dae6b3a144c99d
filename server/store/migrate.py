"""Programmatic Alembic: `await migrate(url)` brings a database to the newest schema.

Used at server start (settings: migrate_on_start) and by `python -m server.store migrate`. The Alembic
configuration is built in code from the packaged `migrations/` directory, so no alembic.ini is needed.
On PostgreSQL the upgrade holds a transaction-scoped advisory lock, so several processes starting at once
migrate one after another instead of racing on CREATE TABLE; on SQLite BEGIN IMMEDIATE does the same.
"""

from __future__ import annotations

import io
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection

from .engine import PoolOptions, check_schema_name, create_engine_for, normalize_url, writer

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# pg_advisory_xact_lock key shared by every process of this service ("costest" in ASCII).
_ADVISORY_LOCK_KEY = 0x636F737465737400


def alembic_config(*, url: str | URL | None = None, schema: str | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        rendered = normalize_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    config.attributes["schema"] = schema
    return config


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def _upgrade(connection: Connection, schema: str | None, revision: str) -> None:
    config = alembic_config(schema=schema)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current(connection: Connection, schema: str | None) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table_schema": schema})
    return context.get_current_revision()


async def migrate(url: str | URL, *, schema: str | None = None, revision: str = "head") -> None:
    """Upgrade the database at `url` (in `schema` on PostgreSQL, created if missing) to `revision`."""
    engine = create_engine_for(url, schema=schema, pool=PoolOptions(pool_size=1, max_overflow=0))
    try:
        async with writer(engine).begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
                if schema is not None:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{check_schema_name(schema)}"'))
            await conn.run_sync(_upgrade, schema, revision)
    finally:
        await engine.dispose()


async def current_revision(url: str | URL, *, schema: str | None = None) -> str | None:
    """The revision the database is at (None: never migrated)."""
    engine = create_engine_for(url, schema=schema, pool=PoolOptions(pool_size=1, max_overflow=0))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current, schema)
    finally:
        await engine.dispose()


def upgrade_sql(url: str | URL, *, schema: str | None = None) -> str:
    """The DDL of a full upgrade for the backend of `url`, as SQL text (Alembic offline mode), for review."""
    buffer = io.StringIO()
    config = alembic_config(url=url, schema=schema)
    config.output_buffer = buffer
    command.upgrade(config, "head", sql=True)
    return buffer.getvalue()
