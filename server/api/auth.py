"""Caller authentication: a JWT bearer token on every RPC except health and reflection.

The tenant comes from a configured claim and travels to the servicers in a context variable, so no servicer can
forget to read it and no query can run without it.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import jwt
from cachetools import TLRUCache

from server.api.request_limits import has_refused_character

log = logging.getLogger(__name__)

_tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant")

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
DEV_ISSUER = "costestimator-dev"
DEV_AUDIENCE = "costestimator"


def current_tenant() -> str:
    """The authenticated caller's tenant; only valid inside an RPC that passed the interceptor."""
    try:
        return _tenant.get()
    except LookupError:
        raise RuntimeError("no authenticated tenant in this context") from None


MAX_TENANT_CHARS = 128  # eligibility_checks.tenant_id
MAX_TOKEN_CHARS = 8192
TOKEN_CACHE_SIZE = 10_000


class InvalidTenantClaim(jwt.InvalidTokenError):
    """The tenant claim is too long for the store or holds control characters (→ UNAUTHENTICATED)."""


class TokenTooLong(jwt.InvalidTokenError):
    pass


class TokenLifetimeTooLong(jwt.InvalidTokenError):
    """exp − iat exceeds COSTEST_AUTH_MAX_TOKEN_LIFETIME_SECONDS."""


class _Verified(NamedTuple):
    tenant: str | None
    exp: float


def _token_cache() -> TLRUCache[bytes, _Verified]:
    # Each entry lives until its token's own `exp` (timer = wall clock, as `exp` is), never longer; LRU beyond size.
    return TLRUCache(maxsize=TOKEN_CACHE_SIZE, ttu=lambda _key, value, _now: value.exp, timer=time.time)


@dataclass(frozen=True)
class JwtVerifier:
    key: str | bytes
    algorithm: str  # "HS256" or "RS256"
    issuer: str | None
    audience: str | None
    tenant_claim: str
    leeway_seconds: float = 30.0
    # None: no cap (the development token); otherwise iat and exp are required and exp − iat must not exceed it.
    max_lifetime_seconds: float | None = None
    # Verified tokens by SHA-256 of the token, until their exp: signature checks were 6 % of Estimate's CPU.
    _cache: TLRUCache[bytes, _Verified] = field(default_factory=_token_cache, compare=False, repr=False)

    def tenant_of(self, token: str) -> str | None:
        """Verified tenant, or None for a valid token without one; raises jwt.InvalidTokenError when invalid."""
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenTooLong("token too long")
        key = hashlib.sha256(token.encode()).digest()
        hit = self._cache.get(key)
        if hit is not None and time.time() < hit.exp:
            return hit.tenant
        verified = self._verify(token)
        self._cache[key] = verified
        return verified.tenant

    def _verify(self, token: str) -> _Verified:
        required = ["exp"] if self.max_lifetime_seconds is None else ["exp", "iat"]
        claims = jwt.decode(
            token,
            self.key,
            algorithms=[self.algorithm],
            issuer=self.issuer,
            audience=self.audience,
            leeway=self.leeway_seconds,
            options={"require": required, "verify_aud": self.audience is not None},
        )
        exp = float(claims["exp"])
        if self.max_lifetime_seconds is not None and exp - float(claims["iat"]) > self.max_lifetime_seconds:
            raise TokenLifetimeTooLong("token lifetime exceeds the configured maximum")
        tenant = claims.get(self.tenant_claim)
        if not isinstance(tenant, str) or not tenant.strip():
            return _Verified(None, exp)
        if len(tenant) > MAX_TENANT_CHARS or has_refused_character(tenant):
            raise InvalidTenantClaim("tenant claim too long or with control characters")
        return _Verified(tenant, exp)


@dataclass(frozen=True)
class DevelopmentAuth:
    """Loopback-only default: a random per-start secret and one long-lived token for the development tenant."""

    verifier: JwtVerifier
    token: str

    @classmethod
    def create(cls, tenant: str, tenant_claim: str) -> DevelopmentAuth:
        secret = secrets.token_urlsafe(32)
        now = int(time.time())
        token = jwt.encode(
            {tenant_claim: tenant, "iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "iat": now, "exp": now + 30 * 86400},
            secret,
            algorithm="HS256",
        )
        return cls(JwtVerifier(secret, "HS256", DEV_ISSUER, DEV_AUDIENCE, tenant_claim), token)

    def announce(self, token_file: Path) -> None:
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(self.token + "\n")
        token_file.chmod(0o600)
        log.warning(
            "DEVELOPMENT AUTH: no COSTEST_AUTH_* settings, loopback only. Every RPC except health/reflection needs "
            "'authorization: Bearer <token>'; a development token is in %s and here: %s",
            token_file, self.token,
        )


def _bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _reject(
    code: grpc.StatusCode, message: str, handler: grpc.RpcMethodHandler[Any, Any]
) -> grpc.RpcMethodHandler[Any, Any]:
    async def abort(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, message)

    async def abort_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        await context.abort(code, message)
        yield None  # pragma: no cover - abort raises

    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            abort_stream, handler.request_deserializer, handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(abort, handler.request_deserializer, handler.response_serializer)


def _with_tenant(tenant: str, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    if handler.unary_unary is not None:
        inner: Any = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            _tenant.set(tenant)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)
    if handler.unary_stream is not None:
        inner_stream: Any = handler.unary_stream

        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            _tenant.set(tenant)
            async for item in inner_stream(request, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(stream, handler.request_deserializer, handler.response_serializer)
    return handler


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED for a missing or bad token, PERMISSION_DENIED for a valid token without a tenant."""

    def __init__(self, verifier: JwtVerifier) -> None:
        self._verifier = verifier

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_PREFIXES):
            return handler
        token = _bearer(handler_call_details.invocation_metadata)
        if token is None:
            return _reject(grpc.StatusCode.UNAUTHENTICATED, "missing 'authorization: Bearer <jwt>' metadata", handler)
        try:
            tenant = self._verifier.tenant_of(token)
        except jwt.ExpiredSignatureError:
            return _reject(grpc.StatusCode.UNAUTHENTICATED, "token expired", handler)
        except jwt.InvalidTokenError as exc:
            return _reject(grpc.StatusCode.UNAUTHENTICATED, f"invalid token: {type(exc).__name__}", handler)
        if tenant is None:
            return _reject(grpc.StatusCode.PERMISSION_DENIED,
                           f"token has no '{self._verifier.tenant_claim}' claim", handler)
        return _with_tenant(tenant, handler)
