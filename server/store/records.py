"""Plain values the store hands out, so no caller ever holds an ORM object or a session.

Payload fields (`request_payload`, `raw`, `summary`) hold PHI: they are excluded from `repr()` so that a record
that ends up in a log line or a traceback does not carry member data with it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The domain's vocabulary, persisted as is (re-exported: the store's callers read them from here too).
from server.domain.eligibility.status import CheckStatus as CheckStatus
from server.domain.eligibility.status import Stats as Stats

JSONObject = Mapping[str, Any]
"""A JSON object as stored; `Decimal`, `date` and `datetime` values are written as strings."""


class CheckMode(enum.StrEnum):
    """SYNC: the RPC that created the check calls the clearinghouse itself; ASYNC: the background worker does."""

    SYNC = "sync"
    ASYNC = "async"


#: Completed statuses that turn into EXPIRED once older than the repository's freshness window: they are answers
#: from the payer that go stale. FAILED never carried an answer, so it stays FAILED.
EXPIRABLE_STATUSES: frozenset[CheckStatus] = frozenset({CheckStatus.VERIFIED, CheckStatus.NOT_FOUND})

#: Statuses a check can be completed with. EXPIRED is only ever reported (a stale answer), never written.
FINAL_STATUSES: frozenset[CheckStatus] = frozenset({CheckStatus.VERIFIED, CheckStatus.FAILED, CheckStatus.NOT_FOUND})


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """The stored clearinghouse answer of a completed check; `raw` is None unless it was asked for."""

    request_id: str
    http_status: int | None
    created_at: datetime
    summary: JSONObject | None = field(default=None, repr=False)
    raw: JSONObject | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One eligibility check (a row of `eligibility_requests`), with its response once completed.

    `status` is the status as reported (a stale VERIFIED/NOT_FOUND reads EXPIRED when the repository has a
    freshness window); `version` grows by one on every status change so a watcher can poll cheaply.
    """

    id: str
    tenant_id: str
    policy_id: str | None = field(repr=False)  # the caller's references to a person: not in a repr
    patient_id: str | None = field(repr=False)
    payer_id: str
    status: CheckStatus
    mode: CheckMode
    requested_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    clearinghouse_id: str | None
    trace_id: str | None
    failure_reason: str | None
    attempts: int
    next_attempt_at: datetime | None
    claimed_by: str | None
    lease_until: datetime | None
    version: int
    request_payload: JSONObject = field(repr=False)
    response: ResponseRecord | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One call to the clearinghouse for a check (eligibility.md §3.3: every attempt is stored)."""

    request_id: str
    attempt_no: int
    at: datetime
    http_status: int | None
    aaa_codes: tuple[str, ...]
    clearinghouse_id: str | None
    trace_id: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class NewCheck:
    """A check about to be created, as its caller asked for it: what `withdraw` records FAILED when the creation
    was never confirmed to that caller (the request payload in clear here; sealed when stored)."""

    tenant_id: str
    check_id: str
    payer_id: str
    request_payload: JSONObject = field(repr=False)  # member data: never in a log line by way of repr
    policy_id: str | None = field(default=None, repr=False)
    patient_id: str | None = field(default=None, repr=False)
    mode: CheckMode = CheckMode.SYNC


@dataclass(frozen=True, slots=True)
class NewAttempt:
    """A clearinghouse call to store (numbered by the store when written). `error` is a short machine code."""

    http_status: int | None
    aaa_codes: tuple[str, ...] = ()
    clearinghouse_id: str | None = None
    trace_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """How a check ends: its final status and what is written with it, in one transaction.

    A response row is written when any of `raw`, `summary` or `http_status` is given; `attempts` are the
    clearinghouse calls not stored yet.
    """

    status: CheckStatus
    raw: JSONObject | None = field(default=None, repr=False)
    summary: JSONObject | None = field(default=None, repr=False)
    http_status: int | None = None
    clearinghouse_id: str | None = None
    trace_id: str | None = None
    failure_reason: str | None = None
    attempts: tuple[NewAttempt, ...] = ()

    def __post_init__(self) -> None:
        """Refused when built, so a wrong status never reaches a transaction."""
        if self.status not in FINAL_STATUSES:
            raise ValueError(f"cannot complete a check as {self.status.value}")

    @property
    def has_response(self) -> bool:
        """Whether a response row goes with the status (a FAILED check may have had no answer at all)."""
        return self.raw is not None or self.summary is not None or self.http_status is not None
