"""The eligibility backlog, for metrics: how many checks are PENDING, and since when the longest-waiting due one
waits for a worker (submitted, its next attempt time passed, no live lease).

Two aggregates over the partial indexes of PENDING rows, across tenants: they read no member data and no sealed
column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .records import CheckMode, CheckStatus
from .tables import eligibility_requests


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_due_at: datetime | None  # when the longest-waiting unclaimed due check became due; None: none waits


async def pending_backlog(engine: AsyncEngine) -> Backlog:
    req = eligibility_requests.c
    now = datetime.now(UTC)
    pending = req.status == CheckStatus.PENDING.value
    count = select(func.count()).where(pending)
    oldest_due = select(func.min(req.next_attempt_at)).where(
        pending,
        req.mode == CheckMode.ASYNC.value,
        req.next_attempt_at <= now,
        or_(req.lease_until.is_(None), req.lease_until <= now),
    )
    async with engine.connect() as conn:
        n = (await conn.execute(count)).scalar_one()
        due_at = (await conn.execute(oldest_due)).scalar_one()
    return Backlog(int(n), due_at)
