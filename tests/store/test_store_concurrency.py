"""Load on both backends: 200 checks created, attempted and completed at once must all land, without
"database is locked" on SQLite (WAL + busy timeout + BEGIN IMMEDIATE + short transactions)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from server.store import CheckMode, CheckStatus, Completion, EligibilityRepository
from tests.store.helpers import SEALER, SECRET, new_tenant

CHECKS = 200


async def _one_check(repo: EligibilityRepository, tenant: str, n: int) -> bool:
    record = await repo.create_pending(
        tenant,
        payer_id="SBX01",
        policy_id=f"pol-{n % 10}",
        patient_id=f"pat-{n}",
        request_payload={"subscriber": {"memberId": f"M{n}"}, "n": n},
        mode=CheckMode.SYNC if n % 2 else CheckMode.ASYNC,
    )
    await repo.record_attempt(tenant, record.id, http_status=200, clearinghouse_id=f"s-{n}")
    await asyncio.sleep(0)  # the clearinghouse call would be here, outside any transaction
    return await repo.complete(
        tenant,
        record.id,
        Completion(
            CheckStatus.VERIFIED,
            raw={"id": f"s-{n}", "benefitsInformation": [{"code": "1"}]},
            summary={"active": True, "n": n},
            http_status=200,
        ),
    )


@pytest.mark.slow
async def test_200_concurrent_checks_one_engine(repo: EligibilityRepository) -> None:
    t = new_tenant()
    results = await asyncio.gather(*(_one_check(repo, t, n) for n in range(CHECKS)))
    assert all(results)
    stats = await repo.stats(t)
    assert stats.verified == CHECKS and stats.total == CHECKS
    seen: set[str] = set()
    token: str | None = None
    while True:
        page, token = await repo.list(t, page_size=500, page_token=token)
        seen.update(r.id for r in page)
        assert all(r.attempts == 1 and r.response is not None for r in page)
        if token is None:
            break
    assert len(seen) == CHECKS


@pytest.mark.slow
async def test_200_concurrent_checks_two_engines_with_readers(
    engine: AsyncEngine, make_engine: Callable[[], AsyncEngine]
) -> None:
    """Two engines (two processes) write while a third keeps reading history and stats."""
    repos = [
        EligibilityRepository(engine, page_token_secret=SECRET, sealer=SEALER),
        EligibilityRepository(make_engine(), page_token_secret=SECRET, sealer=SEALER),
    ]
    reader = EligibilityRepository(make_engine(), page_token_secret=SECRET, sealer=SEALER)
    t = new_tenant()
    done = asyncio.Event()

    async def keep_reading() -> int:
        reads = 0
        while not done.is_set():
            await reader.list(t, page_size=50)
            await reader.stats(t)
            reads += 1
            await asyncio.sleep(0.005)
        return reads

    reading = asyncio.create_task(keep_reading())
    try:
        results = await asyncio.gather(*(_one_check(repos[n % 2], t, n) for n in range(CHECKS)))
    finally:
        done.set()
    assert await reading > 0
    assert all(results)
    assert (await reader.stats(t)).verified == CHECKS
