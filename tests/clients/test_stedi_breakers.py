"""The clearinghouse client's breakers and tries over a real socket (the Stedi stand-in with fault injection).

Issue 9 §2: "payer unable to respond" (AAA 42/80) counts toward that payer's circuit only; clearinghouse 5xx
toward the "stedi" circuit; member-data answers and 4xx never count. Issue 9 §3: a reset mid-body is a try.
"""

from __future__ import annotations

import json

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from server.clients import CircuitOpen, Deadline, Resilience, UpstreamAuthError, UpstreamConfig, UpstreamUnavailable
from server.clients.http import UpstreamSession
from server.clients.stedi import HttpTry, StediClient
from server.sandbox.faults import Fault, FaultPlan
from server.clients import stedi as stedi_module
from server.sandbox.stedi import ELIGIBILITY_PATH
from tests.clients.conftest import STEDI_KEY

KEY = STEDI_KEY
MakeStedi = Callable[..., Awaitable[StediClient]]


def check_body(member_id: str, first: str = "Pat", last: str = "Quinn", dob: str = "19800101",
               payer: str = "SBX01") -> dict[str, Any]:
    return {
        "tradingPartnerServiceId": payer,
        "provider": {"organizationName": "Riverbend Family Medicine", "npi": "1999999984"},
        "subscriber": {"memberId": member_id, "firstName": first, "lastName": last, "dateOfBirth": dob},
        "encounter": {"serviceTypeCodes": ["30"]},
    }


HEALTHY = check_body("SBX100001", "Alex", "Rivera", "19850412")


@pytest.fixture
def plan() -> FaultPlan:
    return FaultPlan()


@pytest_asyncio.fixture
async def make_stedi(stedi_url: str) -> AsyncIterator[MakeStedi]:
    sessions: list[UpstreamSession] = []

    async def make(key: str = KEY, **overrides: Any) -> StediClient:
        values: dict[str, Any] = dict(timeout=2.0, total_timeout=5.0, attempts=5, backoff_multiplier=0.01,
                                      backoff_max=0.02, backoff_jitter=0.0, breaker_min_requests=3, breaker_ttl=30.0)
        values.update(overrides)
        session = UpstreamSession(UpstreamConfig("stedi", stedi_url, **values))
        await session.start()
        sessions.append(session)
        return StediClient(session, Resilience(registry=CollectorRegistry()), key)

    try:
        yield make
    finally:
        for s in sessions:
            await s.close()


def circuit(client: StediClient, name: str) -> Any:
    return client._resilience.breakers.find(name)


async def test_aaa_42_opens_that_payers_circuit_only(make_stedi: MakeStedi, plan: FaultPlan) -> None:
    client = await make_stedi()
    for _ in range(3):  # SBX420001 is AAA 42 (payer unable to respond) every time
        answer = await client.check(check_body("SBX420001"), deadline=Deadline.after(5))
        assert answer.aaa_codes == ("42",)
    assert await client._resilience.state("stedi-payer:SBX01") == "open"
    assert await client._resilience.state("stedi") == "closed"
    seen = plan.seen[ELIGIBILITY_PATH]

    # Before sending: a check for that payer is refused at once, whoever the member is.
    with pytest.raises(CircuitOpen) as err:
        await client.check(HEALTHY, deadline=Deadline.after(5))
    assert err.value.circuit == "stedi-payer:SBX01" and err.value.upstream == "stedi"
    assert 29 < (err.value.retry_after or 0) <= 30
    assert plan.seen[ELIGIBILITY_PATH] == seen

    # Another payer behind the same clearinghouse is unaffected.
    other = await client.check(check_body("SBX100001", payer="NOPE1"), deadline=Deadline.after(5))
    assert other.http_status == 400
    assert plan.seen[ELIGIBILITY_PATH] == seen + 1


async def test_member_data_answers_never_count(make_stedi: MakeStedi) -> None:
    client = await make_stedi()
    members = [
        check_body("SBX999999"),  # AAA 75 subscriber not found
        check_body("XYZ-123"),  # AAA 72 invalid member id
        check_body("SBX100001", "Alex", "Rivera", "19850101"),  # AAA 71 birth date mismatch
    ]
    for body in members * 3:
        answer = await client.check(body, deadline=Deadline.after(5))
        assert answer.aaa_codes and not {"42", "80"} & set(answer.aaa_codes)
    payer = circuit(client, "stedi-payer:SBX01")
    assert payer.state == "closed" and payer.counts() == (9, 0)
    assert circuit(client, "stedi").counts() == (9, 0)


