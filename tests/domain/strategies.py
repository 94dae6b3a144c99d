"""Hypothesis strategies: random coverages, accumulator answers and amounts covering every state of §1.4."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import strategies as st

from server.domain.costshare import Coverage, Indicator, MemberAccumulator, RelatedAccumulator

CENTS = Decimal("0.01")


def money(max_cents: int) -> st.SearchStrategy[Decimal]:
    """Whole cents, biased toward 0, small and round values where the edges live."""
    cents = st.one_of(st.just(0), st.integers(1, 10_000), st.integers(0, max_cents),
                      st.integers(0, max_cents // 100).map(lambda d: d * 100))
    return cents.map(lambda c: Decimal(c) * CENTS)


amounts = money(100_000_000)  # 0.00 .. 1,000,000.00

percents = st.one_of(
    st.sampled_from([Decimal(0), Decimal(100), Decimal("12.5"), Decimal(20)]),
    st.integers(0, 10_000).map(lambda n: Decimal(n) * CENTS),  # 0.00 .. 100.00
    st.integers(0, 100_000).map(lambda n: Decimal(n) / Decimal(1000)),  # three decimals
)

YES: list[Indicator] = ["Y", "y", "Yes", "TRUE", "true", True]
NO: list[Indicator] = ["N", "no", "False", "", None, False]
indicators: st.SearchStrategy[Indicator] = st.sampled_from(YES + NO)


# §1.4 states, weighted toward the ones with arithmetic to do.
STATES = ["absent", "not found", "unknown", "zero", "positive", "positive", "positive", "limit-current",
          "limit-current"]


@dataclass(frozen=True)
class Case:
    coverage: Coverage
    accumulators: tuple[MemberAccumulator, ...]
    amount: Decimal


@st.composite
def accumulator_pair(draw: st.DrawFn, code: str, counter: bool) -> tuple[list[RelatedAccumulator],
                                                                          list[MemberAccumulator]]:
    """Individual and family of one code, each absent / not found / unknown / zero / positive / via limit-current."""
    related: list[RelatedAccumulator] = []
    members: list[MemberAccumulator] = []
    limit_type = ("Counter" if counter else "Dollar") if code == "Limit" else None
    for level in draw(st.permutations(["Individual", "Family"])):
        state = draw(st.sampled_from(STATES))
        if state == "absent":
            continue
        related.append(RelatedAccumulator(code=code, level=draw(st.sampled_from([level, level[0]])),
                                          network_indicator_code=draw(st.sampled_from(["I", None]))))
        if state == "not found":
            members.append(MemberAccumulator(code=code, level=level, network_indicator_code="O",
                                             calculated_value=Decimal(0)))
            continue
        if counter:
            value = draw(st.one_of(st.integers(0, 30).map(Decimal), st.sampled_from([Decimal("0.5"),
                                                                                      Decimal("2.5")])))
            limit, current = Decimal(draw(st.integers(0, 30))), Decimal(draw(st.integers(0, 40)))
        else:
            value = draw(money(2_000_000))
            limit, current = draw(money(2_000_000)), draw(money(2_500_000))
        fields: dict[str, object] = {}
        if state == "zero":
            fields["calculated_value"] = Decimal(0)
        elif state == "positive":
            fields["calculated_value"] = value if value > 0 else Decimal(1)
        elif state == "limit-current":
            fields["limit_value"] = limit  # current may exceed limit: clamped to 0 (§1.4)
            fields["current_value"] = draw(st.sampled_from([current, None]))
        if code == "Deductible" and draw(st.integers(0, 3)) == 0:
            fields["num_of_individuals_met"] = draw(st.integers(0, 4))
            fields["num_of_individuals_needed_to_meet"] = draw(st.integers(0, 3))
        members.append(MemberAccumulator(code=code, level=level, network_indicator="InNetwork",
                                         limit_type=limit_type, **fields))  # type: ignore[arg-type]
    return related, members


@st.composite
def cases(draw: st.DrawFn) -> Case:
    related: list[RelatedAccumulator] = []
    members: list[MemberAccumulator] = []
    counter = draw(st.booleans())
    for code in ("Deductible", "OOP Max", "Limit"):
        if code == "Limit" and draw(st.integers(0, 2)):
            continue  # most coverages have no limit
        rel, mem = draw(accumulator_pair(code, counter))
        related += rel
        members += mem
    # Noise the chain must ignore: codes it does not model and accumulators nobody relates to.
    members.append(MemberAccumulator(code="Coinsurance Max", level="Individual", calculated_value=Decimal(0)))
    members = draw(st.permutations(members))
    coverage = Coverage(
        is_service_covered=draw(st.sampled_from(YES + YES + YES + NO)),
        copay=draw(st.one_of(st.none(), money(50_000))),
        coinsurance_percent=draw(st.one_of(st.none(), percents)),
        copay_applies_out_of_pocket=draw(indicators),
        coins_applies_out_of_pocket=draw(indicators),
        deductible_applies_out_of_pocket=draw(indicators),
        copay_count_to_deductible=draw(indicators),
        copay_continue_when_deductible_met=draw(indicators),
        copay_continue_when_out_of_pocket_max_met=draw(indicators),
        is_deductible_before_copay=draw(indicators),
        network_category=draw(st.sampled_from(["InNetwork", None, "I"])),
        related_accumulators=tuple(draw(st.permutations(related))),
    )
    return Case(coverage, tuple(members), draw(amounts))
