"""EligibilityService end to end: the real server on a socket, the Stedi stand-in on a socket, a real database.

Every test runs on SQLite (a fresh file) and on PostgreSQL: one private database `costest_es_<pid>_<hex>` per test
session, created from COSTEST_TEST_POSTGRES_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test) and
dropped at the end. PostgreSQL tests are skipped with the reason when it does not answer, unless
COSTEST_REQUIRE_POSTGRES=1 makes that a failure. Each test uses its own tenant, so tests sharing the PostgreSQL
database never see each other's rows. The Stedi stand-in runs with small knobs (slow payer 1 s, one flaky 42).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aiohttp import web
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from server.sandbox.faults import FaultPlan
from server.sandbox.stedi import StediSandboxConfig, create_stedi_app
from server.settings import Settings
from server.store import Keyring, redacted
from server.app import Application
from tests.conftest import PG_URL_ENV, postgres_url, unavailable
from tests.eligibility_service.helpers import Client, new_tenant

STEDI_KEY = "test_eligibility_service_key"
SLOW_SECONDS = 1.0
TEST_BUDGET_SECONDS = 1.5  # AAA 42/80: attempt, wait 0 s, attempt, then the 2 s wait no longer fits → FAILED
# Member data at rest: one keyring for the whole session, since the PostgreSQL database is shared by its tests.
DATA_KEY = Keyring.new_entry("es-tests")


def _admin_url() -> str:
    url = postgres_url()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    parsed = make_url(url)
    if parsed.drivername != "postgresql+asyncpg":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pg_database() -> AsyncIterator[str]:
    """A private PostgreSQL database for the session (skipped or failed when PostgreSQL does not answer)."""
    admin = _admin_url()
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    name = f"costest_es_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        try:
            async with asyncio.timeout(5), engine.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001 - any failure means "unreachable" here
            unavailable("postgres", f"PostgreSQL unreachable at {redacted(admin)} ({type(exc).__name__}); "
                                    f"set {PG_URL_ENV} to use another server")
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """None = the embedded SQLite file in the test's data dir."""
    if backend == "postgres":
        url: str = request.getfixturevalue("pg_database")
        return url
    return None


@dataclass
class StediStandIn:
    url: str
    key: str
    faults: FaultPlan
    runner: web.AppRunner


@contextlib.asynccontextmanager
async def stedi_stand_in(*, slow_seconds: float, payer_timeout_seconds: float) -> AsyncIterator[StediStandIn]:
    """The Stedi stand-in on loopback with the tests' key and its own fault plan."""
    faults = FaultPlan()
    config = StediSandboxConfig(api_keys=frozenset({STEDI_KEY}), slow_seconds=slow_seconds,
                                payer_timeout_seconds=payer_timeout_seconds, flaky_failures=1)
    runner = web.AppRunner(create_stedi_app(config, faults), handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield StediStandIn(f"http://{host}:{port}", STEDI_KEY, faults, runner)
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def stedi() -> AsyncIterator[StediStandIn]:
    async with stedi_stand_in(slow_seconds=SLOW_SECONDS, payer_timeout_seconds=1.0) as stand_in:
        yield stand_in


MakeApp = Callable[..., Awaitable[Application]]


@pytest.fixture
def tenant() -> str:
    return new_tenant()


@pytest.fixture
def app_settings(
    make_settings: Callable[..., Settings], database_url: str | None, stedi: StediStandIn, tenant: str
) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "stedi_url": stedi.url,
            "stedi_api_key": stedi.key,
            "eligibility_retry_budget_seconds": TEST_BUDGET_SECONDS,
            "worker_poll_seconds": 0.1,
            "stale_pending_seconds": 60,
            "dev_tenant": tenant,
            "data_key": DATA_KEY,
        }
        values.update(overrides)
        return make_settings(**values)

    return factory


@pytest_asyncio.fixture
async def make_app(app_settings: Callable[..., Settings]) -> AsyncIterator[MakeApp]:
    """Start applications (each with its own metrics registry); all stopped at teardown."""
    apps: list[Application] = []

    async def make(**overrides: Any) -> Application:
        app = Application(app_settings(**overrides), registry=CollectorRegistry())
        await app.start()
        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in reversed(apps):
            await app.stop(grace=0)


@pytest_asyncio.fixture
async def el_app(make_app: MakeApp) -> Application:
    return await make_app()


@pytest_asyncio.fixture
async def client(el_app: Application) -> AsyncIterator[Client]:
    assert el_app.dev_token is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{el_app.port}") as channel:
        yield Client(channel, el_app.dev_token)
