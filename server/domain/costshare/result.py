"""What one calculation answers (rule book §10). Money is Decimal in whole cents (exponent -2); counters are
whole Decimals; None always means *unknown*, never zero.

The records are slots dataclasses, not ``frozen``: a frozen one costs ~1 µs per construction (one
``object.__setattr__`` per field) and a result builds several. Nothing mutates them after :func:`calculate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from server.domain.costshare.inputs import AccumKind, Level, LimitType
from server.domain.costshare.routing import HandlerId
from server.domain.costshare.trace import TraceLine


@dataclass(slots=True)
class Breakdown:
    """Where each dollar the member pays came from; the lines add up to ``member_pays`` (§6.3)."""

    deductible: Decimal
    copay: Decimal
    coinsurance: Decimal
    not_covered: Decimal
    over_limit: Decimal

    def total(self) -> Decimal:
        return self.deductible + self.copay + self.coinsurance + self.not_covered + self.over_limit


@dataclass(slots=True)
class AccumulatorState:
    """One accumulator the coverage used, before and after this service.

    ``limit_type`` is DOLLAR for deductibles and OOP maxima, DOLLAR or COUNTER for limits, and None only for an
    exhausted/unknown limit whose type was not recognisable. ``source_index`` points into the accumulators
    list given to :func:`calculate`.
    """

    kind: AccumKind
    level: Level
    network: str
    limit_type: LimitType | None
    source_index: int
    accum_ex_code: str | None
    deductible_code: str | None
    limit_value: Decimal | None
    current_value: Decimal | None
    current_value_after: Decimal | None
    remaining_before: Decimal | None
    remaining_after: Decimal | None
    num_of_individuals_met: int | None
    num_of_individuals_needed_to_meet: int | None

    @property
    def applied(self) -> Decimal | None:
        """How much this service used (dollars or visits); None when the remainder is unknown."""
        if self.remaining_before is None or self.remaining_after is None:
            return None
        return self.remaining_before - self.remaining_after


@dataclass(slots=True)
class CostShareResult:
    service_amount: Decimal
    member_pays: Decimal
    plan_pays: Decimal
    breakdown: Breakdown
    accumulators: tuple[AccumulatorState, ...]
    service_covered: bool
    limit_reached: bool
    oop_met: bool
    deductible_met: bool
    path: tuple[HandlerId, ...]
    subchain_start: int | None
    """Index in ``path`` where H2's sub-chain begins (it runs to the end of the path); None if none ran."""
    trace: tuple[TraceLine, ...]
    """Empty unless ``calculate(..., trace=True)``."""
    warnings: tuple[str, ...]
    """Inputs the chain had to interpret, e.g. an unknown remainder treated as absent (§1.4)."""

    def path_text(self) -> str:
        """The path in the rule book's notation: ``H1 H2 [H3 H5 H6 H10]``."""
        codes = [h.code for h in self.path]
        if self.subchain_start is not None:
            codes[self.subchain_start] = "[" + codes[self.subchain_start]
            codes[-1] = codes[-1] + "]"
        return " ".join(codes)

    def trace_text(self) -> tuple[str, ...]:
        return tuple(line.text() for line in self.trace)
