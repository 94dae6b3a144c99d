"""Proto values as people read them: money to the cent, percents, dates, enum names without their prefix."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2, decimal_pb2, money_pb2

CENT = Decimal("0.01")


def money_value(money: money_pb2.Money) -> Decimal:
    """Exact: units + nanos, never a float."""
    return Decimal(money.units) + Decimal(money.nanos).scaleb(-9)


def money_text(money: money_pb2.Money | None) -> str:
    if money is None:
        return ""
    amount = money_value(money).quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    prefix = "$" if money.currency_code in ("", "USD") else f"{money.currency_code} "
    return f"{sign}{prefix}{abs(amount):,.2f}"


def money_from_text(text: str) -> money_pb2.Money:
    """'1900.50' -> USD 1900 units + 500000000 nanos (exact); ValueError when it is not a number."""
    try:
        amount = Decimal(text.strip().lstrip("$").replace(",", ""))
    except ArithmeticError:
        raise ValueError(f"not an amount: {text!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    units = int(amount)
    nanos = int((amount - units) * 1_000_000_000)
    return money_pb2.Money(currency_code="USD", units=units, nanos=nanos)


def decimal_text(value: decimal_pb2.Decimal) -> str:
    return value.value


def date_text(value: date_pb2.Date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}" if value.year else ""


def timestamp_text(value: Timestamp) -> str:
    if not value.seconds and not value.nanos:
        return ""
    return value.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")  # UTC, said in the column or row label


def enum_text(name: str, prefix: str) -> str:
    """'NETWORK_CATEGORY_IN_NETWORK' -> 'in network'."""
    return name.removeprefix(prefix).replace("_", " ").lower()


def _dict(message: Message) -> dict[str, Any]:
    """Zero values printed too (an OK status, a $0.00 copay), so a script never meets a missing key."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def to_json(messages: Iterable[Message], key: str, **extra: Any) -> str:
    """Proto3 JSON (the .proto field names) for scripts: the contract's own mapping, nothing invented."""
    body = {key: [_dict(m) for m in messages], **extra}
    return json.dumps(body, indent=2)


def message_json(message: Message) -> str:
    return json.dumps(_dict(message), indent=2)
