"""D7: the member's deductible and out-of-pocket accumulators of one network, from the plan-level buckets.

| bucket of a level            | chain value (point)           | alternative | flag                          |
|------------------------------|-------------------------------|-------------|-------------------------------|
| remaining present            | remaining (≥ 0, cents)        | —           | (AMOUNT_ROUNDED if sub-cent)  |
| no remaining, total present  | total (nothing met yet)       | 0           | <KIND>_REMAINING_NOT_SENT     |
| null / neither number        | level absent                  | —           | —                             |
Both levels absent: deductible -> none (high end: an individual deductible equal to the allowed amount,
DEDUCTIBLE_NOT_SENT); out-of-pocket -> no cap (OUT_OF_POCKET_NOT_SENT). The buckets' own flags -> ACCUMULATOR_FLAGGED.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from server.domain.costshare import Level
from server.domain.eligibility.summary import Accumulator, Bucket
from server.domain.money import ZERO, is_whole_cents, to_cents

from .assumptions import Assumptions
from .network import IN


#: A deductible "equal to the allowed amount" (none sent): a marker the readings replace by each provider's amount.
ALLOWED: Final = Decimal("-1")


@dataclass(frozen=True, slots=True)
class LevelValues:
    """One accumulator level: remaining values, point first (None = the level is absent in that reading)."""

    level: Level
    values: tuple[Decimal | None, ...]
    total: Decimal | None
    source_refs: tuple[int, ...]


#: (summary attribute, chain code, flag prefix)
DEDUCTIBLE: Final = ("deductible", "Deductible", "DEDUCTIBLE")
OUT_OF_POCKET: Final = ("out_of_pocket", "OOP Max", "OUT_OF_POCKET")


def _cents(value: Decimal, what: str, refs: tuple[int, ...], flags: Assumptions) -> Decimal:
    if is_whole_cents(value):
        return value
    flags.add("AMOUNT_ROUNDED", what, refs)
    return to_cents(value)


def _level(level: Level, bucket: Bucket | None, prefix: str, flags: Assumptions) -> LevelValues | None:
    if bucket is None or (bucket.remaining is None and bucket.total is None):
        return None
    refs = bucket.source_refs
    if bucket.flags:
        flags.add("ACCUMULATOR_FLAGGED", f"{prefix.lower()} {level.value}: {', '.join(bucket.flags)}", refs)
    total = None if bucket.total is None else _cents(max(bucket.total, ZERO), f"{prefix.lower()} total", refs, flags)
    if bucket.remaining is not None:
        remaining = _cents(max(bucket.remaining, ZERO), f"{prefix.lower()} remaining", refs, flags)
        return LevelValues(level, (remaining,), total, refs)
    assert total is not None
    flags.add(f"{prefix}_REMAINING_NOT_SENT", f"{level.value} total {total}", refs)
    return LevelValues(level, (total, ZERO) if total else (total,), total, refs)


def levels(accumulator: Accumulator, network: str, prefix: str, flags: Assumptions) -> tuple[LevelValues, ...]:
    """The present levels of one accumulator kind in the network (flags raised into `flags`)."""
    found = []
    for level, buckets in ((Level.INDIVIDUAL, accumulator.individual), (Level.FAMILY, accumulator.family)):
        bucket = buckets.in_network if network == IN else buckets.out_of_network
        values = _level(level, bucket, prefix, flags)
        if values is not None:
            found.append(values)
    return tuple(found)


def deductible_known_met(found: tuple[LevelValues, ...]) -> bool:
    """Some level is known to be 0 (met): both treatments then give the same answer."""
    return any(len(lv.values) == 1 and lv.values[0] == 0 for lv in found)


def missing_deductible() -> tuple[LevelValues, ...]:
    """No deductible sent: none at the point; the high end an individual deductible equal to the allowed amount
    (`ALLOWED`, replaced per provider)."""
    return (LevelValues(Level.INDIVIDUAL, (None, ALLOWED), None, ()),)
