"""The services the browser may call, read from the generated descriptors (the protos are the source of truth).

Both the bridge (Python) and the browser's generated module (`scripts/gen_console.py`) are built from this list,
so a new RPC in `protos/` reaches the console by regenerating, never by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from costestimator.v1 import (
    benefit_service_pb2,
    benefit_service_pb2_grpc,
    eligibility_service_pb2,
    eligibility_service_pb2_grpc,
    estimate_service_pb2,
    estimate_service_pb2_grpc,
)
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

#: (messages module, gRPC stubs module) of every service the console exposes.
MODULES: tuple[tuple[ModuleType, ModuleType], ...] = (
    (estimate_service_pb2, estimate_service_pb2_grpc),
    (eligibility_service_pb2, eligibility_service_pb2_grpc),
    (benefit_service_pb2, benefit_service_pb2_grpc),
)


@dataclass(frozen=True)
class Rpc:
    """One method as the bridge and the browser see it."""

    service: str  # fully qualified, e.g. costestimator.v1.EstimateService
    name: str  # e.g. StreamEstimates
    server_streaming: bool
    client_streaming: bool
    input: type[Message]
    output: type[Message]
    stub_class: type[Any]

    @property
    def path(self) -> str:
        """The HTTP path of the Connect protocol, the same as gRPC's."""
        return f"/{self.service}/{self.name}"


def _rpc(service: ServiceDescriptor, method: MethodDescriptor, grpc_module: ModuleType) -> Rpc:
    return Rpc(
        service=service.full_name,
        name=method.name,
        server_streaming=method.server_streaming,
        client_streaming=method.client_streaming,
        input=GetMessageClass(method.input_type),
        output=GetMessageClass(method.output_type),
        stub_class=getattr(grpc_module, f"{service.name}Stub"),
    )


def files() -> list[FileDescriptor]:
    """The proto files of the exposed services (their imports come along in the browser module's enums)."""
    return [messages.DESCRIPTOR for messages, _ in MODULES]


def rpcs() -> list[Rpc]:
    """Every method of every exposed service, in proto order."""
    found: list[Rpc] = []
    for messages, grpc_module in MODULES:
        file: FileDescriptor = messages.DESCRIPTOR
        for service in file.services_by_name.values():
            found.extend(_rpc(service, method, grpc_module) for method in service.methods)
    return found
