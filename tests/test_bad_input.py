"""Every bad input gets a clear, small answer, before any I/O (issue 9 §4), over a real socket.

Control characters and over-long strings, malformed bytes, too many violations, oversized requests, too many
providers, implausible dates; and the error map's answers for an open breaker (RetryInfo) and a full local pool.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import pytest_asyncio
from costestimator.v1 import benefit_service_pb2 as bpb
from costestimator.v1 import benefit_service_pb2_grpc
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import eligibility_service_pb2 as pb
from costestimator.v1 import eligibility_service_pb2_grpc as pb_grpc
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from google.type import date_pb2, money_pb2
from grpc_status import rpc_status

from server.api.errors import map_exception, status_for
from server.app import Application
from server.clients.errors import CircuitOpen, LocalPoolExhausted
from server.sandbox.faults import Fault
from tests.conftest import auth, payer_sandbox
from tests.eligibility_service.conftest import pg_database  # noqa: F401 - fixture: a private PostgreSQL database
from tests.eligibility_service.helpers import RIVERA, UNAVAILABLE, inquiry

ACTIVE = "5~186103331+10+7+20260101+793854+8A+829"
BENEFITS_ROUTE = "/benefits/v3/retrieve"
DEFAULT_TRAILER_LIMIT = 8 * 1024  # what a default grpc client accepts as response metadata


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("pg_database") if request.param == "postgres" else None


@pytest_asyncio.fixture
async def served(start_app: Callable[..., Any], database_url: str | None) -> Application:
    app: Application = await start_app(database_url=database_url)
    return app


@pytest_asyncio.fixture
async def channel(served: Application) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as ch:
        yield ch


def violations(exc: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None, "no rich error details"
    br = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(br)
    return [(v.field, v.description) for v in br.field_violations]


async def refused(call: Any, *args: Any, **kwargs: Any) -> grpc.aio.AioRpcError:
    try:
        result = call(*args, **kwargs)
        if hasattr(result, "__aiter__"):
            async for _ in result:
                pass
        else:
            await result
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError("the call succeeded")


def trailer_bytes(exc: grpc.aio.AioRpcError) -> int:
    return sum(len(k) + len(v) for k, v in exc.trailing_metadata() or ())


def eligibility_requests(text: str) -> list[tuple[str, Any]]:
    """One request per eligibility RPC, each with `text` in a string that reaches the database."""
    return [
        ("CheckEligibility", pb.CheckEligibilityRequest(inquiry=inquiry(*RIVERA, policy_id=text))),
        ("SubmitEligibilityCheck", pb.SubmitEligibilityCheckRequest(inquiry=inquiry(*RIVERA, patient_id=text))),
        ("GetEligibilityCheck", pb.GetEligibilityCheckRequest(id=text)),
        ("WatchEligibilityCheck", pb.WatchEligibilityCheckRequest(id=text)),
        ("ListEligibilityChecks", pb.ListEligibilityChecksRequest(policy_id=text)),
        ("ListEligibilityChecks", pb.ListEligibilityChecksRequest(patient_id=text)),
        ("GetEligibilityStats", pb.GetEligibilityStatsRequest(policy_id=text)),
    ]


# ---------------------------------------------------------------- strings


@pytest.mark.parametrize("text", ["policy\x00one", "a\x07b", "line\nbreak", "rtl\u202eoverride"],
                         ids=["nul", "bell", "newline", "bidi-override"])
async def test_control_characters_are_invalid_argument_on_every_eligibility_rpc(
    served: Application, channel: grpc.aio.Channel, text: str
) -> None:
    stub = pb_grpc.EligibilityServiceStub(channel)
    for rpc, request in eligibility_requests(text):
        exc = await refused(getattr(stub, rpc), request, metadata=auth(served), timeout=10)
        assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT, (rpc, exc.code(), exc.details())
        fields = violations(exc)
        assert any("control" in d for _, d in fields), (rpc, fields)
        assert text not in repr(fields) and text not in (exc.details() or "")
    stats = await stub.GetEligibilityStats(pb.GetEligibilityStatsRequest(), metadata=auth(served), timeout=10)
    assert stats.total == 0  # refused before anything was stored


async def test_strings_longer_than_their_columns_are_invalid_argument(
    served: Application, channel: grpc.aio.Channel
) -> None:
    stub = pb_grpc.EligibilityServiceStub(channel)
    cases = [
        ("GetEligibilityCheck", pb.GetEligibilityCheckRequest(id="x" * 37), "id", 36),
        ("WatchEligibilityCheck", pb.WatchEligibilityCheckRequest(id="x" * 37), "id", 36),
        ("ListEligibilityChecks", pb.ListEligibilityChecksRequest(policy_id="p" * 129), "policy_id", 128),
        ("GetEligibilityStats", pb.GetEligibilityStatsRequest(policy_id="p" * 129), "policy_id", 128),
        ("CheckEligibility", pb.CheckEligibilityRequest(inquiry=inquiry(*RIVERA, payer="P" * 81)),
         "inquiry.payer_id", 80),
        ("SubmitEligibilityCheck", pb.SubmitEligibilityCheckRequest(inquiry=inquiry(*RIVERA, patient_id="p" * 129)),
         "inquiry.patient_id", 128),
    ]
    for rpc, request, field, limit in cases:
        exc = await refused(getattr(stub, rpc), request, metadata=auth(served), timeout=10)
        assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT, (rpc, exc.details())
        assert (field, f"must be at most {limit} characters") in violations(exc), rpc
    # At the limit the id is fine: the lookup runs and simply finds nothing.
    exc = await refused(stub.GetEligibilityCheck, pb.GetEligibilityCheckRequest(id="x" * 36),
                        metadata=auth(served), timeout=10)
    assert exc.code() is grpc.StatusCode.NOT_FOUND


async def test_control_characters_in_estimate_and_benefit_requests(served: Application,
                                                                   channel: grpc.aio.Channel) -> None:
    estimate = epb.EstimateRequest(
        product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL, member=cpb.Member(membership_id=ACTIVE, plan_identifier="3~"),
        service=epb.RequestedService(code="99214", code_type=cpb.CODE_TYPE_CPT4),
        providers=[epb.Provider(provider_id="a", display_name="Dr\x00Who",
                                network_category=cpb.NETWORK_CATEGORY_IN_NETWORK,
                                negotiated_amount=money_pb2.Money(currency_code="USD", units=100))])
    exc = await refused(estimate_service_pb2_grpc.EstimateServiceStub(channel).Estimate, estimate,
                        metadata=auth(served), timeout=10)
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert ("providers[0].display_name", "must not contain control or format characters") in violations(exc)
    calc = epb.CalculateRequest(service_amount=money_pb2.Money(units=1, currency_code="US\x00"))
    exc = await refused(estimate_service_pb2_grpc.EstimateServiceStub(channel).Calculate, calc,
                        metadata=auth(served), timeout=10)
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
    benefit = bpb.GetBenefitRequest(member=cpb.Member(membership_id=ACTIVE, plan_identifier="3~\x00"))
    exc = await refused(benefit_service_pb2_grpc.BenefitServiceStub(channel).GetBenefit, benefit,
                        metadata=auth(served), timeout=10)
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert ("member.plan_identifier", "must not contain control or format characters") in violations(exc)


# ---------------------------------------------------------------- malformed bytes


RPCS = [
    ("/costestimator.v1.BenefitService/GetBenefit", False),
    ("/costestimator.v1.EstimateService/Estimate", False),
    ("/costestimator.v1.EstimateService/StreamEstimates", True),
    ("/costestimator.v1.EstimateService/Calculate", False),
    ("/costestimator.v1.EligibilityService/CheckEligibility", False),
    ("/costestimator.v1.EligibilityService/SubmitEligibilityCheck", False),
    ("/costestimator.v1.EligibilityService/GetEligibilityCheck", False),
    ("/costestimator.v1.EligibilityService/WatchEligibilityCheck", True),
    ("/costestimator.v1.EligibilityService/ListEligibilityChecks", False),
    ("/costestimator.v1.EligibilityService/GetEligibilityStats", False),
]
MALFORMED = [b"\xff\xff\xff\xff", b"\x0a\x05ab", b"\x0c", b"\x0b" * 5, b"\x08\xff"]


async def raw_call(channel: grpc.aio.Channel, method: str, streaming: bool, body: bytes,
                   metadata: Any) -> grpc.aio.AioRpcError | None:
    if streaming:
        call: Any = channel.unary_stream(method)(body, metadata=metadata, timeout=10)
        try:
            async for _ in call:
                pass
        except grpc.aio.AioRpcError as exc:
            return exc
        return None
    try:
        await channel.unary_unary(method)(body, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc
    return None


async def test_malformed_bytes_are_invalid_argument_without_a_traceback_per_request(
    served: Application, channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(3):
        for method, streaming in RPCS:
            for body in MALFORMED:
                exc = await raw_call(channel, method, streaming, body, auth(served))
                assert exc is not None, (method, body)
                assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT, (method, body, exc.code(), exc.details())
                assert "malformed request" in (exc.details() or "")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == []
    lines = [r for r in caplog.records if "malformed request body" in r.getMessage()]
    assert len(lines) <= 1  # 120 malformed requests, at most one (rate-limited) line


async def test_malformed_bytes_without_a_token_are_unauthenticated(
    served: Application, channel: grpc.aio.Channel
) -> None:
    exc = await raw_call(channel, RPCS[0][0], False, MALFORMED[0], None)
    assert exc is not None and exc.code() is grpc.StatusCode.UNAUTHENTICATED


# ---------------------------------------------------------------- sizes


def many_bad_providers(count: int, length: int) -> epb.EstimateRequest:
    bad = "x" * length
    return epb.EstimateRequest(
        product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL, member=cpb.Member(membership_id=ACTIVE, plan_identifier="3~"),
        service=epb.RequestedService(code="99214", code_type=cpb.CODE_TYPE_CPT4),
        providers=[epb.Provider(provider_id=f"{i}{bad}", display_name=bad, benefit_tier_name=bad,
                                provider_type_code=bad, provider_specialty_code=bad, provider_designation=bad,
                                negotiated_amount=money_pb2.Money(currency_code="EUR", units=-1, nanos=5))
                   for i in range(count)])


async def test_a_470kb_request_of_bad_fields_gets_a_small_readable_error(
    served: Application, channel: grpc.aio.Channel
) -> None:
    request = many_bad_providers(100, 780)
    assert 450_000 < request.ByteSize() < 1_000_000
    stub = estimate_service_pb2_grpc.EstimateServiceStub(channel)
    for call in (stub.Estimate, stub.StreamEstimates):
        exc = await refused(call, request, metadata=auth(served), timeout=20)
        assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT, exc.details()
        found = violations(exc)
        assert len(found) == 21
        assert found[-1][0] == "request" and found[-1][1].startswith("and ") and "more" in found[-1][1]
        assert trailer_bytes(exc) < 4096


async def test_requests_over_the_configured_size_are_resource_exhausted(start_app: Callable[..., Any]) -> None:
    app: Application = await start_app(max_request_bytes=64 * 1024)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        big = epb.CalculateRequest(coverage=cpb.Coverage(benefit_description="d" * 100_000))
        exc = await refused(stub.Calculate, big, metadata=auth(app), timeout=10)
        assert exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(64 * 1024) in (exc.details() or ""), exc.details()


async def test_the_default_request_size_limit_is_one_mib(served: Application, channel: grpc.aio.Channel) -> None:
    stub = estimate_service_pb2_grpc.EstimateServiceStub(channel)
    big = epb.CalculateRequest(coverage=cpb.Coverage(benefit_description="d" * (1024 * 1024 + 10)))
    exc = await refused(stub.Calculate, big, metadata=auth(served), timeout=10)
    assert exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1048576" in (exc.details() or "")


async def test_too_many_providers_are_refused_as_a_whole(start_app: Callable[..., Any]) -> None:
    app: Application = await start_app(max_providers=5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        for count in (6, 20_000):  # every provider also invalid: none of them is looked at
            exc = await refused(stub.Estimate, many_bad_providers(count, 1), metadata=auth(app), timeout=10)
            assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert violations(exc) == [("providers", "at most 5 items")]


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize("year", [1, 1899])
async def test_implausible_birth_dates_are_refused(served: Application, channel: grpc.aio.Channel,
                                                   year: int) -> None:
    inq = inquiry(*RIVERA)
    inq.subscriber.date_of_birth.CopyFrom(date_pb2.Date(year=year, month=4, day=12))
    exc = await refused(pb_grpc.EligibilityServiceStub(channel).CheckEligibility,
                        pb.CheckEligibilityRequest(inquiry=inq), metadata=auth(served), timeout=10)
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert ("inquiry.subscriber.date_of_birth", "must not be before 1900-01-01") in violations(exc)


async def test_malformed_dates_are_refused(served: Application, channel: grpc.aio.Channel) -> None:
    for bad in (date_pb2.Date(year=-5, month=1, day=1), date_pb2.Date(year=2020, month=13, day=1),
                date_pb2.Date(year=100000, month=1, day=1), date_pb2.Date(month=1, day=1)):
        inq = inquiry(*RIVERA)
        inq.date_of_service.CopyFrom(bad)
        exc = await refused(pb_grpc.EligibilityServiceStub(channel).CheckEligibility,
                            pb.CheckEligibilityRequest(inquiry=inq), metadata=auth(served), timeout=10)
        assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "inquiry.date_of_service" in dict(violations(exc))


# ---------------------------------------------------------------- the error map: breakers and pools


def retry_delay(exc: grpc.aio.AioRpcError) -> duration_pb2.Duration | None:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay
    return None


def benefit_request() -> bpb.GetBenefitRequest:
    return bpb.GetBenefitRequest(
        product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL, member=cpb.Member(membership_id=ACTIVE, plan_identifier="3~"),
        service_infos=[bpb.ServiceInfo(service_code=cpb.ServiceCode(code="99214", code_type=cpb.CODE_TYPE_CPT4))])


async def test_an_open_payer_breaker_answers_unavailable_with_retry_info(start_app: Callable[..., Any]) -> None:
    app: Application = await start_app(upstream_attempts=1, breaker_min_requests=1, breaker_ttl_seconds=30,
                                       upstream_backoff_seconds=0.01, upstream_backoff_max_seconds=0.02)
    payer_sandbox(app).faults.script(BENEFITS_ROUTE, *[Fault(status=503)] * 60)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = benefit_service_pb2_grpc.BenefitServiceStub(ch)
        delay = None
        for _ in range(40):  # whatever the breaker's policy, enough failures open it
            exc = await refused(stub.GetBenefit, benefit_request(), metadata=auth(app), timeout=10)
            assert exc.code() is grpc.StatusCode.UNAVAILABLE
            delay = retry_delay(exc)
            if delay is not None:
                break
        assert delay is not None, "the breaker never opened, or RetryInfo is missing"
        assert 0 < delay.ToNanoseconds() <= 30 * 10**9
        assert "circuit" in (exc.details() or "")


async def test_a_check_that_met_an_open_clearinghouse_breaker_carries_retry_info(
    start_app: Callable[..., Any]
) -> None:
    app: Application = await start_app(upstream_attempts=1, breaker_min_requests=1, breaker_ttl_seconds=30,
                                       upstream_backoff_seconds=0.01, upstream_backoff_max_seconds=0.02)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = pb_grpc.EligibilityServiceStub(ch)
        delay = None
        started = time.monotonic()
        while delay is None and time.monotonic() - started < 60:
            exc = await refused(stub.CheckEligibility, pb.CheckEligibilityRequest(inquiry=inquiry(*UNAVAILABLE)),
                                metadata=auth(app), timeout=20)
            assert exc.code() is grpc.StatusCode.UNAVAILABLE, exc.details()
            delay = retry_delay(exc)
        assert delay is not None, "no RetryInfo from a check that met an open breaker"
        assert 0 < delay.ToNanoseconds() <= 30 * 10**9


def test_circuit_open_and_pool_exhaustion_in_the_error_map() -> None:
    assert map_exception(LocalPoolExhausted("benefits")).code is grpc.StatusCode.RESOURCE_EXHAUSTED
    mapped = map_exception(CircuitOpen("stedi", 2.5))
    assert mapped.code is grpc.StatusCode.UNAVAILABLE
    assert [d.retry_delay.ToNanoseconds() for d in mapped.details] == [2_500_000_000]
    assert map_exception(CircuitOpen("stedi")).details == ()  # unknown time left: no RetryInfo
    try:
        try:
            raise CircuitOpen("stedi", 4.0)
        except CircuitOpen as cause:
            raise RuntimeError("wrapped") from cause  # an unmapped wrapper stays INTERNAL: no guess
    except RuntimeError as exc:
        assert map_exception(exc).code is grpc.StatusCode.INTERNAL
    assert status_for(LocalPoolExhausted("benefits")).code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
