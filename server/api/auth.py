"""Caller authentication: a JWT bearer token on every RPC except health and reflection.

The tenant comes from a configured claim and travels to the servicers in a context variable, so no servicer can
forget to read it and no query can run without it.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import jwt
from cachetools import TLRUCache

from server.api.errors import abort_with_reason
from server.api.handler_wrap import Streaming, Unary, wrap_handler
from server.api.request_limits import has_refused_character

from server.datadir import read_or_create_secret, write_private

log = logging.getLogger(__name__)

_tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant")

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
DEV_ISSUER = "costestimator-dev"
DEV_AUDIENCE = "costestimator"
DEV_SECRET_FILE = "dev-token-secret"
DEV_TOKEN_FILE = "dev-token"
DEV_TOKEN_LIFETIME_SECONDS = 30 * 86400
DEV_TOKEN_RENEW_SECONDS = 7 * 86400  # a start mints a new token when the old one has less than this left


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
    """Loopback-only default: one long-lived token for the development tenant, signed by a key in the data dir.

    The key file survives restarts and is shared by every worker process, so a token handed out once keeps
    working; the token file is rewritten only when it no longer verifies or is about to expire.
    """

    verifier: JwtVerifier
    token: str
    token_file: Path
    expires_at: int

    @classmethod
    def load(cls, data_dir: Path, tenant: str, tenant_claim: str) -> DevelopmentAuth:
        """Read (or create) the signing key; reuse the token file when still good, else mint a token (unwritten)."""
        secret = read_or_create_secret(data_dir / DEV_SECRET_FILE)
        verifier = JwtVerifier(secret, "HS256", DEV_ISSUER, DEV_AUDIENCE, tenant_claim)
        token_file = data_dir / DEV_TOKEN_FILE
        now = int(time.time())
        try:
            existing = token_file.read_text().strip()
            claims = jwt.decode(existing, secret, algorithms=["HS256"], issuer=DEV_ISSUER, audience=DEV_AUDIENCE)
            if claims.get(tenant_claim) == tenant and int(claims["exp"]) - now > DEV_TOKEN_RENEW_SECONDS:
                return cls(verifier, existing, token_file, int(claims["exp"]))
        except (OSError, jwt.InvalidTokenError, KeyError, ValueError, TypeError):
            pass
        expires_at = now + DEV_TOKEN_LIFETIME_SECONDS
        token = jwt.encode({tenant_claim: tenant, "iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "iat": now,
                            "exp": expires_at}, secret, algorithm="HS256")
        return cls(verifier, token, token_file, expires_at)

    def save(self) -> None:
        """Write the token file (0600) unless it already holds this token; call once the port is bound."""
        try:
            if self.token_file.read_text().strip() == self.token:
                return
        except OSError:
            pass
        write_private(self.token_file, self.token + "\n")

    def announce(self) -> None:
        expires = time.strftime("%Y-%m-%d", time.gmtime(self.expires_at))
        log.warning(
            "DEVELOPMENT AUTH: no COSTEST_AUTH_* settings, loopback only. Every RPC except health/reflection needs "
            "'authorization: Bearer <token>'; the development token (valid until %s) is in %s",
            expires, self.token_file,
        )


def _bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _reject(
    reason: str, message: str, handler: grpc.RpcMethodHandler[Any, Any]
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler that refuses the call with `reason` of the error catalogue (its code and ErrorInfo)."""

    async def abort(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await abort_with_reason(context, reason, message)

    async def abort_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        await abort_with_reason(context, reason, message)
        yield None  # pragma: no cover - abort raises

    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            abort_stream, handler.request_deserializer, handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(abort, handler.request_deserializer, handler.response_serializer)


def _with_tenant(tenant: str, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    def unary(inner: Unary) -> Unary:
        async def with_tenant(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            _tenant.set(tenant)
            return await inner(request, context)

        return with_tenant

    def stream(inner: Streaming) -> Streaming:
        async def with_tenant(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            _tenant.set(tenant)
            async for item in inner(request, context):
                yield item

        return with_tenant

    return wrap_handler(handler, unary=unary, stream=stream)


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
            return _reject("UNAUTHENTICATED", "missing 'authorization: Bearer <jwt>' metadata", handler)
        try:
            tenant = self._verifier.tenant_of(token)
        except jwt.ExpiredSignatureError:
            return _reject("UNAUTHENTICATED", "token expired", handler)
        except jwt.InvalidTokenError as exc:
            return _reject("UNAUTHENTICATED", f"invalid token: {type(exc).__name__}", handler)
        if tenant is None:
            return _reject("TENANT_MISSING",
                           f"token has no '{self._verifier.tenant_claim}' claim", handler)
        return _with_tenant(tenant, handler)
