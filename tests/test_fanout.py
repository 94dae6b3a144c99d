"""Fan-out without steps: a request's distinct benefit calls all go out at once, bounded by the connection pool.

Functional, not a benchmark: with 100 distinct benefit requests, a fixed width of 16 took seven upstream latencies;
now every call is in flight together (the sandbox sees all 100 at once), so the stream ends in about one latency.
The latency is 500 ms rather than the bench's 100 ms: here the server, the sandbox and the client share one process
(and the CPU with whatever else runs), and their ~0.2-0.4 s of CPU for 100 round trips must stay small beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import grpc
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.rpc import code_pb2
from google.type import money_pb2

from server.app import Application
from server.settings import load_settings
from tests.conftest import auth, payer_sandbox

ACTIVE = "5~186103331+10+7+20260101+793854+8A+829"
BENEFITS = "/benefits/v3/retrieve"
LATENCY = 0.5


def hundred_keys() -> epb.StreamEstimatesRequest:
    return epb.StreamEstimatesRequest(
        member=cpb.Member(membership_id=ACTIVE, plan_identifier="3~"), product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL,
        service=epb.RequestedService(code="99214", code_type=cpb.CODE_TYPE_CPT4, place_of_service_code="11"),
        providers=[epb.Provider(provider_id=f"p{i:03d}", network_category=cpb.NETWORK_CATEGORY_IN_NETWORK,
                                benefit_tier_name="1", provider_specialty_code=f"{i:02d}",  # 100 distinct requests
                                negotiated_amount=money_pb2.Money(currency_code="USD", units=100 + i))
                   for i in range(100)])


async def _stream(app: Application, stub: Any) -> tuple[float, int]:
    """Run the 100-key stream, sampling the sandbox's in-flight benefit calls; (seconds, peak in flight)."""
    faults = payer_sandbox(app).faults
    peak = 0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, faults.in_flight[BENEFITS])
            await asyncio.sleep(0.002)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    count = 0
    async for reply in stub.StreamEstimates(hundred_keys(), metadata=auth(app), timeout=30):
        assert reply.estimate.status.code == code_pb2.OK, reply.estimate.status
        count += 1
    elapsed = time.perf_counter() - started
    done.set()
    await sampler
    assert count == 100
    return elapsed, peak


async def test_hundred_distinct_benefit_calls_take_about_one_latency(start_app: Callable[..., Any]) -> None:
    # cache off: every run makes its 100 upstream calls
    app: Application = await start_app(sandbox_latency_ms=int(LATENCY * 1000), benefit_cache_ttl_seconds=0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        await _stream(app, stub)  # token and the pool's connections
        runs = [await _stream(app, stub) for _ in range(3)]
    assert max(peak for _, peak in runs) == 100  # all at once: no 16-wide steps
    best = min(seconds for seconds, _ in runs)
    assert best < 2 * LATENCY, f"100 distinct benefit calls took {best:.3f}s at {LATENCY}s upstream latency"


def test_fanout_defaults_to_the_pool_size() -> None:
    assert load_settings(http_pool_size=37).effective_benefit_fanout == 37
    assert load_settings(http_pool_size=37, benefit_fanout=5).effective_benefit_fanout == 5


async def test_each_benefit_call_leaves_before_the_next_is_built(start_app: Callable[..., Any]) -> None:
    """Started all at once, 100 calls advanced in lockstep: none reached the upstream before the last was built, so
    the first answer came back the whole build time late. Now each leaves as soon as it is built: by the time the
    last call starts, the (same-loop) sandbox already holds earlier ones."""
    app: Application = await start_app(sandbox_latency_ms=int(LATENCY * 1000), benefit_cache_ttl_seconds=0)
    assert app.payer is not None
    clients = app.payer.clients
    faults = payer_sandbox(app).faults
    seen_at_start: list[int] = []  # benefit calls the sandbox held when each of ours started

    async def on_start(*_: Any) -> None:
        seen_at_start.append(faults.in_flight[BENEFITS])

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    trace.freeze()
    clients.pool[clients.config.benefits.name].session.trace_configs.append(trace)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        await _stream(app, stub)  # token and the pool's connections
        seen_at_start.clear()
        await _stream(app, stub)
    assert len(seen_at_start) == 100
    assert seen_at_start[0] == 0
    assert seen_at_start[-1] >= 50, f"the sandbox held {seen_at_start[-1]} calls when the last one started"
