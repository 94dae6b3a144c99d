"""The one place that turns exceptions into gRPC status codes and rich error details.

Servicers raise; they never pick status codes. Per-provider statuses inside a stream use the same map
(`status_for`), so a provider's failure reads exactly like the RPC failure it would have been.
Every non-OK status carries a `google.rpc.ErrorInfo` (domain `costestimator.v1`, a stable reason from `REASONS`,
metadata such as check_id / provider_id / upstream) and, where retrying later makes sense and the time is known,
a `google.rpc.RetryInfo`. An exception declares its reason with a `reason` attribute (and `error_metadata`); the
exceptions of layers that do not are listed in `_mappers`.
Messages here reach callers: they must never contain member ids, names or dates of birth.
Every answer stays small whatever the request: at most `MAX_VIOLATIONS` field violations (plus one "and N more"),
bounded texts, and a status that never grows past `MAX_STATUS_BYTES` (a default client reads trailers up to 8 KiB).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.api.handler_wrap import Streaming, Unary, wrap_handler
from server.api.request_limits import RequestLimits
from server.api.validation import RequestInvalid
from server.telemetry import request_ids

log = logging.getLogger(__name__)

MAX_VIOLATIONS: Final = 20
MAX_TEXT: Final = 200  # characters of a message, a field path or a description
MAX_STATUS_BYTES: Final = 6 * 1024


DOMAIN: Final = "costestimator.v1"  # google.rpc.ErrorInfo.domain of every error we raise


@dataclass(frozen=True)
class Reason:
    """One stable `google.rpc.ErrorInfo.reason`: the status code it always comes with, and what it means."""

    code: grpc.StatusCode
    meaning: str
    # Other codes the same reason may come with, where a spec fixes the pair (estimate-from-eligibility.md §3: a
    # member not found refuses an estimate with FAILED_PRECONDITION; an inquiry still pending at the caller's
    # deadline is DEADLINE_EXCEEDED). Listed in the README next to the main code.
    also: tuple[grpc.StatusCode, ...] = ()


_C = grpc.StatusCode
# The catalogue: every reason a caller can receive (the README's table is checked against it). A reason never
# changes its code; new failures get new reasons. Metadata keys used: check_id, provider_id, upstream, circuit,
# failure_reason (a machine code, never payer text), field — never member data.
REASONS: Final[dict[str, Reason]] = {
    "INVALID_REQUEST": Reason(_C.INVALID_ARGUMENT, "a request field breaks the contract; BadRequest names each one"),
    "MALFORMED_REQUEST": Reason(_C.INVALID_ARGUMENT, "the request bytes do not parse as the RPC's message"),
    "INVALID_PAGE_TOKEN": Reason(_C.INVALID_ARGUMENT, "page_token is not one this server issued for these filters"),
    "INVALID_INPUT": Reason(_C.INVALID_ARGUMENT,
                            "the rule book refuses an input of the calculation (of the request or of the payer's "
                            "benefit); metadata `field`"),
    "UPSTREAM_REJECTED_REQUEST": Reason(_C.INVALID_ARGUMENT, "the upstream refused the request's content (HTTP 400)"),
    "UNAUTHENTICATED": Reason(_C.UNAUTHENTICATED, "missing, invalid or expired bearer token"),
    "TENANT_MISSING": Reason(_C.PERMISSION_DENIED, "a valid token without the tenant claim"),
    "MEMBER_NOT_FOUND": Reason(_C.NOT_FOUND, "the payer has no active coverage for the member (EstimateFromEligibility: "
                                             "FAILED_PRECONDITION, metadata `check_id`)", (_C.FAILED_PRECONDITION,)),
    "CHECK_NOT_FOUND": Reason(_C.NOT_FOUND, "no eligibility check with this id for the caller's tenant"),
    "NO_MATCHING_BENEFIT": Reason(_C.NOT_FOUND, "no benefit of the payer's answer fits this provider"),
    "UPSTREAM_NOT_FOUND": Reason(_C.NOT_FOUND, "the upstream answered HTTP 404"),
    "UNKNOWN_PAYER": Reason(_C.FAILED_PRECONDITION,
                            "the clearinghouse does not know the payer id (AAA 79 under HTTP 400); the check is "
                            "stored FAILED; do not retry"),
    "CHECK_REJECTED": Reason(_C.FAILED_PRECONDITION,
                             "the payer or clearinghouse refused the inquiry itself (provider, request or validation "
                             "AAA codes); the check is stored FAILED; do not retry unchanged"),
    "ACCUMULATORS_MISSING": Reason(_C.FAILED_PRECONDITION, "the accumulators answer has no entry for the member"),
    "UPSTREAM_REFUSED": Reason(_C.FAILED_PRECONDITION, "the upstream refused the request's state (HTTP 4xx other than 400)"),
    "LOCAL_POOL_EXHAUSTED": Reason(_C.RESOURCE_EXHAUSTED, "no free local connection to the upstream in time"),
    "UPSTREAM_UNAVAILABLE": Reason(_C.UNAVAILABLE,
                                   "the upstream failed (5xx, 429, timeouts, connection) after its retries; "
                                   "RetryInfo when it sent Retry-After"),
    "UPSTREAM_AUTH_FAILED": Reason(_C.UNAVAILABLE, "we could not authenticate to the upstream (our configuration)"),
    "CIRCUIT_OPEN": Reason(_C.UNAVAILABLE, "the upstream's circuit breaker is open; RetryInfo: when it lets a "
                                           "probe through"),
    "PAYER_UNAVAILABLE": Reason(_C.UNAVAILABLE, "the payer could not respond (AAA 42/80) within the retry budget; "
                                                "the check is stored FAILED"),
    "STORE_UNAVAILABLE": Reason(_C.UNAVAILABLE, "the database did not answer in time"),
    "CHECK_DEFERRED": Reason(_C.DEADLINE_EXCEEDED,
                             "the deadline (the caller's, or COSTEST_UPSTREAM_DEFAULT_DEADLINE_SECONDS) ran out; the "
                             "check goes on in the background: GetEligibilityCheck / WatchEligibilityCheck `check_id`"),
    "UPSTREAM_DEADLINE_EXCEEDED": Reason(_C.DEADLINE_EXCEEDED, "the deadline ran out before the upstream answered"),
    "DEADLINE_EXCEEDED": Reason(_C.DEADLINE_EXCEEDED, "the deadline ran out"),
    # EstimateFromEligibility refusals (estimate-from-eligibility.md §3), metadata `check_id` where a check exists
    "CHECK_PENDING": Reason(_C.FAILED_PRECONDITION,
                            "the check is still PENDING: estimate once it is VERIFIED (an inquiry run now that is still "
                            "running at the caller's deadline: DEADLINE_EXCEEDED, it goes on in the background)",
                            (_C.DEADLINE_EXCEEDED,)),
    "CHECK_EXPIRED": Reason(_C.FAILED_PRECONDITION, "the check is too old to estimate from: run a new one"),
    "CHECK_FAILED": Reason(_C.FAILED_PRECONDITION, "the check ended FAILED: there is no 271 to estimate from"),
    "COVERAGE_INACTIVE": Reason(_C.FAILED_PRECONDITION,
                                "the 271 says the coverage is not active on the date of service"),
    "COVERAGE_STATUS_UNCLEAR": Reason(_C.FAILED_PRECONDITION,
                                      "the 271 does not say clearly whether the coverage is active"),
    "CLEARINGHOUSE_UNAVAILABLE": Reason(_C.UNAVAILABLE,
                                        "the inquiry run now failed on clearinghouse trouble (429, 5xx, timeouts)"),
    "DATA_UNREADABLE": Reason(_C.DATA_LOSS, "a stored check cannot be decrypted with the configured data keys"),
    "INTERNAL": Reason(_C.INTERNAL, "a bug (logged with its traceback)"),
}


@dataclass(frozen=True)
class Mapped:
    """A status to answer: code and message, detail messages (BadRequest, RetryInfo), and the ErrorInfo parts."""

    code: grpc.StatusCode
    message: str
    details: tuple[Any, ...] = ()
    reason: str = "INTERNAL"
    metadata: tuple[tuple[str, str], ...] = ()


def _m(reason: str, message: str, *details: Any, metadata: Mapping[str, str | None] | None = None) -> Mapped:
    """A Mapped for a catalogue reason: the code comes from the catalogue, so a reason never changes its code."""
    pairs = tuple((k, _clip(v, 100)) for k, v in (metadata or {}).items() if v)
    return Mapped(REASONS[reason].code, message, details, reason, pairs)


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bad_request(violations: Sequence[tuple[str, str]]) -> error_details_pb2.BadRequest:
    """The first MAX_VIOLATIONS violations, then one entry that counts the rest."""
    shown = [error_details_pb2.BadRequest.FieldViolation(field=_clip(f), description=_clip(d))
             for f, d in violations[:MAX_VIOLATIONS]]
    if len(violations) > MAX_VIOLATIONS:
        shown.append(error_details_pb2.BadRequest.FieldViolation(
            field="request", description=f"and {len(violations) - MAX_VIOLATIONS} more violations"))
    return error_details_pb2.BadRequest(field_violations=shown)


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(max(0, int(seconds * 1e9)))
    return error_details_pb2.RetryInfo(retry_delay=delay)


class MalformedRequest:
    """What a handler receives instead of a message when the request bytes do not parse (→ INVALID_ARGUMENT)."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class MalformedRequestError(Exception):
    pass


