"""Normalization recipe (spec §4, steps 0–5b): Stedi v3 response -> outcome + summary.

Never infers a number the payer did not send; every number points back to its benefit entries via
`source_refs`. Repeated, conflicting values are resolved conservatively (largest) and flagged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from . import status as st
from .aaa import (
    CONNECTIVITY_CODES,
    MEMBER_DATA_CODES,
    PARTICIPANT_CODE,
    AaaClassification,
    AaaError,
    AaaLevel,
    classify_aaa,
    collect_aaa_errors,
)
from .benefits import IN, OUT, Entry, date_value, mapping, mappings, parse_entries, percent_from_fraction, text
from .codes import ACTIVE_STATUS_CODES, BENEFIT_CODES, INACTIVE_STATUS_CODES, SERVICE_TYPES, STATUS_CODES, name_for
from .inquiry import EligibilityInquiry
from .status import CheckOutcome, CheckStatus, RetryPolicy
from .summary import (
    Accumulator,
    Bucket,
    Candidate,
    CodeName,
    CostShareCell,
    CostShareKind,
    CostShareLine,
    EligibilitySummary,
    NetworkBuckets,
    Note,
    NoteKind,
    OfficeVisitHeadline,
    PlanCoverage,
    RawRef,
    ServiceCostShare,
    ServiceLine,
    ServiceLineKind,
)
from .validation import clean_service_type_codes

PLAN_COVERAGE_STC: Final = "30"
OFFICE_VISIT_EXTRAS: Final = ("98", "BY", "BZ", "96", "UC", "86")  # reported too when only 30 was asked
OFFICE_VISIT_HEADLINE: Final = ("98", "BY", "96", "BZ")
TOTAL_QUALIFIERS: Final = ("23", "22", "25", "21")  # first present wins
REMAINING_QUALIFIER: Final = "29"
MET_QUALIFIER: Final = "24"
ANNUAL_QUALIFIERS: Final = frozenset({*TOTAL_QUALIFIERS, REMAINING_QUALIFIER, MET_QUALIFIER})
INDIVIDUAL_LEVELS: Final = frozenset({"IND", "EMP"})
FAMILY_LEVELS: Final = frozenset({"FAM"})
PER_VISIT_QUALIFIER: Final = "27"

# Flags
COVERAGE_STATUS_UNCLEAR: Final = "COVERAGE_STATUS_UNCLEAR"
DOS_OUTSIDE_PLAN_DATES: Final = "DOS_OUTSIDE_PLAN_DATES"
UNMAPPED_COVERAGE_LEVEL: Final = "UNMAPPED_COVERAGE_LEVEL"
PLAN_STATUS_FALLBACK: Final = "PLAN_STATUS_FALLBACK"
AAA_ERRORS_IGNORED: Final = "AAA_ERRORS_IGNORED"
INCONSISTENT: Final = "INCONSISTENT"
STC_NOT_RETURNED: Final = "STC_NOT_RETURNED"
AMBIGUOUS_COPAY: Final = "AMBIGUOUS_COPAY"
AMBIGUOUS_COINSURANCE: Final = "AMBIGUOUS_COINSURANCE"


@dataclass(frozen=True, slots=True)
class NormalizationContext:
    """What we asked: needed to read the answer (requested STCs, date of service, who the patient is)."""

    payer_id: str
    date_of_service: dt.date  # the request's date of service, or the day of the check
    service_type_codes: tuple[str, ...] = ("30",)
    patient_is_dependent: bool = False

    @classmethod
    def for_inquiry(cls, inquiry: EligibilityInquiry, *, today: dt.date) -> NormalizationContext:
        return cls(
            payer_id=inquiry.payer_id,
            date_of_service=inquiry.date_of_service or today,
            service_type_codes=clean_service_type_codes(inquiry.service_type_codes),
            patient_is_dependent=inquiry.patient_is_dependent,
        )


@dataclass(frozen=True, slots=True)
class NormalizedEligibility:
    outcome: CheckOutcome
    summary: EligibilitySummary | None = None
    aaa: AaaClassification | None = None


# ---------------------------------------------------------------- step 0: HTTP status and errors first


def _http_failure(http_status: int) -> CheckOutcome:
    if http_status in (401, 403):
        return CheckOutcome(CheckStatus.FAILED, f"{st.CLEARINGHOUSE_AUTH} (HTTP {http_status})")
    if http_status == 429:
        return CheckOutcome(CheckStatus.FAILED, f"{st.STEDI_THROTTLED} (HTTP 429)", RetryPolicy.THROTTLED)
    if http_status in (500, 502, 503, 504):
        return CheckOutcome(CheckStatus.FAILED, f"{st.STEDI_UNAVAILABLE} (HTTP {http_status})", RetryPolicy.BACKOFF)
    if http_status == 400:
        return CheckOutcome(CheckStatus.FAILED, f"{st.STEDI_VALIDATION} (HTTP 400)")
    return CheckOutcome(CheckStatus.FAILED, f"{st.STEDI_UNEXPECTED_STATUS} (HTTP {http_status})")


def _concerns_patient(error: AaaError, patient_is_dependent: bool) -> bool:
    """Whether an AAA error rules out using benefits sent alongside it (step 0)."""
    if error.level is AaaLevel.PAYER or error.code in CONNECTIVITY_CODES or error.code == PARTICIPANT_CODE:
        return True
    if error.code in MEMBER_DATA_CODES:
        return error.level is not AaaLevel.DEPENDENT or patient_is_dependent
    return False


def normalize_response(
    http_status: int, body: Mapping[str, Any] | None, context: NormalizationContext
) -> NormalizedEligibility:
    """Outcome (VERIFIED / NOT_FOUND / FAILED + retry hint) and, when VERIFIED, the summary."""
    if http_status not in (200, 400) or body is None:
        return NormalizedEligibility(_http_failure(http_status))
    errors = collect_aaa_errors(body)
    aaa = classify_aaa(errors, http_status)
    if http_status == 400:
        return NormalizedEligibility(aaa.outcome() if aaa else _http_failure(400), None, aaa)

    raw_benefits = body.get("benefitsInformation")
    has_benefits = isinstance(raw_benefits, list)
    if aaa is not None and (
        not has_benefits or any(_concerns_patient(e, context.patient_is_dependent) for e in errors)
    ):
        return NormalizedEligibility(aaa.outcome(), None, aaa)
    if not has_benefits and not mappings(body.get("planStatus")):
        return NormalizedEligibility(CheckOutcome(CheckStatus.FAILED, st.NO_BENEFITS_RETURNED), None, aaa)

    summary = build_summary(body, context, ignored_aaa=aaa is not None)
    codes = aaa.codes if aaa else ()
    return NormalizedEligibility(CheckOutcome(CheckStatus.VERIFIED, aaa_codes=codes), summary, aaa)


# ---------------------------------------------------------------- step 2: active


@dataclass(frozen=True, slots=True)
class _Status:
    code: str
    name: str | None
    service_type_codes: tuple[str, ...]
    index: int | None


def _status_entries(
    entries: Sequence[Entry], body: Mapping[str, Any], has_benefits: bool, requested: Sequence[str]
) -> list[_Status]:
    """Status lines for STC 30; else (our extension, e.g. a dental-only check) for a requested STC; else STC-less."""
    if has_benefits:
        found = [_Status(e.code, e.name, e.service_type_codes, e.position) for e in entries if e.code in STATUS_CODES]
    else:  # deprecated planStatus: fallback only when benefitsInformation is absent
        found = []
        for item in mappings(body.get("planStatus")):
            codes = item.get("serviceTypeCodes")
            stcs = tuple(c for c in codes if isinstance(c, str)) if isinstance(codes, list) else ()
            found.append(_Status(text(item.get("statusCode")) or "", text(item.get("status")), stcs, None))
    with_30 = [s for s in found if PLAN_COVERAGE_STC in s.service_type_codes]
    with_requested = [s for s in found if set(requested) & set(s.service_type_codes)]
    return with_30 or with_requested or [s for s in found if not s.service_type_codes]


def _active(statuses: Sequence[_Status]) -> tuple[bool | None, _Status | None]:
    active = [s for s in statuses if s.code in ACTIVE_STATUS_CODES]
    inactive = [s for s in statuses if s.code in INACTIVE_STATUS_CODES]
    if active and not inactive:
        return True, active[0]
    if inactive and not active:
        return False, inactive[0]
    return None, statuses[0] if statuses else None


# ---------------------------------------------------------------- step 3: plan fields and dates


def _first(*values: object) -> str | None:
    return next((v for v in (text(value) for value in values) if v), None)


@dataclass(frozen=True, slots=True)
class _PlanDates:
    effective: dt.date | None
    termination: dt.date | None
    eligibility_begin: dt.date | None
    earliest_end: dt.date | None


def _plan_dates(info: Mapping[str, Any]) -> _PlanDates:
    def get(key: str) -> tuple[dt.date | None, dt.date | None, bool]:
        parsed = date_value(info.get(key))
        return (parsed.begin, parsed.end, parsed.is_range) if parsed else (None, None, False)

    plan_begin, _, _ = get("planBegin")
    plan_end, _, _ = get("planEnd")
    plan_a, plan_b, plan_is_range = get("plan")
    elig_begin, _, _ = get("eligibilityBegin")
    elig_end, _, _ = get("eligibilityEnd")
    elig_a, elig_b, elig_is_range = get("eligibility")
    policy_effective, _, _ = get("policyEffective")
    policy_expiration, _, _ = get("policyExpiration")

    plan_range_begin = plan_a if plan_is_range else None
    elig_range_begin = elig_a if elig_is_range else None
    single_plan = plan_a if not plan_is_range else None
    effective = next(
        (d for d in (plan_begin, plan_range_begin, policy_effective, elig_begin, elig_range_begin, single_plan) if d),
        None,
    )
    ends = [d for d in (plan_end, plan_b, elig_end, elig_b, policy_expiration) if d]
    termination = next((d for d in (plan_end, plan_b, elig_end, elig_b, policy_expiration) if d), None)
    eligibility_begin = elig_begin or elig_range_begin or (elig_a if not elig_is_range else None)
    return _PlanDates(effective, termination, eligibility_begin, min(ends) if ends else None)


# ---------------------------------------------------------------- step 4: accumulators


def _max_flagged(values: Sequence[Decimal], flag: str, flags: list[str]) -> Decimal | None:
    if not values:
        return None
    if len(set(values)) > 1:
        flags.append(flag)
    return max(values)


def _bucket(entries: Sequence[Entry]) -> Bucket | None:
    valued = [e for e in entries if e.amount is not None]
    if not valued:
        return None
    flags: list[str] = []
    by_qualifier: dict[str, list[Decimal]] = {}
    for entry in valued:
        assert entry.amount is not None and entry.time_qualifier is not None
        by_qualifier.setdefault(entry.time_qualifier, []).append(entry.amount)
    period = next((q for q in TOTAL_QUALIFIERS if q in by_qualifier), None)
    total = _max_flagged(by_qualifier.get(period, []) if period else [], "AMBIGUOUS_TOTAL", flags)
    remaining = _max_flagged(by_qualifier.get(REMAINING_QUALIFIER, []), "AMBIGUOUS_REMAINING", flags)
    met_reported = _max_flagged(by_qualifier.get(MET_QUALIFIER, []), "AMBIGUOUS_MET_REPORTED", flags)
    deciding = {period, REMAINING_QUALIFIER, MET_QUALIFIER}
    used = [e.position for e in valued if e.time_qualifier in deciding]
    if total is None and remaining is None and met_reported is None:
        return None

    met: Decimal | None = None
    if total is not None and remaining is not None:
        if remaining > total:
            flags.append(INCONSISTENT)
        else:
            met = total - remaining
    elif total is not None and met_reported is not None:
        met = met_reported
        if met_reported > total:
            flags.append(INCONSISTENT)
        else:
            remaining = total - met_reported
    if met is not None and met_reported is not None and met != met_reported and INCONSISTENT not in flags:
        flags.append(INCONSISTENT)
    return Bucket(period, total, remaining, met, met_reported, tuple(flags), tuple(sorted(set(used))))


def _accumulator(entries: Sequence[Entry], benefit_code: str, summary_flags: list[str]) -> Accumulator:
    candidates = [
        e
        for e in entries
        if e.code == benefit_code
        and (PLAN_COVERAGE_STC in e.service_type_codes or not e.service_type_codes)
        and e.time_qualifier in ANNUAL_QUALIFIERS
    ]
    has_explicit_individual = any(e.level in INDIVIDUAL_LEVELS for e in candidates)
    cells: dict[tuple[str, str], list[Entry]] = {}
    for entry in candidates:
        if entry.level in INDIVIDUAL_LEVELS or (entry.level is None and not has_explicit_individual):
            level = "individual"
        elif entry.level in FAMILY_LEVELS:
            level = "family"
        else:
            if entry.level is not None and UNMAPPED_COVERAGE_LEVEL not in summary_flags:
                summary_flags.append(UNMAPPED_COVERAGE_LEVEL)
            continue
        for network in entry.networks:
            cells.setdefault((level, network), []).append(entry)

    def pair(level: str) -> NetworkBuckets:
        return NetworkBuckets(_bucket(cells.get((level, IN), [])), _bucket(cells.get((level, OUT), [])))

    return Accumulator(individual=pair("individual"), family=pair("family"))


# ---------------------------------------------------------------- step 5: copay / coinsurance


def _amount(entry: Entry) -> Decimal:
    assert entry.amount is not None
    return entry.amount


def _fraction(entry: Entry) -> Decimal:
    assert entry.fraction is not None
    return entry.fraction


def _pick(
    candidates: Sequence[Entry], value_of: Callable[[Entry], Decimal], flag: str, flags: list[str]
) -> tuple[Decimal | None, tuple[Candidate, ...], list[int]]:
    """Per-visit lines first, then the most specific (shortest STC list); distinct values -> max + flag."""
    if not candidates:
        return None, (), []
    per_visit = [e for e in candidates if e.time_qualifier in (None, PER_VISIT_QUALIFIER)]
    pool = per_visit or list(candidates)
    shortest = min(len(e.service_type_codes) for e in pool)
    pool = [e for e in pool if len(e.service_type_codes) == shortest]
    values: list[Decimal] = [value_of(e) for e in pool]
    refs = [e.position for e in pool]
    if len(set(values)) == 1:
        return values[0], (), refs
    flags.append(flag)
    listed = tuple(Candidate(v, e.notes, e.place_of_service, e.position) for v, e in zip(values, pool, strict=True))
    return max(values), listed, refs


_NOT_RETURNED: Final = CostShareCell(flags=(STC_NOT_RETURNED,))  # frozen, so one instance serves every such cell


def _cell(shares: Sequence[Entry], stc: str, network: str) -> CostShareCell:
    """`shares`: the A/B entries not at family level (what `build_summary` picks out once)."""
    copays: list[Entry] = []
    coinsurances: list[Entry] = []
    for e in shares:
        if stc in e.service_type_codes and network in e.networks:
            if e.code == "B":
                if e.amount is not None:
                    copays.append(e)
            elif e.fraction is not None:
                coinsurances.append(e)
    if not copays and not coinsurances:
        return _NOT_RETURNED
    flags: list[str] = []
    copay, copay_list, copay_refs = _pick(copays, _amount, AMBIGUOUS_COPAY, flags)
    fraction, coins_list, coins_refs = _pick(coinsurances, _fraction, AMBIGUOUS_COINSURANCE, flags)
    if copay is None and fraction is None:
        flags.append(STC_NOT_RETURNED)
    coins_list = tuple(
        Candidate(percent_from_fraction(c.value), c.notes, c.place_of_service, c.source_ref) for c in coins_list
    )
    return CostShareCell(
        copay=copay,
        coinsurance_percent=percent_from_fraction(fraction) if fraction is not None else None,
        flags=tuple(flags),
        copay_candidates=copay_list,
        coinsurance_candidates=coins_list,
        source_refs=tuple(sorted({*copay_refs, *coins_refs})),
    )


def _reported_codes(requested: Sequence[str], entries: Sequence[Entry]) -> list[str]:
    codes = list(dict.fromkeys(requested))
    if codes == [PLAN_COVERAGE_STC]:
        listed = {c for e in entries if e.code in ("A", "B") for c in e.service_type_codes}
        codes += [c for c in OFFICE_VISIT_EXTRAS if c in listed]
    return codes


def _headline(cell_of: Callable[[str, str], CostShareCell], network: str) -> OfficeVisitHeadline | None:
    for stc in OFFICE_VISIT_HEADLINE:
        cell = cell_of(stc, network)
        if cell.copay is not None or cell.coinsurance_percent is not None:
            return OfficeVisitHeadline(stc, cell.copay, cell.coinsurance_percent, cell.source_refs)
    return None


def _cost_share_lines(entries: Iterable[Entry]) -> tuple[CostShareLine, ...]:
    lines: list[CostShareLine] = []
    for e in entries:
        code = e.code
        if code == "B":
            kind, amount, percent = CostShareKind.COPAY, e.amount, None
        elif code == "A":
            fraction = e.fraction
            kind, amount = CostShareKind.COINSURANCE, None
            percent = percent_from_fraction(fraction) if fraction is not None else None
        else:
            continue
        # positional (kind, service_type_codes, network_code, coverage_level_code, time_qualifier_code, amount,
        # percent, notes, place_of_service, auth_or_cert_indicator, source_ref): keywords cost a third of the call
        lines.append(CostShareLine(kind, e.service_type_codes, e.network, e.level, e.time_qualifier, amount, percent,
                                   e.notes, e.place_of_service, e.auth_or_cert, e.position))
    return tuple(lines)


_SERVICE_LINE_KINDS: Final = {"C": ServiceLineKind.DEDUCTIBLE, "G": ServiceLineKind.OUT_OF_POCKET,
                               "F": ServiceLineKind.LIMITATION, "I": ServiceLineKind.NOT_COVERED}


def _service_lines(entries: Iterable[Entry]) -> tuple[ServiceLine, ...]:
    """§7.1 of estimate-from-eligibility.md: C/G lines of specific services (non-empty STC list without 30),
    and every F (limitation) and I (not covered) line, as sent."""
    lines: list[ServiceLine] = []
    for e in entries:
        kind = _SERVICE_LINE_KINDS.get(e.code)
        if kind is None:
            continue
        stcs = e.service_type_codes
        if e.code in ("C", "G") and (not stcs or PLAN_COVERAGE_STC in stcs):
            continue
        percent = percent_from_fraction(e.fraction) if e.fraction is not None else None
        lines.append(ServiceLine(kind, stcs, e.network, e.level, e.time_qualifier, e.amount, percent,
                                 e.quantity_qualifier, e.quantity, e.notes, e.place_of_service, e.auth_or_cert,
                                 e.position))
    return tuple(lines)


def _plan_coverages(entries: Iterable[Entry]) -> tuple[PlanCoverage, ...]:
    """§7.2: distinct (planCoverage, insuranceTypeCode) of the active (1–5) STC-30 lines, in order of appearance."""
    found: dict[tuple[str | None, str | None], list[int]] = {}
    for e in entries:
        if e.code in ACTIVE_STATUS_CODES and PLAN_COVERAGE_STC in e.service_type_codes:
            found.setdefault((e.plan_coverage, e.insurance_type), []).append(e.position)
    return tuple(PlanCoverage(plan, ins, tuple(refs)) for (plan, ins), refs in found.items())


def _entity_text(entity: Mapping[str, Any]) -> str:
    name = text(entity.get("entityName")) or text(entity.get("entityIdentifier")) or "entity"
    contacts = [
        f"{text(c.get('communicationMode')) or 'contact'} {number}"
        for c in mappings(mapping(entity.get("contactInformation")).get("contacts"))
        if (number := text(c.get("communicationNumber")))
    ]
    return f"{name} ({'; '.join(contacts)})" if contacts else name


def _notes(entries: Iterable[Entry]) -> tuple[Note, ...]:
    notes: list[Note] = []
    for e in entries:
        stcs = e.service_type_codes
        if e.auth_or_cert == "Y":
            text_ = "; ".join(e.notes) or "Prior authorization or certification required"
            notes.append(Note(NoteKind.AUTH_REQUIRED, stcs, text_, e.position))
        elif e.notes and e.code not in ("A", "B"):
            notes.extend(Note(NoteKind.INFO, stcs, n, e.position) for n in e.notes)
        if e.code == "L":
            notes.extend(Note(NoteKind.PCP, stcs, _entity_text(r), e.position) for r in e.related_entities)
        elif e.code in ("N", "U"):
            notes.extend(Note(NoteKind.RELATED_ENTITY, stcs, _entity_text(r), e.position) for r in e.related_entities)
    return tuple(notes)


# ---------------------------------------------------------------- the summary


def build_summary(
    body: Mapping[str, Any], context: NormalizationContext, *, ignored_aaa: bool = False
) -> EligibilitySummary:
    """Steps 1–5b on a body already known to carry benefits (or, as a fallback, planStatus)."""
    raw_benefits = body.get("benefitsInformation")
    has_benefits = isinstance(raw_benefits, list)
    all_entries = parse_entries(raw_benefits) if isinstance(raw_benefits, list) else []
    dos = context.date_of_service
    entries = [e for e in all_entries if e.valid_on(dos)]
    flags: list[str] = []
    if ignored_aaa:
        flags.append(AAA_ERRORS_IGNORED)
    if not has_benefits:
        flags.append(PLAN_STATUS_FALLBACK)

    statuses = _status_entries(entries, body, has_benefits, context.service_type_codes)
    active, status = _active(statuses)
    if active is None:
        flags.append(COVERAGE_STATUS_UNCLEAR)
    dates = _plan_dates(mapping(body.get("planDateInformation")))
    outside = (dates.earliest_end is not None and dos > dates.earliest_end) or (
        dates.effective is not None and dos < dates.effective
    )
    if outside:
        active = False
        flags.append(DOS_OUTSIDE_PLAN_DATES)

    plan_info = mapping(body.get("planInformation"))
    subscriber = mapping(body.get("subscriber"))
    dependent = next(iter(mappings(body.get("dependents"))), {})
    payer = mapping(body.get("payer"))
    meta = mapping(body.get("meta"))
    coverage_30 = [e for e in entries if e.code in STATUS_CODES and PLAN_COVERAGE_STC in e.service_type_codes]
    ordered = [e for e in coverage_30 if e.code == "1"] + [e for e in coverage_30 if e.code != "1"]
    plan_name = _first(
        next((e.plan_coverage for e in ordered if e.plan_coverage), None),
        subscriber.get("planDescription"),
        plan_info.get("planDescription"),
        *(status.get("planDetails") for status in mappings(body.get("planStatus"))),
    )
    deductible = _accumulator(entries, "C", flags)
    out_of_pocket = _accumulator(entries, "G", flags)

    # Cells depend only on (STC, network): the headline reuses those of the reported services. Only
    # individual-level A/B lines can enter a cell, so they are picked out once.
    shares = [e for e in entries if e.code in ("A", "B") and e.level not in FAMILY_LEVELS]
    cells: dict[tuple[str, str], CostShareCell] = {}

    def cell_of(stc: str, network: str) -> CostShareCell:
        if (found := cells.get((stc, network))) is None:
            found = cells[stc, network] = _cell(shares, stc, network)
        return found

    services = tuple(
        ServiceCostShare(code, name_for(SERVICE_TYPES, code), cell_of(code, IN), cell_of(code, OUT))
        for code in _reported_codes(context.service_type_codes, entries)
    )
    return EligibilitySummary(
        active=active,
        coverage_status=CodeName(status.code, name_for(BENEFIT_CODES, status.code, status.name)) if status else None,
        plan_name=plan_name,
        insurance_type_code=next((e.insurance_type for e in ordered if e.insurance_type), None),
        group_number=_first(plan_info.get("groupNumber"), subscriber.get("groupNumber"), dependent.get("groupNumber")),
        group_name=_first(plan_info.get("groupDescription"), subscriber.get("groupDescription")),
        plan_number=_first(plan_info.get("planNumber"), subscriber.get("planNumber")),
        payer_id=context.payer_id or None,
        payer_reported_id=_first(payer.get("payorIdentification")),
        payer_name=_first(payer.get("name")),
        effective_date=dates.effective,
        termination_date=dates.termination,
        eligibility_begin_date=dates.eligibility_begin,
        deductible=deductible,
        out_of_pocket=out_of_pocket,
        service_cost_shares=services,
        office_visit_in_network=_headline(cell_of, IN),
        office_visit_out_of_network=_headline(cell_of, OUT),
        cost_shares=_cost_share_lines(all_entries),
        notes=_notes(all_entries),
        flags=tuple(flags),
        source_refs=tuple(s.index for s in statuses if s.index is not None),
        raw_ref=RawRef(stedi_id=_first(body.get("id")), trace_id=_first(meta.get("traceId"))),
        service_lines=_service_lines(all_entries),
        plan_coverages=_plan_coverages(entries),
        date_of_service=dos,
    )
