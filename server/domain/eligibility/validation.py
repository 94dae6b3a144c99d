"""Request validation before any Stedi call (spec §1.4) -> field violations for INVALID_ARGUMENT.

Descriptions name the rule, never the value: member ids, names and birth dates are PHI.
`clean_inquiry` does the value normalization (trim, diacritic folding, STC de-dup) the rules assume.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from .codes import REQUEST_SERVICE_TYPE_CODES
from .inquiry import EligibilityInquiry, Person
from .npi import is_valid_npi

DEFAULT_SERVICE_TYPE_CODES: Final = ("30",)
RELATIONSHIP_CODES: Final = frozenset({"01", "19", "34"})
MAX_SERVICE_TYPE_CODES: Final = 99
EARLIEST_BIRTH_DATE: Final = dt.date(1900, 1, 1)  # anything earlier is a typo (year 0001), not a member
X12_DELIMITERS: Final = frozenset("*~^>`:")
_MEMBER_ID: Final = re.compile(r"[A-Za-z0-9\- ]{2,80}")
_NPI_SHAPE: Final = re.compile(r"[0-9]{10}")
_YYYYMMDD: Final = re.compile(r"[0-9]{8}")
# Letters NFKD does not decompose; everything else with a diacritic folds by dropping combining marks.
_EXTRA_FOLDS: Final = str.maketrans(
    {
        "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
        "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH",
        "ı": "i", "‘": "'", "’": "'", "‐": "-", "‑": "-", "–": "-", "\u00a0": " ",
    }
)


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    description: str


def fold_to_ascii(text: str) -> str:
    """Fold diacritics (é -> e, ß -> ss). Characters with no ASCII form are kept, so a rule can reject them."""
    if text.isascii():  # the common case, and a fixed point: every fold above maps a non-ASCII character
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_EXTRA_FOLDS))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def calendar_date(year: int, month: int, day: int) -> dt.date | None:
    """A real calendar date or None (2026-02-31 -> None); for converting wire dates."""
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_yyyymmdd(text: str) -> dt.date | None:
    """`YYYYMMDD` that is also a real date (Stedi's regex alone accepts 20260231)."""
    if not _YYYYMMDD.fullmatch(text):
        return None
    return calendar_date(int(text[:4]), int(text[4:6]), int(text[6:]))


def earliest_date_of_service(today: dt.date) -> dt.date:
    """today − 12 months (Feb 29 -> Feb 28)."""
    year = today.year - 1
    return dt.date(year, today.month, min(today.day, calendar.monthrange(year, today.month)[1]))


def end_of_month(today: dt.date) -> dt.date:
    return dt.date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])


def _clean_person(person: Person) -> Person:
    return Person(
        member_id=person.member_id.strip(),
        first_name=fold_to_ascii(person.first_name.strip()),
        last_name=fold_to_ascii(person.last_name.strip()),
        middle_name=fold_to_ascii(person.middle_name.strip()),
        suffix=fold_to_ascii(person.suffix.strip()),
        date_of_birth=person.date_of_birth,
    )


def clean_service_type_codes(codes: Iterable[str]) -> tuple[str, ...]:
    """Trim, upper-case and de-duplicate (first occurrence wins); empty means ["30"]."""
    cleaned = tuple(dict.fromkeys(code.strip().upper() for code in codes if code.strip()))
    return cleaned or DEFAULT_SERVICE_TYPE_CODES


def clean_inquiry(inquiry: EligibilityInquiry) -> EligibilityInquiry:
    """The inquiry with values normalized as we will send them. The payer id is kept verbatim (leading zeros)."""
    return replace(
        inquiry,
        npi=inquiry.npi.strip(),
        provider_organization_name=fold_to_ascii(inquiry.provider_organization_name.strip()),
        provider_first_name=fold_to_ascii(inquiry.provider_first_name.strip()),
        provider_last_name=fold_to_ascii(inquiry.provider_last_name.strip()),
        subscriber=_clean_person(inquiry.subscriber),
        dependent=_clean_person(inquiry.dependent) if inquiry.dependent is not None else None,
        relationship_code=inquiry.relationship_code.strip(),
        service_type_codes=clean_service_type_codes(inquiry.service_type_codes),
    )


class _Collector:
    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, description))

    def name(self, path: str, value: str, max_len: int, *, required: bool) -> None:
        if not value:
            if required:
                self.add(path, "is required")
            return
        if len(value) > max_len:
            self.add(path, f"must be at most {max_len} characters")
        if any(ch in X12_DELIMITERS or unicodedata.category(ch).startswith("C") for ch in value):
            self.add(path, "must not contain the characters * ~ ^ > ` : or control characters")
        elif not value.isascii():
            self.add(path, "must contain only letters that can be written in ASCII")


