"""Caller authentication over a real socket: every case of the JWT interceptor."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import jwt
import pytest
import pytest_asyncio
from costestimator.v1 import estimate_service_pb2, estimate_service_pb2_grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.app import Application
from server.settings import Settings, SettingsError

SECRET = "s3cret-for-tests-only-0123456789abcdef"
ISS, AUD = "https://auth.example.test", "costestimator"


def token(key: Any = SECRET, alg: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"iss": ISS, "aud": AUD, "iat": now, "exp": now + 3000, "tenant_id": "tenant-a",
                              **claims}  # exp: params are built at collection, long before a full suite runs them
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg)


@pytest_asyncio.fixture
async def secured(make_settings: Callable[..., Settings]) -> AsyncIterator[Application]:
    application = Application(make_settings(auth_hs256_secret=SECRET, auth_issuer=ISS, auth_audience=AUD))
    await application.start()
    yield application
    await application.stop(grace=0)


async def call(port: int, bearer: str | None) -> grpc.StatusCode:
    """Calculate with an empty request: past auth it answers INVALID_ARGUMENT or UNIMPLEMENTED, never OK."""
    metadata = (("authorization", f"Bearer {bearer}"),) if bearer is not None else None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        try:
            await stub.Calculate(estimate_service_pb2.CalculateRequest(), metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


PASSED_AUTH = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.OK}


@pytest.mark.parametrize(
    ("bearer", "expected"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED),
        ("not-a-jwt", grpc.StatusCode.UNAUTHENTICATED),
        (token(exp=int(time.time()) - 3600), grpc.StatusCode.UNAUTHENTICATED),
        (token(nbf=int(time.time()) + 3600), grpc.StatusCode.UNAUTHENTICATED),
        (token(aud="someone-else"), grpc.StatusCode.UNAUTHENTICATED),
        (token(iss="https://evil.example"), grpc.StatusCode.UNAUTHENTICATED),
        (token(key="wrong-secret-wrong-secret-wrong-secret"), grpc.StatusCode.UNAUTHENTICATED),
        (token(exp=None), grpc.StatusCode.UNAUTHENTICATED),
        (token(tenant_id=None), grpc.StatusCode.PERMISSION_DENIED),
        (token(tenant_id=""), grpc.StatusCode.PERMISSION_DENIED),
    ],
    ids=["missing", "garbage", "expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "wrong-signature",
         "no-exp", "no-tenant", "blank-tenant"],
)
async def test_rejected_tokens(secured: Application, bearer: str | None, expected: grpc.StatusCode) -> None:
    assert await call(secured.port, bearer) is expected


async def test_valid_token_passes(secured: Application) -> None:
    assert await call(secured.port, token()) in PASSED_AUTH


async def test_health_and_reflection_need_no_token(secured: Application) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{secured.port}") as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_rs256_public_key(make_settings: Callable[..., Settings], tmp_path: Any) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    key_file = tmp_path / "pub.pem"
    key_file.write_bytes(pem)
    application = Application(make_settings(auth_rs256_public_key_file=key_file, auth_issuer=ISS,
                                            auth_audience=AUD))
    await application.start()
    try:
        assert await call(application.port, token(key=private, alg="RS256")) in PASSED_AUTH
        assert await call(application.port, token()) is grpc.StatusCode.UNAUTHENTICATED  # HS256 not accepted
    finally:
        await application.stop(grace=0)


async def test_development_token_on_loopback(app: Application, make_settings: Callable[..., Settings]) -> None:
    assert app.dev_token is not None
    assert (app.settings.data_dir / "dev-token").read_text().strip() == app.dev_token
    assert await call(app.port, app.dev_token) in PASSED_AUTH
    assert await call(app.port, None) is grpc.StatusCode.UNAUTHENTICATED


def test_beyond_loopback_without_auth_refuses_to_start(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(SettingsError, match="COSTEST_AUTH_HS256_SECRET"):
        make_settings(host="0.0.0.0")
    with pytest.raises(SettingsError, match="COSTEST_AUTH_ISSUER"):
        make_settings(host="0.0.0.0", auth_hs256_secret=SECRET)
