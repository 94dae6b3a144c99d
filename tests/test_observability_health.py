"""Health: `List` answers every service, and EstimateService/BenefitService follow their upstreams' breakers
(NOT_SERVING while one is open, SERVING once it lets a probe through) while EligibilityService and "" stay up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from costestimator.v1 import benefit_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.api.grpc_server import SERVICE_NAMES
from server.sandbox.faults import Fault
from tests.conftest import auth, payer_sandbox
from tests.test_observability_tracing import ACTIVE, code_of, get_benefit

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
BENEFIT, ESTIMATE, ELIGIBILITY = (
    "costestimator.v1.BenefitService", "costestimator.v1.EstimateService", "costestimator.v1.EligibilityService")


async def statuses(stub: Any) -> dict[str, int]:
    reply = await stub.List(health_pb2.HealthListRequest(), timeout=5)  # type: ignore[attr-defined]
    return {name: response.status for name, response in reply.statuses.items()}


async def wait_for(stub: Any, want: Mapping[str, int], timeout: float = 10.0) -> dict[str, int]:
    end = time.monotonic() + timeout
    while True:
        got = await statuses(stub)
        if all(got.get(k) == v for k, v in want.items()) or time.monotonic() > end:
            return got
        await asyncio.sleep(0.1)


async def test_list_and_services_follow_their_upstream_breakers(start_app: Callable[..., Any]) -> None:
    app = await start_app(upstream_attempts=1, breaker_min_requests=1, breaker_ttl_seconds=2,
                          benefit_cache_ttl_seconds=0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        health: Any = health_pb2_grpc.HealthStub(ch)
        all_up: dict[str, int] = {"": SERVING, **{name: SERVING for name in SERVICE_NAMES}}
        assert await statuses(health) == all_up

        payer_sandbox(app).faults.script("/benefits/v3/retrieve", Fault(status=503))
        benefits = benefit_service_pb2_grpc.BenefitServiceStub(ch)
        code = await code_of(benefits.GetBenefit(get_benefit(ACTIVE), metadata=auth(app), timeout=10))
        assert code is grpc.StatusCode.UNAVAILABLE  # one failure of one request: the benefits circuit opens
        down: dict[str, int] = {BENEFIT: NOT_SERVING, ESTIMATE: NOT_SERVING, ELIGIBILITY: SERVING, "": SERVING}
        assert await wait_for(health, down) == down
        check = await health.Check(health_pb2.HealthCheckRequest(service=ESTIMATE), timeout=5)
        assert check.status == NOT_SERVING

        # After the breaker's open time it lets a probe through (half-open): the services read SERVING again.
        assert await wait_for(health, all_up) == all_up
