"""Server CPU per request: `python -m bench.cpu PATH [--roots A,B] [--n N] [--rounds R] [--profile DIR]`.

Throughput on a shared 2-core machine says as much about the neighbours as about the server; the CPU seconds the
server's processes spend on a fixed number of requests (utime + stime from /proc, the whole process tree) hardly
depend on them. Each round sends N requests (C callers, closed loop) to every subject in turn: the server run from
each source tree in `--roots` (default: this one), so two versions are compared interleaved in the same run, and,
for `eligibility`, the lean baseline server of `bench/lean_eligibility.py` doing the same durable work (and its
`--product-answer` variant, which also normalises, stores and answers the summary with the product's code); for
`estimate-*`, the bare `grpc.aio` echo server answering the same request (what gRPC alone costs) and, for
`estimate-cold`, the lean Estimate server of `bench/lean_estimate.py` (the same work without the infrastructure).

Paths: `eligibility` (CheckEligibility on a fresh PostgreSQL database), `estimate-cold` (a fresh benefit key per
call), `estimate-warm` (one key: benefit cache hits), `stream50` (StreamEstimates, 50 providers / 5 fresh keys, 100 ms
upstream latency; CPU per stream; baseline: the lean stream server), `stream100` (100 providers / 100 fresh keys),
`stream100-warm` (the same 100 keys every time: benefit cache hits).
`--profile DIR` records each server with py-spy during the last round (collapsed stacks, `DIR/<subject>.txt`,
summarised by `python -m bench.cpu --top FILE`); `--profile DIR --perf` with Linux perf instead (every thread, the
kernel and C libraries included: `DIR/<subject>.perf`, summarised by library and kernel symbol at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .figures import LATENCY, PG_URL_ENV, _stream_once, _stream_stub, pg_url
from .load import Call, channels, close_all
from .payloads import EchoCalls, EligibilityCalls, EstimateCalls, fresh_specialty, stream_request
from .procs import ROOT, Proc, Stack, tree

TICK = os.sysconf("SC_CLK_TCK")
PATHS = ("eligibility", "estimate-cold", "estimate-warm", "stream50", "stream100", "stream100-warm")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of `pid` and its descendants, in seconds."""
    user = system = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return user / TICK, system / TICK


async def counted(calls: Sequence[Call], total: int) -> tuple[int, float]:
    """`total` calls shared by the callers of `calls` (closed loop); (errors, seconds)."""
    left = itertools.count()
    errors = 0

    async def caller(call: Call) -> None:
        nonlocal errors
        while next(left) < total:
            try:
                ok = await call()
            except Exception:  # noqa: BLE001 - counted, the load goes on
                ok = False
            errors += not ok

    started = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in calls))
    return errors, time.perf_counter() - started


@dataclass
class Subject:
    name: str
    proc: Proc
    auth: bool = True
    echo: bool = False  # the bare echo server (baseline of the estimate paths)
    cpu_ms: list[float] = field(default_factory=list)
    sys_ms: list[float] = field(default_factory=list)
    standin_ms: list[float] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)
    errors: int = 0


Loader = Callable[[Subject, int], Awaitable[tuple[int, float]]]


def _loader(path: str, stack: Stack, callers: int) -> Loader:
    md = stack.metadata

    async def load(subject: Subject, n: int) -> tuple[int, float]:
        chans = channels(subject.proc.port, 4)
        metadata = md if subject.auth else ()
        try:
            if subject.echo:
                calls = [EchoCalls(chans[i % 4]).cold for i in range(callers)]
            elif path == "eligibility":
                calls = [EligibilityCalls(chans[i % 4], metadata).check for i in range(callers)]
            elif path == "estimate-cold":
                calls = [EstimateCalls(chans[i % 4], metadata).cold for i in range(callers)]
            elif path == "estimate-warm":
                calls = [EstimateCalls(chans[i % 4], metadata).warm for i in range(callers)]
            else:
                stub = _stream_stub(chans[0])

                providers, distinct = (50, 5) if path == "stream50" else (100, 100)
                warm = [fresh_specialty() for _ in range(distinct)]

                async def one() -> bool:
                    keys = warm if path.endswith("-warm") else [fresh_specialty() for _ in range(distinct)]
                    req = stream_request(providers, keys)
                    _, _, count, bad = await _stream_once(stub, req, metadata)
                    return count == providers and bad == 0

                calls = [one]
            return await counted(calls, n)
        finally:
            await close_all(chans)

    return load


