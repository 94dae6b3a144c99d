"""Stedi real-time eligibility (270/271, JSON v3) client: one POST per check, HTTP failures retried.

Status mapping (one place):
  200, 400 → `StediAnswer` with the parsed body (AAA rejections and Stedi's validation errors are *answers*:
             the normalizer classifies them; money stays exact via `parse_json` (`parse_float=Decimal`))
  401/403  → UpstreamAuthError (one operator log line, never the key)
  404      → UpstreamNotFound (wrong URL)
  408/429/5xx, timeouts, connection errors → TransientUpstreamError, retried by the resilience layer
             (within the deadline, breaker "stedi"). 429 gets up to `attempts` tries (spec §3.3: five);
             5xx and connection errors at most `max_unavailable_attempts` (three). The waits between them
             are spec §3.3's, `STEDI_RETRY_WAITS`, when the upstream's config carries them (the composition
             root sets them); a `Retry-After` header wins.
  anything else, or a body that is not a JSON object → UpstreamUnavailable
Breakers: the clearinghouse breaker "stedi" counts one outcome per call (5xx, timeouts, connection errors);
each payer has its own breaker "stedi-payer:<payer id>" fed by the AAA codes of the answers: 42/80 ("payer
unable to respond") is that payer's failure, any other answer its success (member-data answers such as AAA
71–76 never count against it). A payer whose circuit is open gets `CircuitOpen` before anything is sent.
A connection reset mid-body (aiohttp `ClientPayloadError`) is a try like any connection error.
Only the check id, traceId, HTTP status and AAA codes are ever logged: bodies carry PHI.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import orjson

from .breaker import Breaker, Outcome
from .errors import UpstreamAuthError, UpstreamDeadlineExceeded, UpstreamNotFound, UpstreamUnavailable
from .http import RetryWaits, UpstreamSession, read_body
from .models import parse_json
from .resilience import RETRYABLE_STATUSES, Deadline, Resilience, TransientUpstreamError, parse_retry_after

__all__ = [
    "ELIGIBILITY_PATH",
    "STEDI_RETRY_WAITS",
    "STEDI_UPSTREAM",
    "HttpTry",
    "StediAnswer",
    "StediClient",
    "eligibility_url",
]

log = logging.getLogger(__name__)

STEDI_UPSTREAM: Final = "stedi"
ELIGIBILITY_PATH: Final = "/2024-04-01/change/medicalnetwork/eligibility/v3"
ANSWER_STATUSES: Final = frozenset({200, 400})
PAYER_UNABLE_TO_RESPOND: Final = frozenset({"42", "80"})
PAYER_CIRCUIT_PREFIX: Final = "stedi-payer:"
MAX_PAYER_CIRCUITS: Final = 1000
# Spec §3.3 "Our policy": the waits before the retries of a failed HTTP exchange.
# * 429: 0 s, 0.5 s, 1 s, 2 s, 4 s (Stedi: retry throttling right away). The budget is five attempts (the
#   config's `attempts`), so only the first four waits are reached; the fifth is kept as the spec lists it.
# * 500/503/504, connection errors and our attempt timeout: 1 s, then 4 s (three attempts,
#   `max_unavailable_attempts`). 408 and 502 are not in the spec's table; this client retries them under the same
#   cap of three, so they wait the same (never sooner than the spec allows for a server-side failure).
# No jitter: the spec's waits are exact, and throttled retries cannot add load beyond the account's limit, since a
# call keeps its concurrency slot across its retries.
STEDI_RETRY_WAITS: Final = (
    RetryWaits((0.0, 0.5, 1.0, 2.0, 4.0), statuses=frozenset({429})),
    RetryWaits((1.0, 4.0), statuses=frozenset({408, 500, 502, 503, 504}), no_status=True),
)


def eligibility_url(configured: str) -> str:
    """`COSTEST_STEDI_URL` may be the host (`https://healthcare.us.stedi.com`) or the full endpoint URL."""
    path = urlsplit(configured).path
    if path in ("", "/"):
        return configured.rstrip("/") + ELIGIBILITY_PATH
    return configured


@dataclass(frozen=True, slots=True)
class StediAnswer:
    """A 200 or 400 answer. `body` is PHI: kept out of repr so it never reaches a log line by accident."""

    http_status: int
    body: dict[str, Any] = field(repr=False)
    stedi_id: str | None
    trace_id: str | None

    @property
    def aaa_codes(self) -> tuple[str, ...]:
        return _aaa_codes(self.body)


@dataclass(frozen=True, slots=True)
class HttpTry:
    """One HTTP exchange within a call (a retried 429 is one try); lets the caller store every attempt."""

    http_status: int | None
    error: str | None = None  # short machine text, never upstream free text
    stedi_id: str | None = None
    trace_id: str | None = None
    aaa_codes: tuple[str, ...] = ()


def _aaa_codes(body: Mapping[str, Any]) -> tuple[str, ...]:
    errors = body.get("errors")
    if not isinstance(errors, list):
        return ()
    return tuple(str(e["code"]) for e in errors if isinstance(e, Mapping) and isinstance(e.get("code"), str))


_UPSTREAM_ID: Final = re.compile(r"[\w.:-]{1,128}", re.ASCII)


def _upstream_id(value: object) -> str | None:
    """Stedi's `id` / `meta.traceId` (ULIDs), kept only when they look like ids: they are stored (128-character
    columns) and logged, so anything longer, or with spaces or control characters, is not kept."""
    return value if isinstance(value, str) and _UPSTREAM_ID.fullmatch(value) else None


class _ApiKey:
    """The key, hidden from repr/str so a stray log of the client cannot leak it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value.strip():
            raise ValueError("the Stedi API key must not be empty")
        self._value = value.strip()

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


