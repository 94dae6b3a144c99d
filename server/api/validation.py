"""Collects field violations so a request is answered with all its problems at once."""

from __future__ import annotations

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
