"""No pre-ping, yet no failed call after PostgreSQL restarts (or a proxy drops every connection) while idle: a
pooled connection found dead on first use is replaced and the call runs once more. And a silent database ends a
call with `StoreUnavailable` within the repository's timeout."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from server.store import (
    CheckStatus,
    Completion,
    EligibilityRepository,
    PoolOptions,
    StoreDeadlineExceeded,
    StoreUnavailable,
    create_engine_for,
)
from tests.store.helpers import SEALER, SECRET, Target, new_tenant
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


@pytest_asyncio.fixture
async def proxied(postgres_schema: Target) -> AsyncIterator[tuple[TcpProxy, EligibilityRepository]]:
    target = make_url(postgres_schema.url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    engine = create_engine_for(url, schema=postgres_schema.schema, pool=PoolOptions(pool_size=3, max_overflow=0),
                               timeout=1.0)
    try:
        yield proxy, EligibilityRepository(engine, page_token_secret=SECRET, sealer=SEALER, timeout=1.0)
    finally:
        proxy.restore()
        await engine.dispose()
        await proxy.close()


async def test_dead_pooled_connections_are_replaced_without_a_failed_call(
    proxied: tuple[TcpProxy, EligibilityRepository],
) -> None:
    proxy, repo = proxied
    t = new_tenant()
    record = await repo.create_pending(t, payer_id="SBX01", request_payload={"n": 1})
    assert await repo.get(t, record.id) is not None
    proxy.cut()  # every pooled connection dies while nobody uses it
    proxy.restore()
    # Each call below finds a dead pooled connection first (nothing pinged it at checkout).
    assert (await repo.get(t, record.id)) is not None
    assert (await repo.finish(record, Completion(CheckStatus.VERIFIED, summary={"active": True}))) is not None
    assert (await repo.get(t, record.id)).status is CheckStatus.VERIFIED  # type: ignore[union-attr]


async def test_a_silent_database_ends_a_call_within_the_timeout(
    proxied: tuple[TcpProxy, EligibilityRepository],
) -> None:
    proxy, repo = proxied
    t = new_tenant()
    record = await repo.create_pending(t, payer_id="SBX01", request_payload={"n": 1})
    proxy.blackhole()
    start = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await repo.get(t, record.id)
    assert time.monotonic() - start < 3.0  # timeout 1 s (+ scheduling); never the driver's 2 s close on top
    start = time.monotonic()
    with pytest.raises(StoreDeadlineExceeded):  # a caller's nearer deadline wins over the store timeout
        await repo.create_pending(t, payer_id="SBX01", request_payload={"n": 2}, deadline=time.monotonic() + 0.2)
    assert time.monotonic() - start < 0.9
    proxy.restore()
    assert await repo.get(t, record.id) is not None


async def test_a_database_that_refuses_the_connection_fails_the_same_way_on_both_paths(
    postgres_schema: Target,
) -> None:
    """The hot path (PENDING insert) and a Core read raise the same SQLAlchemy error when no connection opens."""
    url = make_url(postgres_schema.url).set(database="costest_no_such_database").render_as_string(
        hide_password=False)
    engine = create_engine_for(url, schema=postgres_schema.schema, timeout=2.0)
    repo = EligibilityRepository(engine, page_token_secret=SECRET, sealer=SEALER, timeout=2.0)
    try:
        errors = []
        for call in (lambda: repo.create_pending(new_tenant(), payer_id="SBX01", request_payload={"n": 1}),
                     lambda: repo.get(new_tenant(), "c1")):
            with pytest.raises(Exception) as caught:
                await call()
            errors.append(caught.value)
        assert type(errors[0]) is type(errors[1]), errors
        assert "sqlalchemy" in type(errors[0]).__module__ or isinstance(errors[0], StoreUnavailable), errors
    finally:
        await engine.dispose()
