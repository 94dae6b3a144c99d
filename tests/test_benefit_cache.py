"""The benefit cache over real sockets: the server, the payer sandbox's call counters, and Redis when reachable."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import jwt
import pytest
import pytest_asyncio
from costestimator.v1 import benefit_service_pb2 as bpb
from costestimator.v1 import benefit_service_pb2_grpc
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.rpc import code_pb2
from google.type import money_pb2

from server.app import Application
from server.cache.stores import MemoryStore
from tests.conftest import auth, payer_sandbox

SECRET = "s3cret-for-cache-tests-0123456789abcdef"
ISS, AUD = "https://auth.example.test", "costestimator"
ACTIVE = "5~186103331+10+7+20260101+793854+8A+829"
OTHER = "5~186103330+10+7+20260101+793853+8A+828"
MEMBER_FRAGMENTS = (ACTIVE, OTHER, "186103331", "186103330", "793854", "793853")
BENEFITS = "benefits"


def token(tenant: str) -> tuple[tuple[str, str], ...]:
    now = int(time.time())
    body = {"iss": ISS, "aud": AUD, "iat": now, "exp": now + 300, "tenant_id": tenant}
    return (("authorization", f"Bearer {jwt.encode(body, SECRET, algorithm='HS256')}"),)


def request(member: str = ACTIVE, specialty: str = "08", code: str = "99214") -> epb.EstimateRequest:
    return epb.EstimateRequest(
        member=cpb.Member(membership_id=member, plan_identifier="3~"), product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL,
        service=epb.RequestedService(code=code, code_type=cpb.CODE_TYPE_CPT4, place_of_service_code="11"),
        providers=[epb.Provider(provider_id="p1", network_category=cpb.NETWORK_CATEGORY_IN_NETWORK,
                                benefit_tier_name="1", provider_specialty_code=specialty,
                                negotiated_amount=money_pb2.Money(currency_code="USD", units=200))])


def calls(app: Application) -> Any:
    return payer_sandbox(app).calls


async def estimate(app: Application, metadata: Any, req: epb.EstimateRequest | None = None) -> epb.CostEstimate:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        reply = await estimate_service_pb2_grpc.EstimateServiceStub(ch).Estimate(
            req or request(), metadata=metadata, timeout=10)
    e = reply.estimates[0]
    assert e.status.code == code_pb2.OK, e.status
    return e


@pytest_asyncio.fixture
async def secured(start_app: Callable[..., Any]) -> Application:
    app: Application = await start_app(auth_hs256_secret=SECRET, auth_issuer=ISS, auth_audience=AUD)
    return app


async def test_second_identical_estimate_is_answered_from_the_cache(secured: Application) -> None:
    first = await estimate(secured, token("tenant-a"))
    assert not first.benefit_from_cache
    assert calls(secured)[BENEFITS] == 1
    second = await estimate(secured, token("tenant-a"))
    assert second.benefit_from_cache
    assert calls(secured)[BENEFITS] == 1  # no second upstream benefit call
    assert calls(secured)["accumulators"] == 2  # accumulators are never cached
    assert second.member_pays == first.member_pays and second.matched_benefit == first.matched_benefit
    other = await estimate(secured, token("tenant-a"), request(specialty="20"))  # another key: a miss
    assert not other.benefit_from_cache and calls(secured)[BENEFITS] == 2


async def test_tenants_never_share_cache_entries(secured: Application) -> None:
    assert not (await estimate(secured, token("tenant-a"))).benefit_from_cache
    assert (await estimate(secured, token("tenant-a"))).benefit_from_cache
    assert not (await estimate(secured, token("tenant-b"))).benefit_from_cache
    assert (await estimate(secured, token("tenant-b"))).benefit_from_cache
    assert calls(secured)[BENEFITS] == 2


async def test_entries_expire_after_the_ttl(start_app: Callable[..., Any]) -> None:
    app = await start_app(benefit_cache_ttl_seconds=0.5)
    assert not (await estimate(app, auth(app))).benefit_from_cache
    assert (await estimate(app, auth(app))).benefit_from_cache
    await asyncio.sleep(0.7)
    assert not (await estimate(app, auth(app))).benefit_from_cache
    assert calls(app)[BENEFITS] == 2


async def test_memory_store_expires_and_evicts_by_the_injected_clock() -> None:
    now = [100.0]
    store: MemoryStore[str] = MemoryStore(ttl=10, max_entries=2, clock=lambda: now[0])
    await store.put("a", "A")
    now[0] += 9.9
    assert await store.get("a") == "A"
    now[0] += 0.2
    assert await store.get("a") is None
    for k in "bcd":
        await store.put(k, k.upper())
    assert await store.get("b") is None and await store.get("d") == "D"  # bounded: the oldest went


def test_keys_are_the_hmac_of_the_request_as_compact_json_so_they_stay_stable_across_releases() -> None:
    """Processes of two releases share Redis during a rollout: the key's text must not drift."""
    import hashlib
    import hmac
    import json

    from server.clients.models import BenefitRequestModel
    from server.usecases.benefit_cache import KEY_NAMESPACE, BenefitCache

    wire = {"benefitProductType": "Medical", "membershipID": ACTIVE, "planIdentifier": "3~", "serviceInfo": [
        {"serviceCodeInfo": {"code": "99214", "type": "CPT4", "providerType": [{"code": "AB"}],
                             "placeOfService": [{"code": "11"}, {"code": "22"}],
                             "providerSpecialty": [{"code": "Ünïcode"}]}}]}
    request = BenefitRequestModel.model_validate(wire)
    secret = b"k" * 32
    text = json.dumps(["tenant-é", "Medical", ACTIVE, "3~", ["99214", "CPT4", ["AB"], ["11", "22"], ["Ünïcode"]]],
                      separators=(",", ":"), ensure_ascii=False).encode()
    expected = KEY_NAMESPACE + hmac.new(secret, text, hashlib.sha256).hexdigest()
    assert BenefitCache(None, None, secret=secret).key("tenant-é", request) == expected  # type: ignore[arg-type]


