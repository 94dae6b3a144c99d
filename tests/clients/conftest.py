"""Fixtures for the upstream-client tests: a real payer stand-in on loopback and real clients."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from server.clients import PayerClients, PayerClientsConfig
from server.sandbox.payer import PayerSandboxConfig, RunningSandbox, start_payer_sandbox
from tests.conftest import unavailable
from tests.clients.payer_client_helpers import MakeClients, payer_config


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest_asyncio.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    running = await start_payer_sandbox(PayerSandboxConfig())
    try:
        yield running
    finally:
        await running.close()


@pytest_asyncio.fixture
async def make_clients(sandbox: RunningSandbox, registry: CollectorRegistry) -> AsyncIterator[MakeClients]:
    """Build started `PayerClients` against the sandbox (closed at teardown)."""
    made: list[PayerClients] = []

    async def make(config: PayerClientsConfig | None = None, *, reg: CollectorRegistry | None = None, **overrides: Any) -> PayerClients:
        clients = PayerClients(config or payer_config(sandbox, **overrides), registry=reg or registry)
        await clients.start()
        made.append(clients)
        return clients

    try:
        yield make
    finally:
        for c in made:
            await c.close()


@pytest_asyncio.fixture
async def clients(make_clients: MakeClients) -> PayerClients:
    return await make_clients()


@pytest_asyncio.fixture
async def redis_url() -> str:
    """A reachable Redis, or skip (fail when COSTEST_REQUIRE_REDIS=1)."""
    from redis import asyncio as aioredis
    from redis.exceptions import RedisError

    url = os.environ.get("COSTEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = aioredis.from_url(url, socket_connect_timeout=0.5)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        unavailable("redis", f"Redis not reachable at {url} ({type(exc).__name__})")
    finally:
        await client.aclose()
    return url
