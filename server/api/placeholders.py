"""Servicers whose capability is not built yet: every RPC answers UNIMPLEMENTED with a message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from costestimator.v1 import eligibility_service_pb2_grpc

from server.api.grpc_server import unimplemented

Ctx = grpc.aio.ServicerContext[Any, Any]


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
