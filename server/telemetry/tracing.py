"""OpenTelemetry tracing: one span per RPC and one per upstream HTTP attempt, never carrying member data.

Off by default (`COSTEST_TRACING=false`): then no `Tracing` exists, no span is made and HTTP sessions get no trace
hook, so it costs nothing. On: spans go to an OTLP/gRPC exporter configured by the standard variables
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME`, …).

Why our own server interceptor and aiohttp `TraceConfig` rather than the contrib instrumentations: the RPC span must
end with the status the caller got, which only exists after our error map has run (a drop-in interceptor records a
mapped error as OK), and an upstream URL carries member ids in its query (and could in its path), which must be
redacted before it becomes an attribute; exception messages are never recorded (they may quote a URL), only types.
Only the W3C `traceparent` is read from callers and sent upstream; baggage (arbitrary caller data) is not forwarded.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import aiohttp
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from yarl import URL

if TYPE_CHECKING:  # the SDK is imported only when tracing is on
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["PLACEHOLDER", "Tracing", "UrlRedactor"]

PLACEHOLDER: Final = "{}"
DEFAULT_SERVICE_NAME: Final = "costestimator"
_PROPAGATOR: Final = TraceContextTextMapPropagator()


class UrlRedactor:
    """Upstream URLs as route templates: a path segment is kept only when it is a segment of a configured route
    (everything else, such as an id in the path, becomes `{}`); query values always become `{}`, keys stay;
    user info and fragments are dropped. So `/accumulators/v1/read?membershipId=5~1…&planIdentifier=3~` reads
    `/accumulators/v1/read?membershipId={}&planIdentifier={}`."""

    def __init__(self, routes: Iterable[str]) -> None:
        self._segments = frozenset(s for route in routes for s in urlsplit(route).path.split("/") if s)

    def path(self, url: URL) -> str:
        return "/".join(s if not s or s in self._segments else PLACEHOLDER for s in url.raw_path.split("/"))

    def full(self, url: URL) -> str:
        query = "&".join(f"{key}={PLACEHOLDER}" for key in url.query)
        origin = f"{url.scheme}://{url.raw_host}" + (f":{url.explicit_port}" if url.explicit_port else "")
        return origin + self.path(url) + (f"?{query}" if query else "")


@dataclass(frozen=True)
class RpcSpan:
    """An RPC's span and the context token that made it current (detached when the RPC ends)."""

    span: Span
    token: object


class Tracing:
    """The tracer provider of one application; `close()` flushes and stops it.

    The provider is not made the process-global one: several applications (tests) each keep their own.
    """

    def __init__(self, exporter: SpanExporter, *, batch: bool = True, service_name: str | None = None) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        name = service_name or os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
        self.provider = TracerProvider(resource=Resource.create({"service.name": name}), shutdown_on_exit=False)
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("server")

    @classmethod
    def otlp(cls) -> Tracing:
        """Spans to OTLP over gRPC, configured by the OTEL_EXPORTER_OTLP_* variables."""
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return cls(OTLPSpanExporter())

    async def close(self) -> None:
        """Flush and stop, in a thread: a final export to an unreachable collector must not block the loop."""
        await asyncio.to_thread(self.provider.shutdown)

    # ---- RPC spans -------------------------------------------------------------------------------

    def start_rpc(self, method: str, metadata: Sequence[tuple[str, Any]] | None, request_id: str) -> RpcSpan:
        """A server span for `/package.Service/Method`, child of the caller's `traceparent` if any, made current."""
        carrier = {k: v for k, v in metadata or () if isinstance(v, str) and k in ("traceparent", "tracestate")}
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        service, _, name = method.lstrip("/").partition("/")
        span = self.tracer.start_span(
            method.lstrip("/"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name,
                        "costest.request_id": request_id},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        return RpcSpan(span, token)

    @staticmethod
    def end_rpc(rpc: RpcSpan, code: str, code_value: int) -> None:
        """The final status the caller got: `rpc.grpc.status_code`, and unless OK `error.type` and status ERROR
        with the code's name (never an exception's message: it may quote request data)."""
        span = rpc.span
        span.set_attribute("rpc.grpc.status_code", code_value)
        if code != "OK":
            span.set_attribute("error.type", code)
            span.set_status(Status(StatusCode.ERROR, code))
        span.end()
        try:
            otel_context.detach(rpc.token)  # type: ignore[arg-type]
        except ValueError:  # pragma: no cover - a context switch ended the RPC elsewhere: nothing to restore
            pass

    # ---- upstream HTTP attempts -----------------------------------------------------------------

    def client_trace_config(self, upstream: str, routes: Iterable[str]) -> aiohttp.TraceConfig:
        """An aiohttp hook making one client span per HTTP request of `upstream` (one attempt of ours), with its
        URL redacted by the `routes` (the configured URLs and client paths of that upstream)."""
        redactor = UrlRedactor(routes)
        tracer = self.tracer
        config = aiohttp.TraceConfig()

        async def on_start(_s: aiohttp.ClientSession, ctx: SimpleNamespace,
                           params: aiohttp.TraceRequestStartParams) -> None:
            url = params.url
            template = redactor.path(url)
            span = tracer.start_span(
                f"{params.method} {template}",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.request.method": params.method,
                    "url.full": redactor.full(url),
                    "url.template": template,
                    "server.address": url.raw_host or "",
                    "server.port": url.port or 0,
                    "costest.upstream": upstream,
                },
            )
            ctx.span = span
            _PROPAGATOR.inject(params.headers, context=trace.set_span_in_context(span))

        async def on_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace,
                         params: aiohttp.TraceRequestEndParams) -> None:
            span: Span | None = getattr(ctx, "span", None)
            if span is None:
                return
            status = params.response.status
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR, str(status)))
            span.end()

        async def on_exception(_s: aiohttp.ClientSession, ctx: SimpleNamespace,
                               params: aiohttp.TraceRequestExceptionParams) -> None:
            span: Span | None = getattr(ctx, "span", None)
            if span is None:
                return
            kind = type(params.exception).__name__  # never the message: it may quote the URL
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, kind))
            span.end()

        config.on_request_start.append(on_start)
        config.on_request_end.append(on_end)
        config.on_request_exception.append(on_exception)
        config.freeze()
        return config


def routes_of(*urls: str | None) -> tuple[str, ...]:
    """The paths of configured URLs (None and empty ones skipped), for `client_trace_config`."""
    return tuple(urlsplit(u).path for u in urls if u)

