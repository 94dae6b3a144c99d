"""Which benefit of the payer's answer applies to a provider (the seed's getBenefit filters, made explicit).

A provider selects on network (required), tier name (when given) and designation (when given: benefits for that
designation first; benefits without any designation otherwise). Every coverage of every remaining benefit is a
candidate; the estimate keeps the highest member pay (rule book §8 decision 27).
"""

from __future__ import annotations

from dataclasses import dataclass

from server.clients.models import BenefitModel, BenefitResponseModel, CoverageModel
from server.usecases.benefits import same_network


@dataclass(frozen=True)
class ProviderTraits:
    network: str  # wire spelling: InNetwork / OutofNetwork
    tier: str | None
    designation: str | None


@dataclass(frozen=True)
class Candidate:
    benefit: BenefitModel
    coverage: CoverageModel


def _tier(b: BenefitModel) -> str:
    return ((b.benefitTier.benefitTierName if b.benefitTier else None) or "").strip().upper()


def _designations(b: BenefitModel) -> set[str]:
    return {p.providerDesignation.strip().upper() for p in b.serviceProvider if p.providerDesignation}


def matching_benefits(answer: BenefitResponseModel, traits: ProviderTraits) -> list[BenefitModel]:
    benefits = [b for info in answer.serviceInfo for b in info.benefit if same_network(b.networkCategory, traits.network)]
    if traits.tier:
        benefits = [b for b in benefits if _tier(b) == traits.tier.strip().upper()]
    undesignated = [b for b in benefits if not _designations(b)]
    wanted = (traits.designation or "").strip().upper()
    if wanted:
        return [b for b in benefits if wanted in _designations(b)] or undesignated
    return undesignated or benefits


def candidates(answer: BenefitResponseModel, traits: ProviderTraits) -> list[Candidate]:
    return [Candidate(b, c) for b in matching_benefits(answer, traits) for c in b.coverages]
