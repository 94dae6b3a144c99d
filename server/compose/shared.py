"""What every capability builder receives: settings, the shared resilience policy, metrics, and one exit stack."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from server.clients.http import UpstreamConfig
from server.clients.resilience import Resilience
from server.settings import Settings
from server.telemetry.tracing import Tracing, routes_of


@dataclass
class Resources:
    """Built once at start. Anything that must be closed at shutdown is pushed onto `exit` (closed in reverse)."""

    settings: Settings
    registry: CollectorRegistry
    resilience: Resilience
    exit: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    tracing: Tracing | None = None  # None: tracing off (COSTEST_TRACING)

    def upstream_config(self, name: str, base_url: str, *, routes: tuple[str, ...] = (),
                        **overrides: Any) -> UpstreamConfig:
        """The settings' resilience knobs for one upstream; `overrides` for what differs per upstream. `routes`:
        the paths the clients call on it, the only path segments a trace may show (the rest is redacted)."""
        s = self.settings
        values: dict[str, Any] = {
            "name": name,
            "base_url": base_url,
            "timeout": s.upstream_timeout_seconds,
            "total_timeout": s.upstream_default_deadline_seconds,
            "connect_limit": s.http_pool_size,
            "attempts": s.upstream_attempts,
            "backoff_multiplier": s.upstream_backoff_seconds,
            "backoff_max": s.upstream_backoff_max_seconds,
            "breaker_failure_rate": s.breaker_failure_rate,
            "breaker_min_requests": s.breaker_min_requests,
            "breaker_window": s.breaker_window_seconds,
            "breaker_ttl": s.breaker_ttl_seconds,
            "verify_tls": s.tls_verify,
            "ca_bundle": str(s.ca_bundle) if s.ca_bundle else None,
        }
        if self.tracing is not None:
            values["trace_configs"] = (self.tracing.client_trace_config(name, routes_of(base_url, *routes)),)
        values.update(overrides)
        return UpstreamConfig(**values)
