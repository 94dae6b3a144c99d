"""Eligibility checks: validate → store PENDING → call the clearinghouse (retry per spec §3.3) → store final.

Decisions kept here (eligibility.md §3.3/§3.5):
* A request row is PENDING *before* the clearinghouse is called; the answer, the final status and the call's
  attempt rows are written in one transaction after it (`finish`): two transactions per synchronous check. Every
  HTTP exchange is stored as an attempt (those of an in-process AAA retry loop with the final write or the
  hand-over). The final write and the hand-over are durable: shielded from the caller's cancellation, and
  retried in the background while the database is away (`DurableWrites`), so a decided check reaches its final
  state soon after the database returns.
* An open clearinghouse breaker (`CircuitOpen`): a synchronous check ends FAILED and the RPC raises
  `EligibilityCircuitOpen` (a `CircuitOpen` with `retry_after`, → UNAVAILABLE + RetryInfo); the background
  worker waits `retry_after` (within the retry budget) and tries again instead.
* No mock fallback, ever: a failing clearinghouse ends the check FAILED with a machine reason; the synchronous
  RPC then raises `EligibilityCheckFailed` (an `UpstreamUnavailable` → UNAVAILABLE), only after the row is final.
* NOT_FOUND (member-data AAA: 58, 64–78) is a valid answer, not an error: the synchronous RPC returns the check
  with status NOT_FOUND and the AAA codes in `failure_reason`. Never retried.
* AAA 42/80 are retried after 0, 2, 5, 10, 20, 30, 30 … s (±20 % jitter) within the retry budget, counted from
  `requested_at`; AAA 79 with HTTP 200 once after 2 s; 429/5xx/timeouts inside one call by the resilience layer.
* A synchronous check whose caller's deadline runs out (or who cancels) is handed to the background worker in a
  shielded write (`resume`), so it never stays PENDING; the RPC answers DEADLINE_EXCEEDED (or is cancelled).
* Freshness: a VERIFIED/NOT_FOUND check older than `FRESHNESS` (30 days) reads EXPIRED (the repository applies it
  to get/list/stats), because benefits and accumulators change over a plan year.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import logging
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import msgspec
import orjson

from server.clients.errors import (
    CircuitOpen,
    ToldToWait,
    UpstreamAuthError,
    UpstreamDeadlineExceeded,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from server.clients.resilience import Deadline
from server.clients.stedi import HttpTry, StediAnswer, StediClient
from server.domain.eligibility import (
    RECIPE_VERSION,
    EligibilityInquiry,
    EligibilitySummary,
    FieldViolation,
    NormalizationContext,
    RetryPolicy,
    build_stedi_request,
    normalize_response,
    parse_yyyymmdd,
    validate_inquiry,
)
from server.domain.eligibility import status as reasons
from server.domain.eligibility.validation import clean_service_type_codes
from server.store import (
    CheckMode,
    CheckRecord,
    CheckStatus,
    Completion,
    EligibilityRepository,
    NewAttempt,
    NewCheck,
    Stats,
    StoreDeadlineExceeded,
    StoreUnavailable,
)

from .counting import no_outcome
from .durable_writes import DurableWrites

log = logging.getLogger(__name__)

FRESHNESS: Final = timedelta(days=30)
AAA_RETRY_WAITS: Final = (0.0, 2.0, 5.0, 10.0, 20.0, 30.0)  # then 30 s until the budget is spent
ONCE_RETRY_WAIT: Final = 2.0
STEDI_ATTEMPT_TIMEOUT: Final = 70.0  # spec §1.1: one attempt = 70 s HTTP timeout
MAX_UNCONFIRMED: Final = 10_000  # creations awaiting withdrawal; beyond, the stale sweeper's (bounded memory)
NO_ANSWER_IN_BUDGET: Final = f"{reasons.STEDI_UNAVAILABLE} (no answer within the retry budget)"


def service_today() -> dt.date:
    """The service's calendar day (UTC): validation, the request and the normalizer all use this one."""
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class EligibilityPolicy:
    """The retry policy of spec §3.3 and the knobs around it (settings feed `retry_budget_seconds`)."""

    retry_budget_seconds: float = 120.0
    aaa_retry_waits: tuple[float, ...] = AAA_RETRY_WAITS
    once_retry_wait: float = ONCE_RETRY_WAIT
    jitter: float = 0.2
    # Give up this much before the caller's deadline so the hand-over write lands before gRPC cancels us.
    deadline_margin_seconds: float = 0.15
    # A synchronous check whose caller set no deadline answers within this (COSTEST_UPSTREAM_DEFAULT_DEADLINE_
    # SECONDS), then goes on in the background exactly like one whose caller's deadline ran out. None: the budget.
    default_deadline_seconds: float | None = None
    watch_poll_seconds: float = 0.2

    def aaa_wait(self, retry_no: int, rng: random.Random) -> float:
        """Wait before AAA retry number `retry_no` (1-based), with ±jitter."""
        waits = self.aaa_retry_waits or (0.0,)
        base = waits[min(max(retry_no, 1), len(waits)) - 1]
        return max(0.0, base * (1 + rng.uniform(-self.jitter, self.jitter)))


