"""Baseline: the leanest server doing Estimate's work, to read the Estimate QPS figure against.

A bare `grpc.aio` server on uvloop (no interceptors: no auth, metrics, request ids, logging or error mapping)
that validates the request (`estimate_query_from_pb`), makes the same two payer calls with a bare pooled aiohttp
session (token fetched once at start; no retries, breaker, deadline bookkeeping or benefit cache), and computes and
answers through the product's own `EstimateRunner` and `outcome_pb`, so the answers are the product's. It serves
StreamEstimates the same way (one message per provider as it is known), the baseline of the 100-provider stream.
With `--benefit-memo` it keeps each benefit answer by its request (a plain dict, bounded), so that repeated
requests make only the accumulators call: the baseline of the warm-cache figure.
What the product spends beyond this server is the price of its infrastructure; what this server reaches against
the echo server is what the stack itself allows on this machine.
`python -m bench.lean_estimate --port P --payer-url URL --client-id ID --client-secret SECRET`
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import uvloop
from costestimator.v1 import estimate_service_pb2 as epb

from server.api.estimate_convert import estimate_query_from_pb, outcome_pb
from server.clients.models import AccumulatorsResponseModel, BenefitRequestModel, BenefitResponseModel, decode
from server.usecases.benefit_cache import BenefitAnswer
from server.usecases.estimates import EstimateRunner

from .bare_grpc import serve_methods

METHOD = "/costestimator.v1.EstimateService/Estimate"
STREAM_METHOD = "/costestimator.v1.EstimateService/StreamEstimates"
MAX_PROVIDERS = 100
MEMO_ENTRIES = 10_000


class BarePayer:
    """Both payer calls over bare sessions, one pool per upstream as the product has (100 benefit calls and the
    accumulators call of a 100-provider stream all go out at once): the `BenefitCache.get` and `get_accumulators`
    shapes the runner uses."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: dict[str, Any],
                 accumulators_http: aiohttp.ClientSession | None = None, *, memo: bool = False) -> None:
        self._http = http
        self._memo: dict[bytes, BenefitAnswer] | None = {} if memo else None
        self._accumulators_http = accumulators_http or http
        self._benefits = base + "/benefits/v3/retrieve"
        self._accumulators = base + "/accumulators/v1/read"
        self._headers = {"Authorization": f"Bearer {token['access_token']}", "id_token": token.get("id_token", ""),
                         "Accept": "application/json"}
        self._json = {**self._headers, "Content-Type": "application/json"}

    async def get(self, tenant: str | None, request: BenefitRequestModel, *, timeout: float | None) -> BenefitAnswer:
        wire = request.to_wire()
        if self._memo is not None and (kept := self._memo.get(wire)) is not None:
            return kept
        async with self._http.post(self._benefits, data=wire, headers=self._json) as resp:
            body = await resp.read()
        answer = BenefitAnswer(decode(body, BenefitResponseModel), False)
        if self._memo is not None and len(self._memo) < MEMO_ENTRIES:
            self._memo[wire] = BenefitAnswer(answer.answer, True)
        return answer

    async def get_accumulators(self, membership_id: str, plan_identifier: str, *,
                               timeout: float | None) -> AccumulatorsResponseModel:
        params = {"membershipId": membership_id, "planIdentifier": plan_identifier}
        async with self._accumulators_http.get(self._accumulators, params=params, headers=self._headers) as resp:
            body = await resp.read()
        return decode(body, AccumulatorsResponseModel)


async def serve(port: int, base: str, client_id: str, client_secret: str, benefit_memo: bool = False) -> None:
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    accumulators_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    async with http.post(base + "/oauth2/token", data={"grant_type": "client_credentials"},
                         headers={"Authorization": aiohttp.encode_basic_auth(client_id, client_secret)}) as resp:
        token = await resp.json()
    payer: Any = BarePayer(http, base, token, accumulators_http, memo=benefit_memo)
    runner = EstimateRunner(payer, payer, fanout=100)

    async def estimate(request: epb.EstimateRequest, context: Any) -> epb.EstimateResponse:
        query, violations = estimate_query_from_pb(request, MAX_PROVIDERS)
        violations.raise_if_any()
        assert query is not None
        by_id = {o.provider_id: o async for o in runner.stream(query, deadline_at=None, tenant=None)}
        response = epb.EstimateResponse()
        for p in query.providers:
            outcome_pb(by_id[p.provider_id], response.estimates.add())
        return response

    async def stream(request: epb.StreamEstimatesRequest, context: Any) -> AsyncIterator[epb.StreamEstimatesResponse]:
        query, violations = estimate_query_from_pb(request, MAX_PROVIDERS)
        violations.raise_if_any()
        assert query is not None
        async for outcome in runner.stream(query, deadline_at=None, tenant=None):
            response = epb.StreamEstimatesResponse()
            outcome_pb(outcome, response.estimate)
            yield response

    try:
        await serve_methods(port, {
            METHOD: grpc.unary_unary_rpc_method_handler(estimate, request_deserializer=epb.EstimateRequest.FromString,
                                                        response_serializer=epb.EstimateResponse.SerializeToString),
            STREAM_METHOD: grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=epb.StreamEstimatesRequest.FromString,
                response_serializer=epb.StreamEstimatesResponse.SerializeToString),
        })
    finally:
        await http.close()
        await accumulators_http.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--payer-url", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--benefit-memo", action="store_true", help="keep benefit answers by request (warm baseline)")
    args = parser.parse_args()
    try:
        uvloop.run(serve(args.port, args.payer_url.rstrip("/"), args.client_id, args.client_secret,
                         args.benefit_memo))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
