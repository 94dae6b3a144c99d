"""Which accumulators a coverage uses (§1.3) and what is left on each (§1.4).

A member's accumulator answer is normalised once into :class:`MemberAccumulators` (codes, levels, networks,
remainders) and can then serve every coverage and every provider of a request: ``Estimate`` reads one answer
per member and runs the chain once per provider. Refusals (§1.1: bad level, bad or mixed limit types, money
finer than a cent) are raised before any handler runs, so a refused request is never partly computed. A value
problem on an accumulator is only raised when a coverage actually selects it: unrelated accumulators are
ignored (§1.3), whatever they hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from server.domain.costshare.inputs import (
    IN_NETWORK,
    AccumKind,
    Coverage,
    Level,
    LimitType,
    MemberAccumulator,
    RelatedAccumulator,
    parse_code,
    parse_level,
    parse_limit_type,
    parse_network,
)
from server.domain.errors import InvalidInput
from server.domain.money import ZERO, exact_cents, parse_decimal, parse_money

_COUNTER_ZERO: Final = Decimal(0)
_MEMO_LIMIT: Final = 512
_UNSEEN: Final = object()

_Key = tuple[AccumKind, Level, str]


@dataclass(slots=True)
class Selected:
    """One member accumulator, normalised: its §1.3 key and its §1.4 remaining value (None = unknown).

    ``problem`` holds a refusal (field, message) that is raised only if a coverage selects this accumulator.
    """

    kind: AccumKind
    level: Level
    network: str
    index: int
    source: MemberAccumulator
    limit_type: LimitType | None
    remaining: Decimal | None
    limit_value: Decimal | None
    current_value: Decimal | None
    problem: tuple[str, str] | None
    clamped: bool = False
    """The payer's remaining was negative and was clamped to 0 (§1.4): reported as a warning, never silent."""


@dataclass(slots=True)
class Selection:
    accumulators: list[Selected]
    limit_type: LimitType | None
    family_met_by_count: bool
    missing: tuple[str, ...] = ()
    """Related entries the answer has no accumulator for (absent per §1.3), as warnings for the result."""


class MemberAccumulators:
    """A member's accumulator answer, indexed once by (code, level, network).

    Each accumulator is normalised (§1.4) the first time a coverage selects it and remembered, so one answer
    can serve every coverage and provider of a request. Nothing observable ever changes: sharing it between
    tasks is safe (two threads racing would only compute the same entry twice).
    """

    __slots__ = ("source", "_keys", "_index", "_normalised")

    def __init__(self, accumulators: Sequence[MemberAccumulator]) -> None:
        self.source: tuple[MemberAccumulator, ...] = tuple(accumulators)
        self._keys: list[_Key | None] = [_member_key(acc, i) for i, acc in enumerate(self.source)]
        index: dict[_Key, list[int]] = {}
        for i, key in enumerate(self._keys):
            if key is not None:
                bucket = index.get(key)
                if bucket is None:
                    index[key] = [i]
                else:
                    bucket.append(i)
        self._index: dict[_Key, list[int]] = index
        self._normalised: dict[int, Selected] = {}

    def candidates(self, kind: AccumKind, level: Level, network: str) -> Sequence[int]:
        """Positions of the accumulators with this code, level and network, in answer order (read-only)."""
        return self._index.get((kind, level, network), ())

    def normalised(self, i: int) -> Selected:
        """The §1.4 view of candidate ``i`` (a position :meth:`candidates` returned)."""
        entry = self._normalised.get(i)
        if entry is None:
            key = self._keys[i]
            if key is None:
                raise ValueError(f"accumulator {i} has no code the chain models")
            entry = self._normalised[i] = _normalise(self.source[i], i, key)
        return entry


def _tag(value: str | None) -> str:
    """accumExCode / deductibleCode for comparison; blank means "no tie-breaker"."""
    return value.strip().upper() if value else ""


_key_cache: dict[tuple[str | None, str | None, str | None, str | None], _Key | None] = {}


