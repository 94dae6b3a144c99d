"""Retries, Retry-After, deadlines and circuit breakers over real sockets."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from prometheus_client import CollectorRegistry

from server.clients import (
    CircuitOpen,
    Deadline,
    MemberNotFound,
    PayerClients,
    UpstreamDeadlineExceeded,
    UpstreamRejected,
    UpstreamUnavailable,
)
from server.clients.resilience import parse_retry_after
from server.sandbox.faults import Fault
from server.sandbox.payer import RunningSandbox
from tests.clients.payer_client_helpers import BENEFITS, MakeClients, benefit_request, payer_config


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_500_then_200_is_retried(clients: PayerClients, sandbox: RunningSandbox, registry: CollectorRegistry) -> None:
    sandbox.faults.fail_next(BENEFITS, 500)
    answer = await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert answer.serviceInfo
    assert sandbox.calls["benefits"] == 2
    attempts = "costestimator_upstream_attempts_total"
    assert sample(registry, attempts, upstream="benefits", outcome="retryable_status") == 1
    assert sample(registry, attempts, upstream="benefits", outcome="success") == 1
    assert sample(registry, "costestimator_upstream_latency_seconds_count", upstream="benefits") == 2


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
async def test_transient_statuses_are_retried(clients: PayerClients, sandbox: RunningSandbox, status: int) -> None:
    sandbox.faults.fail_next(BENEFITS, status)
    await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert sandbox.calls["benefits"] == 2


async def test_connection_reset_is_retried(clients: PayerClients, sandbox: RunningSandbox) -> None:
    sandbox.faults.reset_next(BENEFITS)
    await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert sandbox.calls["benefits"] == 2


async def test_retries_exhausted_is_unavailable(clients: PayerClients, sandbox: RunningSandbox) -> None:
    sandbox.faults.fail_next(BENEFITS, 503, count=5)
    with pytest.raises(UpstreamUnavailable) as err:
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert "after 3 attempts" in str(err.value)
    assert sandbox.calls["benefits"] == 3


async def test_retry_after_is_honoured(clients: PayerClients, sandbox: RunningSandbox) -> None:
    sandbox.faults.fail_next(BENEFITS, 503, retry_after="1")
    started = time.monotonic()
    await clients.benefits.get_benefits(benefit_request(), timeout=3)
    assert time.monotonic() - started >= 0.95
    assert sandbox.calls["benefits"] == 2


async def test_retry_after_past_the_deadline_stops_at_once(clients: PayerClients, sandbox: RunningSandbox) -> None:
    """The upstream said when to come back, past the caller's deadline: UNAVAILABLE with that time at once (the
    caller's RetryInfo), not DEADLINE_EXCEEDED: the deadline has not passed, the upstream turned us away."""
    sandbox.faults.fail_next(BENEFITS, 503, retry_after="30")
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as err:
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert time.monotonic() - started < 0.5
    assert not isinstance(err.value, UpstreamDeadlineExceeded) and err.value.retry_after == 30
    assert sandbox.calls["benefits"] == 1


async def test_retry_after_past_our_own_budget_without_caller_deadline_is_unavailable(
    make_clients: MakeClients, sandbox: RunningSandbox
) -> None:
    clients = await make_clients(benefits={"total_timeout": 2.0})
    sandbox.faults.fail_next(BENEFITS, 503, retry_after="30")
    with pytest.raises(UpstreamUnavailable, match="asks to retry in 30s") as err:
        await clients.benefits.get_benefits(benefit_request(), timeout=None)
    assert err.value.retry_after == 30
    assert sandbox.calls["benefits"] == 1


def test_parse_retry_after() -> None:
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= (parse_retry_after(future) or 0) <= 30.5
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past) == 0.0


def test_deadline() -> None:
    assert Deadline.after(None).remaining() is None and not Deadline.after(None).expired
    d = Deadline.after(1.0)
    assert 0.9 < (d.remaining() or 0) <= 1.0
    assert Deadline.after(-1).expired and Deadline.after(-1).remaining() == 0.0
    assert d.capped(0.1).at is not None and (d.capped(0.1).remaining() or 0) <= 0.1
    assert Deadline.after(None).capped(5).remaining() is not None


