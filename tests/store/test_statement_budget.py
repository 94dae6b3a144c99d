"""The database cost of one synchronous check, counted on the server's real engine over a real gRPC call.

Budget (issue 13 §2): two transactions (the PENDING row before the clearinghouse call; final state, response and
attempt rows after it), four statements, no read at all (no re-read of the row, no pre-ping at checkout), on
SQLite and on PostgreSQL. An AAA 42 answered once then VERIFIED (retried in-process) costs the same.

Counted at both levels: SQLAlchemy's events (Core statements and their transactions) and, on PostgreSQL, asyncpg's
query logger on every connection checked out of the engine's pool (the hot path's statements, which bypass Core:
each runs on its own, so it counts as one transaction; BEGIN/COMMIT there are SQLAlchemy's, already counted).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from server.app import Application
from tests.eligibility_service.conftest import (  # noqa: F401 - fixtures used by name
    MakeApp,
    app_settings,
    database_url,
    make_app,
    pg_database,
    stedi,
    tenant,
)
from tests.eligibility_service.helpers import QUINN_FLAKY, RIVERA, Client, inquiry, status_name

STATEMENTS_PER_CHECK = 4  # INSERT request; UPDATE … RETURNING; INSERT attempts; INSERT response


@dataclass
class Tally:
    statements: list[str] = field(default_factory=list)
    begins: int = 0
    commits: int = 0


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[Tally]:
    tally = Tally()
    sync = engine.sync_engine

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE: counted as a begin
            tally.statements.append(" ".join(statement.split())[:60])

    def on_begin(_conn: Any) -> None:
        tally.begins += 1

    def on_commit(_conn: Any) -> None:
        tally.commits += 1

    def on_driver_query(record: Any) -> None:  # asyncpg's LoggedQuery
        text = " ".join(record.query.split())
        if text.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            return
        tally.statements.append(text[:60])
        tally.begins += 1
        tally.commits += record.exception is None

    drivers: list[Any] = []

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if hasattr(driver, "add_query_logger") and driver not in drivers:
            driver.add_query_logger(on_driver_query)
            drivers.append(driver)

    listeners = [("before_cursor_execute", on_statement), ("begin", on_begin), ("commit", on_commit)]
    for name, fn in listeners:
        event.listen(sync, name, fn)
    event.listen(sync.pool, "checkout", on_checkout)
    try:
        yield tally
    finally:
        for name, fn in listeners:
            event.remove(sync, name, fn)
        event.remove(sync.pool, "checkout", on_checkout)
        for driver in drivers:
            driver.remove_query_logger(on_driver_query)


def _engine(app: Application) -> AsyncEngine:
    assert app.eligibility is not None
    return app.eligibility.engine


async def _started(make_app: MakeApp) -> Application:
    # The worker's claim loop would poll the same engine: keep it asleep during the count.
    return await make_app(worker_poll_seconds=60, stale_pending_seconds=600)


async def test_one_check_is_two_transactions_and_four_statements(make_app: MakeApp) -> None:
    app = await _started(make_app)
    engine = _engine(app)
    assert engine.sync_engine.pool._pre_ping is False  # no round trip per checkout
    assert app.dev_token is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = Client(channel, app.dev_token)
        await client.check(inquiry(*RIVERA))  # warm: connections open, statements prepared
        with counting(engine) as tally:
            check = await client.check(inquiry(*RIVERA), raw=True)
        assert status_name(check.status) == "VERIFIED" and check.attempts == 1
        assert check.summary.plan_name and check.raw_response.fields  # built from what was written
        stored = await client.get(check.id, raw=True)
    assert (tally.begins, tally.commits) == (2, 2), tally
    assert len(tally.statements) <= STATEMENTS_PER_CHECK, tally.statements
    assert not [s for s in tally.statements if s.upper().startswith("SELECT")], tally.statements
    # What the RPC returned is what a later read finds.
    assert stored.summary == check.summary and stored.raw_response == check.raw_response
    assert (stored.attempts, stored.completed_at, stored.clearinghouse_check_id) == (
        check.attempts, check.completed_at, check.clearinghouse_check_id)


async def test_an_aaa_retry_in_process_still_costs_two_transactions(make_app: MakeApp) -> None:
    app = await _started(make_app)
    engine = _engine(app)
    assert app.dev_token is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = Client(channel, app.dev_token)
        await client.check(inquiry(*RIVERA))  # warm (the first connection's set-up commits once)
        with counting(engine) as tally:
            check = await client.check(inquiry(*QUINN_FLAKY))  # AAA 42 once, then VERIFIED
        assert status_name(check.status) == "VERIFIED" and check.attempts == 2
        attempts = (await client.get(check.id)).attempts
    assert (tally.begins, tally.commits) == (2, 2), tally
    assert len(tally.statements) <= STATEMENTS_PER_CHECK, tally.statements
    assert attempts == 2
