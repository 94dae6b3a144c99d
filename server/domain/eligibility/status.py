"""Check outcome vocabulary shared by the AAA classifier, the normalizer and the callers (spec §3.3, §3.5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CheckStatus(StrEnum):
    """`EligibilityCheck.status` (spec §3.5), the one vocabulary of every layer (the store persists it as is, the
    gRPC layer maps it to its own enum); the normalizer only ever yields VERIFIED, NOT_FOUND or FAILED."""

    PENDING = "PENDING"
    VERIFIED = "VERIFIED"
    FAILED = "FAILED"
    NOT_FOUND = "NOT_FOUND"
    EXPIRED = "EXPIRED"

    @property
    def is_final(self) -> bool:
        return self is not CheckStatus.PENDING


class RetryPolicy(StrEnum):
    """Which row of the retry table (§3.3) applies; the client owns the actual schedule and budget."""

    NONE = "NONE"
    ONCE = "ONCE"  # AAA 79 with HTTP 200: one retry after ~2 s
    PAYER_BUDGET = "PAYER_BUDGET"  # AAA 42/80: 0, 2, 5, 10, 20, 30 s ... within the wall-time budget
    THROTTLED = "THROTTLED"  # HTTP 429
    BACKOFF = "BACKOFF"  # HTTP 5xx, connect error, our own timeout


# Machine codes used in `failure_reason`; always followed by AAA codes when there are any.
MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
PAYER_UNAVAILABLE = "PAYER_UNAVAILABLE"
PAYER_REJECTED = "PAYER_REJECTED"
PAYER_NOT_CONFIGURED = "PAYER_NOT_CONFIGURED"
PAYER_VOLUME_LIMIT = "PAYER_VOLUME_LIMIT"
PROVIDER_REJECTED = "PROVIDER_REJECTED"
REQUEST_REJECTED = "REQUEST_REJECTED"
PAYER_ERROR = "PAYER_ERROR"
NO_BENEFITS_RETURNED = "NO_BENEFITS_RETURNED"
CLEARINGHOUSE_AUTH = "CLEARINGHOUSE_AUTH"
STEDI_THROTTLED = "STEDI_THROTTLED"
STEDI_UNAVAILABLE = "STEDI_UNAVAILABLE"
STEDI_VALIDATION = "STEDI_VALIDATION"
STEDI_UNEXPECTED_STATUS = "STEDI_UNEXPECTED_STATUS"
# Not the clearinghouse's: the database never confirmed the new check to its caller (answered UNAVAILABLE or
# DEADLINE_EXCEEDED, or gone), so the check was withdrawn unsent rather than run behind the caller's back.
NOT_CONFIRMED = "NOT_CONFIRMED"


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """Final (or retry-pending) verdict on one Stedi answer. Never carries payer free text or PHI."""

    status: CheckStatus
    failure_reason: str | None = None
    retry: RetryPolicy = RetryPolicy.NONE
    aaa_codes: tuple[str, ...] = ()

    @property
    def retryable(self) -> bool:
        return self.retry is not RetryPolicy.NONE


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts by reported status and the latest times, for one tenant (optionally one policy): what the store
    reads and every layer up to the gRPC edge passes on unchanged."""

    tenant_id: str
    policy_id: str | None
    pending: int = 0
    verified: int = 0
    failed: int = 0
    not_found: int = 0
    expired: int = 0
    last_requested_at: datetime | None = None
    last_completed_at: datetime | None = None

    @property
    def total(self) -> int:
        return self.pending + self.verified + self.failed + self.not_found + self.expired

    def by_status(self) -> dict[CheckStatus, int]:
        return {
            CheckStatus.PENDING: self.pending,
            CheckStatus.VERIFIED: self.verified,
            CheckStatus.FAILED: self.failed,
            CheckStatus.NOT_FOUND: self.not_found,
            CheckStatus.EXPIRED: self.expired,
        }