def _declared(exc: BaseException) -> Mapped | None:
    """The general mechanism: an exception that declares a catalogue `reason` (class attribute or field) and,
    optionally, `error_metadata` (a mapping of str to str, never member data) maps itself; its message is
    `message` or str(exc). Violations (`violations` of (field, description)) become a BadRequest."""
    reason = getattr(exc, "reason", None)
    if not isinstance(reason, str) or reason not in REASONS:
        return None
    metadata = getattr(exc, "error_metadata", None)
    message = getattr(exc, "message", None)
    violations = getattr(exc, "violations", None)
    details: tuple[Any, ...] = ()
    if violations:
        details = (_bad_request([(v.field, v.description) for v in violations]),)
    mapped = _m(reason, message if isinstance(message, str) else str(exc), *details,
                metadata=metadata if isinstance(metadata, Mapping) else None)
    status = getattr(exc, "status", None)  # one of the reason's other codes (`Reason.also`), when it names one
    if isinstance(status, str) and status in grpc.StatusCode.__members__:
        code = grpc.StatusCode[status]
        if code in REASONS[reason].also:
            mapped = replace(mapped, code=code)
    return mapped


def _mappers() -> list[tuple[type[BaseException], Callable[[Any], Mapped]]]:
    """Exceptions of other layers that do not declare a reason; most specific first. Imports are local so that
    every layer's error types live with their layer."""
    from server.domain.errors import DomainError
    from server.usecases.eligibility import CheckNotFound, InvalidInquiry
    from server.usecases.estimates import MemberAccumulatorsMissing, NoMatchingBenefit
    from server.store.errors import SealedDataError, StoreUnavailable
    from server.store.pagination import InvalidPageToken

    return [
        (MalformedRequestError, lambda e: _m(
            "MALFORMED_REQUEST", "malformed request: the body is not a valid protobuf message",
            _bad_request([("request", "cannot be parsed as the RPC's request message")]))),
        (RequestInvalid, lambda e: _m("INVALID_REQUEST", e.message,
                                      _bad_request([(v.field, v.description) for v in e.violations]))),
        (DomainError, lambda e: _m("INVALID_INPUT", str(e), _bad_request([(e.field or "request", e.message)]),
                                   metadata={"field": e.field})),
        (InvalidInquiry, lambda e: _m("INVALID_REQUEST", "invalid request",
                                      _bad_request([(v.field, v.description) for v in e.violations]))),
        (CheckNotFound, lambda e: _m("CHECK_NOT_FOUND", "eligibility check not found")),
        (NoMatchingBenefit, lambda e: _m("NO_MATCHING_BENEFIT", str(e))),
        (MemberAccumulatorsMissing, lambda e: _m("ACCUMULATORS_MISSING", str(e), metadata={"upstream": "accumulators"})),
        (InvalidPageToken, lambda e: _m("INVALID_PAGE_TOKEN", "invalid page_token",
                                        _bad_request([("page_token", str(e))]))),
        (StoreUnavailable, lambda e: _m("STORE_UNAVAILABLE", "store unavailable")),
        # The stored check exists but cannot be opened with the configured data keys (operator problem, logged
        # with table/column/check id by the store): say so plainly instead of a generic INTERNAL.
        (SealedDataError, lambda e: _m(
            "DATA_UNREADABLE", "stored eligibility data cannot be decrypted with the configured data keys")),
        (TimeoutError, lambda e: _m("DEADLINE_EXCEEDED", "deadline exceeded")),
    ]