async def test_deadline_shorter_than_latency(clients: PayerClients, sandbox: RunningSandbox) -> None:
    await clients.tokens.get()  # the token is not what this test times
    sandbox.faults.set_latency(1.0, BENEFITS)
    started = time.monotonic()
    with pytest.raises(UpstreamDeadlineExceeded) as err:
        await clients.benefits.get_benefits(benefit_request(), timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 0.6
    assert err.value.upstream == "benefits"
    await asyncio.sleep(0.3)  # past the deadline: no new attempt may show up
    assert sandbox.faults.seen[BENEFITS] == 1
    assert sandbox.faults.cancelled[BENEFITS] == 1  # the outstanding request was abandoned
    assert sandbox.faults.in_flight[BENEFITS] == 0


async def test_slow_attempt_times_out_and_is_retried(make_clients: MakeClients, sandbox: RunningSandbox) -> None:
    clients = await make_clients(benefits={"timeout": 0.2})
    sandbox.faults.script(BENEFITS, Fault(status=None, delay=1.0))
    await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert sandbox.faults.seen[BENEFITS] == 2
    await asyncio.sleep(0.05)
    assert sandbox.faults.cancelled[BENEFITS] == 1


async def test_no_time_left_means_no_attempt(clients: PayerClients, sandbox: RunningSandbox) -> None:
    await clients.tokens.get()
    with pytest.raises(UpstreamDeadlineExceeded):
        await clients.benefits.get_benefits(benefit_request(), timeout=0.0)
    assert sandbox.calls["benefits"] == 0


async def test_connection_refused_is_unavailable(make_clients: MakeClients, sandbox: RunningSandbox) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    clients = await make_clients(benefits={"base_url": dead})
    with pytest.raises(UpstreamUnavailable, match="connection error"):
        await clients.benefits.get_benefits(benefit_request(), timeout=2)


async def test_a_connect_timeout_is_the_upstreams_failure_even_under_a_short_deadline(
    make_clients: MakeClients, registry: CollectorRegistry
) -> None:
    """A host that never completes the TCP handshake: aiohttp's own connect timeout (a TimeoutError too) is a
    connection error, retried and counted against the upstream, never taken for the caller's deadline, which
    still had seconds left."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)  # never accepted: once its queue is full, further handshakes go unanswered
        url = f"http://127.0.0.1:{full.getsockname()[1]}"
        fillers = []
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(full.getsockname())
            fillers.append(filler)
        try:
            clients = await make_clients(benefits={"base_url": url, "connect_timeout": 0.2, "timeout": 5.0,
                                                   "attempts": 2})
            await clients.tokens.get()
            started = time.monotonic()
            with pytest.raises(UpstreamUnavailable, match="connection error") as err:
                await clients.benefits.get_benefits(benefit_request(), timeout=3)  # shorter than one attempt's 5 s
        finally:
            for filler in fillers:
                filler.close()
    assert not isinstance(err.value, UpstreamDeadlineExceeded)
    assert time.monotonic() - started < 2.5  # two connect timeouts and a backoff, not the deadline
    attempts = "costestimator_upstream_attempts_total"
    assert sample(registry, attempts, upstream="benefits", outcome="connection_error") == 2


# ---- circuit breaker -------------------------------------------------------------------------------

# Opens when ≥ 50 % of ≥ 3 requests in the window failed (one outcome per request).
BREAKER = {"attempts": 1, "breaker_min_requests": 3, "breaker_failure_rate": 0.5, "breaker_ttl": 0.4}


async def test_breaker_opens_fails_fast_half_opens_and_closes(
    make_clients: MakeClients, sandbox: RunningSandbox, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server.clients")
    clients = await make_clients(benefits=BREAKER)
    gauge = "costestimator_upstream_circuit_state"
    assert await clients.resilience.state("benefits") == "closed"
    assert sample(registry, gauge, upstream="benefits") == 0

    sandbox.faults.fail_next(BENEFITS, 500, count=3)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable, match="HTTP 500"):
            await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert await clients.resilience.state("benefits") == "open"
    assert sample(registry, gauge, upstream="benefits") == 2

    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="circuit breaker open") as err:
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert time.monotonic() - started < 0.1
    assert err.value.upstream == "benefits"
    assert sandbox.calls["benefits"] == 3  # not contacted
    assert sample(registry, "costestimator_upstream_attempts_total", upstream="benefits", outcome="short_circuited") == 1
    # Other upstreams are unaffected.
    await clients.accumulators.get_accumulators("5~186103331+10+7+20260101+793854+8A+829", "3~", timeout=2)

    await asyncio.sleep(0.45)
    assert await clients.resilience.state("benefits") == "half-open"  # would probe
    await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert await clients.resilience.state("benefits") == "closed"
    assert sample(registry, gauge, upstream="benefits") == 0
    assert sandbox.calls["benefits"] == 4

    changes = [r.getMessage() for r in caplog.records if "circuit breaker for upstream benefits is now" in r.getMessage()]
    assert changes == [
        "circuit breaker for upstream benefits is now open",
        "circuit breaker for upstream benefits is now half-open",
        "circuit breaker for upstream benefits is now closed",
    ]
    states = await clients.circuit_states()
    assert states == {"benefits": "closed", "accumulators": "closed", "payer-oauth": "closed"}


async def test_failed_probe_reopens(make_clients: MakeClients, sandbox: RunningSandbox, registry: CollectorRegistry) -> None:
    clients = await make_clients(benefits=BREAKER)
    sandbox.faults.fail_next(BENEFITS, 503, count=4)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await clients.benefits.get_benefits(benefit_request(), timeout=2)
    await asyncio.sleep(0.45)
    with pytest.raises(UpstreamUnavailable, match="HTTP 503"):
        await clients.benefits.get_benefits(benefit_request(), timeout=2)  # the probe fails
    assert await clients.resilience.state("benefits") == "open"
    assert sample(registry, "costestimator_upstream_circuit_state", upstream="benefits") == 2


async def test_half_open_admits_one_probe(make_clients: MakeClients, sandbox: RunningSandbox) -> None:
    clients = await make_clients(benefits=BREAKER)
    await clients.tokens.get()
    sandbox.faults.fail_next(BENEFITS, 500, count=3)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await clients.benefits.get_benefits(benefit_request(), timeout=2)
    await asyncio.sleep(0.45)
    sandbox.faults.set_latency(0.2, BENEFITS)
    results = await asyncio.gather(
        *[clients.benefits.get_benefits(benefit_request(), timeout=2) for _ in range(5)], return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, CircuitOpen) and r.circuit == "benefits"]
    assert (len(ok), len(refused)) == (1, 4), results
    assert sandbox.calls["benefits"] == 4
    assert await clients.resilience.state("benefits") == "closed"


async def test_4xx_neither_counts_nor_resets_the_breaker(make_clients: MakeClients, sandbox: RunningSandbox) -> None:
    """A 4xx is neutral (not even volume): 500, 500, 400, member-not-found leaves 2 counted requests (< 3);
    one more 500 makes 3 of 3 failed and opens it."""
    clients = await make_clients(benefits=BREAKER)
    sandbox.faults.script(BENEFITS, Fault(status=500), Fault(status=500), Fault(status=400))
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await clients.benefits.get_benefits(benefit_request(), timeout=2)
    with pytest.raises(UpstreamRejected):
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    with pytest.raises(MemberNotFound):
        await clients.benefits.get_benefits(benefit_request("5~186103339+10+7+20250101+793869+8A+899"), timeout=2)
    assert await clients.resilience.state("benefits") == "closed"
    sandbox.faults.fail_next(BENEFITS, 500)
    with pytest.raises(UpstreamUnavailable):
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert await clients.resilience.state("benefits") == "open"


async def test_deadline_cut_attempts_do_not_open_the_breaker(make_clients: MakeClients, sandbox: RunningSandbox) -> None:
    clients = await make_clients(benefits=BREAKER)
    await clients.tokens.get()
    sandbox.faults.set_latency(0.5, BENEFITS)
    for _ in range(4):
        with pytest.raises(UpstreamDeadlineExceeded):
            await clients.benefits.get_benefits(benefit_request(), timeout=0.05)
    assert await clients.resilience.state("benefits") == "closed"


async def test_an_attempt_given_its_whole_timeout_is_the_upstreams_failure_though_the_deadline_ends_there(
    make_clients: MakeClients, sandbox: RunningSandbox
) -> None:
    """The clearinghouse worker's step ends with the attempt's timeout (70 s both): a hang that uses all of it is
    the upstream's failure and counts toward its breaker, unlike an attempt a short deadline cut (test above)."""
    clients = await make_clients(benefits={**BREAKER, "timeout": 0.3})
    await clients.tokens.get()
    sandbox.faults.set_latency(2, BENEFITS)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable, match="no answer within"):
            await clients.benefits.get_benefits(benefit_request(), timeout=0.3)
    assert await clients.resilience.state("benefits") == "open"


