"""The Stedi stand-in over a real loopback socket, and the normalizer on every catalogue answer (§5)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from server.domain.eligibility.normalize import NormalizationContext, NormalizedEligibility, normalize_response
from server.domain.eligibility.status import CheckStatus, RetryPolicy
from server.domain.eligibility.summary import Bucket, EligibilitySummary, NoteKind
from server.sandbox.stedi import ELIGIBILITY_PATH, RESET_PATH, create_stedi_app

from .conftest import PROD_KEY, TEST_KEY, Served, StediReply, load_fixture, sandbox_config, serve, stedi_request

D = Decimal
DOS = dt.date(2026, 3, 15)
RIVERA = ("SBX100001", "Alex", "Rivera", "19850412")
SHAH = ("SBX200001", "Priya", "Shah", "19790823")
MAYA = {"firstName": "Maya", "lastName": "Shah", "dateOfBirth": "20120605", "individualRelationshipCode": "19"}


def normalized(reply: StediReply, *, dos: dt.date = DOS, dependent: bool = False) -> NormalizedEligibility:
    context = NormalizationContext(reply.request["tradingPartnerServiceId"], dos, ("30",), dependent)
    return normalize_response(reply.status, reply.body, context)


def summary_of(reply: StediReply, **kw: Any) -> EligibilitySummary:
    result = normalized(reply, **kw)
    assert result.outcome.status is CheckStatus.VERIFIED, result.outcome
    assert result.summary is not None
    return result.summary


def numbers(b: Bucket | None) -> tuple[Any, ...] | None:
    return None if b is None else (b.period, b.total, b.remaining, b.met, b.met_reported, b.flags)


def n(period: str | None, total: str | None, remaining: str | None, met: str | None, reported: str | None = None,
      flags: tuple[str, ...] = ()) -> tuple[Any, ...]:
    return (period, *(None if v is None else D(v) for v in (total, remaining, met, reported)), flags)


def aaa_codes(reply: StediReply) -> list[str]:
    return [e["code"] for e in reply.body.get("errors", [])]


# ---------------------------------------------------------------- auth, validation, routing


async def test_missing_or_unknown_key_is_403(stedi: Served) -> None:
    for key in (None, "", "nope", "Bearer test_sandbox_key"):
        reply = await stedi.post(stedi_request(*RIVERA), key=key)
        assert (reply.status, reply.body) == (403, {"message": "Invalid API key"})
    assert normalized(reply).outcome.failure_reason == "CLEARINGHOUSE_AUTH (HTTP 403)"


async def test_get_on_the_endpoint_is_403_like_stedi(stedi: Served) -> None:
    async with stedi.session.get(stedi.base_url + ELIGIBILITY_PATH, headers={"Authorization": TEST_KEY}) as response:
        assert response.status == 403


async def test_both_key_forms_and_application_mode(stedi: Served) -> None:
    raw = await stedi.post(stedi_request(*RIVERA), key=TEST_KEY)
    legacy = await stedi.post(stedi_request(*RIVERA), key=f"Key {TEST_KEY}")
    production = await stedi.post(stedi_request(*RIVERA), key=PROD_KEY)
    assert (raw.status, legacy.status, production.status) == (200, 200, 200)
    assert raw.body["meta"]["applicationMode"] == "test" and "*0*T*>~" in raw.body["x12"]
    assert production.body["meta"]["applicationMode"] == "production" and "*0*P*>~" in production.body["x12"]


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (lambda b: b["provider"].update(npi="1234567890"), "/provider/npi", "NPI check digit is invalid"),
        (lambda b: b["provider"].update(npi="12345"), "/provider/npi", "must match pattern ^\\d{10}$"),
        (lambda b: b["subscriber"].update(dateOfBirth="19851332"), "/subscriber/dateOfBirth", None),
        (lambda b: b.pop("subscriber"), "/subscriber", "is required"),
        (lambda b: b["subscriber"].update(memberId="SBX_1"), "/subscriber/memberId", None),
        (lambda b: b.update(tradingPartnerServiceId=""), "/tradingPartnerServiceId", None),
        (lambda b: b.update(dependents=[MAYA, MAYA]), "/dependents", None),
        (lambda b: b["encounter"].update(serviceTypeCodes=[]), "/encounter/serviceTypeCodes", None),
    ],
)
async def test_schema_violations_are_400_validation_exception(stedi: Served, mutate: Any, path: str, message: str | None) -> None:
    body = stedi_request(*RIVERA)
    mutate(body)
    reply = await stedi.post(body)
    assert reply.status == 400
    assert reply.body["message"] == "1 validation error detected"
    assert [f["path"] for f in reply.body["fieldList"]] == [path]
    if message:
        assert reply.body["fieldList"][0]["message"] == message
    assert normalized(reply).outcome.failure_reason == "STEDI_VALIDATION (HTTP 400)"


async def test_several_violations_and_bad_json(stedi: Served) -> None:
    body = stedi_request(*RIVERA)
    body["provider"]["npi"] = "1234567890"
    body["subscriber"]["dateOfBirth"] = "1985"
    reply = await stedi.post(body)
    assert (reply.status, reply.body["message"]) == (400, "2 validation errors detected")
    reply = await stedi.post(None, raw=b"{not json")
    assert reply.status == 400 and reply.body["fieldList"][0]["path"] == ""


async def test_unknown_payer_is_400_with_aaa_79(stedi: Served) -> None:
    reply = await stedi.post(stedi_request(*RIVERA, payer="NOPE1"))
    assert reply.status == 400
    assert reply.body["tradingPartnerServiceId"] == "NOPE1" and reply.body["status"] == "ERROR"
    assert reply.body["errors"][0] | {"possibleResolutions": ""} == {
        "field": "AAA", "code": "79", "description": "Invalid Participant Identification",
        "followupAction": "Please Correct and Resubmit", "location": "Loop 2100A", "possibleResolutions": "",
    }
    assert re.fullmatch(r"ec_[0-9a-f-]{36}", reply.body["id"])
    result = normalized(reply)
    assert (result.outcome.status, result.outcome.failure_reason, result.outcome.retry) == (
        CheckStatus.FAILED, "PAYER_NOT_CONFIGURED (AAA 79)", RetryPolicy.NONE)


# ---------------------------------------------------------------- envelope


async def test_envelope(stedi: Served) -> None:
    reply = await stedi.post(stedi_request(*RIVERA))
    body = reply.body
    meta = body["meta"]
    assert (meta["senderId"], meta["submitterId"]) == ("STEDI", "117151744")
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", meta["traceId"]) and meta["outboundTraceId"] == meta["traceId"]
    assert re.fullmatch(r"[1-9]\d{8}", body["controlNumber"]) and body["reassociationKey"] == body["controlNumber"]
    assert re.fullmatch(r"ec_[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", body["id"])
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", body["eligibilitySearchId"])
    assert "dependents" not in body and body["errors"] == []
    x12 = body["x12"]
    assert x12.startswith("ISA*00*") and x12.endswith(f"IEA*1*{body['controlNumber']}~")
    assert f"*00501*{body['controlNumber']}*0*T*>~" in x12 and f"BHT*0022*11*{meta['traceId']}*" in x12
    for segment in ("PER*IC**TE*8005550100*UR*WWW.EXAMPLE-PAYER.TEST/PROVIDERS", "NM1*IL*1*RIVERA*ALEX****MI*SBX100001",
                    "REF*6P*GRP778812*ACME MANUFACTURING EMPLOYEES", "DTP*291*RD8*20260101-20261231", "DTP*356*D8*20190301",
                    "EB*1**30*PR*CHOICE PPO 2500*******W", "EB*A*IND*98***27**.4****N", "EB*1**48********Y*Y",
                    "LS*2120~NM1*VN*2*EXAMPLE PHARMACY BENEFIT MANAGER~PER*IC**TE*8005550142~LE*2120", "SE*67*0001"):
        assert f"~{segment}~" in x12, segment
    second = await stedi.post(stedi_request(*RIVERA))
    assert second.body["id"] != body["id"] and second.body["meta"]["traceId"] != meta["traceId"]


async def test_plan_year_follows_the_date_of_service(stedi: Served) -> None:
    reply = await stedi.post(stedi_request(*RIVERA, dos="20250610"))
    assert reply.body["planDateInformation"] == {"plan": "20250101-20251231", "eligibilityBegin": "20190301"}
    reply = await stedi.post(stedi_request(*RIVERA, dos=None))  # no date: the sandbox's today (2026)
    assert reply.body["planDateInformation"]["plan"] == "20260101-20261231"
    reply = await stedi.post(stedi_request("SBX500001", "Chris", "Morgan", "19681111", dos="20250610"))
    assert reply.body["planDateInformation"] == {"planBegin": "20240101", "planEnd": "20241231"}


# ---------------------------------------------------------------- catalogue §5.3


async def test_1_active_partial_deductible_gives_the_spec_summary(stedi: Served) -> None:
    reply = await stedi.post(stedi_request(*RIVERA))
    assert reply.status == 200
    s = summary_of(reply)
    assert (s.active, s.coverage_status and s.coverage_status.code, s.plan_name, s.insurance_type_code) == (True, "1", "CHOICE PPO 2500", "PR")
    assert (s.group_number, s.group_name, s.plan_number) == ("GRP778812", "ACME MANUFACTURING EMPLOYEES", "PPO2500")
    assert (s.payer_id, s.payer_reported_id, s.payer_name) == ("SBX01", "SBX01", "SANDBOX MUTUAL HEALTH")
    assert (s.effective_date, s.termination_date, s.eligibility_begin_date) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31), dt.date(2019, 3, 1))
    assert numbers(s.deductible.individual.in_network) == n("23", "2500", "1650", "850", "850")
    assert numbers(s.deductible.individual.out_of_network) == n("23", "5000", "5000", "0")
    assert numbers(s.deductible.family.in_network) == n("23", "5000", "3400", "1600", "1600")
    assert numbers(s.deductible.family.out_of_network) == n("23", "10000", "10000", "0")
    assert numbers(s.out_of_pocket.individual.in_network) == n("23", "6000", "4800", "1200", "1200")
    assert numbers(s.out_of_pocket.individual.out_of_network) == n("23", "12000", "12000", "0")
    assert numbers(s.out_of_pocket.family.in_network) == n("23", "12000", "10100", "1900", "1900")
    assert numbers(s.out_of_pocket.family.out_of_network) == n("23", "24000", "24000", "0")

    assert [c.service_type_code for c in s.service_cost_shares] == ["30", "98", "UC", "86"]
    office = s.service("98")
    assert office is not None
    assert (office.in_network.copay, office.in_network.coinsurance_percent, office.in_network.flags) == (D("60"), D("0"), ("AMBIGUOUS_COPAY",))
    assert [(c.value, c.notes, c.place_of_service) for c in office.in_network.copay_candidates] == [
        (D("30"), ("PRIMARY CARE PHYSICIAN",), "11"), (D("60"), ("SPECIALIST",), "11")]
    assert (office.out_of_network.copay, office.out_of_network.coinsurance_percent, office.out_of_network.flags) == (None, D("40"), ())
    urgent, er = s.service("UC"), s.service("86")
    assert urgent is not None and er is not None
    assert (urgent.in_network.copay, urgent.in_network.coinsurance_percent) == (D("75"), None)
    assert (urgent.out_of_network.copay, urgent.out_of_network.coinsurance_percent) == (None, D("40"))
    for cell in (er.in_network, er.out_of_network):
        assert (cell.copay, cell.coinsurance_percent) == (D("250"), D("20"))
    assert s.office_visit_in_network is not None and s.office_visit_in_network.copay == D("60")
    kinds = [(note.kind, note.service_type_codes) for note in s.notes]
    assert (NoteKind.AUTH_REQUIRED, ("48",)) in kinds and (NoteKind.RELATED_ENTITY, ("88",)) in kinds
    assert (NoteKind.INFO, ("98",)) in kinds
    assert (s.raw_ref.stedi_id, s.raw_ref.trace_id) == (reply.body["id"], reply.body["meta"]["traceId"])
    assert s.flags == ()


async def test_2_family_dependent(stedi: Served) -> None:
    reply = await stedi.post(stedi_request(*SHAH, dependent=MAYA))
    assert reply.status == 200
    assert reply.body["dependents"] == [{
        "firstName": "MAYA", "lastName": "SHAH", "dateOfBirth": "20120605", "gender": "F", "relationToSubscriber": "Child",
        "relationToSubscriberCode": "19", "entityIdentifier": "Dependent", "entityType": "Person", "insuredIndicator": "N"}]
    assert "HL*4*3*23*0~NM1*03*1*SHAH*MAYA~DMG*D8*20120605*F~INS*N*19~" in reply.body["x12"]
    s = summary_of(reply, dependent=True)
    assert (s.active, s.plan_name) == (True, "FAMILY PPO 1500")
    assert numbers(s.deductible.individual.in_network) == n("23", "1500", "400", "1100")
    assert numbers(s.deductible.family.in_network) == n("23", "3000", "1300", "1700")
    assert numbers(s.deductible.individual.out_of_network) == n("23", "3000", "3000", "0")
    assert numbers(s.deductible.family.out_of_network) == n("23", "6000", "6000", "0")
    assert numbers(s.out_of_pocket.individual.in_network) == n("23", "5000", "3900", "1100")
    assert numbers(s.out_of_pocket.family.in_network) == n("23", "10000", "8300", "1700")
    assert numbers(s.out_of_pocket.individual.out_of_network) == n("23", "10000", "10000", "0")
    assert numbers(s.out_of_pocket.family.out_of_network) == n("23", "20000", "20000", "0")
    office = s.service("98")
    assert office is not None
    assert (office.in_network.copay, office.in_network.coinsurance_percent) == (D("25"), D("20"))
    assert (office.out_of_network.copay, office.out_of_network.coinsurance_percent) == (None, D("40"))

    alone = await stedi.post(stedi_request(*SHAH))
    assert "dependents" not in alone.body
    assert alone.body["benefitsInformation"] == reply.body["benefitsInformation"]


@pytest.mark.parametrize(("dependent", "code"), [({**MAYA, "dateOfBirth": "20120606"}, "71"), ({**MAYA, "firstName": "Mia"}, "77")])
async def test_2_dependent_mismatch(stedi: Served, dependent: dict[str, Any], code: str) -> None:
    reply = await stedi.post(stedi_request(*SHAH, dependent=dependent))
    assert reply.status == 200 and aaa_codes(reply) == [code]
    assert reply.body["dependents"][0]["aaaErrors"][0]["location"] == "Loop 2100D"
    assert "benefitsInformation" not in reply.body
    result = normalized(reply, dependent=True)
    assert result.outcome.status is CheckStatus.NOT_FOUND and result.outcome.failure_reason == f"MEMBER_NOT_FOUND (AAA {code})"


async def test_3_deductible_met(stedi: Served) -> None:
    s = summary_of(await stedi.post(stedi_request("SBX300001", "Jordan", "Lee", "19900214")))
    assert numbers(s.deductible.individual.in_network) == n("23", "2000", "0", "2000", "2000")
    assert numbers(s.deductible.family.in_network) == n("23", "4000", "1500", "2500", "2500")
    assert numbers(s.out_of_pocket.individual.in_network) == n("23", "7000", "3200", "3800", "3800")
    assert numbers(s.deductible.individual.out_of_network) == n("23", "5000", "5000", "0")


async def test_4_oop_met(stedi: Served) -> None:
    s = summary_of(await stedi.post(stedi_request("SBX400001", "Sam", "Patel", "19720930")))
    assert numbers(s.deductible.individual.in_network) == n("23", "2000", "0", "2000", "2000")
    assert numbers(s.out_of_pocket.individual.in_network) == n("23", "6500", "0", "6500", "6500")
    assert numbers(s.out_of_pocket.family.in_network) == n("23", "13000", "4100", "8900", "8900")
    office = s.service("98")
    assert office is not None and (office.in_network.copay, office.in_network.flags) == (D("30"), ())


async def test_5_inactive(stedi: Served) -> None:
    reply = await stedi.post(stedi_request("SBX500001", "Chris", "Morgan", "19681111"))
    assert reply.status == 200 and reply.body["errors"] == []
    assert reply.body["benefitsInformation"] == [{
        "code": "6", "name": "Inactive", "serviceTypeCodes": ["30"], "serviceTypes": ["Health Benefit Plan Coverage"],
        "inPlanNetworkIndicatorCode": "W", "inPlanNetworkIndicator": "Not Applicable"}]
    assert reply.body["planStatus"] == [{"statusCode": "6", "status": "Inactive", "serviceTypeCodes": ["30"]}]
    assert reply.body["planDateInformation"] == {"planBegin": "20250101", "planEnd": "20251231"}
    s = summary_of(reply)
    assert s.active is False and s.coverage_status is not None and s.coverage_status.code == "6"
    assert (s.effective_date, s.termination_date) == (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    assert s.flags == ("DOS_OUTSIDE_PLAN_DATES",)


@pytest.mark.parametrize(
    ("subscriber", "code", "followup", "status", "retry"),
    [
        (("SBX999999", "Alex", "Rivera", "19850412"), "75", "Resubmission Not Allowed", CheckStatus.NOT_FOUND, RetryPolicy.NONE),
        (("XYZ-123", "Alex", "Rivera", "19850412"), "72", "Please Correct and Resubmit", CheckStatus.NOT_FOUND, RetryPolicy.NONE),
        (("SBX100001", "Alex", "Rivera", "19850413"), "71", "Please Correct and Resubmit", CheckStatus.NOT_FOUND, RetryPolicy.NONE),
        (("SBX100001", "Alexa", "Rivera", "19850412"), "73", "Please Correct and Resubmit", CheckStatus.NOT_FOUND, RetryPolicy.NONE),
        (("SBX420001", "Pat", "Quinn", "19800101"), "42", "Resubmission Allowed", CheckStatus.FAILED, RetryPolicy.PAYER_BUDGET),
        (("SBX800001", "Robin", "Diaz", "19750505"), "80", "Resubmission Allowed", CheckStatus.FAILED, RetryPolicy.PAYER_BUDGET),
    ],
)
async def test_6_to_11_aaa_members(stedi: Served, subscriber: tuple[str, ...], code: str, followup: str,
                                   status: CheckStatus, retry: RetryPolicy) -> None:
    reply = await stedi.post(stedi_request(*subscriber))
    assert reply.status == 200 and aaa_codes(reply) == [code]
    assert reply.body["errors"][0]["followupAction"] == followup
    assert "benefitsInformation" not in reply.body
    letter = {"Resubmission Not Allowed": "N", "Please Correct and Resubmit": "C", "Resubmission Allowed": "R"}[followup]
    assert f"AAA*N**{code}*{letter}~" in reply.body["x12"]
    result = normalized(reply)
    assert (result.outcome.status, result.outcome.retry, result.summary) == (status, retry, None)
    assert result.outcome.aaa_codes == (code,)


async def test_subscriber_not_found_echoes_what_was_sent(stedi: Served) -> None:
    reply = await stedi.post(stedi_request("SBX999999", "alex", "rivera", "19850412"))
    subscriber = reply.body["subscriber"]
    assert (subscriber["firstName"], subscriber["lastName"], subscriber["memberId"]) == ("ALEX", "RIVERA", "SBX999999")
    assert subscriber["aaaErrors"] == reply.body["errors"] and "address" not in subscriber
    assert reply.body["errors"][0]["location"] == "Loop 2100C"


async def test_9_payer_unavailable_shape(stedi: Served) -> None:
    reply = await stedi.post(stedi_request("SBX420001", "Pat", "Quinn", "19800101"))
    assert reply.body["subscriber"]["groupNumber"] == "666777" and reply.body["planInformation"] == {"groupNumber": "666777"}
    assert reply.body["errors"][0]["description"] == "Unable to Respond at Current Time"


async def test_11_no_response_is_payer_level(stedi: Served) -> None:
    reply = await stedi.post(stedi_request("SBX800001", "Robin", "Diaz", "19750505"))
    assert "subscriber" not in reply.body and "planInformation" not in reply.body
    assert reply.body["payer"]["aaaErrors"] == reply.body["errors"]
    assert reply.body["errors"][0]["location"] == "Loop 2100A"
    assert "~NM1*PR*2*SANDBOX MUTUAL HEALTH*****PI*SBX01~PER*IC**TE*8005550100*UR*WWW.EXAMPLE-PAYER.TEST/PROVIDERS~AAA*N**80*R~SE*" in reply.body["x12"]
    assert "HL*2" not in reply.body["x12"]


async def test_10_flaky_member_then_recovery_and_reset(stedi: Served) -> None:
    flaky = stedi_request("SBX420002", "Pat", "Quinn", "19800101")
    first, second, third = [await stedi.post(flaky) for _ in range(3)]
    assert (aaa_codes(first), aaa_codes(second), aaa_codes(third)) == (["42"], ["42"], [])
    s = summary_of(third)
    assert s.active is True and numbers(s.deductible.individual.in_network) == n("23", "2500", "1650", "850", "850")
    assert third.body["subscriber"]["firstName"] == "PAT"
    other_key = await stedi.post(flaky, key=PROD_KEY)  # counters are per API key
    assert aaa_codes(other_key) == ["42"]
    async with stedi.session.post(stedi.base_url + RESET_PATH) as response:
        assert response.status == 200
    assert aaa_codes(await stedi.post(flaky)) == ["42"]


async def test_12_slow_member(stedi: Served) -> None:
    started = time.monotonic()
    reply = await stedi.post(stedi_request("SBX700001", "Dana", "Kim", "19920707"))
    assert time.monotonic() - started >= 0.3
    assert summary_of(reply).active is True


async def test_13_payer_timeout(stedi: Served) -> None:
    started = time.monotonic()
    reply = await stedi.post(stedi_request("SBX700002", "Dana", "Kim", "19920707"))
    assert time.monotonic() - started >= 0.3
    assert aaa_codes(reply) == ["80"] and normalized(reply).outcome.retry is RetryPolicy.PAYER_BUDGET


@pytest.mark.parametrize(
    ("member_id", "status", "code", "retry"),
    [("SBX429001", 429, "TOO_MANY_REQUESTS", RetryPolicy.THROTTLED), ("SBX503001", 503, "SERVICE_UNAVAILABLE", RetryPolicy.BACKOFF),
     ("SBX504001", 504, "GATEWAY_TIMEOUT", RetryPolicy.BACKOFF)],
)
async def test_14_15_stedi_http_failures(stedi: Served, member_id: str, status: int, code: str, retry: RetryPolicy) -> None:
    reply = await stedi.post(stedi_request(member_id, "Any", "Body", None))
    assert (reply.status, reply.body["code"]) == (status, code)
    assert normalized(reply).outcome.retry is retry


# ---------------------------------------------------------------- Stedi's own mock members §5.2


async def test_captured_aetna_is_served_with_a_fresh_envelope(stedi: Served) -> None:
    reply = await stedi.post(stedi_request("AETNA12345", "Jane", "Doe", "20040404", payer="60054", dos=None))
    captured = load_fixture("active_aetna.json")
    assert reply.status == 200
    assert reply.body["benefitsInformation"] == captured["benefitsInformation"]
    assert reply.body["id"] != captured["id"] and reply.body["controlNumber"] != captured["controlNumber"]
    assert f"*00501*{reply.body['controlNumber']}*" in reply.body["x12"] and captured["controlNumber"] not in reply.body["x12"]
    dos = dt.date(2024, 9, 17)
    expected = normalize_response(200, captured, NormalizationContext("60054", dos)).summary
    got = summary_of(reply, dos=dos)
    assert expected is not None and got.deductible == expected.deductible and got.service_cost_shares == expected.service_cost_shares


async def test_captured_uhc_inactive(stedi: Served) -> None:
    reply = await stedi.post(stedi_request("UHCINACTIVE", "Jane", "Doe", "19710101", payer="87726"))
    s = summary_of(reply)
    assert s.active is False and s.payer_name == "UNITEDHEALTHCARE"


@pytest.mark.parametrize(
    ("member", "code", "location", "status", "retry"),
    [
        (("UHCAAA42", "Jane", "Doe", "20010101"), "42", "Loop 2100C", CheckStatus.FAILED, RetryPolicy.PAYER_BUDGET),
        (("UHCAAA43", "Jane", "Doe", "19700101"), "43", "Loop 2100B", CheckStatus.FAILED, RetryPolicy.NONE),
        (("UHCAAA72", "John", "Doe", "19900101"), "72", "Loop 2100C", CheckStatus.NOT_FOUND, RetryPolicy.NONE),
        (("UHCAAA73", "John", "Doe", "19900101"), "73", "Loop 2100C", CheckStatus.NOT_FOUND, RetryPolicy.NONE),
        (("UHCAAA75", "Jane", "Doe", "19900101"), "75", "Loop 2100C", CheckStatus.NOT_FOUND, RetryPolicy.NONE),
        (("UHCAAA79", "John", "Doe", "19700101"), "79", "Loop 2100A", CheckStatus.FAILED, RetryPolicy.ONCE),
    ],
)
async def test_stedi_aaa_mocks(stedi: Served, member: tuple[str, ...], code: str, location: str, status: CheckStatus,
                               retry: RetryPolicy) -> None:
    body = stedi_request(*member, payer="87726")
    body["provider"]["organizationName"] = "Medical Provider"
    reply = await stedi.post(body)
    assert reply.status == 200 and aaa_codes(reply) == [code] and reply.body["errors"][0]["location"] == location
    if code != "79":  # payer level: no provider/subscriber loops
        assert reply.body["provider"]["providerName"] == "MEDICAL PROVIDER"
    outcome = normalized(reply).outcome
    assert (outcome.status, outcome.retry) == (status, retry)


async def test_uhc_hmo_mock_flags_the_inconsistent_family_oop(stedi: Served) -> None:
    s = summary_of(await stedi.post(stedi_request("UHC123456", "Jane", "Doe", "19710101", payer="87726")))
    assert (s.plan_name, s.insurance_type_code) == ("Gold Plan HMO", "HM")
    assert numbers(s.deductible.individual.in_network) == n(None, None, "0", None)
    assert numbers(s.out_of_pocket.individual.in_network) == n("23", "1500", "850", "650", "650")
    assert numbers(s.out_of_pocket.family.in_network) == n("23", "3000", "2200", "800", "925", ("INCONSISTENT",))
    assert [c.service_type_code for c in s.service_cost_shares] == ["30", "BY", "BZ", "96", "UC", "86"]
    assert s.office_visit_in_network is not None and (s.office_visit_in_network.service_type_code, s.office_visit_in_network.copay) == ("BY", D("15"))
    er = s.service("86")
    assert er is not None and er.in_network.copay == D("50")


async def test_uhc_choice_plus_dependent_mock(stedi: Served) -> None:
    dependent = {"firstName": "Jane", "lastName": "Doe", "dateOfBirth": "19521121", "individualRelationshipCode": "01"}
    reply = await stedi.post(stedi_request("UHC202649", "John", "Doe", None, payer="87726", dependent=dependent))
    s = summary_of(reply, dependent=True)
    assert numbers(s.deductible.family.in_network) == n("23", "3200", "0", "3200", "3200")
    assert numbers(s.deductible.family.out_of_network) == n("23", "5000", "1800", "3200", "3200")
    assert numbers(s.out_of_pocket.family.in_network) == n("23", "6850", "1294.84", "5555.16", "5555.16")
    assert numbers(s.out_of_pocket.family.out_of_network) == n("23", "15500", "9944.84", "5555.16", "5555.16")


@pytest.mark.parametrize(("payer", "member", "stc"), [("CMS", ("CMS12345678", "Jane", "Doe", "19550505"), "30"),
                                                      ("62308", ("5643296", "Rolando", "Arrojo", "19710102"), "30"),
                                                      ("52133", ("404404404", "Beaver", "Dent", "19690628"), "35")])
async def test_other_stedi_mocks_are_active(stedi: Served, payer: str, member: tuple[str, ...], stc: str) -> None:
    reply = await stedi.post(stedi_request(*member, payer=payer, stcs=[stc]))
    context = NormalizationContext(payer, DOS, (stc,))
    result = normalize_response(reply.status, reply.body, context)
    assert result.summary is not None and result.summary.active is True


async def test_unknown_member_of_a_mock_payer_is_not_found(stedi: Served) -> None:
    reply = await stedi.post(stedi_request("UHC000000", "Jane", "Doe", "19710101", payer="87726"))
    assert aaa_codes(reply) == ["75"]


# ---------------------------------------------------------------- fault hook, logging


class _OneFault:
    def __init__(self) -> None:
        self.calls = 0

    async def apply(self, request: web.Request) -> web.StreamResponse | None:
        self.calls += 1
        return web.json_response({"message": "injected"}, status=502) if self.calls == 1 else None


async def test_fault_hook_runs_first() -> None:
    faults = _OneFault()
    async for served in serve(create_stedi_app(sandbox_config(), faults=faults)):
        first = await served.post(stedi_request(*RIVERA), key=None)  # even before auth
        second = await served.post(stedi_request(*RIVERA))
        assert (first.status, first.body, second.status, faults.calls) == (502, {"message": "injected"}, 200, 2)


async def test_no_phi_in_sandbox_logs(stedi: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="server.sandbox")
    await stedi.post(stedi_request(*RIVERA))
    await stedi.post(stedi_request("SBX999999", "Alex", "Rivera", "19850412"))
    text = caplog.text
    assert "stedi sandbox answered" in text
    for phi in ("SBX100001", "SBX999999", "Alex", "ALEX", "Rivera", "RIVERA", "19850412"):
        assert phi not in text
