"""The figures of issue 13, each measured against its baseline in the same run, interleaved and repeated.

Every figure is `async (Context) -> list[Row]`. Rounds alternate baseline and subject so that the shared, noisy
machine weighs on both alike; a figure reports the median of its rounds and their range.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from costestimator.v1 import estimate_service_pb2 as epb

from server.settings import Settings

from .from_eligibility import from_eligibility
from .load import LoadResult, channels, close_all, closed_loop, open_loop, percentile, sequential
from .payloads import DirectPayer, EchoCalls, EligibilityCalls, EstimateCalls, cache_field, fresh_specialty, \
    stream_request
from .procs import Proc, Stack, cpu_ticks, status_kb, tree
from .report import NA, Row, Spread, Target, failed, not_applicable, row
from .seed_client import seed_style

CACHE_SETTING, WORKERS_SETTING = "benefit_cache_ttl_seconds", "workers"
QPS_CALLERS, QPS_CHANNELS = 32, 4
LATENCY = 0.1  # upstream latency of the streaming figures
PG_URL_ENV, PG_DEFAULT = "COSTEST_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def pg_url(database: str | None = None, *, driver: str = "postgresql+asyncpg") -> str:
    """The PostgreSQL the tests use (COSTEST_TEST_POSTGRES_URL or the local one), for `database` and `driver`."""
    from sqlalchemy.engine import make_url

    url = make_url(os.environ.get(PG_URL_ENV) or PG_DEFAULT).set(drivername=driver)
    return (url.set(database=database) if database else url).render_as_string(hide_password=False)


@dataclass
class Config:
    rounds: int = 3
    seconds: float = 1.5  # one load phase
    seed_runs: int = 1
    long: bool = False


@dataclass
class Context:
    stack: Stack
    cfg: Config
    progress: Callable[[str], None]
    shared: dict[str, Any] = field(default_factory=dict)


def has_setting(name: str) -> bool:
    return name in Settings.model_fields


def _ms(seconds: float) -> float:
    return seconds * 1000


def _check(result: LoadResult, what: str) -> str:
    if result.errors:
        return f"{what}: {result.errors} of {result.calls} calls failed ({result.first_error or 'wrong answer'})"
    return ""


# ---------------------------------------------------------------- 1. Estimate QPS


async def _qps(ctx: Context, port: int, make: Callable[[Any], Callable[[], Awaitable[bool]]],
               seconds: float) -> LoadResult:
    chans = channels(port, QPS_CHANNELS)
    try:
        calls = [make(chans[i % QPS_CHANNELS]) for i in range(QPS_CALLERS)]
        return await closed_loop(calls, seconds)
    finally:
        await close_all(chans)


async def estimate_qps(ctx: Context) -> list[Row]:
    server = await ctx.stack.server("main")
    echo = await ctx.stack.echo(1)
    md = ctx.stack.metadata
    warm_possible = has_setting(CACHE_SETTING) and cache_field() is not None
    hits = {"from_cache": 0}
    subjects: dict[str, Callable[[Any], Callable[[], Awaitable[bool]]]] = {
        "echo": lambda ch: EchoCalls(ch).cold,
        "cold": lambda ch: EstimateCalls(ch, md).cold,
    }
    if warm_possible:
        subjects["warm"] = lambda ch: EstimateCalls(ch, md, hits).warm
    lean = await ctx.stack.lean_estimate()
    subjects["lean"] = lambda ch: EstimateCalls(ch, ()).cold
    ports = {"echo": echo.port, "cold": server.port, "warm": server.port, "lean": lean.port}
    if warm_possible:
        lean_memo = await ctx.stack.lean_estimate(benefit_memo=True)
        subjects["lean-warm"] = lambda ch: EstimateCalls(ch, ()).warm
        ports["lean-warm"] = lean_memo.port
    ctx.progress("warming up (echo, Estimate)")
    for name, make in subjects.items():
        await _qps(ctx, ports[name], make, 0.5)
    results: dict[str, list[LoadResult]] = {k: [] for k in subjects}
    hits["from_cache"] = 0
    for r in range(ctx.cfg.rounds):
        for name, make in subjects.items():
            results[name].append(await _qps(ctx, ports[name], make, ctx.cfg.seconds))
        ctx.progress(f"round {r + 1}/{ctx.cfg.rounds}: " + ", ".join(
            f"{k} {v[-1].qps:,.0f} QPS" for k, v in results.items()))
    echo_qps = Spread.of([x.qps for x in results["echo"]])
    rows = []
    for name, target in (("cold", 0.40), ("warm", 0.55)):
        figure = f"1 Estimate QPS, {name} benefit cache"
        tgt = Target("ratio", ">=", target, f"≥ {target:.0%} of echo")
        if name not in results:
            rows.append(not_applicable(figure, tgt.text, "the server has no benefit cache "
                                       f"(no COSTEST_{CACHE_SETTING.upper()} setting or no {name} answer field)"))
            continue
        ratios = [s.qps / e.qps for s, e in zip(results[name], results["echo"], strict=True) if e.qps]
        qps = Spread.of([x.qps for x in results[name]])
        ratio = Spread.of(ratios)
        notes = [n for n in (_check(x, name) for x in results[name] + results["echo"]) if n][:1]
        if name == "warm":
            total = sum(x.calls for x in results["warm"])
            notes.append(f"{hits['from_cache'] / max(total, 1):.0%} of warm answers said benefit_from_cache")
        else:
            notes.append("every request a fresh benefit key (nothing to cache)")
        rows.append(row(figure, qps.fmt(0, " QPS"), {"ratio": ratio.median, "qps": qps.median,
                                                     "echo_qps": echo_qps.median, "ratio_range": [ratio.low, ratio.high]},
                        [tgt], baseline=f"echo {echo_qps.fmt(0, ' QPS')}",
                        ratio=Spread(ratio.median * 100, ratio.low * 100, ratio.high * 100).fmt(0, " %"),
                        note="; ".join(notes)))
    rows.append(_qps_against_lean(
        results, "cold", "lean", "1 Estimate QPS, cold, against a lean Estimate server",
        "the same work (validation, both payer calls, the product's runner and answer) with a bare grpc.aio server "
        "and a bare aiohttp session, no auth, metrics, resilience or cache (bench/lean_estimate.py)"))
    if "lean-warm" in results:
        rows.append(_qps_against_lean(
            results, "warm", "lean-warm",
            "1 Estimate QPS, warm, against a lean Estimate server keeping benefit answers",
            "the lean server with a plain dict of benefit answers, so that only the accumulators call goes out "
            "(bench/lean_estimate.py --benefit-memo)"))
    cold_qps = Spread.of([x.qps for x in results["cold"]])
    ctx.shared["saturation_qps"] = cold_qps.median
    return rows


def _qps_against_lean(results: dict[str, list[LoadResult]], ours: str, lean: str, figure: str, what: str) -> Row:
    """A context row (no target): our QPS against a lean server's, interleaved, and the lean one's share of echo."""
    qps = Spread.of([x.qps for x in results[ours]])
    lean_qps = Spread.of([x.qps for x in results[lean]])
    of_lean = Spread.of([s.qps / b.qps for s, b in zip(results[ours], results[lean], strict=True) if b.qps])
    lean_of_echo = Spread.of([b.qps / e.qps for b, e in zip(results[lean], results["echo"], strict=True) if e.qps])
    notes = [n for n in (_check(x, lean) for x in results[lean]) if n][:1]
    return row(figure, qps.fmt(0, " QPS"),
               {"ratio": of_lean.median, "lean_qps": lean_qps.median, "lean_of_echo": lean_of_echo.median},
               [], baseline=f"lean {lean_qps.fmt(0, ' QPS')} = {lean_of_echo.median:.0%} of echo",
               ratio=f"{of_lean.fmt(2, '×')}", note="; ".join(notes + [f"context, no target: {what}"]))


# ---------------------------------------------------------------- 5. overhead over a direct upstream call


async def overhead(ctx: Context) -> list[Row]:
    server = await ctx.stack.server("main")
    payer = await ctx.stack.payer(0.0)
    md = ctx.stack.metadata
    n = 400 if ctx.cfg.long else 150
    rows = []
    chans = channels(server.port, QPS_CHANNELS)
    try:
        est = EstimateCalls(chans[0], md)
        async with DirectPayer(payer.info) as direct:
            ctx.progress("warming up (direct call, Estimate)")
            await sequential(direct.call, 20)
            await sequential(est.cold, 20)
            d_all: list[float] = []
            e_all: list[float] = []
            p50s, p99s = [], []
            for r in range(ctx.cfg.rounds):
                d = await sequential(direct.call, n)
                e = await sequential(est.cold, n)
                d_all += d.latencies
                e_all += e.latencies
                p50s.append(_ms(e.p(50) - d.p(50)))
                p99s.append(_ms(e.p(99) - d.p(99)))
                ctx.progress(f"1 caller, round {r + 1}/{ctx.cfg.rounds}: Estimate p50 {_ms(e.p(50)):.2f} ms, "
                             f"direct p50 {_ms(d.p(50)):.2f} ms")
            rows.append(_overhead_row("5 overhead over direct call, 1 caller", sorted(d_all), sorted(e_all),
                                      p50s, p99s, 2, 5, f"{n} sequential calls per round"))

            saturation = ctx.shared.get("saturation_qps")
            if saturation is None:
                ctx.progress("measuring Estimate saturation (closed loop, 32 callers)")
                calls = [EstimateCalls(chans[i % QPS_CHANNELS], md).cold for i in range(QPS_CALLERS)]
                saturation = (await closed_loop(calls, ctx.cfg.seconds)).qps
            rate = 0.7 * saturation
            open_calls = [EstimateCalls(ch, md).cold for ch in chans]
            rr = iter(range(1 << 62))

            async def spread_call() -> bool:
                return await open_calls[next(rr) % len(open_calls)]()

            d_all, e_all, p50s, p99s = [], [], [], []
            notes = []
            for r in range(ctx.cfg.rounds):
                d = await open_loop(direct.call, rate, ctx.cfg.seconds)
                e = await open_loop(spread_call, rate, ctx.cfg.seconds)
                d_all += d.latencies
                e_all += e.latencies
                p50s.append(_ms(e.p(50) - d.p(50)))
                p99s.append(_ms(e.p(99) - d.p(99)))
                notes += [x for x in (_check(e, "Estimate"), _check(d, "direct")) if x]
                ctx.progress(f"{rate:,.0f}/s (70 % of {saturation:,.0f}), round {r + 1}/{ctx.cfg.rounds}: "
                             f"Estimate p99 {_ms(e.p(99)):.1f} ms, direct p99 {_ms(d.p(99)):.1f} ms")
            rows.append(_overhead_row("5 overhead over direct call, 70 % load", sorted(d_all), sorted(e_all),
                                      p50s, p99s, 10, 25, "; ".join(
                                          [f"open loop at {rate:,.0f}/s = 70 % of {saturation:,.0f} QPS"] + notes[:1])))
    finally:
        await close_all(chans)
    return rows


def _overhead_row(figure: str, direct: list[float], est: list[float], p50s: list[float], p99s: list[float],
                  p50_target: float, p99_target: float, note: str) -> Row:
    o50 = _ms(percentile(est, 50) - percentile(direct, 50))
    o99 = _ms(percentile(est, 99) - percentile(direct, 99))
    r50, r99 = Spread.of(p50s), Spread.of(p99s)
    return row(figure, f"p50 +{o50:.2f} ms, p99 +{o99:.2f} ms",
               {"p50_ms": o50, "p99_ms": o99, "p50_rounds_ms": p50s, "p99_rounds_ms": p99s},
               [Target("p50_ms", "<=", p50_target, f"p50 ≤ {p50_target:g} ms"),
                Target("p99_ms", "<=", p99_target, f"p99 ≤ {p99_target:g} ms")],
               baseline=f"direct p50 {_ms(percentile(direct, 50)):.2f} ms, p99 {_ms(percentile(direct, 99)):.2f} ms",
               ratio=f"rounds p50 {r50.low:+.1f}…{r50.high:+.1f}, p99 {r99.low:+.1f}…{r99.high:+.1f} ms",
               note=note + "; pooled percentiles over all rounds")


# ---------------------------------------------------------------- 3./4. StreamEstimates


async def _stream_once(stub: Any, request: epb.StreamEstimatesRequest, md: Any) -> tuple[float, float, int, int]:
    started = time.perf_counter()
    first, count, bad = 0.0, 0, 0
    async for reply in stub(request, metadata=md, timeout=30):
        if count == 0:
            first = time.perf_counter() - started
        count += 1
        bad += reply.estimate.status.code != 0
    return first, time.perf_counter() - started, count, bad


def _stream_stub(channel: Any) -> Any:
    return channel.unary_stream("/costestimator.v1.EstimateService/StreamEstimates",
                                request_serializer=epb.StreamEstimatesRequest.SerializeToString,
                                response_deserializer=epb.StreamEstimatesResponse.FromString)


StreamRun = tuple[float, float, int, int]  # first result, all results (seconds), results, results not OK


async def _stream_rounds(ctx: Context, providers: int, keys: int, rounds: int,
                         subjects: Sequence[tuple[str, Proc, Any]]) -> list[list[StreamRun]]:
    """`rounds` streams against each (name, server, call metadata) subject, interleaved round by round."""
    chans = [channels(proc.port, 1)[0] for _, proc, _ in subjects]
    try:
        stubs = [_stream_stub(ch) for ch in chans]
        for stub, (_, _, md) in zip(stubs, subjects, strict=True):  # warm-up: token, connections
            await _stream_once(stub, stream_request(providers, [fresh_specialty() for _ in range(keys)]), md)
        out: list[list[StreamRun]] = [[] for _ in subjects]
        for r in range(rounds):
            for runs, stub, (_, _, md) in zip(out, stubs, subjects, strict=True):
                # Fresh benefit keys every round: the cold case, whatever a cache would remember.
                req = stream_request(providers, [fresh_specialty() for _ in range(keys)])
                runs.append(await _stream_once(stub, req, md))
                await asyncio.sleep(0.05)
            ctx.progress(f"{providers} providers / {keys} keys, round {r + 1}/{rounds}: " + ", ".join(
                f"{name} first {_ms(runs[-1][0]):.0f} ms, all {_ms(runs[-1][1]):.0f} ms"
                for runs, (name, _, _) in zip(out, subjects, strict=True)))
        return out
    finally:
        await close_all(chans)


async def _streams(ctx: Context, providers: int, keys: int, rounds: int) -> list[StreamRun]:
    server = await ctx.stack.server("latency", payer_latency=LATENCY)
    return (await _stream_rounds(ctx, providers, keys, rounds, [("ours", server, ctx.stack.metadata)]))[0]


def _stream_problems(runs: list[StreamRun], providers: int) -> list[str]:
    bad = sum(r[3] for r in runs)
    short = sum(1 for r in runs if r[2] != providers)
    return ([f"{bad} provider results not OK"] if bad else []) + ([f"{short} streams incomplete"] if short else [])


def _stream_note(runs: list[StreamRun], providers: int) -> str:
    return "; ".join(_stream_problems(runs, providers) + ["fresh benefit keys every round (cold)"])


async def stream50(ctx: Context) -> list[Row]:
    rounds = max(5, ctx.cfg.rounds)
    payer = await ctx.stack.payer(LATENCY)
    server = await ctx.stack.server("latency", payer_latency=LATENCY)
    runs, lean = await _stream_rounds(ctx, 50, 5, rounds, [("ours", server, ctx.stack.metadata),
                                                          ("lean", await ctx.stack.lean_estimate(LATENCY), ())])
    first = Spread.of([r[0] / LATENCY for r in runs])
    every = Spread.of([r[1] / LATENCY for r in runs])
    seeds = []
    for i in range(ctx.cfg.seed_runs):
        ctx.progress(f"seed-style client, 50 providers one after another (≈ 10 s), run {i + 1}/{ctx.cfg.seed_runs}")
        seeds.append(await seed_style(payer.info, [fresh_specialty() for _ in range(5)], 50))
        if i + 1 < ctx.cfg.seed_runs:  # interleave: one more of ours between seed runs
            runs += await _streams(ctx, 50, 5, 1)
    seed_all = Spread.of([s[1] for s in seeds])
    ours_all = Spread.of([r[1] for r in runs])
    speedup = seed_all.median / ours_all.median
    lat = f"upstream latency {_ms(LATENCY):.0f} ms"
    return [
        row("3 StreamEstimates 50/5, first result", f"{_ms(first.median * LATENCY):.0f} ms",
            {"first_over_latency": first.median}, [Target("first_over_latency", "<=", 1.10, "≤ 1.10× latency")],
            baseline=lat, ratio=first.fmt(2, "×"), note=_stream_note(runs, 50)),
        row("3 StreamEstimates 50/5, all results", f"{_ms(every.median * LATENCY):.0f} ms",
            {"all_over_latency": every.median}, [Target("all_over_latency", "<=", 1.15, "≤ 1.15× latency")],
            baseline=lat, ratio=every.fmt(2, "×")),
        _against_lean("3 StreamEstimates 50/5, all results, against a lean stream server", runs, lean, 50),
        row("3 StreamEstimates 50/5 vs seed-style", f"{_ms(ours_all.median):.0f} ms",
            {"speedup": speedup, "seed_all_ms": _ms(seed_all.median)}, [Target("speedup", ">=", 85, "≥ 85× faster")],
            baseline=f"seed-style {_ms(seed_all.median):,.0f} ms", ratio=f"{speedup:.0f}× faster",
            note=f"{len(seeds)} seed-style run(s), sequential per-provider calls, new HTTP session per call"),
    ]


async def stream100(ctx: Context) -> list[Row]:
    server = await ctx.stack.server("latency", payer_latency=LATENCY)
    bare = await ctx.stack.lean_estimate(LATENCY)
    runs, lean = await _stream_rounds(ctx, 100, 100, max(5, ctx.cfg.rounds),
                                      [("ours", server, ctx.stack.metadata), ("lean", bare, ())])
    every = Spread.of([r[1] / LATENCY for r in runs])
    return [
        row("4 StreamEstimates 100/100, all results", f"{_ms(every.median * LATENCY):.0f} ms",
            {"all_over_latency": every.median}, [Target("all_over_latency", "<=", 1.30, "≤ 1.30× latency")],
            baseline=f"upstream latency {_ms(LATENCY):.0f} ms", ratio=every.fmt(2, "×"),
            note=_stream_note(runs, 100)),
        _against_lean("4 StreamEstimates 100/100, against a lean stream server", runs, lean, 100),
    ]


def _against_lean(figure: str, runs: list[StreamRun], lean: list[StreamRun], providers: int) -> Row:
    """A context row: our streams against the lean server's, run interleaved (what the stack itself allows)."""
    every = Spread.of([r[1] / LATENCY for r in runs])
    lean_every = Spread.of([r[1] / LATENCY for r in lean])
    of_lean = Spread.of([mine[1] / theirs[1] for mine, theirs in zip(runs, lean, strict=True) if theirs[1]])
    return row(figure, f"{_ms(every.median * LATENCY):.0f} ms",
               {"ratio": of_lean.median, "lean_over_latency": lean_every.median}, [],
               baseline=f"lean {_ms(lean_every.median * LATENCY):.0f} ms = {lean_every.fmt(2, '×')} latency",
               ratio=of_lean.fmt(2, "×"),
               note="; ".join(_stream_problems(lean, providers) + [
                   "context, no target: the same streams, interleaved, from a bare grpc.aio server with a bare "
                   "aiohttp session and the product's runner and answers (bench/lean_estimate.py)"]))


