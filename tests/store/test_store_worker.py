"""Background-worker support on both backends: leasing due checks, rescheduling, and stale PENDING handling."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.store import CheckMode, CheckStatus, Completion, EligibilityRepository, NewCheck
from server.store.repository import UNREADABLE_REASON
from tests.store.helpers import SEALER, SECRET, FakeClock, new_tenant

PAYLOAD = {"tradingPartnerServiceId": "SBX01", "subscriber": {"memberId": "M1"}}


async def _async_check(repo: EligibilityRepository, tenant: str, **kw: Any) -> str:
    record = await repo.create_pending(tenant, payer_id="SBX01", request_payload=PAYLOAD, mode=CheckMode.ASYNC, **kw)
    return record.id


async def test_claim_due_picks_only_due_async_checks(clocked_repo: EligibilityRepository, clock: FakeClock) -> None:
    repo = clocked_repo
    t = new_tenant()
    due = [await _async_check(repo, t) for _ in range(3)]
    later = await _async_check(repo, t, next_attempt_at=clock.now + timedelta(minutes=5))
    sync = (await repo.create_pending(t, payer_id="SBX01", request_payload=PAYLOAD)).id
    done = await _async_check(repo, t)
    await repo.complete(t, done, Completion(CheckStatus.VERIFIED, summary={"active": True}))

    claimed = await repo.claim_due("w1", limit=10, lease_seconds=30)
    assert sorted(r.id for r in claimed) == sorted(due)
    assert all(r.claimed_by == "w1" and r.lease_until == clock.now + timedelta(seconds=30) for r in claimed)
    assert all(r.tenant_id == t and r.request_payload == PAYLOAD for r in claimed)
    assert await repo.claim_due("w2", limit=10, lease_seconds=30) == []  # leased ones are not due

    clock.advance(minutes=6)  # `later` is due now, and the leases have expired
    reclaimed = await repo.claim_due("w2", limit=10, lease_seconds=30)
    assert sorted(r.id for r in reclaimed) == sorted([*due, later])
    assert sync not in {r.id for r in reclaimed}
    assert await repo.claim_due("w2", limit=0, lease_seconds=30) == []


async def test_claim_due_respects_limit_and_due_order(clocked_repo: EligibilityRepository, clock: FakeClock) -> None:
    repo = clocked_repo
    t = new_tenant()
    base = clock.now
    ids = [await _async_check(repo, t, next_attempt_at=base - timedelta(seconds=10 - i)) for i in range(5)]
    first = await repo.claim_due("w", limit=2, lease_seconds=60)
    assert [r.id for r in first] == ids[:2]
    second = await repo.claim_due("w", limit=2, lease_seconds=60)
    assert [r.id for r in second] == ids[2:4]


async def test_reschedule_release_and_lease_ownership(
    clocked_repo: EligibilityRepository, clock: FakeClock
) -> None:
    repo = clocked_repo
    t = new_tenant()
    check_id = await _async_check(repo, t)
    [claimed] = await repo.claim_due("w1", limit=1, lease_seconds=30)
    assert claimed.id == check_id

    assert not await repo.reschedule(check_id, clock.now + timedelta(seconds=5), worker_id="w2")  # not the holder
    assert await repo.reschedule(check_id, clock.now + timedelta(seconds=5), worker_id="w1")
    got = await repo.get(t, check_id)
    assert got is not None and got.claimed_by is None and got.lease_until is None
    assert got.next_attempt_at == clock.now + timedelta(seconds=5)
    assert await repo.claim_due("w1", limit=1, lease_seconds=30) == []  # backoff not over

    clock.advance(seconds=5)
    [again] = await repo.claim_due("w2", limit=1, lease_seconds=30)
    assert again.id == check_id and again.claimed_by == "w2"
    assert not await repo.release(check_id, "w1")
    assert await repo.release(check_id, "w2")
    [third] = await repo.claim_due("w3", limit=1, lease_seconds=30)
    assert third.id == check_id

    assert await repo.complete(t, check_id, Completion(CheckStatus.VERIFIED, summary={"active": True}))
    got = await repo.get(t, check_id)
    assert got is not None and got.claimed_by is None and got.lease_until is None and got.next_attempt_at is None
    assert not await repo.reschedule(check_id, clock.now)  # completed checks stay completed
    assert await repo.claim_due("w3", limit=1, lease_seconds=30) == []


async def test_concurrent_claimers_never_share_a_check(
    engine: AsyncEngine, make_engine: Callable[[], AsyncEngine]
) -> None:
    """Two claimers on two engines (two server processes) drain the queue between them, each check once."""
    repo_a = EligibilityRepository(engine, page_token_secret=SECRET, sealer=SEALER)
    repo_b = EligibilityRepository(make_engine(), page_token_secret=SECRET, sealer=SEALER)
    tenants = [new_tenant() for _ in range(3)]
    ids = {await _async_check(repo_a, tenants[i % 3]) for i in range(60)}

    async def drain(repo: EligibilityRepository, worker: str) -> list[str]:
        got: list[str] = []
        while True:
            batch = await repo.claim_due(worker, limit=4, lease_seconds=300)
            if not batch:
                return got
            got.extend(r.id for r in batch)
            await asyncio.sleep(0)

    results = await asyncio.gather(
        drain(repo_a, "a1"), drain(repo_a, "a2"), drain(repo_b, "b1"), drain(repo_b, "b2")
    )
    flat = [i for r in results for i in r]
    assert len(flat) == len(set(flat)), "a check was claimed twice"
    assert set(flat) == ids


async def test_stale_pending_resume_and_fail(clocked_repo: EligibilityRepository, clock: FakeClock) -> None:
    repo = clocked_repo
    t = new_tenant()
    stuck_sync = (await repo.create_pending(t, payer_id="SBX01", request_payload=PAYLOAD)).id
    stuck_async = await _async_check(repo, t)
    leased = await _async_check(repo, t)
    clock.advance(minutes=20)
    [claimed] = [r for r in await repo.claim_due("w", limit=10, lease_seconds=600) if r.id == leased]
    assert claimed.id == leased
    # stuck_async was claimed too; give its lease back so only `leased` is in a worker's hands.
    assert await repo.release(stuck_async, "w")
    fresh = (await repo.create_pending(t, payer_id="SBX01", request_payload=PAYLOAD)).id

    stale = await repo.stale_pending(timedelta(minutes=10))
    assert {r.id for r in stale} == {stuck_sync, stuck_async}  # not the leased one, not the fresh one
    assert [r.id for r in await repo.stale_pending(timedelta(minutes=10), mode=CheckMode.SYNC)] == [stuck_sync]

    # Resume: a stuck SYNC check (its process died) is handed to the worker.
    assert await repo.resume(stuck_sync)
    resumed = await repo.get(t, stuck_sync)
    assert resumed is not None and resumed.mode is CheckMode.ASYNC and resumed.next_attempt_at == clock.now
    claimed_now = {r.id for r in await repo.claim_due("w2", limit=10, lease_seconds=60)}
    assert stuck_sync in claimed_now
    # Another process's sweeper saw the same orphan: its hand-over changes nothing, the live lease stays.
    assert not await repo.resume(stuck_sync)
    held = await repo.get(t, stuck_sync)
    assert held is not None and held.claimed_by == "w2" and held.lease_until == clock.now + timedelta(seconds=60)
    assert not await repo.resume(leased)  # an ASYNC check is never "handed over"

    # Fail: whatever is still stale and unleased ends FAILED with the reason.
    clock.advance(minutes=11)  # w2's and w's leases expire; `fresh` becomes stale too
    failed = await repo.fail_stale(timedelta(minutes=10), "STALE_PENDING")
    assert failed == 4
    for check_id in (stuck_sync, stuck_async, leased, fresh):
        got = await repo.get(t, check_id)
        assert got is not None
        assert got.status is CheckStatus.FAILED and got.failure_reason == "STALE_PENDING"
        assert got.completed_at == clock.now and got.version == 2 and got.claimed_by is None
    assert not await repo.complete(t, stuck_sync, Completion(CheckStatus.VERIFIED, summary={"active": True}))
    assert await repo.stale_pending(timedelta(minutes=10)) == []
    assert await repo.fail_stale(timedelta(minutes=10), "STALE_PENDING") == 0


async def test_fail_stale_spares_live_leases_and_recent_checks(
    clocked_repo: EligibilityRepository, clock: FakeClock
) -> None:
    repo = clocked_repo
    t = new_tenant()
    working = await _async_check(repo, t)
    clock.advance(minutes=20)
    await repo.claim_due("w", limit=1, lease_seconds=120)
    recent = (await repo.create_pending(t, payer_id="SBX01", request_payload=PAYLOAD)).id
    assert await repo.fail_stale(timedelta(minutes=10), "STALE_PENDING") == 0
    for check_id in (working, recent):
        got = await repo.get(t, check_id)
        assert got is not None and got.status is CheckStatus.PENDING


async def test_a_worker_takes_back_its_own_leases_whose_claim_answer_was_lost(
    clocked_repo: EligibilityRepository, clock: FakeClock
) -> None:
    """A claim can commit and still fail for its caller (a cut connection, a timeout): the worker never learns of
    those leases. Given the ids it knows it holds, its next claim takes the others back, at once, not after the
    lease; never another worker's lease, never one it holds."""
    repo = clocked_repo
    t = new_tenant()
    early = {"next_attempt_at": clock.now - timedelta(seconds=2)}  # due before `theirs`: w1 claims these two
    lost, known = await _async_check(repo, t, **early), await _async_check(repo, t, **early)
    theirs = await _async_check(repo, t, next_attempt_at=clock.now - timedelta(seconds=1))
    assert {r.id for r in await repo.claim_due("w1", limit=2, lease_seconds=60)} == {lost, known}  # answer "lost"
    assert [r.id for r in await repo.claim_due("w2", limit=5, lease_seconds=60)] == [theirs]

    assert await repo.claim_due("w1", limit=5, lease_seconds=60) == []  # without `held`: leases are respected
    [back] = await repo.claim_due("w1", limit=5, lease_seconds=60, held={known})
    assert back.id == lost and back.claimed_by == "w1" and back.lease_until == clock.now + timedelta(seconds=60)
    assert await repo.claim_due("w1", limit=5, lease_seconds=60, held={known, lost}) == []
    assert [r.id for r in await repo.claim_due("w2", limit=5, lease_seconds=60, held=set())] == [theirs]
    assert await repo.claim_due("w3", limit=5, lease_seconds=60, held=set()) == []  # not its leases


