"""Helpers of the EstimateFromEligibility RPC tests: requests for the worked examples, a typed client, and the
identities of the sandbox members and of the two captured fixtures (served by the Stedi stand-in)."""

from __future__ import annotations

from decimal import Decimal

import grpc
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import eligibility_estimate_pb2 as xpb
from costestimator.v1 import eligibility_service_pb2 as pb
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc as epb_grpc
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_status import rpc_status

from google.rpc import code_pb2

from tests.eligibility_estimate.examples import Example, Provider
from tests.eligibility_service.helpers import LEE, MORGAN, PATEL, RIVERA, SHAH, Client, inquiry

#: source of an example (a sandbox member id or a fixture) -> the inquiry that makes the stand-in answer it.
IDENTITIES: dict[str, pb.EligibilityInquiry] = {
    "SBX100001": inquiry(*RIVERA),
    "SBX200001": inquiry(*SHAH),
    "SBX300001": inquiry(*LEE),
    "SBX400001": inquiry(*PATEL),
    "SBX500001": inquiry(*MORGAN),
    "SBX999999": inquiry("SBX999999", "Alex", "Rivera", "1985-04-12"),
    "SBX420001": inquiry("SBX420001", "Pat", "Quinn", "1980-01-01"),
    "fixture:active_aetna.json": inquiry("AETNA12345", "Jane", "Doe", "2004-04-04", payer="60054"),
    "fixture:inactive_uhc.json": inquiry("UHCINACTIVE", "Jane", "Doe", "1971-01-01", payer="87726"),
}
_NETWORK = {"in": cpb.NETWORK_CATEGORY_IN_NETWORK, "out": cpb.NETWORK_CATEGORY_OUT_OF_NETWORK}
_ROLE = {None: xpb.PROVIDER_ROLE_UNSPECIFIED, "PRIMARY_CARE": xpb.PROVIDER_ROLE_PRIMARY_CARE,
         "SPECIALIST": xpb.PROVIDER_ROLE_SPECIALIST}


def usd(amount: Decimal) -> money_pb2.Money:
    units = int(amount)
    return money_pb2.Money(currency_code="USD", units=units, nanos=int((amount - units) * 1_000_000_000))


def dollars(m: money_pb2.Money) -> Decimal:
    return (Decimal(m.units) + Decimal(m.nanos) / Decimal(1_000_000_000)).quantize(Decimal("0.01"))


def provider_pb(p: Provider) -> xpb.EligibilityProvider:
    return xpb.EligibilityProvider(provider_id=p.provider_id, network_category=_NETWORK[p.network],
                                   allowed_amount=usd(p.amount), role=_ROLE[p.role])


def request_for(
    example: Example, *, check_id: str | None = None, inquiry_now: pb.EligibilityInquiry | None = None,
    trace: bool = False,
) -> xpb.EstimateFromEligibilityRequest:
    """The example's request, from a stored check id or an inquiry run now."""
    service = xpb.ServiceToEstimate(service_type_codes=list(example.stcs),
                                    place_of_service_code=example.place_of_service or "")
    if example.procedure:
        service.procedure.code = example.procedure
        service.procedure.code_type = cpb.CODE_TYPE_HCPCS if example.procedure[0].isalpha() else cpb.CODE_TYPE_CPT4
    req = xpb.EstimateFromEligibilityRequest(service=service, providers=[provider_pb(p) for p in example.providers],
                                             include_trace=trace)
    if check_id is not None:
        req.check_id = check_id
    else:
        assert inquiry_now is not None
        req.inquiry.CopyFrom(inquiry_now)
    return req


