"""HTTP clients of the upstream payer APIs (knows nothing of gRPC).

Public surface: the clients, their config dataclasses, the typed errors the API layer maps to gRPC
status codes, and the resilience policy (retries, deadlines, circuit breakers).
"""

from .accumulators import AccumulatorsClient
from .benefits import BenefitsClient
from .errors import (
    CircuitOpen,
    LocalPoolExhausted,
    MemberNotFound,
    UpstreamAuthError,
    UpstreamDeadlineExceeded,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from .http import HttpPool, UpstreamConfig, UpstreamSession
from .payer import PayerClients, PayerClientsConfig
from .resilience import CircuitState, Deadline, Resilience
from .tokens import AccessToken, TokenConfig, TokenProvider

__all__ = [
    "AccessToken",
    "AccumulatorsClient",
    "BenefitsClient",
    "CircuitOpen",
    "CircuitState",
    "Deadline",
    "HttpPool",
    "LocalPoolExhausted",
    "MemberNotFound",
    "PayerClients",
    "PayerClientsConfig",
    "Resilience",
    "TokenConfig",
    "TokenProvider",
    "UpstreamAuthError",
    "UpstreamConfig",
    "UpstreamDeadlineExceeded",
    "UpstreamError",
    "UpstreamNotFound",
    "UpstreamRejected",
    "UpstreamSession",
    "UpstreamUnavailable",
]
