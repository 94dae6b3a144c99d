"""Per RPC: a request id, one access-log line, Prometheus metrics and (when tracing is on) a span. Never request
content: labels and fields are methods, status codes, tenants and outcomes, which carry no member data."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, Final, TypeVar

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from server.api.auth import current_tenant
from server.api.handler_wrap import Streaming, Unary, wrap_handler
from server.telemetry import request_ids
from server.telemetry.tracing import RpcSpan, Tracing

log = logging.getLogger("server.access")

_M = TypeVar("_M", bound="PerRegistry")
_CODE_VALUES: Final = {c.name: c.value[0] for c in grpc.StatusCode}


class PerRegistry:
    """Metrics created once per registry: several applications in one process (tests) share the global one."""

    _by_registry: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, Any]]

    def __init_subclass__(cls) -> None:
        cls._by_registry = weakref.WeakKeyDictionary()

    @classmethod
    def for_registry(cls: type[_M], registry: CollectorRegistry) -> _M:
        if registry not in cls._by_registry:
            cls._by_registry[registry] = cls(registry)
        metrics: _M = cls._by_registry[registry]
        return metrics

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry


class _Children:
    """`.labels()` hashes and locks on every call: the children are kept here (label values are few)."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class RpcMetrics(PerRegistry):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.handled = Counter("costestimator_grpc_handled", "RPCs completed, by method and status code",
                               ["method", "code"], registry=registry)
        self.latency = Histogram("costestimator_grpc_handling_seconds", "RPC duration, by method",
                                 ["method"], registry=registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.started = Counter("costestimator_grpc_started", "RPCs started, by method", ["method"], registry=registry)
        self.in_flight = Gauge("costestimator_grpc_in_flight", "RPCs being served now, by method", ["method"],
                               registry=registry)
        self.stream_messages = Counter("costestimator_grpc_stream_messages_sent",
                                       "Messages sent on server streams, by method", ["method"], registry=registry)
        self.handled_child = _Children(self.handled)
        self.latency_child = _Children(self.latency)
        self.started_child = _Children(self.started)
        self.in_flight_child = _Children(self.in_flight)
        self.stream_messages_child = _Children(self.stream_messages)


class ServiceMetrics(PerRegistry):
    """What the use cases report (through plain `inc()`/`set()` objects: they import no Prometheus)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.checks_completed = Counter(
            "costestimator_eligibility_checks_completed",
            "Eligibility checks that reached a final status (VERIFIED, NOT_FOUND, FAILED), by status",
            ["status"], registry=registry)
        self.pending = Gauge("costestimator_eligibility_pending",
                             "Eligibility checks PENDING in the database (sampled)", registry=registry)
        self.worker_lag = Gauge("costestimator_eligibility_worker_lag_seconds",
                                "How long the longest-waiting due eligibility check has waited for a worker, "
                                "0 when none waits (sampled)",
                                registry=registry)
        self.cache_lookups = Counter("costestimator_benefit_cache_lookups",
                                     "Benefit cache lookups, by result (hit, miss)", ["result"], registry=registry)
        self.cache_hits = self.cache_lookups.labels("hit")
        self.cache_misses = self.cache_lookups.labels("miss")

    def check_completed(self, status: str, count: int = 1) -> None:
        self.checks_completed.labels(status).inc(count)


def _code_of(context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> str:
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # some grpc versions report the raw number
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), str(code))
    return "UNKNOWN" if error is not None and not isinstance(error, grpc.aio.AbortError) else "OK"


def _tenant() -> str | None:
    try:
        return current_tenant()
    except RuntimeError:  # health checks, and calls refused before authentication
        return None


class _Call:
    """One RPC's bookkeeping: opened before the servicer runs, closed with its final status."""

    __slots__ = ("error", "method", "metrics", "request_id", "span", "started")

    def __init__(self, method: str, metrics: RpcMetrics, request_id: str, span: RpcSpan | None) -> None:
        self.method = method
        self.metrics = metrics
        self.request_id = request_id
        self.span = span
        self.error: BaseException | None = None
        metrics.started_child(method).inc()
        metrics.in_flight_child(method).inc()
        self.started = time.perf_counter()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((request_ids.METADATA_KEY, self.request_id),)

    def close(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        elapsed = time.perf_counter() - self.started
        method, metrics = self.method, self.metrics
        code = _code_of(context, self.error)
        metrics.in_flight_child(method).dec()
        metrics.handled_child(method, code).inc()
        metrics.latency_child(method).observe(elapsed)
        if self.span is not None:
            Tracing.end_rpc(self.span, code, _CODE_VALUES.get(code, 2))
        duration_ms = round(elapsed * 1000, 1)
        log.info("%s %s %.1fms", method, code, duration_ms,
                 extra={"method": method, "code": code, "duration_ms": duration_ms, "tenant": _tenant()})


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Outermost interceptor, so authentication failures are counted too, and the request id is bound before any
    other code of the RPC runs. The id goes back to the caller as `x-request-id`: in the trailing metadata of a
    unary call, in the initial metadata of a stream (before its first message) and in the trailers of any error."""

    TRACED_PREFIX: Final = "/costestimator."

    def __init__(self, metrics: RpcMetrics, tracing: Tracing | None = None) -> None:
        self._metrics = metrics
        self._tracing = tracing

    def _open(self, details: grpc.HandlerCallDetails) -> _Call:
        method = details.method
        metadata: Any = details.invocation_metadata
        request_id = request_ids.from_metadata(metadata)
        request_ids.bind(request_id)
        span = None
        if self._tracing is not None and method.startswith(self.TRACED_PREFIX):
            span = self._tracing.start_rpc(method, metadata, request_id)
        return _Call(method, self._metrics, request_id, span)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith("/grpc.reflection."):
            return handler
        def unary(inner: Unary) -> Unary:
            async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                call = self._open(handler_call_details)
                try:
                    # In the trailers: sending initial metadata of its own costs a unary call a separate write and
                    # flush (~50 µs of CPU, 5 % of an Estimate); the trailers go out with the answer or the error.
                    context.set_trailing_metadata(call.metadata())
                    return await inner(request, context)
                except BaseException as exc:
                    call.error = exc
                    raise
                finally:
                    call.close(context)

            return observed

        def stream(inner: Streaming) -> Streaming:
            sent = self._metrics.stream_messages_child(method)

            async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                call = self._open(handler_call_details)
                try:
                    await context.send_initial_metadata(call.metadata())
                    async for item in inner(request, context):
                        yield item
                        sent.inc()
                except BaseException as exc:
                    call.error = exc
                    raise
                finally:
                    call.close(context)

            return observed

        return wrap_handler(handler, unary=unary, stream=stream if method.startswith(self.TRACED_PREFIX) else None)
