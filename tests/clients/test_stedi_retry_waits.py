"""The clearinghouse's retry waits follow spec §3.3 "Our policy", measured over a real socket.

429 → waits 0 s, 0.5 s, 1 s, 2 s before attempts 2..5; 500/503/504 (and 408/502), connection errors and timeouts
→ 1 s, then 4 s before attempts 2..3. `Retry-After` wins; the caller's deadline cuts the schedule. The client is
built on the composition root's own config (`stedi_upstream_config`), so these tests cover the production wiring.
The gaps are the arrival times of the requests at the Stedi stand-in. They take about 11 s: the spec's waits are
real seconds and the product has no knob to shorten them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from prometheus_client import CollectorRegistry

from server.clients import Deadline, Resilience, UpstreamConfig, UpstreamDeadlineExceeded, UpstreamUnavailable
from server.clients.errors import ToldToWait
from server.clients.http import UpstreamSession
from server.clients.stedi import STEDI_RETRY_WAITS, HttpTry, StediClient
from server.compose.eligibility import stedi_upstream_config
from server.compose.shared import Resources
from server.sandbox.faults import Fault, FaultPlan
from server.sandbox.stedi import ELIGIBILITY_PATH
from server.settings import Settings
from tests.clients.conftest import STEDI_KEY

KEY = STEDI_KEY
HEALTHY = {
    "tradingPartnerServiceId": "SBX01",
    "provider": {"organizationName": "Riverbend Family Medicine", "npi": "1999999984"},
    "subscriber": {"memberId": "SBX100001", "firstName": "Alex", "lastName": "Rivera", "dateOfBirth": "19850412"},
    "encounter": {"serviceTypeCodes": ["30"]},
}
# A gap may exceed its wait by scheduling, the loopback round trip and a busy shared machine; never undercut it.
SLACK = 0.4
# The clock of the stand-in and of the test is the same monotonic clock; allow for float rounding only.
EPSILON = 0.005

MakeStedi = Callable[..., Awaitable[StediClient]]


class TimedPlan(FaultPlan):
    """The shared fault plan, also noting when each request reached the stand-in."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    async def apply(self, request: web.Request) -> web.StreamResponse | None:
        self.arrivals.append(time.monotonic())
        return await super().apply(request)

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.arrivals, self.arrivals[1:])]


@pytest.fixture
def plan() -> TimedPlan:
    return TimedPlan()


