"""Each handler of §3 alone: the row of §4 it picks and the money it moves."""

from __future__ import annotations

import pytest

from server.domain.costshare import routing as r
from server.domain.costshare.handlers import (
    h1_service_coverage,
    h2_after_subchain,
    h2_benefit_limitation,
    h3_oop_max,
    h4_oop_max_copay,
    h5_deductible,
    h6_cost_share_copay,
    h7_deductible_cost_share_copay,
    h8_deductible_copay,
    h9_deductible_oop_max,
    h10_deductible_coinsurance,
)
from server.domain.costshare.inputs import Level, LimitType
from server.domain.errors import InvalidInput
from tests.domain.builders import F, I, D, context


def test_h1_not_covered_member_pays_all() -> None:
    ctx = context("640.00", covered=False, ded={I: "300.00"})
    assert h1_service_coverage(ctx) is r.H1_NOT_COVERED
    assert ctx.line_not_covered == D("640.00") and ctx.amount_left == 0 and ctx.ded == {I: D("300.00")}


def test_h1_covered_goes_to_h2() -> None:
    ctx = context("640.00")
    assert h1_service_coverage(ctx) is r.H1_COVERED and ctx.member_pays == 0


def test_h2_no_limit() -> None:
    assert h2_benefit_limitation(context("10.00")) is r.H2_NO_LIMIT


@pytest.mark.parametrize(
    ("limit", "limit_type"),
    [({I: "0"}, LimitType.COUNTER), ({I: None}, LimitType.DOLLAR), ({I: "50.00", F: None}, LimitType.DOLLAR),
     ({I: "0.00"}, LimitType.DOLLAR), ({I: "5", F: "0"}, LimitType.COUNTER), ({I: "0.00"}, None)],
)
def test_h2_exhausted_or_unknown_limit_member_pays_all(limit: dict[Level, str | None], limit_type: LimitType | None) -> None:
    ctx = context("185.00", limit=limit, limit_type=limit_type, oop={I: "100.00"})
    assert h2_benefit_limitation(ctx) is r.H2_EXHAUSTED
    assert ctx.line_over_limit == D("185.00") and ctx.limit_reached and ctx.oop == {I: D("100.00")}


def test_h2_available_limits_start_the_subchain() -> None:
    assert h2_benefit_limitation(context("1.00", limit={I: "2"}, limit_type=LimitType.COUNTER)) is r.H2_COUNTER
    assert h2_benefit_limitation(context("1.00", limit={I: "2.00"}, limit_type=LimitType.DOLLAR)) is r.H2_DOLLAR


def test_h2_positive_limit_of_unknown_type_is_refused() -> None:
    with pytest.raises(InvalidInput):
        h2_benefit_limitation(context("1.00", limit={I: "4"}, limit_type=None))


def test_h2_after_counter_uses_one_visit_per_level() -> None:
    ctx = context("0.00", limit={I: "6", F: "10"}, limit_type=LimitType.COUNTER)
    assert h2_after_subchain(ctx) is r.H2_AFTER
    assert ctx.limit == {I: D(5), F: D(9)} and ctx.member_pays == 0


def test_h2_after_dollar_caps_the_plan_share() -> None:
    ctx = context("182.00", limit={I: "90.00", F: "500.00"}, limit_type=LimitType.DOLLAR, oop={I: "1.00"})
    h2_after_subchain(ctx)
    assert ctx.line_over_limit == D("92.00") and ctx.amount_left == D("90.00") and ctx.limit_reached
    assert ctx.limit == {I: D("0.00"), F: D("410.00")}
    assert ctx.oop == {I: D("1.00")}  # the excess is credited nowhere


def test_h2_after_dollar_within_limit() -> None:
    ctx = context("288.00", limit={I: "1500.00"}, limit_type=LimitType.DOLLAR)
    h2_after_subchain(ctx)
    assert ctx.line_over_limit == 0 and not ctx.limit_reached and ctx.limit == {I: D("1212.00")}


@pytest.mark.parametrize(("oop", "edge"), [({I: "0.00", F: "5.00"}, r.H3_OOP_MET), ({}, r.H3_OOP_OPEN),
                                           ({I: "0.01"}, r.H3_OOP_OPEN)])
def test_h3_routes_on_o(oop: dict[Level, str], edge: r.Edge) -> None:
    assert h3_oop_max(context("1.00", oop=oop)) is edge


def test_h4_continuing_copay_is_credited_nowhere() -> None:
    ctx = context("28.00", oop={I: "0.00"}, copay=D("45.00"), copay_after_oop=True)
    assert h4_oop_max_copay(ctx) is r.H4_COPAY
    assert ctx.line_copay == D("28.00") and ctx.oop == {I: D("0.00")} and ctx.copay_left == D("17.00")