class StediClient:
    """`POST` Stedi v3 eligibility JSON with `Authorization: <api key>`; at most `concurrency` calls in flight."""

    def __init__(
        self,
        session: UpstreamSession,
        resilience: Resilience,
        api_key: str,
        *,
        concurrency: int = 8,
        max_unavailable_attempts: int = 3,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._http = session
        self._resilience = resilience
        self._key = _ApiKey(api_key)
        self._slots = asyncio.Semaphore(concurrency)
        self._max_unavailable = max_unavailable_attempts
        self._url = eligibility_url(session.config.base_url)
        self._payers: collections.OrderedDict[str, Breaker] = collections.OrderedDict()  # least recent first
        resilience.register(session.config)

    def __repr__(self) -> str:
        return f"StediClient(url={self._url!r}, api_key=<redacted>)"

    @property
    def name(self) -> str:
        return self._http.name

    async def check(
        self, request: Mapping[str, Any], *, deadline: Deadline, trail: list[HttpTry] | None = None
    ) -> StediAnswer:
        """One eligibility check. Every HTTP exchange is appended to `trail` (when given), failed ones included.

        Waiting for a concurrency slot counts against `deadline`; the slot is held across the HTTP retries of
        this call, so retries after a 429 never add load beyond the limit.
        """
        payer = self._payer_breaker(request)
        ticket = await payer.admit() if payer is not None else None  # raises CircuitOpen for that payer
        payload = orjson.dumps(request)  # compact UTF-8 JSON, as json.dumps would write it, ~10× faster
        tries: list[HttpTry] = trail if trail is not None else []
        before = len(tries)
        outcome: Outcome = "neutral"
        try:
            answer = await self._check(payload, tries, deadline)
        finally:
            if payer is not None and ticket is not None:
                if len(tries) > before and tries[-1].http_status in ANSWER_STATUSES and tries[-1].error is None:
                    unable = PAYER_UNABLE_TO_RESPOND.intersection(tries[-1].aaa_codes)
                    outcome = "failure" if unable else "success"
                payer.record(ticket, outcome)
        return answer

    def _payer_breaker(self, request: Mapping[str, Any]) -> Breaker | None:
        payer_id = request.get("tradingPartnerServiceId")
        if not isinstance(payer_id, str) or not payer_id or len(payer_id) > 80:
            return None
        breakers = self._payers
        breaker = breakers.get(payer_id)
        if breaker is not None:
            breakers.move_to_end(payer_id)  # recently used: the last to make room
            return breaker
        if len(breakers) >= MAX_PAYER_CIRCUITS and not self._make_room():
            return None  # every circuit kept is open or probing: the clearinghouse breaker still applies
        breaker = breakers[payer_id] = self._resilience.breaker(PAYER_CIRCUIT_PREFIX + payer_id, self._http.config)
        return breaker

    def _make_room(self) -> bool:
        """Forget the least recently used payer circuit that is closed: memory and metric labels stay bounded,
        and a flood of made-up payer ids cannot leave real payers without a breaker. Open ones are kept."""
        for payer_id, breaker in self._payers.items():
            if breaker.state == "closed":
                del self._payers[payer_id]
                self._resilience.forget_breaker(PAYER_CIRCUIT_PREFIX + payer_id)
                return True
        return False

    async def _check(self, payload: bytes, tries: list[HttpTry], deadline: Deadline) -> StediAnswer:
        if self._slots.locked():
            try:
                async with asyncio.timeout(deadline.remaining()):
                    await self._slots.acquire()
            except TimeoutError:
                raise UpstreamDeadlineExceeded(self.name, "deadline exceeded waiting for a clearinghouse slot") from None
        else:
            await self._slots.acquire()  # free: returns at once (no timer for the common case)
        try:

            async def once() -> StediAnswer:
                return await self._once(payload, tries)

            return await self._resilience.call(self._http.config, once, deadline)
        finally:
            self._slots.release()

    async def _once(self, payload: bytes, tries: list[HttpTry]) -> StediAnswer:
        unavailable_so_far = sum(1 for t in tries if t.http_status != 429)
        headers = {
            "Authorization": self._key.reveal(),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            async with self._http.session.post(self._url, data=payload, headers=headers) as resp:
                status = resp.status
                raw = await read_body(resp, self._http.config)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            # ClientPayloadError: the connection was reset mid-body; a try like any other connection error.
            tries.append(HttpTry(None, f"connection error ({type(exc).__name__})"))
            if unavailable_so_far + 1 >= self._max_unavailable:
                raise UpstreamUnavailable(self.name, f"connection error ({type(exc).__name__})") from exc
            raise
        except asyncio.CancelledError:
            tries.append(HttpTry(None, "no answer (attempt cancelled or timed out)"))
            raise
        except UpstreamUnavailable:
            tries.append(HttpTry(None, "oversized body"))
            raise
        return self._answer(status, raw, retry_after, tries, unavailable_so_far)

    def _answer(
        self, status: int, raw: bytes, retry_after: float | None, tries: list[HttpTry], unavailable_so_far: int
    ) -> StediAnswer:
        if status in ANSWER_STATUSES:
            body = self._parse(raw)
            if body is None:
                tries.append(HttpTry(status, "malformed body"))
                raise UpstreamUnavailable(self.name, f"{self.name} returned a malformed body (HTTP {status})")
            meta = body.get("meta")
            answer = StediAnswer(
                http_status=status,
                body=body,
                stedi_id=_upstream_id(body.get("id")),
                trace_id=_upstream_id(meta.get("traceId")) if isinstance(meta, Mapping) else None,
            )
            tries.append(HttpTry(status, None, answer.stedi_id, answer.trace_id, answer.aaa_codes))
            log.info(
                "stedi eligibility answer id=%s trace=%s http=%d aaa=%s",
                answer.stedi_id, answer.trace_id, status, ",".join(answer.aaa_codes) or "-",
            )
            return answer
        tries.append(HttpTry(status, f"HTTP {status}"))
        log.info("stedi eligibility call failed: http=%d", status)
        if status in (401, 403):
            log.error(
                "stedi refused our API key (HTTP %d): check COSTEST_STEDI_API_KEY (the key is not logged)", status
            )
            raise UpstreamAuthError(self.name, f"clearinghouse refused the API key (HTTP {status})")
        if status == 404:
            raise UpstreamNotFound(self.name)
        if status in RETRYABLE_STATUSES:
            if status != 429 and unavailable_so_far + 1 >= self._max_unavailable:
                raise UpstreamUnavailable(self.name, f"HTTP {status} (after {unavailable_so_far + 1} attempts)",
                                          retry_after=retry_after)
            raise TransientUpstreamError(f"HTTP {status}", status=status, retry_after=retry_after)
        raise UpstreamUnavailable(self.name, f"unexpected HTTP {status}")

    @staticmethod
    def _parse(raw: bytes) -> dict[str, Any] | None:
        try:
            body = parse_json(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None
