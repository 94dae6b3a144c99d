"""PostgreSQL outages (issue 9 §3): nothing hangs, nothing is stranded, health tells the truth.

The server reaches PostgreSQL through a TCP proxy that the test cuts (connections closed and refused),
black-holes (connections kept, nothing forwarded) and restores. The test itself reads the database directly.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


from server.app import Application
from server.usecases import eligibility as eligibility_usecases
from server.compose.eligibility import HEALTH_SERVICE
from server.store import CheckMode, NewCheck
from server.store.tables import eligibility_requests
from server.usecases.eligibility import EligibilityChecks
from tests.eligibility_service.conftest import MakeApp, StediStandIn, stedi_stand_in
from tests.eligibility_service.helpers import KIM_SLOW, RIVERA, Client, inquiry, status_name
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SLOW_PAYER_SECONDS = 3.0  # long enough to cut the database between accepting a check and its answer


@pytest_asyncio.fixture
async def stedi() -> AsyncIterator[StediStandIn]:
    """The Stedi stand-in, with a slower slow payer (SBX700001) than the suite's."""
    async with stedi_stand_in(slow_seconds=SLOW_PAYER_SECONDS, payer_timeout_seconds=10.0) as stand_in:
        yield stand_in


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest_asyncio.fixture
async def proxy(pg_database: str) -> AsyncIterator[TcpProxy]:
    target = make_url(pg_database)
    tcp = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await tcp.start()
    try:
        yield tcp
    finally:
        tcp.restore()
        await tcp.close()


@pytest.fixture
def database_url(pg_database: str, proxy: TcpProxy) -> str:
    """The server's database: the test's PostgreSQL database, through the proxy."""
    return make_url(pg_database).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


@pytest_asyncio.fixture
async def direct(pg_database: str) -> AsyncIterator[AsyncEngine]:
    """The same database without the proxy, for the test's own reads."""
    engine = create_async_engine(pg_database)
    try:
        yield engine
    finally:
        await engine.dispose()


def _client(app: Application, channel: grpc.aio.Channel) -> Client:
    assert app.dev_token is not None
    return Client(channel, app.dev_token)


async def _health(channel: grpc.aio.Channel, service: str) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                            timeout=5)
    return int(reply.status)


async def _wait_health(channel: grpc.aio.Channel, want: int, timeout: float) -> float:
    start = time.monotonic()
    while await _health(channel, HEALTH_SERVICE) != want:
        if time.monotonic() - start > timeout:
            raise AssertionError(f"EligibilityService health did not turn {want} within {timeout}s")
        await asyncio.sleep(0.1)
    return time.monotonic() - start


async def _statuses(direct: AsyncEngine, tenant: str) -> dict[str, str]:
    async with direct.connect() as conn:
        rows = await conn.execute(text("SELECT id, status FROM eligibility_requests WHERE tenant_id = :t"),
                                  {"t": tenant})
        return {row.id: row.status for row in rows}


async def _timed_error(call: asyncio.Future[object] | object) -> tuple[grpc.StatusCode, float]:
    start = time.monotonic()
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code(), time.monotonic() - start
    raise AssertionError("the call succeeded during the outage")


async def test_blackholed_database_fails_fast_and_health_follows_it(make_app: MakeApp, proxy: TcpProxy) -> None:
    app = await make_app()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = _client(app, channel)
        done = await client.check(inquiry(*RIVERA))  # pooled connections exist and are healthy
        assert await _health(channel, HEALTH_SERVICE) == SERVING
        proxy.blackhole()
        try:
            code, took = await _timed_error(client.check(inquiry(*RIVERA), timeout=30))
            assert code is grpc.StatusCode.UNAVAILABLE and took < 5.0, (code, took)
            code, took = await _timed_error(client.get(done.id))
            assert code is grpc.StatusCode.UNAVAILABLE and took < 5.0, (code, took)
            await _wait_health(channel, NOT_SERVING, timeout=10)
            assert await _health(channel, "") == SERVING  # the process is up
        finally:
            proxy.restore()
        await _wait_health(channel, SERVING, timeout=10)
        again = await client.check(inquiry(*RIVERA))  # dead pooled connections are replaced, no pre-ping
        assert status_name(again.status) == "VERIFIED"
        assert status_name((await client.get(done.id)).status) == "VERIFIED"


async def test_cut_database_fails_fast_and_health_follows_it(make_app: MakeApp, proxy: TcpProxy) -> None:
    app = await make_app()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = _client(app, channel)
        await client.check(inquiry(*RIVERA))
        proxy.cut()
        try:
            code, took = await _timed_error(client.check(inquiry(*RIVERA), timeout=30))
            assert code is grpc.StatusCode.UNAVAILABLE and took < 5.0, (code, took)
            await _wait_health(channel, NOT_SERVING, timeout=10)
            assert await _health(channel, "") == SERVING
        finally:
            proxy.restore()
        await _wait_health(channel, SERVING, timeout=10)
        assert status_name((await client.check(inquiry(*RIVERA))).status) == "VERIFIED"


