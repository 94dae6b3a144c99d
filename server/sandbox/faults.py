"""Injectable faults shared by every stand-in upstream (payer, Stedi…).

A test scripts what the next requests on a route should see, then asserts on the counters:

    plan.script("/benefits/v3/retrieve", Fault(status=500), Fault(status=503, retry_after="1"))
    plan.set_latency(0.5)                      # every route, applied cancellably
    plan.reset_next("/benefits/v3/retrieve")   # close the connection without an answer
    plan.truncate_next(route)                  # headers and part of the body, then a reset (mid-body)
    plan.malformed_next("/benefits/v3/retrieve")
    plan.expire_tokens()                       # payer: every token issued so far answers 401
    plan.seen["/benefits/v3/retrieve"], plan.cancelled["/benefits/v3/retrieve"]

Every handler starts with `if (r := await faults.apply(request)) is not None: return r`.
Routes are the resource's path pattern (e.g. "/benefits/v3/retrieve"); "*" scripts any route.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["ANY_ROUTE", "Fault", "FaultPlan", "route_key"]

ANY_ROUTE = "*"
MALFORMED_BODY = b'{"serviceInfo": [{"benefit": [ {"benefitName": "trunc'


@dataclass(frozen=True)
class Fault:
    """One scripted answer. `status=None` lets the real handler answer (after `delay`)."""

    status: int | None = 500
    body: bytes | str | None = None
    retry_after: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    reset: bool = False  # close the connection without any response
    truncate: bool = False  # send the status line, headers and part of the body, then reset the connection
    malformed: bool = False  # 200 with a truncated JSON body
    content_type: str = "application/json"


def route_key(request: web.Request) -> str:
    """The route's path pattern, so `/x/{id}` routes count together; falls back to the path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


@dataclass
class FaultPlan:
    """Per-test fault script and request counters. Not thread-safe; one event loop."""

    default_latency: float = 0.0
    latency: dict[str, float] = field(default_factory=dict)
    seen: Counter[str] = field(default_factory=Counter)
    cancelled: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)
    _scripts: dict[str, deque[Fault]] = field(default_factory=dict, repr=False)
    tokens_revoked_before: float | None = None

    # ---- scripting -------------------------------------------------------------------------

    def script(self, route: str, *faults: Fault) -> None:
        """Queue answers for the next requests on `route` (in order), then normal service resumes."""
        self._scripts.setdefault(route, deque()).extend(faults)

    def fail_next(
        self,
        route: str,
        status: int,
        *,
        count: int = 1,
        body: bytes | str | None = None,
        retry_after: str | None = None,
    ) -> None:
        self.script(route, *[Fault(status=status, body=body, retry_after=retry_after)] * count)

    def reset_next(self, route: str, count: int = 1) -> None:
        self.script(route, *[Fault(status=None, reset=True)] * count)

    def truncate_next(self, route: str, count: int = 1) -> None:
        """Answer 200 with a Content-Length the body never reaches, then reset: a reset mid-body."""
        self.script(route, *[Fault(status=200, truncate=True)] * count)

    def malformed_next(self, route: str, count: int = 1) -> None:
        self.script(route, *[Fault(status=200, malformed=True)] * count)

    def set_latency(self, seconds: float, route: str | None = None) -> None:
        """Added before every answer on `route` (or every route); a cancelled request stops waiting."""
        if route is None:
            self.default_latency = seconds
        else:
            self.latency[route] = seconds

    def expire_tokens(self) -> None:
        """Every token issued until now is refused (401) from now on; new tokens work."""
        self.tokens_revoked_before = time.monotonic()

    def token_revoked(self, issued_at: float) -> bool:
        return self.tokens_revoked_before is not None and issued_at <= self.tokens_revoked_before

    def pending(self, route: str) -> int:
        return len(self._scripts.get(route, ()))

    def reset(self) -> None:
        """Forget scripts, latency, revocations and counters."""
        self._scripts.clear()
        self.latency.clear()
        self.default_latency = 0.0
        self.tokens_revoked_before = None
        self.seen.clear()
        self.cancelled.clear()
        self.in_flight.clear()

    # ---- serving ---------------------------------------------------------------------------

    def _next_fault(self, route: str) -> Fault | None:
        for key in (route, ANY_ROUTE):
            queue = self._scripts.get(key)
            if queue:
                return queue.popleft()
        return None

    async def apply(self, request: web.Request) -> web.StreamResponse | None:
        """Count the request, apply latency and the next scripted fault.

        Returns the response to send, or None when the real handler should answer. A request the
        client abandons during the latency is counted in `cancelled` (needs the server to run with
        `handler_cancellation=True`).
        """
        route = route_key(request)
        self.seen[route] += 1
        fault = self._next_fault(route)
        delay = self.latency.get(route, self.default_latency) + (fault.delay if fault else 0.0)
        if delay > 0:
            self.in_flight[route] += 1
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                self.cancelled[route] += 1
                raise
            finally:
                self.in_flight[route] -= 1
        if fault is None or fault.status is None and not fault.reset:
            return None
        if fault.reset:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing will be written on an aborted connection
        assert fault.status is not None
        if fault.truncate:
            partial = web.StreamResponse(status=fault.status, headers={"Content-Length": "4096"})
            partial.content_type = fault.content_type
            await partial.prepare(request)
            await partial.write(b'{"partial": "')
            await asyncio.sleep(0.01)  # let the bytes leave before the reset
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        if fault.malformed:
            body: bytes = MALFORMED_BODY
        elif fault.body is None:
            body = b'{"httpCode": "%d", "httpMessage": "Injected fault"}' % fault.status
        else:
            body = fault.body.encode() if isinstance(fault.body, str) else fault.body
        return web.Response(status=fault.status, body=body, headers=headers, content_type=fault.content_type)
