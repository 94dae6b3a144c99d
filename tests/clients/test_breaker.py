"""The window breaker on its own: rate, minimum volume, window expiry, one half-open probe, Redis sharing."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from server.clients.breaker import Breaker, BreakerPolicy, SharedState
from server.clients.errors import CircuitOpen

POLICY = BreakerPolicy(failure_rate=0.5, min_requests=20, window=10.0, open_seconds=30.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(policy: BreakerPolicy = POLICY, clock: Clock | None = None, changes: list[str] | None = None) -> Breaker:
    return Breaker("up", policy, clock=clock or Clock(),
                   on_change=(lambda name, state: changes.append(state)) if changes is not None else None)


async def feed(b: Breaker, ok: int, failed: int) -> None:
    for _ in range(ok):
        b.record(await b.admit(), "success")
    for _ in range(failed):
        b.record(await b.admit(), "failure")


async def test_opens_at_the_rate_once_the_minimum_volume_is_reached() -> None:
    b = breaker()
    await feed(b, ok=10, failed=9)  # 19 requests: below the minimum volume
    assert b.state == "closed"
    await feed(b, ok=1, failed=0)  # 20 requests, 45 % failed
    assert b.state == "closed"
    await feed(b, ok=0, failed=1)  # 21 requests, 10 of 21 = 47.6 %
    assert b.state == "closed"
    await feed(b, ok=0, failed=1)  # 11 of 22 = 50 %
    assert b.state == "open"
    with pytest.raises(CircuitOpen) as err:
        await b.admit()
    assert err.value.circuit == "up" and err.value.retry_after == pytest.approx(30.0)


async def test_a_streak_below_the_minimum_volume_does_not_open() -> None:
    b = breaker()
    await feed(b, ok=0, failed=19)  # 19 failures in a row: the old threshold of 5 opened after 5
    assert b.state == "closed"


async def test_neutral_and_answered_outcomes_are_not_volume() -> None:
    b = breaker(BreakerPolicy(min_requests=4))
    for outcome in ("neutral", "answered") * 10:
        b.record(await b.admit(), outcome)  # type: ignore[arg-type]
    assert b.counts() == (0, 0)
    await feed(b, ok=0, failed=4)
    assert b.state == "open"


async def test_old_outcomes_leave_the_window() -> None:
    clock = Clock()
    b = breaker(clock=clock)
    await feed(b, ok=0, failed=15)
    clock.now += 10.5  # the failures are older than the window
    assert b.counts() == (0, 0)
    await feed(b, ok=0, failed=15)
    assert b.state == "closed"  # 15 < 20 within the window
    clock.now += 4.0
    await feed(b, ok=0, failed=5)  # 20 failures within 10 s
    assert b.state == "open"


async def test_half_open_admits_one_probe_and_closes_on_success() -> None:
    clock = Clock()
    changes: list[str] = []
    b = breaker(BreakerPolicy(min_requests=2, open_seconds=5), clock, changes)
    await feed(b, ok=0, failed=2)
    assert b.state == "open"
    clock.now += 5.0
    assert b.state == "half-open"
    probe = await b.admit()
    assert probe.probe
    for _ in range(3):
        with pytest.raises(CircuitOpen):
            await b.admit()
    b.record(probe, "success")
    assert b.state == "closed" and b.counts() == (0, 0)
    assert changes == ["open", "half-open", "closed"]


async def test_failed_probe_reopens_and_neutral_probe_lets_another_try() -> None:
    clock = Clock()
    b = breaker(BreakerPolicy(min_requests=2, open_seconds=5), clock)
    await feed(b, ok=0, failed=2)
    clock.now += 5.0
    probe = await b.admit()
    b.record(probe, "neutral")  # cancelled by its caller: no verdict, the next request probes
    probe = await b.admit()
    assert probe.probe
    b.record(probe, "failure")
    assert b.state == "open" and b.retry_after() == pytest.approx(5.0)
    clock.now += 5.0
    probe = await b.admit()
    b.record(probe, "answered")  # a 4xx proves the upstream answers
    assert b.state == "closed"


def test_policy_is_validated() -> None:
    for bad in (dict(failure_rate=0), dict(failure_rate=1.5), dict(min_requests=0), dict(window=0),
                dict(open_seconds=0)):
        with pytest.raises(ValueError):
            BreakerPolicy(**bad)  # type: ignore[arg-type]


@pytest.mark.redis
async def test_open_state_and_probe_are_shared_through_redis(redis_url: str) -> None:
    """Two breakers with the same name and the same Redis stand for two processes."""
    name = f"shared-{uuid.uuid4().hex[:8]}"
    policy = BreakerPolicy(min_requests=2, open_seconds=0.5)
    one_store = SharedState(redis_url, sync_seconds=0.05)
    two_store = SharedState(redis_url, sync_seconds=0.05)
    one = Breaker(name, policy, shared=one_store)
    two = Breaker(name, policy, shared=two_store)
    try:
        await feed(two, ok=1, failed=0)  # the second process has read the (closed) shared state
        await feed(one, ok=0, failed=2)
        assert one.state == "open"
        await asyncio.sleep(0.1)  # the open decision is written in the background
        # Two's cached state is stale: this request still goes through and starts a background read (the
        # documented trade-off: another process notices an open circuit up to one sync interval late) ...
        two.record(await two.admit(), "neutral")
        await asyncio.sleep(0.05)
        # ... after which two refuses without contacting the upstream.
        with pytest.raises(CircuitOpen) as err:
            await two.admit()
        assert err.value.retry_after is not None and 0 < err.value.retry_after <= 0.5
        assert two.state == "open"

        await asyncio.sleep(0.5)  # open time over: exactly one probe across both processes
        probe = await one.admit()
        assert probe.probe
        with pytest.raises(CircuitOpen):
            await two.admit()
        one.record(probe, "success")
        await asyncio.sleep(0.1)
        await two.refresh()
        assert two.state == "closed"
        await feed(two, ok=1, failed=0)
    finally:
        from redis import asyncio as aioredis

        r = aioredis.from_url(redis_url)
        await r.delete(f"costest:cb:{name}", f"costest:cb:{name}:probe")
        await r.aclose()
        await one_store.close()
        await two_store.close()


async def test_without_a_running_loop_nothing_is_shared_and_nothing_breaks() -> None:
    b = breaker(BreakerPolicy(min_requests=1))
    b.record(await b.admit(), "failure")
    assert b.state == "open"


def test_the_removed_threshold_setting_stops_the_start() -> None:
    from server.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="COSTEST_BREAKER_MIN_REQUESTS"):
        load_settings(breaker_threshold=5)
    settings = load_settings(breaker_failure_rate=0.25, breaker_min_requests=7, breaker_window_seconds=3)
    assert (settings.breaker_failure_rate, settings.breaker_min_requests) == (0.25, 7)