# ---------------------------------------------------------------- 6. several processes


async def workers(ctx: Context) -> list[Row]:
    rows = []
    echo1, echo2 = await ctx.stack.echo(1), await ctx.stack.echo(2)
    # 16 connections: the kernel hashes each to one worker; with 8, one worker got none or almost none (7:1, 8:0)
    # often enough to fail a run now and then.
    chans_n, callers = 16, 64

    async def qps(port: int, make: Callable[[Any], Callable[[], Awaitable[bool]]]) -> LoadResult:
        chans = channels(port, chans_n)
        try:
            return await closed_loop([make(chans[i % chans_n]) for i in range(callers)], ctx.cfg.seconds)
        finally:
            await close_all(chans)

    def echo_make(ch: Any) -> Callable[[], Awaitable[bool]]:
        return EchoCalls(ch).cold

    e1, e2 = [], []
    for r in range(ctx.cfg.rounds):
        e1.append(await qps(echo1.port, echo_make))
        e2.append(await qps(echo2.port, echo_make))
        ctx.progress(f"echo round {r + 1}/{ctx.cfg.rounds}: 1 process {e1[-1].qps:,.0f}, 2 processes "
                     f"{e2[-1].qps:,.0f} QPS")
    gain = Spread.of([b.qps / a.qps for a, b in zip(e1, e2, strict=True)])
    echo_text = f"echo ×{gain.median:.2f} ({gain.low:.2f}–{gain.high:.2f})"
    ctx.stack.stop("echo-2")
    figure = "6 two server processes vs one"
    target = Target("gain", ">=", 1.1, "≥ 1.1× one process")
    if not has_setting(WORKERS_SETTING):
        rows.append(not_applicable(figure, target.text, "the server has no COSTEST_WORKERS setting (a second "
                                   "process would fail: address in use)"))
        rows[-1].baseline = echo_text
        return rows
    one = await ctx.stack.server("main")
    two = await ctx.stack.server("workers2", env={"COSTEST_WORKERS": "2"})
    md = ctx.stack.metadata

    def est_make(ch: Any) -> Callable[[], Awaitable[bool]]:
        return EstimateCalls(ch, md).cold

    await qps(two.port, est_make)  # warm-up: every worker's upstream token and connections
    s1, s2, served = [], [], []
    for r in range(ctx.cfg.rounds):
        s1.append(await qps(one.port, est_make))
        pids = tree(two.pid)
        before = {p: cpu_ticks(p) for p in pids}
        s2.append(await qps(two.port, est_make))
        served.append(sum(1 for p in pids if cpu_ticks(p) - before[p] >= 10))
        ctx.progress(f"server round {r + 1}/{ctx.cfg.rounds}: 1 process {s1[-1].qps:,.0f}, COSTEST_WORKERS=2 "
                     f"{s2[-1].qps:,.0f} QPS ({served[-1]} processes busy)")
    ratio = Spread.of([b.qps / a.qps for a, b in zip(s1, s2, strict=True)])
    busy = min(served)
    result = row(figure, f"{Spread.of([x.qps for x in s2]).fmt(0, ' QPS')}",
            {"gain": ratio.median if busy >= 2 else 0.0, "busy_processes": busy},
            [target], baseline=f"1 process {Spread.of([x.qps for x in s1]).fmt(0, ' QPS')}; {echo_text}",
            ratio=ratio.fmt(2, "×"),
            note=f"{busy} server processes used CPU in every round" + ("" if busy >= 2 else
                                                                       " — the second process did not serve"))
    ctx.stack.stop("workers2")
    return [result]


