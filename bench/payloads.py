"""What the bench sends: Estimate / StreamEstimates requests (with fresh or repeated benefit keys), eligibility
inquiries, and the calls built on them (gRPC to the server or the echo baseline, HTTP straight to the payer)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import aiohttp
import grpc
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import eligibility_service_pb2 as elpb
from costestimator.v1 import estimate_service_pb2 as epb
from google.type import date_pb2, money_pb2

from .echo_server import ECHO_METHOD
from .load import Call

MEMBER = "5~186103331+10+7+20260101+793854+8A+829"
PLAN = "3~"
SERVICE = "99214"
_fresh = itertools.count()


def fresh_specialty() -> str:
    """A provider specialty code never sent before in this run: a benefit key no cache can have seen."""
    return f"B{next(_fresh)}"


def provider(i: int, specialty: str) -> epb.Provider:
    return epb.Provider(provider_id=f"prov-{i:03d}", network_category=cpb.NETWORK_CATEGORY_IN_NETWORK,
                        benefit_tier_name="1" if i % 2 else "2", provider_specialty_code=specialty,
                        negotiated_amount=money_pb2.Money(currency_code="USD", units=100 + i))


def _common() -> dict[str, Any]:
    return {"member": cpb.Member(membership_id=MEMBER, plan_identifier=PLAN),
            "product_type": cpb.BENEFIT_PRODUCT_TYPE_MEDICAL,
            "service": epb.RequestedService(code=SERVICE, code_type=cpb.CODE_TYPE_CPT4, place_of_service_code="11")}


def estimate_request(specialty: str) -> epb.EstimateRequest:
    return epb.EstimateRequest(**_common(), providers=[provider(0, specialty)])


def stream_request(providers: int, specialties: Sequence[str]) -> epb.StreamEstimatesRequest:
    return epb.StreamEstimatesRequest(**_common(), providers=[provider(i, specialties[i % len(specialties)])
                                                              for i in range(providers)])


def cache_field() -> str | None:
    """The name of the estimate answer's "benefit came from the cache" field, when this proto has one."""
    return "benefit_from_cache" if "benefit_from_cache" in epb.CostEstimate.DESCRIPTOR.fields_by_name else None


class EstimateCalls:
    """Estimate over one channel: `cold()` sends a fresh benefit key every call, `warm()` always the same one."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Any, counters: dict[str, int] | None = None) -> None:
        self._rpc = channel.unary_unary("/costestimator.v1.EstimateService/Estimate",
                                        request_serializer=epb.EstimateRequest.SerializeToString,
                                        response_deserializer=epb.EstimateResponse.FromString)
        self._metadata = metadata
        self._warm = estimate_request("08")
        self.counters = counters if counters is not None else {"from_cache": 0}
        self._field = cache_field()

    async def _call(self, request: epb.EstimateRequest) -> bool:
        reply = await self._rpc(request, metadata=self._metadata, timeout=30)
        estimate = reply.estimates[0]
        if self._field and getattr(estimate, self._field):
            self.counters["from_cache"] += 1
        return bool(estimate.status.code == 0)

    async def cold(self) -> bool:
        return await self._call(estimate_request(fresh_specialty()))

    async def warm(self) -> bool:
        return await self._call(self._warm)


class EchoCalls:
    """The same request built the same way, sent to the bare echo server (answer parsed back, like the client)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._rpc = channel.unary_unary(ECHO_METHOD, request_serializer=epb.EstimateRequest.SerializeToString,
                                        response_deserializer=epb.EstimateRequest.FromString)

    async def cold(self) -> bool:
        reply = await self._rpc(estimate_request(fresh_specialty()), timeout=30)
        return len(reply.providers) == 1


class DirectPayer:
    """The two upstream calls an Estimate needs (benefits + accumulators, concurrently), made by the bench itself."""

    def __init__(self, info: dict[str, Any]) -> None:
        self._info = info
        self._session: aiohttp.ClientSession | None = None
        self._headers: dict[str, str] = {}

    async def __aenter__(self) -> DirectPayer:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
        async with self._session.post(self._info["url"] + "/oauth2/token", data={"grant_type": "client_credentials"},
                                      auth=aiohttp.BasicAuth(self._info["client_id"],
                                                             self._info["client_secret"])) as r:
            tok = await r.json()
        self._headers = {"Authorization": f"Bearer {tok['access_token']}", "id_token": tok["id_token"]}
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self) -> bool:
        assert self._session is not None
        body = {"benefitProductType": "Medical", "membershipID": MEMBER, "planIdentifier": PLAN,
                "serviceInfo": [{"serviceCodeInfo": {
                    "code": SERVICE, "type": "CPT4", "placeOfService": [{"code": "11"}],
                    "providerSpecialty": [{"code": fresh_specialty()}]}}]}

        async def benefits() -> int:
            assert self._session is not None
            async with self._session.post(self._info["url"] + "/benefits/v3/retrieve", json=body,
                                          headers=self._headers) as r:
                await r.read()
                return r.status

        async def accumulators() -> int:
            assert self._session is not None
            async with self._session.get(self._info["url"] + "/accumulators/v1/read",
                                         params={"membershipId": MEMBER, "planIdentifier": PLAN},
                                         headers=self._headers) as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(benefits(), accumulators())
        return all(status == 200 for status in statuses)


def inquiry(i: int) -> elpb.EligibilityInquiry:
    return elpb.EligibilityInquiry(
        payer_id="SBX01",
        provider=elpb.ProviderIdentity(npi="1999999984", organization_name="Riverbend Family Medicine"),
        subscriber=elpb.Person(member_id="SBX100001", first_name="Alex", last_name="Rivera",
                               date_of_birth=date_pb2.Date(year=1985, month=4, day=12)),
        policy_id=f"policy-{i % 20}", patient_id=f"patient-{i}")


class EligibilityCalls:
    def __init__(self, channel: grpc.aio.Channel, metadata: Any) -> None:
        self._rpc = channel.unary_unary("/costestimator.v1.EligibilityService/CheckEligibility",
                                        request_serializer=elpb.CheckEligibilityRequest.SerializeToString,
                                        response_deserializer=elpb.CheckEligibilityResponse.FromString)
        self._metadata = metadata
        self._n = itertools.count()

    async def check(self) -> bool:
        reply = await self._rpc(elpb.CheckEligibilityRequest(inquiry=inquiry(next(self._n))),
                                metadata=self._metadata, timeout=30)
        return bool(reply.check.status == elpb.ELIGIBILITY_STATUS_VERIFIED)
