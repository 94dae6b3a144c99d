"""Accumulators API client: how much of each deductible / OOP max / limit the member has used."""

from __future__ import annotations

from functools import partial

from .http import UpstreamSession
from .models import AccumulatorsResponseModel, decode
from .payer_api import PayerApiClient
from .resilience import Resilience
from .tokens import TokenProvider

__all__ = ["ACCUMULATORS_PATH", "AccumulatorsClient"]

ACCUMULATORS_PATH = "/accumulators/v1/read"


class AccumulatorsClient(PayerApiClient):
    """`GET {base_url}{path}?membershipId=…&planIdentifier=…`; see `payer_api` for the status mapping."""

    def __init__(
        self,
        session: UpstreamSession,
        tokens: TokenProvider,
        resilience: Resilience,
        *,
        path: str = ACCUMULATORS_PATH,
    ) -> None:
        super().__init__(session, tokens, resilience)
        self._path = path

    async def get_accumulators(
        self, membership_id: str, plan_identifier: str, *, timeout: float | None
    ) -> AccumulatorsResponseModel:
        """The family's accumulators (use `.member(membership_id)` to pick the member's entry)."""
        return await self._exchange(
            "GET",
            self._path,
            partial(decode, kind=AccumulatorsResponseModel),
            timeout=timeout,
            params={"membershipId": membership_id, "planIdentifier": plan_identifier},
        )
