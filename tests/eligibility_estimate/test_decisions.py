"""One test per rule of the derivation (D1–D9 and the assumption catalogue) on small synthetic 271s, rendered
with the sandbox's line builder and read by the real normalizer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from server.domain.eligibility import EligibilitySummary, NormalizationContext, normalize_response
from server.domain.eligibility_estimate import (
    IN,
    OUT,
    Completeness,
    CoverageRefused,
    EstimateProvider,
    ProviderEstimate,
    ProviderRole,
    ServiceToEstimate,
    estimate_from_eligibility,
)
from server.domain.eligibility_estimate.deductible import Signal, text_signal
from server.domain.eligibility_estimate.service_types import candidate_service_types
from server.sandbox.stedi_catalogue import eb

D = Decimal
ACTIVE = eb("1", ("30",), ins="PR", plan="PLAN A", net="W")


def _summary(*lines: dict[str, Any], status: tuple[dict[str, Any], ...] = (ACTIVE,)) -> EligibilitySummary:
    body = {"benefitsInformation": [*status, *lines], "errors": []}
    summary = normalize_response(200, body, NormalizationContext("SBX01", dt.date(2026, 3, 15), ("30",))).summary
    assert summary is not None
    return summary


def _acc(code: str, total: str | None, remaining: str | None, *, level: str = "IND", net: str = "Y") -> list[dict[str, Any]]:
    out = []
    if total is not None:
        out.append(eb(code, ("30",), level=level, tq="23", amount=total, net=net))
    if remaining is not None:
        out.append(eb(code, ("30",), level=level, tq="29", amount=remaining, net=net))
    return out


def _special(code: str, name: str, stcs: tuple[str, ...], **fields: Any) -> dict[str, Any]:
    line = eb("C", stcs, net=fields.pop("net", "Y"), msgs=fields.pop("msgs", ()))
    line.pop("benefitAmount", None)
    line.update({"code": code, "name": name, **fields})
    return line


def one(summary: EligibilitySummary, amount: str, *, network: str = IN, role: ProviderRole | None = None,
        service: ServiceToEstimate | None = None) -> ProviderEstimate:
    (result,) = estimate_from_eligibility(summary, service or ServiceToEstimate("99213", (), "11"),
                                          [EstimateProvider("p", network, D(amount), role)])
    return result


def pays(r: ProviderEstimate) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    assert r.point is not None
    return r.point.member_pays, r.member_pays_low, r.member_pays_high


# ---------------------------------------------------------------- D2


@pytest.mark.parametrize(("procedure", "pos", "expected"), [
    ("99213", "11", ("98", "BY", "96")), ("99213", None, ("98", "BY", "96")), ("99214", "20", ("UC", "98", "BY", "96")),
    ("99215", "23", ("86",)), ("99395", "11", ("BZ", "98", "96")), ("99284", None, ("86",)), ("S9083", None, ("UC",)),
    ("98941", None, ("33",)), ("97110", None, ("PT", "AE")), ("97113", None, ()), ("97162", None, ("PT", "AE")),
    ("90834", None, ("A6", "MH")), ("70551", None, ("62", "4")), ("72148", None, ("62", "4")), ("70010", None, ("4",)),
    ("80053", None, ("5",)), ("92004", None, ("AL",)), ("99999", None, ()), ("G0008", None, ()),
])
def test_d2_procedure_to_service_types(procedure: str, pos: str | None, expected: tuple[str, ...]) -> None:
    assert candidate_service_types(procedure, (), pos) == expected


def test_d2_explicit_service_types_win_in_order_without_duplicates() -> None:
    assert candidate_service_types("99213", ("48", "50", "48"), "11") == ("48", "50")


# ---------------------------------------------------------------- D6 texts


@pytest.mark.parametrize(("text", "expected"), [
    ("DEDUCTIBLE DOES NOT APPLY TO OFFICE VISIT COPAY", (Signal.DOES_NOT_APPLY, True)),
    ("Deductible doesn't apply", (Signal.DOES_NOT_APPLY, True)),
    ("NO DEDUCTIBLE", (Signal.DOES_NOT_APPLY, True)),
    ("SUBJECT TO THE DEDUCTIBLE", (Signal.APPLIES, True)),
    ("COINSURANCE AFTER DEDUCTIBLE", (Signal.APPLIES, True)),
    ("COPAY WAIVED AFTER DEDUCTIBLE", (Signal.APPLIES, False)),
    ("VERIFY IF DEDUCTIBLE APPLIES", None),
    ("DEDUCTIBLE MAY APPLY", None),
    ("COPAY WAIVED IF ADMITTED", None),
    ("SPECIALIST", None),
])
def test_d6_text_signals(text: str, expected: tuple[Signal, bool] | None) -> None:
    assert text_signal(text) == expected


# ---------------------------------------------------------------- D1


def test_d1_unclear_status_is_refused() -> None:
    summary = _summary(status=(ACTIVE, eb("6", ("30",), net="W")))
    assert summary.active is None
    with pytest.raises(CoverageRefused) as caught:
        one(summary, "100")
    assert caught.value.reason == "COVERAGE_STATUS_UNCLEAR"


# ---------------------------------------------------------------- D4


def test_d4_role_keeps_the_candidates_naming_it() -> None:
    s = _summary(eb("B", ("98",), level="IND", tq="27", amount="20", net="Y", msgs=("PCP",)),
                 eb("B", ("98",), level="IND", tq="27", amount="50", net="Y", msgs=("SPECIALIST OFFICE VISIT",)),
                 *_acc("G", "5000", "5000"), eb("C", ("98",), level="IND", tq="27", amount="0", net="Y"))
    assert pays(one(s, "100", role=ProviderRole.PRIMARY_CARE)) == (D("20.00"), D("20.00"), D("20.00"))
    assert pays(one(s, "100", role=ProviderRole.SPECIALIST)) == (D("50.00"), D("50.00"), D("50.00"))
    both = one(s, "100")
    assert pays(both) == (D("50.00"), D("20.00"), D("50.00"))
    assert both.codes() == {"AMBIGUOUS_COPAY", "COINSURANCE_NOT_SENT"}


def test_d4_place_of_service_keeps_matching_candidates() -> None:
    s = _summary(eb("B", ("98",), level="IND", tq="27", amount="20", net="Y", pos="11"),
                 eb("B", ("98",), level="IND", tq="27", amount="90", net="Y", pos="20"), *_acc("G", "5000", "5000"))
    assert pays(one(s, "100"))[0] == D("20.00")


def test_d4_invalid_values_are_dropped_and_the_estimate_is_incomplete() -> None:
    s = _summary(eb("B", ("98",), level="IND", tq="27", amount="-5", net="Y"),
                 eb("A", ("98",), level="IND", tq="27", percent="20", net="Y"),  # 2000 %: never reinterpreted
                 eb("A", ("98",), level="IND", tq="27", percent="0.1", net="Y"), *_acc("G", "5000", "5000"),
                 eb("C", ("98",), level="IND", tq="27", amount="0", net="Y"))
    r = one(s, "100")
    assert r.codes() == {"COPAY_INVALID", "COINSURANCE_INVALID", "COPAY_NOT_SENT"}
    assert r.completeness is Completeness.INCOMPLETE and pays(r) == (D("10.00"), D("10.00"), D("10.00"))


def test_d4_sub_cent_copay_is_rounded_half_up() -> None:
    s = _summary(eb("B", ("98",), level="IND", tq="27", amount="25.555", net="Y"), *_acc("G", "5000", "5000"),
                 eb("C", ("98",), level="IND", tq="27", amount="0", net="Y"))
    r = one(s, "100")
    assert pays(r)[0] == D("25.56") and "AMOUNT_ROUNDED" in r.codes()


def test_d4_most_specific_line_and_no_borrowing_from_another_network() -> None:
    s = _summary(eb("B", ("98", "UC", "33"), level="IND", tq="27", amount="30", net="Y"),
                 eb("B", ("98",), level="IND", tq="27", amount="45", net="Y"),
                 eb("B", ("98",), level="IND", tq="27", amount="70", net="N"), *_acc("G", "5000", "5000"))
    assert pays(one(s, "100"))[0] == D("45.00")
    out = one(s, "100", network=OUT)
    assert pays(out)[0] == D("70.00") and "OUT_OF_POCKET_NOT_SENT" in out.codes()


# ---------------------------------------------------------------- D5


def test_d5_not_covered_alone() -> None:
    s = _summary(_special("I", "Non-Covered", ("98",)), *_acc("C", "500", "500"))
    r = one(s, "180")
    assert pays(r) == (D("180.00"), D("180.00"), D("180.00")) and r.codes() == {"NOT_COVERED"}
    assert r.completeness is Completeness.COMPLETE and r.point is not None and not r.point.accumulators
    assert r.service_type_code == "98"


def test_d5_not_covered_beside_a_cost_share_is_the_high_end() -> None:
    s = _summary(eb("B", ("98",), level="IND", tq="27", amount="20", net="Y"),
                 _special("I", "Non-Covered", ("98",), msgs=("TELEHEALTH",)), *_acc("G", "5000", "5000"),
                 eb("C", ("98",), level="IND", tq="27", amount="0", net="Y"))
    r = one(s, "180")
    assert pays(r) == (D("20.00"), D("20.00"), D("180.00")) and r.codes() >= {"NOT_COVERED_LINE_PRESENT"}
    assert r.completeness is Completeness.AMBIGUOUS


def test_d5_no_cost_share_and_no_not_covered_line_is_not_found() -> None:
    assert not one(_summary(*_acc("C", "500", "500")), "100").found


# ---------------------------------------------------------------- D6


def test_d6_copay_waived_after_the_deductible() -> None:
    s = _summary(eb("B", ("98",), level="IND", tq="27", amount="30", net="Y", msgs=("COPAY WAIVED AFTER DEDUCTIBLE",)),
                 eb("A", ("98",), level="IND", tq="27", percent="0.2", net="Y"),
                 *_acc("C", "1000", "100"), *_acc("G", "5000", "5000"))
    r = one(s, "500")  # deductible 100, no copay after it, 20 % of 400
    assert pays(r) == (D("180.00"), D("180.00"), D("180.00")) and r.completeness is Completeness.COMPLETE
    assert r.inputs is not None and r.inputs.coverage.copay_continue_when_deductible_met == "N"


def test_d6_conflicting_signals_range_over_both_treatments() -> None:
    s = _summary(eb("B", ("98",), level="IND", tq="27", amount="30", net="Y", msgs=("SUBJECT TO DEDUCTIBLE",)),
                 eb("C", ("98",), level="IND", tq="27", amount="0", net="Y"),
                 *_acc("C", "1000", "1000"), *_acc("G", "5000", "5000"))
    r = one(s, "200")  # point: coinsurance 0 -> waived (30); applies: the deductible takes 200
    assert pays(r) == (D("30.00"), D("30.00"), D("200.00"))
    assert "DEDUCTIBLE_SIGNALS_CONFLICT" in r.codes() and "DEDUCTIBLE_APPLICABILITY_UNKNOWN" not in r.codes()


def test_d6_a_met_deductible_needs_no_applicability_flag() -> None:
    s = _summary(eb("A", ("98",), level="IND", tq="27", percent="0.2", net="Y"), *_acc("C", "1000", "0"),
                 *_acc("G", "5000", "5000"))
    r = one(s, "100")
    assert r.codes() == {"COPAY_NOT_SENT"} and r.completeness is Completeness.COMPLETE


# ---------------------------------------------------------------- D7


def test_d7_no_deductible_sent_is_a_gap_with_the_amount_as_high_end() -> None:
    s = _summary(eb("A", ("98",), level="IND", tq="27", percent="0.2", net="Y"))
    r = one(s, "250")
    assert pays(r) == (D("50.00"), D("50.00"), D("250.00"))
    assert r.codes() == {"COPAY_NOT_SENT", "DEDUCTIBLE_NOT_SENT", "OUT_OF_POCKET_NOT_SENT",
                         "DEDUCTIBLE_APPLICABILITY_UNKNOWN"}
    assert r.completeness is Completeness.INCOMPLETE


def test_d7_total_without_remaining_assumes_nothing_met() -> None:
    s = _summary(eb("A", ("98",), level="IND", tq="27", percent="0.2", net="Y"), *_acc("C", "300", None),
                 *_acc("G", "5000", None))
    r = one(s, "500")  # point: deductible 300 + 20 % of 200 = 340; low: deductible met, OOP met -> 0
    assert pays(r) == (D("340.00"), D("0.00"), D("340.00"))
    assert {"DEDUCTIBLE_REMAINING_NOT_SENT", "OUT_OF_POCKET_REMAINING_NOT_SENT"} <= r.codes()


def test_d7_flagged_bucket_is_used_and_listed() -> None:
    s = _summary(eb("B", ("98",), level="IND", tq="27", amount="30", net="Y"), *_acc("G", "100", "400"),
                 eb("C", ("98",), level="IND", tq="27", amount="0", net="Y"))
    r = one(s, "100")
    assert "ACCUMULATOR_FLAGGED" in r.codes() and pays(r)[0] == D("30.00")


# ---------------------------------------------------------------- D8


def _visits(tq: str, quantity: str, net: str = "Y") -> dict[str, Any]:
    return _special("F", "Limitations", ("33",), timeQualifierCode=tq, quantityQualifierCode="VS",
                    benefitQuantity=quantity, net=net)


def test_d8_visit_limit_used_up_means_the_member_pays_all() -> None:
    s = _summary(eb("B", ("33",), level="IND", tq="27", amount="25", net="Y"), _visits("29", "0"),
                 *_acc("G", "5000", "5000"), eb("C", ("33",), level="IND", tq="27", amount="0", net="Y"))
    r = one(s, "85", service=ServiceToEstimate("98940"))
    assert pays(r) == (D("85.00"), D("85.00"), D("85.00")) and r.point is not None and r.point.limit_reached


def test_d8_limit_total_only_is_a_gap_with_exhausted_as_high_end() -> None:
    s = _summary(eb("B", ("33",), level="IND", tq="27", amount="25", net="Y"), _visits("23", "20"),
                 *_acc("G", "5000", "5000"), eb("C", ("33",), level="IND", tq="27", amount="0", net="Y"))
    r = one(s, "85", service=ServiceToEstimate("98940"))
    assert pays(r) == (D("25.00"), D("25.00"), D("85.00")) and "LIMIT_REMAINING_NOT_SENT" in r.codes()
    assert r.completeness is Completeness.INCOMPLETE


def test_d8_unmodelled_limitations_are_listed_only() -> None:
    age = _special("F", "Limitations", ("33",), timeQualifierCode="23", quantityQualifierCode="S7",
                   benefitQuantity="18")
    s = _summary(eb("B", ("33",), level="IND", tq="27", amount="25", net="Y"), age, *_acc("G", "5000", "5000"),
                 eb("C", ("33",), level="IND", tq="27", amount="0", net="Y"))
    r = one(s, "85", service=ServiceToEstimate("98940"))
    assert pays(r)[0] == D("25.00") and "LIMITATION_NOT_MODELLED" in r.codes()


# ---------------------------------------------------------------- §7 and the rest


def test_several_plans_are_flagged() -> None:
    s = _summary(eb("B", ("98",), level="IND", tq="27", amount="30", net="Y"), *_acc("G", "5000", "5000"),
                 eb("C", ("98",), level="IND", tq="27", amount="0", net="Y"),
                 status=(ACTIVE, eb("1", ("30",), ins="HM", plan="PLAN B", net="W")))
    assert len(s.plan_coverages) == 2 and "SEVERAL_PLANS" in one(s, "100").codes()


def test_service_lines_of_the_summary() -> None:
    s = _summary(eb("C", ("98",), level="IND", tq="27", amount="0", net="Y"), _visits("29", "3"),
                 _special("I", "Non-Covered", ("A6",)), *_acc("C", "500", "500"))
    assert [(line.kind.value, line.service_type_codes) for line in s.service_lines] == [
        ("DEDUCTIBLE", ("98",)), ("LIMITATION", ("33",)), ("NOT_COVERED", ("A6",))]
    assert s.service_lines[1].quantity == 3 and s.service_lines[1].quantity_qualifier_code == "VS"
    assert s.date_of_service == dt.date(2026, 3, 15)
