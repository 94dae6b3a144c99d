"""Repository behaviour on both backends: life of a check, atomic/idempotent completion, tenant isolation,
history pagination and stats."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.store import CheckMode, CheckStatus, Completion, EligibilityRepository, InvalidPageToken
from server.store.tables import eligibility_requests, eligibility_responses
from tests.store.helpers import SEALER, SECRET, FakeClock, new_tenant

PAYLOAD = {
    "tradingPartnerServiceId": "SBX01",
    "subscriber": {"memberId": "M123", "firstName": "JANE", "lastName": "DOE", "dateOfBirth": "19900515"},
    "encounter": {"serviceTypeCodes": ["30"]},
}
RAW = {"id": "stedi-1", "meta": {"traceId": "trace-1"}, "errors": [], "benefitsInformation": [{"code": "1"}]}
SUMMARY = {"active": True, "deductible": {"total": Decimal("1500.00"), "remaining": Decimal("1050.00")}}
VERIFIED_ANSWER = Completion(CheckStatus.VERIFIED, raw=RAW, summary=SUMMARY, http_status=200)
NOT_FOUND_ANSWER = Completion(CheckStatus.NOT_FOUND, raw={"errors": [{"code": "75"}]}, http_status=200)


async def _create(repo: EligibilityRepository, tenant: str, **kw: Any) -> str:
    record = await repo.create_pending(tenant, payer_id="SBX01", request_payload=PAYLOAD, **kw)
    return record.id


async def test_create_then_get(repo: EligibilityRepository) -> None:
    t = new_tenant()
    created = await repo.create_pending(
        t, payer_id="SBX01", policy_id="pol-1", patient_id="pat-1", request_payload=PAYLOAD
    )
    assert created.status is CheckStatus.PENDING
    assert created.mode is CheckMode.SYNC
    assert created.version == 1 and created.attempts == 0 and created.next_attempt_at is None
    assert created.requested_at.tzinfo is not None and created.requested_at.utcoffset() == timedelta(0)

    got = await repo.get(t, created.id)
    assert got is not None
    assert got == created  # same values whether built on insert or read back
    assert got.request_payload == PAYLOAD
    assert got.response is None
    # PHI never shows in repr (log lines, tracebacks).
    assert "JANE" not in repr(got) and "M123" not in repr(got)


async def test_complete_writes_response_and_status(repo: EligibilityRepository) -> None:
    t = new_tenant()
    check_id = await _create(repo, t, policy_id="pol-1")
    assert await repo.complete(
        t,
        check_id,
        Completion(
            CheckStatus.VERIFIED,
            raw=RAW,
            summary=SUMMARY,
            http_status=200,
            clearinghouse_id="stedi-1",
            trace_id="trace-1",
        ),
    )
    got = await repo.get(t, check_id)
    assert got is not None and got.response is not None
    assert got.status is CheckStatus.VERIFIED
    assert got.completed_at is not None and got.completed_at >= got.requested_at
    assert got.version == 2
    assert (got.clearinghouse_id, got.trace_id) == ("stedi-1", "trace-1")
    assert got.response.http_status == 200
    assert got.response.raw == RAW
    # Money goes in as Decimal and is stored exactly, as a string.
    assert got.response.summary == {"active": True, "deductible": {"total": "1500.00", "remaining": "1050.00"}}
    assert "benefitsInformation" not in repr(got.response) and "1500.00" not in repr(got.response)

    without_raw = await repo.get(t, check_id, include_raw=False)
    assert without_raw is not None and without_raw.response is not None
    assert without_raw.response.raw is None and without_raw.response.summary is not None


async def test_second_completion_is_a_noop(repo: EligibilityRepository) -> None:
    t = new_tenant()
    check_id = await _create(repo, t)
    assert await repo.complete(t, check_id, NOT_FOUND_ANSWER)
    first = await repo.get(t, check_id)
    assert not await repo.complete(t, check_id, VERIFIED_ANSWER)
    assert not await repo.complete(t, check_id, Completion(CheckStatus.FAILED, failure_reason="LATE"))
    assert await repo.get(t, check_id) == first


def test_a_completion_refuses_a_non_final_status() -> None:
    for status in (CheckStatus.PENDING, CheckStatus.EXPIRED):
        with pytest.raises(ValueError, match=f"cannot complete a check as {status.value}"):
            Completion(status)


async def test_completion_is_atomic(repo: EligibilityRepository, engine: AsyncEngine) -> None:
    """If the response row cannot be written, the status change is rolled back with it."""
    t = new_tenant()
    check_id = await _create(repo, t)
    async with engine.begin() as conn:  # a conflicting response row makes complete()'s insert fail
        await conn.execute(
            insert(eligibility_responses).values(request_id=check_id, created_at=datetime.now(UTC))
        )
    with pytest.raises(Exception) as excinfo:
        await repo.complete(t, check_id, VERIFIED_ANSWER)
    assert "IntegrityError" in type(excinfo.value).__name__
    got = await repo.get(t, check_id)
    assert got is not None
    assert got.status is CheckStatus.PENDING and got.completed_at is None and got.version == 1


async def test_concurrent_completions_one_winner(repo: EligibilityRepository, engine: AsyncEngine) -> None:
    t = new_tenant()
    check_id = await _create(repo, t)
    statuses = [CheckStatus.VERIFIED, CheckStatus.FAILED, CheckStatus.NOT_FOUND] * 4
    results = await asyncio.gather(
        *(repo.complete(t, check_id, Completion(s, raw={"n": i}, http_status=200)) for i, s in enumerate(statuses))
    )
    assert sum(results) == 1
    winner = results.index(True)
    got = await repo.get(t, check_id)
    assert got is not None and got.response is not None
    assert got.status is statuses[winner] and got.response.raw == {"n": winner} and got.version == 2
    async with engine.connect() as conn:
        rows = (await conn.execute(select(eligibility_responses.c.request_id))).all()
    assert len(rows) == 1


async def test_record_attempts(repo: EligibilityRepository) -> None:
    t = new_tenant()
    check_id = await _create(repo, t)
    assert await repo.record_attempt(t, check_id, http_status=200, aaa_codes=["42"], clearinghouse_id="s-1") == 1
    assert await repo.record_attempt(t, check_id, http_status=503, error="STEDI_UNAVAILABLE") == 2
    assert await repo.record_attempt(t, check_id, http_status=200, clearinghouse_id="s-3", trace_id="tr-3") == 3
    got = await repo.get(t, check_id)
    assert got is not None
    assert got.attempts == 3 and got.clearinghouse_id == "s-3" and got.trace_id == "tr-3"
    assert got.version == 1  # attempts are not status changes: watchers are not woken
    attempts = await repo.attempts(t, check_id)
    assert [a.attempt_no for a in attempts] == [1, 2, 3]
    assert attempts[0].aaa_codes == ("42",) and attempts[0].clearinghouse_id == "s-1"
    assert attempts[1].aaa_codes == () and attempts[1].error == "STEDI_UNAVAILABLE"
    assert all(a.at.tzinfo is not None for a in attempts)

    assert await repo.complete(t, check_id, Completion(CheckStatus.FAILED, failure_reason="PAYER_UNAVAILABLE (AAA 42)"))
    assert await repo.record_attempt(t, check_id, http_status=200) is None  # too late, nothing changes
    assert len(await repo.attempts(t, check_id)) == 3


async def test_status_version_tracks_status_changes(repo: EligibilityRepository) -> None:
    t = new_tenant()
    check_id = await _create(repo, t)
    assert await repo.status_version(t, check_id) == 1
    await repo.complete(t, check_id, Completion(CheckStatus.VERIFIED, summary=SUMMARY))
    assert await repo.status_version(t, check_id) == 2
    assert await repo.status_version(t, "no-such-id") is None


async def test_tenant_isolation(repo: EligibilityRepository) -> None:
    mine, other = new_tenant(), new_tenant()
    check_id = await _create(repo, mine, policy_id="pol-1", patient_id="pat-1")
    await _create(repo, other, policy_id="pol-1", patient_id="pat-1")

    assert await repo.get(other, check_id) is None
    assert await repo.status_version(other, check_id) is None
    assert await repo.attempts(other, check_id) == []
    assert await repo.record_attempt(other, check_id, http_status=200) is None
    assert not await repo.complete(other, check_id, Completion(CheckStatus.VERIFIED, summary=SUMMARY))

    mine_list, _ = await repo.list(mine, policy_id="pol-1")
    assert [r.id for r in mine_list] == [check_id]
    other_list, _ = await repo.list(other, policy_id="pol-1")
    assert check_id not in {r.id for r in other_list} and len(other_list) == 1
    assert (await repo.list(new_tenant()))[0] == []

    stats = await repo.stats(mine)
    assert stats.pending == 1 and stats.total == 1
    assert (await repo.stats(new_tenant())).total == 0

    got = await repo.get(mine, check_id)
    assert got is not None and got.status is CheckStatus.PENDING and got.attempts == 0


async def test_list_filters_and_order(repo: EligibilityRepository) -> None:
    t = new_tenant()
    ids = [await _create(repo, t, policy_id=f"pol-{i % 2}", patient_id=f"pat-{i % 3}") for i in range(6)]
    await repo.complete(t, ids[0], Completion(CheckStatus.VERIFIED, summary=SUMMARY))
    await repo.complete(t, ids[3], Completion(CheckStatus.FAILED, failure_reason="X"))

    everything, token = await repo.list(t)
    assert [r.id for r in everything] == ids[::-1] and token is None
    assert all(r.response is None or r.response.raw is None for r in everything)  # raw only when asked

    by_policy, _ = await repo.list(t, policy_id="pol-1")
    assert [r.id for r in by_policy] == [ids[5], ids[3], ids[1]]
    by_patient, _ = await repo.list(t, patient_id="pat-0")
    assert [r.id for r in by_patient] == [ids[3], ids[0]]
    pending, _ = await repo.list(t, status=CheckStatus.PENDING)
    assert {r.id for r in pending} == set(ids) - {ids[0], ids[3]}
    both, _ = await repo.list(t, policy_id="pol-1", status=CheckStatus.FAILED)
    assert [r.id for r in both] == [ids[3]]
    verified, _ = await repo.list(t, status=CheckStatus.VERIFIED)
    assert verified[0].response is not None and verified[0].response.summary is not None


async def test_pagination_without_duplicates_or_gaps_under_concurrent_inserts(repo: EligibilityRepository) -> None:
    t = new_tenant()
    before = [await _create(repo, t, policy_id="pol") for _ in range(23)]
    seen: list[str] = []
    token: str | None = None
    inserted_later: list[str] = []
    while True:
        # Another writer inserts checks while the pages are being fetched.
        inserting = asyncio.gather(*(_create(repo, t, policy_id="pol") for _ in range(2)))
        page, token = await repo.list(t, policy_id="pol", page_size=4, page_token=token)
        inserted_later.extend(await inserting)
        seen.extend(r.id for r in page)
        assert len(page) <= 4
        if token is None:
            break
    assert len(seen) == len(set(seen)), "duplicates across pages"
    # Every check that existed before the first page is there, newest first; checks inserted meanwhile are
    # either absent or (if committed before the first page) before the old ones.
    old_part = [i for i in seen if i in set(before)]
    assert old_part == before[::-1]
    assert set(seen) <= set(before) | set(inserted_later)


async def test_pagination_with_equal_timestamps(engine: AsyncEngine) -> None:
    """Rows with the same requested_at are ordered by id and never skipped at a page boundary."""
    frozen = FakeClock(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
    repo = EligibilityRepository(engine, page_token_secret=SECRET, sealer=SEALER, clock=frozen)
    t = new_tenant()
    ids = [await _create(repo, t) for _ in range(10)]
    seen: list[str] = []
    token: str | None = None
    while True:
        page, token = await repo.list(t, page_size=3, page_token=token)
        seen.extend(r.id for r in page)
        if token is None:
            break
    assert seen == sorted(ids, reverse=True)


async def test_page_size_default_and_maximum(repo: EligibilityRepository) -> None:
    t = new_tenant()
    for _ in range(3):
        await _create(repo, t)
    page, token = await repo.list(t, page_size=0)
    assert len(page) == 3 and token is None
    page, token = await repo.list(t, page_size=2)
    assert len(page) == 2 and token is not None
    page, _ = await repo.list(t, page_size=10_000)  # clamped to 500, not an error
    assert len(page) == 3
    with pytest.raises(ValueError):
        await repo.list(t, page_size=-1)


async def test_page_tokens_are_tamper_evident_and_bound_to_filters(
    repo: EligibilityRepository, engine: AsyncEngine
) -> None:
    t = new_tenant()
    for i in range(4):
        await _create(repo, t, policy_id="pol-1", patient_id="PATIENT-SECRET-ID")
    _, token = await repo.list(t, policy_id="pol-1", patient_id="PATIENT-SECRET-ID", page_size=2)
    assert token is not None
    # The token reveals no filter values.
    body = token.split(".")[0]
    assert b"PATIENT-SECRET-ID" not in base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    ok, _ = await repo.list(t, policy_id="pol-1", patient_id="PATIENT-SECRET-ID", page_size=2, page_token=token)
    assert len(ok) == 2

    body, sig = token.split(".")
    flipped_sig = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    forged_body = base64.urlsafe_b64encode(b'{"v":1,"t":"2999-01-01T00:00:00+00:00","i":"zzz"}').rstrip(b"=")
    bad_tokens = [
        "garbage",
        "",
        "a.b.c",
        f"{body}.{flipped_sig}",
        f"{forged_body.decode()}.{sig}",
        f"{body[:-1]}.{sig}",
        token + "x" * 600,
    ]
    for bad in bad_tokens:
        if not bad:
            continue  # an empty token means the first page
        with pytest.raises(InvalidPageToken):
            await repo.list(t, policy_id="pol-1", patient_id="PATIENT-SECRET-ID", page_token=bad)

    other_filters: list[dict[str, Any]] = [
        {"policy_id": "pol-2", "patient_id": "PATIENT-SECRET-ID"},
        {"policy_id": "pol-1", "patient_id": None},
        {"policy_id": None, "patient_id": "PATIENT-SECRET-ID"},
        {"policy_id": "pol-1", "patient_id": "PATIENT-SECRET-ID", "status": CheckStatus.PENDING},
    ]
    for filters in other_filters:
        with pytest.raises(InvalidPageToken):
            await repo.list(t, page_token=token, **filters)
    with pytest.raises(InvalidPageToken):  # another tenant cannot replay it
        await repo.list(new_tenant(), policy_id="pol-1", patient_id="PATIENT-SECRET-ID", page_token=token)
    other_secret = EligibilityRepository(engine, page_token_secret=b"another-secret-of-32-bytes-long!", sealer=SEALER)
    with pytest.raises(InvalidPageToken):
        await other_secret.list(t, policy_id="pol-1", patient_id="PATIENT-SECRET-ID", page_token=token)


async def test_stats(repo: EligibilityRepository) -> None:
    t = new_tenant()
    a = [await _create(repo, t, policy_id="pol-a") for _ in range(4)]
    b = [await _create(repo, t, policy_id="pol-b") for _ in range(3)]
    await repo.complete(t, a[0], Completion(CheckStatus.VERIFIED, summary=SUMMARY))
    await repo.complete(t, a[1], Completion(CheckStatus.VERIFIED, summary=SUMMARY))
    await repo.complete(t, a[2], Completion(CheckStatus.NOT_FOUND, raw={"errors": [{"code": "75"}]}))
    await repo.complete(t, b[0], Completion(CheckStatus.FAILED, failure_reason="STEDI_UNAVAILABLE"))

    overall = await repo.stats(t)
    assert (overall.pending, overall.verified, overall.not_found, overall.failed, overall.expired) == (3, 2, 1, 1, 0)
    assert overall.total == 7
    last_b = await repo.get(t, b[-1])
    completed_b0 = await repo.get(t, b[0])
    assert last_b is not None and completed_b0 is not None
    assert overall.last_requested_at == last_b.requested_at
    assert overall.last_completed_at == completed_b0.completed_at

    per_a = await repo.stats(t, policy_id="pol-a")
    assert per_a.by_status() == {
        CheckStatus.PENDING: 1,
        CheckStatus.VERIFIED: 2,
        CheckStatus.FAILED: 0,
        CheckStatus.NOT_FOUND: 1,
        CheckStatus.EXPIRED: 0,
    }
    last_a = await repo.get(t, a[-1])
    assert last_a is not None and per_a.last_requested_at == last_a.requested_at
    empty = await repo.stats(t, policy_id="pol-none")
    assert empty.total == 0 and empty.last_requested_at is None and empty.last_completed_at is None


async def test_stale_results_read_as_expired(engine: AsyncEngine) -> None:
    clock = FakeClock()
    repo = EligibilityRepository(engine, page_token_secret=SECRET, sealer=SEALER, clock=clock, freshness=timedelta(days=30))
    t = new_tenant()
    verified = await _create(repo, t)
    failed = await _create(repo, t)
    await repo.complete(t, verified, Completion(CheckStatus.VERIFIED, summary=SUMMARY))
    await repo.complete(t, failed, Completion(CheckStatus.FAILED, failure_reason="X"))
    fresh = await _create(repo, t)
    assert (await repo.stats(t)).verified == 1

    clock.advance(days=31)
    recent = await _create(repo, t)
    await repo.complete(t, recent, Completion(CheckStatus.VERIFIED, summary=SUMMARY))
    got = await repo.get(t, verified)
    assert got is not None and got.status is CheckStatus.EXPIRED and got.response is not None
    failed_rec = await repo.get(t, failed)
    assert failed_rec is not None and failed_rec.status is CheckStatus.FAILED  # no answer to go stale
    fresh_rec = await repo.get(t, fresh)
    assert fresh_rec is not None and fresh_rec.status is CheckStatus.PENDING

    assert [r.id for r in (await repo.list(t, status=CheckStatus.EXPIRED))[0]] == [verified]
    assert [r.id for r in (await repo.list(t, status=CheckStatus.VERIFIED))[0]] == [recent]
    stats = await repo.stats(t)
    assert (stats.expired, stats.verified, stats.failed, stats.pending) == (1, 1, 1, 1)


async def test_naive_datetimes_are_refused(repo: EligibilityRepository) -> None:
    t = new_tenant()
    with pytest.raises(ValueError):
        await repo.create_pending(
            t, payer_id="SBX01", request_payload=PAYLOAD, mode=CheckMode.ASYNC, next_attempt_at=datetime(2026, 1, 1)
        )
    check_id = await _create(repo, t)
    with pytest.raises(ValueError):
        await repo.reschedule(check_id, datetime(2026, 1, 1))


async def test_payload_never_in_database_errors(repo: EligibilityRepository) -> None:
    """A failing statement's message carries no parameters (they may hold PHI)."""
    t = new_tenant()
    check_id = await _create(repo, t)
    with pytest.raises(Exception) as excinfo:
        await repo.create_pending(t, payer_id="SBX01", request_payload=PAYLOAD, check_id=check_id)
    assert "JANE" not in str(excinfo.value) and "M123" not in str(excinfo.value)


async def test_rows_are_stored_in_utc(repo: EligibilityRepository, engine: AsyncEngine) -> None:
    t = new_tenant()
    check_id = await _create(repo, t)
    async with engine.connect() as conn:
        stored = (
            await conn.execute(select(eligibility_requests.c.requested_at).where(eligibility_requests.c.id == check_id))
        ).scalar_one()
    assert stored.tzinfo == UTC