async def _profile(pid: int, out: Path, seconds: float, native: bool, rate: int) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate),
                             *(["--native"] if native else ["--nonblocking"]),
                             "-d", str(int(seconds) + 1), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _perf(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Linux `perf record` of every thread of `pid`: what py-spy cannot see (the kernel, gRPC's C core and
    threads, protobuf, Decimal), by library. Python 3.11 frames all show as the interpreter."""
    return subprocess.Popen(["perf", "record", "-F", "999", "-p", str(pid), "-o", str(out), "--", "sleep",
                             str(int(seconds) + 1)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_summary(path: Path, limit: int = 12) -> None:
    """The share of CPU samples by library, then the heaviest kernel symbols, of a `perf record` file."""
    kernel_only: dict[str, bool] = {"dso": False, "sym": True}
    for sort, only_kernel in kernel_only.items():
        report = subprocess.run(["perf", "report", "-i", str(path), "--sort", sort, "--stdio"],
                                capture_output=True, text=True, check=False).stdout
        lines = [line.strip() for line in report.splitlines() if line.strip() and not line.startswith("#")]
        print(f"--- {path.name} by {'library' if sort == 'dso' else 'kernel symbol'}")
        for line in [x for x in lines if not only_kernel or "[k]" in x][:limit]:
            print(f"  {line}")


async def measure(args: argparse.Namespace) -> list[Subject]:
    workdir = Path(tempfile.mkdtemp(prefix="costest-cpu-"))
    stack = Stack(workdir, lambda step: print(f"  {step}", flush=True))
    roots = [Path(r).resolve() for r in args.roots.split(",")] if args.roots else [ROOT]
    subjects: list[Subject] = []
    admin: Any = None
    database = ""
    try:
        latency = LATENCY if args.path.startswith("stream") else 0.0
        env: dict[str, str] = {}
        database_url = None
        if args.path == "eligibility":
            import asyncpg  # type: ignore[import-untyped]

            from server.store import Keyring, migrate

            admin = await asyncpg.connect(pg_url(driver="postgresql"))
            database = f"costest_cpu_{secrets.token_hex(4)}"
            await admin.execute(f'CREATE DATABASE "{database}"')
            await migrate(pg_url(database))
            database_url = pg_url(database)
            env["COSTEST_MIGRATE_ON_START"] = "false"
            env["COSTEST_DATA_KEY"] = Keyring.new_entry()  # servers sharing a database share its keyring
            if not args.no_lean:
                dsn = pg_url(database, driver="postgresql")
                subjects.append(Subject("lean", await stack.lean_eligibility(dsn), auth=False))
                subjects.append(Subject("lean-answer", await stack.lean_eligibility(dsn, product_answer=True),
                                        auth=False))
        if args.path.startswith("estimate") and not args.no_lean:
            subjects.append(Subject("echo", await stack.echo(1), echo=True))
            if args.path == "estimate-cold":
                subjects.append(Subject("lean", await stack.lean_estimate(), auth=False))
        if args.path == "stream50" and not args.no_lean:
            subjects.append(Subject("lean", await stack.lean_estimate(LATENCY), auth=False))
        for i, root in enumerate(roots):
            name = f"{i}-{root.name}"
            proc = await stack.server(name, payer_latency=latency, database_url=database_url, env=env, root=root)
            subjects.append(Subject(name, proc))
        load = _loader(args.path, stack, args.callers)
        print(f"warming up {', '.join(s.name for s in subjects)}", flush=True)
        for s in subjects:
            await load(s, max(args.n // 10, 2))
        for r in range(args.rounds):
            last = r == args.rounds - 1
            for s in subjects:
                spy = None
                if args.profile and last:
                    # Sampling costs the profiled process nothing much, but the CPU figure of a profiled round is
                    # not comparable: profile in a separate round.
                    est = (s.rate and args.n / statistics.median(s.rate)) or 10.0
                    if args.perf:
                        spy = _perf(s.proc.pid, Path(args.profile) / f"{args.path}-{s.name}.perf", est)
                    elif s.name != "echo":
                        spy = await _profile(s.proc.pid, Path(args.profile) / f"{args.path}-{s.name}.txt", est,
                                             args.native, args.rate)
                    await asyncio.sleep(0.5)
                standins = [p.pid for p in stack.standins()]
                user0, sys0 = cpu_seconds(s.proc.pid)
                others0 = sum(sum(cpu_seconds(pid)) for pid in standins)
                errors, seconds = await load(s, args.n)
                user1, sys1 = cpu_seconds(s.proc.pid)
                others1 = sum(sum(cpu_seconds(pid)) for pid in standins)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy (and perf) write their output on Ctrl-C
                    spy.wait(10)
                    continue
                s.errors += errors
                s.cpu_ms.append((user1 - user0 + sys1 - sys0) / args.n * 1000)
                s.sys_ms.append((sys1 - sys0) / args.n * 1000)
                s.standin_ms.append((others1 - others0) / args.n * 1000)
                s.rate.append(args.n / seconds)
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{s.name} {s.cpu_ms[-1]:.2f} ms CPU/req ({s.rate[-1]:,.0f}/s)" for s in subjects if s.cpu_ms),
                flush=True)
    finally:
        stack.close()
        if admin is not None:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return subjects


def top(path: Path, limit: int = 40) -> None:
    """Summarise py-spy raw (collapsed) stacks: the heaviest functions by own and by total samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    print(f"{samples} samples")
    for title, counter in (("own", own), ("total", total)):
        print(f"--- by {title}")
        for frame, n in counter.most_common(limit):
            print(f"{n / samples:6.1%}  {frame}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", choices=PATHS)
    parser.add_argument("--roots", help="comma-separated source trees to run the server from (default: this one)")
    parser.add_argument("--n", type=int, default=400, help="requests per subject per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callers", type=int, default=20)
    parser.add_argument("--no-lean", action="store_true",
                        help="skip the baselines (eligibility: the lean server; estimate-*: the echo server and, "
                             "for estimate-cold and stream50, the lean Estimate server)")
    parser.add_argument("--profile", help="directory for py-spy stacks of an extra, last round")
    parser.add_argument("--native", action="store_true", help="--profile with native (C) frames")
    parser.add_argument("--rate", type=int, default=200, help="--profile samples per second")
    parser.add_argument("--perf", action="store_true",
                        help="--profile with Linux perf instead of py-spy (every subject, echo included; by library "
                             "and kernel symbol; summarised after the run)")
    parser.add_argument("--top", type=Path, help="summarise a py-spy raw file (or a perf file) and exit")
    args = parser.parse_args(argv)
    if args.top:
        perf_summary(args.top) if args.top.suffix == ".perf" else top(args.top)
        return 0
    if args.perf and not args.profile:
        parser.error("--perf goes with --profile DIR")
    if args.perf and shutil.which("perf") is None:
        parser.error("--perf needs Linux perf on the PATH (Debian: linux-perf)")
    if args.path is None:
        parser.error("a path is needed")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        args.rounds += 1
    if args.path.startswith("stream"):
        args.callers = 1
    if args.path == "eligibility" and not os.environ.get(PG_URL_ENV):
        print(f"PostgreSQL from {pg_url()} ({PG_URL_ENV} to change)", flush=True)
    subjects = asyncio.run(measure(args))
    print(f"\n{args.path}: server CPU per request, median (range) of {len(subjects[0].cpu_ms)} rounds of {args.n}")
    for s in subjects:
        if s.cpu_ms:
            print(f"  {s.name:24s} {statistics.median(s.cpu_ms):7.3f} ms ({min(s.cpu_ms):.3f}–{max(s.cpu_ms):.3f})"
                  f"  of which system {statistics.median(s.sys_ms):.3f} ms"
                  f"  (stand-ins {statistics.median(s.standin_ms):.3f} ms)"
                  f"   {statistics.median(s.rate):8,.0f}/s   errors {s.errors}")
    if args.perf:
        for s in subjects:
            perf_summary(Path(args.profile) / f"{args.path}-{s.name}.perf")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
