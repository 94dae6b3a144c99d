"""Errors the domain raises.

The API layer maps :class:`InvalidInput` (and any other :class:`DomainError`) to gRPC INVALID_ARGUMENT with a
field violation built from ``field``; :class:`ChainDefect` means a bug in this package and maps to INTERNAL.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a caller can fix by changing the request."""

    __slots__ = ("message", "field")

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """An input the rule book refuses (§1.1): never computed, never a silent zero."""

    __slots__ = ()

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field)


class ChainDefect(RuntimeError):
    """The chain broke one of its own guarantees (e.g. ran too many steps); never the caller's fault."""
