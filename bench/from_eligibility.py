"""Figure `fromelig`: server CPU for one EstimateFromEligibility with a stored check id and 100 providers
(issue 11: ≤ 20 ms). The check is stored once (CheckEligibility, sandbox member SBX100001); then sequential
RPCs, the server process tree's CPU ticks read before and after each round (so client CPU is not counted)."""

from __future__ import annotations

import os
import time
from decimal import Decimal
from typing import TYPE_CHECKING

import grpc
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import eligibility_estimate_pb2 as xpb
from costestimator.v1 import eligibility_service_pb2 as elpb
from costestimator.v1 import estimate_service_pb2 as epb
from google.type import money_pb2

from .payloads import inquiry
from .procs import cpu_ticks, tree
from .report import Row, Spread, Target, row

if TYPE_CHECKING:
    from .figures import Context

PROVIDERS = 100
TARGET_MS = 20.0


def request(check_id: str) -> xpb.EstimateFromEligibilityRequest:
    """99213 at the office, 100 providers: in and out of network, all three roles, 100 distinct amounts."""
    roles = (xpb.PROVIDER_ROLE_UNSPECIFIED, xpb.PROVIDER_ROLE_PRIMARY_CARE, xpb.PROVIDER_ROLE_SPECIALIST)
    providers = []
    for i in range(PROVIDERS):
        amount = Decimal(120) + Decimal(i) * Decimal("3.37")
        units = int(amount)
        providers.append(xpb.EligibilityProvider(
            provider_id=f"provider-{i}",
            network_category=cpb.NETWORK_CATEGORY_OUT_OF_NETWORK if i % 4 == 3 else cpb.NETWORK_CATEGORY_IN_NETWORK,
            allowed_amount=money_pb2.Money(currency_code="USD", units=units, nanos=int((amount - units) * 10**9)),
            role=roles[i % 3]))
    service = xpb.ServiceToEstimate(place_of_service_code="11")
    service.procedure.code, service.procedure.code_type = "99213", cpb.CODE_TYPE_CPT4
    return xpb.EstimateFromEligibilityRequest(check_id=check_id, service=service, providers=providers)


def _server_ticks(pid: int) -> int:
    return sum(cpu_ticks(p) for p in tree(pid))


async def from_eligibility(ctx: Context) -> list[Row]:
    figure = f"11 EstimateFromEligibility, stored check, {PROVIDERS} providers: server CPU per RPC"
    server = await ctx.stack.server("main")
    md = ctx.stack.metadata
    calls = 300 if ctx.cfg.long else 120
    tick = os.sysconf("SC_CLK_TCK")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        check = channel.unary_unary("/costestimator.v1.EligibilityService/CheckEligibility",
                                    request_serializer=elpb.CheckEligibilityRequest.SerializeToString,
                                    response_deserializer=elpb.CheckEligibilityResponse.FromString)
        rpc = channel.unary_unary("/costestimator.v1.EstimateService/EstimateFromEligibility",
                                  request_serializer=xpb.EstimateFromEligibilityRequest.SerializeToString,
                                  response_deserializer=epb.EstimateFromEligibilityResponse.FromString)
        stored = await check(elpb.CheckEligibilityRequest(inquiry=inquiry(0)), metadata=md, timeout=30)
        req = request(stored.check.id)
        ctx.progress("warming up")
        for _ in range(10):
            reply = await rpc(req, metadata=md, timeout=30)
        assert len(reply.estimates) == PROVIDERS
        cpu_ms, wall_ms = [], []
        for r in range(ctx.cfg.rounds):
            before, started = _server_ticks(server.pid), time.perf_counter()
            for _ in range(calls):
                await rpc(req, metadata=md, timeout=30)
            elapsed = time.perf_counter() - started
            cpu_ms.append((_server_ticks(server.pid) - before) / tick * 1000 / calls)
            wall_ms.append(elapsed * 1000 / calls)
            ctx.progress(f"round {r + 1}/{ctx.cfg.rounds}: {cpu_ms[-1]:.1f} ms server CPU, "
                         f"{wall_ms[-1]:.1f} ms wall per RPC")
    cpu, wall = Spread.of(cpu_ms), Spread.of(wall_ms)
    return [row(figure, cpu.fmt(1, " ms"), {"cpu_ms": cpu.median, "wall_ms": wall.median},
                [Target("cpu_ms", "<=", TARGET_MS, f"≤ {TARGET_MS:g} ms")],
                baseline=f"wall {wall.fmt(1, ' ms')} per RPC (sequential)",
                note=f"{calls} sequential RPCs per round; CPU of the server process tree")]
