"""The Connect bridge over a real socket, as a browser's fetch would call it (no browser needed)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from typing import Any

import aiohttp
import pytest
from google.rpc import error_details_pb2

from console.server import ConsoleServer
from server.app import Application
from server.sandbox.faults import Fault
from server.settings import load_settings
from tests.conftest import payer_sandbox

JSON = {"content-type": "application/json", "connect-protocol-version": "1"}
STATS = "costestimator.v1.EligibilityService/GetEligibilityStats"
MEMBER = {"membershipId": "5~186103331+10+7+20260101+793854+8A+829", "planIdentifier": "3~"}


def envelope(message: dict[str, Any]) -> bytes:
    data = json.dumps(message).encode()
    return struct.pack(">BI", 0, len(data)) + data


def envelopes(body: bytes) -> list[tuple[int, dict[str, Any]]]:
    out = []
    while body:
        flags, length = struct.unpack(">BI", body[:5])
        out.append((flags, json.loads(body[5:5 + length] or b"{}")))
        body = body[5 + length:]
    return out


def violations(error: dict[str, Any]) -> dict[str, str]:
    found = {}
    for detail in error.get("details", []):
        if detail["type"] == "google.rpc.BadRequest":
            value = detail["value"]
            bad = error_details_pb2.BadRequest.FromString(base64.b64decode(value + "=" * (-len(value) % 4)))
            found.update({v.field: v.description for v in bad.field_violations})
    return found


async def post(console: ConsoleServer, path: str, body: bytes | str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{console.url}{path}", data=body, headers=headers) as reply:
            return reply.status, dict(reply.headers), await reply.read()


async def test_unary_call_uses_the_development_token_on_loopback(console: ConsoleServer) -> None:
    status, headers, body = await post(console, STATS, "{}", **JSON)
    assert status == 200, body
    assert json.loads(body) == {}  # a fresh tenant: every count is zero (omitted in the JSON mapping)
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


async def test_the_browsers_own_token_is_forwarded_not_replaced(console: ConsoleServer) -> None:
    status, _, body = await post(console, STATS, "{}", **JSON, authorization="Bearer not-a-token")
    assert status == 401
    assert json.loads(body)["code"] == "unauthenticated"


async def test_bad_input_comes_back_with_its_field_violations(console: ConsoleServer) -> None:
    request = {"inquiry": {"payerId": "SBX01", "provider": {"npi": "123", "organizationName": "Riverbend"},
                           "subscriber": {"memberId": "SBX100001", "firstName": "Alex", "lastName": "Rivera",
                                          "dateOfBirth": {"year": 1985, "month": 4, "day": 12}}}}
    status, _, body = await post(console, "costestimator.v1.EligibilityService/CheckEligibility",
                                 json.dumps(request), **JSON)
    error = json.loads(body)
    assert status == 400 and error["code"] == "invalid_argument"
    assert "inquiry.provider.npi" in violations(error)
    assert "SBX100001" not in body.decode() and "Rivera" not in body.decode()


async def test_json_that_does_not_fit_the_message_is_invalid_argument_without_its_values(
        console: ConsoleServer) -> None:
    status, _, body = await post(console, STATS, '{"policyId": {"secret": "SBX100001"}}', **JSON)
    error = json.loads(body)
    assert status == 400 and error["code"] == "invalid_argument"
    assert "SBX100001" not in body.decode()


async def test_server_stream_is_enveloped_json_ending_with_an_end_message(console: ConsoleServer) -> None:
    request = {"member": MEMBER, "productType": "BENEFIT_PRODUCT_TYPE_MEDICAL",
               "service": {"code": "99214", "codeType": "CODE_TYPE_CPT4", "placeOfServiceCode": "11"},
               "providers": [{"providerId": p, "networkCategory": "NETWORK_CATEGORY_IN_NETWORK", "benefitTierName": "1",
                              "providerSpecialtyCode": s, "negotiatedAmount": {"currencyCode": "USD", "units": "200"}}
                             for p, s in (("a", "08"), ("b", "20"))]}
    status, _, body = await post(console, "costestimator.v1.EstimateService/StreamEstimates", envelope(request),
                                 **{**JSON, "content-type": "application/connect+json"})
    assert status == 200
    messages = envelopes(body)
    assert [flags for flags, _ in messages] == [0, 0, 2]
    assert {m["estimate"]["providerId"] for _, m in messages[:2]} == {"a", "b"}
    assert "error" not in messages[2][1]


async def test_the_connect_deadline_reaches_the_service(console: ConsoleServer, console_app: Application) -> None:
    payer_sandbox(console_app).faults.script("/benefits/v3/retrieve", Fault(status=None, delay=3))
    request = {"member": MEMBER, "productType": "BENEFIT_PRODUCT_TYPE_MEDICAL",
               "service": {"code": "99214", "codeType": "CODE_TYPE_CPT4", "placeOfServiceCode": "11"},
               "providers": [{"providerId": "a", "networkCategory": "NETWORK_CATEGORY_IN_NETWORK",
                              "benefitTierName": "1", "negotiatedAmount": {"currencyCode": "USD", "units": "200"}}]}
    status, _, body = await post(console, "costestimator.v1.EstimateService/Estimate", json.dumps(request),
                                 **JSON, **{"connect-timeout-ms": "300"})
    assert json.loads(body)["code"] == "deadline_exceeded", body
    assert status == 504


async def test_unavailable_service_is_unavailable(console_app: Application) -> None:
    from console.server import ConsoleConfig

    closed = ConsoleServer(ConsoleConfig(host="127.0.0.1", port=0, grpc_target="127.0.0.1:1", loopback=True))
    await closed.start()
    try:
        status, _, body = await post(closed, STATS, "{}", **JSON, **{"connect-timeout-ms": "2000"})
    finally:
        await closed.stop()
    assert json.loads(body)["code"] in ("unavailable", "deadline_exceeded") and status in (503, 504)


@pytest.mark.parametrize("headers, status", [({"Host": "evil.example"}, 421),
                                             ({"Origin": "http://evil.example"}, 403)])
async def test_other_sites_cannot_drive_the_console(console: ConsoleServer, headers: dict[str, str],
                                                    status: int) -> None:
    got, _, _ = await post(console, STATS, "{}", **JSON, **headers)
    assert got == status


async def test_the_page_and_its_modules_are_served_locally(console: ConsoleServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(console.url) as reply:
            page = await reply.text()
            assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
        for src in ("/js/app.js", "/js/gen/services.js", "/console.css"):
            async with http.get(f"{console.url.rstrip('/')}{src}") as reply:
                assert reply.status == 200, src
        async with http.get(f"{console.url}{STATS}") as reply:  # no RPC by GET: nothing in a URL
            assert reply.status == 404
        async with http.get(f"{console.url}../server/settings.py") as reply:
            assert reply.status == 404
    assert "http://" not in page and "https://" not in page  # no CDN


def test_console_port_is_8080_on_loopback_and_off_beyond_unless_set() -> None:
    assert load_settings().effective_console_port == 8080
    assert load_settings(console_port=0).effective_console_port == 0
    beyond = {"host": "0.0.0.0", "auth_hs256_secret": "x" * 32, "auth_issuer": "i", "auth_audience": "a",
              "data_key": "k:" + "A" * 43 + "="}
    assert load_settings(**beyond).effective_console_port == 0
    assert load_settings(**beyond, console_port=9000).effective_console_port == 9000


def test_generated_browser_module_is_fresh() -> None:
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("gen_console", ROOT / "scripts" / "gen_console.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OUT.read_text() == module.render(), "run `python scripts/gen_console.py`"


async def test_a_browser_that_goes_away_cancels_the_upstream_calls(console: ConsoleServer,
                                                                  console_app: Application) -> None:
    plan = payer_sandbox(console_app).faults
    plan.script("/benefits/v3/retrieve", Fault(status=None), Fault(status=None, delay=5))
    request = {"member": MEMBER, "productType": "BENEFIT_PRODUCT_TYPE_MEDICAL",
               "service": {"code": "99214", "codeType": "CODE_TYPE_CPT4", "placeOfServiceCode": "11"},
               "providers": [{"providerId": p, "networkCategory": "NETWORK_CATEGORY_IN_NETWORK", "benefitTierName": "1",
                              "providerSpecialtyCode": s, "negotiatedAmount": {"currencyCode": "USD", "units": "200"}}
                             for p, s in (("fast", "08"), ("slow", "20"))]}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{console.url}costestimator.v1.EstimateService/StreamEstimates", data=envelope(request),
                             headers={**JSON, "content-type": "application/connect+json"}) as reply:
            first = await reply.content.read(5)
            assert first[0] == 0  # the fast provider's message arrived; the slow call is in flight
    for _ in range(50):
        if plan.cancelled["/benefits/v3/retrieve"]:
            break
        await asyncio.sleep(0.1)
    assert plan.cancelled["/benefits/v3/retrieve"] == 1
