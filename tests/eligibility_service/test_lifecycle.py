"""Asynchronous checks, deadlines, restarts and load: nothing stays PENDING, each check is done once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from costestimator.v1 import eligibility_service_pb2 as pb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.domain.eligibility import EligibilityInquiry, Person, build_stedi_request
from server.sandbox.faults import Fault
from server.sandbox.stedi import ELIGIBILITY_PATH
from server.settings import Settings
from server.store import (
    CheckMode,
    CheckStatus,
    Completion,
    EligibilityRepository,
    Keyring,
    Sealer,
    create_engine_for,
    migrate,
)
from tests.eligibility_service.conftest import DATA_KEY, MakeApp, StediStandIn
from server.app import Application
from tests.eligibility_service.helpers import KIM_SLOW, RIVERA, Client, inquiry, status_name

ROOT = Path(__file__).resolve().parents[2]
VERIFIED = pb.ELIGIBILITY_STATUS_VERIFIED


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def client_for(app: Application, channel: grpc.aio.Channel) -> Client:
    assert app.dev_token is not None
    return Client(channel, app.dev_token)


async def test_submit_returns_pending_at_once_and_watch_ends_at_the_final_state(
    client: Client, stedi: StediStandIn
) -> None:
    stedi.faults.set_latency(0.4, ELIGIBILITY_PATH)
    started = time.monotonic()
    submitted = await client.submit(inquiry(*RIVERA))
    assert status_name(submitted.status) == "PENDING" and time.monotonic() - started < 0.3
    assert not submitted.HasField("summary") and not submitted.HasField("completed_at")
    states = await client.watch(submitted.id)
    assert [status_name(s.status) for s in states] == ["PENDING", "VERIFIED"]
    assert states[-1].summary.plan_name == "CHOICE PPO 2500" and states[-1].attempts == 1
    assert [status_name(s.status) for s in await client.watch(submitted.id)] == ["VERIFIED"]  # already final


async def test_12_slow_payer_past_the_deadline_is_deadline_exceeded_and_completes_later(
    make_app: MakeApp, stedi: StediStandIn
) -> None:
    app = await make_app(eligibility_retry_budget_seconds=10)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = client_for(app, channel)
        exc = await client.check_error(inquiry(*KIM_SLOW), timeout=0.5)  # the payer takes 1 s
        assert exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        (row,) = (await client.list(patient_id="patient-1")).checks
        states = await client.watch(row.id)
        assert status_name(states[-1].status) == "VERIFIED"
        final = await client.get(row.id)
        assert final.summary.plan_name == "CHOICE PPO 2500" and final.attempts == 2  # cut short, then the worker
        stats = await client.stats()
        assert (stats.total, stats.pending, stats.verified) == (1, 0, 1)


async def test_server_stopped_mid_check_hands_it_over_and_the_next_start_completes_it(
    make_app: MakeApp, stedi: StediStandIn
) -> None:
    stedi.faults.set_latency(30.0, ELIGIBILITY_PATH)
    first = await make_app(eligibility_retry_budget_seconds=30)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
        call = asyncio.ensure_future(client_for(first, channel).check(inquiry(*RIVERA), timeout=30))
        await wait_until(lambda: stedi.faults.in_flight[ELIGIBILITY_PATH] == 1)
        await first.stop(grace=0)
        with pytest.raises(grpc.aio.AioRpcError):
            await call
    stedi.faults.set_latency(0.0, ELIGIBILITY_PATH)
    second = await make_app(eligibility_retry_budget_seconds=30)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as channel:
        client = client_for(second, channel)
        (row,) = (await client.list()).checks
        final = await client.wait_final(row.id)
        assert status_name(final.status) == "VERIFIED" and final.summary.plan_name == "CHOICE PPO 2500"


def _repository(engine: AsyncEngine, *, clock_offset: timedelta = timedelta()) -> EligibilityRepository:
    return EligibilityRepository(engine, page_token_secret=b"0" * 32,
                                 sealer=Sealer(Keyring.parse(DATA_KEY, where="tests")),
                                 clock=lambda: datetime.now(UTC) - clock_offset)


def _payload(member: tuple[str, str, str, str]) -> dict[str, object]:
    member_id, first, last, dob = member
    inq = EligibilityInquiry(payer_id="SBX01", npi="1999999984", provider_organization_name="Riverbend",
                             subscriber=Person(member_id, first, last, date_of_birth=dt.date.fromisoformat(dob)))
    return build_stedi_request(inq, tenant_id="t", today=datetime.now(UTC).date())


async def test_restart_with_pending_rows_completes_them_and_fails_those_past_the_budget(
    make_app: MakeApp, app_settings: Callable[..., Settings], tenant: str
) -> None:
    # stale after 2 s, budget 1.5 s: rows older than 3.5 s are failed, SYNC rows between 2 s and 3.5 s resumed.
    settings = app_settings(stale_pending_seconds=2)
    await migrate(settings.effective_database_url)
    engine = create_engine_for(settings.effective_database_url)
    orphaned = _repository(engine, clock_offset=timedelta(seconds=2.2))
    try:
        # Its process died mid-call; its retry budget is spent, yet it was never answered: one more attempt.
        orphan = await orphaned.create_pending(tenant, payer_id="SBX01", request_payload=_payload(RIVERA),
                                               mode=CheckMode.SYNC)
        # Submitted, never picked up (no worker ran): due at once.
        queued = await _repository(engine).create_pending(tenant, payer_id="SBX01",
                                                          request_payload=_payload(RIVERA), mode=CheckMode.ASYNC)
        # Pending for an hour: past stale + budget.
        ancient = await _repository(engine, clock_offset=timedelta(hours=1)).create_pending(
            tenant, payer_id="SBX01", request_payload=_payload(RIVERA), mode=CheckMode.SYNC)
    finally:
        await engine.dispose()
    app = await make_app(stale_pending_seconds=2)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = client_for(app, channel)
        for record in (orphan, queued):
            final = await client.wait_final(record.id)
            assert (status_name(final.status), final.attempts) == ("VERIFIED", 1)
        dead = await client.get(ancient.id)
        assert (status_name(dead.status), dead.failure_reason, dead.attempts) == ("FAILED", "STALE_PENDING", 0)
        assert (await client.stats()).pending == 0


async def test_a_claim_whose_answer_was_lost_is_taken_back_at_once_not_after_the_lease(
    make_app: MakeApp, tenant: str
) -> None:
    """The worker's claim commits but its answer never reaches the worker (a cut connection, a store timeout): the
    check is leased to it for the whole lease (85 s), yet it is done within seconds."""
    app = await make_app(worker_poll_seconds=60)  # the worker claims when woken (or once a minute): no race here
    assert app.eligibility is not None and app.eligibility.worker is not None
    worker, repo = app.eligibility.worker, app.eligibility.checks.runner.repo
    queued = await repo.create_pending(tenant, payer_id="SBX01", request_payload=_payload(RIVERA), mode=CheckMode.ASYNC)
    [lost] = await repo.claim_due(worker.worker_id, 1, lease_seconds=85)  # the claim whose answer was lost
    assert lost.id == queued.id and lost.lease_until is not None
    worker.wake()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        final = await asyncio.wait_for(client_for(app, channel).wait_final(queued.id), timeout=30)
    assert (status_name(final.status), final.attempts) == ("VERIFIED", 1)


async def test_200_concurrent_checks_each_end_final_with_a_response_row(
    make_app: MakeApp, tenant: str
) -> None:
    el_app = await make_app(eligibility_retry_budget_seconds=60)  # queueing for a Stedi slot counts against it
    async with grpc.aio.insecure_channel(f"127.0.0.1:{el_app.port}") as channel:
        await _two_hundred(client_for(el_app, channel), el_app, tenant)


async def _two_hundred(client: Client, el_app: Application, tenant: str) -> None:
    checks = await asyncio.gather(*(client.check(inquiry(*RIVERA, patient_id=f"p-{i}"), timeout=60)
                                    for i in range(200)))
    assert {status_name(c.status) for c in checks} == {"VERIFIED"}
    assert len({c.id for c in checks}) == 200
    stats = await client.stats()
    assert (stats.total, stats.verified, stats.pending) == (200, 200, 0)
    engine = create_engine_for(el_app.settings.effective_database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT r.status, count(*), count(p.request_id), min(r.attempts), max(r.attempts) "
                "FROM eligibility_requests r LEFT JOIN eligibility_responses p ON p.request_id = r.id "
                "WHERE r.tenant_id = :tenant GROUP BY r.status"), {"tenant": tenant})).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [("VERIFIED", 200, 200, 1, 1)]


# ---------------------------------------------------------------- two server processes sharing PostgreSQL


class ServerProcess:
    """A second server process (`python -m server`) sharing the database; its port is read from its log."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.port: int | None = None
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if self.port is None and (m := re.search(r"serving gRPC on [\d.]+:(\d+)", line)):
                self.port = int(m.group(1))

    async def started(self, timeout: float = 30) -> int:
        end = time.monotonic() + timeout
        while self.port is None:
            if self.proc.returncode is not None or time.monotonic() > end:
                raise AssertionError("second server did not start:\n" + "\n".join(self.lines[-30:]))
            await asyncio.sleep(0.05)
        return self.port

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._reader


