"""The bare `grpc.aio` server of the lean baselines: a few methods, no interceptors, "ready" on stdout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc


async def serve_methods(port: int, handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]) -> None:
    """Serve `handlers` (full method name → handler) on 127.0.0.1:`port` until terminated (the caller closes its own
    resources)."""

    class Handler(grpc.GenericRpcHandler):
        def service(self, details: Any) -> Any:
            return handlers.get(details.method)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Handler(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


async def serve_unary(port: int, method: str, handler: Callable[[Any, Any], Awaitable[Any]],
                      request_deserializer: Callable[[bytes], Any],
                      response_serializer: Callable[[Any], bytes]) -> None:
    """Serve one unary `handler` as `method` (see `serve_methods`)."""
    await serve_methods(port, {method: grpc.unary_unary_rpc_method_handler(
        handler, request_deserializer=request_deserializer, response_serializer=response_serializer)})
