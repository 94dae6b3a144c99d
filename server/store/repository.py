"""The eligibility store: every read and write of eligibility checks goes through `EligibilityRepository`.

Rules kept here so callers need not know them:
* Every method a caller acts through is tenant-scoped: each statement filters on the tenant, and another
  tenant's id behaves exactly like an unknown id.
* Worker/janitor methods (`claim_due`, `release`, `reschedule`, `resume`, `stale_pending`, `fail_stale`) act
  across tenants by design; the records they return carry `tenant_id` for the follow-up calls.
* A check leaves PENDING once: `complete` and `fail_stale` only update rows that are still PENDING, in the same
  statement that changes them, so concurrent completions cannot both win.
* Transactions are short (no I/O to the clearinghouse inside them); on SQLite writers begin IMMEDIATE.
* A synchronous check costs two transactions: `create_pending` before the clearinghouse call, `finish` after it
  (final state + response + the call's attempt rows at once, and the record rebuilt from what was written).
* Every call is bounded by the repository's `timeout` (and a caller's, where given): a black-holed database
  answers `StoreUnavailable` instead of hanging. No pre-ping per checkout: a statement that finds its pooled
  connection dead (the database restarted) is run once more on a fresh connection.
* Payloads are stored, never logged, and never rendered into error messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .engine import writer
from .errors import SealedDataError, StoreDeadlineExceeded, StoreUnavailable
from .pg_writes import PgWrites
from .pagination import Cursor, PageTokenCodec, clamp_page_size
from .sealed_columns import RAW_COLUMN, SUMMARY_COLUMN, ResponseSeal, request_ref
from .sealing import Sealer
from .records import (
    EXPIRABLE_STATUSES,
    AttemptRecord,
    CheckMode,
    CheckRecord,
    CheckStatus,
    Completion,
    JSONObject,
    NewAttempt,
    NewCheck,
    ResponseRecord,
    Stats,
)
from .tables import eligibility_attempts as attempts_t
from .tables import eligibility_requests as req
from .tables import eligibility_responses as resp

T = TypeVar("T")
log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Work = Callable[[AsyncConnection], Awaitable[T]]
CheckList = list[CheckRecord]
CheckIds = list[str]
Conditions = list[ColumnElement[bool]]
Page = tuple[list[CheckRecord], str | None]

_TEXT_LIMIT = 256
#: The failure reason of a check whose sealed request cannot be opened (never sent: there is nothing to send).
UNREADABLE_REASON = "DATA_LOSS (sealed request cannot be opened)"
_WITHDRAW_CHUNK = 40  # rows per upsert: 21 columns each, inside even an old SQLite's 999 parameters
_PENDING = CheckStatus.PENDING.value
_EXPIRABLE = sorted(s.value for s in EXPIRABLE_STATUSES)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware")
    return value


def _retrieve(task: asyncio.Future[Any]) -> None:
    """A timed-out call's task ends on its own; its outcome has no reader any more."""
    if not task.cancelled():
        task.exception()


