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


@dataclass(frozen=True, slots=True)
class _Rule:
    """What the walker does with one field of one message type, worked out once per type (see `_rules`)."""

    name: str
    string: bool  # a string (or repeated strings): length and characters are checked
    message: bool  # a message (or repeated messages): walked
    repeated: bool
    is_map: bool
    max_chars: int
    max_items: int


Path = tuple[Any, ...]  # (parent path, segment): a field name or an item index; joined only for a violation


def _text(path: Path) -> str:
    parts: list[str] = []
    while path:
        path, segment = path
        parts.append(f"[{segment}]" if type(segment) is int else segment)
    out = ""
    for part in reversed(parts):
        out += part if not out or part.startswith("[") else f".{part}"
    return out


@dataclass(frozen=True)
class RequestLimits:
    """Bounds every request must meet; `check` raises `RequestInvalid` with every violation found."""

    strings: Mapping[str, int] = field(default_factory=lambda: dict(STRING_LIMITS))
    repeated: Mapping[str, int] = field(default_factory=lambda: dict(REPEATED_LIMITS))
    default_string: int = DEFAULT_MAX_STRING
    default_repeated: int = DEFAULT_MAX_REPEATED
    # Stop walking after this many violations: the answer shows only the first ones anyway.
    max_violations: int = 1000
    # message type -> its fields' rules (descriptors are looked at once per type, not once per field per request)
    _plans: dict[Any, dict[Any, _Rule]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def for_settings(cls, *, max_providers: int) -> RequestLimits:
        return cls(repeated={**REPEATED_LIMITS, **{name: max_providers for name in PROVIDER_FIELDS}})

    def check(self, request: Message) -> None:
        found = self.violations(request)
        if found:
            raise RequestInvalid(found)

    def violations(self, request: Message) -> list[FieldViolation]:
        found: list[FieldViolation] = []
        self._walk(request, (), found)
        return found

    def _rules(self, descriptor: Any) -> dict[Any, _Rule]:
        rules = self._plans.get(descriptor)
        if rules is None:
            rules = self._plans[descriptor] = {fd: self._rule(fd) for fd in descriptor.fields}
        return rules

    def _rule(self, fd: FieldDescriptor) -> _Rule:
        full = fd.full_name
        return _Rule(
            name=fd.name,
            string=fd.type == FieldDescriptor.TYPE_STRING,
            message=fd.type == FieldDescriptor.TYPE_MESSAGE,
            repeated=fd.is_repeated,
            is_map=_is_map(fd),
            max_chars=self.strings.get(full, self.default_string),
            max_items=self.repeated.get(full, self.default_repeated),
        )

    def _walk(self, message: Message, prefix: Path, found: list[FieldViolation]) -> None:
        rules = self._rules(message.DESCRIPTOR)
        for fd, value in message.ListFields():
            if len(found) >= self.max_violations:
                return
            rule = rules.get(fd) or self._rule(fd)  # an extension is not among the type's own fields
            if rule.string and not rule.repeated:  # the common field: one bounded, printable string
                if len(value) > rule.max_chars or not value.isprintable():
                    self._string(rule.max_chars, value, (prefix, rule.name), found)
            elif rule.message and not rule.repeated:
                self._walk(value, (prefix, rule.name), found)
            elif rule.repeated:
                path = (prefix, rule.name)
                if rule.is_map:
                    self._map(fd, rule, value, path, found)
                elif len(value) > rule.max_items:
                    # Refused as a whole: its items are not looked at (a huge list must not cost per item).
                    found.append(FieldViolation(_text(path), f"at most {rule.max_items} items"))
                elif rule.string:
                    limit = rule.max_chars
                    for index, item in enumerate(value):
                        if len(item) > limit or not item.isprintable():
                            self._string(limit, item, (path, index), found)
                elif rule.message:
                    for index, item in enumerate(value):
                        self._walk(item, (path, index), found)

    @staticmethod
    def _string(limit: int, value: str, path: Path, found: list[FieldViolation]) -> None:
        if len(value) > limit:
            found.append(FieldViolation(_text(path), f"must be at most {limit} characters"))
        elif has_refused_character(value):
            found.append(FieldViolation(_text(path), "must not contain control or format characters"))

    def _map(self, fd: FieldDescriptor, rule: _Rule, value: Any, path: Path, found: list[FieldViolation]) -> None:
        if len(value) > rule.max_items:
            found.append(FieldViolation(_text(path), f"at most {rule.max_items} entries"))
            return
        entry = fd.message_type
        assert entry is not None
        key, val = (self._rule(entry.fields_by_name[name]) for name in ("key", "value"))
        for index, k in enumerate(value):  # paths use positions: keys could be anything
            if key.string:
                self._string(key.max_chars, k, ((path, index), "key"), found)
            item, where = value[k], ((path, index), "value")
            if val.string:
                self._string(val.max_chars, item, where, found)
            elif val.message:
                self._walk(item, where, found)


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry
