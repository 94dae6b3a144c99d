"""Builds the grpc.aio server: our services, standard health checking and reflection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import grpc
from costestimator.v1 import (
    benefit_service_pb2,
    benefit_service_pb2_grpc,
    eligibility_service_pb2,
    eligibility_service_pb2_grpc,
    estimate_service_pb2,
    estimate_service_pb2_grpc,
)
from google.rpc import error_details_pb2  # noqa: F401 - imported so reflection can resolve BadRequest details
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.api.errors import ErrorMappingInterceptor
from server.api.request_limits import RequestLimits

SERVICE_NAMES = (
    benefit_service_pb2.DESCRIPTOR.services_by_name["BenefitService"].full_name,
    estimate_service_pb2.DESCRIPTOR.services_by_name["EstimateService"].full_name,
    eligibility_service_pb2.DESCRIPTOR.services_by_name["EligibilityService"].full_name,
)


@dataclass(frozen=True)
class Servicers:
    benefit: benefit_service_pb2_grpc.BenefitServiceServicer
    estimate: estimate_service_pb2_grpc.EstimateServiceServicer
    eligibility: eligibility_service_pb2_grpc.EligibilityServiceServicer


@dataclass
class BuiltServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer

    async def set_serving(self) -> None:
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)


def build_grpc_server(
    address: str,
    servicers: Servicers,
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    max_concurrent_rpcs: int | None = None,
    max_request_bytes: int = 1024 * 1024,
    request_limits: RequestLimits | None = None,
) -> BuiltServer:
    """Create (not start) the server; must run inside the event loop that will serve it.

    A request over `max_request_bytes` is refused by grpc itself with RESOURCE_EXHAUSTED naming both sizes.
    """
    server = grpc.aio.server(
        interceptors=[*interceptors, ErrorMappingInterceptor(request_limits)],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", max_request_bytes)],
    )
    benefit_service_pb2_grpc.add_BenefitServiceServicer_to_server(servicers.benefit, server)
    estimate_service_pb2_grpc.add_EstimateServiceServicer_to_server(servicers.estimate, server)
    eligibility_service_pb2_grpc.add_EligibilityServiceServicer_to_server(servicers.eligibility, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC server to {address}")
    return BuiltServer(server, port, health_servicer)
