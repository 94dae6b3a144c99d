"""Member ids, names and dates of birth never reach a log line or an error message (DEBUG level, every logger)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from costestimator.v1 import benefit_service_pb2 as bpb
from costestimator.v1 import benefit_service_pb2_grpc
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.type import money_pb2

from server.sandbox.faults import Fault
from tests.conftest import auth, payer_sandbox

ACTIVE = "5~186103331+10+7+20260101+793854+8A+829"
INACTIVE = "5~186103339+10+7+20250101+793869+8A+899"
PHI_FRAGMENTS = ("186103331", "186103339", "793854", "793869")


def leaked(caplog: pytest.LogCaptureFixture, messages: list[str], fragments: tuple[str, ...]) -> list[str]:
    texts = [r.getMessage() for r in caplog.records] + [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    return [t for t in texts + messages if any(f in t for f in fragments)]


async def test_payer_rpcs_keep_member_ids_out_of_logs_and_errors(
        start_app: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # benefit cache off: the Estimate below must reach the faulted upstream, not GetBenefit's cached answer
    app = await start_app(upstream_backoff_seconds=0.01, upstream_backoff_max_seconds=0.02, benefit_cache_ttl_seconds=0)
    messages: list[str] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        benefits = benefit_service_pb2_grpc.BenefitServiceStub(ch)
        estimates = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        service = bpb.ServiceInfo(service_code=cpb.ServiceCode(code="99214", code_type=cpb.CODE_TYPE_CPT4))
        for member in (ACTIVE, INACTIVE, "5~186103331 bad id"):
            request = bpb.GetBenefitRequest(product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL, service_infos=[service],
                                            member=cpb.Member(membership_id=member, plan_identifier="3~"))
            try:
                await benefits.GetBenefit(request, metadata=auth(app), timeout=10)
            except grpc.aio.AioRpcError as exc:
                messages.append(exc.details() or "")
        payer_sandbox(app).faults.script("/benefits/v3/retrieve", Fault(status=400, body=f'{{"httpMessage": '
                                                                          f'"member {ACTIVE} unknown"}}'))
        estimate = epb.EstimateRequest(
            member=cpb.Member(membership_id=ACTIVE, plan_identifier="3~"), product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL,
            service=epb.RequestedService(code="99214", code_type=cpb.CODE_TYPE_CPT4),
            providers=[epb.Provider(provider_id="p", network_category=cpb.NETWORK_CATEGORY_IN_NETWORK,
                                    negotiated_amount=money_pb2.Money(units=100))])
        reply = await estimates.Estimate(estimate, metadata=auth(app), timeout=10)
        messages.extend(e.status.message for e in reply.estimates)
    assert any("rejected" in m for m in messages)  # the upstream 400 did come back, redacted
    assert leaked(caplog, messages, PHI_FRAGMENTS) == []