class EstimateClient:
    """EstimateService over the same channel and token as the eligibility `Client`."""

    def __init__(self, channel: grpc.aio.Channel, eligibility: Client) -> None:
        self.stub = epb_grpc.EstimateServiceStub(channel)
        self.eligibility = eligibility
        self.md = eligibility.md

    async def stored_check(self, source: str) -> str:
        """Run the source's check through CheckEligibility (stored for the tenant) and return its id."""
        check = await self.eligibility.check(IDENTITIES[source])
        return check.id

    async def estimate(self, req: xpb.EstimateFromEligibilityRequest, *, timeout: float = 15
                       ) -> epb.EstimateFromEligibilityResponse:
        reply: epb.EstimateFromEligibilityResponse = await self.stub.EstimateFromEligibility(
            req, metadata=self.md, timeout=timeout)
        return reply

    async def error(self, req: xpb.EstimateFromEligibilityRequest, *, timeout: float = 15) -> grpc.aio.AioRpcError:
        try:
            await self.estimate(req, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return exc
        raise AssertionError("EstimateFromEligibility succeeded")

    async def calculate(self, req: epb.CalculateRequest) -> epb.CalculateResponse:
        reply: epb.CalculateResponse = await self.stub.Calculate(req, metadata=self.md, timeout=10)
        return reply


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo")


def field_violations(exc: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return [v.field for v in bad.field_violations]
    raise AssertionError("no BadRequest")


_COMPLETENESS = {"COMPLETE": xpb.ESTIMATE_COMPLETENESS_COMPLETE, "AMBIGUOUS": xpb.ESTIMATE_COMPLETENESS_AMBIGUOUS,
                 "INCOMPLETE": xpb.ESTIMATE_COMPLETENESS_INCOMPLETE}
_KIND = {cpb.ACCUMULATOR_KIND_DEDUCTIBLE: "deductible", cpb.ACCUMULATOR_KIND_OUT_OF_POCKET_MAX: "oop",
         cpb.ACCUMULATOR_KIND_LIMIT: "limit"}
_LEVEL = {cpb.ACCUMULATOR_LEVEL_INDIVIDUAL: "individual", cpb.ACCUMULATOR_LEVEL_FAMILY: "family"}


def sources(example: Example) -> tuple[str, ...]:
    """How an example is asked: a captured fixture only by a stored check; a sandbox member both ways."""
    return ("check_id",) if example.source.startswith("fixture:") else ("check_id", "inquiry")


async def run_example(client: EstimateClient, example: Example, source: str) -> epb.EstimateFromEligibilityResponse:
    """The example's RPC from `source` ("check_id": CheckEligibility first, then by id; "inquiry": run now).
    The example's `source` must be a key of IDENTITIES (add new sandbox members there)."""
    if source == "check_id":
        check_id = await client.stored_check(example.source)
        reply = await client.estimate(request_for(example, check_id=check_id))
        assert reply.check_id == check_id
    else:
        reply = await client.estimate(request_for(example, inquiry_now=IDENTITIES[example.source]))
        assert reply.check_id
    assert reply.date_of_service.year >= 2024
    return reply


async def assert_same_as_calculate(client: EstimateClient, item: epb.EligibilityEstimate) -> None:
    """Calculate(derived_inputs), over the socket, gives the point's numbers."""
    again = (await client.calculate(item.derived_inputs)).estimate
    for name in ("member_pays", "plan_pays", "breakdown", "path", "accumulators", "flags"):
        assert getattr(again, name) == getattr(item.estimate, name), name


async def assert_example(client: EstimateClient, example: Example, source: str) -> None:
    """Run an example through the RPC and check every provider against its `Expect` (status, point, range,
    completeness, assumption codes, service type, accumulators after) and Calculate(derived_inputs)."""
    reply = await run_example(client, example, source)
    assert [e.estimate.provider_id for e in reply.estimates] == [p.provider_id for p in example.providers]
    for item, expect in zip(reply.estimates, example.expect, strict=True):
        if expect.member is None:
            assert item.estimate.status.code == code_pb2.NOT_FOUND
            assert not item.estimate.HasField("member_pays") and not item.HasField("derived_inputs")
            continue
        assert item.estimate.status.code == code_pb2.OK
        assert dollars(item.estimate.member_pays) == expect.member
        assert dollars(item.estimate.plan_pays) == expect.plan
        assert (dollars(item.member_pays_low), dollars(item.member_pays_high)) == (expect.low, expect.high)
        assert item.completeness == _COMPLETENESS[expect.completeness]
        assert {a.code for a in item.assumptions} == expect.codes, (source, item.assumptions)
        if expect.service_type:
            assert item.service_type_code == expect.service_type
        after = {(_KIND[s.kind], _LEVEL[s.level]): Decimal(s.remaining_after.value)
                 for s in item.estimate.accumulators if s.kind in _KIND and s.HasField("remaining_after")}
        for key, value in expect.after.items():
            assert after[key] == value, (source, key)
        await assert_same_as_calculate(client, item)
