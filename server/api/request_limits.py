"""One walker over every request message, driven by its descriptor: lengths, control characters, list sizes.

Runs before a servicer sees the request (the error-mapping interceptor calls it), so no string with a NUL or
longer than its database column reaches a query, and no oversized list is validated item by item. The per-field
limits below are the store's columns (server/store/tables.py) and the contract's own bounds; every other string
gets the default. The converters still apply the finer rules (formats, required fields, enums).
Descriptions name the rule, never the value (values may be PHI).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from server.api.validation import FieldViolation, RequestInvalid

_PKG: Final = "costestimator.v1."
DEFAULT_MAX_STRING: Final = 256
DEFAULT_MAX_REPEATED: Final = 100
# Unicode categories refused anywhere: controls (NUL, newline...), format characters (bidi overrides, zero-width),
# surrogates, private use, line and paragraph separators.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})

# full field name -> maximum characters (PostgreSQL varchar(n) counts characters, as len() does)
STRING_LIMITS: Final[Mapping[str, int]] = {
    f"{_PKG}GetEligibilityCheckRequest.id": 36,  # eligibility_checks.id
    f"{_PKG}WatchEligibilityCheckRequest.id": 36,
    f"{_PKG}EligibilityInquiry.policy_id": 128,  # eligibility_checks.policy_id
    f"{_PKG}EligibilityInquiry.patient_id": 128,
    f"{_PKG}EligibilityInquiry.payer_id": 80,  # eligibility_checks.payer_id
    f"{_PKG}EligibilityInquiry.dependent_relationship_code": 8,
    f"{_PKG}EligibilityInquiry.service_type_codes": 8,
    f"{_PKG}ListEligibilityChecksRequest.policy_id": 128,
    f"{_PKG}ListEligibilityChecksRequest.patient_id": 128,
    f"{_PKG}ListEligibilityChecksRequest.page_token": 1024,
    f"{_PKG}GetEligibilityStatsRequest.policy_id": 128,
    f"{_PKG}ProviderIdentity.npi": 10,
    f"{_PKG}ProviderIdentity.organization_name": 60,
    f"{_PKG}ProviderIdentity.first_name": 35,
    f"{_PKG}ProviderIdentity.last_name": 60,
    f"{_PKG}Person.member_id": 80,
    f"{_PKG}Person.first_name": 35,
    f"{_PKG}Person.last_name": 60,
    f"{_PKG}Person.middle_name": 25,
    f"{_PKG}Person.suffix": 10,
    f"{_PKG}Member.membership_id": 200,
    f"{_PKG}Member.plan_identifier": 64,
    f"{_PKG}ServiceCode.code": 16,
    f"{_PKG}ServiceInfo.provider_type_codes": 16,
    f"{_PKG}ServiceInfo.place_of_service_codes": 16,
    f"{_PKG}ServiceInfo.provider_specialty_codes": 16,
    f"{_PKG}GetBenefitRequest.benefit_tier_name": 16,
    f"{_PKG}RequestedService.code": 16,
    f"{_PKG}RequestedService.place_of_service_code": 16,
    f"{_PKG}Provider.provider_id": 64,
    f"{_PKG}Provider.display_name": 64,
    f"{_PKG}Provider.benefit_tier_name": 64,
    f"{_PKG}Provider.provider_type_code": 16,
    f"{_PKG}Provider.provider_specialty_code": 16,
    f"{_PKG}Provider.provider_designation": 64,
    f"{_PKG}RelatedAccumulator.code": 64,
    f"{_PKG}RelatedAccumulator.level": 64,
    f"{_PKG}Accumulator.code": 64,
    f"{_PKG}Accumulator.level": 64,
    "google.type.Money.currency_code": 3,
    "google.type.Decimal.value": 64,
}

# full field name -> maximum items; providers comes from COSTEST_MAX_PROVIDERS (see `RequestLimits.for_settings`)
REPEATED_LIMITS: Final[Mapping[str, int]] = {
    f"{_PKG}GetBenefitRequest.service_infos": 20,
    f"{_PKG}ServiceInfo.provider_type_codes": 20,
    f"{_PKG}ServiceInfo.place_of_service_codes": 20,
    f"{_PKG}ServiceInfo.provider_specialty_codes": 20,
    f"{_PKG}EligibilityInquiry.service_type_codes": 99,
    f"{_PKG}EstimateRequest.accumulator_overrides": 12,
    f"{_PKG}StreamEstimatesRequest.accumulator_overrides": 12,
}
PROVIDER_FIELDS: Final = (f"{_PKG}EstimateRequest.providers", f"{_PKG}StreamEstimatesRequest.providers")


def has_refused_character(text: str) -> bool:
    if text.isprintable():  # fast path: no Cc/Cf/Cs/Co/Zl/Zp (nor non-ASCII spaces, checked below)
        return False
    return any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in text)


@dataclass(frozen=True)
class RequestLimits:
    """Bounds every request must meet; `check` raises `RequestInvalid` with every violation found."""

    strings: Mapping[str, int] = field(default_factory=lambda: dict(STRING_LIMITS))
    repeated: Mapping[str, int] = field(default_factory=lambda: dict(REPEATED_LIMITS))
    default_string: int = DEFAULT_MAX_STRING
    default_repeated: int = DEFAULT_MAX_REPEATED
    # Stop walking after this many violations: the answer shows only the first ones anyway.
    max_violations: int = 1000

    @classmethod
    def for_settings(cls, *, max_providers: int) -> RequestLimits:
        return cls(repeated={**REPEATED_LIMITS, **{name: max_providers for name in PROVIDER_FIELDS}})

    def check(self, request: Message) -> None:
        found: list[FieldViolation] = []
        self._walk(request, "", found)
        if found:
            raise RequestInvalid(found)

    def violations(self, request: Message) -> list[FieldViolation]:
        found: list[FieldViolation] = []
        self._walk(request, "", found)
        return found

    def _walk(self, message: Message, prefix: str, found: list[FieldViolation]) -> None:
        for fd, value in message.ListFields():
            if len(found) >= self.max_violations:
                return
            path = f"{prefix}{fd.name}"
            if fd.is_repeated:
                if _is_map(fd):
                    self._map(fd, value, path, found)
                    continue
                limit = self.repeated.get(fd.full_name, self.default_repeated)
                if len(value) > limit:
                    # Refused as a whole: its items are not looked at (a huge list must not cost per item).
                    found.append(FieldViolation(path, f"at most {limit} items"))
                    continue
                for index, item in enumerate(value):
                    self._value(fd, item, f"{path}[{index}]", found)
            else:
                self._value(fd, value, path, found)

    def _value(self, fd: FieldDescriptor, value: Any, path: str, found: list[FieldViolation]) -> None:
        if fd.type == FieldDescriptor.TYPE_STRING:
            self._string(fd.full_name, value, path, found)
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            self._walk(value, f"{path}.", found)

    def _string(self, name: str, value: str, path: str, found: list[FieldViolation]) -> None:
        limit = self.strings.get(name, self.default_string)
        if len(value) > limit:
            found.append(FieldViolation(path, f"must be at most {limit} characters"))
        elif has_refused_character(value):
            found.append(FieldViolation(path, "must not contain control or format characters"))

    def _map(self, fd: FieldDescriptor, value: Any, path: str, found: list[FieldViolation]) -> None:
        entry = fd.message_type
        assert entry is not None
        limit = self.repeated.get(fd.full_name, self.default_repeated)
        if len(value) > limit:
            found.append(FieldViolation(path, f"at most {limit} entries"))
            return
        key_fd, value_fd = entry.fields_by_name["key"], entry.fields_by_name["value"]
        for index, key in enumerate(value):  # paths use positions: keys could be anything
            if key_fd.type == FieldDescriptor.TYPE_STRING:
                self._string(key_fd.full_name, key, f"{path}[{index}].key", found)
            self._value(value_fd, value[key], f"{path}[{index}].value", found)


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry
