"""An open clearinghouse breaker (issue 9 §2, the eligibility side).

A submitted check waits for the breaker within its retry budget instead of failing at once; a synchronous check
ends FAILED (stored) and its error IS a `CircuitOpen` carrying `retry_after` (→ UNAVAILABLE with RetryInfo).
Members SBX503001 answer 503 and open the breaker; the loop below keeps sending them until a check is refused
by the open breaker, so it does not depend on the breaker's exact threshold. The tests lower its minimum of
requests to 3: under the clearinghouse's waits (1 s, 4 s) each failing check lasts its whole budget, and twenty of
them would take most of a minute.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from server.api.eligibility_convert import inquiry_from_pb
from server.app import Application
from server.clients.errors import CircuitOpen
from server.store import CheckStatus
from server.usecases.eligibility import EligibilityCheckFailed, service_today
from tests.eligibility_service.conftest import MakeApp
from tests.eligibility_service.helpers import RIVERA, UNAVAILABLE, Client, inquiry, status_name

CIRCUIT_OPEN = "STEDI_UNAVAILABLE (circuit open)"


def _client(app: Application, channel: grpc.aio.Channel) -> Client:
    assert app.dev_token is not None
    return Client(channel, app.dev_token)


async def _open_the_breaker(client: Client, rounds: int = 10) -> None:
    for _ in range(rounds):
        errors = await asyncio.gather(*(client.check_error(inquiry(*UNAVAILABLE)) for _ in range(3)))
        assert all(e.code() is grpc.StatusCode.UNAVAILABLE for e in errors)
        if any("circuit open" in (e.details() or "") for e in errors):
            return
    raise AssertionError("the clearinghouse breaker never opened")


async def test_a_submitted_check_waits_for_an_open_breaker_and_ends_verified(make_app: MakeApp) -> None:
    app = await make_app(breaker_ttl_seconds=3, eligibility_retry_budget_seconds=30, breaker_min_requests=3)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = _client(app, channel)
        await _open_the_breaker(client)  # just opened: it stays open for about 3 s more
        submitted = await client.submit(inquiry(*RIVERA))
        states = await client.watch(submitted.id, timeout=20)
        final = states[-1]
        assert status_name(final.status) == "VERIFIED", final.failure_reason
        assert final.summary.plan_name == "CHOICE PPO 2500"
        assert final.attempts == 1  # refused by the breaker = no call; then one real call
        waited = final.completed_at.ToDatetime() - final.requested_at.ToDatetime()
        assert waited.total_seconds() >= 1.0  # it waited for the breaker to let it through


async def test_a_submitted_check_fails_only_when_the_budget_is_spent(make_app: MakeApp) -> None:
    app = await make_app(breaker_ttl_seconds=60, eligibility_retry_budget_seconds=1.5, breaker_min_requests=3)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = _client(app, channel)
        await _open_the_breaker(client)
        submitted = await client.submit(inquiry(*RIVERA))
        final = (await client.watch(submitted.id, timeout=20))[-1]
        assert status_name(final.status) == "FAILED" and final.failure_reason == CIRCUIT_OPEN
        waited = final.completed_at.ToDatetime() - final.requested_at.ToDatetime()
        assert waited.total_seconds() >= 1.4  # it waited for the breaker until its budget was spent


async def test_a_synchronous_check_ends_failed_with_a_circuit_open_error(make_app: MakeApp, tenant: str) -> None:
    app = await make_app(breaker_ttl_seconds=60, breaker_min_requests=3)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = _client(app, channel)
        await _open_the_breaker(client)
        exc = await client.check_error(inquiry(*RIVERA, patient_id="over-grpc"))
        assert exc.code() is grpc.StatusCode.UNAVAILABLE and "circuit open" in (exc.details() or "")
        (row,) = (await client.list(patient_id="over-grpc")).checks
        assert status_name(row.status) == "FAILED" and row.failure_reason == CIRCUIT_OPEN
    # The use case's error itself: a CircuitOpen (for RetryInfo) that is also the stored FAILED check.
    assert app.eligibility is not None
    checks = app.eligibility.checks
    with pytest.raises(CircuitOpen) as caught:
        await checks.check(tenant, inquiry_from_pb(inquiry(*RIVERA), today=service_today()), timeout=10)
    error = caught.value
    assert isinstance(error, EligibilityCheckFailed) and isinstance(error.__cause__, CircuitOpen)
    assert error.retry_after is not None and 0 < error.retry_after <= 60
    stored = await checks.get(tenant, error.check_id)
    assert stored.status is CheckStatus.FAILED and stored.failure_reason == CIRCUIT_OPEN