async def test_checks_decided_during_an_outage_are_final_soon_after_the_database_returns(
    make_app: MakeApp, proxy: TcpProxy, direct: AsyncEngine, tenant: str
) -> None:
    app = await make_app(eligibility_retry_budget_seconds=30)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = _client(app, channel)
        # Accepted (PENDING) before the cut; the payer answers after 3 s, while the database is away.
        sync_calls = [asyncio.ensure_future(client.check(inquiry(*KIM_SLOW, patient_id=f"sync-{n}"), timeout=20))
                      for n in range(3)]
        # This caller gives up during the outage: its hand-over to the worker must land once the database is back.
        impatient = asyncio.ensure_future(client.check(inquiry(*KIM_SLOW, patient_id="impatient"), timeout=1.5))
        submitted = [await client.submit(inquiry(*KIM_SLOW, patient_id=f"async-{n}")) for n in range(2)]
        deadline = time.monotonic() + 5
        while len(await _statuses(direct, tenant)) < 6:
            assert time.monotonic() < deadline, "checks were not accepted"
            await asyncio.sleep(0.05)
        proxy.cut()
        try:
            code, _took = await _timed_error(impatient)
            assert code is grpc.StatusCode.DEADLINE_EXCEEDED
            for call in sync_calls:  # the answer is decided but cannot be stored now: UNAVAILABLE, not a hang
                code, _took = await _timed_error(call)
                assert code is grpc.StatusCode.UNAVAILABLE
            await asyncio.sleep(0.5)  # the submitted checks' answers arrive during the outage too
            assert set((await _statuses(direct, tenant)).values()) == {"PENDING"}
        finally:
            proxy.restore()
        restored = time.monotonic()
        while set((await _statuses(direct, tenant)).values()) != {"VERIFIED"}:
            assert time.monotonic() - restored < 30, await _statuses(direct, tenant)
            await asyncio.sleep(0.1)
        ids = set(await _statuses(direct, tenant))
        assert {s.id for s in submitted} <= ids and len(ids) == 6
        for check_id in ids:
            final = await client.get(check_id)
            # The impatient caller's cut-short call is an attempt too (stored with its hand-over), then the worker's.
            expected = 2 if final.patient_id == "impatient" else 1
            assert status_name(final.status) == "VERIFIED" and final.attempts == expected


async def _rows(direct: AsyncEngine, tenant: str) -> list[tuple[str, str, int]]:
    async with direct.connect() as conn:
        rows = await conn.execute(text("SELECT id, status, attempts FROM eligibility_requests WHERE tenant_id = :t"),
                                  {"t": tenant})
        return [(row.id, row.status, row.attempts) for row in rows]


async def _row(direct: AsyncEngine, check_id: str) -> tuple[str, str | None, int]:
    async with direct.connect() as conn:
        row = (await conn.execute(text("SELECT status, failure_reason, attempts FROM eligibility_requests "
                                       "WHERE id = :id"), {"id": check_id})).one()
        return row.status, row.failure_reason, row.attempts


async def _create_unconfirmed(channel: grpc.aio.Channel, client: Client, proxy: TcpProxy, direct: AsyncEngine,
                              tenant: str, create: Callable[[], Awaitable[None]]) -> list[str]:
    """Run `create` (new checks) while the database's answers are lost; the ids of the checks that landed."""
    # The INSERT only reaches PostgreSQL on a pooled connection that has it prepared already (preparing is a
    # round trip whose answer would be lost too), and the pool hands its connections out in turn: prepare it
    # on (nearly) every pooled connection first. The restore closes them all, so each new try warms again.
    for warm_up in range(5):
        await asyncio.gather(*(client.check(inquiry(*RIVERA, patient_id=f"warm-{warm_up}-{n}")) for n in range(30)))
        known = set(await _statuses(direct, tenant))
        proxy.mute()  # what the server sends reaches PostgreSQL; nothing comes back
        try:
            await create()
            landed = [r for r in await _rows(direct, tenant) if r[0] not in known]
        finally:
            proxy.restore()
        if landed:
            assert {(status, attempts) for _id, status, attempts in landed} == {("PENDING", 0)}  # INSERTs committed
            return [check_id for check_id, _status, _attempts in landed]
        await _wait_health(channel, SERVING, timeout=10)
    raise AssertionError("no new check's INSERT reached the database in 5 tries")


