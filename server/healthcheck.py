"""`python -m server.healthcheck`: exit 0 when the local server's gRPC health service says SERVING (Docker HEALTHCHECK).

It reads the server's own environment (COSTEST_HOST, COSTEST_PORT, COSTEST_TLS_CERT_FILE) without validating the
rest of the settings. With inbound TLS on it verifies the server against COSTEST_HEALTHCHECK_CA_FILE (else the
system roots) under the name COSTEST_HEALTHCHECK_SERVER_NAME (default `localhost`), and presents
COSTEST_HEALTHCHECK_CERT_FILE / COSTEST_HEALTHCHECK_KEY_FILE when the server requires client certificates (mTLS).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m server.healthcheck", description="Exit 0 when the local server says SERVING.")
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=bool(env("COSTEST_TLS_CERT_FILE")),
                        help="connect with TLS (default: when COSTEST_TLS_CERT_FILE is set)")
    parser.add_argument("--ca-file", type=Path, default=env("COSTEST_HEALTHCHECK_CA_FILE"),
                        help="CA that signed the server's certificate (default: system roots)")
    parser.add_argument("--cert-file", type=Path, default=env("COSTEST_HEALTHCHECK_CERT_FILE"),
                        help="client certificate, for a server that requires one (mTLS)")
    parser.add_argument("--key-file", type=Path, default=env("COSTEST_HEALTHCHECK_KEY_FILE"),
                        help="the client certificate's key")
    parser.add_argument("--server-name", default=env("COSTEST_HEALTHCHECK_SERVER_NAME", "localhost"),
                        help="name the server's certificate must carry (default: localhost)")
    return parser.parse_args(argv)


def _target() -> str:
    host = os.environ.get("COSTEST_HOST", "127.0.0.1")
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{os.environ.get('COSTEST_PORT', '50051')}"


def _channel(args: argparse.Namespace) -> grpc.Channel:
    if not args.tls:
        return grpc.insecure_channel(_target())
    if bool(args.cert_file) != bool(args.key_file):
        raise ValueError("a client certificate needs both --cert-file and --key-file")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=args.ca_file.read_bytes() if args.ca_file else None,
        private_key=args.key_file.read_bytes() if args.key_file else None,
        certificate_chain=args.cert_file.read_bytes() if args.cert_file else None,
    )
    return grpc.secure_channel(_target(), credentials, options=[("grpc.ssl_target_name_override", args.server_name)])


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    try:
        with _channel(args) as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # the typeshed stub declares no methods
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
    except grpc.RpcError as exc:
        print(f"unhealthy: {exc.code().name}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
