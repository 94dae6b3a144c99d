"""The payer side: Benefits and Accumulators clients, their tokens, the embedded sandbox when no URLs are set, and
the benefit cache with the use cases built on them (estimates, benefit lookup)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from server.api.observability import ServiceMetrics
from server.cache.stores import MemoryStore, RedisStore, TtlStore

from server.clients.payer import PayerClients, PayerClientsConfig
from server.clients.tokens import TokenConfig
from server.compose.shared import Resources
from server.datadir import read_or_create_secret
from server.clients.models import BenefitResponseModel
from server.sandbox.payer import PayerSandboxConfig, RunningSandbox, start_payer_sandbox
from server.settings import Settings
from server.usecases.benefit_cache import BenefitCache, decode_answer, encode_answer
from server.usecases.benefits import BenefitLookup
from server.usecases.estimates import EstimateRunner

log = logging.getLogger(__name__)

CACHE_KEY_SECRET_FILE: Final = "cache-key-secret"


@dataclass
class PayerSide:
    clients: PayerClients
    sandbox: RunningSandbox | None
    benefit_cache: BenefitCache
    estimates: EstimateRunner
    benefit_lookup: BenefitLookup


def cache_key_secret(settings: Settings) -> bytes:
    """The configured secret, else a random one kept in the data dir (shared by processes sharing that dir).

    Processes on several hosts sharing one Redis must share the secret too: set COSTEST_CACHE_KEY_SECRET there.
    """
    if settings.cache_key_secret is not None:
        return settings.cache_key_secret.get_secret_value().encode()
    path = Path(settings.data_dir) / CACHE_KEY_SECRET_FILE
    secret = read_or_create_secret(path)
    if settings.redis_url:
        log.warning("COSTEST_CACHE_KEY_SECRET is not set: benefit cache keys in Redis are keyed with %s and only "
                    "shared by servers using that file", path)
    return secret.encode()


def _benefit_store(s: Settings) -> TtlStore[BenefitResponseModel] | None:
    if s.benefit_cache_ttl_seconds <= 0:
        log.info("benefit cache: off (COSTEST_BENEFIT_CACHE_TTL_SECONDS=0)")
        return None
    if s.redis_url:
        log.info("benefit cache: Redis, %.0fs", s.benefit_cache_ttl_seconds)
        return RedisStore(s.redis_url, ttl=s.benefit_cache_ttl_seconds, max_local_entries=s.benefit_cache_max_entries,
                          encode=encode_answer, decode=decode_answer)
    log.info("benefit cache: in process, %.0fs, at most %d answers", s.benefit_cache_ttl_seconds,
             s.benefit_cache_max_entries)
    return MemoryStore(ttl=s.benefit_cache_ttl_seconds, max_entries=s.benefit_cache_max_entries)


def _split(url: str) -> tuple[str, str]:
    """`https://host/a/b?q` → (`https://host`, `/a/b?q`): the session is per host, the path per client."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{parts.scheme}://{parts.netloc}", path + (f"?{parts.query}" if parts.query else "")


async def build_payer(resources: Resources) -> PayerSide:
    s = resources.settings
    sandbox: RunningSandbox | None = None
    if s.use_payer_sandbox:
        sandbox = await start_payer_sandbox(PayerSandboxConfig(latency=s.sandbox_latency_ms / 1000))
        resources.exit.push_async_callback(sandbox.close)
        benefits_url, accumulators_url, token_url = sandbox.benefits_url, sandbox.accumulators_url, sandbox.token_url
        client_id, secret = sandbox.sandbox.config.client_id, sandbox.sandbox.config.client_secret
        log.warning("payer upstreams: EMBEDDED SANDBOX on %s (set COSTEST_BENEFITS_URL, COSTEST_ACCUMULATORS_URL, "
                    "COSTEST_TOKEN_URL, COSTEST_CLIENT_ID, COSTEST_CLIENT_SECRET for the real payer)",
                    sandbox.base_url)
    else:
        assert s.benefits_url and s.accumulators_url and s.token_url and s.client_id and s.client_secret
        benefits_url, accumulators_url, token_url = s.benefits_url, s.accumulators_url, s.token_url
        client_id, secret = s.client_id, s.client_secret.get_secret_value()
        log.info("payer upstreams: %s, %s", urlsplit(benefits_url).netloc, urlsplit(accumulators_url).netloc)
    benefits_base, benefits_path = _split(benefits_url)
    accumulators_base, accumulators_path = _split(accumulators_url)
    token_base, _ = _split(token_url)
    config = PayerClientsConfig(
        benefits=resources.upstream_config("benefits", benefits_base, routes=(benefits_path,)),
        accumulators=resources.upstream_config("accumulators", accumulators_base, routes=(accumulators_path,)),
        oauth=resources.upstream_config("oauth", token_base, routes=(token_url,)),
        token=TokenConfig(url=token_url, client_id=client_id, client_secret=secret,
                          refresh_margin=s.token_refresh_margin_seconds),
        redis_url=s.redis_url,
        benefits_path=benefits_path,
        accumulators_path=accumulators_path,
    )
    clients = PayerClients(config, registry=resources.registry, resilience=resources.resilience)
    await clients.start()
    resources.exit.push_async_callback(clients.close)
    metrics = ServiceMetrics.for_registry(resources.registry)
    cache = BenefitCache(clients.benefits, _benefit_store(s), secret=cache_key_secret(s),
                         hits=metrics.cache_hits, misses=metrics.cache_misses)
    resources.exit.push_async_callback(cache.close)
    return PayerSide(
        clients, sandbox, cache,
        estimates=EstimateRunner(cache, clients.accumulators, fanout=s.effective_benefit_fanout),
        benefit_lookup=BenefitLookup(cache),
    )
