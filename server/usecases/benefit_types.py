"""GetBenefit's query and answer as the use case takes and gives them, so the gRPC edge never sees the payer's wire
models (their shape may change without touching the api). Text keeps the payer's spelling (blank is None), as the
domain's inputs do; money is exact Decimal."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from server.domain.costshare import RelatedAccumulator

__all__ = ["BenefitAnswer", "BenefitQuery", "BenefitSummary", "CoverageSummary", "ServiceAnswer", "ServiceCode",
           "ServiceQuery"]


# ---- the query ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceQuery:
    """One requested service: its code and the provider traits that pick benefits (payer spellings)."""

    code: str
    code_type: str  # CPT4, HCPCS, ...
    provider_types: tuple[str, ...] = ()
    places_of_service: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BenefitQuery:
    """A member's benefits for some services; the membership id is PHI, so it stays out of the repr."""

    member_id: str = field(repr=False)
    plan: str
    product_type: str  # Medical, Dental, Vision
    services: tuple[ServiceQuery, ...]


# ---- the answer --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoverageSummary:
    """One coverage of a benefit; indicators are the payer's Y/N words, judged by whoever shows them."""

    sequence_number: int | None = None
    description: str | None = None
    copay: Decimal | None = None
    coinsurance_percent: Decimal | None = None
    copay_applies_out_of_pocket: str | None = None
    coinsurance_applies_out_of_pocket: str | None = None
    deductible_applies_out_of_pocket: str | None = None
    copay_counts_to_deductible: str | None = None
    copay_continues_when_deductible_met: str | None = None
    copay_continues_when_out_of_pocket_max_met: str | None = None
    deductible_before_copay: str | None = None
    benefit_limitation: str | None = None
    service_covered: str | None = None
    related_accumulators: tuple[RelatedAccumulator, ...] = ()


@dataclass(frozen=True, slots=True)
class BenefitSummary:
    """One benefit of a service; `code` is as the payer sent it (a number, or text that may hold one)."""

    name: str | None = None
    code: int | str | None = None
    initial_benefit: str | None = None
    network_category: str | None = None
    tier_name: str | None = None
    provider: str | None = None
    provider_designations: tuple[str, ...] = ()
    coverages: tuple[CoverageSummary, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceCode:
    code: str
    code_type: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceAnswer:
    """The payer's echo of one service and the benefits that passed the filter, in the payer's order."""

    service_codes: tuple[ServiceCode, ...] = ()
    places_of_service: tuple[str, ...] = ()
    provider_types: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()
    benefits: tuple[BenefitSummary, ...] = ()


@dataclass(frozen=True, slots=True)
class BenefitAnswer:
    services: tuple[ServiceAnswer, ...] = ()