def _member_key(acc: MemberAccumulator, index: int) -> _Key | None:
    """(kind, level, network) of a member accumulator; None for codes the chain does not model.

    Memoised on the four raw spellings, which repeat on every request; refusals are never memoised.
    """
    raw = (acc.code, acc.level, acc.network_indicator_code, acc.network_indicator)
    key = _key_cache.get(raw, _UNSEEN)
    if key is _UNSEEN:
        kind = parse_code(acc.code)
        if kind is None:
            key = None
        else:
            level = parse_level(acc.level, f"accumulators[{index}].level")
            network = parse_network(acc.network_indicator_code) or parse_network(acc.network_indicator) or IN_NETWORK
            key = (kind, level, network)
        if len(_key_cache) < _MEMO_LIMIT:
            _key_cache[raw] = key
    return key  # type: ignore[return-value]


_related_cache: dict[tuple[str | None, str | None, str | None], tuple[AccumKind, Level, str | None] | None] = {}


def _related_key(rel: RelatedAccumulator, position: int) -> tuple[AccumKind, Level, str | None] | None:
    """(kind, level, network or None = the benefit's) of a related entry; memoised like :func:`_member_key`."""
    raw = (rel.code, rel.level, rel.network_indicator_code)
    key = _related_cache.get(raw, _UNSEEN)
    if key is _UNSEEN:
        kind = parse_code(rel.code)
        if kind is None:
            key = None
        else:
            level = parse_level(rel.level, f"coverage.related_accumulators[{position}].level")
            key = (kind, level, parse_network(rel.network_indicator_code))
        if len(_related_cache) < _MEMO_LIMIT:
            _related_cache[raw] = key
    return key  # type: ignore[return-value]


def select(coverage: Coverage, accumulators: MemberAccumulators) -> Selection:
    """For each related entry, in order, the first unused matching member accumulator (§1.3)."""
    benefit_network = parse_network(coverage.network_category) or IN_NETWORK
    source = accumulators.source
    taken: set[tuple[AccumKind, Level]] = set()
    used: set[int] = set()
    chosen: list[Selected] = []
    unmatched: dict[tuple[AccumKind, Level], str] | None = None
    for r, rel in enumerate(coverage.related_accumulators):
        related_key = _related_key(rel, r)
        if related_key is None:
            continue
        kind, level, network = related_key
        if (kind, level) in taken:  # at most one accumulator per (code, level)
            continue
        candidates = accumulators.candidates(kind, level, network or benefit_network)
        if not candidates:
            unmatched = _note_unmatched(unmatched, r, kind, level, network or benefit_network)
            continue
        ex_tag = _tag(rel.accum_ex_code) if rel.accum_ex_code else ""
        ded_tag = _tag(rel.deductible_code) if rel.deductible_code else ""
        for i in candidates:
            if i in used:
                continue
            acc = source[i]
            if ex_tag and acc.accum_ex_code and _tag(acc.accum_ex_code) != ex_tag:  # tie-breakers only when
                continue  # both sides name one
            if ded_tag and acc.deductible_code and _tag(acc.deductible_code) != ded_tag:
                continue
            entry = accumulators.normalised(i)
            if entry.problem is not None:
                raise InvalidInput(*entry.problem)
            used.add(i)
            taken.add((kind, level))
            chosen.append(entry)
            break
        else:
            unmatched = _note_unmatched(unmatched, r, kind, level, network or benefit_network)
    missing = () if unmatched is None else tuple(m for key, m in unmatched.items() if key not in taken)
    return Selection(chosen, _common_limit_type(chosen), _met_by_count(chosen), missing)


def _note_unmatched(
    unmatched: dict[tuple[AccumKind, Level], str] | None, position: int, kind: AccumKind, level: Level, network: str
) -> dict[tuple[AccumKind, Level], str]:
    """Remember the first related entry of a (code, level) that found nothing; rare, so built only then."""
    found = {} if unmatched is None else unmatched
    found.setdefault((kind, level), f"coverage.related_accumulators[{position}] ({kind.value} {level.value}, "
                                    f"network {network}): not in the accumulators answer, treated as absent")
    return found


