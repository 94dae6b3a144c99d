"""The eligibility backlog, for metrics: how many checks are PENDING and since when the oldest waits.

One aggregate over the partial index of PENDING rows (`ix_eligibility_requests_pending_requested`), across tenants:
it reads no member data and no sealed column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .records import CheckStatus
from .tables import eligibility_requests


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_requested_at: datetime | None  # None when nothing is pending


async def pending_backlog(engine: AsyncEngine) -> Backlog:
    req = eligibility_requests.c
    stmt = select(func.count(), func.min(req.requested_at)).where(req.status == CheckStatus.PENDING.value)
    async with engine.connect() as conn:
        row = (await conn.execute(stmt)).one()
    return Backlog(int(row[0]), row[1])