_MAP: list[tuple[type[BaseException], Callable[[Any], Mapped]]] | None = None


def _table() -> list[tuple[type[BaseException], Callable[[Any], Mapped]]]:
    global _MAP
    if _MAP is None:
        _MAP = _mappers()
    return _MAP


def map_exception(exc: BaseException) -> Mapped:
    mapped = _declared(exc)
    if mapped is None:
        mapped = next((mapper(exc) for exc_type, mapper in _table() if isinstance(exc, exc_type)), None)
    if mapped is None:
        return _m("INTERNAL", "internal error")
    return _with_retry_info(exc, mapped)


def _retry_after_behind(exc: BaseException) -> float | None:
    """The first known `retry_after` (an open breaker's time left, an upstream's Retry-After) along the failure's
    __cause__/__context__ chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        retry_after = getattr(current, "retry_after", None)
        if isinstance(retry_after, (int, float)) and not isinstance(retry_after, bool):
            return float(retry_after)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _with_retry_info(exc: BaseException, mapped: Mapped) -> Mapped:
    """Wherever retrying later makes sense (UNAVAILABLE) and the time is known, say when (google.rpc.RetryInfo)."""
    if mapped.code is not grpc.StatusCode.UNAVAILABLE:
        return mapped
    if any(isinstance(d, error_details_pb2.RetryInfo) for d in mapped.details):
        return mapped
    retry_after = _retry_after_behind(exc)
    if retry_after is None:
        return mapped
    return dataclasses.replace(mapped, details=(*mapped.details, _retry_info(retry_after)))


def error_info(mapped: Mapped, **extra: str) -> error_details_pb2.ErrorInfo:
    """The google.rpc.ErrorInfo of a mapped failure (with `extra` metadata, e.g. the provider of a stream item)."""
    info = error_details_pb2.ErrorInfo(reason=mapped.reason, domain=DOMAIN)
    for key, value in (*mapped.metadata, *extra.items()):
        info.metadata[key] = _clip(value, 100)
    return info


def _status_proto(mapped: Mapped, **extra: str) -> status_pb2.Status:
    details = []
    for d in (*mapped.details, error_info(mapped, **extra)):  # ErrorInfo last: details[0] stays what it was
        packed = any_pb2.Any()
        packed.Pack(d)
        details.append(packed)
    status = status_pb2.Status(code=mapped.code.value[0], message=_clip(mapped.message), details=details)
    if status.ByteSize() > MAX_STATUS_BYTES:  # belt and braces: every detail is bounded already
        del status.details[:-1]  # the ErrorInfo (bounded) stays
    return status


def status_for(exc: BaseException | None, *, provider_id: str | None = None) -> status_pb2.Status:
    """A google.rpc.Status for one item of a multi-result answer (OK when exc is None); `provider_id` names the
    item in the ErrorInfo metadata."""
    if exc is None:
        return status_pb2.Status(code=code_pb2.OK)
    mapped = map_exception(exc)
    _log_unexpected(exc, mapped)
    return _status_proto(mapped, **({"provider_id": provider_id} if provider_id else {}))


async def _abort(context: grpc.aio.ServicerContext[Any, Any], proto: status_pb2.Status) -> None:
    """End the call with `proto` (code, message, details as `grpc-status-details-bin`) and the request id: the
    trailers given to an abort replace any set before, so the id is added here (see observability.py)."""
    status = rpc_status.to_status(proto)
    await context.abort(status.code, status.details, (*status.trailing_metadata, *request_ids.as_metadata()))


async def abort_with_reason(context: grpc.aio.ServicerContext[Any, Any], reason: str, message: str) -> None:
    """Refuse a call outside the servicers (e.g. the auth interceptor) with a catalogue reason and its ErrorInfo."""
    await _abort(context, _status_proto(_m(reason, message)))


def _log_unexpected(exc: BaseException, mapped: Mapped) -> None:
    if mapped.code is grpc.StatusCode.INTERNAL:
        # Type and traceback; the formatter withholds messages other than our own (they could carry request data).
        log.error("unhandled %s", type(exc).__name__, exc_info=(type(exc), exc, exc.__traceback__))


async def abort_for(exc: BaseException, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    mapped = map_exception(exc)
    _log_unexpected(exc, mapped)
    await _abort(context, _status_proto(mapped))


def _admit(request: Any, limits: RequestLimits) -> None:
    """Before any servicer code: refuse unparsable bytes and anything over the request limits."""
    if isinstance(request, MalformedRequest):
        raise MalformedRequestError()
    if isinstance(request, Message):
        limits.check(request)


def _wrap_unary(behavior: Unary, limits: RequestLimits) -> Unary:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            _admit(request, limits)
            return await behavior(request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - this IS the one place that maps every error
            await abort_for(exc, context)

    return wrapped


def _wrap_stream(behavior: Streaming, limits: RequestLimits) -> Streaming:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            _admit(request, limits)
            async for item in behavior(request, context):
                yield item
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001
            await abort_for(exc, context)

    return wrapped


class _MalformedLog:
    """At most one warning line per interval about unparsable requests (a flood of them must not flood the log)."""

    def __init__(self, interval: float = 60.0) -> None:
        self._interval = interval
        self._next = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()

    def note(self, method: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._next = self._suppressed, 0, now + self._interval
        log.warning("malformed request body on %s refused with INVALID_ARGUMENT (%d more since the last such line)",
                    method, suppressed)


_malformed_log = _MalformedLog()


def _safe_deserializer(deserializer: Callable[[bytes], Any] | None, method: str) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 - DecodeError, or upb's recursion-depth refusal: the bytes are bad
            _malformed_log.note(method)
            return MalformedRequest(len(data))

    return parse


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps our own RPCs (package costestimator.v1) so any exception becomes the right status.

    It also parses the request bytes safely (malformed → INVALID_ARGUMENT, not UNKNOWN with a traceback) and applies
    `RequestLimits` before the servicer runs.
    """

    PREFIX = "/costestimator.v1."

    def __init__(self, limits: RequestLimits | None = None) -> None:
        _table()  # import every layer's error types now, not during the first failing call
        self._limits = limits or RequestLimits()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(self.PREFIX):
            return handler
        method, limits = handler_call_details.method, self._limits
        return wrap_handler(
            handler,
            unary=lambda inner: _wrap_unary(inner, limits),
            stream=lambda inner: _wrap_stream(inner, limits),
            deserializer=lambda parse: _safe_deserializer(parse, method),
        )
