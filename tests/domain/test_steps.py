"""The three money steps of §2.1, each alone on a hand-built context."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.domain.costshare.steps import coinsurance_step, copay_step, deductible_step
from tests.domain.builders import F, I, D, context


def lines(ctx: object) -> tuple[Decimal, ...]:
    return tuple(getattr(ctx, f"line_{n}") for n in ("deductible", "copay", "coinsurance", "not_covered", "over_limit"))


# --- copay step ---------------------------------------------------------------------------------------------


def test_copay_step_oop_met_charges_nothing_and_sends_to_h4() -> None:
    ctx = context("100.00", oop={I: "0.00"}, copay=D("35.00"))
    assert copay_step(ctx) == (D(0), True)
    assert ctx.member_pays == 0 and ctx.copay_left == D("35.00") and ctx.amount_left == D("100.00")


def test_copay_step_charges_copay_and_credits_every_oop_level() -> None:
    ctx = context("100.00", oop={I: "500.00", F: "900.00"}, copay=D("35.00"))
    assert copay_step(ctx) == (D("35.00"), False)
    assert ctx.member_pays == D("35.00") and ctx.line_copay == D("35.00") and ctx.amount_left == D("65.00")
    assert ctx.copay_left == 0
    assert ctx.oop == {I: D("465.00"), F: D("865.00")}


def test_copay_step_never_charges_more_than_amount_left() -> None:
    ctx = context("18.75", copay=D("35.00"))
    assert copay_step(ctx) == (D("18.75"), False)
    assert ctx.amount_left == 0 and ctx.copay_left == D("16.25")


def test_copay_step_capped_by_smallest_oop_then_h4() -> None:
    ctx = context("310.00", oop={I: "25.00", F: "900.00"}, copay=D("60.00"))
    assert copay_step(ctx) == (D("25.00"), True)
    assert ctx.oop == {I: D("0.00"), F: D("875.00")} and ctx.copay_left == D("35.00")


def test_copay_step_exactly_using_up_oop_with_nothing_left_does_not_go_to_h4() -> None:
    ctx = context("25.00", oop={I: "25.00"}, copay=D("25.00"))
    assert copay_step(ctx) == (D("25.00"), False)


def test_copay_step_not_counted_to_oop_is_uncapped_and_credits_nothing() -> None:
    ctx = context("310.00", oop={I: "25.00"}, copay=D("60.00"), copay_to_oop=False)
    assert copay_step(ctx) == (D("60.00"), False)
    assert ctx.oop == {I: D("25.00")}


def test_copay_step_absent_oop_is_no_cap() -> None:
    ctx = context("310.00", copay=D("60.00"))
    assert copay_step(ctx) == (D("60.00"), False)


# --- deductible step ----------------------------------------------------------------------------------------


def test_deductible_step_oop_met_completes_without_charging() -> None:
    ctx = context("100.00", ded={I: "50.00"}, oop={I: "0.00"})
    assert deductible_step(ctx) is True
    assert ctx.member_pays == 0 and ctx.ded == {I: D("50.00")}


def test_deductible_step_charges_smallest_level_and_credits_all() -> None:
    ctx = context("520.00", ded={I: "900.00", F: "120.00"}, oop={I: "6000.00"})
    assert deductible_step(ctx) is False
    assert ctx.line_deductible == D("120.00") and ctx.amount_left == D("400.00")
    assert ctx.ded == {I: D("780.00"), F: D("0.00")} and ctx.oop == {I: D("5880.00")}


def test_deductible_step_stops_when_oop_runs_out_first() -> None:
    ctx = context("2050.00", ded={I: "1500.00"}, oop={I: "700.00", F: "4000.00"})
    assert deductible_step(ctx) is True
    assert ctx.member_pays == D("700.00") and ctx.ded == {I: D("800.00")}
    assert ctx.oop == {I: D("0.00"), F: D("3300.00")}


def test_deductible_step_not_counted_to_oop_ignores_the_cap() -> None:
    ctx = context("1020.00", ded={I: "300.00"}, oop={I: "250.00"}, ded_to_oop=False)
    assert deductible_step(ctx) is False
    assert ctx.line_deductible == D("300.00") and ctx.oop == {I: D("250.00")}


def test_deductible_step_met_by_count_charges_nothing() -> None:
    ctx = context("510.00", ded={I: "650.00", F: "1300.00"}, met_by_count=True)
    assert deductible_step(ctx) is False
    assert ctx.member_pays == 0 and ctx.ded == {I: D("650.00"), F: D("1300.00")}


# --- coinsurance step ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        ("99.99", "12.5", "12.50"),  # 12.49875 -> 12.50
        ("4.90", "25", "1.23"),  # 1.225 -> 1.23: half-up, not banker's 1.22
        ("4.50", "25", "1.13"),  # 1.125 -> 1.13
        ("0.01", "49.99", "0.00"),
        ("0.01", "50", "0.01"),
        ("340.00", "100", "340.00"),
        ("445.00", "20.0", "89.00"),
    ],
)
def test_coinsurance_step_rounds_half_up_once(amount: str, percent: str, expected: str) -> None:
    ctx = context(amount, percent=D(percent))
    coinsurance_step(ctx)
    assert ctx.line_coinsurance == D(expected) and str(ctx.line_coinsurance) == expected
    assert ctx.member_pays + ctx.amount_left == D(amount)


def test_coinsurance_step_capped_by_oop_when_counted() -> None:
    ctx = context("2350.00", percent=D(30), oop={I: "410.00", F: "6000.00"})
    coinsurance_step(ctx)
    assert ctx.line_coinsurance == D("410.00") and ctx.oop == {I: D("0.00"), F: D("5590.00")}


def test_coinsurance_step_not_counted_is_uncapped() -> None:
    ctx = context("840.00", percent=D(25), oop={I: "50.00"}, coins_to_oop=False)
    coinsurance_step(ctx)
    assert ctx.line_coinsurance == D("210.00") and ctx.oop == {I: D("50.00")}


@pytest.mark.parametrize("case", ["zero amount", "oop met", "zero percent"])
def test_coinsurance_step_charges_nothing(case: str) -> None:
    amount = "0.00" if case == "zero amount" else "100.00"
    oop = {I: "0.00"} if case == "oop met" else {I: "100.00"}
    percent = D(0) if case == "zero percent" else D(20)
    ctx = context(amount, oop=oop, percent=percent, coins_to_oop=False)
    before = lines(ctx)
    coinsurance_step(ctx)
    assert lines(ctx) == before and ctx.oop == {I: D(oop[I])}
