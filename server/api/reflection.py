"""Server reflection on `grpc.reflection.v1` and `v1alpha`, serving the protos' comments and method symbols.

grpcio-reflection (1.85) falls short of what grpcurl and other reflection clients expect in three ways:
- it ships only `grpc.reflection.v1alpha` (grpc/grpc#38576), while v1 is the current protocol;
- it serves descriptors rebuilt from the Python pool, which carry no comments (the `_pb2` modules drop the source
  info), so `grpcurl describe` showed none of our documentation;
- the upb descriptor pool does not resolve a method's full name, so `grpcurl describe
  costestimator.v1.EstimateService.StreamEstimates` answered "Symbol not found".

The library's servicer is reused (request dispatch, listing, extensions); its two file lookups are overridden to
resolve methods and to add to our files the comments (source info) of the descriptor set that
`scripts/gen_protos.py` writes beside the stubs. v1 and v1alpha share one wire format (v1 is v1alpha with the
package renamed), so one servicer answers both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from importlib import resources

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer

LOG = logging.getLogger(__name__)

V1ALPHA_SERVICE_NAME = "grpc.reflection.v1alpha.ServerReflection"
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
DESCRIPTOR_SET = ("costestimator.v1", "descriptors.binpb")  # package, resource: written by scripts/gen_protos.py
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def source_info(package: str = DESCRIPTOR_SET[0], resource: str = DESCRIPTOR_SET[1]
                ) -> dict[str, descriptor_pb2.SourceCodeInfo]:
    """The comments (SourceCodeInfo) of our proto files by file name; {} if the descriptor set is missing:
    reflection then still works, only without comments."""
    try:
        data = resources.files(package).joinpath(resource).read_bytes()
    except (FileNotFoundError, ModuleNotFoundError):
        LOG.warning("descriptor set %s/%s not found: reflection serves the API without its comments",
                    package, resource)
        return {}
    return {f.name: f.source_code_info for f in descriptor_pb2.FileDescriptorSet.FromString(data).file}


def _rename_types(message: descriptor_pb2.DescriptorProto, old: str, new: str) -> None:
    for field in message.field:
        if field.type_name.startswith(old):
            field.type_name = new + field.type_name[len(old):]
    for nested in message.nested_type:
        _rename_types(nested, old, new)


def register_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Add `grpc.reflection.v1` to `pool` (so that it can be described like any listed service): the v1alpha file
    with the package renamed, which is exactly how v1 was made."""
    try:
        pool.FindServiceByName(V1_SERVICE_NAME)
        return  # already there (a later grpcio-reflection may bring its own)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = f".{proto.package}.", ".grpc.reflection.v1."
    proto.name, proto.package = _V1_FILE, "grpc.reflection.v1"
    proto.options.Clear()
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    for message in proto.message_type:
        _rename_types(message, old, new)
    for method in proto.service[0].method:
        method.input_type = new + method.input_type[len(old):]
        method.output_type = new + method.output_type[len(old):]
    pool.AddSerializedFile(proto.SerializeToString())


def _with_dependencies(root: descriptor.FileDescriptor) -> list[descriptor.FileDescriptor]:
    """`root` first, then every file it imports, transitively, each once."""
    seen: dict[str, descriptor.FileDescriptor] = {}
    todo = [root]
    while todo:
        current = todo.pop()
        if current.name not in seen:
            seen[current.name] = current
            todo.extend(current.dependencies)
    return list(seen.values())


class DocumentedReflectionServicer(ReflectionServicer):
    """The library's aio servicer, answering file requests with documented descriptors and method symbols."""

    def __init__(self, service_names: Iterable[str], comments: Mapping[str, descriptor_pb2.SourceCodeInfo],
                 pool: descriptor_pool.DescriptorPool | None = None) -> None:
        self._reflection_pool = pool or descriptor_pool.Default()
        super().__init__(service_names, pool=self._reflection_pool)
        self._comments = dict(comments)
        self._serialized_files: dict[str, bytes] = {}

    def _serialized(self, file: descriptor.FileDescriptor) -> bytes:
        """The file as the running code knows it (the pool), with its comments when we have them."""
        found = self._serialized_files.get(file.name)
        if found is None:
            proto = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(proto)
            if file.name in self._comments:
                proto.source_code_info.CopyFrom(self._comments[file.name])
            found = self._serialized_files[file.name] = proto.SerializeToString()
        return found

    def _answer(self, request: reflection_pb2.ServerReflectionRequest,
                file: descriptor.FileDescriptor) -> reflection_pb2.ServerReflectionResponse:
        protos = [self._serialized(f) for f in _with_dependencies(file)]
        return reflection_pb2.ServerReflectionResponse(
            original_request=request,
            file_descriptor_response=reflection_pb2.FileDescriptorResponse(file_descriptor_proto=protos))

    @staticmethod
    def _not_found(request: reflection_pb2.ServerReflectionRequest) -> reflection_pb2.ServerReflectionResponse:
        code, text = grpc.StatusCode.NOT_FOUND.value
        return reflection_pb2.ServerReflectionResponse(
            original_request=request,
            error_response=reflection_pb2.ErrorResponse(error_code=code, error_message=text))

    def _file_of_symbol(self, symbol: str) -> descriptor.FileDescriptor:
        """The file defining `symbol`; methods are looked up through their service (upb's pool does not index
        them)."""
        try:
            return self._reflection_pool.FindFileContainingSymbol(symbol)
        except KeyError:
            service_name, _, method = symbol.rpartition(".")
            service = self._reflection_pool.FindServiceByName(service_name)  # KeyError: not found either
            if method not in service.methods_by_name:
                raise
            return service.file

    # Overrides of grpc_reflection.v1alpha._base.BaseReflectionServicer's lookups (same names and arguments).
    def _file_by_filename(self, request: reflection_pb2.ServerReflectionRequest,
                          filename: str) -> reflection_pb2.ServerReflectionResponse:
        try:
            return self._answer(request, self._reflection_pool.FindFileByName(filename))
        except KeyError:
            return self._not_found(request)

    def _file_containing_symbol(self, request: reflection_pb2.ServerReflectionRequest,
                                fully_qualified_name: str) -> reflection_pb2.ServerReflectionResponse:
        try:
            return self._answer(request, self._file_of_symbol(fully_qualified_name))
        except KeyError:
            return self._not_found(request)


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> DocumentedReflectionServicer:
    """Serve reflection for `service_names` (and for itself, both versions) on `server`."""
    pool = descriptor_pool.Default()
    register_v1_descriptor(pool)
    servicer = DocumentedReflectionServicer(
        (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME), source_info(), pool)
    method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(tuple(
        grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": method})
        for name in (V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    ))
    return servicer
