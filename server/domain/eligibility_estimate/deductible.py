"""D6: does the deductible apply to this service? Signals from the service-level `C` lines of the chosen STC in
the network (amount 0 -> does not apply, > 0 -> applies; the amount itself is never used) and from the MSG texts
of those lines and of the cost-share lines D4 kept. Hedged texts (IF / MAY / VERIFY) are questions, not answers.

Two treatments: *waived* (no deductible related: copay, then coinsurance) and *applies* (every present deductible
level related, deductible first, copay after it unless a text waives the copay after the deductible).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Final

from server.domain.eligibility.summary import ServiceLine, ServiceLineKind

from .network import serves
from .texts import normalized


class Signal(Enum):
    APPLIES = "applies"
    DOES_NOT_APPLY = "does not apply"


HEDGES: Final = (" IF ", " MAY ", " VERIFY ")
#: (phrases, signal, copay continues after the deductible) — the first group with a matching phrase wins.
PHRASE_GROUPS: Final[tuple[tuple[tuple[str, ...], Signal, bool], ...]] = (
    ((" COPAY WAIVED AFTER DEDUCTIBLE ", " COPAYMENT WAIVED AFTER DEDUCTIBLE ", " COPAY WAIVED ONCE DEDUCTIBLE ",
      " NO COPAY AFTER DEDUCTIBLE ", " COPAY DOES NOT APPLY AFTER DEDUCTIBLE "), Signal.APPLIES, False),
    ((" DEDUCTIBLE DOES NOT APPLY ", " DEDUCTIBLE DOESN T APPLY ", " DEDUCTIBLE NOT APPLICABLE ",
      " DEDUCTIBLE WAIVED ", " DEDUCTIBLE IS WAIVED ", " NOT SUBJECT TO DEDUCTIBLE ", " NOT SUBJECT TO THE DEDUCTIBLE ",
      " NO DEDUCTIBLE "), Signal.DOES_NOT_APPLY, True),
    ((" DEDUCTIBLE APPLIES ", " SUBJECT TO DEDUCTIBLE ", " SUBJECT TO THE DEDUCTIBLE ", " AFTER DEDUCTIBLE ",
      " AFTER THE DEDUCTIBLE "), Signal.APPLIES, True),
)


def text_signal(text: str) -> tuple[Signal, bool] | None:
    """(signal, copay continues after the deductible) of one MSG text, or None (no signal, or hedged)."""
    norm = normalized(text)
    if any(h in norm for h in HEDGES):
        return None
    for phrases, signal, copay_continues in PHRASE_GROUPS:
        if any(p in norm for p in phrases):
            return signal, copay_continues
    return None


def service_deductible_lines(lines: Sequence[ServiceLine], stc: str, network: str) -> tuple[ServiceLine, ...]:
    return tuple(
        line for line in lines
        if line.kind is ServiceLineKind.DEDUCTIBLE and stc in line.service_type_codes
        and serves(line.network_code, network)
    )


@dataclass(frozen=True, slots=True)
class Signals:
    found: frozenset[Signal]
    copay_after_deductible: bool  # False when a text waives the copay once the deductible is met
    source_refs: tuple[int, ...]


def collect(c_lines: Sequence[ServiceLine], texts: Iterable[tuple[str, int]]) -> Signals:
    """Signals of the service-level C lines (amounts and texts) and of the kept cost-share lines' texts."""
    found: set[Signal] = set()
    refs: list[int] = []
    copay_continues = True
    for line in c_lines:
        if line.amount is not None:
            found.add(Signal.DOES_NOT_APPLY if line.amount == 0 else Signal.APPLIES)
            refs.append(line.source_ref)
    for text, ref in (*((n, line.source_ref) for line in c_lines for n in line.notes), *texts):
        read = text_signal(text)
        if read is not None:
            found.add(read[0])
            copay_continues = copay_continues and read[1]
            refs.append(ref)
    return Signals(frozenset(found), copay_continues, tuple(dict.fromkeys(refs)))


def treatments(signals: Signals, point_coinsurance: Decimal) -> tuple[bool, ...]:
    """Whether the deductible applies, point first: only one signal decides; none or both -> both readings,
    the point applying iff coinsurance is charged (the shape default)."""
    if signals.found == {Signal.DOES_NOT_APPLY}:
        return (False,)
    if signals.found == {Signal.APPLIES}:
        return (True,)
    point = point_coinsurance > 0
    return (point, not point)


