"""EstimateService: thin — validate, run the use case or the chain, convert. Errors go to the one error map."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from costestimator.v1 import eligibility_estimate_pb2 as xpb
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
from server.api.eligibility_estimate_convert import query_from_pb, response_pb
from server.domain.costshare import calculate
from server.usecases.eligibility import service_today
from server.usecases.eligibility_estimates import EligibilityEstimator
from server.usecases.estimates import EstimateQuery, EstimateRunner

Ctx = grpc.aio.ServicerContext[Any, Any]


def _deadline_at(context: Ctx) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class EstimateServicer(estimate_service_pb2_grpc.EstimateServiceServicer):
    def __init__(
        self, runner: EstimateRunner, *, max_providers: int, from_eligibility: EligibilityEstimator | None = None
    ) -> None:
        self._runner = runner
        self._max_providers = max_providers
        self._from_eligibility = from_eligibility

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

    async def EstimateFromEligibility(
        self, request: xpb.EstimateFromEligibilityRequest, context: Ctx
    ) -> epb.EstimateFromEligibilityResponse:
        query = query_from_pb(request, max_providers=self._max_providers, today=service_today())
        if self._from_eligibility is None:  # pragma: no cover - the application always wires it
            raise NotImplementedError("EstimateFromEligibility is not configured")
        if query.check_id is not None:
            done = await self._from_eligibility.from_check_id(
                current_tenant(), query.check_id, query.service, query.providers, trace=query.include_trace)
        else:
            assert query.inquiry is not None
            done = await self._from_eligibility.from_inquiry(
                current_tenant(), query.inquiry, query.service, query.providers,
                timeout=context.time_remaining(), trace=query.include_trace)
        return response_pb(done.check_id, done.date_of_service, done.estimates, query.include_trace)
