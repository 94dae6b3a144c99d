"""Background worker: completes submitted (ASYNC) and handed-over checks; a sweeper leaves nothing PENDING.

* Loop: `claim_due` leases due checks (SKIP LOCKED on PostgreSQL, so several processes share the work and each
  check is worked by one of them at a time), runs one attempt each with bounded concurrency, then completes the
  check or reschedules the next AAA retry (which frees the lease for whoever is free then), storing the
  attempt's HTTP exchanges in the same transaction. An open clearinghouse breaker is waited out: the check is
  rescheduled after the breaker's `retry_after`, within the retry budget, and fails only once that is spent.
  Both writes are durable (retried in the background while the database is away), so a lease never has to
  expire before a check moves on after an outage. Nor does a claim whose commit landed but whose answer was lost:
  the worker passes the leases it knows it holds, and `claim_due` gives it back its others.
* Sweeper, at start and then periodically: synchronous PENDING checks requested and last touched more than
  `stale_after` ago, with no lease, are orphans (their process died): they are resumed (given to the worker,
  which grants one more full attempt even when the retry budget is spent). Checks still PENDING past
  `stale_after + retry budget` are failed with reason STALE_PENDING instead. ASYNC checks need no sweeping: the
  claim loop takes them as soon as they are due and their lease (if any) has expired.
* Stop: cancel the loop, give in-flight checks `grace` seconds, cancel the rest and release their leases so
  another process (or the next start) picks them up at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Final

from server.clients.resilience import Deadline
from server.store import CheckMode, CheckRecord, CheckStatus, StoreUnavailable

from .eligibility import (
    STEDI_ATTEMPT_TIMEOUT,
    CheckRunner,
    Finished,
    OutOfTime,
    Progress,
    RetryLater,
    Tries,
    circuit_open,
    told_to_wait,
)

log = logging.getLogger(__name__)

STALE_PENDING: Final = "STALE_PENDING"
LEASE_SLACK_SECONDS: Final = 15.0
CIRCUIT_WAIT_SECONDS: Final = 1.0  # when an open breaker does not say how long it stays open
CIRCUIT_MIN_WAIT_SECONDS: Final = 0.25  # a breaker about to probe: do not spin on it


def new_worker_id() -> str:
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(3)}"


class EligibilityWorker:
    """`start()` once (runs the sweeper, then the loops), `stop()` at shutdown, `wake()` when work was added."""

    def __init__(
        self,
        runner: CheckRunner,
        *,
        concurrency: int = 8,
        poll_seconds: float = 0.5,
        stale_after_seconds: float = 600.0,
        sweep_every_seconds: float | None = None,
        attempt_timeout_seconds: float = STEDI_ATTEMPT_TIMEOUT,
        worker_id: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._runner = runner
        self._repo = runner.repo
        self.worker_id = worker_id or new_worker_id()
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._stale_after = timedelta(seconds=stale_after_seconds)
        self._sweep_every = sweep_every_seconds or max(poll_seconds, min(stale_after_seconds / 2, 60.0))
        # One attempt may take the whole Stedi timeout; the lease outlives it so no one else takes the check.
        self._attempt_seconds = attempt_timeout_seconds
        self._lease_seconds = attempt_timeout_seconds + LEASE_SLACK_SECONDS
        self._wakeup = asyncio.Event()
        self._stop_sweeping = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        # Checks whose step ended without its write landing (an outage, a bug): still leased to this worker, left
        # alone until the lease runs out (their write may be retrying; a bug must not loop). Monotonic expiry.
        self._unsettled: dict[str, float] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False

    def wake(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        try:
            await self.sweep()
        except StoreUnavailable:
            log.warning("eligibility worker: database unavailable at start; the sweeper retries periodically")
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="eligibility-worker"),
            asyncio.create_task(self._sweep_loop(), name="eligibility-sweeper"),
        ]
        log.info("eligibility worker %s started (concurrency %d)", self.worker_id, self._concurrency)

    async def stop(self, grace: float = 2.0) -> None:
        # Ask the loops to leave between database calls first: a task cancelled inside a write transaction can
        # leave its SQLite connection checked out with the write lock held, which the engine's dispose never
        # closes (a restart in the same process then finds the database locked). Cancel only what does not leave.
        self._stopping = True
        self._wakeup.set()
        self._stop_sweeping.set()
        if self._loops:
            await asyncio.wait(self._loops, timeout=grace)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()), timeout=grace)
        unfinished = dict(self._in_flight)
        for task in unfinished.values():
            task.cancel()
        await asyncio.gather(*unfinished.values(), return_exceptions=True)
        await self._runner.drain()
        for check_id in unfinished:
            try:
                await self._repo.release(check_id, self.worker_id)
            except Exception:  # noqa: BLE001 - the lease expires on its own
                log.warning("eligibility worker: could not release the lease of check %s", check_id)
        log.info("eligibility worker %s stopped", self.worker_id)

    # ------------------------------------------------------------------ sweeper

    async def sweep(self) -> int:
        """Fail orphans past the budget, resume younger ones; returns how many were resumed."""
        budget = timedelta(seconds=self._runner.policy.retry_budget_seconds)
        failed = await self._repo.fail_stale(self._stale_after + budget, STALE_PENDING)
        if failed:
            self._runner.on_final(CheckStatus.FAILED.value, failed)
            log.warning("eligibility sweeper: %d check(s) pending past the retry budget marked FAILED (%s)",
                        failed, STALE_PENDING)
        resumed = 0
        quiet_since = datetime.now(UTC) - self._stale_after
        for record in await self._repo.stale_pending(self._stale_after, mode=CheckMode.SYNC):
            # A synchronous check that recorded an attempt recently still has a live caller somewhere.
            if record.updated_at <= quiet_since and await self._repo.resume(record.id):
                resumed += 1
        if resumed:
            log.info("eligibility sweeper: resumed %d orphaned check(s)", resumed)
            self.wake()
        return resumed

    async def _sweep_loop(self) -> None:
        while not self._stopping:
            try:
                async with asyncio.timeout(self._sweep_every):
                    await self._stop_sweeping.wait()
            except TimeoutError:
                pass
            if self._stopping:
                return
            try:
                await self.sweep()
            except StoreUnavailable:
                log.warning("eligibility sweeper: database unavailable; will retry")
            except Exception:  # noqa: BLE001 - keep sweeping
                log.exception("eligibility sweeper failed")

    # ------------------------------------------------------------------ claim loop

    async def _claim_loop(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            free = self._concurrency - len(self._in_flight)
            claimed: list[CheckRecord] = []
            if free > 0:
                try:
                    claimed = await self._repo.claim_due(self.worker_id, free, self._lease_seconds,
                                                         held=self._held())
                except StoreUnavailable:
                    log.warning("eligibility worker: database unavailable; will retry")
                except Exception:  # noqa: BLE001 - keep the worker alive
                    log.exception("eligibility worker: claim failed")
            for record in claimed:
                task = asyncio.create_task(self._process(record), name=f"eligibility-check-{record.id}")
                self._in_flight[record.id] = task
                task.add_done_callback(functools.partial(self._done, record.id))
            if claimed and len(claimed) == free:
                await asyncio.sleep(0)  # there may be more due work: claim again once slots free up
                if len(self._in_flight) < self._concurrency:
                    continue
            try:
                # Not asyncio.wait_for: on 3.11 it can swallow a cancel that races the wake-up, and stop() hangs.
                async with asyncio.timeout(self._poll):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def _held(self) -> set[str]:
        """The leases this worker knows it holds: any other lease of its own is a claim whose answer was lost, and
        `claim_due` takes it back (rather than leave its check PENDING for the whole lease)."""
        now = time.monotonic()
        for check_id in [i for i, until in self._unsettled.items() if until <= now]:
            del self._unsettled[check_id]
        return {*self._in_flight, *self._unsettled}

    def _done(self, check_id: str, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(check_id, None)
        self._wakeup.set()

    async def _process(self, record: CheckRecord) -> None:
        try:
            await self.advance(record)
        except asyncio.CancelledError:
            raise
        except StoreUnavailable:
            self._unsettled[record.id] = time.monotonic() + self._lease_seconds
            log.warning("eligibility check %s: database unavailable; its write is retried until the database "
                        "returns", record.id)
        except Exception:  # noqa: BLE001 - one check's bug must not stop the worker
            self._unsettled[record.id] = time.monotonic() + self._lease_seconds
            log.exception("eligibility check %s: worker step failed", record.id)

    async def advance(self, record: CheckRecord) -> None:
        """One attempt for a leased check, then complete it or schedule the next try."""
        runner = self._runner
        budget = runner.budget_deadline(record)
        # A check resumed after its budget (an orphan of a dead process) still gets one full attempt.
        deadline = Deadline.after(self._attempt_seconds) if budget.expired else budget.capped(self._attempt_seconds)
        step = await runner.attempt(record, deadline, Progress(record.attempts, None))
        if isinstance(step, OutOfTime):
            if not budget.expired:
                await self._reschedule(record, 0.0, step.tries)
                return
            step = runner.out_of_budget(step)
        elif isinstance(step, RetryLater):
            remaining = budget.remaining()
            if remaining is None or step.wait < remaining:
                log.info("eligibility check %s: %s, retrying in %.1fs", record.id, step.failure_reason, step.wait)
                await self._reschedule(record, step.wait, step.tries)
                return
            step = runner.failed_after_retries(step)
        elif (breaker := circuit_open(step)) is not None and not budget.expired:
            remaining = budget.remaining()
            wait = max(CIRCUIT_MIN_WAIT_SECONDS,
                       breaker.retry_after if breaker.retry_after is not None else CIRCUIT_WAIT_SECONDS)
            wait = wait if remaining is None else min(wait, remaining)
            log.info("eligibility check %s: clearinghouse circuit %s open, retrying in %.1fs", record.id,
                     breaker.circuit, wait)
            await self._reschedule(record, wait, step.tries)
            return
        elif (asked := told_to_wait(step)) is not None and (budget.remaining() or 0.0) > asked:
            # A Retry-After longer than this step's deadline, within the check's budget: come back then, not at once.
            log.info("eligibility check %s: the clearinghouse asks to retry in %.1fs", record.id, asked)
            await self._reschedule(record, asked, step.tries)
            return
        assert isinstance(step, Finished)
        await runner.finish(record, step)

    async def _reschedule(self, record: CheckRecord, wait: float, tries: Tries) -> None:
        await self._runner.reschedule(record, wait, tries, worker_id=self.worker_id)