def test_h4_without_continuing_copay_charges_nothing() -> None:
    ctx = context("28.00", oop={I: "0.00"}, copay=D("45.00"))
    assert h4_oop_max_copay(ctx) is r.H4_END and ctx.member_pays == 0


@pytest.mark.parametrize(
    ("ded", "met", "overrides", "edge"),
    [
        ({}, False, {}, r.H5_NO_DEDUCTIBLE),
        ({I: "0.00", F: "100.00"}, False, {}, r.H5_MET),
        ({I: "650.00", F: "1300.00"}, True, {}, r.H5_MET),
        ({I: "10.00"}, False, {"ded_first": False, "copay": D("35.00")}, r.H5_COPAY_FIRST),
        ({I: "10.00"}, False, {"ded_first": False}, r.H5_DEDUCTIBLE),  # no copay: straight to the deductible
        ({I: "10.00"}, False, {"copay": D("35.00")}, r.H5_DEDUCTIBLE),
    ],
)
def test_h5_routes_on_d(ded: dict[Level, str], met: bool, overrides: dict[str, object], edge: r.Edge) -> None:
    assert h5_deductible(context("1.00", ded=ded, met_by_count=met, **overrides)) is edge  # type: ignore[arg-type]


def test_h6_routes() -> None:
    assert h6_cost_share_copay(context("310.00", oop={I: "25.00"}, copay=D("60.00"))) is r.H6_OOP_MET
    assert h6_cost_share_copay(context("18.75", copay=D("35.00"))) is r.H6_DONE
    ctx = context("480.00", copay=D("35.00"))
    assert h6_cost_share_copay(ctx) is r.H6_COINSURANCE and ctx.line_copay == D("35.00")


def test_h7_routes() -> None:
    assert h7_deductible_cost_share_copay(context("1.00", copay=D("5.00"), copay_after_ded=True)) is r.H7_COPAY
    assert h7_deductible_cost_share_copay(context("1.00", copay=D("5.00"))) is r.H7_COINSURANCE
    assert h7_deductible_cost_share_copay(context("1.00", copay_after_ded=True)) is r.H7_COINSURANCE


def test_h8_credits_copay_to_deductible_up_to_what_is_left() -> None:
    ctx = context("655.00", ded={I: "20.00", F: "300.00"}, copay=D("35.00"), ded_first=False, copay_to_ded=True)
    assert h8_deductible_copay(ctx) is r.H8_COPAY_FIRST
    assert ctx.ded == {I: D("0.00"), F: D("280.00")}  # min(35, D=20), never below 0


def test_h8_no_credit_when_deductible_first() -> None:
    ctx = context("275.00", ded={I: "0.00"}, copay=D("35.00"), copay_to_ded=True)
    assert h8_deductible_copay(ctx) is r.H8_DED_FIRST and ctx.ded == {I: D("0.00")}


def test_h8_credit_happens_before_going_to_h4() -> None:
    ctx = context("310.00", ded={I: "500.00"}, oop={I: "25.00"}, copay=D("60.00"), ded_first=False,
                  copay_to_ded=True)
    assert h8_deductible_copay(ctx) is r.H8_OOP_MET
    assert ctx.ded == {I: D("475.00")}


def test_h8_done_when_nothing_left() -> None:
    ctx = context("22.50", ded={I: "150.00"}, copay=D("35.00"), ded_first=False, copay_to_ded=True)
    assert h8_deductible_copay(ctx) is r.H8_DONE and ctx.ded == {I: D("127.50")}


def test_h9_routes() -> None:
    assert h9_deductible_oop_max(context("2050.00", ded={I: "1500.00"}, oop={I: "700.00"})) is r.H9_STOP
    assert h9_deductible_oop_max(context("210.00", ded={I: "750.00"})) is r.H9_DONE
    assert h9_deductible_oop_max(context("500.00", ded={I: "100.00"})) is r.H9_DED_FIRST
    assert h9_deductible_oop_max(context("500.00", ded={I: "100.00"}, ded_first=False)) is r.H9_COPAY_FIRST


def test_h9_service_equal_to_deductible_completes() -> None:
    """Decision 23: nothing left means complete, even though the deductible is now met."""
    ctx = context("100.00", ded={I: "100.00"})
    assert h9_deductible_oop_max(ctx) is r.H9_DONE and ctx.ded == {I: D("0.00")}


def test_h10_always_ends() -> None:
    ctx = context("745.00", percent=D(20))
    assert h10_deductible_coinsurance(ctx) is r.H10_END and ctx.line_coinsurance == D("149.00")
