"""Token hardening (issue 9 §4) and the verified-token cache (issue 13 §3), over a real socket where it matters.

A weak HS256 secret stops the start; a token must carry iat and exp within the configured lifetime; a tenant claim
that could not be stored (too long, control characters) is UNAUTHENTICATED before any I/O; a verified token is
cached until its exp and never past it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import jwt
import pytest
import pytest_asyncio
from costestimator.v1 import eligibility_service_pb2 as pb
from costestimator.v1 import eligibility_service_pb2_grpc as pb_grpc

from server.api.auth import JwtVerifier, TokenLifetimeTooLong
from server.app import Application
from server.settings import Settings, SettingsError
from tests.eligibility_service.conftest import pg_database  # noqa: F401 - fixture: a private PostgreSQL database

SECRET = "hardening-tests-hs256-secret-0123456789abcdef"
ISS, AUD = "https://auth.example.test", "costestimator"


def token(**claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"iss": ISS, "aud": AUD, "iat": now, "exp": now + 300, "tenant_id": "tenant-a", **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, SECRET, algorithm="HS256")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("pg_database") if request.param == "postgres" else None


@pytest_asyncio.fixture
async def secured(make_settings: Callable[..., Settings], database_url: str | None) -> AsyncIterator[Application]:
    app = Application(make_settings(auth_hs256_secret=SECRET, auth_issuer=ISS, auth_audience=AUD,
                                    auth_max_token_lifetime_seconds=600, database_url=database_url))
    await app.start()
    yield app
    await app.stop(grace=0)


async def stats_code(app: Application, bearer: str) -> grpc.StatusCode:
    """GetEligibilityStats reaches the database with the tenant: the RPC a bad tenant used to break."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        try:
            await pb_grpc.EligibilityServiceStub(ch).GetEligibilityStats(
                pb.GetEligibilityStatsRequest(), metadata=(("authorization", f"Bearer {bearer}"),), timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    "claims",
    [
        {"tenant_id": "t" * 129},
        {"tenant_id": "tenant\x00a"},
        {"tenant_id": "tenant\na"},
        {"iat": None},
        {"exp": None},
        {"exp": int(time.time()) + 3600},  # lifetime 3600 s > the configured 600 s
    ],
    ids=["tenant-too-long", "tenant-nul", "tenant-newline", "no-iat", "no-exp", "lifetime-too-long"],
)
async def test_bad_claims_are_unauthenticated(secured: Application, claims: dict[str, Any]) -> None:
    assert await stats_code(secured, token(**claims)) is grpc.StatusCode.UNAUTHENTICATED


async def test_good_claims_pass(secured: Application) -> None:
    assert await stats_code(secured, token(tenant_id="t" * 128)) is grpc.StatusCode.OK
    now = int(time.time())
    assert await stats_code(secured, token(iat=now, exp=now + 600)) is grpc.StatusCode.OK


def test_a_weak_hs256_secret_stops_the_start(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(SettingsError, match="COSTEST_AUTH_HS256_SECRET.*32 bytes"):
        make_settings(auth_hs256_secret="x" * 31, auth_issuer=ISS, auth_audience=AUD)
    make_settings(auth_hs256_secret="x" * 32, auth_issuer=ISS, auth_audience=AUD)


def test_the_token_lifetime_setting_is_validated(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(SettingsError, match="COSTEST_AUTH_MAX_TOKEN_LIFETIME_SECONDS"):
        make_settings(auth_max_token_lifetime_seconds=0)
    assert make_settings().auth_max_token_lifetime_seconds == 3600


class CountingVerifier(JwtVerifier):
    """Counts real signature verifications (a subclass, not a mock: the cache under test is the real one)."""

    verifications = 0

    def _verify(self, token: str) -> Any:
        type(self).verifications += 1
        return super()._verify(token)


def test_verified_tokens_are_cached_until_exp_and_never_past_it() -> None:
    CountingVerifier.verifications = 0
    verifier = CountingVerifier(SECRET, "HS256", ISS, AUD, "tenant_id", leeway_seconds=0, max_lifetime_seconds=60)
    now = time.time()
    short = token(iat=int(now), exp=int(now) + 2)
    for _ in range(50):
        assert verifier.tenant_of(short) == "tenant-a"
    assert CountingVerifier.verifications == 1  # verified once, then served from the cache
    time.sleep(max(0.0, int(now) + 2 - time.time()) + 0.2)
    with pytest.raises(jwt.ExpiredSignatureError):
        verifier.tenant_of(short)
    assert CountingVerifier.verifications == 2


def test_refused_tokens_are_not_cached() -> None:
    CountingVerifier.verifications = 0
    verifier = CountingVerifier(SECRET, "HS256", ISS, AUD, "tenant_id", max_lifetime_seconds=60)
    long_lived = token(exp=int(time.time()) + 3600)
    for _ in range(3):
        with pytest.raises(TokenLifetimeTooLong):
            verifier.tenant_of(long_lived)
    assert CountingVerifier.verifications == 3


def test_the_cache_is_bounded_and_keyed_by_a_hash() -> None:
    verifier = JwtVerifier(SECRET, "HS256", ISS, AUD, "tenant_id", max_lifetime_seconds=600)
    tokens = [token(tenant_id=f"t{i}") for i in range(20)]
    for t in tokens:
        verifier.tenant_of(t)
    cache = verifier._cache  # noqa: SLF001 - the test inspects the cache's keys on purpose
    assert len(cache) == 20 and cache.maxsize >= 1000
    assert all(isinstance(k, bytes) and len(k) == 32 for k in cache)  # SHA-256, never the token itself
