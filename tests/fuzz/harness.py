"""The fuzz target: `python -m server` in its own process (embedded sandboxes, a temporary data dir), and a client
that sends any message or raw bytes to every RPC of every service, classifying the answer.

A verdict is bad when the server answers INTERNAL or UNKNOWN, or when the client cannot read the error (a
client-side RESOURCE_EXHAUSTED while reading trailers: the error was bigger than a default client accepts).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from costestimator.v1 import benefit_service_pb2, eligibility_service_pb2, estimate_service_pb2
from google.protobuf.descriptor import Descriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
BAD = ("INTERNAL", "UNKNOWN", "UNREADABLE")
CALL_TIMEOUT = 15.0


@dataclass(frozen=True)
class Rpc:
    path: str
    request: Descriptor
    streaming: bool


def all_rpcs() -> list[Rpc]:
    """Every method of every service of the contract, from the descriptors (a new RPC is fuzzed without edits)."""
    out = []
    for module in (benefit_service_pb2, estimate_service_pb2, eligibility_service_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                out.append(Rpc(f"/{service.full_name}/{method.name}", method.input_type, method.server_streaming))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Results:
    counts: Counter[str] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)

    def record(self, rpc: Rpc, kind: str, verdict: str, detail: str) -> None:
        self.counts[verdict] += 1
        if verdict in BAD and len(self.bad) < 20:
            self.bad.append(f"{rpc.path} ({kind}): {verdict} {detail[:200]}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def table(self) -> str:
        width = max((len(k) for k in self.counts), default=4)
        lines = [f"{code:<{width}}  {n:>7}" for code, n in sorted(self.counts.items(), key=lambda kv: -kv[1])]
        lines.append(f"{'total':<{width}}  {self.total:>7}")
        return "\n".join(lines)


class FuzzTarget:
    """Start with `with FuzzTarget() as target:`; `send` is synchronous and thread-safe."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="costest-fuzz-")
        self.log_path = Path(self._tmp.name) / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None
        self.metadata: tuple[tuple[str, str], ...] = ()

    def __enter__(self) -> FuzzTarget:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COSTEST_")
               and k not in ("DATABASE_URL", "REDIS_URL")}
        env.update({"COSTEST_PORT": str(port), "COSTEST_DATA_DIR": str(Path(self._tmp.name) / "data"),
                    "COSTEST_GRACE_SECONDS": "0", "COSTEST_UPSTREAM_ATTEMPTS": "1",
                    "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "generated")])})
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=env, stdout=log,
                                          stderr=subprocess.STDOUT)
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self._wait_serving()
        token = (Path(self._tmp.name) / "data" / "dev-token").read_text().strip()
        self.metadata = (("authorization", f"Bearer {token}"),)
        return self

    def _wait_serving(self) -> None:
        assert self._channel is not None and self._proc is not None
        health = health_pb2_grpc.HealthStub(self._channel)
        end = time.monotonic() + 60
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.log_path.read_text()[-3000:]}")
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > end:
                raise RuntimeError("server did not start within 60 s")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._tmp.cleanup()

    def server_log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, rpc: Rpc, body: bytes) -> tuple[str, str]:
        """(verdict, detail): a status code name, or UNREADABLE."""
        assert self._channel is not None
        try:
            if rpc.streaming:
                for _ in self._channel.unary_stream(rpc.path)(body, metadata=self.metadata, timeout=CALL_TIMEOUT):
                    pass
            else:
                self._channel.unary_unary(rpc.path)(body, metadata=self.metadata, timeout=CALL_TIMEOUT)
        except grpc.RpcError as exc:
            return classify(exc)
        return "OK", ""


def classify(exc: Any) -> tuple[str, str]:
    code: grpc.StatusCode = exc.code()
    details = exc.details() or ""
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" not in details \
            and "concurrent" not in details.lower():
        return "UNREADABLE", details  # the client could not read the answer (e.g. oversized trailers)
    trailer = sum(len(k) + len(v) for k, v in exc.trailing_metadata() or ())
    if trailer > 8 * 1024:
        return "UNREADABLE", f"trailer of {trailer} bytes"
    return code.name, details
