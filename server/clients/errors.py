"""Typed upstream errors.

Every failure of an upstream call surfaces as one of these, so the API layer can map them to gRPC
status codes in one place. Messages are safe to show to callers and to log: they never carry
member ids, names, dates of birth, tokens or request bodies (see `safe_upstream_message`).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "CircuitOpen",
    "LocalPoolExhausted",
    "MemberNotFound",
    "ToldToWait",
    "UpstreamAuthError",
    "UpstreamDeadlineExceeded",
    "UpstreamError",
    "UpstreamNotFound",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "safe_upstream_message",
]


class UpstreamError(Exception):
    """Base of every upstream failure; `upstream` names the dependency (e.g. "benefits").

    `reason` is the stable error reason the API sends in `google.rpc.ErrorInfo` (catalogue: server/api/errors.py);
    `error_metadata` what a program can use (never member data).
    """

    reason: str = "UPSTREAM_UNAVAILABLE"

    def __init__(self, upstream: str, message: str) -> None:
        super().__init__(message)
        self.upstream = upstream
        self.message = message

    @property
    def error_metadata(self) -> dict[str, str]:
        return {"upstream": self.upstream}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(upstream={self.upstream!r}, message={self.message!r})"


class UpstreamUnavailable(UpstreamError):
    """The upstream cannot answer now: breaker open, retries exhausted, TLS failure, malformed body.

    Maps to UNAVAILABLE: the caller may retry later.
    """

    def __init__(self, upstream: str, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(upstream, f"{upstream} unavailable: {reason}")
        self.detail = reason
        self.retry_after = retry_after  # the upstream's Retry-After (seconds) when it sent one


class ToldToWait(UpstreamUnavailable):
    """The upstream answered "retry after N seconds", and N ends past the deadline: we stopped without waiting.

    Not the deadline running out (→ UNAVAILABLE with `retry_after` as RetryInfo); a caller with a longer budget,
    like the eligibility worker, comes back after `retry_after` instead of calling again at once."""

    retry_after: float

    def __init__(self, upstream: str, reason: str, *, retry_after: float) -> None:
        super().__init__(upstream, reason, retry_after=retry_after)


class CircuitOpen(UpstreamUnavailable):
    """The upstream's (or one payer's) circuit breaker is open: we do not call it now (→ UNAVAILABLE).

    `retry_after` is the time left until the breaker lets a probe through (seconds; None if unknown): the
    API layer sends it as `google.rpc.RetryInfo`, the eligibility worker waits that long within its budget.
    `circuit` names the breaker (e.g. "stedi" or "stedi-payer:SBX01"); it carries no PHI.
    """

    reason = "CIRCUIT_OPEN"

    def __init__(self, upstream: str, retry_after: float | None = None, *, circuit: str | None = None) -> None:
        super().__init__(upstream, "circuit breaker open", retry_after=retry_after)
        self.circuit = circuit or upstream

    @property
    def error_metadata(self) -> dict[str, str]:
        return {"upstream": self.upstream, "circuit": self.circuit}


class LocalPoolExhausted(UpstreamError):
    """No local connection slot for the upstream became free in time (→ RESOURCE_EXHAUSTED).

    Our own capacity, not the upstream's failure: it never counts toward a breaker.
    """

    reason = "LOCAL_POOL_EXHAUSTED"

    def __init__(self, upstream: str, detail: str = "no free connection to the upstream in time") -> None:
        super().__init__(upstream, f"{upstream}: {detail}")


class UpstreamDeadlineExceeded(UpstreamError):
    """The caller's deadline ran out before the upstream answered (→ DEADLINE_EXCEEDED)."""

    reason = "UPSTREAM_DEADLINE_EXCEEDED"

    def __init__(self, upstream: str, detail: str = "deadline exceeded") -> None:
        super().__init__(upstream, f"{upstream}: {detail}")


class MemberNotFound(UpstreamError):
    """The payer has no active coverage for the member (→ NOT_FOUND). Never retried."""

    reason = "MEMBER_NOT_FOUND"

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, f"{upstream}: no active member coverage found")


class UpstreamNotFound(UpstreamError):
    """The upstream answered 404 (wrong path or resource gone; → NOT_FOUND)."""

    reason = "UPSTREAM_NOT_FOUND"

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, f"{upstream}: resource not found (HTTP 404)")


class UpstreamRejected(UpstreamError):
    """The upstream refused the request with a 4xx (→ INVALID_ARGUMENT / FAILED_PRECONDITION).

    `message` is already sanitised (see `safe_upstream_message`); `status` is the HTTP status.
    """

    def __init__(self, upstream: str, message: str, status: int) -> None:
        super().__init__(upstream, f"{upstream} rejected the request (HTTP {status}): {message}")
        self.detail = message
        self.status = status
        # 400: the request's content was refused; other 4xx (409, 422...) refuse the request's state
        self.reason = "UPSTREAM_REJECTED_REQUEST" if status == 400 else "UPSTREAM_REFUSED"


class UpstreamAuthError(UpstreamError):
    """We could not authenticate to the upstream (bad credentials, repeated 401/403; → UNAVAILABLE)."""

    reason = "UPSTREAM_AUTH_FAILED"

    def __init__(self, upstream: str, reason: str = "authentication failed") -> None:
        super().__init__(upstream, f"{upstream}: {reason}")
        self.detail = reason


# --- sanitising upstream text -------------------------------------------------------------------

_SAFE_FIELDS = ("httpMessage", "moreInformation")
_MAX_LEN = 160
# Anything that could identify a person: digit runs (ids, DOB, phone), dates, e-mail addresses,
# membership-id fragments (`5~186103331+10+...`), and long opaque tokens.
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "[redacted]"),
    (re.compile(r"\S*[~+]\S*"), "[redacted]"),
    (re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"), "[redacted]"),
    (re.compile(r"\S*\d{3,}\S*"), "[redacted]"),
    (re.compile(r"[A-Za-z0-9_\-]{25,}"), "[redacted]"),
)
_ALLOWED_CHARS = re.compile(r"[^A-Za-z0-9 .,:;()'/_\-\[\]]")


def _scrub(text: str) -> str:
    text = " ".join(text.split())
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    text = _ALLOWED_CHARS.sub("", text)
    if len(text) > _MAX_LEN:
        text = text[: _MAX_LEN - 1].rstrip() + "…"
    return text


def safe_upstream_message(body: bytes, status: int) -> str:
    """Build a caller-safe message from an upstream error body.

    Only the gateway's `httpMessage` / `moreInformation` fields are kept (free text elsewhere may
    echo the request, i.e. member data); digit runs, dates, e-mails and id-like tokens are redacted
    and the result is truncated. Names cannot be detected reliably, hence the field allow-list.
    """
    parsed: Any
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested too deeply: nothing to show either
        parsed = None
    parts: list[str] = []
    if isinstance(parsed, dict):
        for field in _SAFE_FIELDS:
            value = parsed.get(field)
            if isinstance(value, str) and value.strip():
                parts.append(_scrub(value))
    message = " - ".join(p for p in parts if p)
    return message or f"request rejected (HTTP {status})"
