"""Request validation, tenant isolation, history (filters, pagination, tokens) and stats over gRPC."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import grpc
import jwt
import pytest
from costestimator.v1 import eligibility_service_pb2 as pb
from google.type import date_pb2

from server.sandbox.stedi import ELIGIBILITY_PATH
from tests.eligibility_service.conftest import MakeApp, StediStandIn
from tests.eligibility_service.helpers import (
    RIVERA,
    Client,
    bad_request,
    date,
    inquiry,
    new_tenant,
    person,
    status_name,
)

SECRET = "eligibility-tests-hs256-secret-0123456789"
ISS, AUD = "https://auth.example.test", "costestimator"


def token(tenant: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISS, "aud": AUD, "iat": now, "exp": now + 300, "tenant_id": tenant}, SECRET,
                      algorithm="HS256")


# ---------------------------------------------------------------- validation


async def test_invalid_input_lists_every_violation_without_phi_and_stores_nothing(
    client: Client, stedi: StediStandIn
) -> None:
    inq = inquiry("X", "Ålex*", "Rivera", None)
    inq.provider.npi = "1234567890"  # bad check digit
    inq.subscriber.date_of_birth.CopyFrom(date_pb2.Date(year=1985, month=2, day=31))  # not a real date
    inq.dependent_relationship_code = "19"  # without a dependent
    inq.service_type_codes.append("ZZZ")
    exc = await client.check_error(inq)
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
    fields = bad_request(exc)
    assert set(fields) == {
        "inquiry.provider.npi",
        "inquiry.subscriber.member_id",
        "inquiry.subscriber.first_name",
        "inquiry.subscriber.date_of_birth",
        "inquiry.dependent_relationship_code",
        "inquiry.service_type_codes[0]",
    }
    assert fields["inquiry.subscriber.date_of_birth"] == "must be a real calendar date"
    shown = (exc.details() or "") + " ".join(f"{k} {v}" for k, v in fields.items())
    for phi in ("Rivera", "lex", "1985", "1234567890", "ZZZ"):
        assert phi not in shown
    stats = await client.stats()
    assert stats.total == 0 and stedi.faults.seen[ELIGIBILITY_PATH] == 0


async def test_submit_validates_too_and_dependent_rules_apply(client: Client) -> None:
    inq = inquiry(*RIVERA, dependent=person("DEP1", "Maya", "Shah", "2030-01-01"))
    try:
        await client.submit(inq)
    except grpc.aio.AioRpcError as exc:
        assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert set(bad_request(exc)) == {
            "inquiry.dependent.member_id",
            "inquiry.dependent.date_of_birth",
            "inquiry.dependent_relationship_code",
        }
    else:
        raise AssertionError("submit accepted an invalid dependent")


@pytest.mark.parametrize(
    ("rpc", "request_", "field"),
    [
        ("GetEligibilityCheck", pb.GetEligibilityCheckRequest(), "id"),
        ("ListEligibilityChecks", pb.ListEligibilityChecksRequest(page_size=-1), "page_size"),
        ("ListEligibilityChecks", pb.ListEligibilityChecksRequest(page_token="forged.token"), "page_token"),
    ],
    ids=["empty-id", "negative-page-size", "forged-token"],
)
async def test_bad_read_requests_are_invalid_argument(client: Client, rpc: str, request_: Any, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await getattr(client.stub, rpc)(request_, metadata=client.md, timeout=5)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_request(info.value)


async def test_unknown_id_is_not_found_for_get_and_watch(client: Client) -> None:
    for call in (client.get("no-such-check"), client.watch("no-such-check")):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() is grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------- tenants


async def test_tenant_isolation_for_get_watch_list_and_stats(make_app: MakeApp) -> None:
    app = await make_app(auth_hs256_secret=SECRET, auth_issuer=ISS, auth_audience=AUD)
    tenant_a, tenant_b = new_tenant(), new_tenant()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        a, b = Client(channel, token(tenant_a)), Client(channel, token(tenant_b))
        mine = await a.check(inquiry(*RIVERA, policy_id="shared-policy", patient_id="shared-patient"))
        pending = await a.submit(inquiry(*RIVERA, policy_id="shared-policy", patient_id="shared-patient"))
        for check_id in (mine.id, pending.id):
            for call in (b.get(check_id), b.watch(check_id)):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call
                assert info.value.code() is grpc.StatusCode.NOT_FOUND
                assert check_id not in (info.value.details() or "")
        assert len((await b.list()).checks) == 0
        assert len((await b.list(policy_id="shared-policy")).checks) == 0
        assert (await b.stats()).total == 0 and (await b.stats("shared-policy")).total == 0
        assert not (await b.stats()).HasField("last_checked_at")
        # A's page token is worthless to B.
        token_a = (await a.list(page_size=1)).next_page_token
        assert token_a
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await b.list(page_size=1, page_token=token_a)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert (await a.get(mine.id)).id == mine.id
        assert (await a.stats()).total == 2


# ---------------------------------------------------------------- history


async def test_pagination_has_no_duplicates_or_gaps_while_rows_are_added(client: Client) -> None:
    first = [await client.submit(inquiry(*RIVERA, patient_id=f"p{i % 3}")) for i in range(17)]
    collected: list[pb.EligibilityCheck] = []
    page_token = ""
    added = 0
    while True:
        page = await client.list(page_size=5, page_token=page_token)
        collected.extend(page.checks)
        # New checks arrive between page fetches: they are newer than the cursor, so never show up later.
        await client.submit(inquiry(*RIVERA, patient_id="late"))
        added += 1
        if not page.next_page_token:
            break
        page_token = page.next_page_token
    ids = [c.id for c in collected]
    assert len(ids) == len(set(ids)), "duplicates across pages"
    assert {c.id for c in first} <= set(ids), "gaps across pages"
    keys = [(c.requested_at.ToDatetime(), c.id) for c in collected]
    assert keys == sorted(keys, reverse=True), "not newest first"
    assert added == 4 and (await client.stats()).total == 17 + added


async def test_list_filters_and_stats_per_policy(client: Client) -> None:
    await client.check(inquiry(*RIVERA, policy_id="pol-a", patient_id="pat-1"))
    await client.check(inquiry("SBX999999", "Alex", "Rivera", "1985-04-12", policy_id="pol-a", patient_id="pat-2"))
    await client.check(inquiry(*RIVERA, policy_id="pol-b", patient_id="pat-1"))
    by_policy = await client.list(policy_id="pol-a")
    assert {c.patient_id for c in by_policy.checks} == {"pat-1", "pat-2"}
    by_patient = await client.list(patient_id="pat-1")
    assert {c.policy_id for c in by_patient.checks} == {"pol-a", "pol-b"}
    not_found = await client.list(status=pb.ELIGIBILITY_STATUS_NOT_FOUND)
    assert [c.patient_id for c in not_found.checks] == ["pat-2"]
    both = await client.list(policy_id="pol-a", status=pb.ELIGIBILITY_STATUS_VERIFIED)
    assert [(c.patient_id, status_name(c.status)) for c in both.checks] == [("pat-1", "VERIFIED")]
    stats = await client.stats("pol-a")
    assert (stats.total, stats.verified, stats.not_found, stats.pending) == (2, 1, 1, 0)
    overall = await client.stats()
    assert (overall.total, overall.verified) == (3, 2) and overall.HasField("last_checked_at")
    newest = (await client.list()).checks[0]
    assert overall.last_checked_at == newest.requested_at
    assert overall.last_completed_at.ToDatetime() >= overall.last_checked_at.ToDatetime()
    assert not (await client.list()).checks[0].HasField("raw_response")  # never in lists


async def test_date_of_service_and_service_types_reach_the_summary(client: Client) -> None:
    inq = inquiry(*RIVERA, stcs=["98", "UC"])
    inq.date_of_service.CopyFrom(date(time.strftime("%Y-%m-01")))
    check = await client.check(inq)
    codes = [s.service_type_code for s in check.summary.service_cost_shares]
    assert codes[:2] == ["98", "UC"] and "30" not in codes


async def test_page_tokens_survive_a_restart(make_app: MakeApp) -> None:
    first = await make_app()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
        client = Client(channel, first.dev_token or "")
        for i in range(3):
            await client.submit(inquiry(*RIVERA, patient_id=f"p{i}"))
        page = await client.list(page_size=2)
    await first.stop(grace=0)
    second = await make_app()  # same data dir: same page-token secret file
    async with grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as channel:
        rest = await Client(channel, second.dev_token or "").list(page_size=2, page_token=page.next_page_token)
    assert len(rest.checks) == 1 and not rest.next_page_token
    assert rest.checks[0].id not in {c.id for c in page.checks}


async def test_embedded_stedi_sandbox_when_no_clearinghouse_is_configured(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server")
    app = await make_app(stedi_url=None, stedi_api_key=None)
    assert re.search(r"eligibility clearinghouse: EMBEDDED STEDI SANDBOX on http://127\.0\.0\.1:\d+", caplog.text)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        check = await Client(channel, app.dev_token or "").check(inquiry(*RIVERA))
    assert status_name(check.status) == "VERIFIED" and check.summary.plan_name == "CHOICE PPO 2500"


@pytest.mark.parametrize("number", [6, 99, -1], ids=["just-past-the-enum", "far-past", "negative"])
async def test_list_refuses_an_unknown_status_filter(client: Client, number: int) -> None:
    """An undefined status number is INVALID_ARGUMENT on `status`, never read as "any status"."""
    await client.check(inquiry(*RIVERA))  # something an "any status" reading would have listed
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.list(status=number)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(bad_request(info.value)) == ["status"]


async def test_list_with_unspecified_status_means_any(client: Client) -> None:
    await client.check(inquiry(*RIVERA))
    listed = await client.list(status=pb.ELIGIBILITY_STATUS_UNSPECIFIED)
    assert [status_name(c.status) for c in listed.checks] == ["VERIFIED"]
