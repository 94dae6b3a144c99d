"""Engine creation: one place that knows how SQLite and PostgreSQL must be set up.

SQLite (embedded default) runs in WAL mode with a busy timeout, and SQLAlchemy emits BEGIN itself so that
write transactions can start with BEGIN IMMEDIATE: they take the write lock up front and wait for it (busy
timeout) instead of failing with "database is locked" when a deferred read transaction tries to upgrade.
Reads keep a plain deferred BEGIN, so WAL readers never wait for writers.
"""

from __future__ import annotations

import json
import logging
import time
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_FILENAME = "costestimator.sqlite3"

#: Execution option read by the SQLite "begin" hook; set it (value "IMMEDIATE") on an engine used for writes.
SQLITE_BEGIN_OPTION = "costest_sqlite_begin"

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """Connection pool sizes. SQLite gains nothing from many connections (one writer at a time), so its
    defaults are small; PostgreSQL's come from settings."""

    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: float = 30.0
    pool_recycle: float = 1800.0


def _json_default(value: object) -> object:
    # Money stays exact: a Decimal is written as its string, never as a float.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"value of type {type(value).__name__} is not JSON serializable")


def json_bytes(value: object) -> bytes:
    """Compact UTF-8 JSON of `value` (what sealing encrypts; `json_dumps` as bytes).

    orjson does the common case about ten times faster than the standard library; it refuses what it cannot
    write exactly as `json.dumps` would (integers beyond 64 bits, non-string keys), and those go the slow way.
    Datetimes go through `_json_default` too (`isoformat`), so the text is the same either way.
    """
    try:
        return orjson.dumps(value, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:
        return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False).encode()


def json_dumps(value: object) -> str:
    """JSON serializer used for every JSON column."""
    return json_bytes(value).decode()


def normalize_url(url: str | URL) -> URL:
    """Accept the usual spellings of DATABASE_URL and pick the async driver for them."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.get_driver_name() != "aiosqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql" and parsed.get_driver_name() != "asyncpg":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database backend {backend!r}; use sqlite or postgresql")
    return parsed


def sqlite_url_for(data_dir: str | os.PathLike[str]) -> str:
    """The embedded database: a file in the data directory, which is created (0700) if missing."""
    path = Path(data_dir).expanduser().resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{path / SQLITE_FILENAME}"


def resolve_database_url(database_url: str | None, data_dir: str | os.PathLike[str]) -> str:
    """DATABASE_URL wins; without it the embedded SQLite file under `data_dir` is used."""
    if database_url:
        return normalize_url(database_url).render_as_string(hide_password=False)
    return sqlite_url_for(data_dir)


def redacted(url: str | URL) -> str:
    """The URL with its password hidden, for log lines and error messages."""
    return make_url(url).render_as_string(hide_password=True)


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


def create_engine_for(
    url: str | URL,
    *,
    schema: str | None = None,
    pool: PoolOptions | None = None,
    sqlite_busy_timeout_ms: int = 30_000,
    application_name: str = "costestimator",
    echo: bool = False,
    timeout: float | None = None,
) -> AsyncEngine:
    """Build the async engine for `url` (sqlite+aiosqlite or postgresql+asyncpg).

    `schema` (PostgreSQL only) becomes the connection's search_path, so the same unqualified tables and
    migrations work in any schema (tests use one schema per session). Statement parameters are never rendered
    into error messages: they may hold PHI.

    `timeout` (PostgreSQL) bounds connecting and every statement (asyncpg's connect timeout and command_timeout),
    so a black-holed server cannot hang a call; the repository also bounds each call as a whole. There is no
    pre-ping at checkout (a round trip per transaction): a connection found dead is invalidated on first use and
    the repository runs the call once more on a fresh one.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    common: dict[str, Any] = {
        "echo": echo,
        "hide_parameters": True,
        "json_serializer": json_dumps,
        "json_deserializer": json.loads,
    }
    if backend == "sqlite":
        if schema is not None:
            raise ValueError("schema is only supported on PostgreSQL")
        # aiosqlite logs every statement *with its parameters* at DEBUG, and request payloads are PHI.
        _aiosqlite_log = logging.getLogger("aiosqlite")
        _aiosqlite_log.setLevel(max(logging.INFO, _aiosqlite_log.level))
        database = parsed.database or ""
        pool_args: dict[str, Any] = {}
        if database and database != ":memory:":
            if not database.startswith("file:"):
                _private_sqlite_file(Path(database).expanduser())
            options = pool or PoolOptions(pool_size=5, max_overflow=5, pool_timeout=60.0)
            pool_args = {
                "pool_size": options.pool_size,
                "max_overflow": options.max_overflow,
                "pool_timeout": options.pool_timeout,
            }
        # else: in-memory, one shared connection (StaticPool); only for single-task tools, never the server.
        engine = create_async_engine(
            parsed,
            connect_args={"timeout": sqlite_busy_timeout_ms / 1000},
            **pool_args,
            **common,
        )
        _install_sqlite_hooks(engine, sqlite_busy_timeout_ms)
        return engine

    options = pool or PoolOptions()
    server_settings = {"application_name": application_name}
    if schema is not None:
        server_settings["search_path"] = f'"{check_schema_name(schema)}"'
    connect_args: dict[str, Any] = {"server_settings": server_settings}
    if timeout is not None:
        connect_args["timeout"] = timeout
        connect_args["command_timeout"] = timeout
    return create_async_engine(
        parsed,
        pool_size=options.pool_size,
        max_overflow=options.max_overflow,
        pool_timeout=options.pool_timeout if timeout is None else min(options.pool_timeout, timeout),
        pool_recycle=options.pool_recycle,
        pool_pre_ping=False,
        connect_args=connect_args,
        **common,
    )


def _private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite gives -wal/-shm the database file's mode),
    in a directory created 0700; files an older version left 0644 are tightened. The file holds sealed PHI."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        member = path.with_name(name)
        try:
            if member.stat().st_mode & 0o077:
                member.chmod(0o600)
        except FileNotFoundError:
            continue


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) whose transactions begin as writers (BEGIN IMMEDIATE on SQLite)."""
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})


def _enable_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """Switching a new database to WAL can answer SQLITE_BUSY without calling the busy handler when several
    processes open it at once; retry within the busy timeout. (Runs on aiosqlite's thread, not the event loop.)"""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # noqa: BLE001 - the driver's OperationalError, whatever module it comes from
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _install_sqlite_hooks(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy emit BEGIN (see the module docstring); the driver would otherwise begin lazily.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so the statements below wait for a lock instead of failing at once.
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            _enable_wal(cursor, busy_timeout_ms)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


async def close(engine: AsyncEngine) -> None:
    """Close every pooled connection; call once at shutdown (and in test fixtures)."""
    await engine.dispose()
