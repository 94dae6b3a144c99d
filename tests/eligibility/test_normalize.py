"""Normalization recipe (spec §4) on the two real Stedi captures and on small synthetic bodies."""

from __future__ import annotations

import ast
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from server.domain.eligibility.normalize import NormalizationContext, normalize_response
from server.domain.eligibility.status import CheckStatus, RetryPolicy
from server.domain.eligibility.summary import Bucket, EligibilitySummary, NoteKind

from .conftest import load_fixture

D = Decimal
AETNA_DOS = dt.date(2024, 9, 17)
ROOT = Path(__file__).resolve().parents[2]


def ctx(dos: dt.date = AETNA_DOS, payer: str = "60054", stcs: tuple[str, ...] = ("30",), dependent: bool = False) -> NormalizationContext:
    return NormalizationContext(payer_id=payer, date_of_service=dos, service_type_codes=stcs, patient_is_dependent=dependent)


def summarize(body: dict[str, Any], context: NormalizationContext | None = None) -> EligibilitySummary:
    result = normalize_response(200, body, context or ctx())
    assert result.outcome.status is CheckStatus.VERIFIED, result.outcome
    assert result.summary is not None
    return result.summary


def bucket(total: str | None, remaining: str | None, met: str | None, period: str | None = "23", met_reported: str | None = None,
           flags: tuple[str, ...] = (), refs: tuple[int, ...] = ()) -> Bucket:
    def dec(v: str | None) -> Decimal | None:
        return None if v is None else D(v)

    return Bucket(period, dec(total), dec(remaining), dec(met), dec(met_reported), flags, refs)


# ---------------------------------------------------------------- real captures


def test_active_aetna_by_hand() -> None:
    body = load_fixture("active_aetna.json")
    s = summarize(body)
    assert s.active is True
    assert (s.coverage_status and s.coverage_status.code, s.coverage_status and s.coverage_status.name) == ("1", "Active Coverage")
    assert (s.plan_name, s.insurance_type_code) == ("Gold Plan", "PR")
    assert (s.group_number, s.group_name, s.plan_number) == ("111222333444555", "New Jersey Plan", "1122334")
    assert (s.payer_id, s.payer_reported_id, s.payer_name) == ("60054", "953402799", "AETNA INC")
    assert (s.effective_date, s.termination_date, s.eligibility_begin_date) == (dt.date(2024, 4, 1), None, None)
    # Deductible and OOP: totals are time qualifier 25 (Contract), remaining = total, nothing met.
    assert s.deductible.individual.in_network == bucket("500", "500", "0", "25", refs=(2, 3))
    assert s.deductible.individual.out_of_network == bucket("1000", "1000", "0", "25", refs=(6, 7))
    assert s.out_of_pocket.individual.in_network == bucket("7000", "7000", "0", "25", refs=(4, 5))
    assert s.out_of_pocket.individual.out_of_network == bucket("14000", "14000", "0", "25", refs=(8, 9))
    assert s.deductible.family.in_network is None and s.out_of_pocket.family.out_of_network is None

    assert [c.service_type_code for c in s.service_cost_shares] == ["30", "98", "UC", "86"]
    plan = s.service("30")
    assert plan is not None and plan.in_network.flags == ("STC_NOT_RETURNED",)
    office = s.service("98")
    assert office is not None
    assert (office.in_network.copay, office.in_network.coinsurance_percent) == (D("30"), D("0"))
    assert (office.out_of_network.copay, office.out_of_network.coinsurance_percent) == (None, D("50"))
    urgent = s.service("UC")
    assert urgent is not None  # $30 (98/MH/UC) vs $40 (86/UC): the more specific line wins, no ambiguity
    assert (urgent.in_network.copay, urgent.in_network.coinsurance_percent, urgent.in_network.flags) == (D("40"), D("0"), ())
    assert urgent.in_network.source_refs == (11, 16)
    assert (urgent.out_of_network.copay, urgent.out_of_network.coinsurance_percent) == (None, D("50"))
    er = s.service("86")
    assert er is not None  # the 86-only 20 % beats the catch-all 0 % / 50 %
    assert (er.in_network.copay, er.in_network.coinsurance_percent) == (D("40"), D("20"))
    assert (er.out_of_network.copay, er.out_of_network.coinsurance_percent) == (None, D("20"))
    assert s.office_visit_in_network is not None and s.office_visit_in_network.copay == D("30")
    assert s.office_visit_out_of_network is not None and s.office_visit_out_of_network.coinsurance_percent == D("50")
    assert [c.source_ref for c in s.cost_shares] == [11, 12, 13, 14, 15, 16, 17, 18]
    assert s.cost_shares[0].percent == D("0") and s.cost_shares[6].percent == D("50")
    assert s.notes == () and s.flags == ()
    assert s.source_refs == (1,)
    assert (s.raw_ref.stedi_id, s.raw_ref.trace_id) == ("ec_019f665f-a2c0-7700-bbd9-4245dfbcf1d2", "11112222333344445555666677")


