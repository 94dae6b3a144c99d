"""The synchronous check's two writes on PostgreSQL as single prepared statements on the driver's connection.

Why: on PostgreSQL these two writes are the store's whole share of a check, and through SQLAlchemy (compile cache,
parameter processing, adapted cursor, a BEGIN and a COMMIT round trip per transaction) they cost about five times
the CPU of the statements themselves. Here each write is ONE statement in its own (implicit) transaction:
* the PENDING row: one INSERT;
* the completion: one statement whose data-modifying CTEs do the guarded UPDATE (only a PENDING check of this
  tenant), the attempt rows and the response row, and return what the UPDATE changed. A statement is atomic, so
  the rows are written all together or not at all, exactly like the Core transaction SQLite still uses.
Both run on the engine's own pooled connections (same pool, sizes, timeouts and search_path; asyncpg prepares and
caches each statement per connection). Driver errors come out as SQLAlchemy's exceptions, with
`connection_invalidated` set when the connection died (it is then invalidated in the pool), so the repository's
rules (reconnect once, `StoreUnavailable`, integrity errors as bugs) apply to both paths alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util.concurrency import greenlet_spawn

from .engine import json_dumps
from .tables import eligibility_attempts as attempts_t
from .tables import eligibility_requests as req
from .tables import eligibility_responses as resp

T = TypeVar("T")
Use = Callable[[Any], Awaitable[T]]

INSERT_PENDING = (
    f"INSERT INTO {req.name} (id, tenant_id, policy_id, patient_id, payer_id, status, mode, requested_at,"
    " updated_at, request_payload, data_key_id, attempts, next_attempt_at, version)"
    " VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $7, $7, $8::jsonb, $9, 0, $10, 1)"
)

# $1 tenant, $2 check id, $3 status, $4 now, $5 failure reason, $6 attempts to add, $7/$8 clearinghouse/trace id
# (NULL keeps a known one), $9..$13 the attempts column by column, $14 write a response row?, $15 its HTTP status,
# $16/$17 sealed raw/summary (JSON text or NULL), $18 data key id. Attempt numbers continue the check's count.
COMPLETE = (
    f"WITH done AS (UPDATE {req.name} SET status = $3, completed_at = $4, updated_at = $4, failure_reason = $5,"
    " version = version + 1, next_attempt_at = NULL, claimed_by = NULL, lease_until = NULL,"
    " attempts = attempts + $6::integer, clearinghouse_id = coalesce($7, clearinghouse_id),"
    " trace_id = coalesce($8, trace_id)"
    " WHERE tenant_id = $1 AND id = $2 AND status = 'PENDING'"
    " RETURNING completed_at, failure_reason, clearinghouse_id, trace_id, attempts, version),"
    f" tries AS (INSERT INTO {attempts_t.name} (request_id, attempt_no, at, http_status, aaa_codes,"
    " clearinghouse_id, trace_id, error)"
    " SELECT $2, done.attempts - $6::integer + t.n, $4, t.http_status, t.aaa_codes::jsonb, t.clearinghouse_id,"
    " t.trace_id, t.error FROM done,"
    " unnest($9::integer[], $10::text[], $11::text[], $12::text[], $13::text[])"
    " WITH ORDINALITY AS t(http_status, aaa_codes, clearinghouse_id, trace_id, error, n)),"
    f" answer AS (INSERT INTO {resp.name} (request_id, http_status, raw_payload, normalized_summary, created_at,"
    " data_key_id) SELECT $2, $15, $16::jsonb, $17::jsonb, $4, $18 FROM done WHERE $14::boolean)"
    " SELECT completed_at, failure_reason, clearinghouse_id, trace_id, attempts, version FROM done"
)


def _translated(exc: Exception, statement: str, dead: bool) -> Exception:
    """The driver's error as SQLAlchemy raises it on the Core path (same classes the repository handles)."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        kind: type[DBAPIError] = IntegrityError
    elif isinstance(exc, asyncpg.InterfaceError):
        kind = InterfaceError
    elif isinstance(exc, asyncpg.SyntaxOrAccessError):
        kind = ProgrammingError
    elif isinstance(exc, asyncpg.PostgresError):
        kind = DBAPIError
    else:  # OSError, TimeoutError: as they are (the repository maps them to StoreUnavailable)
        return exc
    return kind(statement, None, exc, hide_parameters=True, connection_invalidated=dead)


class PgWrites:
    """Runs the hot statements on a connection borrowed from the engine's pool (see the module docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._pool = engine.sync_engine.pool
        self._dialect = engine.sync_engine.dialect

    async def _checkout(self) -> PoolProxiedConnection:
        """A pooled connection; a failure to open one raised as the engine would (SQLAlchemy's exception)."""
        # Checkout and checkin may open or close connections, which SQLAlchemy's async pool does in a greenlet.
        dialect = self._dialect
        try:
            fairy: PoolProxiedConnection = await greenlet_spawn(self._pool.connect)
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                None, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
                connection_invalidated=dialect.is_disconnect(exc, None, None), dialect=dialect,
            ) from exc
        return fairy

    async def _on_connection(self, use: Use[T], statement: str) -> T:
        fairy = await self._checkout()
        try:
            driver = fairy.driver_connection
            try:
                return await use(driver)
            except BaseException as exc:
                # A cancelled statement leaves the connection in an unknown state; a closed one is dead.
                if not isinstance(exc, Exception) or driver is None or driver.is_closed():
                    await greenlet_spawn(fairy.invalidate, exc if isinstance(exc, Exception) else None)
                    if isinstance(exc, Exception):
                        raise _translated(exc, statement, dead=True) from exc
                    raise
                raise _translated(exc, statement, dead=False) from exc
        finally:
            await greenlet_spawn(fairy.close)

    async def insert_pending(self, row: Mapping[str, Any]) -> None:
        """The new request row (the Core path's INSERT values, request payload sealed)."""
        args = (row["id"], row["tenant_id"], row["policy_id"], row["patient_id"], row["payer_id"], row["mode"],
                row["requested_at"], json_dumps(row["request_payload"]), row["data_key_id"], row["next_attempt_at"])
        await self._on_connection(lambda conn: conn.execute(INSERT_PENDING, *args), INSERT_PENDING)

    async def complete(
        self, params: Mapping[str, Any], attempts: Sequence[Mapping[str, Any]], response: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """The completion: `params` as for the Core UPDATE, the attempt rows (numbered 1..n: the statement
        renumbers them after the check's count) and the response row (sealed values) or None. Returns what the
        UPDATE changed, or None when the check is not PENDING or not this tenant's (then nothing is written)."""
        args = (
            params["k_tenant"], params["k_id"], params["v_status"], params["v_completed"], params["v_reason"],
            params["v_attempts"], params["v_clearinghouse_id"], params["v_trace_id"],
            [a["http_status"] for a in attempts],
            [None if a["aaa_codes"] is None else json_dumps(a["aaa_codes"]) for a in attempts],
            [a["clearinghouse_id"] for a in attempts],
            [a["trace_id"] for a in attempts],
            [a["error"] for a in attempts],
            response is not None,
            None if response is None else response["http_status"],
            None if response is None else _json_or_null(response["raw_payload"]),
            None if response is None else _json_or_null(response["normalized_summary"]),
            None if response is None else response["data_key_id"],
        )

        async def use(conn: Any) -> dict[str, Any] | None:
            row = await conn.fetchrow(COMPLETE, *args)
            return None if row is None else dict(row.items())

        return await self._on_connection(use, COMPLETE)


def _json_or_null(value: object) -> str | None:
    return None if value is None else json_dumps(value)