def _normalise(acc: MemberAccumulator, index: int, key: _Key) -> Selected:
    """§1.4: calculated value, else limit - current, else unknown; negatives clamp to 0, counters floor."""
    kind, level, network = key
    limit_type = parse_limit_type(acc.limit_type) if kind is AccumKind.LIMIT else LimitType.DOLLAR
    try:
        read = _dollars if limit_type is LimitType.DOLLAR else _number
        limit, current, calculated = acc.limit_value, acc.current_value, acc.calculated_value
        if limit is not None:
            limit = read(limit, "limit_value", index)
        if current is not None:
            current = read(current, "current_value", index)
        if calculated is not None:
            calculated = read(calculated, "calculated_value", index)
        met, needed = acc.num_of_individuals_met, acc.num_of_individuals_needed_to_meet
        if (met is not None and type(met) is not int) or (needed is not None and type(needed) is not int):
            _refuse_counts(acc, index)
    except InvalidInput as err:
        return Selected(kind, level, network, index, acc, limit_type, None, None, None, (err.field or "", err.message))

    remaining: Decimal | None
    if calculated is not None:
        remaining = calculated
    elif limit is not None:
        remaining = limit - (current if current is not None else ZERO)
    else:
        remaining = None
    problem = None
    clamped = False
    if remaining is not None:
        clamped = remaining < 0
        if limit_type is LimitType.COUNTER:
            remaining = max(remaining, _COUNTER_ZERO).to_integral_value(ROUND_FLOOR)
        elif remaining < 0:
            remaining = ZERO if limit_type is LimitType.DOLLAR else _COUNTER_ZERO
        if limit_type is None and remaining > 0:
            problem = (f"accumulators[{index}].limit_type",
                       f"a limit with remaining {remaining} must be Dollar or Counter, got {acc.limit_type!r}")
    return Selected(kind, level, network, index, acc, limit_type, remaining, limit, current, problem, clamped)


def _dollars(value: Decimal, name: str, index: int) -> Decimal:
    cents = exact_cents(value)
    return cents if cents is not None else parse_money(value, f"accumulators[{index}].{name}", allow_negative=True)


def _number(value: Decimal, name: str, index: int) -> Decimal:
    """Counters (and limits of an unknown type) are not money: any exact scale, floored later."""
    if type(value) is Decimal and value.is_finite() and value.adjusted() < 15:
        return value
    return parse_decimal(value, f"accumulators[{index}].{name}")


def _refuse_counts(acc: MemberAccumulator, index: int) -> None:
    for name, count in (("num_of_individuals_met", acc.num_of_individuals_met),
                        ("num_of_individuals_needed_to_meet", acc.num_of_individuals_needed_to_meet)):
        if count is not None and type(count) is not int:
            raise InvalidInput(f"accumulators[{index}].{name}", f"must be a whole number, got {count!r}")


def _common_limit_type(chosen: list[Selected]) -> LimitType | None:
    """All limits of one coverage must share a unit: a visit and a dollar cannot be compared."""
    found: LimitType | None = None
    for sel in chosen:
        if sel.kind is not AccumKind.LIMIT or sel.limit_type is None:
            continue
        if found is not None and sel.limit_type is not found:
            raise InvalidInput(f"accumulators[{sel.index}].limit_type",
                               f"limits of one coverage must share a type: {found.value} and {sel.limit_type.value}")
        found = sel.limit_type
    return found


def _met_by_count(chosen: list[Selected]) -> bool:
    """§5.3: family deductible's pair first, else the individual one's; met >= needed > 0."""
    individual: MemberAccumulator | None = None
    family: MemberAccumulator | None = None
    for sel in chosen:
        if sel.kind is AccumKind.DEDUCTIBLE:
            if sel.level is Level.FAMILY:
                family = sel.source
            else:
                individual = sel.source
    for acc in (family, individual):
        if acc is None:
            continue
        met, needed = acc.num_of_individuals_met, acc.num_of_individuals_needed_to_meet
        if met is None or needed is None:
            continue
        return needed > 0 and met >= needed
    return False
