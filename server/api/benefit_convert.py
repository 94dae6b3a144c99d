"""GetBenefit pb <-> the use case's query and answer types, with field-level validation of the request."""

from __future__ import annotations

from collections.abc import Iterable

from costestimator.v1 import benefit_service_pb2 as bpb
from costestimator.v1 import common_pb2 as cpb

from server.api.money import decimal_to_money, decimal_to_pb
from server.api.validation import Violations, check_code, check_enum, check_member
from server.usecases.benefit_types import (
    BenefitAnswer,
    BenefitQuery,
    BenefitSummary,
    CoverageSummary,
    ServiceAnswer,
    ServiceQuery,
)
from server.usecases.benefits import WIRE_NETWORK, BenefitFilter

PRODUCT_TYPES = {
    cpb.BENEFIT_PRODUCT_TYPE_MEDICAL: "Medical",
    cpb.BENEFIT_PRODUCT_TYPE_DENTAL: "Dental",
    cpb.BENEFIT_PRODUCT_TYPE_VISION: "Vision",
}
CODE_TYPES = {
    cpb.CODE_TYPE_CPT4: "CPT4",
    cpb.CODE_TYPE_HCPCS: "HCPCS",
    cpb.CODE_TYPE_ICD10: "ICD10",
    cpb.CODE_TYPE_REVENUE: "REVENUE",
    cpb.CODE_TYPE_CDT: "CDT",
}
CODE_TYPE_BY_WIRE = {v.upper(): k for k, v in CODE_TYPES.items()}
NETWORKS = {cpb.NETWORK_CATEGORY_IN_NETWORK: WIRE_NETWORK["in"], cpb.NETWORK_CATEGORY_OUT_OF_NETWORK: WIRE_NETWORK["out"]}
_MAX_SERVICES, _MAX_CODES = 20, 20


def _codes(values: Iterable[str], path: str, v: Violations) -> tuple[str, ...]:
    items = list(values)
    if len(items) > _MAX_CODES:
        v.add(path, f"at most {_MAX_CODES} codes")
    return tuple(c for i, c in enumerate(items) if check_code(c, f"{path}[{i}]", v, required=True))


def benefit_query_from_pb(req: bpb.GetBenefitRequest) -> tuple[BenefitQuery | None, BenefitFilter, Violations]:
    """The query and the filter, or None with every field violation at once."""
    v = Violations()
    product = check_enum(req.product_type, PRODUCT_TYPES, "product_type", v)
    if not req.HasField("member"):
        v.add("member", "is required")
    else:
        check_member(req.member, "member", v)
    if not req.service_infos:
        v.add("service_infos", "at least one service is required")
    elif len(req.service_infos) > _MAX_SERVICES:
        v.add("service_infos", f"at most {_MAX_SERVICES} services")
    infos = []
    for i, info in enumerate(req.service_infos):
        path = f"service_infos[{i}]"
        code_ok = check_code(info.service_code.code, f"{path}.service_code.code", v, required=True)
        code_type = check_enum(info.service_code.code_type, CODE_TYPES, f"{path}.service_code.code_type", v)
        codes = (_codes(info.provider_type_codes, f"{path}.provider_type_codes", v),
                 _codes(info.place_of_service_codes, f"{path}.place_of_service_codes", v),
                 _codes(info.provider_specialty_codes, f"{path}.provider_specialty_codes", v))
        if code_ok and code_type:
            infos.append(ServiceQuery(code=info.service_code.code, code_type=code_type, provider_types=codes[0],
                                      places_of_service=codes[1], specialties=codes[2]))
    network = check_enum(req.network_category, NETWORKS, "network_category", v, required=False)
    if len(req.benefit_tier_name) > 16:
        v.add("benefit_tier_name", "at most 16 characters")
    criteria = BenefitFilter(network, req.benefit_tier_name or None,
                             req.benefit_code if req.HasField("benefit_code") else None)
    if v or product is None:
        return None, criteria, v
    query = BenefitQuery(member_id=req.member.membership_id, plan=req.member.plan_identifier, product_type=product,
                         services=tuple(infos))
    return query, criteria, v


