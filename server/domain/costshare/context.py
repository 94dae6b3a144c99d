"""The mutable record one calculation works on (rule book §2) and its derived values D, O and L.

Only the known remainders of present levels are held: an unknown deductible or OOP is treated as absent
(§1.4), so it is simply not in ``ded`` / ``oop``; an unknown limit stays in ``limit`` as None (= exhausted).
"""

from __future__ import annotations

from decimal import Decimal

from server.domain.costshare.inputs import Level, LimitType, Terms
from server.domain.costshare.routing import HandlerId
from server.domain.costshare.trace import Tracer
from server.domain.money import ZERO


class Context:
    """State shared by the handlers of one (coverage, service amount); handlers do no I/O."""

    __slots__ = (
        "terms", "service_amount", "amount_left", "member_pays",
        "line_deductible", "line_copay", "line_coinsurance", "line_not_covered", "line_over_limit",
        "copay_left", "ded", "family_met_by_count", "oop", "limit", "limit_type",
        "limit_reached", "path", "subchain_start", "tracer",
    )

    def __init__(
        self,
        terms: Terms,
        service_amount: Decimal,
        *,
        ded: dict[Level, Decimal] | None = None,
        oop: dict[Level, Decimal] | None = None,
        limit: dict[Level, Decimal | None] | None = None,
        limit_type: LimitType | None = None,
        family_met_by_count: bool = False,
        tracer: Tracer | None = None,
    ) -> None:
        self.terms: Terms = terms
        self.service_amount: Decimal = service_amount
        self.amount_left: Decimal = service_amount
        self.member_pays: Decimal = ZERO
        self.line_deductible: Decimal = ZERO
        self.line_copay: Decimal = ZERO
        self.line_coinsurance: Decimal = ZERO
        self.line_not_covered: Decimal = ZERO
        self.line_over_limit: Decimal = ZERO
        self.copay_left: Decimal = terms.copay
        self.ded: dict[Level, Decimal] = {} if ded is None else ded
        self.family_met_by_count: bool = family_met_by_count
        self.oop: dict[Level, Decimal] = {} if oop is None else oop
        self.limit: dict[Level, Decimal | None] = {} if limit is None else limit
        self.limit_type: LimitType | None = limit_type
        self.limit_reached: bool = False
        self.path: list[HandlerId] = []
        self.subchain_start: int | None = None
        self.tracer: Tracer | None = tracer

    # --- derived values (§2), recomputed on every read -------------------------------------------------------

    def d(self) -> Decimal | None:
        """Deductible remaining: None = absent; 0 when met by count; else the smallest present level."""
        ded = self.ded
        if not ded:
            return None
        if self.family_met_by_count:
            return ZERO
        return min(ded.values())

    def o(self) -> Decimal | None:
        """OOP remaining: None = absent, i.e. no cap (never a cap of 0)."""
        oop = self.oop
        return min(oop.values()) if oop else None

    def l(self) -> Decimal | None:  # noqa: E743 - the book calls it L
        """Limit remaining when a limit is present: None = unknown (one level unknown), else the smallest."""
        values = self.limit.values()
        if None in values:
            return None
        return min(v for v in values if v is not None)

    # --- the only ways money moves ---------------------------------------------------------------------------

    def credit_oop(self, amount: Decimal) -> None:
        """Subtract from every present OOP level alike (§5.4); callers never pass more than O."""
        if amount:
            oop = self.oop
            for level in oop:
                oop[level] -= amount

    def credit_deductible(self, amount: Decimal) -> None:
        """Subtract from every present deductible level alike; never more than D (so never below 0)."""
        if amount:
            ded = self.ded
            for level in ded:
                ded[level] -= amount