def _check_person(
    c: _Collector,
    prefix: str,
    person: Person,
    *,
    is_patient: bool,
    needs_member_id: bool,
    today: dt.date,
    dos: dt.date,
) -> None:
    if needs_member_id:
        if not person.member_id:
            c.add(f"{prefix}.member_id", "is required")
        elif not _MEMBER_ID.fullmatch(person.member_id):
            c.add(f"{prefix}.member_id", "must be 2-80 characters: letters, digits, hyphens or spaces")
    elif person.member_id:
        c.add(f"{prefix}.member_id", "a dependent with their own member id must be sent as the subscriber")
    c.name(f"{prefix}.first_name", person.first_name, 35, required=is_patient)
    c.name(f"{prefix}.last_name", person.last_name, 60, required=is_patient)
    c.name(f"{prefix}.middle_name", person.middle_name, 25, required=False)
    c.name(f"{prefix}.suffix", person.suffix, 10, required=False)
    dob = person.date_of_birth
    if dob is None:
        if is_patient:
            c.add(f"{prefix}.date_of_birth", "is required")
    elif dob > today:
        c.add(f"{prefix}.date_of_birth", "must not be in the future")
    elif dob < EARLIEST_BIRTH_DATE:
        c.add(f"{prefix}.date_of_birth", "must not be before 1900-01-01")
    elif dob > dos:
        c.add(f"{prefix}.date_of_birth", "must not be after the date of service")


def _check_provider(c: _Collector, inquiry: EligibilityInquiry) -> None:
    if not inquiry.npi:
        c.add("provider.npi", "is required")
    elif not _NPI_SHAPE.fullmatch(inquiry.npi):
        c.add("provider.npi", "must be exactly 10 digits")
    elif not is_valid_npi(inquiry.npi):
        c.add("provider.npi", "check digit is invalid")
    if inquiry.provider_organization_name:
        c.name("provider.organization_name", inquiry.provider_organization_name, 60, required=True)
    elif inquiry.provider_first_name or inquiry.provider_last_name:
        c.name("provider.first_name", inquiry.provider_first_name, 35, required=True)
        c.name("provider.last_name", inquiry.provider_last_name, 60, required=True)
    else:
        c.add("provider.organization_name", "is required (or provider first and last name)")


def _check_service_types(c: _Collector, codes: Sequence[str]) -> None:
    for index, raw in enumerate(codes):
        code = raw.strip().upper()
        if code and code not in REQUEST_SERVICE_TYPE_CODES:
            c.add(f"service_type_codes[{index}]", "is not an X12 request service type code")
    if len(clean_service_type_codes(codes)) > MAX_SERVICE_TYPE_CODES:
        c.add("service_type_codes", f"must hold at most {MAX_SERVICE_TYPE_CODES} distinct codes")


def validate_inquiry(inquiry: EligibilityInquiry, *, today: dt.date) -> list[FieldViolation]:
    """All rule violations of §1.4 (empty list = valid). Validates the cleaned form of `inquiry`."""
    c = _Collector()
    clean = clean_inquiry(inquiry)
    payer_id = inquiry.payer_id
    if not payer_id.strip():
        c.add("payer_id", "is required")
    elif len(payer_id) > 80:
        c.add("payer_id", "must be at most 80 characters")
    elif any(unicodedata.category(ch).startswith("C") for ch in payer_id):
        c.add("payer_id", "must not contain control characters")
    _check_provider(c, clean)

    dos = clean.date_of_service or today
    if clean.date_of_service is not None:
        if dos < earliest_date_of_service(today):
            c.add("date_of_service", "must not be more than 12 months in the past")
        elif dos > end_of_month(today):
            c.add("date_of_service", "must not be after the end of the current month")

    has_dependent = clean.dependent is not None
    _check_person(
        c, "subscriber", clean.subscriber, is_patient=not has_dependent, needs_member_id=True, today=today, dos=dos
    )
    if clean.dependent is not None:
        _check_person(c, "dependent", clean.dependent, is_patient=True, needs_member_id=False, today=today, dos=dos)
        if not clean.relationship_code:
            c.add("dependent.relationship_code", "is required for a dependent")
        elif clean.relationship_code not in RELATIONSHIP_CODES:
            c.add("dependent.relationship_code", "must be 01 (spouse), 19 (child) or 34 (other adult)")
    elif clean.relationship_code:
        c.add("dependent.relationship_code", "is only allowed with a dependent")

    _check_service_types(c, inquiry.service_type_codes)
    return c.violations
