"""GetBenefit end to end over a real socket: our server → our clients → the payer sandbox (real HTTP)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import pytest_asyncio
from costestimator.v1 import benefit_service_pb2 as bpb
from costestimator.v1 import benefit_service_pb2_grpc
from costestimator.v1 import common_pb2 as cpb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from server.app import Application
from server.sandbox.faults import Fault
from tests.conftest import auth, payer_sandbox
from tests.test_foundation import _grpcurl, _run

ACTIVE = "5~186103331+10+7+20260101+793854+8A+829"
INACTIVE = "5~186103339+10+7+20250101+793869+8A+899"
ROUTE = "/benefits/v3/retrieve"


def request(member: str = ACTIVE, **extra: Any) -> bpb.GetBenefitRequest:
    return bpb.GetBenefitRequest(
        product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL,
        member=cpb.Member(membership_id=member, plan_identifier="3~"),
        service_infos=[bpb.ServiceInfo(
            service_code=cpb.ServiceCode(code="99214", code_type=cpb.CODE_TYPE_CPT4),
            provider_type_codes=["HO"], place_of_service_codes=["11"], provider_specialty_codes=["08"])],
        **extra,
    )


@pytest_asyncio.fixture
async def payer_app(start_app: Callable[..., Any]) -> Application:
    """Fast retries and a low breaker threshold so resilience shows within a test's time."""
    app: Application = await start_app(upstream_backoff_seconds=0.01, upstream_backoff_max_seconds=0.05,
                                       breaker_min_requests=3, breaker_ttl_seconds=0.5, upstream_attempts=3)
    return app


@pytest_asyncio.fixture
async def stub(payer_app: Application) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{payer_app.port}") as ch:
        yield benefit_service_pb2_grpc.BenefitServiceStub(ch)


def faults(app: Application) -> Any:
    return payer_sandbox(app).faults


async def failure(stub: Any, app: Application, req: bpb.GetBenefitRequest, timeout: float = 10) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetBenefit(req, metadata=auth(app), timeout=timeout)
    return err.value


async def test_full_tree_and_filters(stub: Any, payer_app: Application) -> None:
    everything = await stub.GetBenefit(request(), metadata=auth(payer_app), timeout=10)
    benefits = everything.service_infos[0].benefits
    assert {(b.network_category, b.benefit_tier_name) for b in benefits} >= {
        (cpb.NETWORK_CATEGORY_IN_NETWORK, "1"), (cpb.NETWORK_CATEGORY_IN_NETWORK, "2"),
        (cpb.NETWORK_CATEGORY_OUT_OF_NETWORK, benefits[-1].benefit_tier_name)}
    tier1 = await stub.GetBenefit(request(network_category=cpb.NETWORK_CATEGORY_IN_NETWORK, benefit_tier_name="1"),
                                  metadata=auth(payer_app), timeout=10)
    (only,) = tier1.service_infos[0].benefits
    coverage = only.coverages[0]
    assert only.provider_designations == ["PCP"]
    assert (coverage.copay.units, coverage.copay.nanos, coverage.copay.currency_code) == (25, 0, "USD")
    assert coverage.service_covered == cpb.INDICATOR_YES
    assert {r.code for r in coverage.related_accumulators} >= {"OOP Max"}
    by_code = await stub.GetBenefit(request(benefit_code=only.benefit_code), metadata=auth(payer_app), timeout=10)
    assert {b.benefit_code for b in by_code.service_infos[0].benefits} == {only.benefit_code}


async def test_invalid_input_lists_every_field_without_echoing_phi(stub: Any, payer_app: Application) -> None:
    bad = bpb.GetBenefitRequest(
        product_type=99,  # type: ignore[arg-type]
        member=cpb.Member(membership_id="5~1861 03331", plan_identifier=""),
        service_infos=[bpb.ServiceInfo(service_code=cpb.ServiceCode(code="99214"), provider_type_codes=["H O"])],
    )
    err = await failure(stub, payer_app, bad)
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    detail = error_details_pb2.BadRequest()
    rpc_status.from_call(err).details[0].Unpack(detail)
    fields = {v.field for v in detail.field_violations}
    assert fields == {"product_type", "member.membership_id", "member.plan_identifier",
                      "service_infos[0].service_code.code_type", "service_infos[0].provider_type_codes[0]"}
    assert "1861" not in str(detail) and "1861" not in err.details()
    assert faults(payer_app).seen[ROUTE] == 0  # refused before any upstream call


async def test_member_not_found_is_fast_and_not_retried(stub: Any, payer_app: Application) -> None:
    started = time.monotonic()
    err = await failure(stub, payer_app, request(INACTIVE))
    assert err.code() is grpc.StatusCode.NOT_FOUND
    assert time.monotonic() - started < 1.0
    assert faults(payer_app).seen[ROUTE] == 1
    assert "5~" not in err.details()


