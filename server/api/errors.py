"""The one place that turns exceptions into gRPC status codes and rich error details.

Servicers raise; they never pick status codes. Per-provider statuses inside a stream use the same map
(`status_for`), so a provider's failure reads exactly like the RPC failure it would have been.
Messages here reach callers: they must never contain member ids, names or dates of birth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.api.validation import RequestInvalid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mapped:
    code: grpc.StatusCode
    message: str
    details: tuple[Any, ...] = ()


def _bad_request(violations: list[tuple[str, str]]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations]
    )


def _mappers() -> list[tuple[type[BaseException], Callable[[Any], Mapped]]]:
    """Most specific first. Imports are local so that every layer's error types live with their layer."""
    from server.clients import errors as ce
    from server.domain.errors import DomainError
    from server.usecases.eligibility import CheckNotFound, InvalidInquiry
    from server.usecases.estimates import MemberAccumulatorsMissing, NoMatchingBenefit
    from server.store.errors import StoreUnavailable
    from server.store.pagination import InvalidPageToken

    return [
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
        (ce.UpstreamError, lambda e: Mapped(grpc.StatusCode.UNAVAILABLE, e.message)),
        (StoreUnavailable, lambda e: Mapped(grpc.StatusCode.UNAVAILABLE, "store unavailable")),
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
            return mapper(exc)
    return Mapped(grpc.StatusCode.INTERNAL, "internal error")


def _status_proto(mapped: Mapped) -> status_pb2.Status:
    details = []
    for d in mapped.details:
        packed = any_pb2.Any()
        packed.Pack(d)
        details.append(packed)
    return status_pb2.Status(code=mapped.code.value[0], message=mapped.message, details=details)


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


def _wrap_unary(behavior: Unary) -> Unary:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - this IS the one place that maps every error
            await abort_for(exc, context)

    return wrapped


def _wrap_stream(behavior: Streaming) -> Streaming:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            async for item in behavior(request, context):
                yield item
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001
            await abort_for(exc, context)

    return wrapped


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps our own RPCs (package costestimator.v1) so any exception becomes the right status."""

    PREFIX = "/costestimator.v1."

    def __init__(self) -> None:
        _table()  # import every layer's error types now, not during the first failing call

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(self.PREFIX):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary),  # type: ignore[arg-type]
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream),  # type: ignore[arg-type]
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
