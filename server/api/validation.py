"""Collects field violations so a request is answered with all its problems at once."""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass, field


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
