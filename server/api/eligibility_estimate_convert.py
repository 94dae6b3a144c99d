"""EstimateFromEligibility wire <-> domain: validation of the request (spec §2: every problem at once, as
INVALID_ARGUMENT field violations with the spec's paths) and the answer, with `derived_inputs` as the exact
CalculateRequest of each point estimate."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import eligibility_estimate_pb2 as xpb
from costestimator.v1 import estimate_service_pb2 as epb

from server.api.benefit_convert import CODE_TYPES
from server.api.eligibility_convert import inquiry_from_pb
from server.api.errors import status_for
from server.api.estimate_convert import result_pb
from server.api.money import CURRENCY, money_to_decimal
from server.api.validation import RequestInvalid, Violations, check_enum, check_provider_count, check_provider_id
from server.domain.eligibility import EligibilityInquiry
from server.domain.eligibility.codes import REQUEST_SERVICE_TYPE_CODES
from server.domain.eligibility_estimate import (
    IN,
    OUT,
    AssumptionKind,
    ChainInputs,
    Completeness,
    EstimateProvider,
    ProviderEstimate,
    ProviderRole,
    ServiceToEstimate,
    mapped_row,
)
from server.domain.money import to_cents
from server.usecases.estimates import NoMatchingBenefit

_CPT: Final = re.compile(r"^\d{4}[0-9FTU]$")
_HCPCS: Final = re.compile(r"^[A-V]\d{4}$")
# The procedure's code systems this RPC can price, with the code format of each (spec §2).
_PROCEDURE_FORMATS: Final = {
    cpb.CODE_TYPE_CPT4: (_CPT, "must be a CPT code (4 digits + digit/F/T/U)"),
    cpb.CODE_TYPE_HCPCS: (_HCPCS, "must be a HCPCS code (A-V + 4 digits)"),
}
_STC: Final = re.compile(r"^[0-9A-Z]{1,2}$")
_POS: Final = re.compile(r"^\d{2}$")
MAX_SERVICE_TYPES: Final = 10
MAX_PROVIDERS: Final = 100  # spec §2; COSTEST_MAX_PROVIDERS can only lower it
_MAX_ID: Final = 64
_MAX_TEXT: Final = 64
_NETWORKS: Final = {cpb.NETWORK_CATEGORY_IN_NETWORK: IN, cpb.NETWORK_CATEGORY_OUT_OF_NETWORK: OUT}
_NETWORK_PB: Final = {IN: cpb.NETWORK_CATEGORY_IN_NETWORK, OUT: cpb.NETWORK_CATEGORY_OUT_OF_NETWORK}
_ROLES: Final = {xpb.PROVIDER_ROLE_UNSPECIFIED: None, xpb.PROVIDER_ROLE_PRIMARY_CARE: ProviderRole.PRIMARY_CARE,
                 xpb.PROVIDER_ROLE_SPECIALIST: ProviderRole.SPECIALIST}
_COMPLETENESS_PB: Final = {Completeness.COMPLETE: xpb.ESTIMATE_COMPLETENESS_COMPLETE,
                           Completeness.AMBIGUOUS: xpb.ESTIMATE_COMPLETENESS_AMBIGUOUS,
                           Completeness.INCOMPLETE: xpb.ESTIMATE_COMPLETENESS_INCOMPLETE}
_KIND_PB: Final = {AssumptionKind.GAP: xpb.ASSUMPTION_KIND_GAP, AssumptionKind.AMBIGUITY: xpb.ASSUMPTION_KIND_AMBIGUITY,
                   AssumptionKind.INFO: xpb.ASSUMPTION_KIND_INFO}
_INDICATOR: Final = {"Y": cpb.INDICATOR_YES, "N": cpb.INDICATOR_NO}
NOT_FOUND_MESSAGE: Final = "the eligibility answer has nothing for this service in the provider's network"


@dataclass(frozen=True, slots=True)
class EstimateFromEligibilityQuery:
    check_id: str | None
    inquiry: EligibilityInquiry | None
    service: ServiceToEstimate
    providers: tuple[EstimateProvider, ...]
    include_trace: bool


def _procedure(message: cpb.ServiceCode, procedure: str, v: Violations) -> None:
    """A given procedure's code type and code. The spec (§1 "CPT4 or HCPCS", §2 the two code formats) and the
    proto (`ServiceCode.code_type` is the code system of `code`, UNSPECIFIED refused in requests) say: the type is
    required, only CPT4 and HCPCS can be priced from a 271 (the D2 table maps procedures, not diagnoses, revenue or
    dental codes), and the code must have its type's format — an ICD-10-typed "99213" is refused, not read as CPT.
    A code type that is unset, unknown or unusable is reported on `service.procedure.code_type`; the code is then
    still checked against both formats, so every problem is listed at once."""
    path = "service.procedure.code_type"
    kind = message.code_type
    if check_enum(kind, CODE_TYPES, path, v) is not None and kind not in _PROCEDURE_FORMATS:
        v.add(path, "must be CODE_TYPE_CPT4 or CODE_TYPE_HCPCS: only procedure codes can be estimated")
    rule = _PROCEDURE_FORMATS.get(kind)
    if rule is not None:
        if not rule[0].match(procedure):
            v.add("service.procedure.code", rule[1])
    elif not (_CPT.match(procedure) or _HCPCS.match(procedure)):
        v.add("service.procedure.code", "must be a CPT code (4 digits + digit/F/T/U) or a HCPCS code (A-V + 4 digits)")


def _service(message: xpb.ServiceToEstimate, present: bool, v: Violations) -> ServiceToEstimate:
    procedure = message.procedure.code.strip().upper()
    raw_codes = list(message.service_type_codes)
    if not present or (not procedure and not raw_codes):
        v.add("service", "at least one of procedure or service_type_codes is required")
    if procedure:
        _procedure(message.procedure, procedure, v)
    codes: list[str] = []
    for i, raw in enumerate(raw_codes):
        code = raw.strip().upper()
        if not _STC.match(code) or code not in REQUEST_SERVICE_TYPE_CODES:
            v.add(f"service.service_type_codes[{i}]", "is not an X12 request service type code")
        elif code not in codes:
            codes.append(code)
    if len(codes) > MAX_SERVICE_TYPES:
        v.add("service.service_type_codes", f"at most {MAX_SERVICE_TYPES} distinct codes")
    place = message.place_of_service_code.strip()
    if place and not _POS.match(place):
        v.add("service.place_of_service_code", "must be empty or two digits")
    if procedure and not raw_codes and mapped_row(procedure, place or None) is None:
        v.add("service.service_type_codes", "required: the procedure has no service type mapping")
    return ServiceToEstimate(procedure or None, tuple(codes), place or None)


def _providers(items: Any, max_providers: int, v: Violations) -> list[EstimateProvider]:
    if not check_provider_count(items, max_providers, v):
        return []
    seen: set[str] = set()
    out = []
    for i, p in enumerate(items):
        path = f"providers[{i}]"
        ok = check_provider_id(p.provider_id, f"{path}.provider_id", seen, v, max_length=_MAX_ID)
        if len(p.display_name) > _MAX_TEXT:
            ok = v.require(False, f"{path}.display_name", f"at most {_MAX_TEXT} characters")
        network = _NETWORKS.get(p.network_category)
        if network is None:
            ok = v.require(False, f"{path}.network_category", "must be IN_NETWORK or OUT_OF_NETWORK")
        if p.role not in _ROLES:
            ok = v.require(False, f"{path}.role", f"unknown value {p.role}")
        amount = None
        if not p.HasField("allowed_amount"):
            v.add(f"{path}.allowed_amount", "is required")
        else:
            amount = money_to_decimal(p.allowed_amount, f"{path}.allowed_amount", v)
        if ok and network is not None and amount is not None:
            out.append(EstimateProvider(p.provider_id, network, amount, _ROLES[p.role]))
    return out


def query_from_pb(
    req: xpb.EstimateFromEligibilityRequest, *, max_providers: int, today: dt.date
) -> EstimateFromEligibilityQuery:
    """The validated query, or `RequestInvalid` listing every violation (spec §2)."""
    v = Violations()
    source = req.WhichOneof("eligibility")
    check_id: str | None = None
    inquiry: EligibilityInquiry | None = None
    if source is None:
        v.add("eligibility", "exactly one of check_id or inquiry is required")
    elif source == "check_id":
        check_id = req.check_id.strip()
        if not check_id or len(check_id) > 128 or not check_id.isprintable():
            v.add("eligibility", "check_id must be a non-empty id of at most 128 printable characters")
    else:
        try:
            inquiry = inquiry_from_pb(req.inquiry, today=today)
        except RequestInvalid as invalid:
            v.items.extend(invalid.violations)
    service = _service(req.service, req.HasField("service"), v)
    providers = _providers(req.providers, min(max_providers, MAX_PROVIDERS), v)
    v.raise_if_any()
    return EstimateFromEligibilityQuery(check_id, inquiry, service, tuple(providers), req.include_trace)


# ---------------------------------------------------------------- outbound


def _set_money(out: Any, amount: Decimal) -> None:
    cents = to_cents(amount)
    out.currency_code = CURRENCY
    units = int(cents)
    out.units, out.nanos = units, int((cents - units) * 1_000_000_000)


def derived_inputs_pb(inputs: ChainInputs, include_trace: bool, out: epb.CalculateRequest) -> None:
    """The point's chain inputs as the CalculateRequest that reproduces it."""
    c, oc = inputs.coverage, out.coverage
    oc.SetInParent()
    if c.copay is not None:
        _set_money(oc.copay, c.copay)
    if c.coinsurance_percent is not None:
        oc.coinsurance_percent.value = format(c.coinsurance_percent, "f")
    for pb_name, value in (
        ("service_covered", c.is_service_covered),
        ("copay_applies_out_of_pocket", c.copay_applies_out_of_pocket),
        ("coinsurance_applies_out_of_pocket", c.coins_applies_out_of_pocket),
        ("deductible_applies_out_of_pocket", c.deductible_applies_out_of_pocket),
        ("copay_counts_to_deductible", c.copay_count_to_deductible),
        ("copay_continues_when_deductible_met", c.copay_continue_when_deductible_met),
        ("copay_continues_when_out_of_pocket_max_met", c.copay_continue_when_out_of_pocket_max_met),
        ("deductible_before_copay", c.is_deductible_before_copay),
    ):
        setattr(oc, pb_name, _INDICATOR[str(value)])
    for r in c.related_accumulators:
        oc.related_accumulators.add(code=r.code or "", level=r.level or "",
                                    network_indicator_code=r.network_indicator_code or "")
    out.network = _NETWORK_PB[IN if c.network_category == "I" else OUT]
    for a in inputs.accumulators:
        acc = out.accumulators.add(code=a.code or "", level=a.level or "",
                                   network_indicator_code=a.network_indicator_code or "", limit_type=a.limit_type or "")
        if a.calculated_value is not None:
            acc.calculated_value.value = format(a.calculated_value, "f")
        if a.limit_value is not None:
            acc.limit_value.value = format(a.limit_value, "f")
    _set_money(out.service_amount, inputs.service_amount)
    out.include_trace = include_trace


