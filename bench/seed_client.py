"""Baseline for StreamEstimates: a seed-style client (seed 000's loop), against the same payer stand-in.

Token fetched once, then per provider, one after another: a new HTTP session per call, the benefits call, the
accumulators call, then the same calculation the server runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import aiohttp

from server.clients.models import AccumulatorsResponseModel, BenefitRequestModel, BenefitResponseModel, decode
from server.domain.costshare import calculate
from server.usecases.benefit_selection import ProviderTraits, candidates
from server.usecases.wire_to_domain import accumulators_from_wire, coverage_from_wire

from .payloads import MEMBER, PLAN, SERVICE


async def seed_style(info: dict[str, Any], specialties: Sequence[str], providers: int) -> tuple[float, float]:
    """(first result, all results) in seconds for `providers` providers."""
    base = info["url"]
    started = time.perf_counter()
    async with aiohttp.ClientSession() as s, s.post(
            base + "/oauth2/token", data={"grant_type": "client_credentials"},
            auth=aiohttp.BasicAuth(info["client_id"], info["client_secret"])) as r:
        tok = await r.json()
    headers = {"Authorization": f"Bearer {tok['access_token']}", "id_token": tok["id_token"]}
    first = 0.0
    for n in range(providers):
        body = BenefitRequestModel.model_validate({
            "benefitProductType": "Medical", "membershipID": MEMBER, "planIdentifier": PLAN,
            "serviceInfo": [{"serviceCodeInfo": {"code": SERVICE, "type": "CPT4", "placeOfService": [{"code": "11"}],
                                                 "providerSpecialty": [{"code": specialties[n % len(specialties)]}]}}],
        }).to_wire()
        async with aiohttp.ClientSession() as s, s.post(
                base + "/benefits/v3/retrieve", data=body,
                headers={**headers, "Content-Type": "application/json"}) as r:
            benefits = decode(await r.read(), BenefitResponseModel)
        async with aiohttp.ClientSession() as s, s.get(
                base + "/accumulators/v1/read", params={"membershipId": MEMBER, "planIdentifier": PLAN},
                headers=headers) as r:
            accums = decode(await r.read(), AccumulatorsResponseModel)
        entry = accums.member(MEMBER)
        assert entry is not None
        options = candidates(benefits, ProviderTraits("InNetwork", "1" if n % 2 else "2", None))
        for c in options:
            calculate(coverage_from_wire(c.benefit, c.coverage), accumulators_from_wire(entry.accumulators),
                      Decimal(100 + n))
        if n == 0:
            first = time.perf_counter() - started
    return first, time.perf_counter() - started
