"""The error model (issue 10 §2): every non-OK status — of an RPC and of one provider inside an answer — carries a
`google.rpc.ErrorInfo` (a reason of the catalogue, domain `costestimator.v1`, metadata a program can use, never member
data) and `google.rpc.RetryInfo` where retrying later makes sense. Real servers, real sockets, the sandbox."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from costestimator.v1 import benefit_service_pb2_grpc
from costestimator.v1 import eligibility_service_pb2 as pb
from costestimator.v1 import eligibility_service_pb2_grpc as pb_grpc
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.api.errors import DOMAIN, REASONS, map_exception
from server.app import Application
from server.clients.errors import CircuitOpen
from server.sandbox.faults import Fault
from server.usecases.eligibility import FAILURE_ERROR_REASONS, EligibilityCircuitOpen
from tests.conftest import ROOT, auth, payer_sandbox
from tests.eligibility_service.helpers import QUINN_42, RIVERA, inquiry
from tests.test_bad_input import BENEFITS_ROUTE, benefit_request, refused
from tests.test_estimates import INACTIVE, estimate_request, provider

FINAL = {pb.ELIGIBILITY_STATUS_VERIFIED, pb.ELIGIBILITY_STATUS_FAILED, pb.ELIGIBILITY_STATUS_NOT_FOUND}


def details(status: status_pb2.Status) -> tuple[error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo | None]:
    """The status's ErrorInfo (exactly one, checked) and its RetryInfo if any."""
    infos, retries = [], []
    for packed in status.details:
        info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
        if packed.Unpack(info):
            infos.append(info)
        elif packed.Unpack(retry):
            retries.append(retry)
    assert len(infos) == 1, status
    assert infos[0].domain == DOMAIN
    entry = REASONS[infos[0].reason]
    assert status.code in {c.value[0] for c in (entry.code, *entry.also)}, status
    return infos[0], (retries[0] if retries else None)


def rpc_details(exc: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo | None]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None, f"no rich status: {exc.code()} {exc.details()}"
    return details(status)


# ---------------------------------------------------------------- the catalogue


