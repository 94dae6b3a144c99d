"""Benefits API client: which coverage rules apply to a member's service (seed 000, made safe)."""

from __future__ import annotations

from functools import partial

from .http import UpstreamSession
from .models import BenefitRequestModel, BenefitResponseModel, decode
from .payer_api import PayerApiClient
from .resilience import Resilience
from .tokens import TokenProvider

__all__ = ["BENEFITS_PATH", "BenefitsClient"]

BENEFITS_PATH = "/benefits/v3/retrieve"


class BenefitsClient(PayerApiClient):
    """`POST {base_url}{path}` with the JSON BenefitRequest; see `payer_api` for the status mapping."""

    def __init__(
        self,
        session: UpstreamSession,
        tokens: TokenProvider,
        resilience: Resilience,
        *,
        path: str = BENEFITS_PATH,
    ) -> None:
        super().__init__(session, tokens, resilience)
        self._path = path

    async def get_benefits(self, request: BenefitRequestModel, *, timeout: float | None) -> BenefitResponseModel:
        """Benefits for every service of `request`; `timeout` is the caller's remaining time (None = none)."""
        return await self._exchange(
            "POST",
            self._path,
            partial(decode, kind=BenefitResponseModel),
            timeout=timeout,
            body=request.to_wire(),
        )
