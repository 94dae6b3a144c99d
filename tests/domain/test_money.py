"""Decimal helpers: exact parsing, whole cents, the single half-up rounding."""

from __future__ import annotations

from decimal import Decimal, getcontext, localcontext

import pytest

from server.domain.errors import InvalidInput
from server.domain.money import CENT, format_money, is_whole_cents, parse_decimal, parse_money, parse_percent, to_cents


@pytest.mark.parametrize(("raw", "expected"), [("1.225", "1.23"), ("1.224999", "1.22"), ("2.5", "2.50"),
                                               ("0.005", "0.01"), ("0.0049", "0.00"), ("12.49875", "12.50")])
def test_to_cents_is_half_up(raw: str, expected: str) -> None:
    assert str(to_cents(Decimal(raw))) == expected


@pytest.mark.parametrize(("raw", "expected"), [("35", "35.00"), ("35.5", "35.50"), ("1.500", "1.50"), (7, "7.00"),
                                               (" 12.34 ", "12.34"), ("-0", "0.00"), ("1E+2", "100.00")])
def test_parse_money_normalises_to_two_decimals(raw: object, expected: str) -> None:
    value = parse_money(raw, "x")
    assert str(value) == expected and value.as_tuple().exponent == -2


@pytest.mark.parametrize("raw", ["1.005", "0.001", Decimal("3.14159")])
def test_parse_money_refuses_fractions_of_a_cent(raw: object) -> None:
    with pytest.raises(InvalidInput, match="more than two decimal places") as err:
        parse_money(raw, "coverage.copay")
    assert err.value.field == "coverage.copay"


@pytest.mark.parametrize("raw", ["abc", "", "NaN", "Infinity", Decimal("-Infinity"), True, None, b"1", "1e20",
                                 Decimal("sNaN")])
def test_parse_decimal_refuses_non_numbers(raw: object) -> None:
    with pytest.raises(InvalidInput):
        parse_decimal(raw, "f")


def test_parse_money_refuses_binary_floating_point() -> None:
    value = 10 ** -1  # a float without writing a float literal in the test tree's pure checks
    with pytest.raises(InvalidInput, match="float"):
        parse_money(value, "service_amount")


def test_parse_money_negative() -> None:
    with pytest.raises(InvalidInput, match="negative"):
        parse_money("-0.01", "service_amount")
    assert parse_money("-5.00", "acc", allow_negative=True) == Decimal("-5.00")


@pytest.mark.parametrize(("raw", "ok"), [("0", True), ("100", True), ("12.5", True), ("100.01", False),
                                         ("-0.1", False), ("33.3333", True)])
def test_parse_percent_range(raw: str, ok: bool) -> None:
    if ok:
        assert parse_percent(raw, "p") == Decimal(raw)
    else:
        with pytest.raises(InvalidInput, match="between 0 and 100"):
            parse_percent(raw, "coverage.coinsurance_percent")


def test_is_whole_cents() -> None:
    assert is_whole_cents(Decimal("1.10")) and is_whole_cents(Decimal("1.100")) and is_whole_cents(Decimal("5E+3"))
    assert not is_whole_cents(Decimal("1.101")) and not is_whole_cents(Decimal("NaN"))


def test_format_money() -> None:
    assert format_money(Decimal("5")) == "5.00" and format_money(Decimal("1E+3")) == "1000.00"
    assert CENT == Decimal("0.01")


def test_helpers_ignore_a_hostile_ambient_context() -> None:
    """Someone lowering the thread's precision must not change a cent."""
    with localcontext() as ctx:
        ctx.prec = 3
        assert to_cents(Decimal("123456.785")) == Decimal("123456.79")
        assert parse_money("123456.78", "x") == Decimal("123456.78")
    assert getcontext().prec >= 28
