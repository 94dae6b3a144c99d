"""The bare `grpc.aio` server of the lean baselines: one unary method, no interceptors, "ready" on stdout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc


async def serve_unary(port: int, method: str, handler: Callable[[Any, Any], Awaitable[Any]],
                      request_deserializer: Callable[[bytes], Any], response_serializer: Callable[[Any], bytes]) -> None:
    """Serve `handler` as `method` on 127.0.0.1:`port` until terminated (the caller closes its own resources)."""

    class Handler(grpc.GenericRpcHandler):
        def service(self, details: Any) -> Any:
            if details.method == method:
                return grpc.unary_unary_rpc_method_handler(handler, request_deserializer=request_deserializer,
                                                           response_serializer=response_serializer)
            return None

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Handler(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()
