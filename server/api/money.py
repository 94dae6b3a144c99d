"""Exact conversion between google.type.Money / google.type.Decimal and decimal.Decimal.

Inputs with more than two decimals are refused rather than rounded; outputs are rounded half-up to cents
exactly once, here at the edge.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from google.type import decimal_pb2, money_pb2

from server.api.validation import Violations

CURRENCY = "USD"
CENT = Decimal("0.01")
_NANOS_PER_CENT = 10_000_000
_NANOS = Decimal(1_000_000_000)
MAX_AMOUNT = Decimal("10000000.00")  # ten million dollars: anything above is a data error, not a bill


def money_to_decimal(m: money_pb2.Money, path: str, v: Violations, *, allow_zero: bool = True) -> Decimal | None:
    """Validate and convert; records a violation and returns None when the value is unusable."""
    if m.currency_code not in ("", CURRENCY):
        v.add(f"{path}.currency_code", f"must be {CURRENCY}")
        return None
    if not -999_999_999 <= m.nanos <= 999_999_999:
        v.add(f"{path}.nanos", "must be within ±999,999,999")
        return None
    if (m.units > 0 and m.nanos < 0) or (m.units < 0 and m.nanos > 0):
        v.add(path, "units and nanos must have the same sign")
        return None
    if m.nanos % _NANOS_PER_CENT:
        v.add(f"{path}.nanos", "money has at most two decimal places (nanos a multiple of 10,000,000)")
        return None
    amount = Decimal(m.units) + Decimal(m.nanos) / _NANOS
    if amount < 0:
        v.add(path, "must not be negative")
        return None
    if amount == 0 and not allow_zero:
        v.add(path, "must be greater than zero")
        return None
    if amount > MAX_AMOUNT:
        v.add(path, f"must not exceed {MAX_AMOUNT}")
        return None
    return amount.quantize(CENT)


def decimal_to_money(amount: Decimal) -> money_pb2.Money:
    """Round half-up to cents (the single rounding point at the edge) and encode exactly."""
    cents = int(amount.quantize(CENT, rounding=ROUND_HALF_UP) * 100)
    sign = -1 if cents < 0 else 1
    units, rest = divmod(abs(cents), 100)
    return money_pb2.Money(currency_code=CURRENCY, units=sign * units, nanos=sign * rest * _NANOS_PER_CENT)


def parse_decimal(d: decimal_pb2.Decimal, path: str, v: Violations) -> Decimal | None:
    """Parse a google.type.Decimal string; refuses NaN, infinities and exponents beyond sanity."""
    text = d.value.strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        v.add(path, "must be a decimal number such as \"20\" or \"12.5\"")
        return None
    if not value.is_finite() or abs(value.adjusted()) > 12:
        v.add(path, "must be a finite decimal of sensible size")
        return None
    return value


def decimal_to_pb(value: Decimal) -> decimal_pb2.Decimal:
    return decimal_pb2.Decimal(value=format(value, "f"))