# ---------------------------------------------------------------- 7. memory with open streams


async def rss(ctx: Context) -> list[Row]:
    slow = 5.0  # the upstream holds every stream open while we look
    server = await ctx.stack.server("rss", payer_latency=slow, env={"COSTEST_MAX_CONCURRENT_RPCS": "1100"})
    md = ctx.stack.metadata
    idle = sum(status_kb(p, "VmRSS") for p in tree(server.pid)) / 1024
    rows = []
    chans = channels(server.port, 10)
    try:
        stubs = [_stream_stub(ch) for ch in chans]
        keys = [fresh_specialty() for _ in range(5)]
        for n, limit in ((200, 300), (1000, 400)):
            ctx.progress(f"opening {n} StreamEstimates (50 providers each, upstream latency {slow:.0f} s)")
            calls = [stubs[i % len(stubs)](stream_request(50, keys), metadata=md, timeout=30) for i in range(n)]
            readers = [asyncio.ensure_future(c.read()) for c in calls]  # starts each RPC
            await asyncio.sleep(2.5 if ctx.cfg.long else 1.5)
            early = sum(1 for t in readers if t.done())
            pids = tree(server.pid)
            peak = sum(status_kb(p, "VmHWM") for p in pids) / 1024
            for c in calls:
                c.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            rows.append(row(f"7 peak RSS, {n} open streams", f"{peak:.0f} MB", {"peak_mb": peak},
                            [Target("peak_mb", "<=", limit, f"≤ {limit} MB")], baseline=f"idle {idle:.0f} MB",
                            ratio=f"{peak / idle:.2f}× idle" if idle else "—",
                            note=f"VmHWM summed over {len(pids)} server process(es)"
                                 + (f"; {early} streams ended before the reading" if early else "")))
            await asyncio.sleep(0.5)
    finally:
        await close_all(chans)
        ctx.stack.stop("rss")
    return rows


