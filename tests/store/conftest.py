"""Fixtures for the store tests: a fresh SQLite file per test, and one PostgreSQL schema per test session.

PostgreSQL comes from COSTEST_TEST_POSTGRES_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test).
When it is unreachable its tests are skipped with the reason, unless COSTEST_REQUIRE_POSTGRES=1 makes that an
error. Each session migrates into its own schema `costest_t_<pid>_<random>` and drops it at the end, so parallel
runs sharing the database never see each other's rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.store import EligibilityRepository, PoolOptions, create_engine_for, migrate, redacted, sqlite_url_for
from tests.conftest import PG_URL_ENV, postgres_url, unavailable
from tests.store.helpers import SEALER, SECRET, FakeClock, Target, drop_schema, new_schema_name

async def _postgres_problem(url: str) -> str | None:
    """None when PostgreSQL answers, else why not (without the password)."""
    engine = create_engine_for(url, pool=PoolOptions(pool_size=1, max_overflow=0))
    try:
        async with asyncio.timeout(5):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable" here
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres_server() -> str:
    """The PostgreSQL URL, or skip (fail with COSTEST_REQUIRE_POSTGRES=1) when it does not answer."""
    url = postgres_url()
    problem = await _postgres_problem(url)
    if problem is not None:
        unavailable("postgres", f"PostgreSQL unreachable at {redacted(url)} ({problem}); set {PG_URL_ENV} to use "
                                "another server")
    return url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres_schema(postgres_server: str) -> AsyncIterator[Target]:
    """One migrated schema for the whole session, dropped at the end."""
    schema = new_schema_name()
    await migrate(postgres_server, schema=schema)
    try:
        yield Target("postgres", postgres_server, schema)
    finally:
        await drop_schema(postgres_server, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if backend == "postgres":
        pg: Target = request.getfixturevalue("postgres_schema")
        return pg
    return Target("sqlite", sqlite_url_for(tmp_path / "data"))


@pytest_asyncio.fixture
async def make_engine(target: Target) -> AsyncIterator[Callable[[], AsyncEngine]]:
    """Engines on the test's database (a second one stands for a second server process); all disposed."""
    engines: list[AsyncEngine] = []

    def factory() -> AsyncEngine:
        engine = create_engine_for(target.url, schema=target.schema)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        await engine.dispose()


@pytest_asyncio.fixture
async def engine(target: Target, make_engine: Callable[[], AsyncEngine]) -> AsyncEngine:
    """A migrated, empty database: a fresh SQLite file, or the session's PostgreSQL schema truncated."""
    if target.backend == "sqlite":
        await migrate(target.url)
    engine = make_engine()
    if target.backend == "postgres":
        async with engine.begin() as conn:
            await conn.execute(
                text("TRUNCATE eligibility_attempts, eligibility_responses, eligibility_requests CASCADE")
            )
    return engine


@pytest.fixture
def repo(engine: AsyncEngine) -> EligibilityRepository:
    return EligibilityRepository(engine, page_token_secret=SECRET, sealer=SEALER)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clocked_repo(engine: AsyncEngine, clock: FakeClock) -> EligibilityRepository:
    return EligibilityRepository(engine, page_token_secret=SECRET, sealer=SEALER, clock=clock)
