"""Fixtures for the upstream-client tests: a real payer stand-in on loopback and real clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from server.clients import PayerClients, PayerClientsConfig
from server.sandbox.payer import PayerSandboxConfig, RunningSandbox, start_payer_sandbox
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


