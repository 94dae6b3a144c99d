"""Micro-benchmark of the upstream client's own CPU per call (issue 13 §3): µs per call, no network.

* `resilience`: `Resilience.call` around an attempt that returns at once — the breaker, slot, deadline and
  retry bookkeeping every upstream call pays on the common (first attempt succeeds) path.
* `parse`: a real Benefits and Accumulators answer of the payer sandbox, from bytes to the validated models
  (JSON with exact Decimals, then pydantic), as `PayerApiClient._parse` does it.

Run: `python -m bench.bench_upstream_call` (prints one line per figure).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from server.clients.http import UpstreamConfig
from server.clients.models import AccumulatorsResponseModel, BenefitResponseModel, decode
from server.clients.resilience import Deadline, Resilience

MEMBER = "5~186103331+10+7+20260101+793854+8A+829"


def _per_call(fn: Callable[[], Any], n: int) -> float:
    for _ in range(min(n, 200)):
        fn()
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


async def _resilience(n: int) -> float:
    resilience = Resilience(registry=CollectorRegistry())
    cfg = UpstreamConfig("bench", "http://127.0.0.1:9")

    async def attempt() -> int:
        return 1

    for _ in range(200):
        await resilience.call(cfg, attempt, Deadline.after(5))
    started = time.perf_counter()
    for _ in range(n):
        await resilience.call(cfg, attempt, Deadline.after(5))
    elapsed = (time.perf_counter() - started) / n * 1e6
    await resilience.close()
    return elapsed


async def _bodies() -> tuple[bytes, bytes]:
    """One Benefits and one Accumulators answer, fetched from the payer sandbox over loopback."""
    import aiohttp

    from server.sandbox.payer import PayerSandboxConfig, start_payer_sandbox

    sandbox = await start_payer_sandbox(PayerSandboxConfig())
    try:
        cfg = sandbox.config
        async with aiohttp.ClientSession() as http:
            basic = aiohttp.encode_basic_auth(cfg.client_id, cfg.client_secret)
            async with http.post(sandbox.token_url, data={"grant_type": "client_credentials"},
                                 headers={"Authorization": basic}) as resp:
                token = (await resp.json())
            headers = {"Authorization": f"Bearer {token['access_token']}", "id_token": token.get("id_token", "")}
            request = {"benefitProductType": "Medical", "membershipID": MEMBER, "planIdentifier": "3~",
                       "serviceInfo": [{"serviceCodeInfo": {"code": "99214", "type": "CPT4",
                                                            "providerType": [{"code": "HO"}],
                                                            "placeOfService": [{"code": "11"}],
                                                            "providerSpecialty": [{"code": "08"}]}}]}
            async with http.post(sandbox.base_url.rstrip("/") + "/benefits/v3/retrieve", json=request,
                                 headers=headers) as resp:
                benefits = await resp.read()
            async with http.get(sandbox.base_url.rstrip("/") + "/accumulators/v1/read", headers=headers,
                                params={"membershipId": MEMBER, "planIdentifier": "3~"}) as resp:
                accumulators = await resp.read()
    finally:
        await sandbox.close()
    return benefits, accumulators


def main(n: int = 20_000) -> None:
    benefits, accumulators = asyncio.run(_bodies())
    print(f"resilience.call, first attempt succeeds: {asyncio.run(_resilience(n)):8.2f} µs/call")
    print(f"benefits answer ({len(benefits)} B) → models:    "
          f"{_per_call(lambda: decode(benefits, BenefitResponseModel), n // 4):8.2f} µs/call")
    print(f"accumulators answer ({len(accumulators)} B) → models: "
          f"{_per_call(lambda: decode(accumulators, AccumulatorsResponseModel), n // 4):8.2f} µs/call")


if __name__ == "__main__":
    main()
