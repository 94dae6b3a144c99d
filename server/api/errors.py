"""The one place that turns exceptions into gRPC status codes and rich error details.

Servicers raise; they never pick status codes. Per-provider statuses inside a stream use the same map
(`status_for`), so a provider's failure reads exactly like the RPC failure it would have been.
Messages here reach callers: they must never contain member ids, names or dates of birth.
Every answer stays small whatever the request: at most `MAX_VIOLATIONS` field violations (plus one "and N more"),
bounded texts, and a status that never grows past `MAX_STATUS_BYTES` (a default client reads trailers up to 8 KiB).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.api.request_limits import RequestLimits
from server.api.validation import RequestInvalid

log = logging.getLogger(__name__)

MAX_VIOLATIONS: Final = 20
MAX_TEXT: Final = 200  # characters of a message, a field path or a description
MAX_STATUS_BYTES: Final = 6 * 1024


@dataclass(frozen=True)
class Mapped:
    code: grpc.StatusCode
    message: str
    details: tuple[Any, ...] = ()


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


ERROR_DOMAIN: Final = "costestimator.v1"


def _estimate_refused(e: Any) -> Mapped:
    """EstimateFromEligibility refusals (estimate-from-eligibility.md §3): the status the exception names, with
    google.rpc.ErrorInfo (reason, domain, metadata.check_id when a check exists)."""
    info = error_details_pb2.ErrorInfo(reason=e.reason, domain=ERROR_DOMAIN, metadata=e.metadata)
    return Mapped(grpc.StatusCode[e.status], e.message, (info,))


def _mappers() -> list[tuple[type[BaseException], Callable[[Any], Mapped]]]:
    """Most specific first. Imports are local so that every layer's error types live with their layer."""
    from server.clients import errors as ce
    from server.usecases.eligibility_estimates import EstimateRefused
    from server.domain.errors import DomainError
    from server.usecases.eligibility import CheckNotFound, InvalidInquiry
    from server.usecases.estimates import MemberAccumulatorsMissing, NoMatchingBenefit
    from server.store.errors import SealedDataError, StoreUnavailable
    from server.store.pagination import InvalidPageToken

    return [
        (EstimateRefused, _estimate_refused),
        (MalformedRequestError, lambda e: Mapped(
            grpc.StatusCode.INVALID_ARGUMENT, "malformed request: the body is not a valid protobuf message",
            (_bad_request([("request", "cannot be parsed as the RPC's request message")]),))),
        (RequestInvalid, lambda e: Mapped(grpc.StatusCode.INVALID_ARGUMENT, e.message,
                                          (_bad_request([(v.field, v.description) for v in e.violations]),))),
        (DomainError, lambda e: Mapped(grpc.StatusCode.INVALID_ARGUMENT, str(e),
                                       (_bad_request([(e.field or "request", e.message)]),))),
        (InvalidInquiry, lambda e: Mapped(grpc.StatusCode.INVALID_ARGUMENT, "invalid request",
                                          (_bad_request([(v.field, v.description) for v in e.violations]),))),
        (CheckNotFound, lambda e: Mapped(grpc.StatusCode.NOT_FOUND, "eligibility check not found")),
        (NoMatchingBenefit, lambda e: Mapped(grpc.StatusCode.NOT_FOUND, str(e))),
        (MemberAccumulatorsMissing, lambda e: Mapped(grpc.StatusCode.FAILED_PRECONDITION, str(e))),
        (InvalidPageToken, lambda e: Mapped(grpc.StatusCode.INVALID_ARGUMENT, "invalid page_token",
                                            (_bad_request([("page_token", str(e))]),))),
        (ce.MemberNotFound, lambda e: Mapped(grpc.StatusCode.NOT_FOUND, e.message)),
        (ce.UpstreamNotFound, lambda e: Mapped(grpc.StatusCode.NOT_FOUND, e.message)),
        (ce.UpstreamDeadlineExceeded, lambda e: Mapped(grpc.StatusCode.DEADLINE_EXCEEDED, e.message)),
        # An upstream 400 means the request content was refused; other 4xx are state (e.g. 409, 422).
        (ce.UpstreamRejected, lambda e: Mapped(
            grpc.StatusCode.INVALID_ARGUMENT if e.status == 400 else grpc.StatusCode.FAILED_PRECONDITION, e.message)),
        (ce.CircuitOpen, lambda e: Mapped(
            grpc.StatusCode.UNAVAILABLE, e.message,
            (_retry_info(e.retry_after),) if e.retry_after is not None else ())),
        (ce.LocalPoolExhausted, lambda e: Mapped(grpc.StatusCode.RESOURCE_EXHAUSTED, e.message)),
        (ce.UpstreamError, lambda e: Mapped(grpc.StatusCode.UNAVAILABLE, e.message)),
        (StoreUnavailable, lambda e: Mapped(grpc.StatusCode.UNAVAILABLE, "store unavailable")),
        # The stored check exists but cannot be opened with the configured data keys (operator problem, logged
        # with table/column/check id by the store): say so plainly instead of a generic INTERNAL.
        (SealedDataError, lambda e: Mapped(
            grpc.StatusCode.DATA_LOSS, "stored eligibility data cannot be decrypted with the configured data keys")),
        (TimeoutError, lambda e: Mapped(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")),
    ]


_MAP: list[tuple[type[BaseException], Callable[[Any], Mapped]]] | None = None


def _table() -> list[tuple[type[BaseException], Callable[[Any], Mapped]]]:
    global _MAP
    if _MAP is None:
        _MAP = _mappers()
    return _MAP


def map_exception(exc: BaseException) -> Mapped:
    for exc_type, mapper in _table():
        if isinstance(exc, exc_type):
            return _with_retry_info(exc, mapper(exc))
    return Mapped(grpc.StatusCode.INTERNAL, "internal error")


def _open_circuit_behind(exc: BaseException) -> Any:
    """The CircuitOpen this failure stems from (its __cause__/__context__ chain), if any."""
    from server.clients.errors import CircuitOpen

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CircuitOpen):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _with_retry_info(exc: BaseException, mapped: Mapped) -> Mapped:
    """A failure caused by an open breaker (e.g. a synchronous eligibility check) says when to retry."""
    if mapped.code is not grpc.StatusCode.UNAVAILABLE:
        return mapped
    if any(isinstance(d, error_details_pb2.RetryInfo) for d in mapped.details):
        return mapped
    circuit = _open_circuit_behind(exc)
    if circuit is None or circuit.retry_after is None:
        return mapped
    return Mapped(mapped.code, mapped.message, (*mapped.details, _retry_info(circuit.retry_after)))


def _status_proto(mapped: Mapped) -> status_pb2.Status:
    details = []
    for d in mapped.details:
        packed = any_pb2.Any()
        packed.Pack(d)
        details.append(packed)
    status = status_pb2.Status(code=mapped.code.value[0], message=_clip(mapped.message), details=details)
    if status.ByteSize() > MAX_STATUS_BYTES:  # belt and braces: every detail is bounded already
        del status.details[:]
    return status


def status_for(exc: BaseException | None) -> status_pb2.Status:
    """A google.rpc.Status for one item of a multi-result answer (OK when exc is None)."""
    if exc is None:
        return status_pb2.Status(code=code_pb2.OK)
    mapped = map_exception(exc)
    _log_unexpected(exc, mapped)
    return _status_proto(mapped)


def _log_unexpected(exc: BaseException, mapped: Mapped) -> None:
    if mapped.code is grpc.StatusCode.INTERNAL:
        # Type and traceback only: exception messages could carry request data.
        log.error("unhandled %s", type(exc).__name__, exc_info=(type(exc), exc, exc.__traceback__))


async def abort_for(exc: BaseException, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    mapped = map_exception(exc)
    _log_unexpected(exc, mapped)
    await context.abort_with_status(rpc_status.to_status(_status_proto(mapped)))


Unary = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
Streaming = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]


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
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, self._limits),  # type: ignore[arg-type]
                request_deserializer=_safe_deserializer(handler.request_deserializer, method),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, self._limits),  # type: ignore[arg-type]
                request_deserializer=_safe_deserializer(handler.request_deserializer, method),
                response_serializer=handler.response_serializer,
            )
        return handler
