"""StreamEstimates against a seed-style client, on the same payer sandbox in the same run.

50 providers spread over 5 distinct benefit requests, sandbox latency 100 ms per upstream call.
* ours: one StreamEstimates RPC over gRPC (accumulators once, one benefit call per distinct request, concurrent);
* seed-style: what seed 000 does — a new HTTP session per call, providers one after another, benefits and
  accumulators fetched per provider — then the same chain.
Prints a table and writes bench/results/estimates.json.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.type import money_pb2
from prometheus_client import CollectorRegistry

from server.app import Application
from server.clients.models import AccumulatorsResponseModel, BenefitRequestModel, BenefitResponseModel, parse_json
from server.settings import load_settings
from server.usecases.benefit_selection import ProviderTraits, candidates
from server.usecases.wire_to_domain import accumulators_from_wire, coverage_from_wire
from server.domain.costshare import calculate

RESULTS = Path(__file__).resolve().parent / "results" / "estimates.json"
LATENCY_MS = 100
MEMBER = "5~186103331+10+7+20260101+793854+8A+829"
SPECIALTIES = ["08", "20", "11", "30", "38"]  # five distinct benefit requests
PROVIDERS = [(f"prov-{i:02d}", SPECIALTIES[i % 5], "1" if i % 2 else "2", 100 + i) for i in range(50)]
RUNS = 7


def _request() -> epb.StreamEstimatesRequest:
    return epb.StreamEstimatesRequest(
        member=cpb.Member(membership_id=MEMBER, plan_identifier="3~"),
        product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL,
        service=epb.RequestedService(code="99214", code_type=cpb.CODE_TYPE_CPT4, place_of_service_code="11"),
        providers=[epb.Provider(provider_id=pid, network_category=cpb.NETWORK_CATEGORY_IN_NETWORK,
                                benefit_tier_name=tier, provider_specialty_code=spec,
                                negotiated_amount=money_pb2.Money(currency_code="USD", units=amount))
                   for pid, spec, tier, amount in PROVIDERS])


async def _ours(stub: Any, metadata: Any) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = 0.0
    count = 0
    async for reply in stub.StreamEstimates(_request(), metadata=metadata, timeout=30):
        if count == 0:
            first = time.perf_counter() - started
        count += 1
        assert reply.estimate.status.code == 0, reply.estimate.status
    return first, time.perf_counter() - started, count


async def _seed_style(base_url: str, token_url: str, client_id: str, secret: str) -> tuple[float, float, int]:
    """Seed 000's pattern: token cached, but a new ClientSession per call; providers one after another."""
    started = time.perf_counter()
    async with aiohttp.ClientSession() as s:  # the seed's TokenService call
        async with s.post(token_url, data={"grant_type": "client_credentials"},
                          auth=aiohttp.BasicAuth(client_id, secret)) as r:
            tok = await r.json()
    headers = {"Authorization": f"Bearer {tok['access_token']}", "id_token": tok["id_token"]}
    first = 0.0
    for n, (pid, spec, tier, amount) in enumerate(PROVIDERS):
        body = BenefitRequestModel.model_validate({
            "benefitProductType": "Medical", "membershipID": MEMBER, "planIdentifier": "3~",
            "serviceInfo": [{"serviceCodeInfo": {"code": "99214", "type": "CPT4", "placeOfService": [{"code": "11"}],
                                                 "providerSpecialty": [{"code": spec}]}}]}).to_wire()
        async with aiohttp.ClientSession() as s, s.post(
                base_url + "/benefits/v3/retrieve", data=body,
                headers={**headers, "Content-Type": "application/json"}) as r:
            benefits = BenefitResponseModel.model_validate(parse_json(await r.read()))
        async with aiohttp.ClientSession() as s, s.get(
                base_url + "/accumulators/v1/read", params={"membershipId": MEMBER, "planIdentifier": "3~"},
                headers=headers) as r:
            accums = AccumulatorsResponseModel.model_validate(parse_json(await r.read()))
        entry = accums.member(MEMBER)
        assert entry is not None
        options = candidates(benefits, ProviderTraits("InNetwork", tier, None))
        max(calculate(coverage_from_wire(c.benefit, c.coverage), accumulators_from_wire(entry.accumulators),
                      Decimal(amount)).member_pays for c in options)
        if n == 0:
            first = time.perf_counter() - started
    return first, time.perf_counter() - started, len(PROVIDERS)


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(port=0, data_dir=Path(tmp), sandbox_latency_ms=LATENCY_MS, log_level="WARNING")
        app = Application(settings, registry=CollectorRegistry())
        await app.start()
        try:
            assert app.payer is not None and app.payer.sandbox is not None
            sb = app.payer.sandbox
            metadata = (("authorization", f"Bearer {app.dev_token}"),)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
                stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
                await _ours(stub, metadata)  # warm-up: token, connections, imports
                ours = []
                for _ in range(RUNS):
                    before = dict(sb.faults.seen)
                    result = await _ours(stub, metadata)
                    calls = sum(sb.faults.seen.values()) - sum(before.values())
                    ours.append((*result, calls))
            cfg = sb.sandbox.config
            seed = await _seed_style(sb.base_url, sb.token_url, cfg.client_id, cfg.client_secret)
        finally:
            await app.stop(grace=0)
    first = statistics.median(r[0] for r in ours)
    wall = statistics.median(r[1] for r in ours)
    latency = LATENCY_MS / 1000
    return {
        "providers": len(PROVIDERS), "distinct_benefit_requests": len(SPECIALTIES), "sandbox_latency_ms": LATENCY_MS,
        "runs": RUNS,
        "ours_first_result_ms": round(first * 1000, 1), "ours_all_ms": round(wall * 1000, 1),
        "ours_upstream_calls": ours[-1][3], "expected_upstream_calls": len(SPECIALTIES) + 1,
        "seed_first_result_ms": round(seed[0] * 1000, 1), "seed_all_ms": round(seed[1] * 1000, 1),
        "speedup": round(seed[1] / wall, 1),
        "first_over_latency": round(first / latency, 3), "all_over_latency": round(wall / latency, 3),
        "targets": {"speedup": ">= 80", "first_over_latency": "<= 1.15", "all_over_latency": "<= 1.25",
                    "upstream_calls": "distinct benefit requests + 1"},
    }


def main() -> None:
    figures = asyncio.run(run())
    rows = [
        ("StreamEstimates, first result", f"{figures['ours_first_result_ms']} ms",
         f"{figures['first_over_latency']}x latency (target <= 1.15x)"),
        ("StreamEstimates, all 50", f"{figures['ours_all_ms']} ms",
         f"{figures['all_over_latency']}x latency (target <= 1.25x)"),
        ("seed-style client, all 50", f"{figures['seed_all_ms']} ms", f"speed-up {figures['speedup']}x (target >= 80x)"),
        ("upstream calls per request", str(figures["ours_upstream_calls"]),
         f"expected {figures['expected_upstream_calls']}"),
    ]
    print(f"{'measure':32} {'value':>12}  note")
    for name, value, note in rows:
        print(f"{name:32} {value:>12}  {note}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