def test_aetna_before_plan_begin_is_inactive_and_drops_dated_entries() -> None:
    s = summarize(load_fixture("active_aetna.json"), ctx(dt.date(2024, 3, 1)))
    assert s.active is False and "DOS_OUTSIDE_PLAN_DATES" in s.flags
    # the 25 totals carry benefitsDateInformation.planBegin 20240401: not valid on 2024-03-01
    assert s.deductible.individual.in_network == bucket(None, "500", None, None, refs=(3,))


def test_inactive_uhc() -> None:
    s = summarize(load_fixture("inactive_uhc.json"), ctx(payer="87726"))
    assert s.active is False
    assert s.coverage_status is not None and (s.coverage_status.code, s.coverage_status.name) == ("6", "Inactive")
    assert (s.effective_date, s.termination_date, s.plan_name) == (None, None, None)
    assert (s.payer_name, s.payer_reported_id) == ("UNITEDHEALTHCARE", "87726")
    assert s.deductible.individual.in_network is None and s.out_of_pocket.family.in_network is None
    assert [c.service_type_code for c in s.service_cost_shares] == ["30"]
    assert s.office_visit_in_network is None and s.cost_shares == ()
    assert s.flags == () and s.source_refs == (0,)


@pytest.mark.parametrize("name", ["active_aetna.json", "inactive_uhc.json"])
def test_summary_json_round_trip(name: str) -> None:
    s = summarize(load_fixture(name), ctx(payer="87726" if "uhc" in name else "60054"))
    data = s.to_json()
    assert EligibilitySummary.from_json(data) == s
    assert EligibilitySummary.from_json(s.to_json_text()) == s
    assert data["recipe_version"] == s.recipe_version


def test_money_is_stored_as_strings() -> None:
    data = summarize(load_fixture("active_aetna.json")).to_json()
    assert data["deductible"]["individual"]["in_network"]["total"] == "500"
    assert data["service_cost_shares"][1]["out_of_network"]["coinsurance_percent"] == "50"
    assert data["effective_date"] == "2024-04-01"


def test_no_float_in_the_eligibility_domain() -> None:
    for path in sorted((ROOT / "server" / "domain" / "eligibility").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Name) and node.id == "float"), f"{path.name}:{node.lineno}"
            assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), f"{path.name}:{node.lineno}"


# ---------------------------------------------------------------- outcomes (step 0, §3.5)


@pytest.mark.parametrize(
    ("http", "reason", "retry"),
    [
        (401, "CLEARINGHOUSE_AUTH (HTTP 401)", RetryPolicy.NONE),
        (403, "CLEARINGHOUSE_AUTH (HTTP 403)", RetryPolicy.NONE),
        (404, "STEDI_UNEXPECTED_STATUS (HTTP 404)", RetryPolicy.NONE),
        (429, "STEDI_THROTTLED (HTTP 429)", RetryPolicy.THROTTLED),
        (500, "STEDI_UNAVAILABLE (HTTP 500)", RetryPolicy.BACKOFF),
        (503, "STEDI_UNAVAILABLE (HTTP 503)", RetryPolicy.BACKOFF),
        (504, "STEDI_UNAVAILABLE (HTTP 504)", RetryPolicy.BACKOFF),
    ],
)
def test_http_failures(http: int, reason: str, retry: RetryPolicy) -> None:
    result = normalize_response(http, {"message": "whatever"}, ctx())
    assert (result.outcome.status, result.outcome.failure_reason, result.outcome.retry) == (CheckStatus.FAILED, reason, retry)
    assert result.summary is None


def test_400_validation_exception_and_unknown_payer() -> None:
    result = normalize_response(400, {"message": "1 validation error detected", "fieldList": []}, ctx())
    assert result.outcome.failure_reason == "STEDI_VALIDATION (HTTP 400)"
    body = {"tradingPartnerServiceId": "NOPE1", "errors": [{"field": "AAA", "code": "79", "location": "Loop 2100A"}], "status": "ERROR"}
    result = normalize_response(400, body, ctx())
    assert result.outcome.failure_reason == "PAYER_NOT_CONFIGURED (AAA 79)" and not result.outcome.retryable


def test_200_without_benefits_or_errors_is_failed() -> None:
    result = normalize_response(200, {"errors": []}, ctx())
    assert (result.outcome.status, result.outcome.failure_reason) == (CheckStatus.FAILED, "NO_BENEFITS_RETURNED")


