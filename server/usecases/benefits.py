"""GetBenefit: ask the payer (through the benefit cache) for a member's services' benefits, then apply the seed's
optional filters."""

from __future__ import annotations

from dataclasses import dataclass

from msgspec.structs import replace

from server.clients.models import BenefitModel, BenefitRequestModel, BenefitResponseModel
from server.usecases.benefit_cache import BenefitCache

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


def apply_filter(response: BenefitResponseModel, criteria: BenefitFilter) -> BenefitResponseModel:
    return replace(response, serviceInfo=tuple(
        replace(info, benefit=tuple(b for b in info.benefit if criteria.accepts(b))) for info in response.serviceInfo))


class BenefitLookup:
    def __init__(self, benefits: BenefitCache) -> None:
        self._benefits = benefits

    async def get(
        self, request: BenefitRequestModel, criteria: BenefitFilter, *, timeout: float | None,
        tenant: str | None = None,
    ) -> BenefitResponseModel:
        """`tenant`: the authenticated caller's, which scopes the benefit cache (None: straight to the payer)."""
        got = await self._benefits.get(tenant, request, timeout=timeout)
        return apply_filter(got.answer, criteria)
