"""The processes of one bench run: upstream stand-ins, servers under test and baselines, each in its own process.

A `Stack` starts each process once, on demand, and ends every process it started (by process group, so a server's
worker processes go too) when the run is over. Servers get caller authentication by an HS256 secret of this run,
so the bench mints its own token and no development token exists to be printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
import jwt
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
ISSUER, AUDIENCE, TENANT = "costest-bench", "costestimator", "bench-tenant"
STEDI_KEY = "test_bench_" + secrets.token_hex(4)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """The parent's environment without any service setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COSTEST_", "SANDBOX_")) and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(extra)
    return env


# ---------------------------------------------------------------- /proc readings


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


# ---------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        self._end()
        if self.popen.stdout is not None:
            self.popen.stdout.close()

    def _end(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                self.popen.wait(8)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)


async def wait_healthy(port: int, proc: Proc, timeout: float = 90.0) -> None:
    """Until the gRPC health service answers SERVING (the server finished starting)."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)  # type: ignore[attr-defined]
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not become healthy within {timeout:.0f}s:\n{proc.log_tail()}")


class Stack:
    """Every process of the run, started once on demand and all ended by `close()`."""

    def __init__(self, workdir: Path, progress: Callable[[str], None]) -> None:
        self.workdir = workdir
        self.progress = progress
        self.secret = secrets.token_urlsafe(32)
        now = int(time.time())
        # Within the server's default COSTEST_AUTH_MAX_TOKEN_LIFETIME_SECONDS (3600): a longer one is refused.
        self._token = jwt.encode({"tenant_id": TENANT, "iss": ISSUER, "aud": AUDIENCE, "iat": now,
                                  "exp": now + 3000}, self.secret, algorithm="HS256")
        self._cache: dict[str, Proc] = {}
        self._all: list[Proc] = []

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._token}"),)

    def _spawn(self, name: str, args: list[str], env: dict[str, str], *, stdout_pipe: bool = False,
               root: Path = ROOT) -> Proc:
        log = self.workdir / f"{name}.log"
        handle: IO[bytes] = open(log, "wb")  # noqa: SIM115 - closed with the process
        popen = subprocess.Popen([sys.executable, *args], cwd=root, env=env, start_new_session=True,
                                 stdout=subprocess.PIPE if stdout_pipe else handle, stderr=handle)
        handle.close()
        proc = Proc(name, popen, log)
        self._all.append(proc)
        return proc

    async def _first_line(self, proc: Proc, timeout: float = 60.0) -> str:
        assert proc.popen.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.popen.stdout.readline), timeout)
        if not line:
            raise RuntimeError(f"{proc.name} exited before it was ready:\n{proc.log_tail()}")
        return line.decode().strip()

    async def payer(self, latency: float = 0.0) -> Proc:
        key = f"payer-{latency}"
        if key not in self._cache:
            self.progress(f"starting the payer stand-in (latency {latency * 1000:.0f} ms) in its own process")
            proc = self._spawn(key, ["-m", "bench.standins", "payer", "--latency", str(latency)], clean_env(),
                               stdout_pipe=True)
            proc.info = json.loads(await self._first_line(proc))
            self._cache[key] = proc
        return self._cache[key]

    async def stedi(self) -> Proc:
        if "stedi" not in self._cache:
            self.progress("starting the Stedi stand-in in its own process")
            proc = self._spawn("stedi", ["-m", "bench.standins", "stedi", "--key", STEDI_KEY], clean_env(),
                               stdout_pipe=True)
            proc.info = json.loads(await self._first_line(proc))
            self._cache["stedi"] = proc
        return self._cache["stedi"]

    async def server(self, name: str, *, payer_latency: float = 0.0, database_url: str | None = None,
                     env: dict[str, str] | None = None, root: Path = ROOT) -> Proc:
        """`python -m server` on a free loopback port, pointed at the stand-ins, as a deployment would run it.

        `root`: the source tree the server runs from (its `server` package comes first on the path), so that
        `bench.cpu` can compare two versions side by side."""
        if name in self._cache:
            return self._cache[name]
        payer, stedi = await self.payer(payer_latency), await self.stedi()
        port = free_port()
        data_dir = self.workdir / f"data-{name}"
        data_dir.mkdir()
        base = payer.info["url"]
        settings = {
            "COSTEST_HOST": "127.0.0.1", "COSTEST_PORT": str(port), "COSTEST_DATA_DIR": str(data_dir),
            "COSTEST_LOG_LEVEL": "WARNING", "COSTEST_GRACE_SECONDS": "0",
            "COSTEST_AUTH_HS256_SECRET": self.secret, "COSTEST_AUTH_ISSUER": ISSUER,
            "COSTEST_AUTH_AUDIENCE": AUDIENCE,
            "COSTEST_BENEFITS_URL": base + "/benefits/v3/retrieve",
            "COSTEST_ACCUMULATORS_URL": base + "/accumulators/v1/read",
            "COSTEST_TOKEN_URL": base + "/oauth2/token",
            "COSTEST_CLIENT_ID": payer.info["client_id"], "COSTEST_CLIENT_SECRET": payer.info["client_secret"],
            "COSTEST_STEDI_URL": stedi.info["url"], "COSTEST_STEDI_API_KEY": STEDI_KEY,
        }
        if database_url:
            settings["DATABASE_URL"] = database_url
        settings.update(env or {})
        shown = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        self.progress(f"starting the server under test '{name}' (python -m server{', ' + shown if shown else ''})")
        proc = self._spawn(f"server-{name}", ["-m", "server"], clean_env(**settings), root=root)
        proc.port = port
        await wait_healthy(port, proc)
        self._cache[name] = proc
        return proc

    async def echo(self, processes: int = 1) -> Proc:
        """The bare echo baseline; with `processes` > 1, that many on one port (SO_REUSEPORT)."""
        key = f"echo-{processes}"
        if key not in self._cache:
            self.progress(f"starting the bare grpc.aio echo server ({processes} process{'es' if processes > 1 else ''})")
            port = free_port()
            first: Proc | None = None
            for i in range(processes):
                args = ["-m", "bench.echo_server", "--port", str(port)] + (["--reuseport"] if processes > 1 else [])
                proc = self._spawn(f"{key}-{i}", args, clean_env(), stdout_pipe=True)
                await self._first_line(proc)
                proc.port = port
                first = first or proc
            assert first is not None
            self._cache[key] = first
        return self._cache[key]

    async def _lean(self, key: str, what: str, module: str, *args: str) -> Proc:
        """A lean baseline server (`python -m bench.<module> --port P ARGS`) in its own process, started once."""
        if key not in self._cache:
            self.progress(f"starting the lean {what} in its own process")
            port = free_port()
            proc = self._spawn(key, ["-m", f"bench.{module}", "--port", str(port), *args], clean_env(),
                               stdout_pipe=True)
            await self._first_line(proc)
            proc.port = port
            self._cache[key] = proc
        return self._cache[key]

    async def lean_eligibility(self, dsn: str, *, product_answer: bool = False) -> Proc:
        """The lean eligibility baseline (`bench/lean_eligibility.py`) against the Stedi stand-in; with
        `product_answer`, the variant that also normalises, stores and answers the summary with the product's code.
        `stop("lean-eligibility")` ends both."""
        stedi = await self.stedi()
        key, what, extra = (("lean-eligibility-answer", "eligibility server answering the product's summary",
                             ("--product-answer",)) if product_answer
                            else ("lean-eligibility", "eligibility server (grpc.aio + asyncpg)", ()))
        return await self._lean(key, what, "lean_eligibility",
                                "--dsn", dsn, "--stedi-url", stedi.info["url"], "--key", STEDI_KEY, *extra)

    async def lean_estimate(self, payer_latency: float = 0.0, *, benefit_memo: bool = False) -> Proc:
        """The lean Estimate baseline (`bench/lean_estimate.py`) against the payer stand-in of that latency; with
        `benefit_memo`, the variant that keeps benefit answers by request (the warm figure's baseline)."""
        payer = await self.payer(payer_latency)
        key, what, extra = ((f"lean-estimate-memo-{payer_latency}",
                             "Estimate server keeping benefit answers (grpc.aio + aiohttp, no interceptors)",
                             ("--benefit-memo",)) if benefit_memo
                            else (f"lean-estimate-{payer_latency}",
                                  "Estimate server (grpc.aio + aiohttp, no interceptors)", ()))
        return await self._lean(key, what, "lean_estimate", "--payer-url", payer.info["url"],
                                "--client-id", payer.info["client_id"], "--client-secret", payer.info["client_secret"],
                                *extra)

    def standins(self) -> list[Proc]:
        """The upstream stand-ins started so far (their CPU is the machine's too, not the server's)."""
        return [p for key, p in self._cache.items() if key == "stedi" or key.startswith("payer-")]

    def stop(self, name: str) -> None:
        """End one cached process (and the others started under the same key prefix, e.g. echo replicas)."""
        proc = self._cache.pop(name, None)
        if proc is None:
            return
        for p in [q for q in self._all if q.name == proc.name or q.name.startswith(name + "-")]:
            p.stop()

    def close(self) -> None:
        for proc in reversed(self._all):
            proc.stop()
        self._all.clear()
        self._cache.clear()
