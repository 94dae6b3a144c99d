"""OAuth2 client-credentials: caching, early refresh, single flight, 401 handling, no secrets in logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from server.clients import (
    AccessToken,
    PayerClients,
    TokenConfig,
    UpstreamAuthError,
    UpstreamDeadlineExceeded,
    UpstreamUnavailable,
)
from server.clients.resilience import Deadline
from server.sandbox.faults import Fault
from server.sandbox.payer import PayerSandboxConfig, RunningSandbox, start_payer_sandbox
from tests.clients.payer_client_helpers import BENEFITS, TOKEN, MakeClients, benefit_request, payer_config


async def test_401_refreshes_once_then_succeeds(clients: PayerClients, sandbox: RunningSandbox) -> None:
    await clients.benefits.get_benefits(benefit_request(), timeout=2)
    sandbox.faults.expire_tokens()
    await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert sandbox.calls["token"] == 2  # exactly one extra fetch
    assert sandbox.calls["benefits"] == 3  # ok, 401, ok


async def test_401_twice_is_an_auth_error_not_a_loop(clients: PayerClients, sandbox: RunningSandbox) -> None:
    sandbox.faults.script(BENEFITS, Fault(status=401), Fault(status=401), Fault(status=401))
    with pytest.raises(UpstreamAuthError) as err:
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert err.value.upstream == "benefits"
    assert sandbox.calls["benefits"] == 2
    assert sandbox.calls["token"] == 2


async def test_100_concurrent_calls_with_an_expired_token_fetch_once(
    clients: PayerClients, sandbox: RunningSandbox
) -> None:
    await clients.accumulators.get_accumulators("5~186103331+10+7+20260101+793854+8A+829", "3~", timeout=2)
    sandbox.faults.expire_tokens()
    sandbox.faults.set_latency(0.05, BENEFITS)  # keep them all in flight together
    answers = await asyncio.gather(*[clients.benefits.get_benefits(benefit_request(), timeout=5) for _ in range(100)])
    assert len(answers) == 100
    assert sandbox.calls["token"] == 2
    assert clients.tokens.fetch_count == 2


async def test_100_concurrent_cold_calls_fetch_once(clients: PayerClients, sandbox: RunningSandbox) -> None:
    sandbox.faults.set_latency(0.05, TOKEN)
    await asyncio.gather(*[clients.benefits.get_benefits(benefit_request(), timeout=5) for _ in range(100)])
    assert sandbox.calls["token"] == 1


@pytest_asyncio.fixture
async def short_token_sandbox() -> AsyncIterator[RunningSandbox]:
    running = await start_payer_sandbox(PayerSandboxConfig(token_ttl=0.6))
    try:
        yield running
    finally:
        await running.close()


async def test_token_refreshed_early_in_the_background(
    make_clients: MakeClients, short_token_sandbox: RunningSandbox
) -> None:
    clients = await make_clients(payer_config(short_token_sandbox, token={"refresh_margin": 60}))
    first = await clients.tokens.get()
    assert first.expires_in == pytest.approx(0.6)
    assert first.refresh_at - first.obtained_at == pytest.approx(0.3)  # never earlier than half the lifetime
    await asyncio.sleep(0.4)
    assert await clients.tokens.get() is first  # still valid: served while one refresh runs
    await asyncio.sleep(0.05)
    second = await clients.tokens.get()
    assert second is not first
    assert short_token_sandbox.calls["token"] == 2


async def test_expired_token_is_fetched_before_the_call(
    make_clients: MakeClients, short_token_sandbox: RunningSandbox
) -> None:
    clients = await make_clients(payer_config(short_token_sandbox, token={"refresh_margin": 0.1}))
    await clients.benefits.get_benefits(benefit_request(), timeout=2)
    await asyncio.sleep(0.65)
    await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert short_token_sandbox.calls == {"token": 2, "benefits": 2}  # no 401 round trip


async def test_bad_client_secret_is_an_auth_error(make_clients: MakeClients, sandbox: RunningSandbox) -> None:
    clients = await make_clients(token={"client_secret": "wrong"})
    with pytest.raises(UpstreamAuthError, match="refused the client credentials"):
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert sandbox.calls == {"token": 1}


async def test_token_endpoint_errors_are_retried(clients: PayerClients, sandbox: RunningSandbox) -> None:
    sandbox.faults.fail_next(TOKEN, 503)
    await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert sandbox.calls["token"] == 2
    assert clients.tokens.fetch_count == 1  # one logical fetch, two attempts


async def test_caller_deadline_does_not_cancel_the_shared_fetch(clients: PayerClients, sandbox: RunningSandbox) -> None:
    sandbox.faults.set_latency(0.3, TOKEN)
    impatient = asyncio.ensure_future(clients.tokens.get(Deadline.after(0.05)))
    patient = asyncio.ensure_future(clients.tokens.get(Deadline.after(2)))
    with pytest.raises(UpstreamDeadlineExceeded):
        await impatient
    token = await patient
    assert isinstance(token, AccessToken)
    assert sandbox.calls["token"] == 1


async def test_invalidate_only_drops_the_current_token(clients: PayerClients, sandbox: RunningSandbox) -> None:
    old = await clients.tokens.get()
    clients.tokens.invalidate(old)
    new = await clients.tokens.get()
    clients.tokens.invalidate(old)  # a late 401 for the old token changes nothing
    assert await clients.tokens.get() is new
    assert sandbox.calls["token"] == 2


async def test_secrets_and_tokens_never_logged_or_shown(
    clients: PayerClients, sandbox: RunningSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await clients.benefits.get_benefits(benefit_request(), timeout=2)
    sandbox.faults.expire_tokens()
    await clients.accumulators.get_accumulators("5~186103331+10+7+20260101+793854+8A+829", "3~", timeout=2)
    token = await clients.tokens.get()
    secret = sandbox.config.client_secret
    for text in (repr(clients.config.token), str(clients.config.token), repr(token), repr(clients.tokens)):
        assert secret not in text and token.access_token not in text
        assert token.id_token is not None and token.id_token not in text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    issued = list(sandbox.sandbox._tokens)  # every access token the sandbox handed out
    assert len(issued) == 2
    for needle in [secret, *issued, "186103331", "membershipId"]:
        assert needle not in logged
    assert repr(TokenConfig("u", "id", "s3cr3t")).count("s3cr3t") == 0


async def test_refused_credentials_are_single_flight_and_fail_fast(
    make_clients: MakeClients, sandbox: RunningSandbox
) -> None:
    """100 concurrent calls while the token endpoint refuses our credentials: ONE token request, then every
    call in the backoff fails fast with the same error (the old code made 58 token requests)."""
    clients = await make_clients(token={"client_secret": "wrong-secret", "failure_backoff": 30.0})
    results = await asyncio.gather(
        *[clients.benefits.get_benefits(benefit_request(), timeout=5) for _ in range(100)], return_exceptions=True
    )
    assert all(isinstance(r, UpstreamAuthError) for r in results), results
    assert sandbox.calls["token"] == 1
    assert sandbox.calls["benefits"] == 0
    # Later calls within the backoff: still no new token request.
    for _ in range(5):
        with pytest.raises(UpstreamAuthError, match="refused the client credentials"):
            await clients.benefits.get_benefits(benefit_request(), timeout=5)
    assert sandbox.calls["token"] == 1


async def test_after_the_failure_backoff_a_new_fetch_is_tried(
    make_clients: MakeClients, sandbox: RunningSandbox
) -> None:
    clients = await make_clients(token={"failure_backoff": 0.2})
    sandbox.faults.fail_next(TOKEN, 401)
    with pytest.raises(UpstreamAuthError):
        await clients.benefits.get_benefits(benefit_request(), timeout=5)
    with pytest.raises(UpstreamAuthError):
        await clients.benefits.get_benefits(benefit_request(), timeout=5)
    assert sandbox.calls["token"] == 1
    await asyncio.sleep(0.25)
    await clients.benefits.get_benefits(benefit_request(), timeout=5)  # the endpoint works again
    assert sandbox.calls["token"] == 2


async def test_a_hung_token_endpoint_is_the_upstreams_failure_not_a_callers_deadline(
    make_clients: MakeClients, sandbox: RunningSandbox
) -> None:
    """The shared fetch has no caller's deadline: when the endpoint outlasts the upstream's own budget, waiters
    without a deadline of their own get UNAVAILABLE (the upstream failed), never DEADLINE_EXCEEDED."""
    clients = await make_clients(**{"payer-oauth": {"timeout": 0.2, "total_timeout": 0.5}})
    sandbox.faults.set_latency(5, TOKEN)
    with pytest.raises(UpstreamUnavailable) as err:
        await clients.tokens.get()
    assert not isinstance(err.value, UpstreamDeadlineExceeded)


async def test_a_failed_background_refresh_is_not_retried_on_every_call_within_the_backoff(
    make_clients: MakeClients, short_token_sandbox: RunningSandbox
) -> None:
    """Inside the refresh window the current token is served; a refresh the endpoint refused is tried again only
    after the failure backoff, not on each of the calls meanwhile."""
    clients = await make_clients(payer_config(short_token_sandbox, token={"refresh_margin": 60,
                                                                          "failure_backoff": 30.0}))
    first = await clients.tokens.get()
    await asyncio.sleep(0.35)  # past refresh_at (half the 0.6 s lifetime), before it expires
    short_token_sandbox.faults.fail_next(TOKEN, 400, count=100)
    for _ in range(20):
        assert await clients.tokens.get() is first  # still valid: served
        await asyncio.sleep(0.005)
    assert short_token_sandbox.calls["token"] == 2  # the first fetch and one refused refresh
