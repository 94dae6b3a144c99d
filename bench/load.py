"""Load from the bench process: closed loops (N callers back to back) and open loops (a fixed arrival rate).

Each call is an `async () -> bool` (True = the answer was right). Latencies are kept whole, sorted, in seconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc

Call = Callable[[], Awaitable[bool]]
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per channel (SO_REUSEPORT spreads)


def channels(port: int, n: int) -> list[grpc.aio.Channel]:
    return [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) for _ in range(n)]


async def close_all(chans: Sequence[grpc.aio.Channel]) -> None:
    await asyncio.gather(*(c.close() for c in chans))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100); 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    calls: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def qps(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


async def _timed(call: Call, out: LoadResult) -> None:
    started = time.perf_counter()
    try:
        ok = await call()
    except Exception as exc:  # noqa: BLE001 - an error is a data point, the load goes on
        ok = False
        out.first_error = out.first_error or " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
    out.latencies.append(time.perf_counter() - started)
    out.calls += 1
    out.errors += 0 if ok else 1


async def closed_loop(calls: Sequence[Call], duration: float) -> LoadResult:
    """One caller per entry of `calls`, each calling back to back until `duration` has passed."""
    out = LoadResult()
    stop_at = time.perf_counter() + duration

    async def caller(call: Call) -> None:
        while time.perf_counter() < stop_at:
            await _timed(call, out)

    started = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in calls))
    out.seconds = time.perf_counter() - started
    out.latencies.sort()
    return out


async def sequential(call: Call, count: int) -> LoadResult:
    out = LoadResult()
    started = time.perf_counter()
    for _ in range(count):
        await _timed(call, out)
    out.seconds = time.perf_counter() - started
    out.latencies.sort()
    return out


async def open_loop(call: Call, rate: float, duration: float, max_in_flight: int = 2000) -> LoadResult:
    """Calls started at `rate` per second regardless of answers (arrivals do not wait for the server)."""
    out = LoadResult()
    tasks: set[asyncio.Task[None]] = set()
    interval = 1.0 / rate
    started = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - started < duration:
        due = started + n * interval
        if due > now:
            await asyncio.sleep(due - now)
        if len(tasks) < max_in_flight:
            task = asyncio.ensure_future(_timed(call, out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        n += 1
    if tasks:
        await asyncio.gather(*tasks)
    out.seconds = time.perf_counter() - started
    out.latencies.sort()
    return out