def readme_reasons() -> dict[str, str]:
    """reason → code name, from the README's reason table."""
    section = (ROOT / "README.md").read_text().split("### Errors", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([A-Z_]+)` \| `([A-Z_]+)` \|", section, re.M))


def test_the_readme_lists_every_reason_with_its_code() -> None:
    assert readme_reasons() == {reason: r.code.name for reason, r in REASONS.items()}


def test_every_reason_the_code_declares_is_in_the_catalogue() -> None:
    declared: set[str] = set(FAILURE_ERROR_REASONS.values())
    pattern = re.compile(r'(?:\breason = |_m\(|_reject\(|abort_with_reason\(context, |\b(?:Check|Eligibility)\w+\()'
                         r'"([A-Z][A-Z_]+)"')
    for path in (ROOT / "server").rglob("*.py"):
        declared |= set(pattern.findall(path.read_text()))
    assert {"MEMBER_NOT_FOUND", "CIRCUIT_OPEN", "CHECK_DEFERRED", "UNKNOWN_PAYER", "CHECK_PENDING"} <= declared  # the scan works
    assert declared - REASONS.keys() == set()


def test_a_check_that_met_an_open_breaker_names_the_check_the_circuit_and_when_to_retry() -> None:
    mapped = map_exception(EligibilityCircuitOpen("check-1", "STEDI_UNAVAILABLE (circuit open)",
                                                  CircuitOpen("stedi", 3.0, circuit="stedi-payer:SBX01")))
    assert (mapped.code, mapped.reason) == (grpc.StatusCode.UNAVAILABLE, "CIRCUIT_OPEN")
    assert dict(mapped.metadata) == {"upstream": "stedi", "check_id": "check-1", "failure_reason": "STEDI_UNAVAILABLE",
                                     "circuit": "stedi-payer:SBX01"}
    assert [d.retry_delay.seconds for d in mapped.details] == [3]


# ---------------------------------------------------------------- RPC statuses over the socket


async def test_a_call_without_a_token_says_unauthenticated(app: Application) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = pb_grpc.EligibilityServiceStub(ch)
        exc = await refused(stub.GetEligibilityStats, pb.GetEligibilityStatsRequest(), timeout=10)
    assert exc.code() is grpc.StatusCode.UNAUTHENTICATED
    assert rpc_details(exc)[0].reason == "UNAUTHENTICATED"


async def test_bad_input_keeps_its_bad_request_first_and_adds_error_info(app: Application) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = pb_grpc.EligibilityServiceStub(ch)
        exc = await refused(stub.GetEligibilityCheck, pb.GetEligibilityCheckRequest(id=""), metadata=auth(app),
                            timeout=10)
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None and status.details[0].Is(error_details_pb2.BadRequest.DESCRIPTOR)
    assert details(status)[0].reason == "INVALID_REQUEST"


async def test_an_unknown_check_is_check_not_found(app: Application) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = pb_grpc.EligibilityServiceStub(ch)
        exc = await refused(stub.GetEligibilityCheck, pb.GetEligibilityCheckRequest(id="no-such-check"),
                            metadata=auth(app), timeout=10)
    assert exc.code() is grpc.StatusCode.NOT_FOUND
    assert rpc_details(exc)[0].reason == "CHECK_NOT_FOUND"


async def test_an_inactive_member_is_member_not_found_naming_the_upstream(app: Application) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        exc = await refused(stub.Estimate, estimate_request(provider("a"), member=INACTIVE), metadata=auth(app),
                            timeout=10)
    info, retry = rpc_details(exc)
    assert (exc.code(), info.reason, retry) == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND", None)
    assert info.metadata["upstream"] in ("benefits", "accumulators")
    assert "186103339" not in str(info)  # never member data


async def test_an_upstream_retry_after_becomes_retry_info(start_app: Callable[..., Any]) -> None:
    app: Application = await start_app(upstream_attempts=1)
    payer_sandbox(app).faults.script(BENEFITS_ROUTE, Fault(status=503, retry_after="7"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = benefit_service_pb2_grpc.BenefitServiceStub(ch)
        exc = await refused(stub.GetBenefit, benefit_request(), metadata=auth(app), timeout=10)
    info, retry = rpc_details(exc)
    assert (exc.code(), info.reason, dict(info.metadata)) == (
        grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAVAILABLE", {"upstream": "benefits"})
    assert retry is not None and retry.retry_delay.seconds == 7


# ---------------------------------------------------------------- statuses of one provider inside an answer


@pytest.mark.parametrize("streamed", [False, True], ids=["Estimate", "StreamEstimates"])
async def test_each_failing_provider_carries_error_info_with_its_provider_id(
    start_app: Callable[..., Any], streamed: bool
) -> None:
    app: Application = await start_app(upstream_attempts=1, benefit_fanout=1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        await stub.Estimate(estimate_request(provider("warm")), metadata=auth(app), timeout=10)  # token cached
        payer_sandbox(app).faults.reset()
        payer_sandbox(app).faults.script(BENEFITS_ROUTE, Fault(status=503, retry_after="5"))
        request = estimate_request(provider("busy", specialty="20"), provider("tier9", tier="9"), provider("ok"))
        if streamed:
            fields = {f.name: v for f, v in request.ListFields()}
            estimates = [r.estimate async for r in stub.StreamEstimates(
                epb.StreamEstimatesRequest(**fields), metadata=auth(app), timeout=10)]
        else:
            estimates = list((await stub.Estimate(request, metadata=auth(app), timeout=10)).estimates)
    by_id = {e.provider_id: e.status for e in estimates}
    assert by_id["ok"].code == code_pb2.OK and not by_id["ok"].details
    tier9, no_retry = details(by_id["tier9"])
    assert (tier9.reason, dict(tier9.metadata), no_retry) == ("NO_MATCHING_BENEFIT", {"provider_id": "tier9"}, None)
    busy, retry = details(by_id["busy"])
    assert (busy.reason, dict(busy.metadata)) == ("UPSTREAM_UNAVAILABLE", {"upstream": "benefits", "provider_id": "busy"})
    assert retry is not None and retry.retry_delay.seconds == 5


# ---------------------------------------------------------------- eligibility checks


async def test_an_unknown_payer_is_a_failed_precondition_and_the_check_is_stored_failed(app: Application) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = pb_grpc.EligibilityServiceStub(ch)
        exc = await refused(stub.CheckEligibility, pb.CheckEligibilityRequest(inquiry=inquiry(*RIVERA, payer="NOPE1")),
                            metadata=auth(app), timeout=15)
        info, retry = rpc_details(exc)
        assert (exc.code(), info.reason, retry) == (grpc.StatusCode.FAILED_PRECONDITION, "UNKNOWN_PAYER", None)
        assert (info.metadata["upstream"], info.metadata["failure_reason"]) == ("stedi", "PAYER_NOT_CONFIGURED")
        stored = (await stub.GetEligibilityCheck(pb.GetEligibilityCheckRequest(id=info.metadata["check_id"]),
                                                 metadata=auth(app), timeout=10)).check
    assert (stored.status, stored.failure_reason) == (pb.ELIGIBILITY_STATUS_FAILED, "PAYER_NOT_CONFIGURED (AAA 79)")
    assert not {"SBX100001", "Rivera", "RIVERA", "1985"} & set(re.split(r"\W+", str(info)))


async def test_a_check_without_a_caller_deadline_answers_within_the_default_one(
    start_app: Callable[..., Any]
) -> None:
    """AAA 42 (payer unable to respond) is retried for the whole budget; a caller without a deadline gets
    DEADLINE_EXCEEDED after COSTEST_UPSTREAM_DEFAULT_DEADLINE_SECONDS, and the check finishes in the background."""
    app: Application = await start_app(upstream_default_deadline_seconds=1.0, eligibility_retry_budget_seconds=4.0,
                                       worker_poll_seconds=0.1)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = pb_grpc.EligibilityServiceStub(ch)
        started = time.monotonic()
        exc = await refused(stub.CheckEligibility, pb.CheckEligibilityRequest(inquiry=inquiry(*QUINN_42)),
                            metadata=auth(app))  # no timeout
        elapsed = time.monotonic() - started
        info, _ = rpc_details(exc)
        assert (exc.code(), info.reason) == (grpc.StatusCode.DEADLINE_EXCEEDED, "CHECK_DEFERRED")
        assert elapsed < 2.5, elapsed
        check_id = info.metadata["check_id"]
        assert check_id in (exc.details() or "")
        end = time.monotonic() + 20
        while True:
            check = (await stub.GetEligibilityCheck(pb.GetEligibilityCheckRequest(id=check_id), metadata=auth(app),
                                                    timeout=10)).check
            if check.status in FINAL or time.monotonic() > end:
                break
            await asyncio.sleep(0.1)
    assert (check.status, check.failure_reason) == (pb.ELIGIBILITY_STATUS_FAILED, "PAYER_UNAVAILABLE (AAA 42)")
    assert check.attempts >= 3  # it went on after the answer, within the budget

