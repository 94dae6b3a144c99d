"""AAA (payer/provider/member rejection) errors: collect once, classify per spec §3.2 / §3.3.

Counting only top-level `errors[]` avoids the double count of the nested `*.aaaErrors` copies (§4.1 #9).
Classification uses codes only: `possibleResolutions` and payer descriptions change and may carry free text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from .codes import AAA_REASONS, name_for
from .status import (
    MEMBER_NOT_FOUND,
    PAYER_ERROR,
    PAYER_NOT_CONFIGURED,
    PAYER_REJECTED,
    PAYER_UNAVAILABLE,
    PAYER_VOLUME_LIMIT,
    PROVIDER_REJECTED,
    REQUEST_REJECTED,
    CheckOutcome,
    CheckStatus,
    RetryPolicy,
)


class AaaClass(StrEnum):
    MEMBER_DATA = "MEMBER_DATA"
    PAYER_CONNECTIVITY = "PAYER_CONNECTIVITY"
    PAYER_REJECTED = "PAYER_REJECTED"  # 79 with HTTP 200
    PAYER_NOT_CONFIGURED = "PAYER_NOT_CONFIGURED"  # 79 with HTTP 400
    REQUEST_VOLUME = "REQUEST_VOLUME"
    PROVIDER = "PROVIDER"
    REQUEST = "REQUEST"
    UNKNOWN = "UNKNOWN"


class AaaLevel(StrEnum):
    PAYER = "PAYER"  # Loop 2100A
    PROVIDER = "PROVIDER"  # Loop 2100B
    SUBSCRIBER = "SUBSCRIBER"  # Loop 2100C
    DEPENDENT = "DEPENDENT"  # Loop 2100D
    UNKNOWN = "UNKNOWN"


MEMBER_DATA_CODES: Final = frozenset({"58", *(str(n) for n in range(64, 79))})
CONNECTIVITY_CODES: Final = frozenset({"42", "80"})
PARTICIPANT_CODE: Final = "79"
VOLUME_CODES: Final = frozenset({"04"})
PROVIDER_CODES: Final = frozenset({"41", "43", "44", "45", "46", "47", "48", "49", "50", "51", "97"})
REQUEST_CODES: Final = frozenset(
    {"T4", "15", "33", "52", "53", "54", "55", "56", "57", "60", "61", "62", "63"}
    | {"35", "98", "AA", "AE", "AF", "AG", "AO", "CI", "E8", "IA", "MA"}
)

_LOOP_LEVELS: Final = {
    "2100A": AaaLevel.PAYER,
    "2100B": AaaLevel.PROVIDER,
    "2100C": AaaLevel.SUBSCRIBER,
    "2100D": AaaLevel.DEPENDENT,
}
_NESTED_LEVELS: Final = (
    ("payer", AaaLevel.PAYER),
    ("provider", AaaLevel.PROVIDER),
    ("subscriber", AaaLevel.SUBSCRIBER),
)


@dataclass(frozen=True, slots=True)
class AaaError:
    """One AAA error. `description` is our X12 name for known codes (payer text only for unknown ones)."""

    code: str
    description: str
    followup_action: str | None
    location: str | None
    level: AaaLevel


@dataclass(frozen=True, slots=True)
class AaaClassification:
    aaa_class: AaaClass
    status: CheckStatus
    retry: RetryPolicy
    failure_reason: str
    codes: tuple[str, ...]
    errors: tuple[AaaError, ...]

    @property
    def retryable(self) -> bool:
        return self.retry is not RetryPolicy.NONE

    def outcome(self) -> CheckOutcome:
        return CheckOutcome(self.status, self.failure_reason, self.retry, self.codes)


def _level_of(location: str | None, default: AaaLevel = AaaLevel.UNKNOWN) -> AaaLevel:
    if location:
        for loop, level in _LOOP_LEVELS.items():
            if loop in location:
                return level
    return default


def _as_error(raw: Mapping[str, Any], default_level: AaaLevel) -> AaaError | None:
    code = raw.get("code")
    if not isinstance(code, str) or not code:
        return None
    payer_text = raw.get("description")
    location = raw.get("location")
    followup = raw.get("followupAction")
    return AaaError(
        code=code,
        description=name_for(AAA_REASONS, code, payer_text if isinstance(payer_text, str) else None),
        followup_action=followup if isinstance(followup, str) else None,
        location=location if isinstance(location, str) else None,
        level=_level_of(location if isinstance(location, str) else None, default_level),
    )


def _dicts(value: object) -> Iterable[Mapping[str, Any]]:
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Mapping)]
    return []


def collect_aaa_errors(body: Mapping[str, Any]) -> tuple[AaaError, ...]:
    """AAA errors of a 271-shaped body, deduplicated.

    Top-level `errors[]` is authoritative. Only when it is empty do we look at the nested
    `aaaErrors` (a defensive fallback: a rejection must never pass as a success).
    """
    found: list[AaaError] = []
    for raw in _dicts(body.get("errors")):
        error = _as_error(raw, AaaLevel.UNKNOWN)
        if error is not None:
            found.append(error)
    if not found:
        nested: list[tuple[object, AaaLevel]] = []
        for key, level in _NESTED_LEVELS:
            part = body.get(key)
            if isinstance(part, Mapping):
                nested.append((part.get("aaaErrors"), level))
        for dependent in _dicts(body.get("dependents")):
            nested.append((dependent.get("aaaErrors"), AaaLevel.DEPENDENT))
        for value, level in nested:
            for raw in _dicts(value):
                error = _as_error(raw, level)
                if error is not None:
                    found.append(error)
    unique: dict[tuple[str, str | None, str | None], AaaError] = {}
    for error in found:
        unique.setdefault((error.code, error.location, error.followup_action), error)
    return tuple(unique.values())


def _reason(machine_code: str, codes: tuple[str, ...]) -> str:
    return f"{machine_code} (AAA {', '.join(codes)})"


def classify_aaa(errors: Iterable[AaaError], http_status: int = 200) -> AaaClassification | None:
    """Classify a set of AAA errors; None when there are none.

    Precedence: member data (never retried) > payer connectivity (retry within budget) >
    79 (HTTP 200: retry once; HTTP 400: payer not configured) > provider > request > volume > unknown.
    """
    errs = tuple(errors)
    if not errs:
        return None
    codes = tuple(dict.fromkeys(error.code for error in errs))
    present = set(codes)

    def result(aaa_class: AaaClass, status: CheckStatus, retry: RetryPolicy, machine: str) -> AaaClassification:
        return AaaClassification(aaa_class, status, retry, _reason(machine, codes), codes, errs)

    if present & MEMBER_DATA_CODES:
        return result(AaaClass.MEMBER_DATA, CheckStatus.NOT_FOUND, RetryPolicy.NONE, MEMBER_NOT_FOUND)
    if present & CONNECTIVITY_CODES:
        return result(AaaClass.PAYER_CONNECTIVITY, CheckStatus.FAILED, RetryPolicy.PAYER_BUDGET, PAYER_UNAVAILABLE)
    if PARTICIPANT_CODE in present:
        if http_status == 200:
            return result(AaaClass.PAYER_REJECTED, CheckStatus.FAILED, RetryPolicy.ONCE, PAYER_REJECTED)
        return result(AaaClass.PAYER_NOT_CONFIGURED, CheckStatus.FAILED, RetryPolicy.NONE, PAYER_NOT_CONFIGURED)
    if present & PROVIDER_CODES:
        return result(AaaClass.PROVIDER, CheckStatus.FAILED, RetryPolicy.NONE, PROVIDER_REJECTED)
    if present & REQUEST_CODES:
        return result(AaaClass.REQUEST, CheckStatus.FAILED, RetryPolicy.NONE, REQUEST_REJECTED)
    if present & VOLUME_CODES:
        return result(AaaClass.REQUEST_VOLUME, CheckStatus.FAILED, RetryPolicy.NONE, PAYER_VOLUME_LIMIT)
    return result(AaaClass.UNKNOWN, CheckStatus.FAILED, RetryPolicy.NONE, PAYER_ERROR)


def classify_body(body: Mapping[str, Any], http_status: int = 200) -> AaaClassification | None:
    """Convenience: collect then classify."""
    return classify_aaa(collect_aaa_errors(body), http_status)
