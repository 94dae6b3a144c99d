"""Circuit breakers that open on a failure RATE over a sliding window, one outcome per request.

Why our own (and not purgatory any more): purgatory counts consecutive failures against a threshold and stores
that counter in Redis on every call; it cannot express "≥ 50 % of ≥ 20 requests in the last 10 s", and its
per-call Redis round trip was measurable on the hot path. This module is small on purpose (see
`docs/decisions.md`, "Circuit breakers").

* `BreakerPolicy`: failure rate, minimum volume, window and open time (settings `COSTEST_BREAKER_*`).
* `Breaker.admit()` before a request (raises `CircuitOpen` when open, or when half-open and the one probe is
  already out) and `Breaker.record(ticket, outcome)` once after it, with the request's final outcome:
  "success", "failure", "neutral" (not the upstream's fault: 4xx, caller's deadline, cancellation) or
  "answered" (neutral, but the upstream did answer: closes a half-open circuit).
* The window is a ring of `BUCKETS` time buckets: O(1) per outcome, no per-request allocation.
* Shared state (`SharedState`, Redis): only the *open* decision is shared. A process that opens a circuit
  writes `costest:cb:<name>` (expiring when the open time ends); every process reads it at most once per
  `sync_seconds` (a background refresh; the request path never waits for Redis once the first read is done),
  so a closed circuit costs no Redis round trip per request. The trade-off: another process notices an open
  circuit up to `sync_seconds` late, and each process judges the failure rate on its own traffic.
  The half-open probe is claimed with `SET NX`, so one probe runs across all processes.
  Redis unreachable → the breaker works on local state only (fail open) and a WARNING is logged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from .errors import CircuitOpen

__all__ = [
    "BUCKETS",
    "Breaker",
    "BreakerPolicy",
    "BreakerRegistry",
    "CircuitState",
    "Outcome",
    "SharedState",
    "Ticket",
]

log = logging.getLogger(__name__)

CircuitState = Literal["closed", "open", "half-open"]
Outcome = Literal["success", "failure", "neutral", "answered"]
BUCKETS = 10
# A caller refused because the one half-open probe is out is told to come back after this long.
PROBE_RETRY_AFTER = 1.0
KEY_PREFIX = "costest:cb:"
_PENDING: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class BreakerPolicy:
    """When a circuit opens and for how long. Defaults: ≥ 50 % failures of ≥ 20 requests in 10 s, open 30 s."""

    failure_rate: float = 0.5
    min_requests: int = 20
    window: float = 10.0
    open_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.failure_rate <= 1:
            raise ValueError("failure_rate must be in (0, 1]")
        if self.min_requests < 1:
            raise ValueError("min_requests must be >= 1")
        if self.window <= 0 or self.open_seconds <= 0:
            raise ValueError("window and open_seconds must be > 0")


@dataclass(slots=True)
class Ticket:
    """What `admit` hands out; `probe` marks the single half-open trial request."""

    probe: bool = False
    recorded: bool = False


_PLAIN = Ticket()  # closed-state tickets carry no state: one shared instance, no allocation per request


class SharedState:
    """The Redis side of every breaker of one process (None-safe: `BreakerRegistry` works without it)."""

    def __init__(self, redis_url: str, *, sync_seconds: float = 1.0) -> None:
        self._redis = aioredis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self.sync_seconds = sync_seconds
        self._warned_at = -math.inf
        self.token = secrets.token_hex(8)

    async def close(self) -> None:
        await self._redis.aclose()

    def down(self, what: str) -> None:
        now = time.monotonic()
        if now - self._warned_at > 30:
            self._warned_at = now
            log.warning("circuit breaker store (Redis) unreachable on %s; breakers use local state only", what)

    async def read_open_until(self, name: str) -> float | None:
        """Wall-clock time until which another process holds the circuit open, or None."""
        value = await self._redis.get(KEY_PREFIX + name)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            return None

    async def write_open(self, name: str, until_wall: float) -> None:
        ttl_ms = max(1, int((until_wall - time.time()) * 1000))
        # Keep the key a while after the open time so late readers see "half-open" rather than "closed".
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(KEY_PREFIX + name, repr(until_wall), px=ttl_ms + 60_000)
            pipe.delete(KEY_PREFIX + name + ":probe")
            await pipe.execute()

    async def write_closed(self, name: str) -> None:
        await self._redis.delete(KEY_PREFIX + name, KEY_PREFIX + name + ":probe")

    async def claim_probe(self, name: str, hold_seconds: float) -> bool:
        ok = await self._redis.set(
            KEY_PREFIX + name + ":probe", self.token, nx=True, px=max(1, int(hold_seconds * 1000))
        )
        return bool(ok)

    async def release_probe(self, name: str) -> None:
        await self._redis.delete(KEY_PREFIX + name + ":probe")


class Breaker:
    """One circuit (an upstream, or one payer behind the clearinghouse). One event loop; not thread-safe."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        *,
        shared: SharedState | None = None,
        on_change: Callable[[str, CircuitState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        upstream: str | None = None,
    ) -> None:
        self.name = name
        self.upstream = upstream or name
        self.policy = policy
        self._shared = shared
        self._on_change = on_change
        self._clock = clock
        self._width = policy.window / BUCKETS
        self._ok = [0] * BUCKETS
        self._fail = [0] * BUCKETS
        self._stamp = [-1] * BUCKETS  # which bucket index (time // width) each slot currently holds
        self._state: CircuitState = "closed"
        self._open_until = 0.0  # monotonic
        self._probe_out = False
        self._synced_at = -math.inf
        self._syncing: asyncio.Task[None] | None = None

    # ---- reading ------------------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """Local state; an open circuit whose time is up reports "half-open" (the next request probes)."""
        if self._state == "open" and self._clock() >= self._open_until:
            return "half-open"
        return self._state

    def counts(self) -> tuple[int, int]:
        """(requests, failures) in the current window."""
        current = int(self._clock() // self._width)
        total = fails = 0
        for i in range(BUCKETS):
            if current - self._stamp[i] < BUCKETS:
                total += self._ok[i] + self._fail[i]
                fails += self._fail[i]
        return total, fails

    def retry_after(self) -> float:
        return max(0.0, self._open_until - self._clock())

    # ---- the request path ---------------------------------------------------------------------

    async def admit(self) -> Ticket:
        """A ticket for one request, or `CircuitOpen`. Closed + fresh shared state: no await that suspends."""
        if self._shared is not None:
            await self._sync()
        state = self._state
        if state == "closed":
            return _PLAIN
        now = self._clock()
        if state == "open" and now < self._open_until:
            raise CircuitOpen(self.upstream, self._open_until - now, circuit=self.name)
        # Half-open: exactly one probe.
        if self._probe_out:
            raise CircuitOpen(self.upstream, PROBE_RETRY_AFTER, circuit=self.name)
        if self._shared is not None:
            try:
                claimed = await self._shared.claim_probe(self.name, max(self.policy.window, 5.0))
            except (RedisError, OSError):
                self._shared.down("probe claim")
                claimed = True
            if not claimed:
                raise CircuitOpen(self.upstream, PROBE_RETRY_AFTER, circuit=self.name)
        if self._probe_out:  # another request of this process claimed it while we awaited Redis
            raise CircuitOpen(self.upstream, PROBE_RETRY_AFTER, circuit=self.name)
        self._probe_out = True
        self._set_state("half-open")
        return Ticket(probe=True)

    def record(self, ticket: Ticket, outcome: Outcome) -> None:
        """The request's final outcome (once). Cheap and synchronous; Redis writes happen in the background."""
        if ticket.probe:
            if ticket.recorded:
                return
            ticket.recorded = True
            self._probe_out = False
            if outcome in ("success", "answered"):
                self._close()
            elif outcome == "failure":
                self._open()
            else:
                self._release_probe()
            return
        if outcome == "neutral" or outcome == "answered":
            return
        now = self._clock()
        index = int(now // self._width)
        slot = index % BUCKETS
        if self._stamp[slot] != index:
            self._stamp[slot] = index
            self._ok[slot] = 0
            self._fail[slot] = 0
        if outcome == "success":
            self._ok[slot] += 1
            return
        self._fail[slot] += 1
        if self._state != "closed":
            return
        total, fails = self.counts()
        if total >= self.policy.min_requests and fails >= self.policy.failure_rate * total:
            self._open()

    # ---- transitions --------------------------------------------------------------------------

    def _set_state(self, state: CircuitState) -> None:
        if state != self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(self.name, state)

    def _reset_window(self) -> None:
        for i in range(BUCKETS):
            self._ok[i] = self._fail[i] = 0
            self._stamp[i] = -1

    def _open(self, until: float | None = None, *, publish: bool = True) -> None:
        self._open_until = until if until is not None else self._clock() + self.policy.open_seconds
        self._reset_window()
        self._set_state("open")
        if publish and self._shared is not None:
            until_wall = time.time() + (self._open_until - self._clock())
            self._background(self._shared.write_open(self.name, until_wall), "update")

    def _close(self) -> None:
        self._reset_window()
        self._set_state("closed")
        if self._shared is not None:
            self._background(self._shared.write_closed(self.name), "update")

    def _release_probe(self) -> None:
        if self._shared is not None:
            self._background(self._shared.release_probe(self.name), "update")

    def _background(self, coro: object, what: str) -> None:
        shared = self._shared
        assert shared is not None

        async def run() -> None:
            try:
                await coro  # type: ignore[misc]
            except (RedisError, OSError):
                shared.down(what)

        try:
            task = asyncio.get_running_loop().create_task(run())
        except RuntimeError:  # no loop (e.g. a synchronous unit test): nothing to share with
            coro.close()  # type: ignore[attr-defined]
            return
        _PENDING.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(_PENDING.discard)

    # ---- shared state -------------------------------------------------------------------------

    async def _sync(self) -> None:
        """Adopt another process's open decision. The first read is awaited; later ones refresh in the background."""
        if self._clock() - self._synced_at < self._shared_sync_seconds():
            return
        task = self._syncing
        if task is None or task.done():
            task = self._syncing = asyncio.get_running_loop().create_task(self._refresh())
        if self._synced_at == -math.inf:
            try:
                await asyncio.wait_for(asyncio.shield(task), 1.0)
            except TimeoutError:
                pass

    def _shared_sync_seconds(self) -> float:
        return self._shared.sync_seconds if self._shared is not None else math.inf

    async def refresh(self) -> None:
        """Read the shared state now (health reporting, tests)."""
        if self._shared is not None:
            await self._refresh()

    async def _refresh(self) -> None:
        shared = self._shared
        assert shared is not None
        try:
            until_wall = await shared.read_open_until(self.name)
        except (RedisError, OSError):
            shared.down("read")
            self._synced_at = self._clock()
            return
        self._synced_at = self._clock()
        if until_wall is None:
            if self._state == "open" and self._clock() >= self._open_until:
                # Someone closed it (their probe succeeded) and our open time is over.
                self._reset_window()
                self._set_state("closed")
            return
        until = self._clock() + (until_wall - time.time())
        if self._state == "closed" or (self._state == "open" and until > self._open_until + 0.001):
            self._open(until, publish=False)


class BreakerRegistry:
    """Every breaker of the process, by circuit name, created on first use with the policy given."""

    def __init__(
        self,
        *,
        shared: SharedState | None = None,
        on_change: Callable[[str, CircuitState], None] | None = None,
    ) -> None:
        self.shared = shared
        self._on_change = on_change
        self._breakers: dict[str, Breaker] = {}

    def get(self, name: str, policy: BreakerPolicy, *, upstream: str | None = None) -> Breaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = self._breakers[name] = Breaker(
                name, policy, shared=self.shared, on_change=self._on_change, upstream=upstream
            )
        return breaker

    def find(self, name: str) -> Breaker | None:
        return self._breakers.get(name)

    def forget(self, name: str) -> None:
        """Drop a breaker (its window of outcomes with it); the next `get` of that name starts a fresh one."""
        self._breakers.pop(name, None)

    def names(self) -> list[str]:
        return list(self._breakers)
