"""Retries, deadlines, connection slots and circuit breakers shared by every upstream client.

One call = one request = up to `attempts` attempts, bounded by the time left. Rules:

* The caller's deadline is absolute (`Deadline`). No attempt starts and no wait ends after it; every attempt
  runs under `asyncio.timeout(min(per-attempt timeout, time left))`. Running out → `UpstreamDeadlineExceeded`.
* Lean path: the first attempt runs directly; tenacity's retry loop is only built after a retryable failure
  (the first, failed attempt is replayed into it as attempt 1, so waits, `Retry-After` and stops are tenacity's).
* Retried: `TransientUpstreamError` (HTTP 408/429/500/502/503/504 raised by clients), timeouts of an
  attempt and connection errors. Never retried: member not found, other 4xx, TLS failures,
  malformed bodies, an open breaker. Waits: exponential backoff with jitter, or, for the failures an
  upstream's `retry_waits` covers (the clearinghouse's policy), that fixed schedule, counted per kind of
  failure within the call. `Retry-After` (seconds or HTTP date) replaces either. Every wait is bounded as above.
* Connection slots: each attempt first takes one of `connect_limit` slots of its upstream (the size of the
  aiohttp pool), waiting at most until the deadline. A slot that never comes is our own capacity, not the
  upstream's failure: `UpstreamDeadlineExceeded` (caller's deadline) or `LocalPoolExhausted` (our budget),
  logged as such and never counted by a breaker. aiohttp's `sock_connect` timeout (not `connect`, which
  includes the pool wait) bounds the TCP connect.
* Breakers (`breaker.py`) count ONE outcome per request, after its retries: failure = retries exhausted on
  5xx/408/429, timeouts, connection/TLS errors, malformed bodies (also when the deadline then cut the
  request short after such failures); success = a 2xx; neutral = 4xx answers (they prove the upstream answers,
  which closes a half-open circuit), the caller's deadline or cancellation without any upstream failure, a
  local pool wait, our own bugs. The circuit opens on a failure rate over a window (`BreakerPolicy`).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from .breaker import Breaker, BreakerPolicy, BreakerRegistry, CircuitState, Outcome, SharedState
from .errors import (
    CircuitOpen,
    LocalPoolExhausted,
    ToldToWait,
    UpstreamDeadlineExceeded,
    UpstreamError,
    UpstreamUnavailable,
)
from .http import RetryWaits, UpstreamConfig

__all__ = [
    "RETRYABLE_STATUSES",
    "CircuitState",
    "Deadline",
    "Resilience",
    "TransientUpstreamError",
    "UpstreamMetrics",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Never start an attempt with less time than this left: it could not finish anyway.
MIN_ATTEMPT_SECONDS = 0.01
# An attempt the deadline left at least this share of its timeout counts, when unanswered, as the upstream's timeout.
FULL_ATTEMPT_SHARE = 0.9
_STATE_VALUE: dict[str, int] = {"closed": 0, "half-open": 1, "open": 2}


@dataclass(frozen=True)
class Deadline:
    """An absolute point on the monotonic clock, or None for "no deadline".

    Built once per gRPC call from `context.time_remaining()` so that every nested wait and attempt
    subtracts from the same budget.
    """

    at: float | None

    @classmethod
    def after(cls, timeout: float | None) -> Deadline:
        return cls(None if timeout is None else time.monotonic() + max(0.0, timeout))

    def remaining(self) -> float | None:
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def capped(self, seconds: float) -> Deadline:
        """The earlier of this deadline and `seconds` from now."""
        cap = time.monotonic() + seconds
        return Deadline(cap if self.at is None else min(self.at, cap))


class TransientUpstreamError(Exception):
    """A failure worth another attempt (raised by clients for 408/429/5xx; made here for timeouts)."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None if absent/invalid."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


