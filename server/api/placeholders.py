"""Servicers whose capability is not built yet: every RPC answers UNIMPLEMENTED with a message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from costestimator.v1 import (
    benefit_service_pb2_grpc,
    eligibility_service_pb2_grpc,
    estimate_service_pb2_grpc,
)

from server.api.grpc_server import unimplemented

Ctx = grpc.aio.ServicerContext[Any, Any]


class PendingBenefitServicer(benefit_service_pb2_grpc.BenefitServiceServicer):
    async def GetBenefit(self, request: Any, context: Ctx) -> Any:
        await unimplemented(context, "GetBenefit")


class PendingEstimateServicer(estimate_service_pb2_grpc.EstimateServiceServicer):
    async def Estimate(self, request: Any, context: Ctx) -> Any:
        await unimplemented(context, "Estimate")

    async def StreamEstimates(self, request: Any, context: Ctx) -> AsyncIterator[Any]:
        await unimplemented(context, "StreamEstimates")
        yield None

    async def Calculate(self, request: Any, context: Ctx) -> Any:
        await unimplemented(context, "Calculate")


class PendingEligibilityServicer(eligibility_service_pb2_grpc.EligibilityServiceServicer):
    async def CheckEligibility(self, request: Any, context: Ctx) -> Any:
        await unimplemented(context, "CheckEligibility")

    async def SubmitEligibilityCheck(self, request: Any, context: Ctx) -> Any:
        await unimplemented(context, "SubmitEligibilityCheck")

    async def GetEligibilityCheck(self, request: Any, context: Ctx) -> Any:
        await unimplemented(context, "GetEligibilityCheck")

    async def WatchEligibilityCheck(self, request: Any, context: Ctx) -> AsyncIterator[Any]:
        await unimplemented(context, "WatchEligibilityCheck")
        yield None

    async def ListEligibilityChecks(self, request: Any, context: Ctx) -> Any:
        await unimplemented(context, "ListEligibilityChecks")

    async def GetEligibilityStats(self, request: Any, context: Ctx) -> Any:
        await unimplemented(context, "GetEligibilityStats")
