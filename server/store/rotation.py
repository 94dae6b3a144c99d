"""Re-sealing rows under the current data key: key rotation, and sealing rows written before sealing existed.

Batches of `batch_size` rows in id order, each batch in its own short transaction (rows locked on PostgreSQL),
so a running server keeps serving. A row is re-sealed only if it is still under the key it was read with, and
rows already under the current key are never touched: the run is idempotent, and an interrupted run resumes
where it stopped when started again. Rows whose key is not configured stop the run with `SealedDataError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .engine import writer
from .sealed_columns import RAW_COLUMN, SUMMARY_COLUMN, request_ref, response_ref
from .sealing import ENVELOPE_PREFIX, RowRef, Sealer
from .tables import data_keys
from .tables import eligibility_requests as req
from .tables import eligibility_responses as resp

DEFAULT_BATCH = 500
Progress = Callable[[str, int], None]


@dataclass
class RotationReport:
    requests: int = 0
    responses: int = 0
    plaintext: int = 0  # of those, rows that had never been sealed
    retired: list[str] = field(default_factory=list)  # key ids no row uses any more (dropped from data_keys)


def _open_or_plain(sealer: Sealer, stored: Any, key_id: str | None, where: RowRef) -> tuple[Any, bool]:
    """The row's value, and whether it was plain text (written before sealing existed)."""
    if stored is None:
        return None, False
    if key_id is None and not (isinstance(stored, str) and stored.startswith(ENVELOPE_PREFIX)):
        return stored, True
    return sealer.open(stored, key_id, where), False


def _same_key(column: ColumnElement[Any], key_id: str | None) -> ColumnElement[bool]:
    return column.is_(None) if key_id is None else column == key_id


def _stale(column: ColumnElement[Any], sealer: Sealer, only_plaintext: bool) -> ColumnElement[bool]:
    if only_plaintext:
        return column.is_(None)
    return or_(column.is_(None), column != sealer.key_id)


async def _request_batch(conn: AsyncConnection, sealer: Sealer, after: str, size: int, only_plain: bool,
                         report: RotationReport) -> str | None:
    rows = (await conn.execute(
        select(req.c.id, req.c.tenant_id, req.c.request_payload, req.c.data_key_id)
        .where(req.c.id > after, _stale(req.c.data_key_id, sealer, only_plain))
        .order_by(req.c.id).limit(size).with_for_update()
    )).all()
    for row in rows:
        where = request_ref(row.tenant_id, row.id)
        value, plain = _open_or_plain(sealer, row.request_payload, row.data_key_id, where)
        result = await conn.execute(
            update(req)
            .where(req.c.id == row.id, _same_key(req.c.data_key_id, row.data_key_id))
            .values(request_payload=sealer.seal(value, where), data_key_id=sealer.key_id)
        )
        report.requests += result.rowcount
        report.plaintext += result.rowcount if plain else 0
    return rows[-1].id if len(rows) == size else None


async def _response_batch(conn: AsyncConnection, sealer: Sealer, after: str, size: int, only_plain: bool,
                          report: RotationReport) -> str | None:
    sealed_columns = or_(resp.c.raw_payload.is_not(None), resp.c.normalized_summary.is_not(None))
    rows = (await conn.execute(
        select(resp.c.request_id, req.c.tenant_id, resp.c.raw_payload, resp.c.normalized_summary,
               resp.c.data_key_id)
        .join(req, req.c.id == resp.c.request_id)
        .where(resp.c.request_id > after, _stale(resp.c.data_key_id, sealer, only_plain), sealed_columns)
        .order_by(resp.c.request_id).limit(size).with_for_update(of=resp)
    )).all()
    for row in rows:
        changes: dict[str, Any] = {"data_key_id": sealer.key_id}
        plain_any = False
        for column, stored in ((RAW_COLUMN, row.raw_payload), (SUMMARY_COLUMN, row.normalized_summary)):
            where = response_ref(row.tenant_id, row.request_id, column)
            value, plain = _open_or_plain(sealer, stored, row.data_key_id, where)
            changes[column] = None if value is None else sealer.seal(value, where)
            plain_any = plain_any or plain
        result = await conn.execute(
            update(resp)
            .where(resp.c.request_id == row.request_id, _same_key(resp.c.data_key_id, row.data_key_id))
            .values(**changes)
        )
        report.responses += result.rowcount
        report.plaintext += result.rowcount if plain_any else 0
    return rows[-1].request_id if len(rows) == size else None


async def has_plaintext_rows(engine: AsyncEngine) -> bool:
    """Rows written before sealing existed (their key id is NULL and they carry a value)."""
    stmt = select(or_(
        exists().where(req.c.data_key_id.is_(None)),
        exists().where(resp.c.data_key_id.is_(None), or_(resp.c.raw_payload.is_not(None),
                                                         resp.c.normalized_summary.is_not(None))),
    ))
    async with engine.connect() as conn:
        return bool((await conn.execute(stmt)).scalar())


async def reseal(
    engine: AsyncEngine,
    sealer: Sealer,
    *,
    batch_size: int = DEFAULT_BATCH,
    only_plaintext: bool = False,
    progress: Progress | None = None,
) -> RotationReport:
    """Re-seal every row not under the current key (only never-sealed rows with `only_plaintext`)."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    report = RotationReport()
    write = writer(engine)
    for name, batch in (("eligibility_requests", _request_batch), ("eligibility_responses", _response_batch)):
        after: str | None = ""
        while after is not None:
            async with write.begin() as conn:
                after = await batch(conn, sealer, after, batch_size, only_plaintext, report)
            if progress is not None:
                progress(name, report.requests if name == "eligibility_requests" else report.responses)
    if not only_plaintext:
        report.retired = await _retire_unused_keys(engine, sealer)
    return report


async def _retire_unused_keys(engine: AsyncEngine, sealer: Sealer) -> list[str]:
    """Forget the check values of key ids no row is sealed under any more (the key may then be removed)."""
    unused = and_(
        data_keys.c.key_id != sealer.key_id,
        ~exists().where(req.c.data_key_id == data_keys.c.key_id),
        ~exists().where(resp.c.data_key_id == data_keys.c.key_id),
    )
    async with writer(engine).begin() as conn:
        retired = list((await conn.execute(select(data_keys.c.key_id).where(unused))).scalars())
        if retired:
            await conn.execute(delete(data_keys).where(data_keys.c.key_id.in_(retired)))
    return sorted(retired)


__all__ = ["DEFAULT_BATCH", "RotationReport", "has_plaintext_rows", "reseal"]