# ---------------------------------------------------------------- errors the API maps


class InvalidInquiry(ValueError):
    """The inquiry breaks spec §1.4 (the API validates first; this guards other callers). No PHI in it."""

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        super().__init__("invalid eligibility inquiry: " + ", ".join(v.field for v in violations))
        self.violations = tuple(violations)


class CheckNotFound(LookupError):
    """No check with this id in the caller's tenant (another tenant's id reads the same)."""


# The error reason (server/api/errors.py catalogue) of a FAILED check, by the machine code its failure_reason
# starts with: permanent refusals are not UNAVAILABLE (a caller would retry them); anything else is.
FAILURE_ERROR_REASONS: Final[Mapping[str, str]] = {
    reasons.PAYER_NOT_CONFIGURED: "UNKNOWN_PAYER",
    reasons.PROVIDER_REJECTED: "CHECK_REJECTED",
    reasons.REQUEST_REJECTED: "CHECK_REJECTED",
    reasons.STEDI_VALIDATION: "CHECK_REJECTED",
    reasons.PAYER_UNAVAILABLE: "PAYER_UNAVAILABLE",
    reasons.PAYER_REJECTED: "PAYER_UNAVAILABLE",  # AAA 79 under HTTP 200 (twice): could be connectivity (§3.2)
    reasons.PAYER_VOLUME_LIMIT: "PAYER_UNAVAILABLE",
    reasons.CLEARINGHOUSE_AUTH: "UPSTREAM_AUTH_FAILED",
}


def failure_error_reason(failure_reason: str) -> str:
    """The error reason of a FAILED check's machine `failure_reason` (e.g. "PAYER_NOT_CONFIGURED (AAA 79)")."""
    return FAILURE_ERROR_REASONS.get(failure_reason.split(" ", 1)[0], "UPSTREAM_UNAVAILABLE")


class EligibilityCheckFailed(UpstreamUnavailable):
    """A synchronous check ended FAILED (stored as such), with the check id and machine reason; its error `reason`
    says whether it is worth retrying (UNKNOWN_PAYER, CHECK_REJECTED: no; PAYER_UNAVAILABLE...: later)."""

    def __init__(self, check_id: str, failure_reason: str) -> None:
        super().__init__("stedi", f"eligibility check {check_id} failed: {failure_reason}")
        self.message = f"eligibility check {check_id} failed: {failure_reason}"
        self.check_id = check_id
        self.failure_reason = failure_reason
        self.reason = failure_error_reason(failure_reason)

    @property
    def error_metadata(self) -> dict[str, str]:
        return {"upstream": self.upstream, "check_id": self.check_id,
                "failure_reason": self.failure_reason.split(" ", 1)[0]}


class EligibilityCircuitOpen(EligibilityCheckFailed, CircuitOpen):
    """A synchronous check met an open clearinghouse breaker and was stored FAILED.

    It IS a `CircuitOpen` (with the breaker's `retry_after` and `circuit`), so the API answers UNAVAILABLE with
    RetryInfo; it is also an `EligibilityCheckFailed` (check id, machine reason). Chained from the original.
    """

    def __init__(self, check_id: str, failure_reason: str, cause: CircuitOpen) -> None:
        UpstreamUnavailable.__init__(self, cause.upstream, f"eligibility check {check_id} failed: {failure_reason}")
        self.check_id = check_id
        self.failure_reason = failure_reason
        self.retry_after = cause.retry_after
        self.circuit = cause.circuit
        self.reason = CircuitOpen.reason

    @property
    def error_metadata(self) -> dict[str, str]:
        return {**super().error_metadata, "circuit": self.circuit}


class EligibilityCheckDeferred(UpstreamDeadlineExceeded):
    """The caller's deadline ran out: the check continues in the background worker (DEADLINE_EXCEEDED)."""

    reason = "CHECK_DEFERRED"

    def __init__(self, check_id: str) -> None:
        super().__init__("stedi", f"deadline exceeded; eligibility check {check_id} continues in the background")
        self.check_id = check_id

    @property
    def error_metadata(self) -> dict[str, str]:
        return {"upstream": self.upstream, "check_id": self.check_id}


