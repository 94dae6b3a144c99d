"""gRPC health: the standard servicer plus `List`, and per-service statuses that follow their upstreams.

* `List` (added to grpc.health.v1 in 2024; grpcio-health-checking 1.85's asyncio servicer lacks it and answers
  UNIMPLEMENTED) returns every known service with its status.
* `EstimateService` needs the payer's Benefits and Accumulators APIs and its OAuth endpoint, `BenefitService` the
  Benefits API and OAuth: while one of their circuit breakers is open (calls fail fast with UNAVAILABLE), the
  service reads NOT_SERVING; it reads SERVING again once the breaker would let a probe through (half-open).
  `Calculate` needs no upstream but shares its service's status: health is per service, not per method.
* `EligibilityService` follows its database (`server/compose/eligibility.py`), not the clearinghouse breaker:
  with the clearinghouse away it still accepts, lists and reads checks, and submitted ones complete later.
* The process-wide `""` status stays SERVING until shutdown: the process is up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from costestimator.v1 import benefit_service_pb2, estimate_service_pb2
from grpc_health.v1 import health, health_pb2

from server.periodic import Periodic

log = logging.getLogger(__name__)

SERVING: Final = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: Final = health_pb2.HealthCheckResponse.NOT_SERVING

#: Which upstreams (breaker names, `server/compose/payer.py`) each service cannot work without.
DEPENDENCIES: Final[Mapping[str, tuple[str, ...]]] = {
    estimate_service_pb2.DESCRIPTOR.services_by_name["EstimateService"].full_name:
        ("benefits", "accumulators", "oauth"),
    benefit_service_pb2.DESCRIPTOR.services_by_name["BenefitService"].full_name: ("benefits", "oauth"),
}


_messages: Any = health_pb2  # its type stubs predate List's messages


class HealthServicer(health.aio.HealthServicer):
    """The standard asyncio servicer with `List`."""

    async def List(self, request: Any, context: Any) -> Any:
        statuses = dict(getattr(self, "_server_status"))  # a copy: `set` may run while the answer is built
        return _messages.HealthListResponse(
            statuses={name: health_pb2.HealthCheckResponse(status=status) for name, status in statuses.items()})


class UpstreamHealth:
    """Every `interval` seconds, reads the breaker states and sets each dependent service's status on a change.

    Polling (rather than a breaker callback) reads the shared Redis state too, and an open breaker's lazy turn to
    half-open, at the breakers' own sync rate."""

    def __init__(self, states: Callable[[], Awaitable[Mapping[str, str]]], servicer: health.aio.HealthServicer,
                 *, interval: float = 1.0, dependencies: Mapping[str, tuple[str, ...]] = DEPENDENCIES) -> None:
        self._states = states
        self._servicer = servicer
        self._dependencies = dependencies
        self._last: dict[str, int] = {}
        self._periodic = Periodic("upstream-health", self.update, interval, self._failed)

    async def update(self) -> None:
        states = await self._states()
        for service, upstreams in self._dependencies.items():
            down = [u for u in upstreams if states.get(u) == "open"]
            status = NOT_SERVING if down else SERVING
            if self._last.get(service) != status:
                if service in self._last or down:
                    log.warning("health: %s is %s%s", service, "NOT_SERVING" if down else "SERVING",
                                f" (circuit open: {', '.join(down)})" if down else "")
                self._last[service] = status
                await self._servicer.set(service, status)

    @staticmethod
    def _failed(exc: Exception) -> None:
        log.error("health: reading the circuit breakers failed", exc_info=exc)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
