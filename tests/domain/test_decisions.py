"""Pins for the choices of docs/decisions.md that no other test file already pins."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.domain.costshare import (
    Coverage,
    HandlerId,
    MemberAccumulator,
    MemberAccumulators,
    RelatedAccumulator,
    calculate,
)
from server.domain.errors import InvalidInput
from tests.domain.builders import D, scenario


def test_problem_on_an_unselected_accumulator_is_ignored() -> None:
    """An accumulator no related entry selects is ignored (§1.3), even if its values would be refused."""
    cov, accs = scenario(oop=("100", None), coinsurance_percent=D(10))
    accs.append(MemberAccumulator("OOP Max", "Individual", "O", calculated_value=D("1.001")))
    accs.append(MemberAccumulator("Limit", "Individual", "I", limit_type="Percent", calculated_value=D(3)))
    assert calculate(cov, accs, D("50.00")).member_pays == D("5.00")


def test_a_second_related_entry_may_match_when_the_first_found_nothing() -> None:
    rels = (RelatedAccumulator("OOP Max", "Individual", accum_ex_code="L99"),  # names an accumulator not there
            RelatedAccumulator("OOP Max", "Individual", network_indicator_code="O"))
    cov = Coverage(is_service_covered="Y", coinsurance_percent=D(50), coins_applies_out_of_pocket="Y",
                   related_accumulators=rels)
    accs = [MemberAccumulator("OOP Max", "Individual", "O", accum_ex_code="L13", calculated_value=D(7))]
    result = calculate(cov, accs, D("100.00"))
    assert result.member_pays == D("7.00") and len(result.accumulators) == 1


def test_limit_reached_only_when_the_member_pays_over_the_limit() -> None:
    cov, accs = scenario(limit=("100", None))
    exact = calculate(cov, accs, D("100.00"))
    assert exact.member_pays == 0 and exact.accumulators[0].remaining_after == D("0.00")
    assert exact.limit_reached is False  # used up exactly, nothing over it
    over = calculate(cov, accs, D("100.01"))
    assert over.breakdown.over_limit == D("0.01") and over.limit_reached is True


def test_last_visit_is_covered_and_not_flagged() -> None:
    cov, accs = scenario(limit=("1", None), limit_type="Counter")
    result = calculate(cov, accs, D("80.00"))
    assert result.member_pays == 0 and result.accumulators[0].remaining_after == 0 and not result.limit_reached


def test_copay_first_plan_with_met_deductible_follows_the_book_routing() -> None:
    """§4 taken literally: H5 (D = 0) -> H7; copay-after-ded decides the copay even on copay-first plans."""
    base = {"is_deductible_before_copay": "N", "copay": D(35), "coinsurance_percent": D(20),
            "ded": ("0", None), "oop": ("2000", None)}
    stops = calculate(*scenario(**base), D("275.00"))  # type: ignore[arg-type]
    assert stops.path_text() == "H1 H2 H3 H5 H7 H10" and stops.breakdown.copay == 0
    goes_on = calculate(*scenario(**base, copay_continue_when_deductible_met="Y"), D("275.00"))  # type: ignore[arg-type]
    assert goes_on.path_text() == "H1 H2 H3 H5 H7 H8 H9 H10"
    assert (goes_on.breakdown.copay, goes_on.breakdown.deductible, goes_on.breakdown.coinsurance) == (
        D("35.00"), D("0.00"), D("48.00"))


def test_subchain_trace_and_path() -> None:
    cov, accs = scenario(coinsurance_percent=D(30), limit=("90", None))
    result = calculate(cov, accs, D("260.00"), trace=True)
    assert result.path == (HandlerId.H1, HandlerId.H2, HandlerId.H3, HandlerId.H5, HandlerId.H6, HandlerId.H10)
    assert result.subchain_start == 2
    depths = [(line.handler.code if line.handler else None, line.depth) for line in result.trace]
    assert depths == [("H1", 0), ("H2", 0), ("H3", 1), ("H5", 1), ("H6", 1), ("H10", 1), ("H2", 0)]
    text = result.trace_text()
    assert text[-1].startswith("[H2 BenefitLimitation] after the sub-chain") and "over_limit=92.00" in text[-1]
    assert "  [H10 DeductibleCoInsurance] always" in text[5] and "coinsurance=78.00" in text[5]


def test_trace_off_records_nothing() -> None:
    result = calculate(*scenario(copay=D(35), oop=("100", None)), D("50.00"))
    assert result.trace == () and result.trace_text() == ()


def test_prepared_accumulators_serve_many_coverages_and_amounts() -> None:
    """``MemberAccumulators`` is read-only: reusing it gives exactly what a fresh list gives."""
    cov_a, accs = scenario(copay=D(35), coinsurance_percent=D(20), ded=("400", "2000"), oop=("5000", "9000"),
                           copay_continue_when_deductible_met="Y")
    cov_b = replace(cov_a, is_deductible_before_copay="N", copay_count_to_deductible="Y")
    prepared = MemberAccumulators(accs)
    for cov in (cov_a, cov_b, cov_a):
        for amount in ("0.00", "22.50", "1180.00", "99999.99"):
            assert calculate(cov, prepared, D(amount)) == calculate(cov, list(accs), D(amount))


def test_prepared_accumulators_still_refuse_what_a_coverage_selects() -> None:
    cov, accs = scenario(ded=("100", None))
    accs[0] = replace(accs[0], calculated_value=D("0.001"))
    prepared = MemberAccumulators(accs)
    for _ in range(2):  # the refusal is remembered, and raised every time
        with pytest.raises(InvalidInput) as err:
            calculate(cov, prepared, D("1.00"))
        assert err.value.field == "accumulators[0].calculated_value"


def test_missing_related_accumulator_is_absent_and_reported() -> None:
    """Issue 6 lists "a related accumulator the answer lacks" among inconsistent inputs; the rule book (§1.3, E30)
    makes it absent. We follow the rule book and never stay silent: the result carries a warning."""
    coverage, _ = scenario(coinsurance_percent=D(20), oop=("999", None))
    result = calculate(coverage, [], D("100.00"))
    assert result.member_pays == D("20.00")  # no cap, not "OOP met"
    assert result.warnings == ("coverage.related_accumulators[0] (oop individual, network I): not in the "
                               "accumulators answer, treated as absent",)


def test_found_related_accumulator_gives_no_missing_warning() -> None:
    assert calculate(*scenario(coinsurance_percent=D(20), oop=("999", None)), D("100.00")).warnings == ()


def test_negative_remaining_is_clamped_and_reported() -> None:
    """Rule book §1.4 clamps a negative remainder to 0 (= met); the payer sent inconsistent data, so say so."""
    coverage, accumulators = scenario(copay=D(30), oop=("-5.00", None))
    result = calculate(coverage, accumulators, D("100.00"))
    assert result.oop_met and result.member_pays == D("0.00")
    assert result.warnings == ("accumulators[0] (oop individual): negative remaining from the payer, treated as 0",)
