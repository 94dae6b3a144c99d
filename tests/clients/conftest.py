"""Fixtures for the upstream-client tests: real payer and Stedi stand-ins on loopback and real clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from prometheus_client import CollectorRegistry

from server.clients import PayerClients, PayerClientsConfig
from server.sandbox.faults import FaultPlan
from server.sandbox.payer import PayerSandboxConfig, RunningSandbox, start_payer_sandbox
from server.sandbox.stedi import StediSandboxConfig, create_stedi_app
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


STEDI_KEY = "test_stedi_key"  # the API key the Stedi stand-in of `stedi_url` accepts


@pytest_asyncio.fixture
async def stedi_url(plan: FaultPlan) -> AsyncIterator[str]:
    """The Stedi stand-in on a loopback port, accepting `STEDI_KEY`, faulted by the test module's `plan`."""
    app = create_stedi_app(StediSandboxConfig(api_keys=frozenset({STEDI_KEY})), faults=plan)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
