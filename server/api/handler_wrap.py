"""One way to wrap a gRPC method handler's behaviour, shared by the interceptors (observability, auth, errors).

Each of them puts code around the servicer's method for unary and server-streaming RPCs and keeps the handler's
(de)serializers: without this helper each built the new handler its own way, three copies of the same shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

Ctx = grpc.aio.ServicerContext[Any, Any]
Unary = Callable[[Any, Ctx], Awaitable[Any]]
Streaming = Callable[[Any, Ctx], AsyncIterator[Any]]
Deserializer = Callable[[bytes], Any] | None


def wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any],
    *,
    unary: Callable[[Unary], Unary],
    stream: Callable[[Streaming], Streaming] | None,
    deserializer: Callable[[Deserializer], Deserializer] | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` with a unary-unary behaviour passed through `unary`, a unary-stream one through `stream`, and its
    request deserializer through `deserializer` (when given). Any other kind of handler, and a unary-stream one
    when `stream` is None, is returned unchanged."""
    if handler.unary_unary is not None:
        make: Any = grpc.unary_unary_rpc_method_handler
        behaviour: Any = unary(handler.unary_unary)  # type: ignore[arg-type]
    elif handler.unary_stream is not None and stream is not None:
        make = grpc.unary_stream_rpc_method_handler
        behaviour = stream(handler.unary_stream)  # type: ignore[arg-type]
    else:
        return handler
    request = handler.request_deserializer
    return make(behaviour, deserializer(request) if deserializer is not None else request,  # type: ignore[no-any-return]
                handler.response_serializer)
