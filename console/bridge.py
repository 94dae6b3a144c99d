"""The Connect bridge: a `connectrpc` ASGI application whose every RPC is forwarded to the gRPC port.

The browser speaks the Connect protocol with its JSON mapping (a unary call is a plain POST; a server stream is
enveloped JSON messages). Each call is forwarded with the generated gRPC stubs, carrying the caller's
`authorization` header (or, on loopback, the development token) and the Connect deadline (`connect-timeout-ms`),
so the service's own auth, tenants, validation, limits and error map apply unchanged. gRPC statuses come back as
Connect errors with the same code, message and details (`google.rpc.BadRequest`, `RetryInfo`, ...).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import grpc
from connectrpc.code import Code
from connectrpc.codec import Codec
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication, Endpoint
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc_status import rpc_status
from protobuf.wkt import Any as AnyPb

from console.contracts import Rpc, rpcs

M = TypeVar("M", bound=Message)

#: Larger than any request the service accepts (it refuses over COSTEST_MAX_REQUEST_BYTES itself).
READ_MAX_BYTES = 4 * 1024 * 1024


class JsonCodec:
    """Connect's JSON codec over the generated (google.protobuf) messages: the canonical proto3 JSON mapping."""

    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        return json_format.MessageToJson(message, indent=None).encode()

    def decode(self, data: bytes | bytearray, message_class: type[M]) -> M:
        message = message_class()
        try:
            json_format.Parse(bytes(data), message, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, ValueError):
            # The parser's text can quote the value (member data): say only which message it was.
            raise ConnectError(Code.INVALID_ARGUMENT,
                               f"the request is not JSON of {message_class.DESCRIPTOR.full_name}") from None
        return message


class BinaryCodec:
    """Connect's binary codec, so generated Connect/gRPC clients work too (the browser uses JSON)."""

    def name(self) -> str:
        return "proto"

    def encode(self, message: Message) -> bytes:
        return message.SerializeToString()

    def decode(self, data: bytes | bytearray, message_class: type[M]) -> M:
        message = message_class()
        try:
            message.ParseFromString(bytes(data))
        except Exception:  # noqa: BLE001 - DecodeError and friends: any unreadable bytes
            raise ConnectError(Code.INVALID_ARGUMENT,
                               f"the request is not a {message_class.DESCRIPTOR.full_name}") from None
        return message


_CODES: dict[grpc.StatusCode, Code] = {
    grpc.StatusCode.CANCELLED: Code.CANCELED,
    **{status: Code[status.name] for status in grpc.StatusCode
       if status not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED)},
}


def connect_error(error: grpc.aio.AioRpcError) -> ConnectError:
    """The service's status as a Connect error: same code, message and details (Any values, unchanged)."""
    code = _CODES.get(error.code(), Code.UNKNOWN)
    details: list[ErrorDetail] = []
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is not None:
        details = [ErrorDetail(AnyPb(type_url=d.type_url, value=d.value)) for d in status.details]
    message = error.details() or ""
    if error.code() is grpc.StatusCode.UNAVAILABLE and not message:
        message = "the service is not reachable"
    return ConnectError(code, message, details)


Metadata = tuple[tuple[str, str], ...]


class Forwarder:
    """Builds the endpoints: one per RPC, each calling the same method on the gRPC port."""

    def __init__(self, channel: grpc.aio.Channel, dev_token: str | None) -> None:
        """`dev_token`: used when the browser sends no `authorization` (loopback only; never sent to the page)."""
        self._channel = channel
        self._dev_token = dev_token
        self._stubs: dict[type[Any], Any] = {}

    def _metadata(self, ctx: RequestContext[Any, Any]) -> Metadata:
        given = ctx.request_headers.get("authorization")
        if given:
            return (("authorization", given),)
        if self._dev_token is not None:
            return (("authorization", f"Bearer {self._dev_token}"),)
        return ()

    @staticmethod
    def _timeout(ctx: RequestContext[Any, Any]) -> float | None:
        remaining = ctx.timeout_ms
        return None if remaining is None else max(remaining, 1.0) / 1000

    def _method(self, rpc: Rpc) -> Any:
        stub = self._stubs.get(rpc.stub_class)
        if stub is None:
            stub = self._stubs[rpc.stub_class] = rpc.stub_class(self._channel)
        return getattr(stub, rpc.name)

    def unary(self, rpc: Rpc) -> Callable[[Message, RequestContext[Any, Any]], Awaitable[Message]]:
        method = self._method(rpc)

        async def call(request: Message, ctx: RequestContext[Any, Any]) -> Message:
            try:
                reply: Message = await method(request, metadata=self._metadata(ctx), timeout=self._timeout(ctx))
            except grpc.aio.AioRpcError as exc:
                raise connect_error(exc) from None
            return reply

        return call

    def server_stream(self, rpc: Rpc) -> Callable[[Message, RequestContext[Any, Any]], AsyncIterator[Message]]:
        method = self._method(rpc)

        async def call(request: Message, ctx: RequestContext[Any, Any]) -> AsyncIterator[Message]:
            stream = method(request, metadata=self._metadata(ctx), timeout=self._timeout(ctx))
            try:
                async for reply in stream:
                    yield reply
            except grpc.aio.AioRpcError as exc:
                raise connect_error(exc) from None
            finally:
                stream.cancel()  # the browser went away: the service stops its upstream calls too

        return call

    def endpoints(self) -> dict[str, Endpoint[Any, Any]]:
        """Every unary and server-streaming RPC (the service has no client streams)."""
        found: dict[str, Endpoint[Any, Any]] = {}
        for rpc in rpcs():
            if rpc.client_streaming:
                continue
            info: MethodInfo[Any, Any] = MethodInfo(
                name=rpc.name, service_name=rpc.service, input=rpc.input, output=rpc.output,
                idempotency_level=IdempotencyLevel.UNKNOWN,  # POST only: no member data in a URL
                stream_type=StreamType.SERVER_STREAM if rpc.server_streaming else StreamType.UNARY,
            )
            found[rpc.path] = (Endpoint.server_stream(info, self.server_stream(rpc)) if rpc.server_streaming
                               else Endpoint.unary(info, self.unary(rpc)))
        return found


class BridgeApp(ConnectASGIApplication[Forwarder]):
    """All of the console's RPCs in one Connect application (paths `/costestimator.v1.<Service>/<Method>`)."""

    def __init__(self, forwarder: Forwarder) -> None:
        codecs: list[Codec[Any, Any]] = [JsonCodec(), BinaryCodec()]
        super().__init__(service=forwarder, endpoints=_endpoints, codecs=codecs, read_max_bytes=READ_MAX_BYTES)

    @property
    def path(self) -> str:
        return "/costestimator.v1."


def _endpoints(forwarder: Forwarder) -> Mapping[str, Any]:  # connectrpc's own union of endpoint kinds
    return forwarder.endpoints()