# ---- response -------------------------------------------------------------------------------------------------

_YES, _NO = {"y", "yes", "true"}, {"n", "no", "false"}


def indicator_pb(value: str | None) -> cpb.Indicator.ValueType:
    word = (value or "").strip().lower()
    if word in _YES:
        return cpb.INDICATOR_YES
    if word in _NO:
        return cpb.INDICATOR_NO
    return cpb.INDICATOR_UNSPECIFIED


def network_pb(value: str | None) -> cpb.NetworkCategory.ValueType:
    key = "".join(ch for ch in (value or "").lower() if ch.isalnum())
    if key in ("innetwork", "i"):
        return cpb.NETWORK_CATEGORY_IN_NETWORK
    if key in ("outofnetwork", "o"):
        return cpb.NETWORK_CATEGORY_OUT_OF_NETWORK
    return cpb.NETWORK_CATEGORY_UNSPECIFIED


def coverage_pb(c: CoverageSummary) -> cpb.Coverage:
    out = cpb.Coverage(
        sequence_number=c.sequence_number or 0,
        benefit_description=c.description or "",
        copay_applies_out_of_pocket=indicator_pb(c.copay_applies_out_of_pocket),
        coinsurance_applies_out_of_pocket=indicator_pb(c.coinsurance_applies_out_of_pocket),
        deductible_applies_out_of_pocket=indicator_pb(c.deductible_applies_out_of_pocket),
        copay_counts_to_deductible=indicator_pb(c.copay_counts_to_deductible),
        copay_continues_when_deductible_met=indicator_pb(c.copay_continues_when_deductible_met),
        copay_continues_when_out_of_pocket_max_met=indicator_pb(c.copay_continues_when_out_of_pocket_max_met),
        deductible_before_copay=indicator_pb(c.deductible_before_copay),
        benefit_limitation=indicator_pb(c.benefit_limitation),
        service_covered=indicator_pb(c.service_covered),
        related_accumulators=[
            cpb.RelatedAccumulator(code=r.code or "", level=r.level or "", deductible_code=r.deductible_code or "",
                                   accum_ex_code=r.accum_ex_code or "",
                                   network_indicator_code=r.network_indicator_code or "")
            for r in c.related_accumulators
        ],
    )
    if c.copay is not None:
        out.copay.CopyFrom(decimal_to_money(c.copay))
    if c.coinsurance_percent is not None:
        out.coinsurance_percent.CopyFrom(decimal_to_pb(c.coinsurance_percent))
    return out


def benefit_pb(b: BenefitSummary) -> bpb.Benefit:
    code = b.code
    return bpb.Benefit(
        benefit_name=b.name or "",
        benefit_code=int(code) if code is not None and str(code).lstrip("-").isdigit() else 0,
        initial_benefit=indicator_pb(b.initial_benefit),
        network_category=network_pb(b.network_category),
        benefit_tier_name=b.tier_name or "",
        benefit_provider=b.provider or "",
        provider_designations=list(b.provider_designations),
        coverages=[coverage_pb(c) for c in b.coverages],
    )


def service_pb(s: ServiceAnswer) -> bpb.ServiceBenefits:
    return bpb.ServiceBenefits(
        service_codes=[cpb.ServiceCode(code=c.code, code_type=CODE_TYPE_BY_WIRE.get((c.code_type or "").upper(),
                                                                                    cpb.CODE_TYPE_UNSPECIFIED))
                       for c in s.service_codes],
        place_of_service_codes=list(s.places_of_service),
        provider_type_codes=list(s.provider_types),
        provider_specialty_codes=list(s.specialties),
        benefits=[benefit_pb(b) for b in s.benefits],
    )


def benefit_response_pb(answer: BenefitAnswer) -> bpb.GetBenefitResponse:
    return bpb.GetBenefitResponse(service_infos=[service_pb(s) for s in answer.services])
