"""EligibilityService over gRPC: tenant from the auth context, convert, call the use case, convert back.

Errors are raised, never turned into statuses here: server/api/errors.py does that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from costestimator.v1 import eligibility_service_pb2 as pb
from costestimator.v1 import eligibility_service_pb2_grpc as pb_grpc

from server.api import eligibility_convert as convert
from server.api.auth import current_tenant
from server.usecases.eligibility import EligibilityChecks, service_today

Ctx = grpc.aio.ServicerContext[Any, Any]


class EligibilityServicer(pb_grpc.EligibilityServiceServicer):
    def __init__(self, checks: EligibilityChecks) -> None:
        self._checks = checks

    async def CheckEligibility(
        self, request: pb.CheckEligibilityRequest, context: Ctx
    ) -> pb.CheckEligibilityResponse:
        inquiry = convert.inquiry_from_pb(request.inquiry, today=service_today())
        record = await self._checks.check(
            current_tenant(), inquiry, timeout=context.time_remaining(), include_raw=request.include_raw_response
        )
        response = pb.CheckEligibilityResponse()
        convert.fill_check(response.check, record, include_raw=request.include_raw_response)
        return response

    async def SubmitEligibilityCheck(
        self, request: pb.SubmitEligibilityCheckRequest, context: Ctx
    ) -> pb.SubmitEligibilityCheckResponse:
        inquiry = convert.inquiry_from_pb(request.inquiry, today=service_today())
        record = await self._checks.submit(current_tenant(), inquiry)
        response = pb.SubmitEligibilityCheckResponse()
        convert.fill_check(response.check, record)
        return response

    async def GetEligibilityCheck(
        self, request: pb.GetEligibilityCheckRequest, context: Ctx
    ) -> pb.GetEligibilityCheckResponse:
        check_id = convert.required_id(request.id)
        record = await self._checks.get(current_tenant(), check_id, include_raw=request.include_raw_response)
        response = pb.GetEligibilityCheckResponse()
        convert.fill_check(response.check, record, include_raw=request.include_raw_response)
        return response

    async def WatchEligibilityCheck(
        self, request: pb.WatchEligibilityCheckRequest, context: Ctx
    ) -> AsyncIterator[pb.WatchEligibilityCheckResponse]:
        check_id = convert.required_id(request.id)
        async for record in self._checks.watch(current_tenant(), check_id):
            yield pb.WatchEligibilityCheckResponse(check=convert.check_pb(record))

    async def ListEligibilityChecks(
        self, request: pb.ListEligibilityChecksRequest, context: Ctx
    ) -> pb.ListEligibilityChecksResponse:
        records, next_token = await self._checks.list(
            current_tenant(),
            policy_id=convert.optional_text(request.policy_id),
            patient_id=convert.optional_text(request.patient_id),
            status=convert.status_from_pb(request.status),
            page_size=convert.page_size_from_pb(request.page_size),
            page_token=convert.optional_text(request.page_token),
        )
        return pb.ListEligibilityChecksResponse(
            checks=[convert.check_pb(r) for r in records], next_page_token=next_token or ""
        )

    async def GetEligibilityStats(
        self, request: pb.GetEligibilityStatsRequest, context: Ctx
    ) -> pb.GetEligibilityStatsResponse:
        stats = await self._checks.stats(current_tenant(), policy_id=convert.optional_text(request.policy_id))
        return convert.stats_pb(stats)