async def _final(direct: AsyncEngine, check_id: str, within: float = 15) -> tuple[str, str | None, int]:
    deadline = time.monotonic() + within
    while (row := await _row(direct, check_id))[0] == "PENDING":
        assert time.monotonic() < deadline, f"the check is still PENDING {within} s after the database returned"
        await asyncio.sleep(0.1)
    return row


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_checks_whose_creation_was_never_confirmed_are_withdrawn_once_the_database_answers(
    make_app: MakeApp, proxy: TcpProxy, direct: AsyncEngine, tenant: str, mode: str
) -> None:
    """The INSERT of a new check commits, but its answer is lost on the way back: the caller is answered
    UNAVAILABLE, so the stored check must not run behind its back nor sit PENDING until the stale sweep (600 s);
    it ends FAILED NOT_CONFIRMED, unsent, soon after the database answers again. However many callers were
    refused, one background write withdraws them all."""
    app = await make_app(worker_poll_seconds=60)
    assert app.eligibility is not None
    writes = app.eligibility.checks.runner.writes
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = _client(app, channel)

        async def create() -> None:
            calls = [client.check(inquiry(*RIVERA, patient_id=f"p-{n}"), timeout=30) if mode == "sync"
                     else client.submit(inquiry(*RIVERA, patient_id=f"p-{n}")) for n in range(4)]
            for code, took in await asyncio.gather(*(_timed_error(c) for c in calls)):
                assert code is grpc.StatusCode.UNAVAILABLE and took < 5.0, (code, took)
            assert writes.pending == 1

        check_ids = await _create_unconfirmed(channel, client, proxy, direct, tenant, create)
        for check_id in check_ids:
            assert await _final(direct, check_id) == ("FAILED", "NOT_CONFIRMED", 0)


async def test_a_caller_who_leaves_before_the_creation_is_confirmed_has_the_check_withdrawn(
    make_app: MakeApp, proxy: TcpProxy, direct: AsyncEngine, tenant: str
) -> None:
    """A caller gone before its check was confirmed got no id and nothing was sent: the check is withdrawn too."""
    app = await make_app()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = _client(app, channel)

        async def create_and_leave() -> None:
            call = asyncio.ensure_future(client.check(inquiry(*RIVERA), timeout=30))
            await asyncio.sleep(0.5)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            await asyncio.sleep(0.5)

        [check_id] = await _create_unconfirmed(channel, client, proxy, direct, tenant, create_and_leave)
        assert await _final(direct, check_id) == ("FAILED", "NOT_CONFIRMED", 0)


async def _until_withdrawn(checks: EligibilityChecks) -> None:
    deadline = time.monotonic() + 10
    while checks._withdrawing:
        assert time.monotonic() < deadline, "the withdrawal did not land"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("order", ["insert after", "insert uncommitted during"])
async def test_a_creation_landing_after_or_during_its_withdrawal_never_leaves_a_pending_check(
    make_app: MakeApp, direct: AsyncEngine, tenant: str, order: str
) -> None:
    """An INSERT still on its way when its check was withdrawn lands after the withdrawal, or is uncommitted while
    it runs. Either way the check ends FAILED NOT_CONFIRMED, never sent, at once: not PENDING until the stale
    sweep (600 s), nor run behind its caller's back. Both writes take the check id's unique key."""
    app = await make_app(worker_poll_seconds=60)
    assert app.eligibility is not None
    checks = app.eligibility.checks
    new = NewCheck(tenant, str(uuid.uuid4()), "SBX01", {"controlNumber": "1"}, mode=CheckMode.ASYNC)

    async def late_insert() -> None:
        await checks.runner.repo.create_pending(tenant, payer_id="SBX01", request_payload=new.request_payload,
                                                check_id=new.check_id, mode=CheckMode.ASYNC)

    if order == "insert after":
        # What `_create` does when its caller was refused (store timeout, lost answer, departure): no row yet.
        checks._withdraw_later(new)
        await _until_withdrawn(checks)
        assert await _row(direct, new.check_id) == ("FAILED", "NOT_CONFIRMED", 0)
        with pytest.raises(IntegrityError):
            await late_insert()
    else:
        async with direct.connect() as conn:
            await conn.begin()
            await conn.execute(insert(eligibility_requests).values(
                id=new.check_id, tenant_id=tenant, payer_id="SBX01", status="PENDING", mode=CheckMode.ASYNC.value,
                requested_at=datetime.now(UTC), updated_at=datetime.now(UTC), request_payload="(sealed)",
                attempts=0, version=1, next_attempt_at=datetime.now(UTC)))
            checks._withdraw_later(new)
            await asyncio.sleep(0.5)
            assert checks._withdrawing  # waiting for the uncommitted row's key
            await conn.commit()
        await _until_withdrawn(checks)
    assert await _row(direct, new.check_id) == ("FAILED", "NOT_CONFIRMED", 0)


async def test_unconfirmed_creations_awaiting_withdrawal_are_bounded_and_said_once(
    make_app: MakeApp, proxy: TcpProxy, direct: AsyncEngine, tenant: str, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long outage refusing many callers does not grow memory without bound: beyond the cap, creations are
    left to the stale sweeper, and the log says so once, not once per caller."""
    monkeypatch.setattr(eligibility_usecases, "MAX_UNCONFIRMED", 2)
    app = await make_app(worker_poll_seconds=60)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = _client(app, channel)
        await client.check(inquiry(*RIVERA))
        proxy.cut()
        try:
            for code, _took in await asyncio.gather(*(_timed_error(client.check(inquiry(*RIVERA), timeout=10))
                                                      for _ in range(5))):
                assert code is grpc.StatusCode.UNAVAILABLE
        finally:
            proxy.restore()
    said = [r for r in caplog.records if "await withdrawal" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING"
