"""Exact money: Decimal only, whole cents, one half-up rounding point (rule book §7).

Inputs are normalised to an exponent of -2 without rounding, so every sum stays in whole cents and the result
needs no further quantisation; :func:`to_cents` is the one rounding function and only the coinsurance step
calls it.
"""

from __future__ import annotations

from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Final

from server.domain.errors import InvalidInput

CENT: Final = Decimal("0.01")
ZERO: Final = Decimal("0.00")
HUNDRED: Final = Decimal("100")

#: Money at or above this is refused: far beyond any claim, and it keeps every figure a short exact decimal.
MONEY_LIMIT: Final = Decimal("1000000000000000")
_MONEY_DIGITS: Final = 15  # adjusted exponent of MONEY_LIMIT

#: Context the chain runs in: precision large enough that +, -, x are always exact, and Inexact trapped so a
#: silent rounding anywhere but :func:`to_cents` would be an exception instead of a wrong cent.
EXACT: Final = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    rounding=ROUND_HALF_UP,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)

# Rounding on purpose: Inexact is expected here, so it is not trapped.
_ROUNDING: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_UP,
                           traps=[InvalidOperation, Overflow])

_NUMBER_TYPES: Final = (Decimal, int, str)


def to_cents(value: Decimal) -> Decimal:
    """Round half-up to the cent (1.225 -> 1.23): the single rounding point of §7."""
    return value.quantize(CENT, ROUND_HALF_UP, _ROUNDING)  # positional: keyword arguments cost 2.5x here


def is_whole_cents(value: Decimal) -> bool:
    """True when ``value`` has no fraction of a cent, whatever its written scale ("1.500" is whole cents)."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, str):  # NaN / Infinity
        return False
    if exponent >= -2:
        return True
    return value.quantize(CENT, None, _ROUNDING) == value


def parse_decimal(value: object, field: str) -> Decimal:
    """Exact decimal from a Decimal, int or numeric string; floats are refused because they are not exact."""
    if type(value) is Decimal:  # the common case, first
        result = value
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES):
        raise InvalidInput(field, f"must be a decimal number written as a string, got {type(value).__name__}")
    elif isinstance(value, int):
        result = Decimal(value)
    else:
        text = str(value).strip()
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise InvalidInput(field, f"is not a decimal number: {value!r}") from None
    if not result.is_finite():
        raise InvalidInput(field, f"must be a finite number, got {value!r}")
    if result.copy_abs() >= MONEY_LIMIT:
        raise InvalidInput(field, "is out of range (must be below 1,000,000,000,000,000)")
    return result


def exact_cents(value: object) -> Decimal | None:
    """Hot path of :func:`parse_money`: a finite in-range Decimal in whole cents, as cents; else None.

    Callers fall back to :func:`parse_money` on None, which names the problem; this way the field path string
    is only built when there is an error to report.
    """
    if type(value) is not Decimal:
        return None
    try:
        cents = value.quantize(CENT, None, EXACT)  # EXACT traps Inexact: a sub-cent value raises
    except (Inexact, InvalidOperation):  # InvalidOperation: infinity, signalling NaN
        return None
    if not cents.is_finite() or cents.adjusted() >= _MONEY_DIGITS:
        return None
    return cents if cents else ZERO  # ZERO also drops the sign of "-0"


def parse_money(value: object, field: str, *, allow_negative: bool = False) -> Decimal:
    """Dollars with at most two decimals, returned with exactly two (no rounding ever happens here)."""
    cents = exact_cents(value)
    if cents is not None and (allow_negative or cents > 0):
        return cents
    result = parse_decimal(value, field)
    if not allow_negative and result < 0:
        raise InvalidInput(field, f"must not be negative, got {value}")
    if not result:
        return ZERO  # also turns "-0" into 0.00
    try:
        return result.quantize(CENT, None, EXACT)  # EXACT traps Inexact: a fraction of a cent cannot pass
    except Inexact:
        raise InvalidInput(field, f"has more than two decimal places: {value}") from None


def parse_percent(value: object, field: str) -> Decimal:
    """A member share in percent, 0..100 inclusive; any exact scale (12.5 means 12.5 %)."""
    result = parse_decimal(value, field)
    if result < 0 or result > HUNDRED:
        raise InvalidInput(field, f"must be between 0 and 100, got {value}")
    return result


def format_money(value: Decimal) -> str:
    """Two-decimal string for the API edge; exact because chain money is always whole cents."""
    return f"{value.quantize(CENT, None, EXACT):f}"