# ---------------------------------------------------------------- what the RPCs answer


@dataclass(frozen=True, slots=True)
class CheckView:
    """A check as the EligibilityService answers it: the request's bookkeeping and, once the payer answered,
    the normalized summary as the domain type (so the API never re-reads the storage form) and, when asked
    for, the clearinghouse body as stored. PHI fields stay out of repr."""

    id: str
    status: CheckStatus
    policy_id: str | None = field(repr=False)  # the caller's references to a person: not in a repr
    patient_id: str | None = field(repr=False)
    payer_id: str
    failure_reason: str | None
    clearinghouse_id: str | None
    attempts: int
    requested_at: datetime
    completed_at: datetime | None
    summary: EligibilitySummary | None = field(default=None, repr=False)
    raw: Mapping[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, record: CheckRecord, summary: EligibilitySummary | None = None) -> CheckView:
        """The view of a stored check; `summary` when the caller holds it already, else read from the record."""
        response = record.response
        if summary is None:
            summary = stored_summary(record)
        return cls(
            id=record.id,
            status=record.status,
            policy_id=record.policy_id,
            patient_id=record.patient_id,
            payer_id=record.payer_id,
            failure_reason=record.failure_reason,
            clearinghouse_id=record.clearinghouse_id,
            attempts=record.attempts,
            requested_at=record.requested_at,
            completed_at=record.completed_at,
            summary=summary,
            raw=response.raw if response is not None else None,
        )


def summary_is_stale(record: CheckRecord) -> bool:
    """Stored under an older normalization recipe (so it lacks what the current recipe adds)."""
    response = record.response
    return (response is not None and response.summary is not None
            and response.summary.get("recipe_version") != RECIPE_VERSION)


def stored_summary(record: CheckRecord) -> EligibilitySummary | None:
    """The check's summary under the current recipe: a summary stored by an older recipe is re-derived from the
    stored raw 271 (when the record carries it; else it is shown as stored, its `recipe_version` saying so)."""
    response = record.response
    if response is None or response.summary is None:
        return None
    if summary_is_stale(record) and response.raw is not None:
        context = context_from_payload(record.request_payload, record.requested_at)
        rederived = normalize_response(response.http_status or 200, response.raw, context).summary
        if rederived is not None:
            return rederived
    return EligibilitySummary.from_json(response.summary)


# ---------------------------------------------------------------- one attempt and its verdict


Tries = tuple[NewAttempt, ...]


@dataclass(frozen=True)
class Finished:
    """The check is decided: write it (with `tries`, the HTTP exchanges not stored yet)."""

    status: CheckStatus
    failure_reason: str | None
    answer: StediAnswer | None = None
    summary: EligibilitySummary | None = None
    error: UpstreamError | None = None
    tries: Tries = ()


@dataclass(frozen=True)
class RetryLater:
    """The payer said "not now" (AAA 42/80, or 79 the first time): try again after `wait` seconds."""

    failure_reason: str  # what the check ends with if the budget runs out
    answer: StediAnswer
    wait: float
    tries: Tries = ()


@dataclass(frozen=True)
class OutOfTime:
    """The attempt's deadline passed before Stedi answered; `failure_reason` if that ends the check."""

    error: UpstreamDeadlineExceeded
    failure_reason: str
    tries: Tries = ()


Step = Finished | RetryLater | OutOfTime


@dataclass
class Progress:
    """What one run of a check knows of its history: calls already made (stored or carried), and how many
    AAA 79 rejections they held (None: unknown, read from the store when needed)."""

    attempts: int = 0
    rejections: int | None = 0


def as_attempts(trail: Sequence[HttpTry]) -> Tries:
    return tuple(NewAttempt(t.http_status, t.aaa_codes, t.stedi_id, t.trace_id, t.error) for t in trail)


def _is_rejection(http_status: int | None, aaa_codes: Sequence[str]) -> bool:
    return http_status == 200 and "79" in aaa_codes


