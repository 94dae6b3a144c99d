"""Issue 9 §2 over a real gRPC server: waiting for a local pooled connection is never an upstream failure.

Measured before the change: with 200 open streams and 2 s of payer latency, waits for a pooled connection
counted as upstream failures (aiohttp's `connect` timeout includes the pool wait), the payer breaker opened and
80 % of provider results came back UNAVAILABLE ("no answer within 10s"). Now each attempt takes a connection
slot bounded by the caller's deadline and the connect timeout is `sock_connect`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.rpc import code_pb2
from google.type import money_pb2

from server.app import Application
from tests.conftest import auth

ACTIVE = "5~186103331+10+7+20260101+793854+8A+829"
STREAMS = 200


def stream_request(n: int) -> epb.StreamEstimatesRequest:
    return epb.StreamEstimatesRequest(
        member=cpb.Member(membership_id=ACTIVE, plan_identifier="3~"),
        product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL,
        service=epb.RequestedService(code="99214", code_type=cpb.CODE_TYPE_CPT4, place_of_service_code="11"),
        providers=[epb.Provider(provider_id=f"p{n}", network_category=cpb.NETWORK_CATEGORY_IN_NETWORK,
                                benefit_tier_name="1", provider_specialty_code="08",
                                negotiated_amount=money_pb2.Money(currency_code="USD", units=180))],
    )


async def test_200_streams_against_a_2s_payer_never_fail_for_lack_of_a_local_connection(
    start_app: Callable[..., Any],
) -> None:
    # Default pool (100 connections per upstream) and default breaker; every payer call takes 2 s.
    app: Application = await start_app(sandbox_latency_ms=2000)
    assert app.resources is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(channel)

        async def one(n: int) -> list[Any]:
            # 200 benefit + 200 accumulator calls over 100 connections each: two waves of 2 s, plenty of room
            # in a 60 s deadline (the old code failed most of them after a 2 s "connect" wait).
            return [r async for r in stub.StreamEstimates(stream_request(n), metadata=auth(app), timeout=60)]

        results = await asyncio.gather(*[one(n) for n in range(STREAMS)], return_exceptions=True)

    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    statuses = [m.estimate.status for r in results for m in r]  # type: ignore[union-attr]
    assert len(statuses) == STREAMS
    failed = [s for s in statuses if s.code != code_pb2.OK]
    assert not failed, failed[:3]
    for upstream in ("benefits", "accumulators"):
        assert await app.resources.resilience.state(upstream) == "closed"
        breaker = app.resources.resilience.breakers.find(upstream)
        assert breaker is not None and breaker.counts()[1] == 0
    pool_waits = app.registry.get_sample_value(
        "costestimator_upstream_attempts_total", {"upstream": "benefits", "outcome": "pool_exhausted"})
    assert not pool_waits