async def test_a_body_nested_too_deeply_is_malformed_not_a_crash(clients: PayerClients, sandbox: RunningSandbox) -> None:
    """6 kB of brackets go deeper than the JSON parser: a malformed answer (UNAVAILABLE), never INTERNAL."""
    sandbox.faults.script(BENEFITS, Fault(status=200, body=b"{\"extra\": " + b"[" * 3000 + b"]" * 3000 + b"}"))
    with pytest.raises(UpstreamUnavailable, match="malformed body"):
        await clients.benefits.get_benefits(benefit_request(), timeout=2)


async def test_breaker_counts_one_outcome_per_request(make_clients: MakeClients, sandbox: RunningSandbox) -> None:
    """Five failed attempts of ONE call are one failed request: a 3-request minimum is not reached (the old
    per-attempt breaker opened after the third attempt and refused the fourth)."""
    clients = await make_clients(benefits={"attempts": 5, "breaker_min_requests": 3, "breaker_ttl": 30})
    sandbox.faults.fail_next(BENEFITS, 502, count=5)
    with pytest.raises(UpstreamUnavailable, match="after 5 attempts"):
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert sandbox.calls["benefits"] == 5
    assert await clients.resilience.state("benefits") == "closed"
    assert clients.resilience.breakers.find("benefits") is not None
    assert clients.resilience.breakers.find("benefits").counts() == (1, 1)  # type: ignore[union-attr]


