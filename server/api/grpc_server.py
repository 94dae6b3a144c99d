"""Builds the grpc.aio server: our services, standard health checking and reflection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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

from server.api.errors import ErrorMappingInterceptor
from server.api.health import HealthServicer
from server.api.reflection import enable_reflection
from server.api.request_limits import RequestLimits
from server.ports import ensure_port_free

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


@dataclass(frozen=True)
class ServerTls:
    """Inbound TLS: the server's certificate chain and key; with `client_ca_file`, every caller must present a
    certificate that this CA signed (mTLS). grpc Python has no "verify if presented" mode, hence no optional one."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        client_ca = self.client_ca_file.read_bytes() if self.client_ca_file is not None else None
        return grpc.ssl_server_credentials(
            [(self.key_file.read_bytes(), self.cert_file.read_bytes())],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )


def build_grpc_server(
    address: str,
    servicers: Servicers,
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    max_concurrent_rpcs: int | None = None,
    max_request_bytes: int = 1024 * 1024,
    request_limits: RequestLimits | None = None,
    tls: ServerTls | None = None,
    reuse_port: bool = False,
) -> BuiltServer:
    """Create (not start) the server; must run inside the event loop that will serve it.

    A request over `max_request_bytes` is refused by grpc itself with RESOURCE_EXHAUSTED naming both sizes.
    `reuse_port` only for the workers of one supervisor (server/supervisor.py): otherwise a second server would
    silently share the port instead of failing with "address in use".
    """
    server = grpc.aio.server(
        interceptors=[*interceptors, ErrorMappingInterceptor(request_limits)],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        options=[("grpc.so_reuseport", 1 if reuse_port else 0), ("grpc.max_receive_message_length", max_request_bytes)],
    )
    benefit_service_pb2_grpc.add_BenefitServiceServicer_to_server(servicers.benefit, server)
    estimate_service_pb2_grpc.add_EstimateServiceServicer_to_server(servicers.estimate, server)
    eligibility_service_pb2_grpc.add_EligibilityServiceServicer_to_server(servicers.eligibility, server)
    health_servicer = HealthServicer()  # the standard one plus List
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
    try:
        port = server.add_secure_port(address, tls.credentials()) if tls else server.add_insecure_port(address)
    except RuntimeError as exc:  # gRPC says only "failed to bind": tell "in use" apart from the rest
        if not reuse_port:
            host, _, port_text = address.rpartition(":")
            ensure_port_free(host.strip("[]"), int(port_text))
        raise OSError(f"cannot bind gRPC server to {address}") from exc
    if port == 0:
        raise OSError(f"cannot bind gRPC server to {address}")
    return BuiltServer(server, port, health_servicer)
