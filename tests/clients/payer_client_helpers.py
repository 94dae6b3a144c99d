"""Shared helpers of the upstream-client tests (imported by conftest and the test modules)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from server.clients import PayerClients, PayerClientsConfig, TokenConfig, UpstreamConfig
from server.clients.models import BenefitRequestModel
from server.sandbox.payer import RunningSandbox

PPO_MEMBER = "5~186103331+10+7+20260101+793854+8A+829"
INACTIVE_MEMBER = "5~186103339+10+7+20250101+793869+8A+899"
BENEFITS = "/benefits/v3/retrieve"
ACCUMULATORS = "/accumulators/v1/read"
TOKEN = "/oauth2/token"

MakeClients = Callable[..., Awaitable[PayerClients]]
"""The `make_clients` fixture: `await make_clients(config=None, *, reg=None, **payer_config overrides)`."""

# Small backoff so retries cost milliseconds, not seconds.
FAST = dict(backoff_multiplier=0.01, backoff_max=0.05, backoff_jitter=0.01)


def benefit_request(
    member: str = PPO_MEMBER,
    code: str = "99214",
    *,
    code_type: str = "CPT4",
    provider_type: str = "HO",
    pos: str = "11",
    specialty: str = "08",
    product: str = "Medical",
    plan: str = "3~",
) -> BenefitRequestModel:
    return BenefitRequestModel.model_validate(
        {
            "benefitProductType": product,
            "membershipID": member,
            "planIdentifier": plan,
            "serviceInfo": [
                {
                    "serviceCodeInfo": {
                        "code": code,
                        "type": code_type,
                        "providerType": [{"code": provider_type}],
                        "placeOfService": [{"code": pos}],
                        "providerSpecialty": [{"code": specialty}],
                    }
                }
            ],
        }
    )


def payer_config(sandbox: RunningSandbox, **overrides: Any) -> PayerClientsConfig:
    """Client config for `sandbox`; `benefits=`, `accumulators=`, `payer-oauth` (via **{...}) or `token=` dicts override fields."""
    base: dict[str, Any] = dict(timeout=2.0, total_timeout=5.0, breaker_min_requests=20, breaker_ttl=30.0, **FAST)
    upstreams = {
        name: replace(UpstreamConfig(name, sandbox.base_url, **base), **overrides.pop(name, {}))
        for name in ("benefits", "accumulators", "payer-oauth")
    }
    token = replace(
        TokenConfig(sandbox.token_url, sandbox.config.client_id, sandbox.config.client_secret),
        **overrides.pop("token", {}),
    )
    return PayerClientsConfig(
        benefits=upstreams["benefits"],
        accumulators=upstreams["accumulators"],
        oauth=upstreams["payer-oauth"],
        token=token,
        **overrides,
    )