def _exact(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")  # as `EligibilitySummary.to_json` writes money: exact, never exponent form
    raise TypeError(f"{type(value).__name__} is not part of a summary")


_SUMMARY_ENCODER: Final = msgspec.json.Encoder(decimal_format="string")
# `str(Decimal)` switches to exponent form ("1E+3", "1E-7") where `format(d, "f")` does not: such a digit-E-sign
# anywhere in the text sends the summary the exact (slower) way. A plain text matching it only costs time.
_EXPONENT: Final = re.compile(rb"[0-9]E[+-][0-9]")


def summary_json(summary: EligibilitySummary) -> dict[str, Any]:
    """The summary's storage form, exactly `summary.to_json()` (a test pins that), at a fraction of its cost.

    msgspec walks the frozen dataclasses natively (enums by value, dates ISO, Decimals as their `str`), about
    twice as fast as orjson calling `_exact` back per Decimal; whenever a Decimal could have come out in exponent
    form the orjson path (money through `_exact`: never exponent form) writes it instead."""
    try:
        encoded = _SUMMARY_ENCODER.encode(summary)
    except (TypeError, msgspec.EncodeError):  # pragma: no cover - every summary field type is supported
        encoded = b"E+0"
    # `in` is a fast substring search; the regex (a scan trying a digit at every position) only when it may match
    if (b"E+" in encoded or b"E-" in encoded) and _EXPONENT.search(encoded) is not None:
        encoded = orjson.dumps(summary, default=_exact)
    stored: dict[str, Any] = orjson.loads(encoded)
    return stored


def circuit_open(step: Step) -> CircuitOpen | None:
    """The open breaker that stopped this step, if that is what happened."""
    if isinstance(step, Finished) and isinstance(step.error, CircuitOpen):
        return step.error
    return None


def told_to_wait(step: Step) -> float | None:
    """Seconds the clearinghouse asked us to wait (Retry-After) when that is what ended this step early."""
    if isinstance(step, Finished) and isinstance(step.error, ToldToWait):
        return step.error.retry_after
    return None


def context_from_payload(payload: Mapping[str, Any], requested_at: datetime) -> NormalizationContext:
    """What the normalizer needs, read back from the request as sent (so the worker needs nothing else)."""
    encounter = payload.get("encounter")
    enc: Mapping[str, Any] = encounter if isinstance(encounter, Mapping) else {}
    dos_text = enc.get("dateOfService")
    dos = parse_yyyymmdd(dos_text) if isinstance(dos_text, str) else None
    stcs = enc.get("serviceTypeCodes")
    codes = [c for c in stcs if isinstance(c, str)] if isinstance(stcs, list) else []
    return NormalizationContext(
        payer_id=str(payload.get("tradingPartnerServiceId", "")),
        date_of_service=dos or requested_at.astimezone(UTC).date(),
        service_type_codes=clean_service_type_codes(codes),
        patient_is_dependent=bool(payload.get("dependents")),
    )


def _as_circuit_open(error: UpstreamError, trail: Sequence[HttpTry]) -> UpstreamError:
    """A half-open breaker that refuses while its probe is in flight says so as a plain UpstreamUnavailable:
    for the check it is the same as an open breaker (nothing was sent), so treat it as one."""
    if (not isinstance(error, CircuitOpen) and isinstance(error, UpstreamUnavailable) and not trail
            and "circuit breaker" in error.detail):
        return CircuitOpen(error.upstream, None)
    return error


def _http_reason(error: UpstreamError, trail: Sequence[HttpTry]) -> str:
    """Machine reason for a call that produced no answer. Never upstream free text."""
    if isinstance(error, CircuitOpen):
        return f"{reasons.STEDI_UNAVAILABLE} (circuit open)"
    last = trail[-1] if trail else None
    status = last.http_status if last is not None else None
    if isinstance(error, UpstreamAuthError):
        return f"{reasons.CLEARINGHOUSE_AUTH} (HTTP {status})" if status else reasons.CLEARINGHOUSE_AUTH
    if isinstance(error, UpstreamNotFound):
        return f"{reasons.STEDI_UNEXPECTED_STATUS} (HTTP 404)"
    if status == 429:
        return f"{reasons.STEDI_THROTTLED} (HTTP 429)"
    if status is not None and status >= 500:
        return f"{reasons.STEDI_UNAVAILABLE} (HTTP {status})"
    if status is not None and last is not None and last.error == "malformed body":
        return f"{reasons.STEDI_UNAVAILABLE} (malformed body)"
    if status is not None:
        return f"{reasons.STEDI_UNEXPECTED_STATUS} (HTTP {status})"
    if last is not None and last.error:
        detail = last.error.split(" (")[0]
        return f"{reasons.STEDI_UNAVAILABLE} ({detail})"
    return f"{reasons.STEDI_UNAVAILABLE} (no answer)"


class CheckRunner:
    """One clearinghouse attempt for a stored check → a `Step`; and how a step is written.

    Shared by the synchronous RPC and the background worker, so both follow exactly the same policy. An attempt
    writes nothing: its HTTP exchanges travel with the step and are stored with the write that follows it.
    """

    def __init__(
        self,
        repo: EligibilityRepository,
        client: StediClient,
        policy: EligibilityPolicy,
        *,
        rng: random.Random | None = None,
        writes: DurableWrites | None = None,
        on_final: Callable[[str, int], None] = no_outcome,
    ) -> None:
        """`on_final(status, n)`: n checks reached that final status here (metrics)."""
        self.repo = repo
        self.on_final = on_final
        self.client = client
        self.policy = policy
        self._rng = rng or random.Random()
        self.writes = writes or DurableWrites()  # final writes and hand-overs: outlive the caller and outages

    def budget_deadline(self, record: CheckRecord) -> Deadline:
        """The retry budget runs from the moment the check was requested."""
        elapsed = (datetime.now(UTC) - record.requested_at).total_seconds()
        return Deadline.after(self.policy.retry_budget_seconds - elapsed)

    async def attempt(
        self,
        record: CheckRecord,
        deadline: Deadline,
        progress: Progress | None = None,
        trail: list[HttpTry] | None = None,
    ) -> Step:
        """One call (with its HTTP retries). `progress` is updated with this call's exchanges; `trail` (when
        given) lets a caller that is cancelled mid-call still store what was sent."""
        progress = progress if progress is not None else Progress(record.attempts, None)
        trail = trail if trail is not None else []
        context = context_from_payload(record.request_payload, record.requested_at)
        try:
            answer = await self.client.check(record.request_payload, deadline=deadline, trail=trail)
        except UpstreamDeadlineExceeded as exc:
            tries = self._count(progress, trail)
            answered = [t for t in trail if t.http_status is not None]
            reason = _http_reason(exc, answered) if answered else NO_ANSWER_IN_BUDGET
            return OutOfTime(exc, reason, tries)
        except UpstreamError as exc:
            tries = self._count(progress, trail)
            exc = _as_circuit_open(exc, trail)
            reason = _http_reason(exc, trail)
            log.warning("eligibility check %s: clearinghouse call failed (%s)", record.id, reason)
            return Finished(CheckStatus.FAILED, reason, error=exc, tries=tries)
        tries = self._count(progress, trail)
        result = normalize_response(answer.http_status, answer.body, context)
        outcome = result.outcome
        reason = outcome.failure_reason or ""
        if outcome.retry is RetryPolicy.PAYER_BUDGET:
            return RetryLater(reason, answer, self.policy.aaa_wait(progress.attempts or 1, self._rng), tries)
        if outcome.retry is RetryPolicy.ONCE:
            if await self._participant_rejections(record, progress, tries) < 2:
                return RetryLater(reason, answer, self.policy.once_retry_wait, tries)
            return Finished(CheckStatus.FAILED, reason, answer, tries=tries)
        status = CheckStatus(outcome.status.value)
        return Finished(status, outcome.failure_reason, answer, result.summary, tries=tries)

    @staticmethod
    def _count(progress: Progress, trail: Sequence[HttpTry]) -> Tries:
        tries = as_attempts(trail)
        progress.attempts += len(tries)
        if progress.rejections is not None:
            progress.rejections += sum(1 for t in tries if _is_rejection(t.http_status, t.aaa_codes))
        return tries

    async def _participant_rejections(self, record: CheckRecord, progress: Progress, tries: Tries) -> int:
        """How many times the payer answered AAA 79 under HTTP 200 for this check (this attempt included).

        Counted in memory by the in-process loop; the worker (a fresh run per claim) reads the stored ones."""
        if progress.rejections is not None:
            return progress.rejections
        stored = await self.repo.attempts(record.tenant_id, record.id)
        known = sum(1 for a in stored if _is_rejection(a.http_status, a.aaa_codes))
        return known + sum(1 for t in tries if _is_rejection(t.http_status, t.aaa_codes))

    async def finish(self, record: CheckRecord, step: Finished, *, include_raw: bool = True) -> CheckRecord | None:
        """Write the final status + response + attempts in one transaction; durable (see `DurableWrites`).

        Returns the completed check as written, or None when it had been completed elsewhere (nothing written).
        Raises `StoreUnavailable` when the first try fails (the write goes on in the background).
        """
        answer = step.answer
        summary = summary_json(step.summary) if step.summary is not None else None

        completion = Completion(
            step.status,
            raw=answer.body if answer is not None else None,
            summary=summary,
            http_status=answer.http_status if answer is not None else None,
            clearinghouse_id=answer.stedi_id if answer is not None else None,
            trace_id=answer.trace_id if answer is not None else None,
            failure_reason=step.failure_reason,
            attempts=step.tries,
        )

        def write() -> Awaitable[CheckRecord | None]:
            return self.repo.finish(record, completion, include_raw=include_raw)

        done = await self.writes.run(f"eligibility check {record.id}: final write", write)
        if done is not None:
            self.on_final(step.status.value, 1)
            log.info("eligibility check %s: %s%s", record.id, step.status.value,
                     f" ({step.failure_reason})" if step.failure_reason else "")
        else:
            log.info("eligibility check %s: already completed elsewhere; this answer is dropped", record.id)
        return done

    async def reschedule(
        self, record: CheckRecord, wait: float, tries: Tries, *, worker_id: str | None = None
    ) -> bool:
        """Make the check due again after `wait` seconds, storing `tries` with it; durable like `finish`."""
        at = datetime.now(UTC) + timedelta(seconds=wait)
        return await self.writes.run(
            f"eligibility check {record.id}: reschedule",
            lambda: self.repo.reschedule(record.id, at, worker_id=worker_id, attempts=tries),
        )

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for durable writes still in flight (at shutdown, before the database closes)."""
        await self.writes.drain(timeout)

    @staticmethod
    def failed_after_retries(step: RetryLater) -> Finished:
        return Finished(CheckStatus.FAILED, step.failure_reason, step.answer, tries=step.tries)

    @staticmethod
    def out_of_budget(step: OutOfTime) -> Finished:
        return Finished(CheckStatus.FAILED, step.failure_reason, error=step.error, tries=step.tries)


# ---------------------------------------------------------------- the use case


def _earlier(a: Deadline, b: Deadline) -> Deadline:
    if a.at is None:
        return b
    if b.at is None:
        return a
    return a if a.at <= b.at else b


class EligibilityChecks:
    """What the EligibilityService RPCs do, tenant by tenant. Knows nothing of gRPC."""

    def __init__(
        self,
        runner: CheckRunner,
        *,
        external_id_key: bytes,
        today: Callable[[], dt.date] = service_today,
    ) -> None:
        self._runner = runner
        self._repo = runner.repo
        self._policy = runner.policy
        self._external_id_key = hashlib.sha256(b"costestimator/externalPatientId\x00" + external_id_key).digest()
        self._today = today
        self._wake: Callable[[], None] = lambda: None
        self._running: set[asyncio.Task[Any]] = set()  # synchronous checks in progress
        self._unconfirmed: dict[str, NewCheck] = {}  # check id -> creation to withdraw (`_withdraw_later`)
        self._withdrawing = False  # the one background write that withdraws them is on
        self._unconfirmed_full = False  # MAX_UNCONFIRMED reached (and said)

    def on_work_available(self, wake: Callable[[], None]) -> None:
        """The in-process worker's wake-up, so submitted checks start without waiting for a poll."""
        self._wake = wake

    @property
    def runner(self) -> CheckRunner:
        return self._runner

    # ------------------------------------------------------------------ create

    def _prepare(self, tenant_id: str, inquiry: EligibilityInquiry) -> dict[str, Any]:
        today = self._today()
        violations = validate_inquiry(inquiry, today=today)
        if violations:
            raise InvalidInquiry(violations)
        return build_stedi_request(inquiry, tenant_id=tenant_id, today=today, external_id_key=self._external_id_key)

    async def _create(
        self, tenant_id: str, inquiry: EligibilityInquiry, mode: CheckMode, *, deadline: Deadline | None = None
    ) -> CheckRecord:
        new = NewCheck(tenant_id, str(uuid.uuid4()), inquiry.payer_id, self._prepare(tenant_id, inquiry),
                       policy_id=inquiry.policy_id or None, patient_id=inquiry.patient_id or None, mode=mode)
        try:
            return await self._repo.create(new, deadline=None if deadline is None else deadline.at)
        except (StoreUnavailable, StoreDeadlineExceeded, asyncio.CancelledError):
            self._withdraw_later(new)
            raise

    def _withdraw_later(self, new: NewCheck) -> None:
        """The INSERT of a new check may have committed though its caller never heard so (the answer lost, the
        store timeout, the caller's deadline or departure), or may still be on its way. The caller was told
        nothing was done, so the check must not run behind its back, nor sit PENDING until the stale sweep: it is
        withdrawn, stored FAILED NOT_CONFIRMED and never sent, whichever of the two writes lands first
        (`EligibilityRepository.withdraw`). One background write does them all, retried until the database
        answers, so an outage refusing many callers does not start a write per caller."""
        if len(self._unconfirmed) >= MAX_UNCONFIRMED:
            if not self._unconfirmed_full:  # said once per outage, not per refused caller
                self._unconfirmed_full = True
                log.warning("%d unconfirmed eligibility checks await withdrawal; further ones are left to the stale "
                            "sweeper (SYNC) and the worker (ASYNC)", MAX_UNCONFIRMED)
            return
        self._unconfirmed[new.check_id] = new
        if not self._withdrawing:
            self._withdrawing = True
            self._runner.writes.later("withdraw unconfirmed eligibility checks", self._withdraw_unconfirmed)

    async def _withdraw_unconfirmed(self) -> None:
        """One try of the withdrawal write: every creation queued so far, and those queued meanwhile."""
        try:
            while self._unconfirmed:
                batch = dict(self._unconfirmed)
                withdrawn = await self._repo.withdraw(batch.values(), reasons.NOT_CONFIRMED)
                for check_id in batch:
                    self._unconfirmed.pop(check_id, None)
                self._unconfirmed_full = False
                log.info("withdrew %d of %d eligibility check(s) whose creation was never confirmed (the others "
                         "had been started)", withdrawn, len(batch))
        except StoreUnavailable:
            raise  # the durable writer tries again: still withdrawing
        except BaseException:
            self._withdrawing = False  # given up (or shut down): the next unconfirmed creation starts anew
            raise
        self._withdrawing = False

    async def submit(self, tenant_id: str, inquiry: EligibilityInquiry) -> CheckView:
        """Store a PENDING check for the background worker and return it at once."""
        record = await self._create(tenant_id, inquiry, CheckMode.ASYNC)
        self._wake()
        return CheckView.of(record)

    async def check(
        self, tenant_id: str, inquiry: EligibilityInquiry, *, timeout: float | None, include_raw: bool = False
    ) -> CheckView:
        """Run a check to its final state within the caller's `timeout` (seconds; None = the policy's default
        deadline, else only the budget).

        Returns VERIFIED or NOT_FOUND checks; raises `EligibilityCheckFailed` for FAILED ones (after storing them;
        `EligibilityCircuitOpen` when the clearinghouse breaker was open), `EligibilityCheckDeferred` when the
        deadline runs out (the worker finishes the check), `StoreUnavailable` when the database is away (a
        decided result is then written as soon as it returns).
        """
        if timeout is None:
            timeout = self._policy.default_deadline_seconds
        caller = Deadline.after(None if timeout is None else timeout - self._policy.deadline_margin_seconds)
        record = await self._create(tenant_id, inquiry, CheckMode.SYNC, deadline=caller)
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            step, stored = await self._run(record, caller, include_raw=include_raw)
        finally:
            if task is not None:
                self._running.discard(task)
        summary = step.summary
        if stored is None:  # completed elsewhere meanwhile (e.g. by the sweeper): report what is stored
            stored = await self._repo.get(tenant_id, record.id, include_raw=include_raw)
            if stored is None:  # pragma: no cover - rows are never deleted
                raise CheckNotFound(record.id)
            summary = None
        if stored.status is CheckStatus.FAILED:
            reason = stored.failure_reason or reasons.STEDI_UNAVAILABLE
            breaker = circuit_open(step)
            if breaker is not None:
                raise EligibilityCircuitOpen(stored.id, reason, breaker) from breaker
            raise EligibilityCheckFailed(stored.id, reason) from step.error
        return CheckView.of(stored, summary)

    async def _run(
        self, record: CheckRecord, caller: Deadline, *, include_raw: bool
    ) -> tuple[Finished, CheckRecord | None]:
        """The attempt loop of a synchronous check: the step that finished it, and the check as written (None:
        finished elsewhere). HTTP exchanges of AAA retries are carried in memory and stored with the final write
        (or the hand-over), so a single-answer check costs two transactions."""
        runner = self._runner
        progress = Progress()
        carried: Tries = ()
        while True:
            budget = runner.budget_deadline(record)
            trail: list[HttpTry] = []
            try:
                step = await runner.attempt(record, _earlier(caller, budget), progress, trail)
            except asyncio.CancelledError:
                await self._hand_over(record, None, (*carried, *as_attempts(trail)))
                raise
            tries = (*carried, *step.tries)
            if isinstance(step, OutOfTime):
                if caller.at is not None and (budget.at is None or caller.at < budget.at):
                    await self._hand_over(record, None, tries)
                    raise EligibilityCheckDeferred(record.id) from step.error
                step = runner.out_of_budget(step)
            elif isinstance(step, RetryLater):
                remaining = budget.remaining()
                if remaining is not None and step.wait >= remaining:
                    step = runner.failed_after_retries(step)
                else:
                    left = caller.remaining()
                    if left is not None and step.wait >= left:
                        await self._hand_over(record, step.wait, tries)
                        raise EligibilityCheckDeferred(record.id)
                    log.info("eligibility check %s: %s, retrying in %.1fs", record.id, step.failure_reason, step.wait)
                    carried = tries
                    try:
                        await asyncio.sleep(step.wait)
                    except asyncio.CancelledError:
                        await self._hand_over(record, None, carried)
                        raise
                    continue
            step = dataclasses.replace(step, tries=tries)
            # A caller cancelled now leaves the final write going on (durable and shielded: retried until it lands),
            # so nothing is handed to the worker: a hand-over landing before that write would make the worker call
            # the clearinghouse again and drop its answer. A process dying meanwhile is the stale sweep's.
            return step, await runner.finish(record, step, include_raw=include_raw)

    async def _hand_over(self, record: CheckRecord, wait: float | None, tries: Tries) -> None:
        """Give a still-PENDING synchronous check (and the calls it made) to the background worker; survives the
        caller's cancellation and database outages (retried until it lands)."""
        at = None if wait is None else datetime.now(UTC) + timedelta(seconds=wait)
        try:
            if await self._runner.writes.run(
                f"eligibility check {record.id}: hand-over",
                lambda: self._repo.resume(record.id, at=at, attempts=tries),
            ):
                log.info("eligibility check %s: caller gone or out of time; handed to the background worker",
                         record.id)
                self._wake()
        except asyncio.CancelledError:
            raise
        except StoreUnavailable:
            log.warning("eligibility check %s: database unavailable; the hand-over is retried in the background",
                        record.id)
        except Exception:  # noqa: BLE001 - the stale-pending sweeper resumes it later
            log.exception("eligibility check %s: hand-over to the worker failed", record.id)

    async def close(self) -> None:
        """At shutdown (after the gRPC server cancelled its calls): let cancelled synchronous checks hand
        themselves over, and those writes land, before the database closes."""
        if self._running:
            await asyncio.wait(list(self._running), timeout=5.0)
        await self._runner.drain()

    # ------------------------------------------------------------------ read

    async def get(self, tenant_id: str, check_id: str, *, include_raw: bool = False) -> CheckView:
        return CheckView.of(await self._record(tenant_id, check_id, include_raw=include_raw))

    async def _record(self, tenant_id: str, check_id: str, *, include_raw: bool = False) -> CheckRecord:
        record = await self._repo.get(tenant_id, check_id, include_raw=include_raw)
        if record is None:
            raise CheckNotFound(check_id)
        return await self._with_raw_if_stale(record)

    async def _with_raw_if_stale(self, record: CheckRecord) -> CheckRecord:
        """A summary of an older recipe is re-derived from the raw 271 (`stored_summary`): read it too."""
        if summary_is_stale(record) and record.response is not None and record.response.raw is None:
            reread = await self._repo.get(record.tenant_id, record.id, include_raw=True)
            if reread is not None:
                return reread
        return record

    async def record(self, tenant_id: str, check_id: str) -> CheckRecord:
        """One stored check of the tenant (CheckNotFound otherwise), with the raw 271 when its summary is stale."""
        return await self._record(tenant_id, check_id)

    async def list(
        self,
        tenant_id: str,
        *,
        policy_id: str | None,
        patient_id: str | None,
        status: CheckStatus | None,
        page_size: int,
        page_token: str | None,
    ) -> tuple[list[CheckView], str | None]:
        """Newest first; `page_token` from a previous page with the same filters (InvalidPageToken otherwise)."""
        records, token = await self._repo.list(
            tenant_id,
            policy_id=policy_id,
            patient_id=patient_id,
            status=status,
            page_size=page_size,
            page_token=page_token,
        )
        return [CheckView.of(await self._with_raw_if_stale(r)) for r in records], token

    async def stats(self, tenant_id: str, *, policy_id: str | None) -> Stats:
        return await self._repo.stats(tenant_id, policy_id=policy_id)

    async def watch(self, tenant_id: str, check_id: str) -> AsyncIterator[CheckView]:
        """The current state, then every status change, ending with a final state.

        Polls the row's version (one indexed read every `watch_poll_seconds`), so a change made by any process
        sharing the database is seen. Cancellation (caller gone) simply ends the loop.
        """
        record = await self._record(tenant_id, check_id)
        yield CheckView.of(record)
        version = record.version
        while not record.status.is_final:
            await asyncio.sleep(self._policy.watch_poll_seconds)
            current = await self._repo.status_version(tenant_id, check_id)
            if current is None:
                raise CheckNotFound(check_id)
            if current != version:
                record = await self._record(tenant_id, check_id)
                version = record.version
                yield CheckView.of(record)
