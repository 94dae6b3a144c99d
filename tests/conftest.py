"""Shared fixtures: the real server on an ephemeral port, and channels to it.

Why not pytest-grpc (installed as the issue asks, deliberately unused): its fixtures always build a *sync*
`grpc.server(ThreadPoolExecutor)`, so an `async def` servicer method returns an un-awaited coroutine and the call
fails with INTERNAL "Failed to serialize response!". Its `--grpc-fake-server` mode breaks on current stubs
(`FakeServer` lacks `add_registered_method_handlers`), and its `grpc_addr` fixture leaks a bound socket, which
errors under `filterwarnings = error`. The asyncio redesign (kataev/pytest-grpc#15) was never merged. So these are
pytest-asyncio fixtures around our own `Application`, which is exactly what `python -m server` runs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, NoReturn

import grpc
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from server.app import Application
from server.settings import Settings, load_settings
from server.store import Keyring

ROOT = Path(__file__).resolve().parent.parent


PG_URL_ENV = "COSTEST_TEST_POSTGRES_URL"
#: The keyring of every test server that shares a PostgreSQL database (see `make_settings`).
SHARED_DATA_KEY = Keyring.new_entry("tests")
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """The PostgreSQL the tests may use (a user's machine may have none)."""
    return os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL


def required(service: str) -> bool:
    """CI sets COSTEST_REQUIRE_<SERVICE>=1: then a missing service fails its tests instead of skipping them."""
    return os.environ.get(f"COSTEST_REQUIRE_{service.upper()}", "").strip().lower() in ("1", "true", "yes")


def unavailable(service: str, message: str) -> NoReturn:
    """Skip with the reason, or fail when the service is mandatory here."""
    text = f"{message}; COSTEST_REQUIRE_{service.upper()}=1 makes this a failure instead of a skip"
    if required(service):
        pytest.fail(text, pytrace=False)
    pytest.skip(text)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings on an ephemeral port and a private data dir, ignoring the developer's environment."""

    def factory(**overrides: Any) -> Settings:
        base: dict[str, Any] = {"port": 0, "data_dir": tmp_path / "data", "grace_seconds": 1.0}
        if overrides.get("database_url") and not ({"data_key", "data_key_file"} & overrides.keys()):
            # A PostgreSQL database outlives one test's data dir (and its generated development key): every test
            # server sealing into it must use the same keyring, or the next one's key check refuses the start.
            base["data_key"] = SHARED_DATA_KEY
        base.update(overrides)
        return load_settings(**base)

    return factory


@pytest_asyncio.fixture
async def start_app(make_settings: Callable[..., Settings]) -> AsyncIterator[Callable[..., Any]]:
    """`await start_app(**settings)`: a started Application with its own metrics registry, stopped after the test."""
    started: list[Application] = []

    async def factory(**overrides: Any) -> Application:
        application = Application(make_settings(**overrides), registry=CollectorRegistry())
        await application.start()
        started.append(application)
        return application

    yield factory
    for application in reversed(started):
        await application.stop(grace=0)


def auth(app: Application) -> tuple[tuple[str, str], ...]:
    """Call metadata with the application's development token."""
    return (("authorization", f"Bearer {app.dev_token}"),)


def payer_sandbox(app: Application) -> Any:
    assert app.payer is not None and app.payer.sandbox is not None
    return app.payer.sandbox


@pytest_asyncio.fixture
async def app(make_settings: Callable[..., Settings]) -> AsyncIterator[Application]:
    application = Application(make_settings())
    await application.start()
    yield application
    await application.stop(grace=0)


@pytest_asyncio.fixture
async def channel(app: Application) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        yield ch


@pytest_asyncio.fixture
async def redis_url() -> str:
    """A reachable Redis (database 15 unless COSTEST_REDIS_URL says otherwise), or skip (fail when
    COSTEST_REQUIRE_REDIS=1)."""
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