def _disconnected(exc: BaseException) -> bool:
    """The pooled connection was dead (SQLAlchemy invalidated it): worth one more try on a fresh one."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:_TEXT_LIMIT]


@contextmanager
def _unavailable_on_db_outage() -> Iterator[None]:
    """Turn driver/pool failures into `StoreUnavailable`; integrity errors stay as they are (they are bugs)."""
    try:
        yield
    except TimeoutError as exc:  # asyncio.timeout, the driver's command/connect timeout
        raise StoreUnavailable("database did not answer in time") from exc
    except (OperationalError, InterfaceError, PoolTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"database unavailable ({type(exc).__name__})") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"database connection lost ({type(exc).__name__})") from exc
        raise


# Request columns except `status`, which is selected as the *reported* status (see `_status_expr`).
_REQUEST_COLUMNS = [c for c in req.c if c.key != "status"]
# What a completion changes, returned by its UPDATE so the completed record needs no re-read.
_COMPLETED_COLUMNS = [req.c[name] for name in (
    "completed_at", "failure_reason", "clearinghouse_id", "trace_id", "attempts", "version")]
# The hot path's statements are built once and executed with parameter dicts: their cache keys are computed
# once, and each maps to one compiled (and, on asyncpg, prepared) statement.
_INSERT_REQUEST = insert(req)
_INSERT_ATTEMPT = insert(attempts_t)
_INSERT_RESPONSE = insert(resp)
# Completion: only a PENDING check of this tenant; known clearinghouse ids are never erased (coalesce).
_COMPLETE = (
    update(req)
    .where(
        req.c.tenant_id == bindparam("k_tenant", type_=req.c.tenant_id.type),
        req.c.id == bindparam("k_id", type_=req.c.id.type),
        req.c.status == _PENDING,
    )
    .values(
        status=bindparam("v_status", type_=req.c.status.type),
        completed_at=bindparam("v_completed", type_=req.c.completed_at.type),
        updated_at=bindparam("v_updated", type_=req.c.updated_at.type),
        failure_reason=bindparam("v_reason", type_=req.c.failure_reason.type),
        version=req.c.version + 1,
        next_attempt_at=None,
        claimed_by=None,
        lease_until=None,
        attempts=req.c.attempts + bindparam("v_attempts", type_=req.c.attempts.type),
        clearinghouse_id=func.coalesce(
            bindparam("v_clearinghouse_id", type_=req.c.clearinghouse_id.type), req.c.clearinghouse_id
        ),
        trace_id=func.coalesce(bindparam("v_trace_id", type_=req.c.trace_id.type), req.c.trace_id),
    )
    .returning(*_COMPLETED_COLUMNS)
)


class EligibilityRepository:
    """Async repository over `eligibility_requests`, `eligibility_responses` and `eligibility_attempts`.

    `page_token_secret` signs list page tokens. `sealer` seals every value carrying member data before it is
    written and opens it when read (`SealedDataError` when it cannot: never garbage, never plain text).
    `freshness`, when set, makes completed VERIFIED/NOT_FOUND checks older than it read as EXPIRED (eligibility.md
    §3.5) in get/list/stats and status filters. `timeout` (seconds, None = unbounded) bounds every call, pool wait
    and retry included. `clock` is injectable for tests.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        page_token_secret: bytes,
        sealer: Sealer,
        freshness: timedelta | None = None,
        timeout: float | None = None,
        clock: Clock = utc_now,
    ) -> None:
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive")
        self._engine = engine
        self._sealer = sealer
        self._writer = writer(engine)
        # PostgreSQL: the synchronous check's two writes as single driver-level statements (pg_writes.py).
        self._pg = PgWrites(engine) if engine.dialect.name == "postgresql" else None
        self._tokens = PageTokenCodec(page_token_secret)
        self._freshness = freshness
        self._timeout = timeout
        self._clock = clock

    @property
    def timeout(self) -> float | None:
        return self._timeout

    # ------------------------------------------------------------------ plumbing

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    def _limit(self, deadline: float | None) -> tuple[float | None, bool]:
        """Seconds this call may take: the store timeout, or less when the caller's deadline (monotonic) is
        nearer; and whether it is the caller's deadline that sets the limit."""
        if deadline is None:
            return self._timeout, False
        left = max(0.0, deadline - time.monotonic())
        if self._timeout is None or left < self._timeout:
            return left, True
        return self._timeout, False

    async def _run(self, work: Work[T], *, write: bool, deadline: float | None = None) -> T:
        """Run `work` in one transaction (writers) or on one connection (readers), within the time limit."""
        return await self._bounded(lambda: self._once(work, write), deadline)

    async def _bounded(self, once: Callable[[], Awaitable[T]], deadline: float | None = None) -> T:
        """Run `once` (reconnecting once, see `_attempts`) within the time limit.

        The work runs in its own task, so that when the limit passes the caller gets `StoreUnavailable` at once,
        while the task's clean-up of a connection that stopped answering (the driver's graceful close waits up
        to 2 s) goes on in the background. A caller's cancellation cancels the work.
        """
        limit, callers = self._limit(deadline)
        if limit is None:
            return await self._attempts(once)
        if limit <= 0:
            raise StoreDeadlineExceeded("the caller's deadline passed before the database call")
        task = asyncio.ensure_future(self._attempts(once))
        try:
            done, _ = await asyncio.wait((task,), timeout=limit)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            task.add_done_callback(_retrieve)
            if callers:
                raise StoreDeadlineExceeded("the caller's deadline passed before the database answered")
            raise StoreUnavailable("database did not answer in time")
        return task.result()

    async def _attempts(self, once: Callable[[], Awaitable[T]]) -> T:
        """A dead pooled connection (found on first use, since nothing pings it at checkout) is invalidated by
        SQLAlchemy (or `PgWrites`), and the work runs once more on a fresh connection. Writes are guarded by their
        WHERE clauses (PENDING, lease holder), so a second run after a commit whose answer was lost changes
        nothing twice."""
        with _unavailable_on_db_outage():
            try:
                return await once()
            except DBAPIError as exc:
                if not _disconnected(exc):
                    raise
            return await once()

    async def _once(self, work: Work[T], write: bool) -> T:
        if write:
            async with self._writer.begin() as conn:
                return await work(conn)
        async with self._engine.connect() as conn:
            return await work(conn)

    async def _rows(self, stmt: Any) -> Sequence[RowMapping]:
        async def work(conn: AsyncConnection) -> Sequence[RowMapping]:
            return (await conn.execute(stmt)).mappings().all()

        return await self._run(work, write=False)

    async def _scalar(self, stmt: Any) -> Any:
        async def work(conn: AsyncConnection) -> Any:
            return (await conn.execute(stmt)).scalar_one_or_none()

        return await self._run(work, write=False)

    async def _rowcount(self, stmt: Any) -> int:
        """Run one guarded UPDATE in a write transaction; how many rows it changed."""
        async def work(conn: AsyncConnection) -> int:
            return int((await conn.execute(stmt)).rowcount)

        return await self._run(work, write=True)

    def _status_expr(self, now: datetime) -> ColumnElement[str]:
        """The reported status: a stored result older than the freshness window reads EXPIRED."""
        if self._freshness is None:
            return req.c.status
        cutoff = now - self._freshness
        return case(
            (
                and_(req.c.status.in_(_EXPIRABLE), req.c.completed_at < cutoff),
                literal(CheckStatus.EXPIRED.value),
            ),
            else_=req.c.status,
        )

    def _status_filter(self, status: CheckStatus, now: datetime) -> ColumnElement[bool]:
        if self._freshness is None:
            return req.c.status == status.value
        cutoff = now - self._freshness
        if status is CheckStatus.EXPIRED:
            return or_(
                req.c.status == status.value,
                and_(req.c.status.in_(_EXPIRABLE), req.c.completed_at < cutoff),
            )
        if status in EXPIRABLE_STATUSES:
            return and_(req.c.status == status.value, req.c.completed_at >= cutoff)
        return req.c.status == status.value

    def _select_checks(self, now: datetime, *, include_raw: bool) -> Select[Any]:
        columns: list[Any] = [
            *_REQUEST_COLUMNS,
            self._status_expr(now).label("status"),
            resp.c.request_id.label("resp_request_id"),
            resp.c.http_status.label("resp_http_status"),
            resp.c.created_at.label("resp_created_at"),
            resp.c.normalized_summary.label("resp_summary"),
            resp.c.data_key_id.label("resp_data_key_id"),
        ]
        if include_raw:
            columns.append(resp.c.raw_payload.label("resp_raw"))
        return select(*columns).select_from(req.outerjoin(resp, resp.c.request_id == req.c.id))

    def _to_record(self, row: RowMapping) -> CheckRecord:
        response: ResponseRecord | None = None
        if row.get("resp_request_id") is not None:
            opened = ResponseSeal(self._sealer, row["tenant_id"], row["resp_request_id"])
            response = ResponseRecord(
                request_id=row["resp_request_id"],
                http_status=row["resp_http_status"],
                created_at=row["resp_created_at"],
                summary=opened.open(SUMMARY_COLUMN, row["resp_summary"], row["resp_data_key_id"]),
                raw=opened.open(RAW_COLUMN, row.get("resp_raw"), row["resp_data_key_id"]),
            )
        return CheckRecord(
            id=row["id"],
            tenant_id=row["tenant_id"],
            policy_id=row["policy_id"],
            patient_id=row["patient_id"],
            payer_id=row["payer_id"],
            status=CheckStatus(row["status"]),
            mode=CheckMode(row["mode"]),
            requested_at=row["requested_at"],
            updated_at=row["updated_at"],
            completed_at=row["completed_at"],
            clearinghouse_id=row["clearinghouse_id"],
            trace_id=row["trace_id"],
            failure_reason=row["failure_reason"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            claimed_by=row["claimed_by"],
            lease_until=row["lease_until"],
            version=row["version"],
            request_payload=self._sealer.open(
                row["request_payload"], row["data_key_id"], request_ref(row["tenant_id"], row["id"])
            ),
            response=response,
        )

    # ------------------------------------------------------------------ the check's life

    async def create_pending(
        self,
        tenant_id: str,
        *,
        payer_id: str,
        request_payload: JSONObject,
        policy_id: str | None = None,
        patient_id: str | None = None,
        mode: CheckMode = CheckMode.SYNC,
        next_attempt_at: datetime | None = None,
        check_id: str | None = None,
        deadline: float | None = None,
    ) -> CheckRecord:
        """Record a new PENDING check before the clearinghouse is called (`create`, with the check's fields)."""
        check = NewCheck(tenant_id, check_id or str(uuid.uuid4()), payer_id, request_payload, policy_id, patient_id,
                         mode)
        return await self.create(check, next_attempt_at=next_attempt_at, deadline=deadline)

    async def create(
        self, check: NewCheck, *, next_attempt_at: datetime | None = None, deadline: float | None = None
    ) -> CheckRecord:
        """Record a new PENDING check before the clearinghouse is called, so a crash leaves a trace.

        An ASYNC check is due at once unless `next_attempt_at` says otherwise; a SYNC one is never picked by the
        worker unless `resume` hands it over. `deadline` (monotonic) is the caller's, when nearer than the
        store timeout.
        """
        _aware(next_attempt_at, "next_attempt_at")
        now = self._now()
        if check.mode is CheckMode.ASYNC and next_attempt_at is None:
            next_attempt_at = now
        values = _new_request(check, now, next_attempt_at)
        row = self._sealed(values)  # sealed outside the transaction; the record returned keeps the plain payload
        runs = 0

        async def insert(run: Callable[[], Awaitable[object]]) -> None:
            nonlocal runs
            runs += 1
            try:
                await run()
            except IntegrityError:
                if runs == 1:
                    raise
                # The first run committed but its connection died before saying so: the row is there.

        pg = self._pg
        if pg is not None:
            await self._bounded(lambda: insert(lambda: pg.insert_pending(row)), deadline)
        else:
            async def work(conn: AsyncConnection) -> None:
                await insert(lambda: conn.execute(_INSERT_REQUEST, row))

            await self._run(work, write=True, deadline=deadline)
        values["status"] = CheckStatus.PENDING
        values["mode"] = check.mode
        return CheckRecord(**values)

    async def record_attempt(
        self,
        tenant_id: str,
        check_id: str,
        *,
        http_status: int | None = None,
        aaa_codes: Sequence[str] = (),
        clearinghouse_id: str | None = None,
        trace_id: str | None = None,
        error: str | None = None,
    ) -> int | None:
        """Store one clearinghouse call and bump the check's attempt count; returns the attempt number.

        None when the check is unknown to this tenant or no longer PENDING (a late attempt changes nothing).
        `error` is a short machine code, never payer free text (it may carry PHI).
        """
        attempt = NewAttempt(http_status, tuple(aaa_codes), clearinghouse_id, trace_id, error)
        return await self.record_attempts(tenant_id, check_id, [attempt])

    async def record_attempts(self, tenant_id: str, check_id: str, attempts: Sequence[NewAttempt]) -> int | None:
        """Store several clearinghouse calls in one transaction; returns the last attempt number (see above)."""
        if not attempts:
            return None
        now = self._now()

        async def work(conn: AsyncConnection) -> int | None:
            conditions = [req.c.tenant_id == tenant_id, req.c.id == check_id, req.c.status == _PENDING]
            return await _add_attempts(conn, conditions, check_id, attempts, now, {"updated_at": now})

        return await self._run(work, write=True)

    async def complete(self, tenant_id: str, check_id: str, completion: Completion) -> bool:
        """Set the final status and write the response row in one transaction, only if the check is PENDING.

        Returns False (and changes nothing) when the check is unknown to this tenant or already completed, so a
        retried or duplicated completion is harmless. A response row is written when the completion has one
        (`Completion.has_response`); its `attempts` (calls not stored yet) are written in the same transaction.
        """
        row = await self._complete(tenant_id, check_id, completion)
        return row is not None

    async def finish(
        self, record: CheckRecord, completion: Completion, *, include_raw: bool = True
    ) -> CheckRecord | None:
        """`complete`, returning the completed check built from `record` and what was written (no re-read).

        None when the check was no longer PENDING (completed elsewhere): then nothing was written.
        """
        row = await self._complete(record.tenant_id, record.id, completion)
        if row is None:
            return None
        now: datetime = row["completed_at"]
        response = None
        if completion.has_response:
            response = ResponseRecord(
                request_id=record.id,
                http_status=completion.http_status,
                created_at=now,
                summary=completion.summary,
                raw=completion.raw if include_raw else None,
            )
        return dataclasses.replace(
            record,
            status=completion.status,
            updated_at=now,
            completed_at=now,
            failure_reason=row["failure_reason"],
            clearinghouse_id=row["clearinghouse_id"],
            trace_id=row["trace_id"],
            attempts=row["attempts"],
            version=row["version"],
            next_attempt_at=None,
            claimed_by=None,
            lease_until=None,
            response=response,
        )

    async def _complete(self, tenant_id: str, check_id: str, completion: Completion) -> Mapping[str, Any] | None:
        """One transaction: the guarded UPDATE (RETURNING what changed), the attempt rows, the response row."""
        attempts = completion.attempts
        now = self._now()
        ids: dict[str, str | None] = {"clearinghouse_id": None, "trace_id": None}
        for attempt in attempts:  # as `record_attempt` would have: ids an earlier try learnt are kept
            ids.update(_known_ids(attempt.clearinghouse_id, attempt.trace_id))
        ids.update(_known_ids(completion.clearinghouse_id, completion.trace_id))
        params = {
            "k_tenant": tenant_id,
            "k_id": check_id,
            "v_status": completion.status.value,
            "v_completed": now,
            "v_updated": now,
            "v_reason": _clip(completion.failure_reason),
            "v_attempts": len(attempts),
            "v_clearinghouse_id": ids["clearinghouse_id"],
            "v_trace_id": ids["trace_id"],
        }
        response: dict[str, Any] | None = None
        if completion.has_response:
            sealing = ResponseSeal(self._sealer, tenant_id, check_id)  # sealed outside the write transaction
            response = {
                "request_id": check_id,
                "http_status": completion.http_status,
                "raw_payload": sealing.seal(RAW_COLUMN, completion.raw),
                "normalized_summary": sealing.seal(SUMMARY_COLUMN, completion.summary),
                "created_at": now,
                "data_key_id": self._sealer.key_id,
            }

        pg = self._pg
        if pg is not None:
            rows = _attempt_rows(check_id, attempts, len(attempts), now)
            return await self._bounded(lambda: pg.complete(params, rows, response))

        async def work(conn: AsyncConnection) -> Mapping[str, Any] | None:
            row = (await conn.execute(_COMPLETE, params)).mappings().first()
            if row is None:
                return None
            if attempts:
                await conn.execute(_INSERT_ATTEMPT, _attempt_rows(check_id, attempts, row["attempts"], now))
            if response is not None:
                await conn.execute(_INSERT_RESPONSE, response)
            return dict(row)

        return await self._run(work, write=True)

    # ------------------------------------------------------------------ reads

    async def get(self, tenant_id: str, check_id: str, *, include_raw: bool = True) -> CheckRecord | None:
        """One check with its response (the raw clearinghouse body only when `include_raw`)."""
        now = self._now()
        stmt = self._select_checks(now, include_raw=include_raw).where(
            req.c.tenant_id == tenant_id, req.c.id == check_id
        )
        rows = await self._rows(stmt)
        return self._to_record(rows[0]) if rows else None

    async def status_version(self, tenant_id: str, check_id: str) -> int | None:
        """The check's version (grows on every status change): a cheap poll for Watch across processes."""
        stmt = select(req.c.version).where(req.c.tenant_id == tenant_id, req.c.id == check_id)
        version: int | None = await self._scalar(stmt)
        return version

    async def attempts(self, tenant_id: str, check_id: str) -> list[AttemptRecord]:
        """The check's clearinghouse calls, oldest first."""
        stmt = (
            select(attempts_t)
            .join(req, req.c.id == attempts_t.c.request_id)
            .where(req.c.tenant_id == tenant_id, req.c.id == check_id)
            .order_by(attempts_t.c.attempt_no)
        )
        rows = await self._rows(stmt)
        return [
            AttemptRecord(
                request_id=row["request_id"],
                attempt_no=row["attempt_no"],
                at=row["at"],
                http_status=row["http_status"],
                aaa_codes=tuple(row["aaa_codes"] or ()),
                clearinghouse_id=row["clearinghouse_id"],
                trace_id=row["trace_id"],
                error=row["error"],
            )
            for row in rows
        ]

    async def list(
        self,
        tenant_id: str,
        *,
        policy_id: str | None = None,
        patient_id: str | None = None,
        status: CheckStatus | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        include_raw: bool = False,
    ) -> Page:
        """History, newest first by (requested_at DESC, id DESC), keyset-paginated.

        Rows inserted between page fetches never cause duplicates or gaps: a page continues strictly after the
        last row of the previous one. The token binds tenant and filters; a forged one, or one issued for other
        filters, raises `InvalidPageToken`. Returns (records, next_page_token or None at the end).
        """
        size = clamp_page_size(page_size)
        binding = {
            "tenant": tenant_id,
            "policy": policy_id,
            "patient": patient_id,
            "status": None if status is None else status.value,
        }
        cursor = self._tokens.decode(page_token, binding) if page_token else None
        now = self._now()
        conditions: list[ColumnElement[bool]] = [req.c.tenant_id == tenant_id]
        if policy_id is not None:
            conditions.append(req.c.policy_id == policy_id)
        if patient_id is not None:
            conditions.append(req.c.patient_id == patient_id)
        if status is not None:
            conditions.append(self._status_filter(status, now))
        if cursor is not None:
            # Row-value comparison: both backends use it as an index range condition, not a filter.
            conditions.append(
                tuple_(req.c.requested_at, req.c.id) < tuple_(cursor.requested_at, cursor.id)
            )
        stmt = (
            self._select_checks(now, include_raw=include_raw)
            .where(*conditions)
            .order_by(req.c.requested_at.desc(), req.c.id.desc())
            .limit(size + 1)
        )
        rows = await self._rows(stmt)
        records = [self._to_record(row) for row in rows[:size]]
        next_token = None
        if len(rows) > size:
            last = records[-1]
            next_token = self._tokens.encode(Cursor(last.requested_at, last.id), binding)
        return records, next_token

    async def stats(self, tenant_id: str, *, policy_id: str | None = None) -> Stats:
        """Counts by reported status and the latest request/completion times, overall or for one policy."""
        now = self._now()
        conditions: list[ColumnElement[bool]] = [req.c.tenant_id == tenant_id]
        if policy_id is not None:
            conditions.append(req.c.policy_id == policy_id)
        inner = (
            select(
                self._status_expr(now).label("status"),
                req.c.requested_at,
                req.c.completed_at,
            )
            .where(*conditions)
            .subquery()
        )
        stmt = select(
            inner.c.status,
            func.count().label("n"),
            func.max(inner.c.requested_at).label("last_requested"),
            func.max(inner.c.completed_at).label("last_completed"),
        ).group_by(inner.c.status)
        rows = await self._rows(stmt)
        counts = {s: 0 for s in CheckStatus}
        last_requested: datetime | None = None
        last_completed: datetime | None = None
        for row in rows:
            counts[CheckStatus(row["status"])] += row["n"]
            if row["last_requested"] is not None:
                last_requested = max(filter(None, (last_requested, row["last_requested"])))
            if row["last_completed"] is not None:
                last_completed = max(filter(None, (last_completed, row["last_completed"])))
        return Stats(
            tenant_id=tenant_id,
            policy_id=policy_id,
            pending=counts[CheckStatus.PENDING],
            verified=counts[CheckStatus.VERIFIED],
            failed=counts[CheckStatus.FAILED],
            not_found=counts[CheckStatus.NOT_FOUND],
            expired=counts[CheckStatus.EXPIRED],
            last_requested_at=last_requested,
            last_completed_at=last_completed,
        )

    # ------------------------------------------------------------------ background worker

    async def claim_due(
        self, worker_id: str, limit: int, lease_seconds: float, *, held: Collection[str] | None = None
    ) -> CheckList:
        """Lease up to `limit` due ASYNC checks to `worker_id` (oldest due first), across tenants.

        A check is due when PENDING, ASYNC, `next_attempt_at` <= now and its lease is free or expired. With `held`
        (the ids the worker knows it holds), the worker's own other leases are due too: a claim whose commit landed
        but whose answer was lost (a connection cut, a timeout) would otherwise strand its checks for the whole
        lease.

        Selecting and leasing happen in one transaction: on PostgreSQL the selection is `FOR UPDATE SKIP LOCKED`, so
        concurrent claimers (other processes) skip each other's rows instead of waiting, and the UPDATE re-checks
        the due condition; on SQLite the transaction holds the single write lock (BEGIN IMMEDIATE). Either way no
        check is leased to two workers at once.

        (Two statements on purpose: as `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`
        PostgreSQL may re-run the subquery per row, skip the rows it just updated and lease more than n.)
        """
        if limit <= 0:
            return []
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        now = self._now()
        free = [req.c.lease_until.is_(None), req.c.lease_until <= now]
        if held is not None:
            lost = req.c.claimed_by == worker_id
            free.append(and_(lost, req.c.id.not_in(list(held))) if held else lost)
        due: Conditions = [
            req.c.status == _PENDING,
            req.c.mode == CheckMode.ASYNC.value,
            req.c.next_attempt_at <= now,
            or_(*free),
        ]
        candidates = (
            select(req.c.id)
            .where(*due)
            .order_by(req.c.next_attempt_at, req.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

        async def work(conn: AsyncConnection) -> Sequence[RowMapping]:
            ids = list((await conn.execute(candidates)).scalars())
            if not ids:
                return []
            stmt = (
                update(req)
                .where(req.c.id.in_(ids), *due)
                .values(claimed_by=worker_id, lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
                .returning(*_REQUEST_COLUMNS, req.c.status)
            )
            return (await conn.execute(stmt)).mappings().all()

        rows = await self._run(work, write=True)
        records: CheckList = []
        unreadable: CheckIds = []
        for row in rows:
            try:
                records.append(self._to_record(row))
            except SealedDataError:
                unreadable.append(row["id"])
        if unreadable:
            await self._fail_unreadable(unreadable, now)
        records.sort(key=lambda r: (r.next_attempt_at or now, r.id))
        return records

    async def _fail_unreadable(self, ids: Sequence[str], now: datetime) -> None:
        """Claimed checks whose sealed request cannot be opened (its key no longer configured, the value altered)
        can never be sent: they end FAILED now. Raised instead, they would stall the worker, whose next claim takes
        the same oldest-due rows again, for good."""
        log.error("%d claimed eligibility check(s) cannot be opened (data key missing or data altered): failed %s; "
                  "ids: %s", len(ids), UNREADABLE_REASON, ", ".join(ids))
        await self._rowcount(update(req).where(req.c.id.in_(ids), req.c.status == _PENDING)
                             .values(**_failed(UNREADABLE_REASON, now)))

    async def release(self, check_id: str, worker_id: str) -> bool:
        """Give a lease back without changing when the check is due (e.g. on worker shutdown)."""
        now = self._now()
        changed = await self._rowcount(
            update(req)
            .where(req.c.id == check_id, req.c.status == _PENDING, req.c.claimed_by == worker_id)
            .values(claimed_by=None, lease_until=None, updated_at=now)
        )
        return changed == 1

    async def reschedule(
        self,
        check_id: str,
        next_attempt_at: datetime,
        *,
        worker_id: str | None = None,
        attempts: Sequence[NewAttempt] = (),
    ) -> bool:
        """Make a PENDING check due again at `next_attempt_at` and free its lease (a retry's backoff).

        With `worker_id`, only the current lease holder may do it, so a worker whose lease expired and was taken
        over cannot move the new holder's schedule. `attempts` (the calls just made) are stored in the same
        transaction.
        """
        _aware(next_attempt_at, "next_attempt_at")
        now = self._now()
        conditions: list[ColumnElement[bool]] = [req.c.id == check_id, req.c.status == _PENDING]
        if worker_id is not None:
            conditions.append(req.c.claimed_by == worker_id)
        changes = {"next_attempt_at": next_attempt_at, "claimed_by": None, "lease_until": None, "updated_at": now}
        return await self._update_with_attempts(conditions, check_id, changes, attempts, now)

    async def resume(
        self, check_id: str, *, at: datetime | None = None, attempts: Sequence[NewAttempt] = ()
    ) -> bool:
        """Hand a PENDING SYNC check (a caller gone, or a stale one whose process died) to the background worker.

        Only a SYNC check nobody holds: once handed over (ASYNC) or leased, a second hand-over (another process's
        sweeper that saw the same orphan) changes nothing, so it can never clear a live worker's lease and have two
        workers call the clearinghouse for one check. `attempts` (calls the handing-over caller made and did not
        store yet) are stored in the same transaction.
        """
        _aware(at, "at")
        now = self._now()
        changes = {
            "mode": CheckMode.ASYNC.value,
            "next_attempt_at": at or now,
            "claimed_by": None,
            "lease_until": None,
            "updated_at": now,
        }
        conditions: Conditions = [req.c.id == check_id, req.c.status == _PENDING,
                                  req.c.mode == CheckMode.SYNC.value, req.c.claimed_by.is_(None)]
        return await self._update_with_attempts(conditions, check_id, changes, attempts, now)

    async def withdraw(self, checks: Collection[NewCheck], reason: str) -> int:
        """Settle creations their callers never saw confirmed (the answer lost, the store timeout, the caller gone):
        each ends FAILED with `reason` unless it was started. Returns how many were failed or written.

        The row may be there (the INSERT committed though its answer was lost), or not (yet): an INSERT can still
        be on its way. So this is an upsert on the check's id. A row there, PENDING, never attempted and not
        leased, is failed; one already attempted, leased, final or another tenant's is left alone. A row not there
        is written FAILED, so an INSERT landing later fails on the id instead of leaving a PENDING check behind.
        Both writes take the id's unique key: whichever comes second waits for the first and sees it, whatever
        the timing. The history then shows the refused creation as FAILED, never sent.
        """
        now = self._now()
        rows = [self._sealed(_new_request(c, now, None) | _failed_values(reason, now)) for c in checks]
        if not rows:
            return 0
        upsert = pg_insert if self._pg is not None else sqlite_insert

        async def work(conn: AsyncConnection) -> int:
            changed = 0
            for at in range(0, len(rows), _WITHDRAW_CHUNK):
                stmt = upsert(req).values(rows[at:at + _WITHDRAW_CHUNK])
                stmt = stmt.on_conflict_do_update(
                    index_elements=[req.c.id],
                    set_=_failed(reason, now),
                    where=and_(req.c.tenant_id == stmt.excluded.tenant_id, req.c.status == _PENDING,
                               req.c.attempts == 0, req.c.claimed_by.is_(None)),
                )
                changed += int((await conn.execute(stmt)).rowcount)
            return changed

        return await self._run(work, write=True)

    def _sealed(self, values: dict[str, Any]) -> dict[str, Any]:
        """A request row's values as stored: the request payload sealed under the current data key."""
        return values | {
            "request_payload": self._sealer.seal(values["request_payload"], request_ref(values["tenant_id"],
                                                                                        values["id"])),
            "data_key_id": self._sealer.key_id,
        }

    async def _update_with_attempts(
        self,
        conditions: Conditions,
        check_id: str,
        changes: dict[str, Any],
        attempts: Sequence[NewAttempt],
        now: datetime,
    ) -> bool:
        if not attempts:
            return await self._rowcount(update(req).where(*conditions).values(**changes)) == 1

        async def work(conn: AsyncConnection) -> bool:
            return await _add_attempts(conn, conditions, check_id, attempts, now, changes) is not None

        return await self._run(work, write=True)

    def _stale_conditions(
        self, older_than: timedelta, now: datetime, mode: CheckMode | None
    ) -> Conditions:
        conditions: Conditions = [
            req.c.status == _PENDING,
            req.c.requested_at < now - older_than,
            or_(req.c.lease_until.is_(None), req.c.lease_until <= now),
        ]
        if mode is not None:
            conditions.append(req.c.mode == mode.value)
        return conditions

    async def stale_pending(
        self, older_than: timedelta, *, mode: CheckMode | None = None, limit: int = 100
    ) -> CheckList:
        """PENDING checks requested longer than `older_than` ago and not leased right now, oldest first."""
        now = self._now()
        stmt = (
            self._select_checks(now, include_raw=False)
            .where(*self._stale_conditions(older_than, now, mode))
            .order_by(req.c.requested_at, req.c.id)
            .limit(limit)
        )
        rows = await self._rows(stmt)
        return [self._to_record(row) for row in rows]

    async def fail_stale(self, older_than: timedelta, reason: str, *, mode: CheckMode | None = None) -> int:
        """Mark every stale PENDING check FAILED with `reason` (a short code); returns how many.

        The janitor's last resort so nothing stays PENDING forever. Checks completed meanwhile are untouched.
        """
        now = self._now()
        return await self._rowcount(
            update(req)
            .where(*self._stale_conditions(older_than, now, mode))
            .values(**_failed(reason, now))
        )


def _new_request(check: NewCheck, now: datetime, next_attempt_at: datetime | None) -> dict[str, Any]:
    """A new check's request row, PENDING and never attempted, its request payload in clear."""
    return {
        "id": check.check_id,
        "tenant_id": check.tenant_id,
        "policy_id": check.policy_id,
        "patient_id": check.patient_id,
        "payer_id": check.payer_id,
        "status": _PENDING,
        "mode": check.mode.value,
        "requested_at": now,
        "updated_at": now,
        "completed_at": None,
        "request_payload": dict(check.request_payload),
        "clearinghouse_id": None,
        "trace_id": None,
        "failure_reason": None,
        "attempts": 0,
        "next_attempt_at": next_attempt_at,
        "claimed_by": None,
        "lease_until": None,
        "version": 1,
    }


def _failed_values(reason: str, now: datetime) -> dict[str, Any]:
    """A new row's values of a check failed before it was ever sent (`withdraw`)."""
    return {"status": CheckStatus.FAILED.value, "failure_reason": _clip(reason), "completed_at": now,
            "next_attempt_at": None}


def _failed(reason: str, now: datetime) -> dict[str, Any]:
    """The UPDATE values of a check failed outside a clearinghouse answer (stale, withdrawn): final, unleased."""
    return {"status": CheckStatus.FAILED.value, "failure_reason": _clip(reason), "completed_at": now,
            "updated_at": now, "version": req.c.version + 1, "next_attempt_at": None, "claimed_by": None,
            "lease_until": None}


def _attempt_rows(
    check_id: str, attempts: Sequence[NewAttempt], last_no: int, now: datetime
) -> list[dict[str, Any]]:
    """Rows for `attempts`, numbered so that the last one is `last_no` (the check's count after the update)."""
    first = last_no - len(attempts) + 1
    return [
        {
            "request_id": check_id,
            "attempt_no": first + i,
            "at": now,
            "http_status": a.http_status,
            "aaa_codes": list(a.aaa_codes) or None,
            "clearinghouse_id": a.clearinghouse_id,
            "trace_id": a.trace_id,
            "error": _clip(a.error),
        }
        for i, a in enumerate(attempts)
    ]


async def _add_attempts(
    conn: AsyncConnection,
    conditions: Conditions,
    check_id: str,
    attempts: Sequence[NewAttempt],
    now: datetime,
    changes: dict[str, Any],
) -> int | None:
    """Bump the attempt count of the check matching `conditions` (plus `changes`) and insert the attempt rows."""
    values = dict(changes)
    values["attempts"] = req.c.attempts + len(attempts)
    for attempt in attempts:
        values.update(_known_ids(attempt.clearinghouse_id, attempt.trace_id))
    result = await conn.execute(update(req).where(*conditions).values(**values).returning(req.c.attempts))
    last_no: int | None = result.scalar_one_or_none()
    if last_no is None:
        return None
    await conn.execute(_INSERT_ATTEMPT, _attempt_rows(check_id, attempts, last_no, now))
    return last_no


def _known_ids(clearinghouse_id: str | None, trace_id: str | None) -> dict[str, str]:
    """The clearinghouse's ids to store; an attempt without them never erases ones already known."""
    ids = {"clearinghouse_id": clearinghouse_id, "trace_id": trace_id}
    return {name: value for name, value in ids.items() if value is not None}