# ---------------------------------------------------------------- 2. eligibility on PostgreSQL


async def eligibility(ctx: Context) -> list[Row]:
    import asyncpg  # type: ignore[import-untyped]

    figure = "2 CheckEligibility, PostgreSQL, 50 callers"
    targets = [Target("checks_per_s", ">=", 500, "≥ 500/s"), Target("ratio", ">=", 0.9, "≥ 0.9× lean")]
    try:
        admin = await asyncio.wait_for(asyncpg.connect(pg_url(driver="postgresql")), 5)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        return [not_applicable(figure, " and ".join(t.text for t in targets),
                               f"PostgreSQL unreachable ({type(exc).__name__}; {PG_URL_ENV} or 127.0.0.1:5432)")]
    name = f"costest_bench_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        from server.store import migrate

        ctx.progress(f"fresh database {name}: migrating")
        await migrate(pg_url(name))
        dsn = pg_url(name, driver="postgresql")
        lean = await ctx.stack.lean_eligibility(dsn)
        answering = await ctx.stack.lean_eligibility(dsn, product_answer=True)
        server = await ctx.stack.server("eligibility", database_url=pg_url(name),
                                        env={"COSTEST_MIGRATE_ON_START": "false"})
        md = ctx.stack.metadata

        async def load(port: int, auth: bool, seconds: float) -> LoadResult:
            chans = channels(port, 4)
            try:
                calls = [EligibilityCalls(chans[i % 4], md if auth else ()).check for i in range(50)]
                return await closed_loop(calls, seconds)
            finally:
                await close_all(chans)

        ctx.progress("warming up (lean, lean answering the summary, server)")
        await load(lean.port, False, 0.5)
        await load(answering.port, False, 0.5)
        await load(server.port, True, 0.5)
        lean_runs, answering_runs, ours = [], [], []
        for r in range(ctx.cfg.rounds):
            lean_runs.append(await load(lean.port, False, ctx.cfg.seconds))
            answering_runs.append(await load(answering.port, False, ctx.cfg.seconds))
            ours.append(await load(server.port, True, ctx.cfg.seconds + 0.5))
            ctx.progress(f"round {r + 1}/{ctx.cfg.rounds}: lean {lean_runs[-1].qps:,.0f}/s, lean answering "
                         f"{answering_runs[-1].qps:,.0f}/s, server {ours[-1].qps:,.0f}/s, "
                         f"p99 {_ms(ours[-1].p(99)):.0f} ms")
    finally:
        ctx.stack.stop("eligibility")
        ctx.stack.stop("lean-eligibility")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    rate = Spread.of([x.qps for x in ours])
    lean_rate = Spread.of([x.qps for x in lean_runs])
    answering_rate = Spread.of([x.qps for x in answering_runs])
    ratio = Spread.of([o.qps / lr.qps for o, lr in zip(ours, lean_runs, strict=True) if lr.qps])
    answering_ratio = Spread.of([o.qps / a.qps for o, a in zip(ours, answering_runs, strict=True) if a.qps])
    p99 = Spread.of([_ms(x.p(99)) for x in ours])
    lean_p99 = Spread.of([_ms(x.p(99)) for x in lean_runs])
    note = "; ".join([n for n in (_check(x, "server") for x in ours) if n][:1]
                     + [n for n in (_check(x, "lean") for x in [*lean_runs, *answering_runs]) if n][:1]
                     + ["fresh database, dropped after"])
    return [
        row(figure + ", rate", rate.fmt(0, "/s"), {"checks_per_s": rate.median, "ratio": ratio.median}, targets,
            baseline=f"lean {lean_rate.fmt(0, '/s')}", ratio=ratio.fmt(2, "×"), note=note),
        row(figure + ", rate, vs a lean server giving the product's answer", rate.fmt(0, "/s"),
            {"ratio": answering_ratio.median}, [],
            baseline=f"lean answering {answering_rate.fmt(0, '/s')} = {answering_rate.median / lean_rate.median:.2f}× "
                     "lean" if lean_rate.median else f"lean answering {answering_rate.fmt(0, '/s')}",
            ratio=answering_ratio.fmt(2, "×"),
            note="context, no target: the lean server plus the domain work the API's answer requires (the "
                 "product's normalize_response, summary stored sealed and answered): what is left is the price of "
                 "auth, metrics, resilience and the store layer (bench/lean_eligibility.py --product-answer)"),
        row(figure + ", p99", p99.fmt(0, " ms"), {"p99_ms": p99.median}, [Target("p99_ms", "<=", 200, "≤ 200 ms")],
            baseline=f"lean {lean_p99.fmt(0, ' ms')}",
            ratio=f"{p99.median / lean_p99.median:.1f}× lean" if lean_p99.median else "—"),
    ]


FIGURES: dict[str, Callable[[Context], Awaitable[list[Row]]]] = {
    "qps": estimate_qps,
    "overhead": overhead,
    "stream50": stream50,
    "stream100": stream100,
    "rss": rss,
    "workers": workers,
    "eligibility": eligibility,
    "fromelig": from_eligibility,
}


async def run_figure(name: str, ctx: Context) -> list[Row]:
    """A figure's rows; a figure that breaks yields one ERROR row instead of ending the run."""
    try:
        return await FIGURES[name](ctx)
    except Exception as exc:  # noqa: BLE001 - reported in the table, the other figures still run
        return [failed(name, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")]


__all__ = ["FIGURES", "NA", "Config", "Context", "run_figure"]
