"""The payer side: Benefits and Accumulators clients, their tokens, and the embedded sandbox when no URLs are set."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from server.clients.payer import PayerClients, PayerClientsConfig
from server.clients.tokens import TokenConfig
from server.compose.shared import Resources
from server.sandbox.payer import PayerSandboxConfig, RunningSandbox, start_payer_sandbox

log = logging.getLogger(__name__)


@dataclass
class PayerSide:
    clients: PayerClients
    sandbox: RunningSandbox | None


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
        benefits=resources.upstream_config("benefits", benefits_base),
        accumulators=resources.upstream_config("accumulators", accumulators_base),
        oauth=resources.upstream_config("oauth", token_base),
        token=TokenConfig(url=token_url, client_id=client_id, client_secret=secret,
                          refresh_margin=s.token_refresh_margin_seconds),
        redis_url=s.redis_url,
        benefits_path=benefits_path,
        accumulators_path=accumulators_path,
    )
    clients = PayerClients(config, registry=resources.registry, resilience=resources.resilience)
    await clients.start()
    resources.exit.push_async_callback(clients.close)
    return PayerSide(clients, sandbox)