async def test_ttl_zero_turns_the_cache_off(start_app: Callable[..., Any]) -> None:
    app = await start_app(benefit_cache_ttl_seconds=0)
    for _ in range(2):
        assert not (await estimate(app, auth(app))).benefit_from_cache
    assert calls(app)[BENEFITS] == 2


async def test_no_member_id_in_any_in_process_key(secured: Application) -> None:
    for member in (ACTIVE, OTHER):
        for specialty in ("08", "20"):
            await estimate(secured, token("tenant-a"), request(member, specialty))
    assert secured.payer is not None
    store = secured.payer.benefit_cache.store
    assert isinstance(store, MemoryStore)
    keys = store.keys()
    assert len(keys) == 4
    assert [k for k in keys if any(f in k for f in MEMBER_FRAGMENTS + ("tenant-a",))] == []


async def test_identical_calls_in_flight_make_one_upstream_call(start_app: Callable[..., Any]) -> None:
    app = await start_app(sandbox_latency_ms=200)
    await estimate(app, auth(app), request(code="80053"))  # token fetched, connections warm; another key
    before = calls(app)[BENEFITS]
    answers = await asyncio.gather(*(estimate(app, auth(app)) for _ in range(10)))
    assert calls(app)[BENEFITS] - before == 1  # ten requests, one benefit call
    assert all(not a.benefit_from_cache for a in answers)  # they shared a live call, not a cached answer
    assert calls(app)["accumulators"] == 11  # per request, never shared


