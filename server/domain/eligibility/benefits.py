"""Parsing of single 271 values and `benefitsInformation[]` entries (spec §4 step 1).

Kept apart from the recipe so the rules in `normalize.py` read as rules, not as dict plumbing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, NamedTuple, TypeGuard

from .validation import parse_yyyymmdd

IN: Final = "in"
OUT: Final = "out"
_HUNDRED: Final = Decimal(100)
_ONE: Final = Decimal(1)


def text(value: object) -> str | None:
    """A non-empty string or None."""
    return value if isinstance(value, str) and value else None


def mapping(value: object) -> Mapping[str, Any]:
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def mappings(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if type(item) is dict or isinstance(item, Mapping)]


def decimal(value: object) -> Decimal | None:
    """Exact Decimal from the payer's string ("1294.84", "0", ".2"); never via float."""
    if not isinstance(value, str) or not (stripped := value.strip()):
        return None
    try:
        parsed = Decimal(stripped)
    except InvalidOperation:
        return None
    return parsed if parsed.is_finite() else None


def percent_from_fraction(fraction: Decimal) -> Decimal:
    """Stedi sends fractions ("0.2"); we report percents (20), without a trailing ".0"."""
    scaled = fraction * _HUNDRED
    if scaled == scaled.to_integral_value():
        return scaled.quantize(_ONE)
    return scaled.normalize()


@dataclass(frozen=True, slots=True)
class DateValue:
    """`YYYYMMDD` (begin only, open-ended) or `YYYYMMDD-YYYYMMDD`."""

    begin: dt.date | None
    end: dt.date | None
    is_range: bool


def date_value(value: object) -> DateValue | None:
    raw = text(value)
    if raw is None:
        return None
    if "-" in raw:
        first, _, second = raw.partition("-")
        begin, end = parse_yyyymmdd(first.strip()), parse_yyyymmdd(second.strip())
        return DateValue(begin, end, True) if begin or end else None
    single = parse_yyyymmdd(raw.strip())
    return DateValue(single, None, False) if single else None


def window(info: Mapping[str, Any]) -> tuple[dt.date | None, dt.date | None]:
    """Validity window given by plan/eligibility/policy dates (missing side = open)."""
    begins: list[dt.date] = []
    ends: list[dt.date] = []
    for key in ("planBegin", "eligibilityBegin", "policyEffective"):
        if (parsed := date_value(info.get(key))) and parsed.begin:
            begins.append(parsed.begin)
    for key in ("planEnd", "eligibilityEnd", "policyExpiration"):
        if (parsed := date_value(info.get(key))) and parsed.begin:
            ends.append(parsed.begin)
    for key in ("plan", "eligibility"):
        parsed = date_value(info.get(key))
        if parsed and parsed.is_range:
            if parsed.begin:
                begins.append(parsed.begin)
            if parsed.end:
                ends.append(parsed.end)
    return (max(begins) if begins else None, min(ends) if ends else None)


_BOTH: Final = (IN, OUT)
_NETWORKS: Final[Mapping[object, tuple[str, ...]]] = {"Y": (IN,), "N": (OUT,)}


class Entry(NamedTuple):
    """One `benefitsInformation[]` element, parsed. `position` is its index in the raw array (the `source_ref`).

    A NamedTuple rather than a frozen dataclass: as immutable, and built several times faster (a 271 carries
    dozens of these and every synchronous check parses them all).
    """

    position: int
    code: str
    name: str | None
    level: str | None
    service_type_codes: tuple[str, ...]
    time_qualifier: str | None
    amount: Decimal | None
    fraction: Decimal | None
    network: str | None
    insurance_type: str | None
    plan_coverage: str | None
    auth_or_cert: str | None
    notes: tuple[str, ...]
    place_of_service: str | None
    begin: dt.date | None
    end: dt.date | None
    related_entities: tuple[Mapping[str, Any], ...]
    # Y -> in, N -> out; W (both), U and missing -> both buckets (never "provider is in network").
    networks: tuple[str, ...] = _BOTH
    quantity_qualifier: str | None = None  # EB09, e.g. VS visits (limitations)
    quantity: Decimal | None = None  # EB10

    def valid_on(self, day: dt.date) -> bool:
        return (self.begin is None or self.begin <= day) and (self.end is None or day <= self.end)


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """`isinstance(value, Mapping)` without the ABC check for the JSON case (a plain dict)."""
    return type(value) is dict or isinstance(value, Mapping)


def _place_of_service(raw: Mapping[str, Any]) -> str | None:
    listed = raw.get("eligibilityAdditionalInformationList")
    single = raw.get("eligibilityAdditionalInformation")
    if listed is None and single is None:
        return None
    places = [*mappings(listed), mapping(single)]
    for item in places:
        code = text(item.get("industryCode"))
        if code:
            return code
    return None


def _related(raw: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    many = raw.get("benefitsRelatedEntities")
    single = raw.get("benefitsRelatedEntity")
    if many is None and single is None:
        return ()
    return tuple(mappings(many) or [entity for entity in [mapping(single)] if entity])


def _notes(raw: Mapping[str, Any]) -> tuple[str, ...]:
    items = raw.get("additionalInformation")
    if items is None:
        return ()
    return tuple(n for item in mappings(items) if (n := text(item.get("description"))))


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return value if type(value) is str and value else text(value)


def parse_entry(index: int, raw: Mapping[str, Any]) -> Entry:
    dates = raw.get("benefitsDateInformation")
    begin, end = window(dates) if dates and _is_mapping(dates) else (None, None)
    codes = raw.get("serviceTypeCodes")
    amount = raw.get("benefitAmount")
    fraction = raw.get("benefitPercent")
    network = _text(raw, "inPlanNetworkIndicatorCode")
    quantity = raw.get("benefitQuantity")
    return Entry(
        index,
        _text(raw, "code") or "",
        _text(raw, "name"),
        _text(raw, "coverageLevelCode"),
        tuple(c for c in codes if isinstance(c, str)) if isinstance(codes, list) else (),
        _text(raw, "timeQualifierCode"),
        None if amount is None else decimal(amount),
        None if fraction is None else decimal(fraction),
        network,
        _text(raw, "insuranceTypeCode"),
        _text(raw, "planCoverage"),
        _text(raw, "authOrCertIndicator"),
        _notes(raw),
        _place_of_service(raw),
        begin,
        end,
        _related(raw),
        _NETWORKS.get(network, _BOTH),
        _text(raw, "quantityQualifierCode"),
        None if quantity is None else decimal(quantity),
    )


def parse_entries(raw: Sequence[object]) -> list[Entry]:
    return [parse_entry(index, item) for index, item in enumerate(raw) if _is_mapping(item)]