async def test_breaker_opens_on_a_rate_not_a_streak(make_clients: MakeClients, sandbox: RunningSandbox) -> None:
    """min 4 requests, 50 %: fail, ok, fail → 3 requests (below the minimum); ok → 2 of 4 = 50 % but the
    last outcome was a success, so nothing opens; fail → 3 of 5 = 60 % opens."""
    clients = await make_clients(benefits={"attempts": 1, "breaker_min_requests": 4, "breaker_ttl": 30})
    for fail in (True, False, True, False):
        if fail:
            sandbox.faults.fail_next(BENEFITS, 503)
            with pytest.raises(UpstreamUnavailable):
                await clients.benefits.get_benefits(benefit_request(), timeout=2)
        else:
            await clients.benefits.get_benefits(benefit_request(), timeout=2)
        assert await clients.resilience.state("benefits") == "closed"
    sandbox.faults.fail_next(BENEFITS, 503)
    with pytest.raises(UpstreamUnavailable):
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert await clients.resilience.state("benefits") == "open"
    with pytest.raises(CircuitOpen) as err:
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert err.value.circuit == "benefits" and 29 < (err.value.retry_after or 0) <= 30


@pytest.mark.redis
async def test_breaker_state_shared_through_redis(
    sandbox: RunningSandbox, redis_url: str, registry: CollectorRegistry
) -> None:
    import uuid

    from redis import asyncio as aioredis

    name = f"benefits-test-{uuid.uuid4().hex[:8]}"
    cfg = payer_config(sandbox, benefits={"name": name, **BREAKER, "breaker_ttl": 30}, redis_url=redis_url)
    first = PayerClients(cfg, registry=registry)
    second = PayerClients(cfg, registry=CollectorRegistry())  # another process, in effect
    await first.start()
    await second.start()
    try:
        sandbox.faults.fail_next(BENEFITS, 500, count=3)
        for _ in range(3):
            with pytest.raises(UpstreamUnavailable):
                await first.benefits.get_benefits(benefit_request(), timeout=2)
        assert await first.resilience.state(name) == "open"

        # The opening process publishes its decision in the background; another process adopts it within its
        # sync interval (1 s by default), so allow a little more than that, never "eventually".
        seen, until = "closed", time.monotonic() + 3.0
        while seen != "open" and time.monotonic() < until:
            seen = await second.resilience.state(name)
            if seen != "open":
                await asyncio.sleep(0.05)
        assert seen == "open"
        with pytest.raises(UpstreamUnavailable, match="circuit breaker open"):
            await second.benefits.get_benefits(benefit_request(), timeout=2)
        assert sandbox.calls["benefits"] == 3
    finally:
        await first.close()
        await second.close()
        r = aioredis.from_url(redis_url)
        await r.delete(f"costest:cb:{name}", f"costest:cb:{name}:probe")
        await r.aclose()


async def test_unreachable_breaker_store_fails_open(
    make_clients: MakeClients, sandbox: RunningSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    clients = await make_clients(redis_url=dead)
    answer = await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert answer.serviceInfo
    assert any("Redis) unreachable" in r.getMessage() for r in caplog.records)
    assert await clients.resilience.state("benefits") == "closed"
