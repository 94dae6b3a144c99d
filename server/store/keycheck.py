"""The start-up check of the data keys against the database, so a wrong key stops the start, not a later read.

`data_keys` holds, per key id that has sealed rows here, a known value sealed under that key. At start:
* every configured key whose id is registered must open its check value (else: wrong key for that id);
* when the database knows key ids and none of them is configured, the keyring is not this database's (a new or
  replaced key): refuse rather than seal new rows under a key the old rows do not share;
* the current key is registered (first start, or a key just added for rotation).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import writer
from .errors import DataKeyError, SealedDataError
from .sealing import RowRef, Sealer
from .tables import data_keys

_CHECK_VALUE = {"costest": "data key check"}
_HINT = "set COSTEST_DATA_KEY / COSTEST_DATA_KEY_FILE to this database's keys (README: data keys and rotation)"


def _ref(key_id: str) -> RowRef:
    return RowRef(data_keys.name, "check_value", "", key_id)


async def registered_key_ids(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(data_keys.c.key_id, data_keys.c.check_value))).all()
    return {row.key_id: row.check_value for row in rows}


async def verify_data_keys(engine: AsyncEngine, sealer: Sealer) -> None:
    """Raise `DataKeyError` (naming key ids only) unless the keyring fits the database; register the current key."""
    for _ in range(2):  # a concurrent start may register the same key id between our read and our insert
        known = await registered_key_ids(engine)
        configured = [key_id for key_id in sealer.keyring.ids if key_id in known]
        for key_id in configured:
            try:
                opened = sealer.open(known[key_id], key_id, _ref(key_id))
            except SealedDataError:
                raise DataKeyError(f"the configured data key with id {key_id!r} is not the key that sealed this "
                                   f"database's rows under that id (wrong key); {_HINT}") from None
            if opened != _CHECK_VALUE:
                raise DataKeyError(f"data key check for id {key_id!r} holds an unexpected value")
        if known and not configured:
            shown = ", ".join(sorted(known)[:5])
            raise DataKeyError(f"none of the configured data key ids ({', '.join(sealer.keyring.ids)}) has sealed "
                               f"this database, which holds rows sealed under key ids {shown}; {_HINT}")
        if sealer.key_id in known:
            return
        try:
            async with writer(engine).begin() as conn:
                await conn.execute(insert(data_keys).values(
                    key_id=sealer.key_id,
                    check_value=sealer.seal(_CHECK_VALUE, _ref(sealer.key_id)),
                    created_at=datetime.now(UTC),
                ))
            return
        except IntegrityError:
            continue
    raise DataKeyError("could not register the current data key (concurrent starts kept conflicting)")
