"""The SBX6xxxxx sandbox members through EstimateFromEligibility over a real socket, against the expectation table
worked out by hand from the spec (`tests/eligibility_estimate/sandbox_expectations.py`), kept apart from the code:
every rule of the derivation fires on a member a newcomer can call with grpcurl."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import grpc
import pytest
import pytest_asyncio
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import eligibility_estimate_pb2 as xpb
from costestimator.v1 import estimate_service_pb2 as epb
from google.rpc import code_pb2

from server.app import Application
from tests.eligibility_estimate.sandbox_expectations import CASES, Case, Expected, Refusal
from tests.eligibility_service.estimate_helpers import (
    EstimateClient,
    assert_same_as_calculate,
    dollars,
    error_info,
    usd,
)
from tests.eligibility_service.helpers import Client, inquiry

_NETWORK = {"IN": cpb.NETWORK_CATEGORY_IN_NETWORK, "OUT": cpb.NETWORK_CATEGORY_OUT_OF_NETWORK}
_ROLE = {"": xpb.PROVIDER_ROLE_UNSPECIFIED, "PRIMARY_CARE": xpb.PROVIDER_ROLE_PRIMARY_CARE,
         "SPECIALIST": xpb.PROVIDER_ROLE_SPECIALIST}
_CODE_TYPE = {"CPT4": cpb.CODE_TYPE_CPT4, "HCPCS": cpb.CODE_TYPE_HCPCS}


@pytest_asyncio.fixture
async def estimates(el_app: Application) -> AsyncIterator[EstimateClient]:
    assert el_app.dev_token is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{el_app.port}") as channel:
        yield EstimateClient(channel, Client(channel, el_app.dev_token))


def _request(case: Case) -> xpb.EstimateFromEligibilityRequest:
    service = xpb.ServiceToEstimate(service_type_codes=list(case.service.service_type_codes),
                                    place_of_service_code=case.service.place_of_service_code)
    if case.service.procedure:
        service.procedure.code = case.service.procedure
        service.procedure.code_type = _CODE_TYPE[case.service.code_type]
    providers = [xpb.EligibilityProvider(provider_id=p.provider_id, network_category=_NETWORK[p.network],
                                         allowed_amount=usd(Decimal(p.allowed_amount)), role=_ROLE[p.role])
                 for p in case.providers]
    return xpb.EstimateFromEligibilityRequest(service=service, providers=providers)


async def _ask(client: EstimateClient, case: Case, source: str) -> xpb.EstimateFromEligibilityRequest:
    m = case.member
    who = inquiry(m.member_id, m.first_name, m.last_name, m.date_of_birth, payer=m.payer_id)
    req = _request(case)
    if source == "CHECK_ID":
        try:
            req.check_id = (await client.eligibility.check(who)).id
        except grpc.aio.AioRpcError as exc:  # a check refused at once (e.g. UNKNOWN_PAYER) is stored all the same
            req.check_id = error_info(exc).metadata["check_id"]
    else:
        req.inquiry.CopyFrom(who)
    return req


def _assert_provider(item: epb.EligibilityEstimate, expected: Expected, where: str) -> None:
    assert item.estimate.provider_id == expected.provider.provider_id, where
    if expected.status == "NOT_FOUND":
        assert item.estimate.status.code == code_pb2.NOT_FOUND, where
        return
    assert item.estimate.status.code == code_pb2.OK, (where, item.estimate.status)
    assert item.service_type_code == expected.service_type_code, where
    got = (dollars(item.estimate.member_pays), dollars(item.member_pays_low), dollars(item.member_pays_high))
    want = tuple(Decimal(v) for v in (expected.member_pays, expected.low, expected.high) if v is not None)
    assert got == want, (where, expected.why)
    assert dollars(item.estimate.plan_pays) == expected.plan_pays, where
    assert xpb.EstimateCompleteness.Name(item.completeness) == f"ESTIMATE_COMPLETENESS_{expected.completeness}", \
        (where, expected.why)
    assert {a.code for a in item.assumptions} == expected.assumptions, (where, expected.why)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_sandbox_member_answers_as_the_spec_says(estimates: EstimateClient, case: Case) -> None:
    for source in case.sources:
        where = f"{case.name} via {source}"
        req = await _ask(estimates, case, source)
        if isinstance(case.outcome, Refusal):
            exc = await estimates.error(req)
            assert exc.code().name == case.outcome.code, (where, exc.details())
            assert error_info(exc).reason == case.outcome.reason, where
            continue
        reply = await estimates.estimate(req)
        assert len(reply.estimates) == len(case.outcome), where
        for item, expected in zip(reply.estimates, case.outcome, strict=True):
            _assert_provider(item, expected, where)
            if expected.status == "OK":
                await assert_same_as_calculate(estimates, item)
