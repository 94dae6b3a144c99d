"""GetBenefit: ask the payer (through the benefit cache) for a member's services' benefits, then apply the seed's
optional filters. Takes and gives the types of `benefit_types`; the payer's wire models stay in here."""

from __future__ import annotations

from dataclasses import dataclass

from server.clients.models import (
    BenefitModel,
    BenefitRequestModel,
    BenefitResponseModel,
    CodeModel,
    CoverageModel,
    RequestServiceCodeInfoModel,
    RequestServiceInfoModel,
    ResponseServiceInfoModel,
)
from server.usecases.benefit_cache import BenefitCache
from server.usecases.benefit_types import (
    BenefitAnswer,
    BenefitQuery,
    BenefitSummary,
    CoverageSummary,
    ServiceAnswer,
    ServiceCode,
    ServiceQuery,
)
from server.usecases.wire_to_domain import related_from_wire

WIRE_NETWORK = {"in": "InNetwork", "out": "OutofNetwork"}


@dataclass(frozen=True)
class BenefitFilter:
    """The seed's `getBenefit`/`getBenefits` criteria; None means "any"."""

    network_category: str | None = None  # wire spelling: InNetwork / OutofNetwork
    benefit_tier_name: str | None = None
    benefit_code: int | None = None

    def accepts(self, benefit: BenefitModel) -> bool:
        if self.network_category and not same_network(benefit.networkCategory, self.network_category):
            return False
        tier = benefit.benefitTier.benefitTierName if benefit.benefitTier else None
        if self.benefit_tier_name and (tier or "").strip().upper() != self.benefit_tier_name.strip().upper():
            return False
        if self.benefit_code is not None and str(benefit.benefitCode) != str(self.benefit_code):
            return False
        return True


def same_network(a: str | None, b: str | None) -> bool:
    """Payers spell it InNetwork / OutofNetwork / OutOfNetwork / I / O: compare normalised."""
    return _network(a) == _network(b) and _network(a) is not None


def _network(text: str | None) -> str | None:
    key = "".join(ch for ch in (text or "").lower() if ch.isalnum())
    if key in ("innetwork", "i", "in"):
        return "in"
    if key in ("outofnetwork", "o", "out"):
        return "out"
    return None


# ---- query -> wire request ----------------------------------------------------------------------------------


def wire_request(query: BenefitQuery) -> BenefitRequestModel:
    """The Benefits API request for `query` (the cache keys on it, so one query is one wire request)."""
    return BenefitRequestModel(benefitProductType=query.product_type, membershipID=query.member_id,
                               planIdentifier=query.plan, serviceInfo=[_wire_service(s) for s in query.services])


def _wire_service(service: ServiceQuery) -> RequestServiceInfoModel:
    def codes(values: tuple[str, ...]) -> list[CodeModel]:
        return [CodeModel(code=c) for c in values]

    return RequestServiceInfoModel(serviceCodeInfo=RequestServiceCodeInfoModel(
        code=service.code, type=service.code_type, providerType=codes(service.provider_types),
        placeOfService=codes(service.places_of_service), providerSpecialty=codes(service.specialties)))


# ---- wire answer -> answer ------------------------------------------------------------------------------------


def answer_from_wire(response: BenefitResponseModel, criteria: BenefitFilter) -> BenefitAnswer:
    """The payer answer as the use case gives it, keeping the benefits `criteria` accepts: same services, benefits
    and order as the payer's (filtered while converting: the cached answer itself is never copied)."""
    return BenefitAnswer(services=tuple(_service_from_wire(info, criteria) for info in response.serviceInfo))


def _service_from_wire(info: ResponseServiceInfoModel, criteria: BenefitFilter) -> ServiceAnswer:
    return ServiceAnswer(
        service_codes=tuple(ServiceCode(s.code, s.type) for s in info.serviceCodeInfo),
        places_of_service=tuple(c.code for c in info.placeOfService),
        provider_types=tuple(c.code for c in info.providerType),
        specialties=tuple(c.code for c in info.providerSpecialty),
        benefits=tuple(_benefit_from_wire(b) for b in info.benefit if criteria.accepts(b)),
    )


def _benefit_from_wire(b: BenefitModel) -> BenefitSummary:
    return BenefitSummary(
        name=b.benefitName, code=b.benefitCode, initial_benefit=b.isInitialBenefit,
        network_category=b.networkCategory, tier_name=b.benefitTier.benefitTierName if b.benefitTier else None,
        provider=b.benefitProvider,
        provider_designations=tuple(p.providerDesignation for p in b.serviceProvider if p.providerDesignation),
        coverages=tuple(_coverage_from_wire(c) for c in b.coverages),
    )


def _coverage_from_wire(c: CoverageModel) -> CoverageSummary:
    return CoverageSummary(
        sequence_number=c.sequenceNumber, description=c.benefitDescription,
        copay=c.costShareCopay, coinsurance_percent=c.costShareCoinsurance,
        copay_applies_out_of_pocket=c.copayAppliesOutOfPocket,
        coinsurance_applies_out_of_pocket=c.coinsAppliesOutOfPocket,
        deductible_applies_out_of_pocket=c.deductibleAppliesOutOfPocket,
        copay_counts_to_deductible=c.copayCountToDeductibleIndicator,
        copay_continues_when_deductible_met=c.copayContinueWhenDeductibleMetIndicator,
        copay_continues_when_out_of_pocket_max_met=c.copayContinueWhenOutOfPocketMaxMetIndicator,
        deductible_before_copay=c.isDeductibleBeforeCopay, benefit_limitation=c.benefitLimitation,
        service_covered=c.isServiceCovered,
        related_accumulators=related_from_wire(c),
    )


class BenefitLookup:
    def __init__(self, benefits: BenefitCache) -> None:
        self._benefits = benefits

    async def get(
        self, query: BenefitQuery, criteria: BenefitFilter, *, timeout: float | None, tenant: str | None = None,
    ) -> BenefitAnswer:
        """`tenant`: the authenticated caller's, which scopes the benefit cache (None: straight to the payer)."""
        got = await self._benefits.get(tenant, wire_request(query), timeout=timeout)
        return answer_from_wire(got.answer, criteria)
