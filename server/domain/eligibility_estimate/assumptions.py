"""The coded assumptions an estimate lists (estimate-from-eligibility.md §4, table after D9).

One row per code: its kind and what it means. GAP = the 271 lacks a value (the estimate is INCOMPLETE);
AMBIGUITY = the 271 allows several readings (the range shows them); INFO = a documented default or a fact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class AssumptionKind(StrEnum):
    GAP = "GAP"
    AMBIGUITY = "AMBIGUITY"
    INFO = "INFO"


_G, _A, _I = AssumptionKind.GAP, AssumptionKind.AMBIGUITY, AssumptionKind.INFO

#: code -> (kind, what it means). The order is the order assumptions are listed in.
CATALOGUE: Final[dict[str, tuple[AssumptionKind, str]]] = {
    "DEDUCTIBLE_NOT_SENT": (_G, "no deductible was sent for this network: none assumed; the high end assumes one "
                                "at least as large as the allowed amount"),
    "DEDUCTIBLE_REMAINING_NOT_SENT": (_G, "a deductible total was sent without what remains: the total is assumed "
                                          "(nothing met yet); the low end assumes it is met"),
    "OUT_OF_POCKET_NOT_SENT": (_G, "no out-of-pocket maximum was sent for this network: no cap is assumed"),
    "OUT_OF_POCKET_REMAINING_NOT_SENT": (_G, "an out-of-pocket maximum was sent without what remains: the total is "
                                             "assumed (nothing met yet); the low end assumes it is met"),
    "LIMIT_REMAINING_NOT_SENT": (_G, "a benefit limit was sent without what remains: the whole limit is assumed "
                                     "available; the high end assumes it is used up"),
    "COPAY_INVALID": (_G, "a copay the payer sent is negative and was not used"),
    "COINSURANCE_INVALID": (_G, "a coinsurance the payer sent is outside 0..100 % and was not used"),
    "AMBIGUOUS_COPAY": (_A, "several copays apply: the largest is the point estimate, the range covers the others"),
    "AMBIGUOUS_COINSURANCE": (_A, "several coinsurance rates apply: the largest is the point estimate, the range "
                                  "covers the others"),
    "DEDUCTIBLE_APPLICABILITY_UNKNOWN": (_A, "the 271 does not say whether the deductible applies to this service: "
                                             "it is assumed to apply only when coinsurance is charged; the range "
                                             "covers both"),
    "DEDUCTIBLE_SIGNALS_CONFLICT": (_A, "the 271 says both that the deductible applies and that it does not: the "
                                        "range covers both"),
    "NOT_COVERED_LINE_PRESENT": (_A, "the payer also lists this service as not covered (often for a sub-service): "
                                     "the high end assumes it is not covered"),
    "AMBIGUOUS_LIMIT": (_A, "several benefit limit values apply: the smallest is the point estimate"),
    "SEVERAL_PLANS": (_A, "the 271 answers for several plans; their cost shares compete as candidates"),
    "COPAY_NOT_SENT": (_I, "no copay was sent for this service and network: none is charged"),
    "COINSURANCE_NOT_SENT": (_I, "no coinsurance was sent for this service and network: none is charged"),
    "NOT_COVERED": (_I, "the payer says this service is not covered: the member pays the allowed amount"),
    "AUTH_REQUIRED": (_I, "the payer requires prior authorization or certification for this service"),
    "ACCUMULATOR_FLAGGED": (_I, "an accumulator the payer sent is inconsistent or ambiguous; its remaining amount "
                                "is used as sent"),
    "AMOUNT_ROUNDED": (_I, "an amount with more than two decimals was rounded half-up to the cent"),
    "LIMITATION_NOT_MODELLED": (_I, "a limitation the estimate cannot model (ages, days, other periods) was left out"),
    "OUT_OF_NETWORK_BALANCE_BILLING_EXCLUDED": (_I, "out of network: what the provider may bill above the allowed "
                                                    "amount is not estimated"),
}
_ORDER: Final = {code: i for i, code in enumerate(CATALOGUE)}


@dataclass(frozen=True, slots=True)
class Assumption:
    code: str
    kind: AssumptionKind
    text: str
    source_indices: tuple[int, ...] = ()


class Assumptions:
    """Collects the assumptions of one provider's estimate: one per code (details and entries merged)."""

    __slots__ = ("_found",)

    def __init__(self) -> None:
        self._found: dict[str, tuple[list[str], set[int]]] = {}

    def add(self, code: str, detail: str = "", refs: Iterable[int] = ()) -> None:
        if code not in CATALOGUE:  # a typo must fail loudly, in tests
            raise KeyError(code)
        details, indices = self._found.setdefault(code, ([], set()))
        if detail and detail not in details:
            details.append(detail)
        indices.update(r for r in refs if r >= 0)

    def extend(self, other: Assumptions) -> None:
        """Take over another collector's assumptions (details and entries kept)."""
        for code, (details, indices) in other._found.items():
            for detail in details or [""]:
                self.add(code, detail, indices)

    def __contains__(self, code: object) -> bool:
        return code in self._found

    def has_gap(self) -> bool:
        return any(CATALOGUE[code][0] is AssumptionKind.GAP for code in self._found)

    def listed(self) -> tuple[Assumption, ...]:
        out = []
        for code in sorted(self._found, key=_ORDER.__getitem__):
            kind, meaning = CATALOGUE[code]
            details, indices = self._found[code]
            text = meaning + (f" ({'; '.join(details)})" if details else "")
            out.append(Assumption(code, kind, text, tuple(sorted(indices))))
        return tuple(out)
