"""D9: every reading the 271 allows, run through the unchanged chain; the point, the range, completeness.

The dimensions are the copay and coinsurance alternatives, the deductible treatments, covered Y/N and each
accumulator level's alternatives; the chain runs once per distinct combination (the Cartesian product). The point
is the combination of every dimension's first (point) value; low / high are the least / most the member pays.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Final

from server.domain.costshare import (
    CostShareResult,
    Coverage,
    Level,
    LimitType,
    MemberAccumulator,
    MemberAccumulators,
    RelatedAccumulator,
    calculate,
)

from .accumulators import ALLOWED, LevelValues
from .network import CHAIN_CODE


class Completeness(StrEnum):
    COMPLETE = "COMPLETE"
    AMBIGUOUS = "AMBIGUOUS"
    INCOMPLETE = "INCOMPLETE"


@dataclass(frozen=True, slots=True)
class ChainInputs:
    """One reading as the chain takes it (what `Calculate` takes too: `derived_inputs`)."""

    coverage: Coverage
    accumulators: tuple[MemberAccumulator, ...]
    service_amount: Decimal


@dataclass(frozen=True, slots=True)
class Dimensions:
    """Each tuple holds a dimension's values, point first."""

    network: str
    copays: tuple[Decimal, ...]
    coinsurances: tuple[Decimal, ...]
    applies: tuple[bool, ...]  # does the deductible apply (D6)
    covered: tuple[bool, ...]
    deductible: tuple[LevelValues, ...]
    out_of_pocket: tuple[LevelValues, ...]
    limits: tuple[LevelValues, ...]
    limit_type: LimitType | None
    copay_after_deductible: bool


_LEVEL_TEXT = {Level.INDIVIDUAL: "Individual", Level.FAMILY: "Family"}
_LIMIT_TEXT = {LimitType.COUNTER: "Counter", LimitType.DOLLAR: "Dollar"}


def _yes(flag: bool) -> str:
    return "Y" if flag else "N"


def _accumulators(
    code: str, levels: Sequence[LevelValues], values: Sequence[Decimal | None], network: str,
    limit_type: LimitType | None = None,
) -> list[tuple[RelatedAccumulator, MemberAccumulator]]:
    out = []
    for lv, value in zip(levels, values, strict=True):
        if value is None:
            continue
        level = _LEVEL_TEXT[lv.level]
        out.append((
            RelatedAccumulator(code=code, level=level, network_indicator_code=network),
            MemberAccumulator(code=code, level=level, network_indicator_code=network, calculated_value=value,
                              limit_value=lv.total, limit_type=None if limit_type is None else _LIMIT_TEXT[limit_type]),
        ))
    return out


def inputs_of(dims: Dimensions, reading: Sequence[object], amount: Decimal) -> ChainInputs:
    """The chain's coverage and accumulators for one reading (spec §5 defaults)."""
    copay, percent, applies, covered = reading[:4]
    assert isinstance(copay, Decimal) and isinstance(percent, Decimal)
    n_ded, n_oop = len(dims.deductible), len(dims.out_of_pocket)
    ded_values = reading[4:4 + n_ded]
    oop_values = reading[4 + n_ded:4 + n_ded + n_oop]
    limit_values = reading[4 + n_ded + n_oop:]
    net = CHAIN_CODE[dims.network]
    pairs = []
    if covered:
        if applies:
            pairs += _accumulators("Deductible", dims.deductible, ded_values, net)  # type: ignore[arg-type]
        pairs += _accumulators("OOP Max", dims.out_of_pocket, oop_values, net)  # type: ignore[arg-type]
        pairs += _accumulators("Limit", dims.limits, limit_values, net, dims.limit_type)  # type: ignore[arg-type]
    coverage = Coverage(
        is_service_covered=_yes(bool(covered)),
        copay=copay,
        coinsurance_percent=percent,
        copay_applies_out_of_pocket="Y",
        coins_applies_out_of_pocket="Y",
        deductible_applies_out_of_pocket="Y",
        copay_count_to_deductible="N",
        copay_continue_when_deductible_met=_yes(dims.copay_after_deductible),
        copay_continue_when_out_of_pocket_max_met="N",
        is_deductible_before_copay="Y",
        network_category=net,
        related_accumulators=tuple(r for r, _ in pairs),
    )
    return ChainInputs(coverage, tuple(m for _, m in pairs), amount)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One distinct reading, ready for the chain at any amount; `per_amount` readings (a deductible assumed equal
    to the allowed amount) are rebuilt for each amount."""

    inputs: ChainInputs
    accumulators: MemberAccumulators
    per_amount: bool


@dataclass(frozen=True, slots=True)
class Readings:
    """Every distinct reading of a provider's dimensions, the point first. Independent of the amount, so one
    instance serves every provider with the same network and role."""

    dims: Dimensions
    prepared: tuple[Prepared, ...]


_PROBE: Final = Decimal("0.00")


def readings(dims: Dimensions) -> Readings:
    axes: list[tuple[object, ...]] = [dims.copays, dims.coinsurances, dims.applies, dims.covered,
                                      *(lv.values for lv in dims.deductible),
                                      *(lv.values for lv in dims.out_of_pocket),
                                      *(lv.values for lv in dims.limits)]
    point = tuple(axis[0] for axis in axes)
    seen: dict[ChainInputs, Prepared] = {}
    for reading in (point, *itertools.product(*axes)):
        inputs = inputs_of(dims, reading, _PROBE)
        if inputs not in seen:
            per_amount = any(a.calculated_value is ALLOWED for a in inputs.accumulators)
            seen[inputs] = Prepared(inputs, MemberAccumulators(inputs.accumulators), per_amount)
    return Readings(dims, tuple(seen.values()))


@dataclass(frozen=True, slots=True)
class Range:
    point: CostShareResult
    point_inputs: ChainInputs
    low: Decimal
    high: Decimal
    readings: int


def _at(prepared: Prepared, dims: Dimensions, amount: Decimal) -> tuple[ChainInputs, MemberAccumulators]:
    inputs = prepared.inputs
    if prepared.per_amount:
        accs = tuple(replace(a, calculated_value=amount) if a.calculated_value is ALLOWED else a
                     for a in inputs.accumulators)
        return ChainInputs(inputs.coverage, accs, amount), MemberAccumulators(accs)
    return replace(inputs, service_amount=amount), prepared.accumulators


def run(plan: Readings, amount: Decimal, *, trace: bool = False) -> Range:
    """The chain over every reading at `amount`: the point (traced when asked), and the least / most paid."""
    first, *rest = plan.prepared
    point_inputs, point_accs = _at(first, plan.dims, amount)
    point = calculate(point_inputs.coverage, point_accs, amount, trace=trace)
    low = high = point.member_pays
    for prepared in rest:
        inputs, accs = _at(prepared, plan.dims, amount)
        pays = calculate(inputs.coverage, accs, amount).member_pays
        if pays < low:
            low = pays
        elif pays > high:
            high = pays
    return Range(point, point_inputs, low, high, len(plan.prepared))


def completeness(has_gap: bool, low: Decimal, high: Decimal) -> Completeness:
    if has_gap:
        return Completeness.INCOMPLETE
    return Completeness.AMBIGUOUS if low < high else Completeness.COMPLETE
