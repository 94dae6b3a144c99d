"""EstimateFromEligibility over a real socket: every worked example of estimate-from-eligibility.md §8
(EX-01..22), from a stored check id and from an inquiry run now; Calculate(derived_inputs) reproduces each point."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
import pytest_asyncio
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import eligibility_estimate_pb2 as xpb
from costestimator.v1 import eligibility_service_pb2 as pb
from google.rpc import code_pb2, error_details_pb2

from server.app import Application
from server.store import CheckStatus, Completion, EligibilityRepository, Keyring, Sealer
from tests.eligibility_estimate.examples import EXAMPLES, REFUSED, Example, Provider
from tests.eligibility_service.conftest import DATA_KEY, MakeApp
from tests.eligibility_service.estimate_helpers import (
    IDENTITIES,
    EstimateClient,
    assert_example,
    dollars,
    error_info,
    field_violations,
    request_for,
    sources,
)
from tests.eligibility_service.helpers import KIM_SLOW, RIVERA, UNAVAILABLE, Client, inquiry

@pytest_asyncio.fixture
async def estimates(el_app: Application) -> AsyncIterator[EstimateClient]:
    assert el_app.dev_token is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{el_app.port}") as channel:
        yield EstimateClient(channel, Client(channel, el_app.dev_token))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
async def test_worked_example_over_the_socket(estimates: EstimateClient, example: Example) -> None:
    for source in sources(example):
        await assert_example(estimates, example, source)


@pytest.mark.parametrize(("name", "source", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_inactive_coverage_is_refused(estimates: EstimateClient, name: str, source: str, reason: str) -> None:
    example = EXAMPLES[0]
    for how in ("check_id",) if source.startswith("fixture:") else ("check_id", "inquiry"):
        if how == "check_id":
            check_id = await estimates.stored_check(source)
            exc = await estimates.error(request_for(example, check_id=check_id))
        else:
            exc = await estimates.error(request_for(example, inquiry_now=IDENTITIES[source]))
        assert exc.code() is grpc.StatusCode.FAILED_PRECONDITION
        info = error_info(exc)
        assert (info.reason, info.domain) == (reason, "costestimator.v1") and info.metadata["check_id"]


async def test_ex19_invalid_request_names_each_field(estimates: EstimateClient) -> None:
    example = Example("EX-19", "SBX100001", "99999", None, (),
                      (Provider("a", "in", Decimal("100")), Provider("a", "in", Decimal("100"))), ())
    exc = await estimates.error(request_for(example, check_id="whatever"))
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(exc) == ["service.service_type_codes", "providers[1].provider_id"]


async def test_ex20_unknown_member_inquiry_is_member_not_found(estimates: EstimateClient) -> None:
    exc = await estimates.error(request_for(EXAMPLES[0], inquiry_now=IDENTITIES["SBX999999"]))
    assert exc.code() is grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(exc)
    assert info.reason == "MEMBER_NOT_FOUND" and info.metadata["check_id"]
    stored = await estimates.eligibility.get(info.metadata["check_id"])  # the inquiry was stored
    assert stored.id == info.metadata["check_id"]


async def test_ex21_payer_unable_to_respond_is_unavailable(estimates: EstimateClient) -> None:
    exc = await estimates.error(request_for(EXAMPLES[0], inquiry_now=IDENTITIES["SBX420001"]))
    assert exc.code() is grpc.StatusCode.UNAVAILABLE
    info = error_info(exc)
    assert info.reason == "PAYER_UNAVAILABLE" and info.metadata["check_id"]


async def test_ex22_pending_check_is_refused(estimates: EstimateClient, el_app: Application, tenant: str) -> None:
    assert el_app.eligibility is not None
    pending = await el_app.eligibility.checks.runner.repo.create_pending(
        tenant, payer_id="SBX01", request_payload={"tradingPartnerServiceId": "SBX01"})
    exc = await estimates.error(request_for(EXAMPLES[0], check_id=pending.id))
    assert exc.code() is grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(exc)
    assert (info.reason, info.metadata["check_id"]) == ("CHECK_PENDING", pending.id)


async def test_unknown_check_id_is_not_found(estimates: EstimateClient) -> None:
    exc = await estimates.error(request_for(EXAMPLES[0], check_id="no-such-check"))
    assert exc.code() is grpc.StatusCode.NOT_FOUND
    assert error_info(exc).reason == "CHECK_NOT_FOUND"


async def test_the_trace_prefixes_the_decisions(estimates: EstimateClient) -> None:
    check_id = await estimates.stored_check("SBX100001")
    reply = await estimates.estimate(request_for(EXAMPLES[4], check_id=check_id, trace=True))  # EX-05
    handlers = [line.handler for line in reply.estimates[0].estimate.trace]
    assert handlers[:2] == ["D2", "D3"] and "D9" in handlers and handlers[-1].startswith("H")


async def test_expired_check_is_refused(estimates: EstimateClient, el_app: Application, tenant: str) -> None:
    assert el_app.eligibility is not None
    old = EligibilityRepository(el_app.eligibility.engine, page_token_secret=b"0" * 32,
                                sealer=Sealer(Keyring.parse(DATA_KEY, where="tests")),
                                clock=lambda: datetime.now(UTC) - timedelta(days=31))
    stale = await old.create_pending(tenant, payer_id="SBX01", request_payload={"tradingPartnerServiceId": "SBX01"})
    assert await old.complete(tenant, stale.id, Completion(CheckStatus.VERIFIED, http_status=200))
    exc = await estimates.error(request_for(EXAMPLES[0], check_id=stale.id))
    assert exc.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert (error_info(exc).reason, error_info(exc).metadata["check_id"]) == ("CHECK_EXPIRED", stale.id)


@pytest.mark.parametrize(("identity", "code", "reason"), [
    (inquiry(*UNAVAILABLE), grpc.StatusCode.UNAVAILABLE, "CLEARINGHOUSE_UNAVAILABLE"),
    (inquiry(*RIVERA, payer="NOPE1"), grpc.StatusCode.FAILED_PRECONDITION, "CHECK_FAILED"),
], ids=["clearinghouse-503", "unknown-payer"])
async def test_failed_inquiries(estimates: EstimateClient, identity: pb.EligibilityInquiry, code: grpc.StatusCode,
                                reason: str) -> None:
    exc = await estimates.error(request_for(EXAMPLES[0], inquiry_now=identity))
    assert exc.code() is code
    info = error_info(exc)
    assert info.reason == reason and info.metadata["check_id"]
    stored = await estimates.eligibility.get(info.metadata["check_id"])
    assert stored.status == pb.ELIGIBILITY_STATUS_FAILED


async def test_inquiry_outliving_the_deadline_goes_on_in_the_background(make_app: MakeApp) -> None:
    app = await make_app(eligibility_retry_budget_seconds=30)  # the slow payer (1 s) must fit in the budget
    assert app.dev_token is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = EstimateClient(channel, Client(channel, app.dev_token))
        exc = await client.error(request_for(EXAMPLES[0], inquiry_now=inquiry(*KIM_SLOW)), timeout=0.6)
        assert exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        info = error_info(exc)
        assert info.reason == "CHECK_PENDING" and info.metadata["check_id"]
        final = await client.eligibility.wait_final(info.metadata["check_id"])
        assert final.status == pb.ELIGIBILITY_STATUS_VERIFIED
        reply = await client.estimate(request_for(EXAMPLES[0], check_id=final.id))  # now usable by id
        assert dollars(reply.estimates[0].estimate.member_pays) == EXAMPLES[0].expect[0].member


def _with_procedure(code: str, code_type: int) -> xpb.EstimateFromEligibilityRequest:
    """EX-08's request (99213, POS 11) with the procedure replaced and service type 98 given (so that a code
    without a D2 row adds no violation of its own)."""
    req = request_for(next(e for e in EXAMPLES if e.name == "EX-08"), check_id="whatever")
    req.service.procedure.code, req.service.procedure.code_type = code, code_type  # type: ignore[assignment]
    req.service.service_type_codes[:] = ["98"]
    return req


@pytest.mark.parametrize(("code", "code_type", "fields"), [
    ("99213", cpb.CODE_TYPE_ICD10, ["service.procedure.code_type"]),
    ("99213", cpb.CODE_TYPE_REVENUE, ["service.procedure.code_type"]),
    ("99213", cpb.CODE_TYPE_UNSPECIFIED, ["service.procedure.code_type"]),
    ("99213", 42, ["service.procedure.code_type"]),
    ("99213", cpb.CODE_TYPE_HCPCS, ["service.procedure.code"]),
    ("E0110", cpb.CODE_TYPE_CPT4, ["service.procedure.code"]),
    ("J06.9", cpb.CODE_TYPE_ICD10, ["service.procedure.code_type", "service.procedure.code"]),
], ids=["icd10", "revenue", "unspecified", "unknown-number", "cpt-code-typed-hcpcs", "hcpcs-code-typed-cpt",
        "icd10-diagnosis"])
async def test_procedure_code_type_is_validated(estimates: EstimateClient, code: str, code_type: int,
                                                fields: list[str]) -> None:
    """Only CPT4 / HCPCS procedures can be estimated, each in its own format (spec §1-2, ServiceCode.code_type)."""
    exc = await estimates.error(_with_procedure(code, code_type))
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(exc) == fields


async def test_cpt_and_hcpcs_procedures_are_accepted(estimates: EstimateClient) -> None:
    check_id = await estimates.stored_check("SBX200001")
    for code, code_type in (("99213", cpb.CODE_TYPE_CPT4), ("E0110", cpb.CODE_TYPE_HCPCS)):
        req = _with_procedure(code, code_type)
        req.check_id = check_id
        reply = await estimates.estimate(req)
        assert len(reply.estimates) == 1


async def test_per_provider_not_found_carries_error_info(estimates: EstimateClient) -> None:
    """EX-07 (pharmacy 88: nothing in network): NOT_FOUND with the ErrorInfo `Estimate` gives a provider that no
    benefit fits (reason NO_MATCHING_BENEFIT, domain costestimator.v1, metadata provider_id)."""
    example = next(e for e in EXAMPLES if e.name == "EX-07")
    example = replace(example, providers=(*example.providers, Provider("q", "in", Decimal("10.00"))),
                      expect=example.expect * 2)
    check_id = await estimates.stored_check(example.source)
    reply = await estimates.estimate(request_for(example, check_id=check_id))
    assert [e.estimate.provider_id for e in reply.estimates] == ["p", "q"]
    for item in reply.estimates:
        status = item.estimate.status
        assert status.code == code_pb2.NOT_FOUND and status.message
        infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
        assert len(infos) == 1
        info = error_details_pb2.ErrorInfo()
        infos[0].Unpack(info)
        assert (info.reason, info.domain) == ("NO_MATCHING_BENEFIT", "costestimator.v1")
        assert dict(info.metadata) == {"provider_id": item.estimate.provider_id}
