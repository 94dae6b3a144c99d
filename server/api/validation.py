"""Collects field violations so a request is answered with all its problems at once."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sized
from dataclasses import dataclass, field
from typing import Any

from costestimator.v1 import common_pb2 as cpb

_SHORT_CODE = re.compile(r"^[A-Za-z0-9.\-]{1,16}$")
_MEMBER_ID_MAX, _PLAN_MAX = 200, 64


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    description: str


class RequestInvalid(Exception):
    """Bad input: mapped to INVALID_ARGUMENT with a google.rpc.BadRequest listing every violation."""

    def __init__(self, violations: list[FieldViolation], message: str = "invalid request") -> None:
        super().__init__(message)
        self.violations = violations
        self.message = message


@dataclass
class Violations:
    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        self.items.append(FieldViolation(field_path, description))

    def require(self, ok: bool, field_path: str, description: str) -> bool:
        if not ok:
            self.add(field_path, description)
        return ok

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise RequestInvalid(list(self.items))


def check_provider_count(items: Sized, max_providers: int, v: Violations) -> bool:
    """1..`max_providers` providers; False (with the violation) when there are none or too many to look at."""
    if not items:
        v.add("providers", "at least one provider is required")
        return False
    if len(items) > max_providers:
        v.add("providers", f"at most {max_providers} providers per request")
        return False
    return True


def check_provider_id(value: str, path: str, seen: set[str], v: Violations, *, max_length: int = 64) -> bool:
    """A provider id: required, at most `max_length` printable characters, unique within the request (`seen`)."""
    ok = True
    if not value:
        ok = v.require(False, path, "is required")
    elif len(value) > max_length or not value.isprintable():
        ok = v.require(False, path, f"at most {max_length} printable characters")
    elif value in seen:
        ok = v.require(False, path, "duplicate provider_id")
    seen.add(value)
    return ok


def check_enum(
    value: int, allowed: Mapping[Any, str], path: str, v: Violations, *, required: bool = True
) -> str | None:
    """The payer's spelling of a proto enum value; unset (0) is a violation only when `required`."""
    if value == 0:
        if required:
            v.add(path, "is required")
        return None
    if value not in allowed:
        v.add(path, f"unknown value {value}")
        return None
    return allowed[value]


def check_member(member: cpb.Member, path: str, v: Violations) -> None:
    """Membership id and plan: present, bounded and printable, as the payers take them."""
    mid, plan = member.membership_id, member.plan_identifier
    # Never echo the membership id: it is PHI.
    if not mid.strip():
        v.add(f"{path}.membership_id", "is required")
    elif len(mid) > _MEMBER_ID_MAX or any(ch.isspace() or not ch.isprintable() for ch in mid):
        v.add(f"{path}.membership_id", f"must be at most {_MEMBER_ID_MAX} printable characters without spaces")
    if not plan.strip():
        v.add(f"{path}.plan_identifier", "is required")
    elif len(plan) > _PLAN_MAX or not plan.isprintable():
        v.add(f"{path}.plan_identifier", f"must be at most {_PLAN_MAX} printable characters")


def check_code(code: str, path: str, v: Violations, *, required: bool) -> bool:
    """A short code (service, provider type, place of service...); False when it cannot be sent on."""
    if not code:
        if required:
            v.add(path, "is required")
        return not required
    if not _SHORT_CODE.match(code):
        v.add(path, "must be 1-16 letters, digits, '.' or '-'")
        return False
    return True
