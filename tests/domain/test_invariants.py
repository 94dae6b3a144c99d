"""Property tests of every invariant of §6 over random coverages, accumulators and amounts."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.domain.costshare import AccumKind, CostShareResult, HandlerId, LimitType, MemberAccumulator, calculate
from server.domain.costshare.inputs import parse_indicator
from server.domain.costshare.routing import ROUTES
from server.domain.errors import InvalidInput
from tests.domain.strategies import Case, cases

HALF_CENT = Decimal("0.005")
ZERO = Decimal(0)
PROFILE = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _flag(case: Case, name: str) -> bool:
    return parse_indicator(getattr(case.coverage, name), name)


def _met_by_count(case: Case, result: CostShareResult) -> bool:
    """§5.3, recomputed independently from the selected deductible accumulators."""
    pairs = {s.level.value: s for s in result.accumulators if s.kind is AccumKind.DEDUCTIBLE}
    for level in ("family", "individual"):
        s = pairs.get(level)
        if s and s.num_of_individuals_met is not None and s.num_of_individuals_needed_to_meet is not None:
            return s.num_of_individuals_needed_to_meet > 0 and s.num_of_individuals_met >= s.num_of_individuals_needed_to_meet
    return False


def _credits(result: CostShareResult, kind: AccumKind) -> tuple[Decimal | None, Decimal]:
    """(governing remainder before, credit) for a kind; asserts every known level moved by the same amount."""
    known = [s for s in result.accumulators if s.kind is kind and s.remaining_before is not None]
    if not known:
        return None, ZERO
    moved = {s.applied for s in known}
    assert len(moved) == 1, f"{kind}: levels credited differently {moved}"  # §5.4
    return min(s.remaining_before for s in known if s.remaining_before is not None), moved.pop() or ZERO


def check_invariants(case: Case, result: CostShareResult) -> None:
    amount, b = case.amount, result.breakdown
    # 1. member + plan = service, exactly
    assert result.member_pays + result.plan_pays == amount
    # 2. 0 <= member <= service, and never decreasing while the chain runs
    assert ZERO <= result.member_pays <= amount
    running = [line.member_pays for line in result.trace if line.member_pays is not None]
    assert running == sorted(running) and (not running or running[-1] == result.member_pays)
    # 3. breakdown adds up
    assert b.total() == result.member_pays
    assert min(b.deductible, b.copay, b.coinsurance, b.not_covered, b.over_limit) >= 0
    # 4. no negative remainder; counters whole; money whole cents
    for s in result.accumulators:
        for value in (s.remaining_before, s.remaining_after):
            if value is not None:
                assert value >= 0
                if s.limit_type is LimitType.COUNTER:
                    assert value == value.to_integral_value()
                else:
                    assert value.as_tuple().exponent == -2
    for value in (result.member_pays, result.plan_pays, b.deductible, b.copay, b.coinsurance):
        assert value.as_tuple().exponent == -2
    # 5. credits bounded by O and D before the service
    o_before, oop_credit = _credits(result, AccumKind.OOP)
    d_before, ded_credit = _credits(result, AccumKind.DEDUCTIBLE)
    if o_before is not None:
        assert ZERO <= oop_credit <= o_before
    if d_before is not None:
        assert ZERO <= ded_credit <= (ZERO if _met_by_count(case, result) else d_before)
    # 6. copay <= copay; coinsurance <= percent x the amount it applied to (+ half a cent)
    copay = case.coverage.copay or ZERO
    percent = case.coverage.coinsurance_percent or ZERO
    assert b.copay <= copay
    h10 = [line for line in result.trace if line.handler is HandlerId.H10]
    if h10:
        applied_to = dict(h10[0].looked_at)["amount_left"]
        assert isinstance(applied_to, Decimal)
        assert b.coinsurance <= applied_to * percent / 100 + HALF_CENT
    else:
        assert b.coinsurance == 0
    # 7. not_covered / over_limit never credited: credits are explained by the counted lines alone
    copay_in_steps = sum((amt for line in result.trace if line.handler is not HandlerId.H4
                          for name, amt in line.charged if name == "copay"), ZERO)
    if o_before is not None:
        expected = ((b.deductible if _flag(case, "deductible_applies_out_of_pocket") else ZERO)
                    + (b.coinsurance if _flag(case, "coins_applies_out_of_pocket") else ZERO)
                    + (copay_in_steps if _flag(case, "copay_applies_out_of_pocket") else ZERO))
        assert oop_credit == expected
    if d_before is not None:
        copay_counts = _flag(case, "copay_count_to_deductible") and not _flag(case, "is_deductible_before_copay")
        assert b.deductible <= ded_credit <= b.deductible + (b.copay if copay_counts else ZERO)
    # 8. not covered or limit exhausted: nothing moves
    if not result.service_covered or (result.path == (HandlerId.H1, HandlerId.H2) and result.limit_reached):
        assert all(s.remaining_after == s.remaining_before for s in result.accumulators)
        assert result.member_pays == amount and b.deductible == b.copay == b.coinsurance == 0
    # flags read off the final remainders
    o_after = [s.remaining_after for s in result.accumulators if s.kind is AccumKind.OOP and s.remaining_after is not None]
    assert result.oop_met == (bool(o_after) and min(o_after) == 0)
    # the path is a walk along the routing table
    edges = {(e.source, e.target) for e in ROUTES}
    assert result.path[0] is HandlerId.H1
    for a, z in zip(result.path, result.path[1:]):
        assert (a, z) in edges, (a, z)


@PROFILE
@given(cases())
def test_invariants_hold_for_every_input(case: Case) -> None:
    try:
        result = calculate(case.coverage, case.accumulators, case.amount, trace=True)
    except InvalidInput as err:  # only mixed/untyped limits can be refused by this generator
        assert err.field is not None and err.field.endswith("limit_type"), err
        return
    check_invariants(case, result)
    # tracing changes nothing but the trace
    quiet = calculate(case.coverage, case.accumulators, case.amount)
    assert replace(quiet, trace=result.trace) == result and quiet.trace == ()


@PROFILE
@given(cases(), st.integers(1, 4))
def test_invariant_9_result_does_not_depend_on_written_scale(case: Case, extra: int) -> None:
    """The same numbers written with more trailing zeros (or as strings) give the identical result."""
    def rescale(value: Decimal | None) -> Decimal | None:
        return None if value is None else value.quantize(Decimal(1).scaleb(-(2 + extra)))

    wide = replace(case.coverage, copay=rescale(case.coverage.copay))
    accs = tuple(replace(a, calculated_value=rescale(a.calculated_value) if a.limit_type != "Counter"
                         else a.calculated_value) for a in case.accumulators)
    try:
        expected = calculate(case.coverage, case.accumulators, case.amount)
    except InvalidInput:
        return
    assert calculate(wide, accs, str(rescale(case.amount))) == expected


@PROFILE
@given(cases(), st.data())
def test_bigger_amount_never_lowers_member_pays(case: Case, data: st.DataObject) -> None:
    """Not in §6, but a direct consequence of it that a member would notice: paying for more never costs less."""
    more = case.amount + Decimal(data.draw(st.integers(0, 100_000))) * Decimal("0.01")
    try:
        low = calculate(case.coverage, case.accumulators, case.amount)
    except InvalidInput:
        return
    high = calculate(case.coverage, case.accumulators, more)
    assert high.member_pays >= low.member_pays


WILD_TEXT = st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["Y", "N", "Individual", "Family", "F",
                                                                      "Dollar", "Counter", "Limit", "OOP Max",
                                                                      "Deductible", "I", "O"]))
WILD_NUMBER = st.one_of(st.none(), st.decimals(allow_nan=True, allow_infinity=True, places=None),
                        st.integers(-10**20, 10**20).map(Decimal))


@settings(max_examples=400, deadline=None)
@given(cases(), st.lists(st.builds(MemberAccumulator, code=WILD_TEXT, level=WILD_TEXT, network_indicator_code=WILD_TEXT,
                                   limit_type=WILD_TEXT, limit_value=WILD_NUMBER, current_value=WILD_NUMBER,
                                   calculated_value=WILD_NUMBER), max_size=4),
       WILD_TEXT, WILD_NUMBER, WILD_NUMBER)
def test_any_input_is_answered_or_refused_never_crashes(case: Case, extra: list[MemberAccumulator],
                                                       indicator: str | None, copay: Decimal | None,
                                                       amount: Decimal | None) -> None:
    coverage = replace(case.coverage, copay_applies_out_of_pocket=indicator, copay=copay)
    try:
        result = calculate(coverage, case.accumulators + tuple(extra), case.amount if amount is None else amount)
    except InvalidInput as err:
        assert err.field and err.message
        return
    assert result.member_pays + result.plan_pays == result.service_amount