async def test_4xx_from_the_clearinghouse_never_counts(make_stedi: MakeStedi) -> None:
    client = await make_stedi(key="test_not_a_known_key")
    for _ in range(5):
        with pytest.raises(UpstreamAuthError):
            await client.check(HEALTHY, deadline=Deadline.after(5))
    assert circuit(client, "stedi").counts() == (0, 0)
    assert circuit(client, "stedi-payer:SBX01").counts() == (0, 0)
    assert await client._resilience.state("stedi") == "closed"


async def test_clearinghouse_503_counts_once_per_check_toward_stedi(make_stedi: MakeStedi, plan: FaultPlan) -> None:
    client = await make_stedi()
    for _ in range(2):  # each check: 3 tries of 503, one failed request
        with pytest.raises(UpstreamUnavailable, match="HTTP 503"):
            await client.check(check_body("SBX503001"), deadline=Deadline.after(5))
    assert plan.seen[ELIGIBILITY_PATH] == 6
    assert circuit(client, "stedi").counts() == (2, 2)
    assert circuit(client, "stedi-payer:SBX01").counts() == (0, 0)  # the payer never answered: not its failure
    assert await client._resilience.state("stedi") == "closed"
    answer = await client.check(HEALTHY, deadline=Deadline.after(5))  # a healthy member still gets through
    assert answer.http_status == 200 and not answer.aaa_codes


async def test_reset_mid_body_is_a_try_and_respects_the_cap(make_stedi: MakeStedi, plan: FaultPlan) -> None:
    """aiohttp raises ClientPayloadError for a body cut by a reset; it is recorded and capped at 3 like any
    connection error (the old code made 5 tries and recorded none)."""
    client = await make_stedi()
    plan.truncate_next(ELIGIBILITY_PATH, count=5)
    trail: list[HttpTry] = []
    with pytest.raises(UpstreamUnavailable, match="connection error"):
        await client.check(HEALTHY, deadline=Deadline.after(5), trail=trail)
    assert plan.seen[ELIGIBILITY_PATH] == 3
    assert [t.error for t in trail] == ["connection error (ClientPayloadError)"] * 3
    assert all(t.http_status is None for t in trail)


async def test_one_reset_mid_body_then_an_answer(make_stedi: MakeStedi, plan: FaultPlan) -> None:
    client = await make_stedi()
    plan.truncate_next(ELIGIBILITY_PATH)
    trail: list[HttpTry] = []
    answer = await client.check(HEALTHY, deadline=Deadline.after(5), trail=trail)
    assert answer.http_status == 200
    assert [t.http_status for t in trail] == [None, 200]


async def test_payer_circuits_are_bounded_by_forgetting_the_least_recent_closed_one(
    make_stedi: MakeStedi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of made-up payer ids must not leave real payers without a breaker: at the cap, the least recently
    used closed circuit makes room; an open one is kept (it is protecting its payer)."""
    monkeypatch.setattr(stedi_module, "MAX_PAYER_CIRCUITS", 2)
    client = await make_stedi()
    for _ in range(3):
        await client.check(check_body("SBX420001"), deadline=Deadline.after(5))  # opens stedi-payer:SBX01
    for payer in ("NOPE1", "NOPE2", "NOPE3"):
        await client.check(check_body("SBX100001", payer=payer), deadline=Deadline.after(5))
        assert circuit(client, f"stedi-payer:{payer}") is not None  # each new payer gets its circuit
    assert circuit(client, "stedi-payer:NOPE1") is None and circuit(client, "stedi-payer:NOPE2") is None
    assert len(client._payers) == 2 and await client._resilience.state("stedi-payer:SBX01") == "open"
    with pytest.raises(CircuitOpen):
        await client.check(HEALTHY, deadline=Deadline.after(5))


async def test_ids_in_an_answer_are_kept_only_when_they_look_like_ids(make_stedi: MakeStedi, plan: FaultPlan) -> None:
    """Stedi's `id` and `meta.traceId` are stored (128-character columns) and logged: a longer one, or one with
    spaces or line breaks, is dropped rather than failing the check's write or forging a log line."""
    client = await make_stedi()
    odd = json.dumps({"id": "ec_" + "7" * 200, "meta": {"traceId": "01KS\nforged line"}, "errors": []})
    plan.script(ELIGIBILITY_PATH, Fault(status=200, body=odd))
    answer = await client.check(HEALTHY, deadline=Deadline.after(5))
    assert (answer.stedi_id, answer.trace_id) == (None, None)
    normal = await client.check(HEALTHY, deadline=Deadline.after(5))
    assert normal.stedi_id and normal.trace_id  # the stand-in's own ids pass
