"""Shared helpers of the EligibilityService tests: inquiries for the sandbox catalogue, a typed client, waits."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import grpc
from costestimator.v1 import eligibility_service_pb2 as pb
from costestimator.v1 import eligibility_service_pb2_grpc as pb_grpc
from google.rpc import error_details_pb2
from google.type import date_pb2, money_pb2
from grpc_status import rpc_status

from server.app import Application

NPI = "1999999984"
FINAL = {pb.ELIGIBILITY_STATUS_VERIFIED, pb.ELIGIBILITY_STATUS_FAILED, pb.ELIGIBILITY_STATUS_NOT_FOUND,
         pb.ELIGIBILITY_STATUS_EXPIRED}


def new_tenant() -> str:
    return f"tenant-{secrets.token_hex(4)}"


def date(text: str) -> date_pb2.Date:
    day = dt.date.fromisoformat(text)
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def person(member_id: str = "", first: str = "", last: str = "", dob: str | None = None) -> pb.Person:
    p = pb.Person(member_id=member_id, first_name=first, last_name=last)
    if dob:
        p.date_of_birth.CopyFrom(date(dob))
    return p


def inquiry(
    member_id: str,
    first: str = "",
    last: str = "",
    dob: str | None = None,
    *,
    payer: str = "SBX01",
    dependent: pb.Person | None = None,
    relationship: str = "",
    patient_id: str = "patient-1",
    policy_id: str = "policy-1",
    stcs: Sequence[str] = (),
) -> pb.EligibilityInquiry:
    inq = pb.EligibilityInquiry(
        payer_id=payer,
        provider=pb.ProviderIdentity(npi=NPI, organization_name="Riverbend Family Medicine"),
        subscriber=person(member_id, first, last, dob),
        dependent_relationship_code=relationship,
        service_type_codes=list(stcs),
        policy_id=policy_id,
        patient_id=patient_id,
    )
    if dependent is not None:
        inq.dependent.CopyFrom(dependent)
    return inq


# The SBX01 catalogue (eligibility.md §5.3).
RIVERA = ("SBX100001", "Alex", "Rivera", "1985-04-12")
SHAH = ("SBX200001", "Priya", "Shah", "1979-08-23")
MAYA = person("", "Maya", "Shah", "2012-06-05")
LEE = ("SBX300001", "Jordan", "Lee", "1990-02-14")
PATEL = ("SBX400001", "Sam", "Patel", "1972-09-30")
MORGAN = ("SBX500001", "Chris", "Morgan", "1968-11-11")
QUINN_42 = ("SBX420001", "Pat", "Quinn", "1980-01-01")
QUINN_FLAKY = ("SBX420002", "Pat", "Quinn", "1980-01-01")
DIAZ_80 = ("SBX800001", "Robin", "Diaz", "1975-05-05")
KIM_SLOW = ("SBX700001", "Dana", "Kim", "1992-07-07")
THROTTLED = ("SBX429001", "Any", "Body", "1980-01-01")
UNAVAILABLE = ("SBX503001", "Any", "Body", "1980-01-01")


def money(m: money_pb2.Money) -> Decimal:
    assert m.currency_code == "USD"
    return Decimal(m.units) + Decimal(m.nanos) / Decimal(1_000_000_000)


def bucket(b: pb.AccumulatorBucket) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """(total, remaining, met) with None for amounts the payer did not send."""
    return tuple(money(getattr(b, f)) if b.HasField(f) else None for f in ("total", "remaining", "met"))  # type: ignore[return-value]


def service(summary: pb.EligibilitySummary, code: str) -> pb.ServiceCostShare:
    return next(s for s in summary.service_cost_shares if s.service_type_code == code)


class Client:
    """The EligibilityService stub with a bearer token, over a real channel."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self.stub = pb_grpc.EligibilityServiceStub(channel)
        self.md = (("authorization", f"Bearer {token}"),)

    async def check(self, inq: pb.EligibilityInquiry, *, timeout: float = 15, raw: bool = False) -> pb.EligibilityCheck:
        reply = await self.stub.CheckEligibility(
            pb.CheckEligibilityRequest(inquiry=inq, include_raw_response=raw), metadata=self.md, timeout=timeout)
        return reply.check

    async def check_error(self, inq: pb.EligibilityInquiry, *, timeout: float = 15) -> grpc.aio.AioRpcError:
        try:
            await self.check(inq, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return exc
        raise AssertionError("CheckEligibility succeeded")

    async def submit(self, inq: pb.EligibilityInquiry) -> pb.EligibilityCheck:
        reply = await self.stub.SubmitEligibilityCheck(
            pb.SubmitEligibilityCheckRequest(inquiry=inq), metadata=self.md, timeout=10)
        return reply.check

    async def get(self, check_id: str, *, raw: bool = False) -> pb.EligibilityCheck:
        reply = await self.stub.GetEligibilityCheck(
            pb.GetEligibilityCheckRequest(id=check_id, include_raw_response=raw), metadata=self.md, timeout=10)
        return reply.check

    async def watch(self, check_id: str, *, timeout: float = 20) -> list[pb.EligibilityCheck]:
        seen = []
        async for item in self.stub.WatchEligibilityCheck(
            pb.WatchEligibilityCheckRequest(id=check_id), metadata=self.md, timeout=timeout
        ):
            seen.append(item.check)
        return seen

    async def list(self, **fields: Any) -> pb.ListEligibilityChecksResponse:
        return await self.stub.ListEligibilityChecks(
            pb.ListEligibilityChecksRequest(**fields), metadata=self.md, timeout=10)

    async def stats(self, policy_id: str = "") -> pb.GetEligibilityStatsResponse:
        return await self.stub.GetEligibilityStats(
            pb.GetEligibilityStatsRequest(policy_id=policy_id), metadata=self.md, timeout=10)

    async def wait_final(self, check_id: str, timeout: float = 20) -> pb.EligibilityCheck:
        end = time.monotonic() + timeout
        while True:
            check = await self.get(check_id)
            if check.status in FINAL:
                return check
            if time.monotonic() > end:
                raise AssertionError(f"check {check_id} still {pb.EligibilityStatus.Name(check.status)}")
            await asyncio.sleep(0.05)


def bad_request(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None, "no rich error details"
    br = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(br)
    return {v.field: v.description for v in br.field_violations}


def status_name(value: pb.EligibilityStatus.ValueType) -> str:
    return pb.EligibilityStatus.Name(value).removeprefix("ELIGIBILITY_STATUS_")
