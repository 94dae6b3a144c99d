"""What every capability builder receives: settings, the shared resilience policy, metrics, and one exit stack."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from server.clients.http import UpstreamConfig
from server.clients.resilience import Resilience
from server.settings import Settings


@dataclass
class Resources:
    """Built once at start. Anything that must be closed at shutdown is pushed onto `exit` (closed in reverse)."""

    settings: Settings
    registry: CollectorRegistry
    resilience: Resilience
    exit: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    def upstream_config(self, name: str, base_url: str, **overrides: Any) -> UpstreamConfig:
        """The settings' resilience knobs for one upstream; `overrides` for what differs per upstream."""
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
        values.update(overrides)
        return UpstreamConfig(**values)
