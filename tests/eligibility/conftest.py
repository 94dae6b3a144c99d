"""Fixtures for the eligibility domain and the Stedi stand-in (real loopback socket, aiohttp client)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from server.sandbox.stedi import ELIGIBILITY_PATH, StediSandboxConfig, create_stedi_app

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stedi-v3"
TODAY = dt.date(2026, 3, 15)
TEST_KEY = "test_sandbox_key"
PROD_KEY = "live_sandbox_key"
NPI = "1999999984"


def load_fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@dataclass
class StediReply:
    status: int
    body: dict[str, Any]
    request: dict[str, Any]


Post = Callable[..., Awaitable[StediReply]]


def stedi_request(
    member_id: str,
    first: str | None,
    last: str | None,
    dob: str | None,
    *,
    payer: str = "SBX01",
    dependent: dict[str, Any] | None = None,
    dos: str | None = "20260315",
    stcs: list[str] | None = None,
) -> dict[str, Any]:
    subscriber = {k: v for k, v in {"memberId": member_id, "firstName": first, "lastName": last, "dateOfBirth": dob}.items() if v}
    body: dict[str, Any] = {
        "tradingPartnerServiceId": payer,
        "provider": {"organizationName": "Riverbend Family Medicine", "npi": NPI},
        "subscriber": subscriber,
        "encounter": {"serviceTypeCodes": stcs or ["30"]},
    }
    if dos:
        body["encounter"]["dateOfService"] = dos
    if dependent:
        body["dependents"] = [dependent]
    return body


def sandbox_config(**overrides: Any) -> StediSandboxConfig:
    base: dict[str, Any] = {
        "api_keys": frozenset({TEST_KEY, PROD_KEY}),
        "slow_seconds": 0.3,
        "payer_timeout_seconds": 0.3,
        "flaky_failures": 2,
        "today": lambda: TODAY,
    }
    base.update(overrides)
    return StediSandboxConfig(**base)


@dataclass
class Served:
    base_url: str
    session: aiohttp.ClientSession

    async def post(self, body: Any, *, key: str | None = TEST_KEY, path: str = ELIGIBILITY_PATH,
                   raw: bytes | None = None) -> StediReply:
        headers = {"Authorization": key} if key is not None else {}
        kwargs: dict[str, Any] = {"data": raw, "headers": {**headers, "Content-Type": "application/json"}} if raw is not None else {"json": body, "headers": headers}
        async with self.session.post(self.base_url + path, **kwargs) as response:
            payload = await response.json(content_type=None)
            return StediReply(response.status, payload if isinstance(payload, dict) else {}, body)


async def serve(app: web.Application) -> AsyncIterator[Served]:
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            yield Served(f"http://{host}:{port}", session)
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def stedi() -> AsyncIterator[Served]:
    async for served in serve(create_stedi_app(sandbox_config())):
        yield served


@pytest.fixture
def today() -> dt.date:
    return TODAY
