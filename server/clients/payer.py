"""Composition of the payer clients: one object to build at start and close at shutdown.

The composition root (server/app.py) maps settings onto `PayerClientsConfig`; tests use it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from prometheus_client import CollectorRegistry

from .accumulators import ACCUMULATORS_PATH, AccumulatorsClient
from .benefits import BENEFITS_PATH, BenefitsClient
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
    benefits_path: str = BENEFITS_PATH
    accumulators_path: str = ACCUMULATORS_PATH


class PayerClients:
    """Owns the HTTP pool, the resilience policy, the token provider and both API clients."""

    def __init__(
        self,
        config: PayerClientsConfig,
        *,
        registry: CollectorRegistry | None = None,
        resilience: Resilience | None = None,
    ) -> None:
        """`resilience`: the process-wide policy when the application owns it (then it is not started/closed here)."""
        self.config = config
        self.pool = HttpPool([config.oauth, config.benefits, config.accumulators])
        self._owns_resilience = resilience is None
        self.resilience = resilience or Resilience(redis_url=config.redis_url, registry=registry)
        self.tokens = TokenProvider(config.token, self.pool[config.oauth.name], self.resilience)
        self.benefits = BenefitsClient(
            self.pool[config.benefits.name], self.tokens, self.resilience, path=config.benefits_path)
        self.accumulators = AccumulatorsClient(
            self.pool[config.accumulators.name], self.tokens, self.resilience, path=config.accumulators_path)

    async def start(self) -> None:
        await self.pool.start()
        try:
            if self._owns_resilience:
                await self.resilience.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        await self.tokens.close()
        await self.pool.close()
        if self._owns_resilience:
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
