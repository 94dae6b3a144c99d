"""`python -m server` as a real subprocess: environment from scratch, a private data dir, its log in a file."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import ROOT

_RANDOM = random.SystemRandom()
_HANDED_OUT: set[int] = set()  # ports free_port gave in this process
START_TIMEOUT = 90.0  # two cores shared by many test processes: a start can take a while


def _below_ephemeral() -> range:
    """Ports the kernel never hands out on its own: below its ephemeral range, above the usual services."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(20000, max(20001, min(low, 32768)))


def free_port() -> int:
    """A free loopback port for a server that binds it later. Taken below the ephemeral range: a port the kernel
    gave us for port 0 may be handed to another process's outgoing connection before our server binds it (seen
    with a supervisor's console, which binds last). Never one handed out before in this run: a test asking for
    several ports gets distinct ones, even when none is bound yet (seen: a console port equal to a worker's
    metrics port + 1, which the worker bound first)."""
    candidates = _below_ephemeral()
    for _ in range(200):
        port = _RANDOM.choice(candidates)  # not the global generator: property tests seed that one
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_pair() -> int:
    """A port p with p + 1 free too (per-worker metrics ports); both count as handed out."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and port + 1 not in _HANDED_OUT:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            _HANDED_OUT.add(port + 1)
            return port
    raise RuntimeError("no two adjacent free ports")


def server_env(data_dir: Path, port: int, **settings: str) -> dict[str, str]:
    """The caller's environment without any server setting, plus the given ones (names without COSTEST_)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COSTEST_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"COSTEST_DATA_DIR": str(data_dir), "COSTEST_PORT": str(port), "COSTEST_HOST": "127.0.0.1",
                "COSTEST_GRACE_SECONDS": "1", "COSTEST_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"})
    env.update({k if k in ("DATABASE_URL", "REDIS_URL") else f"COSTEST_{k.upper()}": v for k, v in settings.items()})
    return env


def run_server(env: Mapping[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m server ARGS` to completion (a start that must fail, `--help`)."""
    return subprocess.run([sys.executable, "-m", "server", *args], env=dict(env), cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @classmethod
    def start(cls, env: Mapping[str, str], log_path: Path, *args: str) -> ServerProcess:
        with open(log_path, "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "server", *args], env=dict(env), cwd=ROOT,
                                       stdout=log, stderr=subprocess.STDOUT)
        return cls(process, int(env["COSTEST_PORT"]), log_path)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = START_TIMEOUT, count: int = 1) -> None:
        end = time.monotonic() + timeout
        while self.log.count(text) < count:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited ({self.process.returncode}) before {text!r}:\n{self.log[-3000:]}")
            if time.monotonic() > end:
                raise AssertionError(f"no {text!r} after {timeout:.0f}s:\n{self.log[-3000:]}")
            time.sleep(0.1)

    def wait_serving(self) -> None:
        self.wait_for_log("serving gRPC on")
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code (killed if it does not stop in time, which fails the caller's assert)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -9
