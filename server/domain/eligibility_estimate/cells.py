"""D3 and D4: the copay / coinsurance cell of one service type in one network, and the choice among candidates.

D3 — candidates for STC `s` in network `n`: B (copay, amount) resp. A (coinsurance, percent) lines of
`summary.cost_shares` listing `s`, serving `n`, not at FAM level, with a value; per-visit (27) or no time qualifier
preferred; most specific first (shortest STC list). The service type used is the first candidate STC with at least
one copay or coinsurance candidate; copay and coinsurance both come from it, never from another STC or network.

D4 — per kind: place-of-service filter, role filter (MSG texts), validity (a negative copay or a percent outside
0..100 is dropped, never reinterpreted; sub-cent copays rounded), then the distinct values are the alternatives and
the point is the largest; a missing kind is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from server.domain.eligibility.summary import CostShareKind, CostShareLine
from server.domain.money import HUNDRED, ZERO, is_whole_cents, to_cents

from .assumptions import Assumptions
from .network import serves
from .texts import any_contains


class ProviderRole(StrEnum):
    PRIMARY_CARE = "PRIMARY_CARE"
    SPECIALIST = "SPECIALIST"


#: D4 step 2: the normalized phrases that name a role in a candidate's MSG texts.
ROLE_PHRASES: Final[dict[ProviderRole, tuple[str, ...]]] = {
    ProviderRole.PRIMARY_CARE: (" PRIMARY CARE ", " PCP "),
    ProviderRole.SPECIALIST: (" SPECIALIST ",),
}
FAMILY_LEVEL: Final = "FAM"
PER_VISIT: Final = "27"


def _value(line: CostShareLine) -> Decimal | None:
    return line.amount if line.kind is CostShareKind.COPAY else line.percent


def candidates(lines: Sequence[CostShareLine], kind: CostShareKind, stc: str, network: str) -> list[CostShareLine]:
    """D3 for one kind: the lines that compete for STC `stc` in `network`, most specific first."""
    found = [
        line for line in lines
        if line.kind is kind and stc in line.service_type_codes and serves(line.network_code, network)
        and line.coverage_level_code != FAMILY_LEVEL and _value(line) is not None
    ]
    if not found:
        return found
    per_visit = [line for line in found if line.time_qualifier_code in (None, PER_VISIT)]
    pool = per_visit or found
    shortest = min(len(line.service_type_codes) for line in pool)
    return [line for line in pool if len(line.service_type_codes) == shortest]


@dataclass(frozen=True, slots=True)
class Cell:
    """The STC whose cost share is used, and its raw copay / coinsurance candidates in the network."""

    service_type_code: str
    copays: tuple[CostShareLine, ...]
    coinsurances: tuple[CostShareLine, ...]


def find_cell(lines: Sequence[CostShareLine], service_types: Sequence[str], network: str) -> Cell | None:
    """The first candidate STC with a copay or coinsurance candidate in the network (D3); None: none has one."""
    for stc in service_types:
        copays = candidates(lines, CostShareKind.COPAY, stc, network)
        coinsurances = candidates(lines, CostShareKind.COINSURANCE, stc, network)
        if copays or coinsurances:
            return Cell(stc, tuple(copays), tuple(coinsurances))
    return None


@dataclass(frozen=True, slots=True)
class Choice:
    """One kind's outcome: the point value first, then the other alternatives; the lines kept by D4."""

    values: tuple[Decimal, ...]
    kept: tuple[CostShareLine, ...]

    @property
    def point(self) -> Decimal:
        return self.values[0]


_TAGS: Final = {CostShareKind.COPAY: "COPAY", CostShareKind.COINSURANCE: "COINSURANCE"}


def choose(
    lines: Sequence[CostShareLine], kind: CostShareKind, place_of_service: str | None, role: ProviderRole | None,
    flags: Assumptions,
) -> Choice | None:
    """D4 steps 1–4 for one kind; None when no valid value is left (step 5 decides what that means)."""
    pool = list(lines)
    if place_of_service and any(line.place_of_service == place_of_service for line in pool):
        pool = [line for line in pool if line.place_of_service == place_of_service]
    if role is not None:
        phrases = ROLE_PHRASES[role]
        named = [line for line in pool if any_contains(line.notes, phrases)]
        if named:
            pool = named
    tag = _TAGS[kind]
    valid: list[tuple[Decimal, CostShareLine]] = []
    for line in pool:
        value = _value(line)
        assert value is not None  # D3 keeps valued lines only
        if kind is CostShareKind.COPAY:
            if value < 0:
                flags.add("COPAY_INVALID", f"copay {value} in entry {line.source_ref}", (line.source_ref,))
                continue
            if not is_whole_cents(value):
                flags.add("AMOUNT_ROUNDED", f"copay {value}", (line.source_ref,))
                value = to_cents(value)
        elif value < 0 or value > HUNDRED:
            flags.add("COINSURANCE_INVALID", f"{value} % in entry {line.source_ref}", (line.source_ref,))
            continue
        valid.append((value, line))
    if not valid:
        return None
    distinct = sorted({value for value, _ in valid}, reverse=True)
    if len(distinct) > 1:
        flags.add(f"AMBIGUOUS_{tag}", ", ".join(format(v, "f") for v in distinct),
                  (line.source_ref for _, line in valid))
    return Choice(tuple(distinct), tuple(line for _, line in valid))


def zero_choice() -> Choice:
    """D4 step 5: the kind the payer did not send is 0."""
    return Choice((ZERO,), ())
