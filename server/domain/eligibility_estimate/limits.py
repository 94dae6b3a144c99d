"""D8: benefit limits (EB `F`) of the chosen STC in the network, from `summary.service_lines`.

Counter = quantity qualifier VS (visits) or P6 (services) with a quantity; dollar = an amount and no quantity
qualifier; anything else, or a time qualifier outside 29 / 23·22·25·21 / 24, is not modelled. Counters win over
dollars. Per level (IND/EMP/none individual, FAM family): the remaining (29) values (several -> smallest point,
others alternatives); else total − used (24); else the total with "used up" as the alternative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from server.domain.costshare import Level, LimitType
from server.domain.eligibility.summary import ServiceLine, ServiceLineKind
from server.domain.money import ZERO, is_whole_cents, to_cents

from .accumulators import LevelValues
from .assumptions import Assumptions
from .network import serves

COUNTER_QUALIFIERS: Final = frozenset({"VS", "P6"})
REMAINING: Final = "29"
TOTALS: Final = ("23", "22", "25", "21")
USED: Final = "24"
MODELLED_PERIODS: Final = frozenset({REMAINING, *TOTALS, USED})
FAMILY: Final = "FAM"


@dataclass(frozen=True, slots=True)
class Limits:
    limit_type: LimitType
    levels: tuple[LevelValues, ...]


def _value(line: ServiceLine, limit_type: LimitType) -> Decimal:
    if limit_type is LimitType.COUNTER:
        assert line.quantity is not None
        return max(line.quantity, ZERO).to_integral_value(ROUND_FLOOR)
    assert line.amount is not None
    amount = max(line.amount, ZERO)
    return amount if is_whole_cents(amount) else to_cents(amount)


def _level(
    level: Level, lines: Sequence[ServiceLine], limit_type: LimitType, flags: Assumptions
) -> LevelValues | None:
    by_period: dict[str, list[Decimal]] = {}
    for line in lines:
        by_period.setdefault(line.time_qualifier_code or "", []).append(_value(line, limit_type))
    refs = tuple(line.source_ref for line in lines)
    total_period = next((p for p in TOTALS if p in by_period), None)
    totals = sorted(set(by_period.get(total_period, []))) if total_period else []
    if REMAINING in by_period:
        values = sorted(set(by_period[REMAINING]))
        if len(values) > 1:
            flags.add("AMBIGUOUS_LIMIT", f"{level.value}: {', '.join(format(v, 'f') for v in values)}", refs)
        return LevelValues(level, tuple(values), totals[0] if totals else None, refs)
    if totals and USED in by_period:
        if len(totals) > 1 or len(set(by_period[USED])) > 1:
            flags.add("AMBIGUOUS_LIMIT", f"{level.value}: several totals or used values", refs)
        return LevelValues(level, (max(totals[0] - max(by_period[USED]), ZERO),), totals[0], refs)
    if not totals:  # only a used (24) value: no limit to apply it to
        flags.add("LIMITATION_NOT_MODELLED", f"{level.value}: no total or remaining", refs)
        return None
    if len(totals) > 1:
        flags.add("AMBIGUOUS_LIMIT", f"{level.value}: totals {', '.join(format(v, 'f') for v in totals)}", refs)
    flags.add("LIMIT_REMAINING_NOT_SENT", f"{level.value} limit {totals[0]}", refs)
    return LevelValues(level, (totals[0], ZERO) if totals[0] else (totals[0],), totals[0], refs)


def limits(lines: Sequence[ServiceLine], stc: str, network: str, flags: Assumptions) -> Limits | None:
    """The limit accumulators of the service in the network, or None when nothing modellable was sent."""
    counters: list[ServiceLine] = []
    dollars: list[ServiceLine] = []
    for line in lines:
        if line.kind is not ServiceLineKind.LIMITATION or stc not in line.service_type_codes:
            continue
        if not serves(line.network_code, network):
            continue
        modelled_period = (line.time_qualifier_code or "") in MODELLED_PERIODS
        if modelled_period and line.quantity_qualifier_code in COUNTER_QUALIFIERS and line.quantity is not None:
            counters.append(line)
        elif modelled_period and line.amount is not None and line.quantity_qualifier_code is None:
            dollars.append(line)
        else:
            flags.add("LIMITATION_NOT_MODELLED", f"entry {line.source_ref}", (line.source_ref,))
    if counters and dollars:
        for line in dollars:
            flags.add("LIMITATION_NOT_MODELLED", f"dollar limit in entry {line.source_ref}", (line.source_ref,))
    chosen, limit_type = (counters, LimitType.COUNTER) if counters else (dollars, LimitType.DOLLAR)
    if not chosen:
        return None
    family = [line for line in chosen if line.coverage_level_code == FAMILY]
    individual = [line for line in chosen if line.coverage_level_code != FAMILY]
    found = tuple(values for level, group in ((Level.INDIVIDUAL, individual), (Level.FAMILY, family)) if group
                  if (values := _level(level, group, limit_type, flags)) is not None)
    return Limits(limit_type, found) if found else None
