"""Retries, deadlines and circuit breakers shared by every upstream client.

One call = up to `attempts` attempts (tenacity), each one guarded by the upstream's circuit breaker
(purgatory) and bounded by the time left. Rules:

* The caller's deadline is absolute (`Deadline`). No attempt starts and no wait ends after it:
  tenacity's `stop_before_delay(budget)` refuses a wait that would cross it, and every attempt runs
  under `asyncio.timeout(min(per-attempt timeout, time left))`. Running out → `UpstreamDeadlineExceeded`.
* Retried: `TransientUpstreamError` (HTTP 408/429/500/502/503/504 raised by clients), timeouts of an
  attempt and connection errors. Never retried: member not found, other 4xx, TLS failures,
  malformed bodies, an open breaker. `Retry-After` (seconds or HTTP date) replaces the backoff.
* Breaker accounting (decision, see `_BreakerHandle`): 5xx/408/429, timeouts, connection/TLS errors
  and malformed bodies are failures. 4xx answers are *neutral* in the closed state: they neither
  count nor reset the consecutive-failure count (purgatory's own `exclude` would treat them as a
  success and reset it, so a gateway answering 400/401 while its backend is down would keep the
  breaker closed forever). In the half-open state a 4xx proves the upstream answers and closes the
  circuit. Cancellation by the caller and attempts cut short by the caller's own deadline are
  neutral too: a client with a 50 ms budget must not open the breaker for everyone.
* Half-open: purgatory lets every request through; we admit one probe per process and fail the
  others fast until the probe has an outcome.
* With `redis_url`, breaker state lives in Redis (`cbr::<upstream>` keys) and is shared by every
  process; if Redis is unreachable the call goes ahead without a breaker (fail open) and a WARNING is
  logged, because a broken breaker store must not take the upstream down with it.
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
from typing import Any, Literal, TypeVar

import aiohttp
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from purgatory import AsyncCircuitBreakerFactory, AsyncRedisUnitOfWork
from purgatory.domain.model import OpenedState
from purgatory.service._async.repository import AsyncRedisRepository
from redis.exceptions import RedisError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from .errors import CircuitOpen, UpstreamDeadlineExceeded, UpstreamError, UpstreamUnavailable
from .http import UpstreamConfig

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
CircuitState = Literal["closed", "open", "half-open"]
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Never start an attempt with less time than this left: it could not finish anyway.
MIN_ATTEMPT_SECONDS = 0.01
_STATE_VALUE: dict[str, int] = {"closed": 0, "half-opened": 1, "opened": 2}
_STATE_NAME: dict[str, CircuitState] = {"closed": "closed", "half-opened": "half-open", "opened": "open"}


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
            "tls_error, malformed, rejected, deadline, cancelled, short_circuited)",
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


class _BreakerHandle:
    """One attempt's ticket through a purgatory breaker, with a *neutral* exit purgatory lacks."""

    def __init__(self, owner: Resilience, name: str, breaker: Any, probe: bool) -> None:
        self._owner = owner
        self._name = name
        self._breaker = breaker
        self._probe = probe

    async def success(self) -> None:
        await self._exit(None)

    async def failure(self, exc: BaseException) -> None:
        await self._exit(exc)

    async def neutral(self, *, upstream_answered: bool) -> None:
        """Leave without counting. A 4xx answer during half-open still proves liveness → success."""
        if self._breaker is not None and upstream_answered and self._breaker.context.state == "half-opened":
            await self._exit(None)
            return
        try:
            if self._breaker is not None:
                # Publish what entering produced (e.g. opened → half-opened) without an outcome;
                # mirrors AsyncCircuitBreaker.__aexit__ minus the success/failure accounting.
                ctx = self._breaker.context
                while ctx.messages:
                    await self._breaker.messagebus.handle(ctx.messages.pop(0), self._breaker.uow)
        except RedisError:
            self._owner._redis_down("update")
        finally:
            self._release()

    async def _exit(self, exc: BaseException | None) -> None:
        try:
            if self._breaker is not None:
                if exc is None:
                    await self._breaker.__aexit__(None, None, None)
                else:
                    await self._breaker.__aexit__(type(exc), exc, exc.__traceback__)
        except RedisError:
            self._owner._redis_down("update")
        finally:
            self._release()

    def _release(self) -> None:
        if self._probe:
            self._owner._probing.discard(self._name)
            self._probe = False


