"""The Prometheus endpoint: RPCs started / in flight / stream messages, eligibility checks by final status, the
PENDING backlog and worker lag, clearinghouse attempts by outcome, breaker states, benefit cache hits and misses —
scraped over HTTP before and after real RPCs, and never a member's data in a label."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import grpc
from costestimator.v1 import benefit_service_pb2_grpc
from costestimator.v1 import eligibility_service_pb2 as elpb
from costestimator.v1 import eligibility_service_pb2_grpc
from costestimator.v1 import estimate_service_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import auth
from tests.eligibility_service.helpers import KIM_SLOW, RIVERA, inquiry
from tests.server_process import free_port
from tests.test_observability_tracing import ACTIVE, code_of, get_benefit, stream_estimates, sandbox_phi

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> tuple[str, Samples]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_with_rpcs_and_carry_no_member_data(start_app: Callable[..., Any]) -> None:
    port = free_port()
    app = await start_app(metrics_port=port, upstream_backoff_seconds=0.01, upstream_backoff_max_seconds=0.02,
                          worker_concurrency=1)
    _, before = await scrape(port)
    get_benefit_method = "/costestimator.v1.BenefitService/GetBenefit"
    stream_method = "/costestimator.v1.EstimateService/StreamEstimates"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        md = auth(app)
        benefits = benefit_service_pb2_grpc.BenefitServiceStub(ch)
        estimates = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        eligibility = eligibility_service_pb2_grpc.EligibilityServiceStub(ch)
        for _ in range(2):  # the same answer twice: a miss, then a hit
            await benefits.GetBenefit(get_benefit(ACTIVE), metadata=md, timeout=15)
        sent = [m async for m in estimates.StreamEstimates(stream_estimates(providers=3), metadata=md, timeout=15)]
        assert len(sent) == 3
        await eligibility.CheckEligibility(elpb.CheckEligibilityRequest(inquiry=inquiry(*RIVERA)), metadata=md,
                                           timeout=15)
        code = await code_of(eligibility.CheckEligibility(
            elpb.CheckEligibilityRequest(inquiry=inquiry("SBX503001", "Pat", "Quinn", "1980-01-01")),
            metadata=md, timeout=15))
        assert code is grpc.StatusCode.UNAVAILABLE
        # A slow payer (8 s) and one worker slot: the first submitted check is worked (PENDING), the second waits.
        assert app.eligibility is not None and app.eligibility.backlog is not None
        assert (await app.eligibility.backlog.sample()).pending == 0
        for _ in range(2):
            await eligibility.SubmitEligibilityCheck(elpb.SubmitEligibilityCheckRequest(inquiry=inquiry(*KIM_SLOW)),
                                                     metadata=md, timeout=15)
        await asyncio.sleep(0.5)
        backlog = await app.eligibility.backlog.sample()
        text, after = await scrape(port)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("costestimator_grpc_started_total", method=get_benefit_method) == 2
    assert moved("costestimator_grpc_handled_total", method=get_benefit_method, code="OK") == 2
    assert value(after, "costestimator_grpc_in_flight", method=get_benefit_method) == 0
    assert moved("costestimator_grpc_stream_messages_sent_total", method=stream_method) == 3
    assert moved("costestimator_benefit_cache_lookups_total", result="hit") >= 1
    assert moved("costestimator_benefit_cache_lookups_total", result="miss") >= 2  # GetBenefit's, the stream's
    assert moved("costestimator_eligibility_checks_completed_total", status="VERIFIED") == 1
    assert moved("costestimator_eligibility_checks_completed_total", status="FAILED") == 1
    assert moved("costestimator_upstream_attempts_total", upstream="stedi", outcome="success") >= 1
    assert moved("costestimator_upstream_attempts_total", upstream="stedi", outcome="retryable_status") >= 2
    assert backlog.pending == 2 and backlog.oldest_due_at is not None
    assert value(after, "costestimator_eligibility_pending") == 2
    assert 0.3 < value(after, "costestimator_eligibility_worker_lag_seconds") < 60
    assert after[("costestimator_upstream_circuit_state", (("upstream", "stedi"),))] == 0  # closed, and there
    leaked = [p for p in sandbox_phi() if p in text]
    assert leaked == []