async def test_other_400_is_invalid_argument_with_upstream_message(stub: Any, payer_app: Application) -> None:
    body = json.dumps({"httpCode": "400", "httpMessage": "Bad Request", "moreInformation": "serviceInfo invalid"})
    faults(payer_app).script(ROUTE, Fault(status=400, body=body))
    err = await failure(stub, payer_app, request())
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "serviceInfo invalid" in err.details()
    assert faults(payer_app).seen[ROUTE] == 1


async def test_5xx_is_retried_then_succeeds(stub: Any, payer_app: Application) -> None:
    faults(payer_app).script(ROUTE, Fault(status=500), Fault(status=502))
    reply = await stub.GetBenefit(request(), metadata=auth(payer_app), timeout=10)
    assert reply.service_infos[0].benefits
    assert faults(payer_app).seen[ROUTE] == 3


async def test_503_with_retry_after_is_honoured(stub: Any, payer_app: Application) -> None:
    faults(payer_app).script(ROUTE, Fault(status=503, retry_after="1"))
    started = time.monotonic()
    await stub.GetBenefit(request(), metadata=auth(payer_app), timeout=10)
    assert time.monotonic() - started >= 0.95


async def test_persistent_503_is_unavailable_naming_the_upstream(stub: Any, payer_app: Application) -> None:
    faults(payer_app).script(ROUTE, *[Fault(status=503)] * 3)
    err = await failure(stub, payer_app, request())
    assert err.code() is grpc.StatusCode.UNAVAILABLE and "benefits" in err.details()


async def test_malformed_body_is_unavailable(stub: Any, payer_app: Application) -> None:
    faults(payer_app).malformed_next(ROUTE)
    err = await failure(stub, payer_app, request())
    assert err.code() is grpc.StatusCode.UNAVAILABLE and "malformed" in err.details()


async def test_short_deadline_is_deadline_exceeded_with_no_attempt_after_it(stub: Any, payer_app: Application) -> None:
    faults(payer_app).set_latency(1.0, ROUTE)
    started = time.monotonic()
    err = await failure(stub, payer_app, request(), timeout=0.3)
    assert err.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 0.9
    seen = faults(payer_app).seen[ROUTE]
    await asyncio.sleep(0.5)
    assert faults(payer_app).seen[ROUTE] == seen == 1


async def test_breaker_opens_fails_fast_half_opens_and_closes(stub: Any, payer_app: Application) -> None:
    plan = faults(payer_app)
    plan.script(ROUTE, *[Fault(status=500)] * 9)  # three calls of three failed attempts: 3 of 3 requests failed
    for _ in range(3):
        assert (await failure(stub, payer_app, request())).code() is grpc.StatusCode.UNAVAILABLE
    seen = plan.seen[ROUTE]
    open_err = await failure(stub, payer_app, request())
    assert open_err.code() is grpc.StatusCode.UNAVAILABLE and "benefits" in open_err.details()
    assert plan.seen[ROUTE] == seen  # failed fast: the sandbox saw nothing
    assert payer_app.resources is not None
    assert await payer_app.resources.resilience.state("benefits") == "open"
    await asyncio.sleep(0.6)  # ttl passed: the next call probes
    reply = await stub.GetBenefit(request(), metadata=auth(payer_app), timeout=10)
    assert reply.service_infos[0].benefits
    assert await payer_app.resources.resilience.state("benefits") == "closed"
    gauge = payer_app.registry.get_sample_value("costestimator_upstream_circuit_state", {"upstream": "benefits"})
    assert gauge == 0


async def test_grpcurl_calls_get_benefit_on_the_default_run(app: Application) -> None:
    payload = json.dumps({
        "product_type": "BENEFIT_PRODUCT_TYPE_MEDICAL",
        "member": {"membership_id": ACTIVE, "plan_identifier": "3~"},
        "service_infos": [{"service_code": {"code": "99214", "code_type": "CODE_TYPE_CPT4"},
                           "place_of_service_codes": ["11"], "provider_specialty_codes": ["08"]}],
        "benefit_tier_name": "1", "network_category": "NETWORK_CATEGORY_IN_NETWORK",
    })
    result = await _run(_grpcurl(), "-plaintext", "-H", f"authorization: Bearer {app.dev_token}", "-d", payload,
                        f"127.0.0.1:{app.port}", "costestimator.v1.BenefitService/GetBenefit")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["service_infos"][0]["benefits"][0]["coverages"][0]["copay"] == {"currency_code": "USD",
                                                                                  "units": "25"}