class UpstreamMetrics:
    """Prometheus metrics of upstream calls, created once per registry (tests pass a fresh one)."""

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, UpstreamMetrics] = weakref.WeakKeyDictionary()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.circuit_state = Gauge(
            "costestimator_upstream_circuit_state",
            "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open",
            ["upstream"],
            registry=registry,
        )
        self.attempts = Counter(
            "costestimator_upstream_attempts",
            "Upstream attempts by outcome (success, retryable_status, timeout, connection_error, "
            "tls_error, malformed, rejected, deadline, pool_exhausted, cancelled, short_circuited)",
            ["upstream", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "costestimator_upstream_latency_seconds",
            "Latency of one upstream attempt",
            ["upstream"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None = None) -> UpstreamMetrics:
        reg = REGISTRY if registry is None else registry
        metrics = cls._by_registry.get(reg)
        if metrics is None:
            metrics = cls(reg)
            cls._by_registry[reg] = metrics
        return metrics


class _Upstream:
    """Per-upstream hot-path state, built once: its breaker, its connection slots, its metric children."""

    __slots__ = ("_metrics", "attempts", "breaker", "config", "latency", "slots")

    def __init__(self, config: UpstreamConfig, breaker: Breaker, metrics: UpstreamMetrics) -> None:
        self.config = config
        self.breaker = breaker
        self.slots = asyncio.Semaphore(config.connect_limit)
        self.latency = metrics.latency.labels(upstream=config.name)
        self.attempts: dict[str, Any] = {}
        self._metrics = metrics

    def count(self, outcome: str) -> None:
        child = self.attempts.get(outcome)
        if child is None:
            child = self.attempts[outcome] = self._metrics.attempts.labels(upstream=self.config.name, outcome=outcome)
        child.inc()


class _Flags:
    """What one request's attempts found out (decides the breaker outcome)."""

    __slots__ = ("upstream_failed",)

    def __init__(self) -> None:
        self.upstream_failed = False


def breaker_policy(config: UpstreamConfig) -> BreakerPolicy:
    return BreakerPolicy(
        failure_rate=config.breaker_failure_rate,
        min_requests=config.breaker_min_requests,
        window=config.breaker_window,
        open_seconds=config.breaker_ttl,
    )


class Resilience:
    """Retry + deadline + connection slots + circuit breaker policy for all upstreams of the process.

    `start()` once, `close()` at shutdown. `call(config, attempt, deadline)` runs `attempt()` (one HTTP
    exchange) under the policy. With `redis_url`, breaker open states are shared between processes.
    """

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        registry: CollectorRegistry | None = None,
        sync_seconds: float = 1.0,
    ) -> None:
        self.metrics = UpstreamMetrics.for_registry(registry)
        self._redis_url = redis_url
        self._shared = SharedState(redis_url, sync_seconds=sync_seconds) if redis_url else None
        self.breakers = BreakerRegistry(shared=self._shared, on_change=self._on_change)
        self._configs: dict[str, UpstreamConfig] = {}
        self._upstreams: dict[str, _Upstream] = {}

    @property
    def shared(self) -> bool:
        """True when breaker state is shared through Redis."""
        return self._redis_url is not None

    async def start(self) -> None:
        """Nothing to connect eagerly: the breaker store is read lazily (and fails open)."""

    async def close(self) -> None:
        if self._shared is not None:
            await self._shared.close()

    def register(self, config: UpstreamConfig) -> None:
        """Remember an upstream (its breaker, slots and gauge); a new upstream's gauge starts at closed."""
        up = self._upstreams.get(config.name)
        if up is not None and up.config is config:
            return
        if up is None:
            self.metrics.circuit_state.labels(upstream=config.name).set(0)
        self._configs[config.name] = config
        breaker = self.breakers.get(config.name, breaker_policy(config))
        if up is not None and up.config.connect_limit == config.connect_limit:
            up.config = config
            return
        self._upstreams[config.name] = _Upstream(config, breaker, self.metrics)

    def breaker(self, circuit: str, config: UpstreamConfig) -> Breaker:
        """A breaker of its own (e.g. one payer behind the clearinghouse) with `config`'s policy."""
        return self.breakers.get(circuit, breaker_policy(config), upstream=config.name)

    def forget_breaker(self, circuit: str) -> None:
        """Drop a breaker made by `breaker` and its state gauge (a bounded set of circuits making room)."""
        self.breakers.forget(circuit)
        try:
            self.metrics.circuit_state.remove(circuit)
        except KeyError:
            pass  # never changed state: no gauge child

    # ---- breaker state -----------------------------------------------------------------------

    def _on_change(self, name: str, state: CircuitState) -> None:
        self.metrics.circuit_state.labels(upstream=name).set(_STATE_VALUE[state])
        log.log(
            logging.WARNING if state == "open" else logging.INFO,
            "circuit breaker for upstream %s is now %s",
            name,
            state,
        )

    async def state(self, name: str) -> CircuitState:
        """Breaker state for health reporting (reads the shared store when configured). An open circuit whose
        time is up reports "half-open": the next call will probe."""
        cfg = self._configs.get(name)
        breaker = self.breakers.find(name)
        if breaker is None:
            if cfg is None:
                return "closed"
            breaker = self.breakers.get(name, breaker_policy(cfg))
        await breaker.refresh()
        return breaker.state

    async def states(self) -> dict[str, CircuitState]:
        return {name: await self.state(name) for name in self._configs}

    # ---- the call ---------------------------------------------------------------------------

    async def call(
        self,
        config: UpstreamConfig,
        attempt: Callable[[], Awaitable[T]],
        deadline: Deadline,
    ) -> T:
        """Run `attempt` with retries, breaker and deadline; raise only `UpstreamError`s (or cancellation)."""
        up = self._upstreams.get(config.name)
        if up is None or up.config is not config:
            self.register(config)
            up = self._upstreams[config.name]
        try:
            ticket = await up.breaker.admit()
        except CircuitOpen:
            up.count("short_circuited")
            raise
        flags = _Flags()
        outcome: Outcome = "neutral"
        try:
            result = await self._request(up, attempt, deadline, flags)
            outcome = "success"
            return result
        except BaseException as exc:
            outcome = _judge(exc, flags)
            raise
        finally:
            up.breaker.record(ticket, outcome)

    async def _request(self, up: _Upstream, attempt: Callable[[], Awaitable[T]], deadline: Deadline, flags: _Flags) -> T:
        config = up.config
        name = config.name
        caller_deadline = deadline.at
        effective = deadline.capped(config.total_timeout)
        # Whose clock runs out first decides the error: the caller's → DEADLINE_EXCEEDED,
        # our own total_timeout → UNAVAILABLE.
        caller_bound = caller_deadline is not None and effective.at == caller_deadline
        if (effective.remaining() or 0.0) <= MIN_ATTEMPT_SECONDS:
            raise self._out_of_time(name, caller_bound, "no time left for an attempt")
        # The lean path: one attempt, no retry machinery.
        try:
            return await self._attempt(up, attempt, effective, caller_bound, 1, flags)
        except TransientUpstreamError as exc:
            first = exc
        if config.attempts == 1:
            raise UpstreamUnavailable(name, f"{first.reason} (after 1 attempts)") from first
        return await self._retry(up, attempt, effective, caller_bound, flags, first)

    async def _retry(
        self,
        up: _Upstream,
        attempt: Callable[[], Awaitable[T]],
        effective: Deadline,
        caller_bound: bool,
        flags: _Flags,
        first: TransientUpstreamError,
    ) -> T:
        """Attempts 2..N under tenacity; attempt 1 (already failed) is replayed so its wait applies."""
        config = up.config
        name = config.name
        backoff = wait_exponential_jitter(
            multiplier=config.backoff_multiplier, max=config.backoff_max, jitter=config.backoff_jitter
        )
        # Failures so far per fixed schedule (tenacity computes one wait per failed attempt, the replayed first
        # one included), so that e.g. the second 5xx waits the schedule's second wait even after a 429.
        failures: dict[RetryWaits, int] = {}

        def wait(rs: RetryCallState) -> float:
            exc = rs.outcome.exception() if rs.outcome is not None else None
            if not isinstance(exc, TransientUpstreamError):
                return float(backoff(rs))  # not reached: only TransientUpstreamError is retried
            schedule = config.retry_waits_for(exc.status)
            if schedule is not None:
                failures[schedule] = failures.get(schedule, 0) + 1
            if exc.retry_after is not None:
                return exc.retry_after
            if schedule is not None:
                return schedule.wait(failures[schedule])
            return float(backoff(rs))

        def before_sleep(rs: RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome is not None else None
            reason = exc.reason if isinstance(exc, TransientUpstreamError) else type(exc).__name__
            sleep = rs.next_action.sleep if rs.next_action is not None else 0.0
            log.info("upstream %s attempt %d failed (%s); retrying in %.2fs", name, rs.attempt_number, reason, sleep)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(config.attempts) | stop_before_delay(effective.remaining() or 0.0),
            wait=wait,
            retry=retry_if_exception_type(TransientUpstreamError),
            before_sleep=before_sleep,
            reraise=True,
        )
        number = 1
        try:
            async for att in retrying:
                with att:
                    number = att.retry_state.attempt_number
                    if number == 1:
                        raise first
                    return await self._attempt(up, attempt, effective, caller_bound, number, flags)
        except TransientUpstreamError as exc:
            if number < config.attempts:
                if exc.retry_after is not None:
                    # The upstream said when to come back, and that is past the deadline: its answer, not ours
                    # running out (UNAVAILABLE with the time to wait, which the caller's RetryInfo carries).
                    raise ToldToWait(name, f"{exc.reason}; it asks to retry in {exc.retry_after:g}s, past the "
                                           "deadline", retry_after=exc.retry_after) from exc
                # Stopped early: the next wait would have ended past the budget.
                raise self._out_of_time(
                    name, caller_bound, f"{exc.reason}; the next retry would pass the deadline"
                ) from exc
            raise UpstreamUnavailable(name, f"{exc.reason} (after {number} attempts)",
                                      retry_after=exc.retry_after) from exc
        raise AssertionError("unreachable: tenacity either returned or raised")  # pragma: no cover

    @staticmethod
    def _out_of_time(name: str, caller_bound: bool, detail: str) -> UpstreamError:
        if caller_bound:
            return UpstreamDeadlineExceeded(name, f"deadline exceeded ({detail})")
        return UpstreamUnavailable(name, f"time budget exhausted ({detail})")

    async def _slot(self, up: _Upstream, effective: Deadline, caller_bound: bool, remaining: float) -> None:
        """One of the upstream's connection slots, waiting at most until the deadline (never a breaker failure)."""
        slots = up.slots
        if not slots.locked():
            await slots.acquire()  # free: returns without suspending
            return
        try:
            async with asyncio.timeout(remaining):
                await slots.acquire()
        except TimeoutError:
            up.count("pool_exhausted")
            cfg = up.config
            log.warning(
                "upstream %s: no free local connection within %.2fs (all %d of the pool busy); "
                "%s; not counted as an upstream failure",
                cfg.name, remaining, cfg.connect_limit,
                "the caller's deadline ran out" if caller_bound else "our own time budget ran out",
            )
            detail = f"no free connection to the upstream (local pool of {cfg.connect_limit} busy)"
            if caller_bound:
                raise UpstreamDeadlineExceeded(cfg.name, f"deadline exceeded waiting for a free connection "
                                                         f"(local pool of {cfg.connect_limit} busy)") from None
            raise LocalPoolExhausted(cfg.name, detail) from None

    async def _attempt(
        self,
        up: _Upstream,
        fn: Callable[[], Awaitable[T]],
        effective: Deadline,
        caller_bound: bool,
        number: int,
        flags: _Flags,
    ) -> T:
        cfg = up.config
        name = cfg.name
        remaining = effective.remaining() or 0.0
        if remaining <= MIN_ATTEMPT_SECONDS:
            up.count("deadline")
            raise self._out_of_time(name, caller_bound, "no time left for another attempt")
        await self._slot(up, effective, caller_bound, remaining)
        started = time.monotonic()
        outcome = "success"
        try:
            remaining = effective.remaining() or 0.0
            if remaining <= MIN_ATTEMPT_SECONDS:
                outcome = "deadline"
                raise self._out_of_time(name, caller_bound, "no time left after waiting for a connection")
            attempt_timeout = min(cfg.timeout, remaining)
            # The deadline, not the upstream, ended the attempt only if it took a real share of the attempt's time:
            # an attempt given (nearly) its whole timeout and still unanswered is the upstream's failure, even when
            # the deadline happens to fall there too (the clearinghouse worker's step is capped at that timeout).
            cut_by_budget = remaining < cfg.timeout * FULL_ATTEMPT_SHARE
            try:
                async with asyncio.timeout(attempt_timeout):
                    return await fn()
            except TransientUpstreamError as exc:
                outcome = "retryable_status" if exc.status is not None else "transient"
                flags.upstream_failed = True
                raise
            except aiohttp.ClientSSLError as exc:
                outcome = "tls_error"
                raise UpstreamUnavailable(
                    name, f"TLS handshake failed, certificate not trusted or invalid ({type(exc).__name__})"
                ) from exc
            # Before TimeoutError: aiohttp's own timeouts (the TCP connect's) are TimeoutErrors too, but the
            # upstream's, never the deadline; only our `asyncio.timeout` raises a plain TimeoutError.
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                outcome = "connection_error"
                flags.upstream_failed = True
                raise TransientUpstreamError(f"connection error ({type(exc).__name__})") from exc
            except TimeoutError as exc:
                if cut_by_budget:
                    outcome = "deadline"
                    raise self._out_of_time(name, caller_bound, f"attempt {number} cut short") from exc
                outcome = "timeout"
                flags.upstream_failed = True
                raise TransientUpstreamError(f"no answer within {attempt_timeout:g}s") from exc
            except UpstreamUnavailable:
                outcome = "malformed"
                raise
            except UpstreamError:
                outcome = "rejected"
                raise
            except aiohttp.ClientError as exc:
                outcome = "client_error"
                raise UpstreamUnavailable(name, f"HTTP client error ({type(exc).__name__})") from exc
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            except Exception:
                outcome = "internal_error"
                raise
        finally:
            up.slots.release()
            elapsed = time.monotonic() - started
            up.count(outcome)
            up.latency.observe(elapsed)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("upstream %s attempt %d: %s in %.3fs", name, number, outcome, elapsed)


def _judge(exc: BaseException, flags: _Flags) -> Outcome:
    """A failed request's one breaker outcome (see the module docstring)."""
    if isinstance(exc, (UpstreamDeadlineExceeded, LocalPoolExhausted)):
        return "failure" if flags.upstream_failed else "neutral"
    if isinstance(exc, UpstreamUnavailable):
        if "time budget exhausted" in exc.detail and not flags.upstream_failed:
            return "neutral"
        return "failure"
    if isinstance(exc, UpstreamError):
        return "answered"
    return "neutral"