def test_plan_status_is_a_fallback_only_without_benefits() -> None:
    body = {"errors": [], "planStatus": [{"statusCode": "1", "status": "Active Coverage", "planDetails": "Gold", "serviceTypeCodes": ["30"]}]}
    s = summarize(body)
    assert (s.active, s.plan_name, s.flags) == (True, "Gold", ("PLAN_STATUS_FALLBACK",))
    body["benefitsInformation"] = [{"code": "6", "serviceTypeCodes": ["30"]}]
    assert summarize(body).active is False


def _aaa(code: str, location: str) -> dict[str, Any]:
    return {"field": "AAA", "code": code, "location": location}


ACTIVE = [{"code": "1", "serviceTypeCodes": ["30"]}]


@pytest.mark.parametrize(
    ("error", "dependent", "status"),
    [
        (_aaa("43", "Loop 2100B"), False, CheckStatus.VERIFIED),  # provider-level: benefits win
        (_aaa("75", "Loop 2100C"), False, CheckStatus.NOT_FOUND),
        (_aaa("71", "Loop 2100D"), False, CheckStatus.VERIFIED),  # about a dependent, patient is the subscriber
        (_aaa("71", "Loop 2100D"), True, CheckStatus.NOT_FOUND),
        (_aaa("42", "Loop 2100C"), False, CheckStatus.FAILED),
        (_aaa("33", "Loop 2100A"), False, CheckStatus.FAILED),  # payer level
    ],
)
def test_errors_next_to_benefits(error: dict[str, Any], dependent: bool, status: CheckStatus) -> None:
    result = normalize_response(200, {"errors": [error], "benefitsInformation": ACTIVE}, ctx(dependent=dependent))
    assert result.outcome.status is status
    if status is CheckStatus.VERIFIED:
        assert result.summary is not None and "AAA_ERRORS_IGNORED" in result.summary.flags
        assert result.outcome.aaa_codes == (error["code"],)
    else:
        assert result.summary is None


# ---------------------------------------------------------------- recipe details


def acc(code: str, level: str | None, tq: str | None, amount: str, net: str | None = "Y", stcs: list[str] | None = None,
        **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"code": code, "serviceTypeCodes": ["30"] if stcs is None else stcs, "benefitAmount": amount}
    if level:
        entry["coverageLevelCode"] = level
    if tq:
        entry["timeQualifierCode"] = tq
    if net:
        entry["inPlanNetworkIndicatorCode"] = net
    return entry | extra


def with_benefits(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"errors": [], "benefitsInformation": [*ACTIVE, *entries]}


def test_repeated_accumulator_values_take_the_largest_and_flag() -> None:
    s = summarize(with_benefits(acc("C", "IND", "23", "0"), acc("C", "IND", "23", "3200"), acc("C", "IND", "29", "1000")))
    assert s.deductible.individual.in_network == bucket("3200", "1000", "2200", flags=("AMBIGUOUS_TOTAL",), refs=(1, 2, 3))


def test_remaining_above_total_is_inconsistent() -> None:
    s = summarize(with_benefits(acc("C", "IND", "23", "500"), acc("C", "IND", "29", "900")))
    assert s.deductible.individual.in_network == bucket("500", "900", None, flags=("INCONSISTENT",), refs=(1, 2))


def test_met_reported_without_remaining_derives_remaining() -> None:
    s = summarize(with_benefits(acc("G", "IND", "22", "6000"), acc("G", "IND", "24", "1500")))
    assert s.out_of_pocket.individual.in_network == bucket("6000", "4500", "1500", "22", "1500", refs=(1, 2))


def test_met_reported_disagreeing_with_derived_is_flagged() -> None:
    s = summarize(with_benefits(acc("G", "FAM", "23", "3000"), acc("G", "FAM", "29", "2200"), acc("G", "FAM", "24", "925")))
    assert s.out_of_pocket.family.in_network == bucket("3000", "2200", "800", met_reported="925", flags=("INCONSISTENT",), refs=(1, 2, 3))


def test_only_remaining() -> None:
    s = summarize(with_benefits(acc("C", "IND", "29", "0")))
    assert s.deductible.individual.in_network == bucket(None, "0", None, None, refs=(1,))


def test_total_qualifier_priority() -> None:
    s = summarize(with_benefits(acc("C", "IND", "25", "900"), acc("C", "IND", "22", "800"), acc("C", "IND", "21", "700")))
    bucket_ = s.deductible.individual.in_network
    assert bucket_ is not None and (bucket_.period, bucket_.total) == ("22", D("800"))


