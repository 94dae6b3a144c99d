"""EstimateService: thin — validate, run the use case or the chain, convert. Errors go to the one error map."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.rpc import code_pb2, status_pb2

from server.api.auth import current_tenant
from server.api.estimate_convert import (
    EstimateRequestPb,
    calculate_inputs_from_pb,
    estimate_query_from_pb,
    outcome_pb,
    result_pb,
)
from server.domain.costshare import calculate
from server.usecases.estimates import EstimateQuery, EstimateRunner

Ctx = grpc.aio.ServicerContext[Any, Any]


def _deadline_at(context: Ctx) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class EstimateServicer(estimate_service_pb2_grpc.EstimateServiceServicer):
    def __init__(self, runner: EstimateRunner, *, max_providers: int) -> None:
        self._runner = runner
        self._max_providers = max_providers

    def _query(self, request: EstimateRequestPb) -> EstimateQuery:
        query, violations = estimate_query_from_pb(request, self._max_providers)
        violations.raise_if_any()
        assert query is not None
        return query

    async def Estimate(self, request: epb.EstimateRequest, context: Ctx) -> epb.EstimateResponse:
        query = self._query(request)
        by_id = {}
        async for outcome in self._runner.stream(query, deadline_at=_deadline_at(context), tenant=current_tenant()):
            by_id[outcome.provider_id] = outcome
        response = epb.EstimateResponse()
        for p in query.providers:  # built in place, in request order: no copy of a finished message
            outcome_pb(by_id[p.provider_id], response.estimates.add())
        return response

    async def StreamEstimates(
        self, request: epb.StreamEstimatesRequest, context: Ctx
    ) -> AsyncIterator[epb.StreamEstimatesResponse]:
        query = self._query(request)
        async for outcome in self._runner.stream(query, deadline_at=_deadline_at(context), tenant=current_tenant()):
            response = epb.StreamEstimatesResponse()
            outcome_pb(outcome, response.estimate)
            yield response

    async def Calculate(self, request: epb.CalculateRequest, context: Ctx) -> epb.CalculateResponse:
        inputs, violations = calculate_inputs_from_pb(request)
        violations.raise_if_any()
        assert inputs is not None
        coverage, accumulators, amount = inputs
        result = calculate(coverage, accumulators, amount, trace=request.include_trace)
        estimate = epb.CostEstimate(status=status_pb2.Status(code=code_pb2.OK))
        result_pb(result, estimate)
        return epb.CalculateResponse(estimate=estimate)
