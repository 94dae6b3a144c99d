"""COSTEST_WORKERS=2: two `python -m server` processes on one port, supervised, sharing the token and the work."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from costestimator.v1 import estimate_service_pb2, estimate_service_pb2_grpc
from google.protobuf import json_format
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from server.store.engine import redacted
from tests.conftest import PG_URL_ENV, postgres_url, unavailable
from tests.eligibility_service.helpers import RIVERA, Client, inquiry, status_name
from tests.server_process import ServerProcess, free_port, free_port_pair, run_server, server_env

CALCULATE = {  # the README's what-if example E11: no upstream call, so this measures the server alone
    "service_amount": {"currency_code": "USD", "units": 1180},
    "coverage": {"service_covered": "INDICATOR_YES", "copay": {"units": 35}, "coinsurance_percent": {"value": "20"},
                 "related_accumulators": [{"code": "Deductible", "level": "Individual"}]},
    "accumulators": [{"code": "Deductible", "level": "Individual", "network_indicator_code": "I",
                      "calculated_value": {"value": "400"}}],
}
FRESH = [("grpc.use_local_subchannel_pool", 1)]  # a new TCP connection per channel: the kernel picks a worker


@pytest_asyncio.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    """None: the SQLite file in the data dir; else a private PostgreSQL database, dropped afterwards."""
    if request.param == "sqlite":
        yield None
        return
    admin = make_url(postgres_url()).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    name = f"costest_workers_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        try:
            async with asyncio.timeout(5), engine.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001 - any failure means "unreachable" here
            unavailable("postgres", f"PostgreSQL unreachable at {redacted(str(admin))} ({type(exc).__name__}); "
                                    f"set {PG_URL_ENV} to use another server")
        yield admin.set(database=name).render_as_string(hide_password=False)
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


async def calculate_on_a_fresh_connection(port: int, token: str) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=FRESH) as channel:
        request = json_format.ParseDict(CALCULATE, estimate_service_pb2.CalculateRequest())
        await estimate_service_pb2_grpc.EstimateServiceStub(channel).Calculate(
            request, metadata=(("authorization", f"Bearer {token}"),), timeout=15)


async def submit_and_watch(port: int, token: str, patient: str) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=FRESH) as channel:
        client = Client(channel, token)
        submitted = await client.submit(inquiry(*RIVERA, patient_id=patient))
        states = await client.watch(submitted.id, timeout=60)
    assert status_name(states[-1].status) == "VERIFIED" and states[-1].attempts == 1
    return submitted.id


async def attempts_per_check(url: str, ids: list[str]) -> dict[str, int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT request_id, count(*) FROM eligibility_attempts GROUP BY request_id"))
            counts = {str(r[0]): int(r[1]) for r in rows}
    finally:
        await engine.dispose()
    return {i: counts.get(i, 0) for i in ids}


def calculate_count(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        body = response.read().decode()
    lines = [line for line in body.splitlines()
             if line.startswith("costestimator_grpc_handled_total{") and 'EstimateService/Calculate"' in line]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def served_by(log: str, method: str) -> list[int]:
    return [int(pid) for pid in re.findall(rf"\[pid (\d+)\] server\.access: {re.escape(method)} OK", log)]


async def wait_until(condition: object, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.1)


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


async def test_two_workers_serve_one_port_share_the_token_and_work_each_check_once(
    tmp_path: Path, database_url: str | None
) -> None:
    data_dir, port, metrics, console = tmp_path / "data", free_port(), free_port_pair(), free_port()
    settings = {"workers": "2", "worker_poll_seconds": "0.05", "metrics_port": str(metrics),
                "console_port": str(console)}
    if database_url:
        settings["DATABASE_URL"] = database_url
    supervisor = ServerProcess.start(server_env(data_dir, port, **settings), tmp_path / "server.log")
    try:
        await asyncio.to_thread(supervisor.wait_for_log, "2 workers serving on")
        match = re.search(r"2 workers serving on 127\.0\.0\.1:\d+ \(pids (\d+), (\d+)\)", supervisor.log)
        assert match is not None, supervisor.log[-2000:]
        workers = {int(match.group(1)), int(match.group(2))}
        assert ("SQLite serialises their writes" in supervisor.log) is (database_url is None)

        # One development token (one signing key in the data dir) for both workers; connections land on both.
        token = (data_dir / "dev-token").read_text().strip()
        for _ in range(24):
            await calculate_on_a_fresh_connection(port, token)
        method = "/costestimator.v1.EstimateService/Calculate"
        await wait_until(lambda: len(served_by(supervisor.log, method)) == 24)
        assert set(served_by(supervisor.log, method)) == workers
        served = [await asyncio.to_thread(calculate_count, metrics + i) for i in range(2)]
        assert all(n > 0 for n in served) and sum(served) == 24  # worker i: /metrics on COSTEST_METRICS_PORT + i

        # Both workers poll for submitted checks; each check is claimed, called and completed exactly once.
        ids = await asyncio.gather(*(submit_and_watch(port, token, f"patient-{i}") for i in range(6)))
        url = database_url or f"sqlite+aiosqlite:///{(data_dir / 'costestimator.sqlite3').resolve()}"
        assert await attempts_per_check(url, list(ids)) == {i: 1 for i in ids}

        if database_url is None:  # the rest does not depend on the database: once is enough on 2 shared cores
            await the_console_runs_once_in_the_supervisor(supervisor, console)
            workers = await refuses_a_second_start_and_replaces_a_crashed_worker(supervisor, workers, token, tmp_path)
    finally:
        code = await asyncio.to_thread(supervisor.stop)
    assert code == 0, supervisor.log[-3000:]
    assert len(workers) == 2 and not any(alive(pid) for pid in workers)
    assert supervisor.log.count("draining in-flight RPCs") >= 2


async def the_console_runs_once_in_the_supervisor(supervisor: ServerProcess, console: int) -> None:
    """One web console for all workers, served by the supervisor, calling the shared port with the dev token."""
    line = f"web console on http://127.0.0.1:{console}/"
    try:
        await asyncio.to_thread(supervisor.wait_for_log, line, timeout=30)
    except AssertionError:  # say why: the console's own lines (a busy port is a warning, not a stop)
        raise AssertionError("\n".join(s for s in supervisor.log.splitlines() if "console" in s)) from None
    assert supervisor.log.count(line) == 1
    assert re.search(rf"\[pid {supervisor.process.pid}\] console\.server: web console on", supervisor.log)
    with urllib.request.urlopen(f"http://127.0.0.1:{console}/", timeout=10) as page:
        assert page.status == 200 and b"<html" in page.read()
    request = urllib.request.Request(
        f"http://127.0.0.1:{console}/costestimator.v1.EstimateService/Calculate", data=json.dumps(CALCULATE).encode(),
        headers={"content-type": "application/json", "connect-protocol-version": "1"}, method="POST")
    answer = await asyncio.to_thread(urllib.request.urlopen, request, timeout=15)
    assert answer.status == 200 and "memberPays" in json.loads(answer.read())["estimate"]


async def refuses_a_second_start_and_replaces_a_crashed_worker(
    supervisor: ServerProcess, workers: set[int], token: str, tmp_path: Path
) -> set[int]:
    """The running workers' pids afterwards."""
    port = supervisor.port
    # A second, independent start on the port is refused, single or multi-process.
    for extra in ({}, {"workers": "2"}):
        other = await asyncio.to_thread(run_server, server_env(tmp_path / "other", port, **extra))
        assert other.returncode == 2, other.stderr
        assert other.stderr.splitlines() == [
            f"costestimator: cannot start: 127.0.0.1:{port} is already in use (is another server running?)"]

    # A crashed worker is replaced; the port keeps serving.
    crashed = sorted(workers)[0]
    os.kill(crashed, signal.SIGKILL)
    await asyncio.to_thread(supervisor.wait_for_log, f"worker pid {crashed} exited with code -9: restarting")
    await asyncio.to_thread(supervisor.wait_for_log, "serving gRPC on", count=3)
    await calculate_on_a_fresh_connection(port, token)
    serving = {int(p) for p in re.findall(r"\[pid (\d+)\] server\.app: serving gRPC", supervisor.log)}
    assert len(serving) == 3 and workers - {crashed} < serving
    return serving - {crashed}


async def test_workers_that_fail_to_start_make_the_supervisor_exit_non_zero(tmp_path: Path) -> None:
    # An empty database with migrations off: every worker refuses to start (and says why).
    env = server_env(tmp_path / "data", free_port(), workers="2", migrate_on_start="false")
    result = await asyncio.to_thread(run_server, env, timeout=180)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "python -m server.store migrate" in result.stderr
    assert re.search(r"2 of 2 workers failed to start \(pid \d+ exited with code 2 before serving\)", result.stderr)
