"""Estimate from eligibility, per provider: D1 refusals, then D2–D9 over the stored 271 summary (pure).

`estimate_from_eligibility(summary, service, providers)` answers every provider in request order. A provider's
answer depends only on the summary and that provider (network, role, allowed amount), so equal providers are
derived once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final

from server.domain.costshare import CostShareResult
from server.domain.eligibility.summary import CostShareKind, EligibilitySummary, NoteKind
from server.domain.money import ZERO

from . import accumulators as acc
from .assumptions import Assumption, Assumptions
from .cells import ProviderRole, choose, find_cell, zero_choice
from .deductible import collect, service_deductible_lines, treatments
from .limits import limits
from .network import IN, OUT
from .not_covered import first_not_covered, not_covered_lines
from .readings import ChainInputs, Completeness, Dimensions, Readings, completeness, readings, run
from .service_types import candidate_service_types

COVERAGE_INACTIVE: Final = "COVERAGE_INACTIVE"
COVERAGE_STATUS_UNCLEAR: Final = "COVERAGE_STATUS_UNCLEAR"


class CoverageRefused(Exception):
    """D1: the check is VERIFIED but nothing may be estimated from it (`reason` is the spec's code)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnmappedService(ValueError):
    """No service type to price: no explicit STC and no D2 row (the API refuses this before it gets here)."""


def refusal(summary: EligibilitySummary) -> str | None:
    """D1: an inactive member's cost shares are never used; an unclear status is refused, not ranged."""
    if summary.active is False:
        return COVERAGE_INACTIVE
    if summary.active is None:
        return COVERAGE_STATUS_UNCLEAR
    return None


@dataclass(frozen=True, slots=True)
class ServiceToEstimate:
    procedure_code: str | None = None
    service_type_codes: tuple[str, ...] = ()  # explicit STCs in preference order: they replace D2
    place_of_service: str | None = None

    def service_types(self) -> tuple[str, ...]:
        return candidate_service_types(self.procedure_code, self.service_type_codes, self.place_of_service)


@dataclass(frozen=True, slots=True)
class EstimateProvider:
    provider_id: str
    network: str  # network.IN or network.OUT
    allowed_amount: Decimal
    role: ProviderRole | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """One D-step decision, in words (the trace's prefix lines)."""

    step: str
    text: str


@dataclass(frozen=True, slots=True)
class ProviderEstimate:
    """One provider's answer. `found` False: the 271 has nothing for the service in that network (NOT_FOUND)."""

    provider_id: str
    found: bool
    point: CostShareResult | None = None
    member_pays_low: Decimal | None = None
    member_pays_high: Decimal | None = None
    completeness: Completeness | None = None
    assumptions: tuple[Assumption, ...] = ()
    service_type_code: str | None = None
    source_indices: tuple[int, ...] = ()
    inputs: ChainInputs | None = None  # the point's chain inputs: Calculate(inputs) reproduces `point`
    decisions: tuple[Decision, ...] = ()
    readings: int = 0

    def codes(self) -> frozenset[str]:
        return frozenset(a.code for a in self.assumptions)


def estimate_from_eligibility(
    summary: EligibilitySummary,
    service: ServiceToEstimate,
    providers: Sequence[EstimateProvider],
    *,
    trace: bool = False,
) -> tuple[ProviderEstimate, ...]:
    """Every provider's estimate, in order. Raises `CoverageRefused` (D1) or `UnmappedService` (D2).

    D3–D8 depend on the provider's network and role only: they are planned once per (network, role); D9 runs
    the chain per amount."""
    reason = refusal(summary)
    if reason is not None:
        raise CoverageRefused(reason)
    service_types = service.service_types()
    if not service_types:
        raise UnmappedService("no service type code for this procedure; name service_type_codes")
    plans: dict[tuple[str, ProviderRole | None], Plan] = {}
    done: dict[tuple[str, ProviderRole | None, Decimal], ProviderEstimate] = {}
    out = []
    for provider in providers:
        key = (provider.network, provider.role, provider.allowed_amount)
        found = done.get(key)
        if found is None:
            plan = plans.get((provider.network, provider.role))
            if plan is None:
                plan = plans[provider.network, provider.role] = plan_provider(summary, service, service_types, provider.network,
                                                      provider.role)
            found = done[key] = apply(plan, provider, trace=trace)
        out.append(found if found.provider_id == provider.provider_id else replace(found, provider_id=provider.provider_id))
    return tuple(out)


def estimate_provider(
    summary: EligibilitySummary,
    service: ServiceToEstimate,
    service_types: tuple[str, ...],
    provider: EstimateProvider,
    *,
    trace: bool = False,
) -> ProviderEstimate:
    """D3–D9 for one provider (D1/D2 already done by the caller)."""
    return apply(plan_provider(summary, service, service_types, provider.network, provider.role), provider,
                 trace=trace)


@dataclass(frozen=True, slots=True)
class Plan:
    """What D3–D8 decide for a network and role: the readings to run, the assumptions, the entries used."""

    found: bool
    service_type_code: str | None
    readings: Readings | None
    assumptions: tuple[Assumption, ...]
    has_gap: bool
    source_indices: tuple[int, ...]
    decisions: tuple[Decision, ...]


def apply(plan: Plan, provider: EstimateProvider, *, trace: bool = False) -> ProviderEstimate:
    """D9 at the provider's allowed amount."""
    if not plan.found or plan.readings is None:
        return ProviderEstimate(provider.provider_id, False, assumptions=plan.assumptions,
                                service_type_code=plan.service_type_code, decisions=plan.decisions)
    result = run(plan.readings, provider.allowed_amount, trace=trace)
    state = completeness(plan.has_gap, result.low, result.high)
    decisions = plan.decisions
    if trace:
        decisions += (Decision("D9", f"{result.readings} readings: member pays {result.low}–{result.high}, "
                                     f"point {result.point.member_pays}; {state.value}"),)
    return ProviderEstimate(
        provider.provider_id, True, result.point, result.low, result.high, state, plan.assumptions,
        plan.service_type_code, plan.source_indices, result.point_inputs, decisions, result.readings,
    )


def _plan(found: bool, flags: Assumptions, decisions: list[Decision], stc: str | None = None,
          readings: Readings | None = None, refs: Iterable[int] = ()) -> Plan:
    return Plan(found, stc, readings, flags.listed(), flags.has_gap(), tuple(sorted({r for r in refs if r >= 0})),
                tuple(decisions))


def plan_provider(
    summary: EligibilitySummary,
    service: ServiceToEstimate,
    service_types: tuple[str, ...],
    n: str,
    role: ProviderRole | None,
) -> Plan:
    """D3–D8 for a network and a role."""
    flags = Assumptions()
    net_text = "in network" if n == IN else "out of network"
    decisions = [Decision("D2", f"service types {', '.join(service_types)}, in this order"
                                f"{' (procedure ' + service.procedure_code + ')' if service.procedure_code else ''}")]
    if len(summary.plan_coverages) >= 2:
        flags.add("SEVERAL_PLANS", f"{len(summary.plan_coverages)} plans",
                  (r for pc in summary.plan_coverages for r in pc.source_refs))
    cell = find_cell(summary.cost_shares, service_types, n)
    if cell is None:
        return _not_covered_or_not_found(summary, service_types, n, flags, decisions)
    stc = cell.service_type_code
    decisions.append(Decision("D3", f"service type {stc} ({net_text}): {len(cell.copays)} copay and "
                                    f"{len(cell.coinsurances)} coinsurance candidates"))
    copay = choose(cell.copays, CostShareKind.COPAY, service.place_of_service, role, flags)
    coins = choose(cell.coinsurances, CostShareKind.COINSURANCE, service.place_of_service, role, flags)
    if copay is None and coins is None:
        decisions.append(Decision("D4", "no valid copay or coinsurance: nothing to estimate"))
        return _plan(False, flags, decisions, stc)
    if copay is None:
        flags.add("COPAY_NOT_SENT", f"service type {stc}")
        copay = zero_choice()
    if coins is None:
        flags.add("COINSURANCE_NOT_SENT", f"service type {stc}")
        coins = zero_choice()
    decisions.append(Decision("D4", f"copay {', '.join(format(v, 'f') for v in copay.values)}; coinsurance "
                                    f"{', '.join(format(v, 'f') for v in coins.values)} % (point first)"))

    i_lines = not_covered_lines(summary.service_lines, stc, n)
    covered: tuple[bool, ...] = (True,)
    if i_lines:
        covered = (True, False)
        flags.add("NOT_COVERED_LINE_PRESENT", f"service type {stc}", (line.source_ref for line in i_lines))
        decisions.append(Decision("D5", "a not-covered line lists this service too: not covered is the high end"))

    c_lines = service_deductible_lines(summary.service_lines, stc, n)
    kept = (*copay.kept, *coins.kept)
    signals = collect(c_lines, ((text, line.source_ref) for line in kept for text in line.notes))
    applies = treatments(signals, coins.point)

    ded_flags = Assumptions()  # raised only when "applies" is a possible treatment
    deductible = acc.levels(summary.deductible, n, acc.DEDUCTIBLE[2], ded_flags)
    if True in applies:
        if not deductible:
            ded_flags.add("DEDUCTIBLE_NOT_SENT", net_text)
            deductible = acc.missing_deductible()
        flags.extend(ded_flags)
        if len(applies) == 2:
            if len(signals.found) == 2:
                flags.add("DEDUCTIBLE_SIGNALS_CONFLICT", "", signals.source_refs)
            elif not acc.deductible_known_met(deductible):
                flags.add("DEDUCTIBLE_APPLICABILITY_UNKNOWN")
    else:
        deductible = ()
    decisions.append(Decision("D6", f"deductible {'applies' if applies[0] else 'waived'} at the point"
                                    f"{'; the other reading is in the range' if len(applies) == 2 else ''}"
                                    f"{'; copay waived after the deductible' if not signals.copay_after_deductible else ''}"))

    out_of_pocket = acc.levels(summary.out_of_pocket, n, acc.OUT_OF_POCKET[2], flags)
    if not out_of_pocket:
        flags.add("OUT_OF_POCKET_NOT_SENT", net_text)
    decisions.append(Decision("D7", "deductible " + _levels_text(deductible) + "; out-of-pocket "
                              + _levels_text(out_of_pocket)))
    limit = limits(summary.service_lines, stc, n, flags)
    if limit is not None:
        decisions.append(Decision("D8", f"{limit.limit_type.value} limit {_levels_text(limit.levels)}"))

    auth = [note.source_ref for note in summary.notes
            if note.kind is NoteKind.AUTH_REQUIRED and stc in note.service_type_codes]
    if auth:
        flags.add("AUTH_REQUIRED", f"service type {stc}", (r for r in auth if r is not None))
    if n == OUT:
        flags.add("OUT_OF_NETWORK_BALANCE_BILLING_EXCLUDED")

    dims = Dimensions(n, copay.values, coins.values, applies, covered, deductible, out_of_pocket,
                      limit.levels if limit else (), limit.limit_type if limit else None,
                      signals.copay_after_deductible)
    refs = {line.source_ref for line in kept} | set(signals.source_refs) | {line.source_ref for line in i_lines}
    for lv in (*deductible, *out_of_pocket, *(limit.levels if limit else ())):
        refs.update(lv.source_refs)
    return _plan(True, flags, decisions, stc, readings(dims), refs)


def _not_covered_or_not_found(
    summary: EligibilitySummary, service_types: tuple[str, ...], n: str, flags: Assumptions,
    decisions: list[Decision],
) -> Plan:
    """D5 first case: no STC has a cost share; an `I` line for one of them means not covered, else NOT_FOUND."""
    hit = first_not_covered(summary.service_lines, service_types, n)
    if hit is None:
        decisions.append(Decision("D3", "no service type has a cost share or a not-covered line in this network"))
        return _plan(False, flags, decisions)
    stc, lines = hit
    flags = Assumptions()  # not covered: NOT_COVERED (and the out-of-network note) only, nothing else is read
    flags.add("NOT_COVERED", f"service type {stc}", (line.source_ref for line in lines))
    if n == OUT:
        flags.add("OUT_OF_NETWORK_BALANCE_BILLING_EXCLUDED")
    decisions.append(Decision("D5", f"service type {stc} is not covered: the member pays everything"))
    dims = Dimensions(n, (ZERO,), (ZERO,), (False,), (False,), (), (), (), None, True)
    return _plan(True, flags, decisions, stc, readings(dims), (line.source_ref for line in lines))


def _levels_text(levels: Sequence[acc.LevelValues]) -> str:
    if not levels:
        return "none"
    return ", ".join(f"{lv.level.value} " + "/".join("absent" if v is None else format(v, "f") for v in lv.values)
                     for lv in levels)