@contextlib.asynccontextmanager
async def start_server_process(settings: Settings, data_dir: Path) -> AsyncIterator[ServerProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSTEST_") and k not in ("DATABASE_URL",)}
    env.update({
        "COSTEST_PORT": "0",
        "COSTEST_DATA_DIR": str(data_dir),
        "DATABASE_URL": settings.database_url or "",
        "COSTEST_STEDI_URL": settings.stedi_url or "",
        "COSTEST_STEDI_API_KEY": settings.stedi_api_key.get_secret_value() if settings.stedi_api_key else "",
        "COSTEST_AUTH_HS256_SECRET": settings.auth_hs256_secret.get_secret_value() if settings.auth_hs256_secret
        else "",
        "COSTEST_AUTH_ISSUER": settings.auth_issuer or "",
        "COSTEST_AUTH_AUDIENCE": settings.auth_audience or "",
        "COSTEST_WORKER_POLL_SECONDS": str(settings.worker_poll_seconds),
        "COSTEST_ELIGIBILITY_RETRY_BUDGET_SECONDS": str(settings.eligibility_retry_budget_seconds),
        "COSTEST_LOG_LEVEL": "INFO",
        "COSTEST_DATA_KEY": settings.data_key.get_secret_value() if settings.data_key else "",
    })
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", cwd=ROOT, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    server = ServerProcess(proc)
    try:
        yield server
    finally:
        await server.stop()


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_two_processes_share_the_work_and_watch_sees_the_other_process(
    make_app: MakeApp, stedi: StediStandIn, tmp_path: Path
) -> None:
    from tests.eligibility_service.test_api import AUD, ISS, SECRET, token

    tenant = f"tenant-two-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    stedi.faults.set_latency(0.2, ELIGIBILITY_PATH)
    here = await make_app(auth_hs256_secret=SECRET, auth_issuer=ISS, auth_audience=AUD)
    async with start_server_process(here.settings, tmp_path / "second") as other:
        other_port = await other.started()
        async with (grpc.aio.insecure_channel(f"127.0.0.1:{here.port}") as ch_a,
                    grpc.aio.insecure_channel(f"127.0.0.1:{other_port}") as ch_b):
            a, b = Client(ch_a, token(tenant)), Client(ch_b, token(tenant))
            # Submitted on one process, watched on the other: the change is seen across processes.
            submitted = await a.submit(inquiry(*RIVERA, patient_id="watched"))
            states = await b.watch(submitted.id)
            assert status_name(states[0].status) == "PENDING" and status_name(states[-1].status) == "VERIFIED"
            # Both workers claim from one table: every check is done exactly once.
            ids = [(await (a if i % 2 else b).submit(inquiry(*RIVERA, patient_id=f"p{i}"))).id for i in range(20)]
            finals = [await (b if i % 2 else a).wait_final(check_id) for i, check_id in enumerate(ids)]
            assert {status_name(f.status) for f in finals} == {"VERIFIED"}
            assert {f.attempts for f in finals} == {1}
            assert stedi.faults.seen[ELIGIBILITY_PATH] == 21
            assert (await b.stats()).total == 21 and (await a.stats()).pending == 0
    assert any("eligibility worker" in line and "started" in line for line in other.lines)


async def test_checks_older_than_the_freshness_window_read_expired(
    make_app: MakeApp, app_settings: Callable[..., Settings], tenant: str
) -> None:
    settings = app_settings()
    await migrate(settings.effective_database_url)
    engine = create_engine_for(settings.effective_database_url)
    try:
        old = _repository(engine, clock_offset=timedelta(days=31))
        stale = await old.create_pending(tenant, payer_id="SBX01", request_payload=_payload(RIVERA))
        assert await old.complete(tenant, stale.id, Completion(CheckStatus.VERIFIED, http_status=200))
    finally:
        await engine.dispose()
    app = await make_app()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = client_for(app, channel)
        fresh = await client.check(inquiry(*RIVERA))
        assert status_name((await client.get(stale.id)).status) == "EXPIRED"
        assert status_name(fresh.status) == "VERIFIED"
        expired = await client.list(status=pb.ELIGIBILITY_STATUS_EXPIRED)
        assert [c.id for c in expired.checks] == [stale.id]
        stats = await client.stats()
        assert (stats.total, stats.verified, stats.expired) == (2, 1, 1)
        assert [status_name(s.status) for s in await client.watch(stale.id)] == ["EXPIRED"]  # final


async def test_a_cancelled_watch_leaves_the_check_running(client: Client, stedi: StediStandIn) -> None:
    stedi.faults.set_latency(0.5, ELIGIBILITY_PATH)
    submitted = await client.submit(inquiry(*RIVERA))
    call = client.stub.WatchEligibilityCheck(pb.WatchEligibilityCheckRequest(id=submitted.id), metadata=client.md)
    first = await call.read()
    assert isinstance(first, pb.WatchEligibilityCheckResponse)
    assert status_name(first.check.status) == "PENDING"
    call.cancel()
    final = await client.wait_final(submitted.id)
    assert status_name(final.status) == "VERIFIED"


async def test_unreachable_clearinghouse_is_failed_after_three_tries(make_app: MakeApp) -> None:
    # nothing listens on port 1; the budget has room for three tries and their waits (1 s, 4 s)
    app = await make_app(stedi_url="http://127.0.0.1:1", eligibility_retry_budget_seconds=6)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = client_for(app, channel)
        exc = await client.check_error(inquiry(*RIVERA))
        assert exc.code() is grpc.StatusCode.UNAVAILABLE
        (row,) = (await client.list()).checks
        assert (status_name(row.status), row.failure_reason, row.attempts) == (
            "FAILED", "STEDI_UNAVAILABLE (connection error)", 3)


async def test_a_submitted_check_comes_back_after_a_retry_after_longer_than_its_step(
    make_app: MakeApp, stedi: StediStandIn
) -> None:
    """The clearinghouse says "retry in 2 s" and the worker's step (here 1 s, in production the 70 s attempt) cannot
    wait that long: the check is rescheduled for then, within its budget; not called again at once (which would
    hammer a throttling clearinghouse), nor failed while its budget lasts."""
    app = await make_app(eligibility_retry_budget_seconds=20, worker_poll_seconds=0.05)
    assert app.eligibility is not None and app.eligibility.worker is not None
    app.eligibility.worker._attempt_seconds = 1.0  # one step's deadline; the lease stays as it was
    stedi.faults.script(ELIGIBILITY_PATH, Fault(status=503, retry_after="2"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = client_for(app, channel)
        submitted = await client.submit(inquiry(*RIVERA))
        final = (await client.watch(submitted.id, timeout=20))[-1]
    assert status_name(final.status) == "VERIFIED", final.failure_reason
    assert final.attempts == 2 and stedi.faults.seen[ELIGIBILITY_PATH] == 2
    waited = final.completed_at.ToDatetime() - final.requested_at.ToDatetime()
    assert waited.total_seconds() >= 2.0
