"""The routing graph of rule book §4, in one table.

Handlers decide *which* row applies and return that :class:`Edge`; only this table says *where* it leads.
``target=None`` ends the calculation; ``subchain=True`` (H2 only) runs H3 onward on the whole amount and then
returns to H2's after-work (§3 H2 steps 3-5).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class HandlerId(StrEnum):
    """Handler names exactly as the rule book (§3) numbers them."""

    H1 = "H1 ServiceCoverage"
    H2 = "H2 BenefitLimitation"
    H3 = "H3 OOPMax"
    H4 = "H4 OOPMaxCopay"
    H5 = "H5 Deductible"
    H6 = "H6 CostShareCoPay"
    H7 = "H7 DeductibleCostShareCoPay"
    H8 = "H8 DeductibleCoPay"
    H9 = "H9 DeductibleOOPMax"
    H10 = "H10 DeductibleCoInsurance"

    @property
    def code(self) -> str:
        """Short form used in the book's paths ("H5")."""
        return self.name


@dataclass(frozen=True, slots=True)
class Edge:
    """One row of §4: from ``source``, when ``condition`` holds, go to ``target`` (None = end)."""

    source: HandlerId
    condition: str
    target: HandlerId | None
    subchain: bool = False


H1, H2, H3, H4, H5 = HandlerId.H1, HandlerId.H2, HandlerId.H3, HandlerId.H4, HandlerId.H5
H6, H7, H8, H9, H10 = HandlerId.H6, HandlerId.H7, HandlerId.H8, HandlerId.H9, HandlerId.H10
END = None

# --- §4, row for row ---------------------------------------------------------------------------------------
H1_NOT_COVERED = Edge(H1, "not covered: member pays all (not_covered)", END)
H1_COVERED = Edge(H1, "covered", H2)

H2_NO_LIMIT = Edge(H2, "no limit accumulator", H3)
H2_EXHAUSTED = Edge(H2, "limit unknown, <= 0, or counter < 1: member pays all (over_limit)", END)
H2_COUNTER = Edge(H2, "counter >= 1: sub-chain H3..., then counter -1", H3, subchain=True)
H2_DOLLAR = Edge(H2, "dollar > 0: sub-chain H3..., then plan share capped at the limit", H3, subchain=True)
H2_AFTER = Edge(H2, "after the sub-chain: limit applied", END)

H3_OOP_MET = Edge(H3, "O known and 0", H4)
H3_OOP_OPEN = Edge(H3, "O absent or > 0", H5)

H4_COPAY = Edge(H4, "copay left > 0 and copay-after-OOP: member pays min(copay left, amount left)", END)
H4_END = Edge(H4, "otherwise: nothing more is charged", END)

H5_NO_DEDUCTIBLE = Edge(H5, "D absent", H6)
H5_MET = Edge(H5, "D = 0 (incl. met by count)", H7)
H5_COPAY_FIRST = Edge(H5, "D > 0, ded-first N, copay > 0", H8)
H5_DEDUCTIBLE = Edge(H5, "D > 0, otherwise", H9)

H6_OOP_MET = Edge(H6, "copay step reached or found O = 0", H4)
H6_DONE = Edge(H6, "amount left 0", END)
H6_COINSURANCE = Edge(H6, "otherwise", H10)

H7_COPAY = Edge(H7, "copay-after-ded and copay > 0", H8)
H7_COINSURANCE = Edge(H7, "otherwise", H10)

H8_OOP_MET = Edge(H8, "copay step reached or found O = 0", H4)
H8_DONE = Edge(H8, "amount left 0", END)
H8_DED_FIRST = Edge(H8, "ded-first Y", H10)
H8_COPAY_FIRST = Edge(H8, "ded-first N", H9)

H9_STOP = Edge(H9, "O already 0, or OOP ran out before the deductible was met", END)
H9_DONE = Edge(H9, "amount left 0", END)
H9_DED_FIRST = Edge(H9, "ded-first Y", H7)
H9_COPAY_FIRST = Edge(H9, "ded-first N", H10)

H10_END = Edge(H10, "always", END)

ROUTES: tuple[Edge, ...] = (
    H1_NOT_COVERED, H1_COVERED,
    H2_NO_LIMIT, H2_EXHAUSTED, H2_COUNTER, H2_DOLLAR, H2_AFTER,
    H3_OOP_MET, H3_OOP_OPEN,
    H4_COPAY, H4_END,
    H5_NO_DEDUCTIBLE, H5_MET, H5_COPAY_FIRST, H5_DEDUCTIBLE,
    H6_OOP_MET, H6_DONE, H6_COINSURANCE,
    H7_COPAY, H7_COINSURANCE,
    H8_OOP_MET, H8_DONE, H8_DED_FIRST, H8_COPAY_FIRST,
    H9_STOP, H9_DONE, H9_DED_FIRST, H9_COPAY_FIRST,
    H10_END,
)
"""Every edge of the graph; tests walk it to prove there is no cycle and every handler is reachable."""
