"""Eligibility checks: validate → store PENDING → call the clearinghouse (retry per spec §3.3) → store final.

Decisions kept here (eligibility.md §3.3/§3.5):
* A request row is PENDING *before* the clearinghouse is called; the answer and the final status are written in
  one transaction (`complete`). Every HTTP exchange is stored as an attempt.
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
import datetime as dt
import hashlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from server.clients.errors import (
    UpstreamAuthError,
    UpstreamDeadlineExceeded,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from server.clients.resilience import Deadline
from server.clients.stedi import HttpTry, StediAnswer, StediClient
from server.domain.eligibility import (
    EligibilityInquiry,
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
from server.store import CheckMode, CheckRecord, CheckStatus, EligibilityRepository, Stats

log = logging.getLogger(__name__)

FRESHNESS: Final = timedelta(days=30)
AAA_RETRY_WAITS: Final = (0.0, 2.0, 5.0, 10.0, 20.0, 30.0)  # then 30 s until the budget is spent
ONCE_RETRY_WAIT: Final = 2.0
STEDI_ATTEMPT_TIMEOUT: Final = 70.0  # spec §1.1: one attempt = 70 s HTTP timeout
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


class EligibilityCheckFailed(UpstreamUnavailable):
    """A synchronous check ended FAILED (stored as such): UNAVAILABLE, with the check id and machine reason."""

    def __init__(self, check_id: str, failure_reason: str) -> None:
        super().__init__("stedi", f"eligibility check {check_id} failed: {failure_reason}")
        self.check_id = check_id
        self.failure_reason = failure_reason


class EligibilityCheckDeferred(UpstreamDeadlineExceeded):
    """The caller's deadline ran out: the check continues in the background worker (DEADLINE_EXCEEDED)."""

    def __init__(self, check_id: str) -> None:
        super().__init__("stedi", f"deadline exceeded; eligibility check {check_id} continues in the background")
        self.check_id = check_id


# ---------------------------------------------------------------- one attempt and its verdict


@dataclass(frozen=True)
class Finished:
    """The check is decided: write it."""

    status: CheckStatus
    failure_reason: str | None
    answer: StediAnswer | None = None
    summary: Mapping[str, Any] | None = None
    error: UpstreamError | None = None


@dataclass(frozen=True)
class RetryLater:
    """The payer said "not now" (AAA 42/80, or 79 the first time): try again after `wait` seconds."""

    failure_reason: str  # what the check ends with if the budget runs out
    answer: StediAnswer
    wait: float


@dataclass(frozen=True)
class OutOfTime:
    """The attempt's deadline passed before Stedi answered; `failure_reason` if that ends the check."""

    error: UpstreamDeadlineExceeded
    failure_reason: str


Step = Finished | RetryLater | OutOfTime


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


def _http_reason(error: UpstreamError, trail: Sequence[HttpTry]) -> str:
    """Machine reason for a call that produced no answer. Never upstream free text."""
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
    if isinstance(error, UpstreamUnavailable) and "circuit breaker" in error.reason:
        return f"{reasons.STEDI_UNAVAILABLE} (circuit open)"
    return f"{reasons.STEDI_UNAVAILABLE} (no answer)"