async def test_withdraw_fails_untouched_checks_and_writes_absent_ones_failed(
    clocked_repo: EligibilityRepository, clock: FakeClock, engine: AsyncEngine
) -> None:
    """`withdraw` (creations their callers never saw confirmed): FAILED with the reason when still untouched;
    never a check that was attempted, leased, final or another tenant's. A check not there is written FAILED
    (sealed, never sent), so that its INSERT, if it was still on its way, fails on the id when it lands."""
    repo = clocked_repo
    t = new_tenant()

    sent = {"tradingPartnerServiceId": "SBX01", "subscriber": {"memberId": "ZQXMEMBER4417"}}

    def new(check_id: str, tenant: str = t) -> NewCheck:
        return NewCheck(tenant, check_id, "SBX01", sent, policy_id="POL-1", patient_id="patient-7")

    untouched = (await repo.create_pending(t, payer_id="SBX01", request_payload=PAYLOAD)).id
    attempted = (await repo.create_pending(t, payer_id="SBX01", request_payload=PAYLOAD)).id
    await repo.record_attempt(t, attempted, http_status=502)
    done = (await repo.create_pending(t, payer_id="SBX01", request_payload=PAYLOAD)).id
    await repo.complete(t, done, Completion(CheckStatus.VERIFIED, summary={"active": True}))
    leased = await _async_check(repo, t)

    assert leased in {r.id for r in await repo.claim_due("w1", limit=10, lease_seconds=30)}
    other = new_tenant()
    assert await repo.withdraw([new(untouched, other)], "NOT_CONFIRMED") == 0  # another tenant's id: none
    assert await repo.get(other, untouched) is None
    assert await repo.withdraw([], "NOT_CONFIRMED") == 0
    clock.advance(seconds=1)
    absent = str(uuid.uuid4())
    others = [new(c) for c in (absent, attempted, done, leased)]
    assert await repo.withdraw([new(untouched), *others], "NOT_CONFIRMED") == 2  # untouched, and absent written
    assert await repo.withdraw([new(untouched), *others], "NOT_CONFIRMED") == 0  # once

    written = await repo.get(t, absent)
    assert written is not None and written.request_payload == sent  # sealed when stored, opened when read
    assert (written.status, written.failure_reason, written.attempts, written.mode) == (
        CheckStatus.FAILED, "NOT_CONFIRMED", 0, CheckMode.SYNC)
    assert (written.payer_id, written.policy_id, written.patient_id) == ("SBX01", "POL-1", "patient-7")
    assert written.completed_at == written.requested_at == clock.now and written.next_attempt_at is None
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT request_payload FROM eligibility_requests WHERE id = :id"),
                                     {"id": absent})).scalar_one()
    assert "ZQXMEMBER4417" not in str(stored) and "memberId" not in str(stored)  # sealed, as on creation
    with pytest.raises(IntegrityError):  # the late INSERT of the withdrawn creation
        await repo.create_pending(t, payer_id="SBX01", request_payload=PAYLOAD, check_id=absent)
    assert (await repo.get(t, absent)) == written

    # Many at once (an outage refused many callers): the statement is split, every chunk is applied.
    first, last = [(await repo.create_pending(t, payer_id="SBX01", request_payload=PAYLOAD)).id for _ in range(2)]
    many = [new(first), *(new(str(uuid.uuid4())) for _ in range(1100)), new(last)]
    assert await repo.withdraw(many, "NOT_CONFIRMED") == 1102
    assert await repo.withdraw(many, "NOT_CONFIRMED") == 0

    record = await repo.get(t, untouched)
    assert record is not None
    assert (record.status, record.failure_reason, record.attempts) == (CheckStatus.FAILED, "NOT_CONFIRMED", 0)
    assert record.completed_at == clock.now and record.version == 2
    states = {c: (await repo.get(t, c)) for c in (attempted, done, leased)}
    assert {c: r.status for c, r in states.items() if r is not None} == {
        attempted: CheckStatus.PENDING, done: CheckStatus.VERIFIED, leased: CheckStatus.PENDING}


async def test_a_claimed_check_that_cannot_be_opened_is_failed_and_does_not_stall_the_claims(
    clocked_repo: EligibilityRepository, clock: FakeClock, engine: AsyncEngine
) -> None:
    """A row sealed under a key no longer configured (or altered) can never be sent: the claim fails it and hands
    out the others. Raised, it would come back in every claim (the oldest due) and stall the worker for good."""
    repo = clocked_repo
    t = new_tenant()
    lost = await _async_check(repo, t)
    clock.advance(seconds=1)
    fine = await _async_check(repo, t)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE eligibility_requests SET data_key_id = 'k-gone' WHERE id = :id"), {"id": lost})
    clock.advance(seconds=1)
    assert [r.id for r in await repo.claim_due("w1", limit=5, lease_seconds=60)] == [fine]
    async with engine.connect() as conn:
        status, reason = (await conn.execute(
            text("SELECT status, failure_reason FROM eligibility_requests WHERE id = :id"), {"id": lost})).one()
    assert (status, reason) == ("FAILED", UNREADABLE_REASON)
    assert await repo.claim_due("w2", limit=5, lease_seconds=60, held=set()) == []