async def test_a_caller_leaving_a_shared_call_at_its_deadline_leaves_it_running_for_the_others(
    start_app: Callable[..., Any]
) -> None:
    """The first caller's short deadline belongs to that caller: the shared benefit call goes on, and a caller who
    joined it with more time gets the answer, not someone else's DEADLINE_EXCEEDED."""
    app = await start_app(sandbox_latency_ms=400)
    await estimate(app, auth(app), request(code="80053"))  # token fetched, connections warm; another key
    before = calls(app)[BENEFITS]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        hurried = asyncio.ensure_future(stub.Estimate(request(), metadata=auth(app), timeout=0.15))
        await asyncio.sleep(0.05)  # the hurried caller started the shared call; the patient one joins it
        patient = await stub.Estimate(request(), metadata=auth(app), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await hurried
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert patient.estimates[0].status.code == code_pb2.OK, patient.estimates[0].status
    assert calls(app)[BENEFITS] - before == 1  # one call, shared


async def test_get_benefit_shares_the_cache(start_app: Callable[..., Any]) -> None:
    app = await start_app()
    service = bpb.ServiceInfo(service_code=cpb.ServiceCode(code="99214", code_type=cpb.CODE_TYPE_CPT4))
    req = bpb.GetBenefitRequest(product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL, service_infos=[service],
                                member=cpb.Member(membership_id=ACTIVE, plan_identifier="3~"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = benefit_service_pb2_grpc.BenefitServiceStub(ch)
        first = await stub.GetBenefit(req, metadata=auth(app), timeout=10)
        second = await stub.GetBenefit(req, metadata=auth(app), timeout=10)
    assert first == second
    assert calls(app)[BENEFITS] == 1


async def test_redis_down_falls_back_to_the_upstream_and_warns_once(
        start_app: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="server.usecases.benefit_cache")
    app = await start_app(redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    for _ in range(3):
        assert not (await estimate(app, auth(app))).benefit_from_cache
    assert calls(app)[BENEFITS] == 3
    warnings = [r for r in caplog.records if r.name == "server.usecases.benefit_cache"]
    assert len(warnings) == 1 and "calling the payer directly" in warnings[0].getMessage()


# ---- Redis: shared by every process ---------------------------------------------------------------------------

async def _redis_keys(url: str, pattern: str) -> list[str]:
    from redis import asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        return [k.decode() async for k in client.scan_iter(match=pattern, count=1000)]
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_two_applications_share_the_cache_through_redis(start_app: Callable[..., Any], redis_url: str) -> None:
    secret = secrets.token_hex(16)  # fresh keys for this test: nothing left over from an earlier run can hit
    shared = {"redis_url": redis_url, "cache_key_secret": secret, "benefit_cache_ttl_seconds": 60}
    before = set(await _redis_keys(redis_url, "costest:benefit:*"))
    one = await start_app(**shared)
    two = await start_app(**shared)
    assert not (await estimate(one, auth(one))).benefit_from_cache
    assert (await estimate(two, auth(two))).benefit_from_cache  # the other process's answer, read from Redis
    assert calls(two)[BENEFITS] == 0 and calls(one)[BENEFITS] == 1
    assert (await estimate(two, auth(two))).benefit_from_cache
    await estimate(one, auth(one), request(OTHER, "20"))
    keys = set(await _redis_keys(redis_url, "costest:benefit:*"))
    assert len(keys - before) == 2  # one per distinct upstream request
    assert [k for k in keys if any(f in k for f in MEMBER_FRAGMENTS + ("dev-tenant",))] == []
    values = await _redis_values(redis_url, keys - before)
    assert all(b'"costShareCopay":"' in v for v in values)  # money as strings, never floats
    assert [v for v in values if any(f.encode() in v for f in MEMBER_FRAGMENTS)] == []  # no member id in values
    await _redis_delete(redis_url, keys - before)


async def _redis_values(url: str, keys: set[str]) -> list[bytes]:
    from redis import asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        return [v for v in await client.mget(list(keys)) if v is not None]
    finally:
        await client.aclose()


async def _redis_delete(url: str, keys: set[str]) -> None:
    from redis import asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