def test_levels_networks_and_exclusions() -> None:
    s = summarize(with_benefits(
        acc("C", "EMP", "23", "1000", net="W"),  # individual, both networks
        acc("C", None, "23", "9999"),  # ignored: explicit individual entries exist
        acc("C", "ESP", "23", "5000"),  # unmapped level
        acc("C", "IND", "32", "50000"),  # lifetime: not annual
        acc("C", "IND", "23", "40", stcs=["A6"]),  # service-specific
        acc("C", "IND", "23", "1000", net="N", benefitsDateInformation={"planEnd": "20240101"}),  # not valid on dos
    ))
    assert s.deductible.individual.in_network == bucket("1000", None, None, refs=(1,))
    assert s.deductible.individual.out_of_network == bucket("1000", None, None, refs=(1,))
    assert s.deductible.family.in_network is None
    assert "UNMAPPED_COVERAGE_LEVEL" in s.flags


def test_level_less_entries_count_as_individual_when_alone() -> None:
    s = summarize(with_benefits(acc("G", None, "23", "4000", net=None)))
    assert s.out_of_pocket.individual.in_network == bucket("4000", None, None, refs=(1,))
    assert s.out_of_pocket.individual.out_of_network == bucket("4000", None, None, refs=(1,))


def test_conflicting_status_is_unclear() -> None:
    body = {"errors": [], "benefitsInformation": [*ACTIVE, {"code": "6", "serviceTypeCodes": ["30"]}]}
    s = summarize(body)
    assert s.active is None and "COVERAGE_STATUS_UNCLEAR" in s.flags


def test_status_without_stc_is_a_fallback() -> None:
    s = summarize({"errors": [], "benefitsInformation": [{"code": "1"}]})
    assert s.active is True


def cs(code: str, stcs: list[str], net: str, value: str, **extra: Any) -> dict[str, Any]:
    key = "benefitAmount" if code == "B" else "benefitPercent"
    return {"code": code, "serviceTypeCodes": stcs, "inPlanNetworkIndicatorCode": net, key: value} | extra


def test_copay_rules() -> None:
    s = summarize(with_benefits(
        cs("B", ["98"], "Y", "999", coverageLevelCode="FAM"),  # family lines never give a copay
        cs("B", ["98"], "Y", "80", timeQualifierCode="23"),  # per-visit (27/missing) preferred
        cs("B", ["98"], "Y", "25", timeQualifierCode="27"),
        cs("B", ["98", "UC"], "Y", "99"),  # less specific than the 98-only lines
        cs("B", ["98"], "Y", "45", additionalInformation=[{"description": "SPECIALIST"}]),
        cs("A", ["98"], "W", "0.125"),
    ), ctx(stcs=("98", "A6")))
    office = s.service("98")
    assert office is not None
    assert office.in_network.copay == D("45") and office.in_network.flags == ("AMBIGUOUS_COPAY",)
    assert [(c.value, c.notes, c.source_ref) for c in office.in_network.copay_candidates] == [
        (D("25"), (), 3),
        (D("45"), ("SPECIALIST",), 5),
    ]
    assert office.in_network.coinsurance_percent == D("12.5")
    assert office.out_of_network.copay is None and office.out_of_network.coinsurance_percent == D("12.5")
    psycho = s.service("A6")
    assert psycho is not None and psycho.in_network.flags == ("STC_NOT_RETURNED",)
    assert [c.service_type_code for c in s.service_cost_shares] == ["98", "A6"]  # no extras unless only 30 asked


def test_notes() -> None:
    s = summarize(with_benefits(
        {"code": "1", "serviceTypeCodes": ["48"], "authOrCertIndicator": "Y", "additionalInformation": [{"description": "PA NEEDED"}]},
        {"code": "L", "benefitsRelatedEntities": [{"entityName": "DR PCP"}]},
        {"code": "U", "serviceTypeCodes": ["88"], "benefitsRelatedEntities": [
            {"entityName": "PBM", "contactInformation": {"contacts": [{"communicationMode": "Telephone", "communicationNumber": "8005550142"}]}}]},
        {"code": "C", "serviceTypeCodes": ["98"], "additionalInformation": [{"description": "NO DEDUCTIBLE"}]},
    ))
    assert [(n.kind, n.service_type_codes, n.text, n.source_ref) for n in s.notes] == [
        (NoteKind.AUTH_REQUIRED, ("48",), "PA NEEDED", 1),
        (NoteKind.PCP, (), "DR PCP", 2),
        (NoteKind.RELATED_ENTITY, ("88",), "PBM (Telephone 8005550142)", 3),
        (NoteKind.INFO, ("98",), "NO DEDUCTIBLE", 4),
    ]


def test_bad_amounts_are_ignored_not_guessed() -> None:
    s = summarize(with_benefits(acc("C", "IND", "23", "12,50"), acc("C", "IND", "29", "NaN")))
    assert s.deductible.individual.in_network is None
