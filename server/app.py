"""Composition root: builds every dependency once, hands it to the servicers, closes it all at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from server.api.auth import AuthInterceptor, DevelopmentAuth, JwtVerifier
from server.api.health import UpstreamHealth
from server.api.observability import ObservabilityInterceptor, RpcMetrics
from server.api.grpc_server import BuiltServer, Servicers, ServerTls, build_grpc_server
from server.api.request_limits import RequestLimits
from server.api.benefit_servicer import BenefitServicer
from server.api.estimate_servicer import EstimateServicer
from server.usecases.eligibility_estimates import EligibilityEstimator
from server.clients.resilience import Resilience
from server.compose.eligibility import Eligibility, build_eligibility
from server.compose.payer import PayerSide, build_payer
from server.compose.shared import Resources
from server import event_loop
from server.ports import ensure_port_free
from server.settings import Settings
from server.telemetry.request_ids import install_log_record_factory
from server.telemetry.tracing import Tracing

if TYPE_CHECKING:  # the tracing SDK is imported only when tracing is on
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)


class Application:
    """The running service. `start()` then `stop()`; `run()` does both around SIGTERM/SIGINT."""

    def __init__(
        self, settings: Settings, *, registry: CollectorRegistry | None = None, reuse_port: bool = False,
        span_exporter: SpanExporter | None = None,
    ) -> None:
        """`reuse_port`: this is one of several workers on one port (server/supervisor.py checked the port).
        `span_exporter` (tests): tracing on, every span handed to it at once, whatever COSTEST_TRACING says."""
        install_log_record_factory()  # request ids on every log record, whoever configured logging
        self.settings = settings
        self._span_exporter = span_exporter
        self.tracing: Tracing | None = None
        self._reuse_port = reuse_port
        self._dev_auth: DevelopmentAuth | None = None
        # Tests pass a fresh registry so several applications can live in one process.
        self.registry = registry if registry is not None else REGISTRY
        self._built: BuiltServer | None = None
        self._port: int | None = None
        self._exit = contextlib.AsyncExitStack()
        self.resources: Resources | None = None
        self.payer: PayerSide | None = None
        self.eligibility: Eligibility | None = None
        self._stopping: asyncio.Event | None = None
        self.dev_token: str | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("application not started")
        return self._port

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def start(self) -> None:
        """Check the port before building anything; write the development token only once the port is ours."""
        s = self.settings
        if not self._reuse_port:
            ensure_port_free(s.host, s.port)  # raises PortInUse: nothing started, nothing read or written
        verifier = self._verifier()
        try:
            servicers = await self._build_dependencies()
            self._built = build_grpc_server(
                f"{s.host}:{s.port}",
                servicers,
                interceptors=[ObservabilityInterceptor(RpcMetrics.for_registry(self.registry), self.tracing),
                              AuthInterceptor(verifier)],
                max_concurrent_rpcs=s.max_concurrent_rpcs,
                max_request_bytes=s.max_request_bytes,
                request_limits=RequestLimits.for_settings(max_providers=s.max_providers),
                tls=self._tls(),
                reuse_port=self._reuse_port,
            )
            self._port = self._built.port
            await self._built.server.start()
            await self._built.set_serving()
            if self.eligibility is not None:  # its health follows its database from here on
                await self.eligibility.health.attach(self._built.health)
            if self.resources is not None:  # estimates and benefits follow their upstreams' breakers
                upstream_health = UpstreamHealth(self.resources.resilience.states, self._built.health)
                await upstream_health.update()
                upstream_health.start()
                self._exit.push_async_callback(upstream_health.stop)
        except BaseException:
            await self._close_dependencies()
            raise
        if self._dev_auth is not None:
            self._dev_auth.save()  # no-op when the file already holds this token (a restart, a worker)
            if not self._reuse_port:  # the supervisor announced it once for all workers
                self._dev_auth.announce()
        transport = "plaintext"
        if s.tls_enabled:
            transport = "mTLS" if s.tls_client_ca_file else "TLS"
        log.info("serving gRPC on %s (%s; health and reflection on)", self.address, transport)

    def _tls(self) -> ServerTls | None:
        s = self.settings
        if s.tls_cert_file is None or s.tls_key_file is None:
            return None
        return ServerTls(s.tls_cert_file, s.tls_key_file, s.tls_client_ca_file)

    def _verifier(self) -> JwtVerifier:
        s = self.settings
        if s.auth_hs256_secret is not None:
            return JwtVerifier(s.auth_hs256_secret.get_secret_value(), "HS256", s.auth_issuer, s.auth_audience,
                               s.auth_tenant_claim, max_lifetime_seconds=s.auth_max_token_lifetime_seconds)
        if s.auth_rs256_public_key_file is not None:
            return JwtVerifier(s.auth_rs256_public_key_file.read_text(), "RS256", s.auth_issuer, s.auth_audience,
                               s.auth_tenant_claim, max_lifetime_seconds=s.auth_max_token_lifetime_seconds)
        # settings guarantee loopback here; the token file is written by start() once the port is bound
        self._dev_auth = dev = DevelopmentAuth.load(s.data_dir, s.dev_tenant, s.auth_tenant_claim)
        self.dev_token = dev.token
        return dev.verifier

    def _tracing(self) -> Tracing | None:
        if self._span_exporter is not None:
            return Tracing(self._span_exporter, batch=False)
        if self.settings.tracing:
            log.info("tracing on: OpenTelemetry spans exported with OTLP/gRPC (OTEL_EXPORTER_OTLP_* settings)")
            return Tracing.otlp()
        return None

    async def _build_dependencies(self) -> Servicers:
        s = self.settings
        self.tracing = tracing = self._tracing()
        if tracing is not None:  # first in, last out: spans of everything closed after it are still exported
            self._exit.push_async_callback(tracing.close)
        resilience = Resilience(redis_url=s.redis_url, registry=self.registry, sync_seconds=s.breaker_sync_seconds)
        await resilience.start()
        self._exit.push_async_callback(resilience.close)
        resources = Resources(s, self.registry, resilience, self._exit, tracing=tracing)
        self.resources = resources
        if s.metrics_port:
            server, thread = start_http_server(s.metrics_port, addr=s.host, registry=self.registry)

            def stop_metrics() -> None:
                server.shutdown()
                server.server_close()
                thread.join(timeout=5)

            self._exit.callback(stop_metrics)
            log.info("Prometheus metrics on http://%s:%d/metrics", s.host, s.metrics_port)
        self.payer = payer = await build_payer(resources)
        self.eligibility = eligibility = await build_eligibility(resources)
        return Servicers(
            benefit=BenefitServicer(payer.benefit_lookup),
            estimate=EstimateServicer(payer.estimates, max_providers=s.max_providers,
                                      from_eligibility=EligibilityEstimator(eligibility.checks)),
            eligibility=eligibility.servicer,
        )

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, refuse new RPCs, drain in-flight ones for `grace` seconds, then close dependencies."""
        grace = self.settings.grace_seconds if grace is None else grace
        if self._built is not None:
            log.info("shutting down: draining in-flight RPCs for up to %.1fs", grace)
            await self._built.health.enter_graceful_shutdown()
            await self._built.server.stop(grace)
            self._built = None
        await self._close_dependencies()
        log.info("stopped")

    async def _close_dependencies(self) -> None:
        """Close in reverse order of creation; AsyncExitStack keeps closing the rest if one fails."""
        exit_stack, self._exit = self._exit, contextlib.AsyncExitStack()
        try:
            await exit_stack.aclose()
        except Exception:  # noqa: BLE001 - shutdown must finish
            log.exception("error while closing dependencies")

    def request_stop(self) -> None:
        """Ask `run()` to shut down gracefully, as SIGTERM does."""
        if self._stopping is not None:
            self._stopping.set()

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until SIGTERM or SIGINT, then shut down gracefully; `on_ready` is called once serving."""
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        await self.start()
        event_loop.settle()
        if on_ready is not None:
            on_ready()
        try:
            await self._stopping.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()