class CheckRunner:
    """One clearinghouse attempt for a stored check → a `Step`; and how a step is written.

    Shared by the synchronous RPC and the background worker, so both follow exactly the same policy.
    """

    def __init__(
        self,
        repo: EligibilityRepository,
        client: StediClient,
        policy: EligibilityPolicy,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.repo = repo
        self.client = client
        self.policy = policy
        self._rng = rng or random.Random()
        self._writes: set[asyncio.Future[bool]] = set()  # final writes that outlive a cancelled caller

    def budget_deadline(self, record: CheckRecord) -> Deadline:
        """The retry budget runs from the moment the check was requested."""
        elapsed = (datetime.now(UTC) - record.requested_at).total_seconds()
        return Deadline.after(self.policy.retry_budget_seconds - elapsed)

    async def attempt(self, record: CheckRecord, deadline: Deadline) -> Step:
        trail: list[HttpTry] = []
        context = context_from_payload(record.request_payload, record.requested_at)
        try:
            answer = await self.client.check(record.request_payload, deadline=deadline, trail=trail)
        except UpstreamDeadlineExceeded as exc:
            await self._record(record, trail)
            answered = [t for t in trail if t.http_status is not None]
            reason = _http_reason(exc, answered) if answered else NO_ANSWER_IN_BUDGET
            return OutOfTime(exc, reason)
        except UpstreamError as exc:
            await self._record(record, trail)
            reason = _http_reason(exc, trail)
            log.warning("eligibility check %s: clearinghouse call failed (%s)", record.id, reason)
            return Finished(CheckStatus.FAILED, reason, error=exc)
        attempt_no = await self._record(record, trail)
        result = normalize_response(answer.http_status, answer.body, context)
        outcome = result.outcome
        reason = outcome.failure_reason or ""
        if outcome.retry is RetryPolicy.PAYER_BUDGET:
            return RetryLater(reason, answer, self.policy.aaa_wait(attempt_no or 1, self._rng))
        if outcome.retry is RetryPolicy.ONCE:
            if await self._participant_rejections(record) < 2:
                return RetryLater(reason, answer, self.policy.once_retry_wait)
            return Finished(CheckStatus.FAILED, reason, answer)
        status = CheckStatus(outcome.status.value)
        summary = result.summary.to_json() if result.summary is not None else None
        return Finished(status, outcome.failure_reason, answer, summary)

    async def _participant_rejections(self, record: CheckRecord) -> int:
        """How many times the payer answered AAA 79 under HTTP 200 for this check (this attempt included)."""
        history = await self.repo.attempts(record.tenant_id, record.id)
        return sum(1 for a in history if a.http_status == 200 and "79" in a.aaa_codes)

    async def _record(self, record: CheckRecord, trail: Sequence[HttpTry]) -> int | None:
        """Store every HTTP exchange of the call; returns the last attempt number (None: no longer pending)."""
        last: int | None = None
        for t in trail:
            last = await self.repo.record_attempt(
                record.tenant_id,
                record.id,
                http_status=t.http_status,
                aaa_codes=t.aaa_codes,
                clearinghouse_id=t.stedi_id,
                trace_id=t.trace_id,
                error=t.error,
            )
        return last

    async def finish(self, record: CheckRecord, step: Finished) -> bool:
        """Write the final status + response in one transaction; shielded so a cancelled caller cannot lose it."""
        answer = step.answer
        write = self.repo.complete(
            record.tenant_id,
            record.id,
            step.status,
            raw=answer.body if answer is not None else None,
            summary=step.summary,
            http_status=answer.http_status if answer is not None else None,
            clearinghouse_id=answer.stedi_id if answer is not None else None,
            trace_id=answer.trace_id if answer is not None else None,
            failure_reason=step.failure_reason,
        )
        future = asyncio.ensure_future(write)
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)
        done = await asyncio.shield(future)
        if done:
            log.info("eligibility check %s: %s%s", record.id, step.status.value,
                     f" ({step.failure_reason})" if step.failure_reason else "")
        else:
            log.info("eligibility check %s: already completed elsewhere; this answer is dropped", record.id)
        return done

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for final writes whose caller was cancelled (at shutdown, before the database closes)."""
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=timeout)

    @staticmethod
    def failed_after_retries(step: RetryLater) -> Finished:
        return Finished(CheckStatus.FAILED, step.failure_reason, step.answer)

    @staticmethod
    def out_of_budget(step: OutOfTime) -> Finished:
        return Finished(CheckStatus.FAILED, step.failure_reason, error=step.error)


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
        self._handovers: set[asyncio.Future[bool]] = set()
        self._running: set[asyncio.Task[Any]] = set()  # synchronous checks in progress

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

    async def _create(self, tenant_id: str, inquiry: EligibilityInquiry, mode: CheckMode) -> CheckRecord:
        payload = self._prepare(tenant_id, inquiry)
        return await self._repo.create_pending(
            tenant_id,
            payer_id=inquiry.payer_id,
            request_payload=payload,
            policy_id=inquiry.policy_id or None,
            patient_id=inquiry.patient_id or None,
            mode=mode,
        )

    async def submit(self, tenant_id: str, inquiry: EligibilityInquiry) -> CheckRecord:
        """Store a PENDING check for the background worker and return it at once."""
        record = await self._create(tenant_id, inquiry, CheckMode.ASYNC)
        self._wake()
        return record

    async def check(
        self, tenant_id: str, inquiry: EligibilityInquiry, *, timeout: float | None, include_raw: bool = False
    ) -> CheckRecord:
        """Run a check to its final state within the caller's `timeout` (seconds; None = only the budget).

        Returns VERIFIED or NOT_FOUND checks; raises `EligibilityCheckFailed` for FAILED ones (after storing them),
        `EligibilityCheckDeferred` when the deadline runs out (the worker finishes the check).
        """
        record = await self._create(tenant_id, inquiry, CheckMode.SYNC)
        caller = Deadline.after(None if timeout is None else timeout - self._policy.deadline_margin_seconds)
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            final = await self._run(record, caller)
        except asyncio.CancelledError:
            await self._hand_over(record, None)
            raise
        finally:
            if task is not None:
                self._running.discard(task)
        stored = await self._repo.get(tenant_id, record.id, include_raw=include_raw)
        if stored is None:  # pragma: no cover - rows are never deleted
            raise CheckNotFound(record.id)
        if stored.status is CheckStatus.FAILED:
            raise EligibilityCheckFailed(stored.id, stored.failure_reason or reasons.STEDI_UNAVAILABLE) from (
                final.error if final is not None else None
            )
        return stored

    async def _run(self, record: CheckRecord, caller: Deadline) -> Finished | None:
        """The attempt loop of a synchronous check; returns the step that finished it (None: finished elsewhere)."""
        runner = self._runner
        while True:
            budget = runner.budget_deadline(record)
            step = await runner.attempt(record, _earlier(caller, budget))
            if isinstance(step, OutOfTime):
                if caller.at is not None and (budget.at is None or caller.at < budget.at):
                    await self._hand_over(record, None)
                    raise EligibilityCheckDeferred(record.id) from step.error
                step = runner.out_of_budget(step)
            elif isinstance(step, RetryLater):
                remaining = budget.remaining()
                if remaining is not None and step.wait >= remaining:
                    step = runner.failed_after_retries(step)
                else:
                    left = caller.remaining()
                    if left is not None and step.wait >= left:
                        await self._hand_over(record, step.wait)
                        raise EligibilityCheckDeferred(record.id)
                    log.info("eligibility check %s: %s, retrying in %.1fs", record.id, step.failure_reason, step.wait)
                    await asyncio.sleep(step.wait)
                    continue
            await runner.finish(record, step)
            return step

    async def _hand_over(self, record: CheckRecord, wait: float | None) -> None:
        """Give a still-PENDING synchronous check to the background worker; survives the caller's cancellation."""
        at = None if wait is None else datetime.now(UTC) + timedelta(seconds=wait)
        task = asyncio.ensure_future(self._repo.resume(record.id, at=at))
        self._handovers.add(task)
        task.add_done_callback(self._handovers.discard)
        try:
            if await asyncio.shield(task):
                log.info("eligibility check %s: caller gone or out of time; handed to the background worker",
                         record.id)
                self._wake()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the stale-pending sweeper resumes it later
            log.exception("eligibility check %s: hand-over to the worker failed", record.id)

    async def close(self) -> None:
        """At shutdown (after the gRPC server cancelled its calls): let cancelled synchronous checks hand
        themselves over, and those writes land, before the database closes."""
        if self._running:
            await asyncio.wait(list(self._running), timeout=5.0)
        if self._handovers:
            await asyncio.wait(list(self._handovers), timeout=5.0)
        await self._runner.drain()

    # ------------------------------------------------------------------ read

    async def get(self, tenant_id: str, check_id: str, *, include_raw: bool = False) -> CheckRecord:
        record = await self._repo.get(tenant_id, check_id, include_raw=include_raw)
        if record is None:
            raise CheckNotFound(check_id)
        return record

    async def list(
        self,
        tenant_id: str,
        *,
        policy_id: str | None,
        patient_id: str | None,
        status: CheckStatus | None,
        page_size: int,
        page_token: str | None,
    ) -> tuple[list[CheckRecord], str | None]:
        """Newest first; `page_token` from a previous page with the same filters (InvalidPageToken otherwise)."""
        return await self._repo.list(
            tenant_id,
            policy_id=policy_id,
            patient_id=patient_id,
            status=status,
            page_size=page_size,
            page_token=page_token,
        )

    async def stats(self, tenant_id: str, *, policy_id: str | None) -> Stats:
        return await self._repo.stats(tenant_id, policy_id=policy_id)

    async def watch(self, tenant_id: str, check_id: str) -> AsyncIterator[CheckRecord]:
        """The current state, then every status change, ending with a final state.

        Polls the row's version (one indexed read every `watch_poll_seconds`), so a change made by any process
        sharing the database is seen. Cancellation (caller gone) simply ends the loop.
        """
        record = await self.get(tenant_id, check_id)
        yield record
        version = record.version
        while not record.status.is_final:
            await asyncio.sleep(self._policy.watch_poll_seconds)
            current = await self._repo.status_version(tenant_id, check_id)
            if current is None:
                raise CheckNotFound(check_id)
            if current != version:
                record = await self.get(tenant_id, check_id)
                version = record.version
                yield record