@pytest_asyncio.fixture
async def make_stedi(stedi_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[MakeStedi]:
    """`await make_stedi()`: a started client on the production config; `config=` to pass another one."""
    sessions: list[UpstreamSession] = []

    async def make(config: UpstreamConfig | None = None) -> StediClient:
        resilience = Resilience(registry=CollectorRegistry())
        resources = Resources(make_settings(), CollectorRegistry(), resilience)
        session = UpstreamSession(config or stedi_upstream_config(resources, stedi_url))
        await session.start()
        sessions.append(session)
        return StediClient(session, resilience, KEY)

    try:
        yield make
    finally:
        for s in sessions:
            await s.close()


def assert_gaps(gaps: list[float], waits: list[float]) -> None:
    assert len(gaps) == len(waits), gaps
    for n, (gap, wait) in enumerate(zip(gaps, waits), start=2):
        assert wait - EPSILON <= gap < wait + SLACK, f"before attempt {n}: waited {gap:.3f}s, policy {wait}s ({gaps})"


async def test_throttling_waits_0_05_1_2_seconds_over_five_attempts(make_stedi: MakeStedi, plan: TimedPlan) -> None:
    client = await make_stedi()
    plan.fail_next(ELIGIBILITY_PATH, 429, count=5)
    trail: list[HttpTry] = []
    with pytest.raises(UpstreamUnavailable, match=r"HTTP 429 \(after 5 attempts\)"):
        await client.check(HEALTHY, deadline=Deadline.after(30), trail=trail)
    assert [t.http_status for t in trail] == [429] * 5
    assert_gaps(plan.gaps(), [0.0, 0.5, 1.0, 2.0])


async def test_server_failures_and_connection_errors_wait_1_then_4_seconds(
    make_stedi: MakeStedi, plan: TimedPlan
) -> None:
    """One schedule for the whole class: a 503 after a connection error is its second failure (4 s, not 1 s)."""
    client = await make_stedi()
    plan.script(ELIGIBILITY_PATH, Fault(status=None, reset=True), Fault(status=503))
    trail: list[HttpTry] = []
    answer = await client.check(HEALTHY, deadline=Deadline.after(30), trail=trail)
    assert answer.http_status == 200
    assert [t.http_status for t in trail] == [None, 503, 200]
    assert_gaps(plan.gaps(), [1.0, 4.0])


async def test_a_throttled_try_does_not_advance_the_server_failure_schedule(
    make_stedi: MakeStedi, plan: TimedPlan
) -> None:
    client = await make_stedi()
    plan.script(ELIGIBILITY_PATH, Fault(status=429), Fault(status=500), Fault(status=429))
    answer = await client.check(HEALTHY, deadline=Deadline.after(30))
    assert answer.http_status == 200
    # first 429: 0 s; first 5xx: 1 s (not the 4 s of a third attempt); second 429: 0.5 s
    assert_gaps(plan.gaps(), [0.0, 1.0, 0.5])


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_every_retried_server_status_and_no_status_failure_has_the_1_4_schedule(status: int) -> None:
    config = UpstreamConfig("stedi", "http://127.0.0.1:9", retry_waits=STEDI_RETRY_WAITS)
    for failure in (status, None):
        rule = config.retry_waits_for(failure)
        assert rule is not None and rule.waits == (1.0, 4.0)
    rule = config.retry_waits_for(429)
    assert rule is not None and rule.waits == (0.0, 0.5, 1.0, 2.0, 4.0)


async def test_retry_after_wins_over_the_schedule(make_stedi: MakeStedi, plan: TimedPlan) -> None:
    """Longer than the schedule (429: 0 s → 1 s) and shorter (503: 1 s → 0 s)."""
    client = await make_stedi()
    plan.script(ELIGIBILITY_PATH, Fault(status=429, retry_after="1"), Fault(status=503, retry_after="0"))
    answer = await client.check(HEALTHY, deadline=Deadline.after(30))
    assert answer.http_status == 200
    first, second = plan.gaps()
    assert 1.0 - EPSILON <= first < 1.0 + SLACK
    assert second < SLACK


async def test_a_short_deadline_cuts_the_schedule_without_waiting_past_it(
    make_stedi: MakeStedi, plan: TimedPlan
) -> None:
    """Deadline 1.2 s: attempts at 0, 0 and 0.5 s; the next wait (1 s) would end past it → refused at once."""
    client = await make_stedi()
    plan.fail_next(ELIGIBILITY_PATH, 429, count=5)
    started = time.monotonic()
    deadline = Deadline.after(1.2)
    with pytest.raises(UpstreamDeadlineExceeded, match="would pass the deadline"):
        await client.check(HEALTHY, deadline=deadline)
    ended = time.monotonic()
    assert len(plan.arrivals) == 3
    assert_gaps(plan.gaps(), [0.0, 0.5])
    assert deadline.at is not None and ended < deadline.at
    assert ended - started < 0.5 + SLACK


async def test_a_retry_after_past_the_deadline_is_not_waited(make_stedi: MakeStedi, plan: TimedPlan) -> None:
    client = await make_stedi()
    plan.fail_next(ELIGIBILITY_PATH, 503, retry_after="5")
    started = time.monotonic()
    with pytest.raises(ToldToWait) as err:  # UNAVAILABLE with the time to wait; the worker comes back then
        await client.check(HEALTHY, deadline=Deadline.after(2))
    assert time.monotonic() - started < SLACK
    assert err.value.retry_after == 5 and len(plan.arrivals) == 1


async def test_without_a_schedule_the_generic_backoff_still_applies(
    make_stedi: MakeStedi, plan: TimedPlan, stedi_url: str
) -> None:
    """The schedule is the clearinghouse's: an upstream config without one (as every payer's) keeps the backoff."""
    values: dict[str, Any] = dict(timeout=2.0, total_timeout=5.0, attempts=5, backoff_multiplier=0.01,
                                  backoff_max=0.02, backoff_jitter=0.0)
    client = await make_stedi(UpstreamConfig("stedi", stedi_url, **values))
    plan.script(ELIGIBILITY_PATH, Fault(status=503), Fault(status=429))
    answer = await client.check(HEALTHY, deadline=Deadline.after(5))
    assert answer.http_status == 200
    assert all(gap < 0.25 for gap in plan.gaps()), plan.gaps()


def test_the_clearinghouse_breaker_can_open_under_these_waits(make_settings: Callable[..., Settings]) -> None:
    """A failing call lasts at least the sum of its waits (1 s + 4 s): the breaker's window must hold more such calls,
    at the upstream's concurrency, than its minimum of requests, or the circuit could never open (as in a 10 s
    window: at most 2 x 8 calls, fewer than 20)."""
    settings = make_settings()
    config = stedi_upstream_config(Resources(settings, CollectorRegistry(), Resilience(registry=CollectorRegistry())),
                                   "http://127.0.0.1:1")
    failing = config.retry_waits_for(503)
    assert failing is not None
    call_seconds = sum(failing.waits[:2])  # three attempts: two waits
    assert config.connect_limit * config.breaker_window / call_seconds >= 2 * config.breaker_min_requests
    assert config.breaker_window > settings.breaker_window_seconds  # the payers keep theirs
