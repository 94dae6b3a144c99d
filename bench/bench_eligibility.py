"""CheckEligibility throughput and latency over gRPC, on SQLite and on PostgreSQL, with a zero-latency Stedi.

Per backend: a fresh database, the real Application (auth, error map, store, Stedi client, worker) and the Stedi
stand-in answering at once (catalogue member #1, a full 271). Two runs per backend:
* sequential: one caller, checks one after another (pure per-check cost);
* 50 concurrent callers, closed loop: checks per second and p50/p99 latency.
The callers run in a separate process (the server, its store and the stand-in share the benchmark's process).
Every check writes its PENDING row, one attempt row and the final status + response in one transaction, exactly
as in production. PostgreSQL (COSTEST_TEST_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/
test) is skipped with a printed note when unreachable. Writes bench/results/eligibility.json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web
from costestimator.v1 import eligibility_service_pb2 as pb
from costestimator.v1 import eligibility_service_pb2_grpc as pb_grpc
from google.type import date_pb2
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from server.app import Application
from server.sandbox.stedi import StediSandboxConfig, create_stedi_app
from server.settings import load_settings

RESULTS = Path(__file__).resolve().parent / "results" / "eligibility.json"
CONCURRENCY = 50
SEQUENTIAL_CHECKS = 200
CONCURRENT_CHECKS = 2000
WARMUP = 50
KEY = "test_bench_key"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _inquiry(i: int) -> pb.EligibilityInquiry:
    return pb.EligibilityInquiry(
        payer_id="SBX01",
        provider=pb.ProviderIdentity(npi="1999999984", organization_name="Riverbend Family Medicine"),
        subscriber=pb.Person(member_id="SBX100001", first_name="Alex", last_name="Rivera",
                             date_of_birth=date_pb2.Date(year=1985, month=4, day=12)),
        policy_id=f"policy-{i % 20}",
        patient_id=f"patient-{i}",
    )


@asynccontextmanager
async def _stedi() -> AsyncIterator[str]:
    runner = web.AppRunner(create_stedi_app(StediSandboxConfig(api_keys=frozenset({KEY}))), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def _postgres() -> AsyncIterator[str | None]:
    """A private database, or None (with the reason printed) when PostgreSQL does not answer."""
    admin = os.environ.get("COSTEST_TEST_POSTGRES_URL") or DEFAULT_PG_URL
    admin = make_url(admin).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    name = f"costest_bench_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        try:
            async with asyncio.timeout(5), engine.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
            print(f"  note: PostgreSQL unreachable ({type(exc).__name__}); skipping the PostgreSQL rows")
            yield None
            return
        try:
            yield make_url(admin).set(database=name).render_as_string(hide_password=False)
        finally:
            async with engine.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


async def _load(port: int, token: str, total: int, callers: int, offset: int) -> dict[str, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.EligibilityServiceStub(channel)
        return await _run(stub, (("authorization", f"Bearer {token}"),), total, callers, offset)


async def _load_in_subprocess(port: int, token: str, total: int, callers: int, offset: int) -> dict[str, float]:
    """The callers run in their own process, so the server's event loop is not also the load generator's."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_eligibility", "--load", str(port), token, str(total), str(callers),
        str(offset), cwd=Path(__file__).resolve().parent.parent, stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed with exit code {proc.returncode}")
    result: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def _run(stub: Any, md: Any, total: int, callers: int, offset: int) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def caller() -> None:
        for i in counter:
            started = time.perf_counter()
            reply = await stub.CheckEligibility(pb.CheckEligibilityRequest(inquiry=_inquiry(offset + i)),
                                                metadata=md, timeout=60)
            latencies.append(time.perf_counter() - started)
            if reply.check.status != pb.ELIGIBILITY_STATUS_VERIFIED:
                raise AssertionError(f"check not verified: {reply.check.failure_reason}")

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "checks": total,
        "callers": callers,
        "seconds": round(wall, 3),
        "checks_per_second": round(total / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
    }


async def _bench_backend(backend: str, database_url: str | None, stedi_url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="costest-bench-") as data_dir:
        settings = load_settings(port=0, data_dir=Path(data_dir), database_url=database_url, stedi_url=stedi_url,
                                 stedi_api_key=KEY, grace_seconds=1.0)
        app = Application(settings, registry=CollectorRegistry())
        await app.start()
        try:
            token = app.dev_token or ""
            await _load_in_subprocess(app.port, token, WARMUP, 10, 0)
            sequential = await _load_in_subprocess(app.port, token, SEQUENTIAL_CHECKS, 1, WARMUP)
            concurrent = await _load_in_subprocess(app.port, token, CONCURRENT_CHECKS, CONCURRENCY,
                                                   WARMUP + SEQUENTIAL_CHECKS)
        finally:
            await app.stop(grace=0)
    return {"backend": backend, "sequential": sequential, "concurrent": concurrent,
            "stedi_concurrency": settings.stedi_concurrency}


async def _main() -> list[dict[str, Any]]:
    rows = []
    async with _stedi() as stedi_url:
        rows.append(await _bench_backend("sqlite", None, stedi_url))
        async with _postgres() as pg_url:
            if pg_url is not None:
                rows.append(await _bench_backend("postgresql", pg_url, stedi_url))
    return rows


def main() -> None:
    logging.disable(logging.WARNING)  # the service logs a line per check; the table is the output here
    try:
        rows = asyncio.run(_main())
    finally:
        logging.disable(logging.NOTSET)
    header = (f"{'backend':<11} {'mode':<16} {'checks':>6} {'checks/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    print(header)
    print("-" * len(header))
    for row in rows:
        for mode, label in (("sequential", "1 caller"), ("concurrent", f"{CONCURRENCY} callers")):
            r = row[mode]
            print(f"{row['backend']:<11} {label:<16} {r['checks']:>6} {r['checks_per_second']:>9} "
                  f"{r['p50_ms']:>8} {r['p99_ms']:>8}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "CheckEligibility over gRPC, zero-latency Stedi stand-in, catalogue member #1",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "results": rows,
    }, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--load":  # the load-generator subprocess
        port, token, total, callers, offset = sys.argv[2:]
        print(json.dumps(asyncio.run(_load(int(port), token, int(total), int(callers), int(offset)))))
    else:
        main()
