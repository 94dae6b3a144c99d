"""OAuth2 client-credentials tokens for the payer APIs: cached, refreshed early, fetched once.

* Cached until `expires_in - refresh_margin`; inside the margin the current token is still served
  while ONE background refresh runs; past `expires_in` callers wait for the refresh.
* Single flight: concurrent callers share one fetch task (shielded, so a caller whose own deadline
  ends does not cancel the fetch the others are waiting for).
* Failures are single-flight too: after a failed fetch, callers fail fast with the same error for
  `failure_backoff` seconds instead of each starting a new fetch (a refused client secret must not turn a
  burst of calls into a burst of token requests).
* `invalidate(token)` forgets the token only if it is still the current one, so a burst of 401s
  for the same stale token causes exactly one refresh.
* The client secret and tokens never appear in logs or reprs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp

from .errors import (
    CircuitOpen,
    UpstreamAuthError,
    UpstreamDeadlineExceeded,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from .http import UpstreamSession
from .models import parse_json
from .resilience import RETRYABLE_STATUSES, Deadline, Resilience, TransientUpstreamError, parse_retry_after

__all__ = ["AccessToken", "TokenConfig", "TokenProvider"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenConfig:
    """Where and how to get tokens. `client_secret` is excluded from repr."""

    url: str
    client_id: str
    client_secret: str = field(repr=False)
    refresh_margin: float = 60.0
    scope: str | None = None
    failure_backoff: float = 2.0


@dataclass(frozen=True)
class AccessToken:
    """One issued token pair. Token strings are excluded from repr."""

    access_token: str = field(repr=False)
    id_token: str | None = field(repr=False)
    token_type: str
    expires_in: float
    obtained_at: float  # monotonic
    refresh_at: float  # monotonic: start refreshing from here
    expires_at: float  # monotonic: unusable from here

    def headers(self) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.access_token}"}
        if self.id_token:
            h["id_token"] = self.id_token
        return h


def _again(exc: UpstreamError) -> UpstreamError:
    """A fresh exception of the same kind and message (one instance must not be raised by many callers)."""
    if isinstance(exc, CircuitOpen):
        return CircuitOpen(exc.upstream, exc.retry_after, circuit=exc.circuit)
    if isinstance(exc, UpstreamAuthError):
        return UpstreamAuthError(exc.upstream, exc.detail)
    if isinstance(exc, UpstreamUnavailable):
        return UpstreamUnavailable(exc.upstream, exc.detail)
    if isinstance(exc, UpstreamDeadlineExceeded):
        return UpstreamUnavailable(exc.upstream, "token endpoint did not answer in time (recently)")
    if isinstance(exc, (UpstreamNotFound, UpstreamRejected)):
        return UpstreamAuthError(exc.upstream, "token endpoint refused the request (recently)")
    return UpstreamUnavailable(exc.upstream, "token endpoint failed (recently)")


class TokenProvider:
    """Client-credentials tokens for one identity, shared by every client using it.

    `session` is the pooled HTTP session of the token endpoint; its `UpstreamConfig` (name, timeouts,
    retries, breaker) applies to token fetches, which therefore go through `resilience` too.
    """

    def __init__(self, config: TokenConfig, session: UpstreamSession, resilience: Resilience) -> None:
        self.config = config
        self._http = session
        self._resilience = resilience
        self._current: AccessToken | None = None
        self._inflight: asyncio.Task[AccessToken] | None = None
        self._failed: tuple[float, UpstreamError] | None = None  # (until, monotonic; the error) after a failed fetch
        self.fetch_count = 0  # completed or attempted fetches, for tests and metrics

    @property
    def upstream(self) -> str:
        return self._http.name

    def __repr__(self) -> str:
        return f"TokenProvider(url={self.config.url!r}, client_id={self.config.client_id!r})"

    async def get(self, deadline: Deadline | None = None) -> AccessToken:
        """A usable token; fetches (once for all concurrent callers) when none is valid."""
        now = time.monotonic()
        tok = self._current
        if tok is not None and now < tok.expires_at:
            if now >= tok.refresh_at and (self._failed is None or now >= self._failed[0]):
                self._start_fetch()  # refresh in the background (not again within a failure's backoff)
            return tok
        failed = self._failed
        if failed is not None and self._inflight is None:
            if now < failed[0]:
                raise _again(failed[1])
            self._failed = None
        task = self._start_fetch()
        remaining = None if deadline is None else deadline.remaining()
        try:
            if remaining is None:
                return await asyncio.shield(task)
            async with asyncio.timeout(remaining):
                return await asyncio.shield(task)
        except TimeoutError:
            raise UpstreamDeadlineExceeded(self.upstream, "deadline exceeded while obtaining an access token") from None

    def invalidate(self, token: AccessToken) -> None:
        """Drop `token` after the upstream refused it — only if nobody has replaced it yet."""
        if self._current is token:
            self._current = None
            log.info("access token for %s invalidated after a 401", self.upstream)

    async def close(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._current = None

    # ---- internals -------------------------------------------------------------------------

    def _start_fetch(self) -> asyncio.Task[AccessToken]:
        if self._inflight is None or self._inflight.done():
            task = asyncio.get_running_loop().create_task(self._fetch(), name=f"token-fetch-{self.upstream}")
            task.add_done_callback(self._fetch_done)
            self._inflight = task
        return self._inflight

    def _fetch_done(self, task: asyncio.Task[AccessToken]) -> None:
        if self._inflight is task:
            self._inflight = None
        if task.cancelled():
            return
        exc = task.exception()  # also marks it retrieved for background refreshes
        if exc is not None:
            if isinstance(exc, UpstreamError):
                self._failed = (time.monotonic() + self.config.failure_backoff, exc)
            log.warning(
                "access token fetch for %s failed: %s; calls fail fast for %gs", self.upstream, exc,
                self.config.failure_backoff,
            )
        else:
            self._failed = None

    async def _fetch(self) -> AccessToken:
        self.fetch_count += 1
        cfg = self._http.config
        # No caller's deadline: the fetch is shared, each waiter bounds its own wait (`get`). The resilience layer
        # bounds it by the upstream's own budget, whose end is the upstream's failure (UNAVAILABLE), not a caller's.
        token = await self._resilience.call(cfg, self._fetch_once, Deadline(None))
        self._current = token
        return token

    async def _fetch_once(self) -> AccessToken:
        form = {"grant_type": "client_credentials"}
        if self.config.scope:
            form["scope"] = self.config.scope
        started = time.monotonic()
        async with self._http.session.post(
            self.config.url,
            data=form,
            headers={
                "Accept": "application/json",
                "Authorization": aiohttp.encode_basic_auth(self.config.client_id, self.config.client_secret),
            },
        ) as resp:
            status = resp.status
            body = await resp.read()
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        log.debug("token endpoint %s: HTTP %d in %.3fs", self.upstream, status, time.monotonic() - started)
        if status in (400, 401, 403):
            raise UpstreamAuthError(self.upstream, f"token endpoint refused the client credentials (HTTP {status})")
        if status in RETRYABLE_STATUSES:
            raise TransientUpstreamError(f"token endpoint answered HTTP {status}", status=status, retry_after=retry_after)
        if status != 200:
            raise UpstreamUnavailable(self.upstream, f"token endpoint answered HTTP {status}")
        return self._parse(body, started)

    def _parse(self, body: bytes, obtained_at: float) -> AccessToken:
        try:
            data: Any = parse_json(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamUnavailable(self.upstream, "token endpoint returned a malformed body")
        access = data.get("access_token")
        id_token = data.get("id_token")
        expires_in = data.get("expires_in", 3600)
        if isinstance(expires_in, str) and expires_in.strip().isdigit():
            expires_in = int(expires_in)
        if (
            not isinstance(access, str)
            or not access
            or (id_token is not None and not isinstance(id_token, str))
            or isinstance(expires_in, bool)
            or not isinstance(expires_in, (int, Decimal))
            or not math.isfinite(float(expires_in))
            or expires_in <= 0
        ):
            raise UpstreamUnavailable(self.upstream, "token endpoint returned a malformed body")
        lifetime = float(expires_in)
        # Refresh `refresh_margin` early, but never sooner than half the lifetime (short-lived tokens
        # would otherwise be refreshed on every call).
        refresh_in = max(lifetime - self.config.refresh_margin, lifetime / 2)
        token_type = data.get("token_type")
        return AccessToken(
            access_token=access,
            id_token=id_token or None,
            token_type=token_type if isinstance(token_type, str) else "Bearer",
            expires_in=lifetime,
            obtained_at=obtained_at,
            refresh_at=obtained_at + refresh_in,
            expires_at=obtained_at + lifetime,
        )
