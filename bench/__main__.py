"""`python -m bench [NAME ...] [--strict] [--long]` (or `./dev bench`): the figures of issue 13 with verdicts.

Starts the upstream stand-ins, the servers under test and the baselines in their own processes, measures each
figure against its baseline in interleaved rounds, prints a table and writes bench/results/<time>.json and
latest.json. `--strict` exits 1 when a target is missed. `chain` (not in the default set) runs the cost-share
chain microbenchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from .figures import FIGURES, Config, Context, run_figure
from .procs import Stack
from .report import Row, missed, render, write_json

RESULTS = Path(__file__).resolve().parent / "results"
EXTRA = ("chain",)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./dev bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"figures: {', '.join(FIGURES)} (default: all); "
                        f"also: {', '.join(EXTRA)}")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    parser.add_argument("--long", action="store_true", help="longer and more rounds (several minutes)")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    return parser.parse_args(argv)


async def run(names: list[str], cfg: Config, workdir: Path) -> list[Row]:
    started = time.monotonic()
    current = [""]

    def progress(step: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {current[0]}: {step}", flush=True)

    stack = Stack(workdir, progress)
    ctx = Context(stack, cfg, progress)
    rows: list[Row] = []
    try:
        for name in names:
            current[0] = name
            rows += await run_figure(name, ctx)
            progress("done")
    finally:
        current[0] = "bench"
        stack.close()
    return rows


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.list:
        print("\n".join([*FIGURES, *EXTRA]))
        return 0
    unknown = [n for n in args.names if n not in FIGURES and n not in EXTRA]
    if unknown:
        print(f"unknown figure(s): {', '.join(unknown)}; available: {', '.join([*FIGURES, *EXTRA])}", file=sys.stderr)
        return 2
    if "chain" in args.names:
        from . import bench_chain

        bench_chain.main()
        if args.names == ["chain"]:
            return 0
    names = [n for n in (args.names or list(FIGURES)) if n in FIGURES]
    cfg = Config(rounds=5, seconds=5.0, seed_runs=3, long=True) if args.long else Config()
    began = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="costest-bench-") as tmp:
        rows = asyncio.run(run(names, cfg, Path(tmp)))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{os.cpu_count()} CPUs, load average {load} (a shared machine: read the ratios, not the absolutes)")
    print(render(rows))
    stamp = began.strftime("%Y%m%dT%H%M%SZ")
    path = write_json(rows, {"started": began.isoformat(), "seconds": round((datetime.now(UTC) - began)
                                                                            .total_seconds(), 1),
                             "figures": names, "long": args.long, "python": sys.version.split()[0],
                             "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}"},
                      RESULTS, stamp)
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    print(f"\nwritten {shown} (and latest.json)")
    bad = missed(rows)
    if bad:
        print(f"{len(bad)} target(s) missed or broken: {', '.join(r.figure for r in bad)}")
    return 1 if bad and args.strict else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