class Resilience:
    """Retry + deadline + circuit breaker policy for all upstreams of the process.

    `start()` once (connects the Redis breaker store when configured), `close()` at shutdown.
    `call(config, attempt, deadline)` runs `attempt()` (one HTTP exchange) under the policy.
    """

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.metrics = UpstreamMetrics.for_registry(registry)
        self._redis_url = redis_url
        uow = AsyncRedisUnitOfWork(redis_url) if redis_url else None
        self._factory = AsyncCircuitBreakerFactory(uow=uow)
        self._factory.add_listener(self._on_breaker_event)
        self._configs: dict[str, UpstreamConfig] = {}
        self._probing: set[str] = set()
        self._redis_warned_at = 0.0
        self._started = False

    @property
    def shared(self) -> bool:
        """True when breaker state is shared through Redis."""
        return self._redis_url is not None

    async def start(self) -> None:
        if not self._started:
            await self._factory.initialize()
            self._started = True

    async def close(self) -> None:
        repo = self._factory.uow.contexts
        if isinstance(repo, AsyncRedisRepository):
            # purgatory never closes its Redis client.
            await repo.redis.aclose()
        self._started = False

    def register(self, config: UpstreamConfig) -> None:
        """Remember an upstream so `state()` knows its threshold/ttl; sets its gauge to closed."""
        if config.name not in self._configs:
            self.metrics.circuit_state.labels(upstream=config.name).set(0)
        self._configs[config.name] = config

    # ---- breaker state -----------------------------------------------------------------------

    def _on_breaker_event(self, name: str, kind: str, event: Any) -> None:
        if kind == "state_changed":
            state = str(event.state)
            self.metrics.circuit_state.labels(upstream=name).set(_STATE_VALUE.get(state, 0))
            shown = _STATE_NAME.get(state, state)
            log.log(
                logging.WARNING if shown == "open" else logging.INFO,
                "circuit breaker for upstream %s is now %s",
                name,
                shown,
            )
        elif kind == "failed":
            log.debug("circuit breaker for upstream %s: failure %s", name, event.failure_count)

    async def state(self, name: str) -> CircuitState:
        """Breaker state for health reporting. An open circuit whose ttl passed reports "half-open"
        (the next call will probe; purgatory only switches lazily)."""
        cfg = self._configs.get(name)
        try:
            brk = await self._factory.get_breaker(
                name,
                threshold=cfg.breaker_threshold if cfg else None,
                ttl=cfg.breaker_ttl if cfg else None,
            )
        except RedisError:
            self._redis_down("read")
            return "closed"
        ctx = brk.context
        self._observe(name, ctx.state)
        if ctx.state == "opened":
            opened_at = ctx.opened_at or 0.0
            return "half-open" if opened_at + ctx.ttl < time.time() else "open"
        return "half-open" if ctx.state == "half-opened" else "closed"

    async def states(self) -> dict[str, CircuitState]:
        return {name: await self.state(name) for name in self._configs}

    def _observe(self, name: str, purgatory_state: str) -> None:
        self.metrics.circuit_state.labels(upstream=name).set(_STATE_VALUE.get(purgatory_state, 0))

    def _redis_down(self, what: str) -> None:
        now = time.monotonic()
        if now - self._redis_warned_at > 30:
            self._redis_warned_at = now
            log.warning("circuit breaker store (Redis) unreachable on %s; calling upstreams without a breaker", what)

    async def _enter(self, cfg: UpstreamConfig) -> _BreakerHandle:
        name = cfg.name
        try:
            brk = await self._factory.get_breaker(name, threshold=cfg.breaker_threshold, ttl=cfg.breaker_ttl)
        except RedisError:
            self._redis_down("read")
            return _BreakerHandle(self, name, None, probe=False)
        ctx = brk.context
        self._observe(name, ctx.state)
        probing = ctx.state == "half-opened" or (
            ctx.state == "opened" and (ctx.opened_at or 0.0) + ctx.ttl < time.time()
        )
        if probing:
            if name in self._probing:
                self.metrics.attempts.labels(upstream=name, outcome="short_circuited").inc()
                raise UpstreamUnavailable(name, "circuit breaker half-open, a probe is in flight")
            self._probing.add(name)
        handle = _BreakerHandle(self, name, brk, probe=probing)
        try:
            await brk.__aenter__()
        except OpenedState:
            handle._release()
            self.metrics.attempts.labels(upstream=name, outcome="short_circuited").inc()
            retry_after = max(0.0, (ctx.opened_at or time.time()) + ctx.ttl - time.time())
            raise CircuitOpen(name, retry_after) from None
        except RedisError:
            handle._release()
            self._redis_down("update")
            return _BreakerHandle(self, name, None, probe=False)
        except BaseException:
            handle._release()
            raise
        return handle

    # ---- the call ---------------------------------------------------------------------------

    async def call(
        self,
        config: UpstreamConfig,
        attempt: Callable[[], Awaitable[T]],
        deadline: Deadline,
    ) -> T:
        """Run `attempt` with retries, breaker and deadline; raise only `UpstreamError`s (or cancellation)."""
        self.register(config)
        name = config.name
        caller_deadline = deadline.at
        effective = deadline.capped(config.total_timeout)
        # Whose clock runs out first decides the error: the caller's → DEADLINE_EXCEEDED,
        # our own total_timeout → UNAVAILABLE.
        caller_bound = caller_deadline is not None and effective.at == caller_deadline
        budget = effective.remaining() or 0.0
        if budget <= MIN_ATTEMPT_SECONDS:
            raise self._out_of_time(name, caller_bound, "no time left for an attempt")

        backoff = wait_exponential_jitter(
            multiplier=config.backoff_multiplier, max=config.backoff_max, jitter=config.backoff_jitter
        )

        def wait(rs: RetryCallState) -> float:
            exc = rs.outcome.exception() if rs.outcome is not None else None
            if isinstance(exc, TransientUpstreamError) and exc.retry_after is not None:
                return exc.retry_after
            return float(backoff(rs))

        def before_sleep(rs: RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome is not None else None
            reason = exc.reason if isinstance(exc, TransientUpstreamError) else type(exc).__name__
            sleep = rs.next_action.sleep if rs.next_action is not None else 0.0
            log.info("upstream %s attempt %d failed (%s); retrying in %.2fs", name, rs.attempt_number, reason, sleep)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(config.attempts) | stop_before_delay(budget),
            wait=wait,
            retry=retry_if_exception_type(TransientUpstreamError),
            before_sleep=before_sleep,
            reraise=True,
        )
        number = 0
        try:
            async for att in retrying:
                with att:
                    number = att.retry_state.attempt_number
                    return await self._attempt(config, attempt, effective, caller_bound, number)
        except TransientUpstreamError as exc:
            if number < config.attempts:
                # Stopped early: the next wait would have ended past the budget.
                raise self._out_of_time(
                    name, caller_bound, f"{exc.reason}; the next retry would pass the deadline"
                ) from exc
            raise UpstreamUnavailable(name, f"{exc.reason} (after {number} attempts)") from exc
        raise AssertionError("unreachable: tenacity either returned or raised")  # pragma: no cover

    @staticmethod
    def _out_of_time(name: str, caller_bound: bool, detail: str) -> UpstreamError:
        if caller_bound:
            return UpstreamDeadlineExceeded(name, f"deadline exceeded ({detail})")
        return UpstreamUnavailable(name, f"time budget exhausted ({detail})")

    async def _attempt(
        self,
        cfg: UpstreamConfig,
        fn: Callable[[], Awaitable[T]],
        effective: Deadline,
        caller_bound: bool,
        number: int,
    ) -> T:
        name = cfg.name
        remaining = effective.remaining() or 0.0
        if remaining <= MIN_ATTEMPT_SECONDS:
            self.metrics.attempts.labels(upstream=name, outcome="deadline").inc()
            raise self._out_of_time(name, caller_bound, "no time left for another attempt")
        attempt_timeout = min(cfg.timeout, remaining)
        cut_by_budget = remaining < cfg.timeout

        breaker = await self._enter(cfg)
        started = time.monotonic()
        outcome = "success"
        try:
            try:
                async with asyncio.timeout(attempt_timeout):
                    result = await fn()
            except TransientUpstreamError as exc:
                outcome = "retryable_status" if exc.status is not None else "transient"
                await breaker.failure(exc)
                raise
            except aiohttp.ClientSSLError as exc:
                outcome = "tls_error"
                await breaker.failure(exc)
                raise UpstreamUnavailable(
                    name, f"TLS handshake failed, certificate not trusted or invalid ({type(exc).__name__})"
                ) from exc
            except TimeoutError as exc:
                if cut_by_budget:
                    outcome = "deadline"
                    await breaker.neutral(upstream_answered=False)
                    raise self._out_of_time(name, caller_bound, f"attempt {number} cut short") from exc
                outcome = "timeout"
                await breaker.failure(exc)
                raise TransientUpstreamError(f"no answer within {cfg.timeout:g}s") from exc
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                outcome = "connection_error"
                await breaker.failure(exc)
                raise TransientUpstreamError(f"connection error ({type(exc).__name__})") from exc
            except UpstreamUnavailable as exc:
                outcome = "malformed"
                await breaker.failure(exc)
                raise
            except UpstreamError:
                outcome = "rejected"
                await breaker.neutral(upstream_answered=True)
                raise
            except aiohttp.ClientError as exc:
                outcome = "client_error"
                await breaker.neutral(upstream_answered=False)
                raise UpstreamUnavailable(name, f"HTTP client error ({type(exc).__name__})") from exc
            except asyncio.CancelledError:
                outcome = "cancelled"
                await asyncio.shield(breaker.neutral(upstream_answered=False))
                raise
            except Exception:
                # A bug on our side is not the upstream's failure.
                outcome = "internal_error"
                await breaker.neutral(upstream_answered=False)
                raise
            await breaker.success()
            return result
        finally:
            elapsed = time.monotonic() - started
            self.metrics.attempts.labels(upstream=name, outcome=outcome).inc()
            self.metrics.latency.labels(upstream=name).observe(elapsed)
            log.debug("upstream %s attempt %d: %s in %.3fs", name, number, outcome, elapsed)