def _shared_pb(e: ProviderEstimate, include_trace: bool, out: epb.EligibilityEstimate) -> None:
    """The part of an answer that depends on the provider's network and role only (not on the amount)."""
    out.service_type_code = e.service_type_code or ""
    for a in e.assumptions:
        out.assumptions.add(code=a.code, kind=_KIND_PB[a.kind], text=a.text, source_indices=a.source_indices)
    if e.found and e.point is not None:
        out.source_indices.extend(e.source_indices)
        if e.inputs is not None:
            derived_inputs_pb(e.inputs, include_trace, out.derived_inputs)


def estimate_pb(e: ProviderEstimate, include_trace: bool, out: epb.EligibilityEstimate,
                shared: epb.EligibilityEstimate | None = None) -> None:
    """One provider's answer; `shared` (from `_shared_pb` of a provider with the same plan) is copied in."""
    if shared is None:
        _shared_pb(e, include_trace, out)
    else:
        out.CopyFrom(shared)
    est = out.estimate
    est.provider_id = e.provider_id
    if include_trace:
        for d in e.decisions:
            est.trace.add(handler=d.step, decision=d.text)
    if not e.found or e.point is None:
        # NOT_FOUND with the same details as `Estimate`'s provider that no benefit fits (spec §1: "as in
        # `Estimate`"): ErrorInfo reason NO_MATCHING_BENEFIT, domain costestimator.v1, metadata provider_id.
        est.status.CopyFrom(status_for(NoMatchingBenefit(NOT_FOUND_MESSAGE), provider_id=e.provider_id))
        return
    est.status.SetInParent()
    result_pb(e.point, est)
    assert e.member_pays_low is not None and e.member_pays_high is not None and e.completeness is not None
    _set_money(out.member_pays_low, e.member_pays_low)
    _set_money(out.member_pays_high, e.member_pays_high)
    out.completeness = _COMPLETENESS_PB[e.completeness]
    if e.inputs is not None:
        _set_money(out.derived_inputs.service_amount, e.inputs.service_amount)


def response_pb(
    check_id: str, date_of_service: dt.date | None, estimates: tuple[ProviderEstimate, ...], include_trace: bool
) -> epb.EstimateFromEligibilityResponse:
    """The answer. Providers planned alike (same network and role: the same assumption and input objects) share
    the amount-independent part, built once and copied (the objects stay alive here, so their ids are keys)."""
    out = epb.EstimateFromEligibilityResponse(check_id=check_id)
    if date_of_service is not None:
        out.date_of_service.year, out.date_of_service.month = date_of_service.year, date_of_service.month
        out.date_of_service.day = date_of_service.day
    shared: dict[tuple[int, int, int], epb.EligibilityEstimate] = {}
    for e in estimates:
        inputs = e.inputs
        key = (id(e.assumptions), id(inputs.coverage) if inputs else 0, id(inputs.accumulators) if inputs else 0)
        template = shared.get(key)
        if template is None:
            template = shared[key] = epb.EligibilityEstimate()
            _shared_pb(e, include_trace, template)
        estimate_pb(e, include_trace, out.estimates.add(), template)
    return out
