"""§1: indicator spellings, refusals with field paths, accumulator matching (§1.3) and remainders (§1.4)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, localcontext

import pytest

from server.domain.costshare import (
    AccumKind,
    AccumulatorState,
    CostShareResult,
    Coverage,
    Level,
    LimitType,
    MemberAccumulator,
    RelatedAccumulator,
    calculate,
)
from server.domain.costshare.inputs import parse_code, parse_indicator, parse_level, parse_network
from server.domain.errors import DomainError, InvalidInput
from tests.domain.builders import D, scenario

# --- indicators ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["Y", "y", "Yes", "YES", "true", "True", " TRUE ", True])
def test_indicator_yes(raw: object) -> None:
    assert parse_indicator(raw, "f") is True  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["N", "n", "No", "no", "false", "FALSE", "", "  ", None, False])
def test_indicator_no_and_blank(raw: object) -> None:
    assert parse_indicator(raw, "f") is False  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["1", "0", "T", "F", "yep", "Nope", "on", 1])
def test_indicator_other_spellings_refused(raw: object) -> None:
    with pytest.raises(InvalidInput, match="Y/N"):
        parse_indicator(raw, "coverage.copay_applies_out_of_pocket")  # type: ignore[arg-type]


def test_indicator_refusal_carries_field_path() -> None:
    cov, accs = scenario(coins_applies_out_of_pocket="maybe")
    with pytest.raises(InvalidInput) as err:
        calculate(cov, accs, D("10.00"))
    assert err.value.field == "coverage.coins_applies_out_of_pocket"
    assert isinstance(err.value, DomainError) and "maybe" in str(err.value)


def test_blank_coverage_means_not_covered() -> None:
    result = calculate(Coverage(), [], D("50.00"))
    assert result.member_pays == D("50.00") and result.service_covered is False


# --- refusals of §1.1 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coverage", "amount", "field"),
    [
        ({}, "-0.01", "service_amount"),
        ({}, "10.001", "service_amount"),
        ({"copay": D("-1")}, "10.00", "coverage.copay"),
        ({"copay": D("35.005")}, "10.00", "coverage.copay"),
        ({"coinsurance_percent": D("100.5")}, "10.00", "coverage.coinsurance_percent"),
        ({"coinsurance_percent": D("-1")}, "10.00", "coverage.coinsurance_percent"),
        ({"is_deductible_before_copay": "X"}, "10.00", "coverage.is_deductible_before_copay"),
    ],
)
def test_refused_coverage_inputs(coverage: dict[str, object], amount: str, field: str) -> None:
    cov, accs = scenario(**coverage)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as err:
        calculate(cov, accs, amount)
    assert err.value.field == field


def test_refused_related_level() -> None:
    cov = Coverage(is_service_covered="Y", related_accumulators=(RelatedAccumulator("OOP Max", "Individual"),
                                                                   RelatedAccumulator("Deductible", "Subscriber")))
    with pytest.raises(InvalidInput) as err:
        calculate(cov, [], D("10.00"))
    assert err.value.field == "coverage.related_accumulators[1].level"


def test_refused_accumulator_level() -> None:
    cov, accs = scenario(oop=("100", None))
    accs.append(MemberAccumulator(code="Deductible", level="Household", calculated_value=D(5)))
    with pytest.raises(InvalidInput) as err:
        calculate(cov, accs, D("10.00"))
    assert err.value.field == "accumulators[1].level"


def test_unmodelled_codes_are_ignored_not_refused() -> None:
    cov, accs = scenario(oop=("100", None))
    cov = replace(cov, related_accumulators=cov.related_accumulators + (RelatedAccumulator("OOP Other", "x"),))
    accs.append(MemberAccumulator(code="Coinsurance Max", level="whatever"))
    assert calculate(cov, accs, D("10.00")).member_pays == 0


def test_refused_sub_cent_accumulator_money() -> None:
    cov, accs = scenario(ded=("100", None))
    accs[0] = replace(accs[0], calculated_value=D("99.999"))
    with pytest.raises(InvalidInput) as err:
        calculate(cov, accs, D("10.00"))
    assert err.value.field == "accumulators[0].calculated_value"


def test_refused_mixed_limit_types() -> None:
    cov, accs = scenario(limit=("5", "100"))
    accs[1] = replace(accs[1], limit_type="Counter")
    with pytest.raises(InvalidInput) as err:
        calculate(cov, accs, D("10.00"))
    assert err.value.field == "accumulators[1].limit_type" and "share a type" in err.value.message


def test_positive_limit_without_type_is_refused_even_when_not_covered() -> None:
    """Decision: §1.1 refusals are checked before H1, so a bad request is never partly computed."""
    cov, accs = scenario(limit=("4", None), limit_type="", is_service_covered="N")
    with pytest.raises(InvalidInput) as err:
        calculate(cov, accs, D("10.00"))
    assert err.value.field == "accumulators[0].limit_type"


def test_exhausted_limit_of_unknown_type_is_not_refused() -> None:
    """§1.1 refuses only a *positive* limit of unknown type; an exhausted one is simply exhausted."""
    cov, accs = scenario(limit=("0", None), limit_type="Percent")
    result = calculate(cov, accs, D("75.50"))
    assert result.member_pays == D("75.50") and result.limit_reached
    assert result.accumulators[0].limit_type is None


# --- §1.3 matching ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "kind"), [("OOP Max", AccumKind.OOP), ("OOPMAX", AccumKind.OOP),
                                           ("oop", AccumKind.OOP), ("Out-of-Pocket Max", AccumKind.OOP),
                                           ("deductible", AccumKind.DEDUCTIBLE), ("LIMIT", AccumKind.LIMIT),
                                           ("", AccumKind.LIMIT), (None, AccumKind.LIMIT), ("Copay Max", None)])
def test_code_normalisation(raw: str | None, kind: AccumKind | None) -> None:
    assert parse_code(raw) is kind


def test_level_and_network_spellings() -> None:
    assert parse_level("I", "f") is Level.INDIVIDUAL and parse_level(" family ", "f") is Level.FAMILY
    assert parse_network("InNetwork") == "I" and parse_network("OutofNetwork") == "O"
    assert parse_network("o") == "O" and parse_network(None) is None and parse_network("Tier-2") == "TIER2"


def _oop(network_code: str | None = "I", remaining: str = "100.00", **kw: object) -> MemberAccumulator:
    return MemberAccumulator(code="OOP Max", level="Individual", network_indicator_code=network_code,
                             calculated_value=D(remaining), **kw)  # type: ignore[arg-type]


def _covered(*related: RelatedAccumulator, network: str | None = None) -> Coverage:
    return Coverage(is_service_covered="Y", coinsurance_percent=D(50), coins_applies_out_of_pocket="Y",
                    network_category=network, related_accumulators=related)


def test_network_must_match_and_defaults_to_benefit_network() -> None:
    accs = [_oop("I", "10.00"), _oop("O", "20.00")]
    rel = RelatedAccumulator("OOP Max", "Individual")
    assert calculate(_covered(rel), accs, D("1000.00")).member_pays == D("10.00")
    assert calculate(_covered(rel, network="OutofNetwork"), accs, D("1000.00")).member_pays == D("20.00")
    explicit = RelatedAccumulator("OOP Max", "Individual", network_indicator_code="O")
    assert calculate(_covered(explicit), accs, D("1000.00")).accumulators[0].source_index == 1


def test_accumulator_network_falls_back_to_network_indicator_then_in_network() -> None:
    rel_o = RelatedAccumulator("OOP Max", "Individual", network_indicator_code="O")
    rel_i = RelatedAccumulator("OOP Max", "Individual", network_indicator_code="I")
    by_name = [MemberAccumulator("OOP Max", "Individual", network_indicator="OutofNetwork", calculated_value=D(7))]
    assert calculate(_covered(rel_o), by_name, D("100.00")).member_pays == D("7.00")
    blank = [MemberAccumulator("OOP Max", "Individual", calculated_value=D(7))]
    assert calculate(_covered(rel_i), blank, D("100.00")).member_pays == D("7.00")
    assert calculate(_covered(rel_o), blank, D("100.00")).accumulators == ()


def test_tie_breakers_only_when_both_sides_non_blank() -> None:
    accs = [_oop(remaining="10.00", accum_ex_code="L03"), _oop(remaining="30.00", accum_ex_code="L13")]
    with_code = RelatedAccumulator("OOP Max", "Individual", accum_ex_code="l13")
    assert calculate(_covered(with_code), accs, D("1000.00")).accumulators[0].source_index == 1
    without = RelatedAccumulator("OOP Max", "Individual")
    assert calculate(_covered(without), accs, D("1000.00")).accumulators[0].source_index == 0
    accs_ded = [MemberAccumulator("Deductible", "Family", "I", deductible_code="A", calculated_value=D(1)),
                MemberAccumulator("Deductible", "Family", "I", deductible_code="B", calculated_value=D(2))]
    rel = RelatedAccumulator("Deductible", "F", deductible_code="B")
    assert calculate(_covered(rel), accs_ded, D("1000.00")).accumulators[0].source_index == 1


def test_at_most_one_accumulator_per_code_and_level() -> None:
    accs = [_oop(remaining="10.00"), _oop(remaining="30.00")]
    rel = RelatedAccumulator("OOP Max", "Individual")
    result = calculate(_covered(rel, rel), accs, D("1000.00"))
    assert [s.source_index for s in result.accumulators] == [0]


def test_unrelated_accumulators_are_ignored() -> None:
    result = calculate(_covered(), [_oop(remaining="0.00")], D("100.00"))
    assert result.member_pays == D("50.00") and result.accumulators == () and not result.oop_met


# --- §1.4 remainders ----------------------------------------------------------------------------------------


def _one(acc: MemberAccumulator, amount: str = "100.00",
         percent: str = "50") -> tuple[CostShareResult, AccumulatorState]:
    cov = Coverage(is_service_covered="Y", coinsurance_percent=D(percent), coins_applies_out_of_pocket="Y",
                   related_accumulators=(RelatedAccumulator(acc.code, acc.level),))
    result = calculate(cov, [acc], D(amount), trace=True)
    return result, result.accumulators[0]


def test_remaining_from_calculated_value_wins() -> None:
    _, state = _one(_oop(remaining="12.00", limit_value=D(500), current_value=D(1)))
    assert state.remaining_before == D("12.00") and state.remaining_after == D("0.00")
    assert state.current_value_after == D("13.00") and state.limit_value == D("500.00")


def test_remaining_from_limit_minus_current() -> None:
    acc = MemberAccumulator("OOP Max", "Individual", "I", limit_value=D("6500"), current_value=D("6480.50"))
    result, state = _one(acc)
    assert state.remaining_before == D("19.50") and result.member_pays == D("19.50")
    acc = MemberAccumulator("OOP Max", "Individual", "I", limit_value=D("30"))
    assert _one(acc)[1].remaining_before == D("30.00")


def test_negative_remainder_clamps_to_zero() -> None:
    result, state = _one(_oop(remaining="-25.00"))
    assert state.remaining_before == D("0.00") and result.oop_met and result.member_pays == 0
    acc = MemberAccumulator("OOP Max", "Individual", "I", limit_value=D("100"), current_value=D("150"))
    assert _one(acc)[1].remaining_before == D("0.00")


def test_unknown_oop_is_no_cap_with_warning() -> None:
    result, state = _one(MemberAccumulator("OOP Max", "Individual", "I", current_value=D(5)))
    assert state.remaining_before is None and state.remaining_after is None
    assert result.member_pays == D("50.00") and not result.oop_met
    assert result.warnings and "treated as absent" in result.warnings[0]
    assert result.trace[0].handler is None and "unknown" in result.trace[0].text()


def test_unknown_deductible_is_absent() -> None:
    acc = MemberAccumulator("Deductible", "Individual", "I")
    result, _ = _one(acc)
    assert result.path_text() == "H1 H2 H3 H5 H6 H10" and not result.deductible_met


def test_unknown_limit_is_exhausted() -> None:
    acc = MemberAccumulator("Limit", "Individual", "I", limit_type="Counter")
    result, state = _one(acc)
    assert result.limit_reached and result.breakdown.over_limit == D("100.00") and state.remaining_after is None
    assert "treated as exhausted" in result.warnings[0]


@pytest.mark.parametrize(("raw", "floored"), [("0.5", "0"), ("2.99", "2"), ("6", "6"), ("-3", "0")])
def test_counter_remainders_are_floored(raw: str, floored: str) -> None:
    acc = MemberAccumulator("Limit", "Individual", "I", limit_type="counter", calculated_value=Decimal(raw))
    result, state = _one(acc)
    assert state.remaining_before == Decimal(floored) and state.limit_type is LimitType.COUNTER
    if floored == "0":
        assert result.limit_reached
    else:
        assert state.remaining_after == Decimal(floored) - 1


def test_counter_used_even_for_zero_amount() -> None:
    """Decision 14: one visit per covered service, even at $0."""
    acc = MemberAccumulator("Limit", "Individual", "I", limit_type="Counter", limit_value=D(20), current_value=D(14))
    _, state = _one(acc, amount="0.00")
    assert (state.remaining_before, state.remaining_after, state.current_value_after) == (D(6), D(5), D(15))


def test_met_by_count_reads_family_first_then_individual() -> None:
    cov, accs = scenario(ded=("500", "900"), coinsurance_percent=D(10))
    accs[0] = replace(accs[0], num_of_individuals_met=3, num_of_individuals_needed_to_meet=2)
    assert calculate(cov, accs, D("100.00")).deductible_met  # individual pair used: family lacks one
    accs[1] = replace(accs[1], num_of_individuals_met=1, num_of_individuals_needed_to_meet=2)
    assert not calculate(cov, accs, D("100.00")).deductible_met  # family pair wins: 1 of 2
    accs[1] = replace(accs[1], num_of_individuals_met=0, num_of_individuals_needed_to_meet=0)
    assert not calculate(cov, accs, D("100.00")).deductible_met  # needed must be > 0


def test_bad_individual_counts_refused() -> None:
    cov, accs = scenario(ded=("500", "900"))
    accs[1] = replace(accs[1], num_of_individuals_met="two")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as err:
        calculate(cov, accs, D("1.00"))
    assert err.value.field == "accumulators[1].num_of_individuals_met"


def test_calculate_accepts_strings_and_ignores_the_ambient_context() -> None:
    cov, accs = scenario(coinsurance_percent=D("12.5"), oop=("5000", None))
    expected = calculate(cov, accs, D("99.99"))
    with localcontext() as ctx:
        ctx.prec = 2
        assert calculate(cov, accs, "99.99") == expected
