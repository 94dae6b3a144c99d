"""One access-log line and Prometheus metrics per RPC: method, status code, duration. Never request content."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger("server.access")


class RpcMetrics:
    """Created once per registry: several applications in one process (tests) share the global one."""

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, RpcMetrics] = weakref.WeakKeyDictionary()

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> RpcMetrics:
        if registry not in cls._by_registry:
            cls._by_registry[registry] = cls(registry)
        return cls._by_registry[registry]

    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = Counter("costestimator_grpc_handled", "RPCs completed, by method and status code",
                               ["method", "code"], registry=registry)
        self.latency = Histogram("costestimator_grpc_handling_seconds", "RPC duration, by method",
                                 ["method"], registry=registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        # `.labels()` hashes and locks on every call: the children are kept here (methods and codes are few).
        self._handled: dict[tuple[str, str], Any] = {}
        self._latency: dict[str, Any] = {}

    def handled_child(self, method: str, code: str) -> Any:
        child = self._handled.get((method, code))
        if child is None:
            child = self._handled[(method, code)] = self.handled.labels(method, code)
        return child

    def latency_child(self, method: str) -> Any:
        child = self._latency.get(method)
        if child is None:
            child = self._latency[method] = self.latency.labels(method)
        return child


def _code_of(context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> str:
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # some grpc versions report the raw number
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), str(code))
    return "UNKNOWN" if error is not None and not isinstance(error, grpc.aio.AbortError) else "OK"


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Outermost interceptor, so authentication failures are counted too."""

    def __init__(self, metrics: RpcMetrics) -> None:
        self._metrics = metrics

    def _done(self, method: str, context: Any, started: float, error: BaseException | None) -> None:
        elapsed = time.perf_counter() - started
        code = _code_of(context, error)
        self._metrics.handled_child(method, code).inc()
        self._metrics.latency_child(method).observe(elapsed)
        log.info("%s %s %.1fms", method, code, elapsed * 1000)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith("/grpc.reflection."):
            return handler
        if handler.unary_unary is not None:
            inner: Any = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                started, error = time.perf_counter(), None
                try:
                    return await inner(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    self._done(method, context, started, error)

            return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer,
                                                       handler.response_serializer)
        if handler.unary_stream is not None and method.startswith("/costestimator."):
            inner_stream: Any = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                started, error = time.perf_counter(), None
                try:
                    async for item in inner_stream(request, context):
                        yield item
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    self._done(method, context, started, error)

            return grpc.unary_stream_rpc_method_handler(stream, handler.request_deserializer,
                                                        handler.response_serializer)
        return handler
