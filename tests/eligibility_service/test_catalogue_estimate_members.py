"""The SBX6xxxxx members (the rules of EstimateFromEligibility) through CheckEligibility, on both backends.

Each member must answer VERIFIED (or VERIFIED with the activity a refusal rests on) and its summary and raw answer
must carry exactly the lines its expected estimates rest on (tests/eligibility_estimate/sandbox_expectations.py):
if a line moved, the hand-worked expectations would silently describe another 271.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from costestimator.v1 import eligibility_service_pb2 as pb
from google.protobuf.json_format import MessageToDict

from tests.eligibility_estimate import sandbox_expectations as x
from tests.eligibility_service.helpers import Client, bucket, inquiry, money, service

D = Decimal
VERIFIED = pb.ELIGIBILITY_STATUS_VERIFIED
Line = tuple[str, str, Decimal, str, tuple[str, ...]]


async def check_of(client: Client, member: x.Member) -> pb.EligibilityCheck:
    check = await client.check(
        inquiry(member.member_id, member.first_name, member.last_name, member.date_of_birth), raw=True)
    assert (check.status, check.attempts, check.failure_reason) == (VERIFIED, 1, "")
    return check


def lines(summary: pb.EligibilitySummary, stc: str) -> list[Line]:
    """Every copay/coinsurance line listing `stc`: (kind, network, amount or percent, place of service, notes)."""
    return [
        (c.kind, c.network_code, money(c.amount) if c.HasField("amount") else D(c.percent.value), c.place_of_service,
         tuple(c.notes))
        for c in summary.cost_shares if stc in c.service_type_codes
    ]


def raw(check: pb.EligibilityCheck, code: str, stc: str) -> list[dict[str, Any]]:
    """The raw benefit entries of one EB code listing `stc` (limits, non-covered and service deductibles are
    not in today's summary: they are what §7's `service_lines` will add)."""
    entries = MessageToDict(check.raw_response)["benefitsInformation"]
    return [e for e in entries if e["code"] == code and stc in e.get("serviceTypeCodes", [])]


def quantities(check: pb.EligibilityCheck, stc: str) -> list[tuple[str | None, str | None, str | None, str | None]]:
    return [(e.get("timeQualifierCode"), e.get("quantityQualifierCode"), e.get("benefitQuantity"),
             e.get("benefitAmount")) for e in raw(check, "F", stc)]


def absent(network_buckets: pb.NetworkBuckets, field: Literal["in_network", "out_of_network"]) -> bool:
    return not network_buckets.HasField(field)


async def test_600001_cost_share_choice(client: Client) -> None:
    check = await check_of(client, x.ORTIZ)
    s = check.summary
    assert (s.activity, s.plan_name, s.insurance_type_code) == (
        pb.COVERAGE_ACTIVITY_ACTIVE, "OPEN ACCESS PPO 1000", "PR")
    assert bucket(s.deductible.individual.in_network) == (D(1000), D(600), D(400))
    assert bucket(s.deductible.family.in_network) == (D(2000), D(1500), D(500))
    assert bucket(s.deductible.individual.out_of_network) == (D(2000), D(2000), D(0))
    assert bucket(s.out_of_pocket.individual.in_network) == (D(4000), D(3000), D(1000))
    assert bucket(s.out_of_pocket.family.in_network) == (D(8000), D(7000), D(1000))
    office = service(s, "98").in_network
    assert [(money(c.amount), c.place_of_service, tuple(c.notes)) for c in office.copay_candidates] == [
        (D(25), "11", ("PCP OFFICE VISIT",)), (D(50), "11", ("SPECIALIST OFFICE VISIT",)),
        (D(10), "02", ("TELEHEALTH VISIT",))]
    assert D(office.coinsurance_percent.value) == 0 and "AMBIGUOUS_COPAY" in office.flags
    assert D(service(s, "98").out_of_network.coinsurance_percent.value) == 30
    urgent = service(s, "UC")
    assert money(urgent.in_network.copay) == D("34.125")  # exact in the summary; the estimate rounds it
    assert lines(s, "UC")[0] == ("COPAY", "Y", D("34.125"), "20", ("NO DEDUCTIBLE",))
    assert lines(s, "A6") == [("COPAY", "Y", D(20), "", ()), ("COINSURANCE", "Y", D(0), "", ())]
    assert lines(s, "AL") == []  # not covered: no cost share at all...
    not_covered = [e.get("additionalInformation") for e in raw(check, "I", "AL")]
    assert not_covered == [[{"description": "ROUTINE VISION EXAMS"}]]
    assert [e["inPlanNetworkIndicatorCode"] for e in raw(check, "I", "A6")] == ["W"]  # ...and beside a cost share
    assert [(e["benefitAmount"], e["inPlanNetworkIndicatorCode"]) for e in raw(check, "C", "98")] == [("0", "Y")]
    assert [(e["benefitAmount"], e["inPlanNetworkIndicatorCode"]) for e in raw(check, "C", "A6")] == [("0", "Y")]


async def test_600002_deductible_signals(client: Client) -> None:
    check = await check_of(client, x.BROOKS)
    s = check.summary
    assert bucket(s.deductible.individual.in_network) == (D(1500), D(900), D(600))
    assert bucket(s.deductible.family.in_network) == (D(3000), D(2200), D(800))
    assert bucket(s.out_of_pocket.individual.in_network) == (D(5000), D(4000), D(1000))
    assert bucket(s.out_of_pocket.family.in_network) == (D(10000), D(8500), D(1500))
    assert lines(s, "62") == [("COPAY", "Y", D(100), "", ("COPAY WAIVED AFTER DEDUCTIBLE",)),
                              ("COINSURANCE", "Y", D(20), "", ())]
    assert [(n.kind, list(n.service_type_codes)) for n in s.notes] == [("AUTH_REQUIRED", ["62"])]
    assert lines(s, "86") == [("COPAY", "W", D(150), "23", ("NOT SUBJECT TO DEDUCTIBLE",)),
                              ("COINSURANCE", "W", D(10), "", ())]
    assert lines(s, "33") == [("COPAY", "Y", D(30), "", ("VERIFY IF SUBJECT TO DEDUCTIBLE",)),
                              ("COINSURANCE", "Y", D(0), "", ("MAY BE SUBJECT TO DEDUCTIBLE",))]
    assert lines(s, "UC") == [("COPAY", "Y", D(60), "20", ("DEDUCTIBLE APPLIES",))]
    assert lines(s, "5") == [("COINSURANCE", "Y", D(0), "", ())]
    service_deductibles = [(e["benefitAmount"], e["timeQualifierCode"], e["inPlanNetworkIndicatorCode"])
                           for stc in ("86", "5") for e in raw(check, "C", stc)]
    assert service_deductibles == [("500", "27", "W"), ("75", "23", "Y")]
    assert raw(check, "C", "62") == raw(check, "C", "33") == raw(check, "C", "UC") == []


async def test_600003_totals_without_remaining(client: Client) -> None:
    s = (await check_of(client, x.CHEN)).summary
    assert bucket(s.deductible.individual.in_network) == (D(1500), None, None)
    assert bucket(s.deductible.individual.out_of_network) == (D(3000), D(2500), D(500))
    oop_in = s.out_of_pocket.individual.in_network
    assert bucket(oop_in) == (D(6000), D(4500), D(1500)) and money(oop_in.met_reported) == D(1000)
    assert list(oop_in.flags) == ["INCONSISTENT"]
    assert bucket(s.out_of_pocket.individual.out_of_network) == (D(12000), None, None)
    for accumulator in (s.deductible, s.out_of_pocket):
        assert absent(accumulator.family, "in_network") and absent(accumulator.family, "out_of_network")
    assert lines(s, "98") == [("COPAY", "Y", D(40), "11", ()), ("COINSURANCE", "Y", D(20), "11", ()),
                              ("COINSURANCE", "N", D(40), "11", ())]
    assert lines(s, "UC") == [("COPAY", "Y", D(50), "20", ("DEDUCTIBLE WAIVED",))]


async def test_600004_nothing_sent(client: Client) -> None:
    s = (await check_of(client, x.SANTOS)).summary
    assert absent(s.deductible.individual, "in_network") and absent(s.deductible.family, "in_network")
    assert bucket(s.deductible.individual.out_of_network) == (D(4000), D(4000), D(0))
    assert bucket(s.out_of_pocket.individual.in_network) == (D(5000), D(3000), D(2000))
    assert absent(s.out_of_pocket.individual, "out_of_network")
    assert lines(s, "50") == [("COINSURANCE", "Y", D(20), "", ()), ("COINSURANCE", "N", D(40), "", ())]
    assert lines(s, "98") == [("COPAY", "Y", D(30), "11", ("DEDUCTIBLE DOES NOT APPLY",))]


async def test_600005_hmo_limits(client: Client) -> None:
    check = await check_of(client, x.NGUYEN)
    s = check.summary
    assert (s.insurance_type_code, s.plan_name) == ("HM", "CARE HMO 500")
    assert bucket(s.deductible.individual.in_network) == (D(500), D(0), D(500))
    assert bucket(s.deductible.family.in_network) == (D(1000), D(400), D(600))
    assert bucket(s.out_of_pocket.individual.in_network) == (D(3000), D(2200), D(800))
    assert bucket(s.out_of_pocket.family.in_network) == (D(6000), D(5000), D(1000))
    for accumulator in (s.deductible, s.out_of_pocket):
        assert absent(accumulator.individual, "out_of_network") and absent(accumulator.family, "out_of_network")
    assert {c.network_code for c in s.cost_shares} == {"Y"}  # nothing out of network
    assert "STC_NOT_RETURNED" in service(s, "98").out_of_network.flags
    assert [line[:3] for stc in ("PT", "33", "A6", "DM", "AL", "98") for line in lines(s, stc)] == [
        ("COPAY", "Y", D(35)), ("COPAY", "Y", D(25)), ("COPAY", "Y", D(20)), ("COINSURANCE", "Y", D(20)),
        ("COPAY", "Y", D(10)), ("COPAY", "Y", D(15))]
    assert lines(s, "BZ") == []
    assert quantities(check, "PT") == [("23", "VS", "20", None), ("29", "VS", "8", None)]
    assert quantities(check, "33") == [("23", "VS", "12", None)]
    assert quantities(check, "A6") == [("29", "VS", "6", None), ("29", "VS", "0", None)]
    assert quantities(check, "DM") == [("23", None, None, "1500"), ("29", None, None, "300")]
    assert quantities(check, "AL") == [(None, "S7", "19", None)]


async def test_600006_two_plans(client: Client) -> None:
    check = await check_of(client, x.LEWIS)
    s = check.summary
    assert (s.activity, s.plan_name) == (pb.COVERAGE_ACTIVITY_ACTIVE, "EMPLOYER PPO 750")
    plans = [(e.get("planCoverage"), e.get("insuranceTypeCode")) for e in raw(check, "1", "30")]
    assert plans == [("EMPLOYER PPO 750", "PR"), ("RETIREE SUPPLEMENT", "SP")]
    assert bucket(s.deductible.individual.in_network) == (D(750), D(0), D(750))
    assert bucket(s.deductible.family.in_network) == (D(1500), D(600), D(900))
    assert bucket(s.out_of_pocket.individual.in_network) == (D(3500), D(2100), D(1400))
    office = service(s, "98").in_network
    assert money(office.copay) == D(35) and sorted(money(c.amount) for c in office.copay_candidates) == [D(20), D(35)]
    assert lines(s, "62") == [("COINSURANCE", "Y", D(10), "", ()), ("COINSURANCE", "Y", D(20), "", ())]


async def test_600007_invalid_values_stay_visible_in_the_summary(client: Client) -> None:
    s = (await check_of(client, x.REYES)).summary
    assert bucket(s.deductible.individual.in_network) == (D(1000), D(0), D(1000))
    assert bucket(s.out_of_pocket.individual.in_network) == (D(4500), D(3000), D(1500))
    office = service(s, "98").in_network
    assert sorted(money(c.amount) for c in office.copay_candidates) == [D(-25), D(40)]
    urgent = service(s, "UC").in_network
    # The summary reports what the payer sent (the largest, 2000 %); the estimate must drop it (D4.3).
    assert D(urgent.coinsurance_percent.value) == 2000 and "AMBIGUOUS_COINSURANCE" in urgent.flags
    assert sorted(D(c.percent.value) for c in urgent.coinsurance_candidates) == [D(30), D(2000)]


async def test_600008_status_unclear(client: Client) -> None:
    check = await check_of(client, x.ELLIS)
    assert check.summary.activity == pb.COVERAGE_ACTIVITY_UNCLEAR
    assert list(check.summary.flags) == ["COVERAGE_STATUS_UNCLEAR"]
    assert [e["code"] for e in raw(check, "1", "30") + raw(check, "6", "30")] == ["1", "6"]


async def test_600009_plan_ended_last_year(client: Client) -> None:
    check = await check_of(client, x.PRICE)
    s = check.summary
    assert (s.activity, list(s.flags)) == (pb.COVERAGE_ACTIVITY_INACTIVE, ["DOS_OUTSIDE_PLAN_DATES"])
    assert s.termination_date.year == dt.date.today().year - 1 and s.termination_date.month == 12
    assert [e["code"] for e in raw(check, "1", "30")] == ["1"]  # the status line itself says active
