"""Pooled aiohttp sessions, one per upstream, opened at start and closed at shutdown.

Why one session per upstream: connection limits, TLS trust and timeouts are per dependency, and a
slow upstream must not exhaust the connection pool of another one.
"""

from __future__ import annotations

import functools
import logging
import math
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .errors import UpstreamUnavailable

__all__ = ["HttpPool", "RetryWaits", "UpstreamConfig", "UpstreamSession", "build_ssl", "read_body"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryWaits:
    """A fixed wait schedule for one kind of retried failure, when the upstream's policy spells the waits out.

    `statuses`: the HTTP statuses of this kind; `no_status`: also failures without one (attempt timeouts,
    connection errors). Within one call, the n-th failure of this kind waits `waits[n-1]` before the next
    attempt (the last wait repeats if attempts outlast the schedule). Waits are exact: no jitter is added.
    """

    waits: tuple[float, ...]
    statuses: frozenset[int] = frozenset()
    no_status: bool = False

    def __post_init__(self) -> None:
        if not self.waits or not all(math.isfinite(w) and w >= 0 for w in self.waits):
            raise ValueError("waits must be a non-empty tuple of finite seconds >= 0")
        if not self.statuses and not self.no_status:
            raise ValueError("a RetryWaits must cover some statuses or the failures without one")

    def covers(self, status: int | None) -> bool:
        return self.no_status if status is None else status in self.statuses

    def wait(self, failures: int) -> float:
        """The wait after the `failures`-th failure of this kind (1-based)."""
        return self.waits[min(max(failures, 1), len(self.waits)) - 1]


@dataclass(frozen=True)
class UpstreamConfig:
    """Everything about one upstream: where it is, how to connect, retry and break.

    `timeout` bounds one attempt; `total_timeout` bounds all attempts when the caller gave no
    deadline. Backoff is exponential with jitter: `backoff_multiplier * 2**(n-1) + U(0, jitter)`,
    capped at `backoff_max`. `retry_waits` (empty for most upstreams) replaces the backoff with fixed
    schedules for the failures it covers (the clearinghouse's policy). A `Retry-After` header wins over
    both but never past the deadline.
    """

    name: str
    base_url: str
    timeout: float = 5.0
    connect_timeout: float = 2.0
    total_timeout: float = 15.0
    connect_limit: int = 100
    attempts: int = 3
    backoff_multiplier: float = 0.2
    backoff_max: float = 2.0
    backoff_jitter: float = 0.2
    retry_waits: tuple[RetryWaits, ...] = ()  # at most one schedule per status (and one for "no status")
    breaker_failure_rate: float = 0.5
    breaker_min_requests: int = 20
    breaker_window: float = 10.0
    breaker_ttl: float = 30.0  # how long an opened circuit stays open before one probe
    verify_tls: bool = True
    ca_bundle: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    # aiohttp hooks of the session (tracing, when on: server/telemetry/tracing.py); empty = none, no cost
    trace_configs: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if not 0 < self.breaker_failure_rate <= 1:
            raise ValueError("breaker_failure_rate must be in (0, 1]")
        if self.breaker_min_requests < 1:
            raise ValueError("breaker_min_requests must be >= 1")
        if self.timeout <= 0 or self.total_timeout <= 0 or self.breaker_ttl <= 0 or self.breaker_window <= 0:
            raise ValueError("timeouts, breaker_window and breaker_ttl must be > 0")
        if self.connect_limit < 1:
            raise ValueError("connect_limit must be >= 1")
        statuses = [s for rule in self.retry_waits for s in rule.statuses]
        if len(statuses) != len(set(statuses)) or sum(rule.no_status for rule in self.retry_waits) > 1:
            raise ValueError("retry_waits: each status (and the failures without one) may have one schedule only")

    def retry_waits_for(self, status: int | None) -> RetryWaits | None:
        """The fixed schedule of a failure with this HTTP status (None: a timeout or connection error), if any."""
        for rule in self.retry_waits:
            if rule.covers(status):
                return rule
        return None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


def build_ssl(config: UpstreamConfig) -> ssl.SSLContext | bool:
    """TLS trust for one upstream: system store, or the configured CA bundle; `False` only on request."""
    if not config.verify_tls:
        return False
    if config.ca_bundle:
        return ssl.create_default_context(cafile=config.ca_bundle)  # read at each start: the file may change
    return system_trust()


@functools.cache
def system_trust() -> ssl.SSLContext:
    """The verifying context on the system's CA store, built once per process and shared by every upstream.

    Loading the store costs about 50 ms on a small machine, four times per start; a context is safe to share
    (sessions only read it), as aiohttp shares its own default one."""
    return ssl.create_default_context()


class UpstreamSession:
    """One pooled `aiohttp.ClientSession` for one upstream."""

    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise RuntimeError(f"HTTP session for {self.config.name} is not started")
        return self._session

    async def start(self) -> None:
        if self._session is not None and not self._session.closed:
            return
        cfg = self.config
        ssl_setting = build_ssl(cfg)
        if ssl_setting is False:
            log.warning(
                "TLS certificate verification is DISABLED for upstream %s (verify_tls=false); "
                "never use this outside local development",
                cfg.name,
            )
        connector = aiohttp.TCPConnector(limit=cfg.connect_limit, ssl=ssl_setting)
        self._session = aiohttp.ClientSession(
            connector=connector,
            # The per-attempt deadline is enforced by the resilience layer; this is a backstop. `sock_connect`, not
            # `connect`: aiohttp's `connect` includes the wait for a pooled connection, which is our own capacity
            # (the resilience layer bounds that wait by the caller's deadline), never the upstream's slowness.
            timeout=aiohttp.ClientTimeout(total=cfg.timeout, sock_connect=cfg.connect_timeout),
            trust_env=False,
            raise_for_status=False,
            # Upstream APIs are bearer-token JSON: no cookie is kept or sent (and none is parsed per answer).
            cookie_jar=aiohttp.DummyCookieJar(),
            trace_configs=list(cfg.trace_configs) or None,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpPool:
    """All upstream sessions of the process: `start()` at startup, `close()` at shutdown."""

    def __init__(self, configs: Iterable[UpstreamConfig]) -> None:
        self._sessions: dict[str, UpstreamSession] = {}
        for cfg in configs:
            if cfg.name in self._sessions:
                raise ValueError(f"duplicate upstream name {cfg.name!r}")
            self._sessions[cfg.name] = UpstreamSession(cfg)

    def __getitem__(self, name: str) -> UpstreamSession:
        return self._sessions[name]

    def names(self) -> list[str]:
        return list(self._sessions)

    async def start(self) -> None:
        try:
            for s in self._sessions.values():
                await s.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for s in self._sessions.values():
            await s.close()


async def read_body(resp: aiohttp.ClientResponse, config: UpstreamConfig) -> bytes:
    """The whole body, refusing more than `max_body_bytes`: a runaway upstream must not exhaust our memory."""
    limit = config.max_body_bytes
    if resp.content_length is not None and resp.content_length > limit:
        raise UpstreamUnavailable(config.name, f"{config.name} returned an oversized body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise UpstreamUnavailable(config.name, f"{config.name} returned an oversized body")
        chunks.append(chunk)
    return b"".join(chunks)
