"""Baseline: a bare `grpc.aio` server that answers every unary call with the request's bytes.

On uvloop, like the service by default (and every baseline): on the standard asyncio loop the echo costs about a
tenth more CPU per call, a weaker baseline that would flatter the ratios.

`python -m bench.echo_server --port P [--reuseport]`. No interceptors, no deserialisation: the ceiling the same
client reaches on this machine, against which Estimate's QPS is a ratio.
"""

from __future__ import annotations

import argparse
from typing import Any

import grpc
import uvloop

ECHO_METHOD = "/bench.Echo/Echo"


async def _echo(request: bytes, context: Any) -> bytes:
    return request


class _Handler(grpc.GenericRpcHandler):
    def service(self, handler_call_details: Any) -> Any:
        if handler_call_details.method == ECHO_METHOD:
            return grpc.unary_unary_rpc_method_handler(_echo)
        return None


async def serve(port: int, reuseport: bool) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1 if reuseport else 0)])
    server.add_generic_rpc_handlers((_Handler(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reuseport", action="store_true")
    args = parser.parse_args()
    try:
        uvloop.run(serve(args.port, args.reuseport))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
