"""BenefitService: validate, ask the payer within the caller's deadline, answer the (filtered) tree."""

from __future__ import annotations

from typing import Any

import grpc
from costestimator.v1 import benefit_service_pb2 as bpb
from costestimator.v1 import benefit_service_pb2_grpc

from server.api.auth import current_tenant
from server.api.benefit_convert import benefit_query_from_pb, benefit_response_pb
from server.usecases.benefits import BenefitLookup


class BenefitServicer(benefit_service_pb2_grpc.BenefitServiceServicer):
    def __init__(self, lookup: BenefitLookup) -> None:
        self._lookup = lookup

    async def GetBenefit(
        self, request: bpb.GetBenefitRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bpb.GetBenefitResponse:
        query, criteria, violations = benefit_query_from_pb(request)
        violations.raise_if_any()
        assert query is not None
        answer = await self._lookup.get(query, criteria, timeout=context.time_remaining(), tenant=current_tenant())
        return benefit_response_pb(answer)
