"""Composition of the payer clients: one object to build at start and close at shutdown.

The composition root (server/app.py) maps settings onto `PayerClientsConfig`; tests use it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from prometheus_client import CollectorRegistry

from .accumulators import AccumulatorsClient
from .benefits import BenefitsClient
from .http import HttpPool, UpstreamConfig
from .resilience import CircuitState, Resilience
from .tokens import TokenConfig, TokenProvider

__all__ = ["PayerClients", "PayerClientsConfig"]


@dataclass(frozen=True)
class PayerClientsConfig:
    """The three payer upstreams (token endpoint, Benefits, Accumulators) and the breaker store."""

    benefits: UpstreamConfig
    accumulators: UpstreamConfig
    oauth: UpstreamConfig
    token: TokenConfig
    redis_url: str | None = None


class PayerClients:
    """Owns the HTTP pool, the resilience policy, the token provider and both API clients."""

    def __init__(self, config: PayerClientsConfig, *, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.pool = HttpPool([config.oauth, config.benefits, config.accumulators])
        self.resilience = Resilience(redis_url=config.redis_url, registry=registry)
        self.tokens = TokenProvider(config.token, self.pool[config.oauth.name], self.resilience)
        self.benefits = BenefitsClient(self.pool[config.benefits.name], self.tokens, self.resilience)
        self.accumulators = AccumulatorsClient(self.pool[config.accumulators.name], self.tokens, self.resilience)

    async def start(self) -> None:
        await self.pool.start()
        try:
            await self.resilience.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        await self.tokens.close()
        await self.pool.close()
        await self.resilience.close()

    async def circuit_states(self) -> dict[str, CircuitState]:
        """Breaker state per upstream, for health reporting."""
        return await self.resilience.states()

    async def __aenter__(self) -> PayerClients:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
