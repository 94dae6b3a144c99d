"""Parsing of single 271 values and `benefitsInformation[]` entries (spec §4 step 1).

Kept apart from the recipe so the rules in `normalize.py` read as rules, not as dict plumbing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from .validation import parse_yyyymmdd

IN: Final = "in"
OUT: Final = "out"
_HUNDRED: Final = Decimal(100)


def text(value: object) -> str | None:
    """A non-empty string or None."""
    return value if isinstance(value, str) and value else None


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def mappings(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def decimal(value: object) -> Decimal | None:
    """Exact Decimal from the payer's string ("1294.84", "0", ".2"); never via float."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = Decimal(value.strip())
    except InvalidOperation:
        return None
    return parsed if parsed.is_finite() else None


def percent_from_fraction(fraction: Decimal) -> Decimal:
    """Stedi sends fractions ("0.2"); we report percents (20), without a trailing ".0"."""
    scaled = fraction * _HUNDRED
    if scaled == scaled.to_integral_value():
        return scaled.quantize(Decimal(1))
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


@dataclass(frozen=True, slots=True)
class Entry:
    """One `benefitsInformation[]` element, parsed. `index` is its position in the raw array."""

    index: int
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

    @property
    def networks(self) -> tuple[str, ...]:
        """Y -> in, N -> out; W (both), U and missing -> both buckets (never 'provider is in network')."""
        if self.network == "Y":
            return (IN,)
        if self.network == "N":
            return (OUT,)
        return (IN, OUT)

    def valid_on(self, day: dt.date) -> bool:
        return (self.begin is None or self.begin <= day) and (self.end is None or day <= self.end)


def _place_of_service(raw: Mapping[str, Any]) -> str | None:
    deprecated_single = mapping(raw.get("eligibilityAdditionalInformation"))
    places = [*mappings(raw.get("eligibilityAdditionalInformationList")), deprecated_single]
    for item in places:
        code = text(item.get("industryCode"))
        if code:
            return code
    return None


def parse_entry(index: int, raw: Mapping[str, Any]) -> Entry:
    begin, end = window(mapping(raw.get("benefitsDateInformation")))
    related = mappings(raw.get("benefitsRelatedEntities")) or [
        entity for entity in [mapping(raw.get("benefitsRelatedEntity"))] if entity
    ]
    codes = raw.get("serviceTypeCodes")
    return Entry(
        index=index,
        code=text(raw.get("code")) or "",
        name=text(raw.get("name")),
        level=text(raw.get("coverageLevelCode")),
        service_type_codes=tuple(c for c in codes if isinstance(c, str)) if isinstance(codes, list) else (),
        time_qualifier=text(raw.get("timeQualifierCode")),
        amount=decimal(raw.get("benefitAmount")),
        fraction=decimal(raw.get("benefitPercent")),
        network=text(raw.get("inPlanNetworkIndicatorCode")),
        insurance_type=text(raw.get("insuranceTypeCode")),
        plan_coverage=text(raw.get("planCoverage")),
        auth_or_cert=text(raw.get("authOrCertIndicator")),
        notes=tuple(n for item in mappings(raw.get("additionalInformation")) if (n := text(item.get("description")))),
        place_of_service=_place_of_service(raw),
        begin=begin,
        end=end,
        related_entities=tuple(related),
    )


def parse_entries(raw: Sequence[object]) -> list[Entry]:
    return [parse_entry(index, item) for index, item in enumerate(raw) if isinstance(item, Mapping)]
