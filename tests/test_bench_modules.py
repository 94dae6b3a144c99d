"""The bench cannot rot unnoticed: every module imports, the verdict logic holds, and one figure runs end to end
(very short rounds) against real processes: stand-ins, `python -m server` and the echo baseline."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest

import bench
from bench.__main__ import main as bench_main
from bench.figures import FIGURES, Config, Context, run_figure
from bench.load import percentile
from bench.procs import Stack
from bench.report import ERROR, FAIL, NA, PASS, Row, Spread, Target, judge, missed, render, row

MODULES = sorted(m.name for m in pkgutil.iter_modules(bench.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_every_bench_module_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")


def test_the_default_set_covers_every_figure_of_issue_13() -> None:
    assert list(FIGURES) == ["qps", "overhead", "stream50", "stream100", "rss", "workers", "eligibility",
                             "fromelig"]  # the last: issue 11


def test_verdicts() -> None:
    at_least = Target("ratio", ">=", 0.4, "≥ 40 %")
    at_most = Target("p99_ms", "<=", 200, "≤ 200 ms")
    assert judge({"ratio": 0.4, "p99_ms": 200}, [at_least, at_most]) == PASS
    assert judge({"ratio": 0.39, "p99_ms": 10}, [at_least, at_most]) == FAIL
    assert judge({"ratio": 0.9, "p99_ms": 201}, [at_least, at_most]) == FAIL
    assert judge({"ratio": 0.9}, [at_least, at_most]) == NA
    rows = [row("a", "1", {"ratio": 0.5}, [at_least]), row("b", "1", {"ratio": 0.1}, [at_least]),
            Row("c", "—", verdict=NA), Row("d", "—", verdict=ERROR)]
    assert [r.verdict for r in rows] == [PASS, FAIL, NA, ERROR]
    assert [r.figure for r in missed(rows)] == ["b", "d"]


def test_spread_and_percentiles() -> None:
    s = Spread.of([3.0, 1.0, 2.0])
    assert (s.median, s.low, s.high) == (2.0, 1.0, 3.0)
    assert s.fmt(1, " ms") == "2.0 ms (1.0–3.0)"
    values = [float(i) for i in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)
    assert percentile([], 99) == 0.0


def test_the_table_is_aligned_and_carries_notes() -> None:
    text = render([Row("short", "1 QPS", verdict=PASS, note="why"), Row("a much longer figure", "12,345 QPS")])
    lines = text.splitlines()
    assert lines[0].index("value") == lines[2].index("1 QPS") == lines[4].index("12,345 QPS")
    assert "↳ why" in lines[3]


def test_unknown_names_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["nope"]) == 2
    assert bench_main(["--list"]) == 0
    assert "eligibility" in capsys.readouterr().out


async def test_one_short_figure_runs_against_real_processes(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    stack = Stack(tmp_path, lambda step: print(step, flush=True))
    try:
        rows = await run_figure("qps", Context(stack, Config(rounds=1, seconds=0.3), stack.progress))
        procs = list(stack._all)
    finally:
        stack.close()
    cold = rows[0]
    assert cold.verdict in (PASS, FAIL), cold.note  # measured, not broken
    assert cold.numbers["qps"] > 0 and cold.numbers["echo_qps"] > 0
    assert "failed" not in cold.note, cold.note  # every Estimate answered OK
    assert rows[1].figure.endswith("warm benefit cache") and rows[1].verdict in (PASS, FAIL, NA)
    lean = rows[2]
    assert "lean Estimate server" in lean.figure and lean.verdict == NA  # context, no target
    assert lean.numbers["lean_qps"] > 0 and "failed" not in lean.note, lean.note
    assert procs and all(p.popen.poll() is not None for p in procs)  # every process ended
    out = capsys.readouterr().out
    assert stack.metadata[0][1].split()[1] not in out  # the token is never printed
    assert "starting the server under test" in out


def test_strict_exits_non_zero_on_a_missed_target_and_json_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import bench.__main__ as cli

    async def fake_run(names: list[str], cfg: Config, workdir: Path) -> list[Row]:
        return [row("1 x", "1 QPS", {"ratio": 0.1}, [Target("ratio", ">=", 0.4, "≥ 40 %")]),
                Row("6 y", "—", verdict=NA, note="absent")]

    monkeypatch.setattr(cli, "run", fake_run)
    monkeypatch.setattr(cli, "RESULTS", tmp_path)
    assert cli.main(["qps"]) == 0
    assert cli.main(["qps", "--strict"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "N/A" in out and "latest.json" in out
    saved = json.loads((tmp_path / "latest.json").read_text())
    assert [r["verdict"] for r in saved["rows"]] == [FAIL, NA]
    assert saved["figures"] == ["qps"]


def _estimate_rpc(channel: Any) -> Any:
    from costestimator.v1 import estimate_service_pb2 as epb

    return channel.unary_unary("/costestimator.v1.EstimateService/Estimate",
                               request_serializer=epb.EstimateRequest.SerializeToString,
                               response_deserializer=epb.EstimateResponse.FromString)


async def test_the_lean_estimate_baseline_gives_the_products_answers(tmp_path: Path) -> None:
    """The lean server is a fair baseline only if it does the same work: the same estimates for the same requests,
    from Estimate (the QPS context row) and from StreamEstimates (the streams' context rows; arrival order aside)."""
    import grpc

    from bench.figures import _stream_stub
    from bench.payloads import estimate_request, fresh_specialty, stream_request

    stack = Stack(tmp_path, lambda step: None)
    try:
        server, lean = await stack.server("main"), await stack.lean_estimate()
        one, many = estimate_request("08"), stream_request(12, [fresh_specialty() for _ in range(3)])
        answers = []
        for port, metadata in ((server.port, stack.metadata), (lean.port, ())):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                rpc = _estimate_rpc(channel)
                single = (await rpc(one, metadata=metadata, timeout=10)).estimates[0]
                streamed = {reply.estimate.provider_id: reply.estimate
                            async for reply in _stream_stub(channel)(many, metadata=metadata, timeout=10)}
                answers.append((single, streamed))
    finally:
        stack.close()
    (ours, ours_streamed), baseline = answers
    assert ours.status.code == 0 and ours.member_pays.units > 0
    assert len(ours_streamed) == 12 and all(e.status.code == 0 and e.member_pays.units > 0
                                            for e in ours_streamed.values())
    for estimate in (ours, *ours_streamed.values()):
        estimate.benefit_from_cache = False  # the only field the lean server cannot know
    assert baseline == (ours, ours_streamed)


async def test_the_lean_eligibility_server_answering_the_summary_gives_the_products_answer(tmp_path: Path) -> None:
    """The eligibility context row is fair only if its lean server owes what the product owes: the same status and
    summary for the same inquiry, the summary stored with the response and sealed (no member data in plain text)."""
    import secrets

    import asyncpg  # type: ignore[import-untyped]
    import grpc
    from costestimator.v1 import eligibility_service_pb2 as elpb

    from bench.figures import pg_url
    from bench.payloads import inquiry
    from server.store import migrate
    from tests.conftest import unavailable

    try:
        admin = await asyncpg.connect(pg_url(driver="postgresql"), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        unavailable("postgres", f"PostgreSQL unreachable ({type(exc).__name__})")
    name = f"costest_bench_test_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    stack = Stack(tmp_path, lambda step: None)
    try:
        await migrate(pg_url(name))
        server = await stack.server("eligibility", database_url=pg_url(name), env={"COSTEST_MIGRATE_ON_START": "false"})
        lean = await stack.lean_eligibility(pg_url(name, driver="postgresql"), product_answer=True)
        answers = []
        for port, metadata in ((server.port, stack.metadata), (lean.port, ())):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                rpc = channel.unary_unary("/costestimator.v1.EligibilityService/CheckEligibility",
                                          request_serializer=elpb.CheckEligibilityRequest.SerializeToString,
                                          response_deserializer=elpb.CheckEligibilityResponse.FromString)
                reply = await rpc(elpb.CheckEligibilityRequest(inquiry=inquiry(7)), metadata=metadata, timeout=10)
                answers.append((reply.check.id, reply.check.status, reply.check.summary))
        conn = await asyncpg.connect(pg_url(name, driver="postgresql"))
        try:
            stored = await conn.fetchval("SELECT normalized_summary::text FROM eligibility_responses "
                                         "WHERE request_id = $1", answers[1][0])
        finally:
            await conn.close()
    finally:
        stack.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    (_, ours_status, ours_summary), (_, lean_status, lean_summary) = answers
    assert ours_status == elpb.ELIGIBILITY_STATUS_VERIFIED and ours_summary.plan_name
    assert (lean_status, lean_summary) == (ours_status, ours_summary)
    assert stored and ours_summary.plan_name not in stored  # sealed, not the summary in plain text


async def test_the_lean_estimate_server_keeping_benefit_answers_answers_warm_like_the_product(tmp_path: Path) -> None:
    """The warm context row's baseline: a repeated request is answered from its kept benefit answer, and the answer
    is the product's warm answer (benefit_from_cache included)."""
    import grpc

    from bench.payloads import estimate_request

    stack = Stack(tmp_path, lambda step: None)
    try:
        server, lean = await stack.server("main"), await stack.lean_estimate(benefit_memo=True)
        request = estimate_request("08")
        answers = []
        for port, metadata in ((server.port, stack.metadata), (lean.port, ())):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                rpc = _estimate_rpc(channel)
                first = (await rpc(request, metadata=metadata, timeout=10)).estimates[0]
                again = (await rpc(request, metadata=metadata, timeout=10)).estimates[0]
                answers.append((first, again))
    finally:
        stack.close()
    (ours_first, ours_again), (lean_first, lean_again) = answers
    assert not ours_first.benefit_from_cache and ours_again.benefit_from_cache
    assert ours_again.status.code == 0 and ours_again.member_pays.units > 0
    assert (lean_first, lean_again) == (ours_first, ours_again)
