"""What the Benefits and Accumulators clients share: bearer auth, status mapping, body parsing.

Status mapping (one place):
  2xx → parsed body (malformed JSON or schema mismatch → UpstreamUnavailable "… returned a malformed body")
  401 → invalidate the token, fetch a new one, one more try; a second 401 → UpstreamAuthError
  403 → UpstreamAuthError
  400/404 whose body says "ACTIVE MEMBER COVERAGE NOT FOUND" → MemberNotFound (fast, never retried)
  404 → UpstreamNotFound; other 4xx → UpstreamRejected (sanitised gateway message)
  408/429/500/502/503/504 → retried (Retry-After honoured), finally UpstreamUnavailable
  other statuses → UpstreamUnavailable
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import aiohttp
from yarl import URL

from .errors import (
    MemberNotFound,
    UpstreamAuthError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
    safe_upstream_message,
)
from .http import UpstreamSession, read_body
from .resilience import RETRYABLE_STATUSES, Deadline, Resilience, TransientUpstreamError, parse_retry_after
from .tokens import AccessToken, TokenProvider

__all__ = ["MEMBER_NOT_FOUND_MARKER", "PayerApiClient"]

log = logging.getLogger(__name__)

T = TypeVar("T")
MEMBER_NOT_FOUND_MARKER = b"ACTIVE MEMBER COVERAGE NOT FOUND"


class _TokenRejected(UpstreamAuthError):
    """Internal: the upstream answered 401 to this token (handled by one refresh-and-retry)."""


class PayerApiClient:
    """Base of the payer JSON clients: one authorised, resilient JSON exchange."""

    def __init__(self, session: UpstreamSession, tokens: TokenProvider, resilience: Resilience) -> None:
        self._http = session
        self._tokens = tokens
        self._resilience = resilience
        self._urls: dict[str, URL] = {}  # parsed once per path: aiohttp would re-parse a str URL on every call
        # Headers per token (GET, JSON body), built once per issued token rather than once per call.
        self._headers: tuple[AccessToken | None, dict[str, str], dict[str, str]] = (None, {}, {})
        # The attempt's deadline is the resilience layer's `asyncio.timeout` around the whole exchange (body read
        # included): aiohttp's own total-timeout timer per request would only duplicate it. The TCP connect stays
        # bounded by `sock_connect`.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=session.config.connect_timeout)
        resilience.register(session.config)

    @property
    def name(self) -> str:
        return self._http.name

    async def _exchange(
        self,
        method: str,
        path: str,
        parse: Callable[[bytes], T],
        *,
        timeout: float | None,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> T:
        deadline = Deadline.after(timeout)
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(self._http.config.url(path))
        for round_ in (1, 2):
            token = await self._tokens.get(deadline)

            async def once(token: AccessToken = token) -> T:
                return await self._once(method, url, path, token, parse, params, body)

            try:
                return await self._resilience.call(self._http.config, once, deadline)
            except _TokenRejected:
                self._tokens.invalidate(token)
                if round_ == 2:
                    raise UpstreamAuthError(self.name, "upstream refused a freshly issued token (HTTP 401)") from None
                log.info("upstream %s answered 401; refreshing the access token once", self.name)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self,
        method: str,
        url: URL,
        path: str,
        token: AccessToken,
        parse: Callable[[bytes], T],
        params: Mapping[str, str] | None,
        body: bytes | None,
    ) -> T:
        headers = self._headers_for(token, body is not None)
        started = time.monotonic()
        async with self._http.session.request(
            method, url, params=params, data=body, headers=headers, timeout=self._timeout
        ) as resp:
            status = resp.status
            payload = await read_body(resp, self._http.config)
            retry_after = parse_retry_after(resp.headers.get("Retry-After")) if status >= 300 else None
        if log.isEnabledFor(logging.DEBUG):  # Path only: the query string carries the member id.
            log.debug("upstream %s %s %s: HTTP %d in %.3fs", self.name, method, path, status,
                      time.monotonic() - started)
        if 200 <= status < 300:
            return self._parse(payload, parse)
        raise self._error_for(status, payload, retry_after)

    def _headers_for(self, token: AccessToken, json_body: bool) -> dict[str, str]:
        """The request headers for `token` (aiohttp copies them into each request; never mutated here)."""
        held, plain, with_body = self._headers
        if held is not token:
            plain = {"Accept": "application/json", **token.headers()}
            with_body = {**plain, "Content-Type": "application/json"}
            self._headers = (token, plain, with_body)
        return with_body if json_body else plain

    def _parse(self, payload: bytes, parse: Callable[[bytes], T]) -> T:
        try:
            return parse(payload)
        except (ValueError, TypeError):
            # msgspec's DecodeError/ValidationError are ValueErrors; their text could echo member data: dropped.
            raise UpstreamUnavailable(self.name, f"{self.name} returned a malformed body") from None

    def _error_for(self, status: int, payload: bytes, retry_after: float | None) -> Exception:
        if status == 401:
            return _TokenRejected(self.name, "access token refused (HTTP 401)")
        if status == 403:
            return UpstreamAuthError(self.name, "access forbidden (HTTP 403)")
        if status in (400, 404) and MEMBER_NOT_FOUND_MARKER in payload.upper():
            return MemberNotFound(self.name)
        if status == 404:
            return UpstreamNotFound(self.name)
        if status in RETRYABLE_STATUSES:
            return TransientUpstreamError(f"HTTP {status}", status=status, retry_after=retry_after)
        if 400 <= status < 500:
            return UpstreamRejected(self.name, safe_upstream_message(payload, status), status)
        return UpstreamUnavailable(self.name, f"unexpected HTTP {status}")
