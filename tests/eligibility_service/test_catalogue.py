"""Every catalogue member of the Stedi stand-in (eligibility.md §5.3) through CheckEligibility, on both backends.

Answers are checked over gRPC; the stored row is checked through Get/List (final status, attempts, nothing
PENDING, no coverage data on failures); the stand-in's request counter proves what was (not) retried.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal

import grpc
import pytest
from costestimator.v1 import eligibility_service_pb2 as pb

from server.sandbox.faults import Fault
from server.sandbox.stedi import ELIGIBILITY_PATH
from tests.eligibility_service.conftest import MakeApp, StediStandIn
from tests.eligibility_service.helpers import (
    DIAZ_80,
    LEE,
    MAYA,
    MORGAN,
    PATEL,
    QUINN_42,
    QUINN_FLAKY,
    RIVERA,
    SHAH,
    THROTTLED,
    UNAVAILABLE,
    Client,
    bucket,
    inquiry,
    money,
    service,
    status_name,
)

D = Decimal
VERIFIED = pb.ELIGIBILITY_STATUS_VERIFIED


def seen(stedi: StediStandIn) -> int:
    return stedi.faults.seen[ELIGIBILITY_PATH]


async def only_check(client: Client, patient_id: str = "patient-1") -> pb.EligibilityCheck:
    """The single stored check of this test's tenant (for RPCs that answered with an error)."""
    page = await client.list(patient_id=patient_id)
    assert len(page.checks) == 1
    return await client.get(page.checks[0].id)


async def assert_failed(client: Client, exc: grpc.aio.AioRpcError, reason: str, attempts: int,
                        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
    assert exc.code() is code, exc
    check = await only_check(client)
    assert (status_name(check.status), check.failure_reason, check.attempts) == ("FAILED", reason, attempts)
    assert check.id in (exc.details() or "")  # the caller can look the failed check up
    assert not check.HasField("summary") and check.HasField("completed_at")
    stats = await client.stats()
    assert (stats.total, stats.pending, stats.failed) == (1, 0, 1)


# ---------------------------------------------------------------- answers with benefits


async def test_1_active_deductible_partly_met(client: Client, stedi: StediStandIn) -> None:
    check = await client.check(inquiry(*RIVERA), raw=True)
    assert (check.status, check.attempts, check.failure_reason) == (VERIFIED, 1, "")
    assert check.clearinghouse_check_id.startswith("ec_") and check.HasField("completed_at")
    s = check.summary
    assert s.activity == pb.COVERAGE_ACTIVITY_ACTIVE
    assert (s.plan_name, s.group_number, s.payer_name) == ("CHOICE PPO 2500", "GRP778812", "SANDBOX MUTUAL HEALTH")
    assert (s.effective_date.month, s.effective_date.day, s.termination_date.month, s.termination_date.day) == (
        1, 1, 12, 31)
    assert bucket(s.deductible.individual.in_network) == (D(2500), D(1650), D(850))
    assert bucket(s.deductible.family.in_network) == (D(5000), D(3400), D(1600))
    assert bucket(s.deductible.individual.out_of_network) == (D(5000), D(5000), D(0))
    assert bucket(s.out_of_pocket.individual.in_network) == (D(6000), D(4800), D(1200))
    office = service(s, "98")
    assert money(office.in_network.copay) == D(60) and "AMBIGUOUS_COPAY" in office.in_network.flags
    assert sorted(money(c.amount) for c in office.in_network.copay_candidates) == [D(30), D(60)]
    assert D(office.out_of_network.coinsurance_percent.value) == D(40)
    headline_in, headline_out = s.office_visit_in_network, s.office_visit_out_of_network
    assert (headline_in.service_type_code, money(headline_in.copay)) == ("98", D(60))
    assert (headline_out.service_type_code, headline_out.HasField("copay")) == ("98", False)
    assert D(headline_out.coinsurance_percent.value) == D(40)
    copays_98 = sorted(money(c.amount) for c in s.cost_shares if c.kind == "COPAY" and "98" in c.service_type_codes)
    assert copays_98 == [D(30), D(60)]  # every line the payer sent, not only the headline
    assert all(c.source_index >= 0 for c in s.cost_shares)
    assert "benefitsInformation" in check.raw_response.fields
    assert not (await client.get(check.id)).HasField("raw_response")  # raw only when asked for
    assert seen(stedi) == 1


async def test_2_family_coverage_patient_is_dependent(client: Client) -> None:
    check = await client.check(inquiry(*SHAH, dependent=MAYA, relationship="19"))
    assert check.status == VERIFIED
    s = check.summary
    assert (s.activity, s.plan_name) == (pb.COVERAGE_ACTIVITY_ACTIVE, "FAMILY PPO 1500")
    assert bucket(s.deductible.individual.in_network) == (D(1500), D(400), D(1100))
    assert bucket(s.deductible.family.in_network) == (D(3000), D(1300), D(1700))
    assert bucket(s.out_of_pocket.family.in_network) == (D(10000), D(8300), D(1700))
    office = service(s, "98")
    assert money(office.in_network.copay) == D(25)
    assert (D(office.in_network.coinsurance_percent.value), D(office.out_of_network.coinsurance_percent.value)) == (
        D(20), D(40))


async def test_3_deductible_met(client: Client) -> None:
    s = (await client.check(inquiry(*LEE))).summary
    ind = s.deductible.individual.in_network
    assert bucket(ind) == (D(2000), D(0), D(2000)) and money(ind.met_reported) == D(2000)
    assert bucket(s.out_of_pocket.individual.in_network) == (D(7000), D(3200), D(3800))


async def test_4_out_of_pocket_met(client: Client) -> None:
    s = (await client.check(inquiry(*PATEL))).summary
    assert bucket(s.out_of_pocket.individual.in_network) == (D(6500), D(0), D(6500))
    assert money(service(s, "98").in_network.copay) == D(30)  # still listed; the estimator applies OOP


async def test_5_inactive_is_verified_with_inactive_activity(client: Client) -> None:
    check = await client.check(inquiry(*MORGAN))
    assert check.status == VERIFIED
    assert check.summary.activity == pb.COVERAGE_ACTIVITY_INACTIVE
    assert check.summary.termination_date.month == 12


# ---------------------------------------------------------------- member data: NOT_FOUND, never retried


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (("SBX999999", "Alex", "Rivera", "1985-04-12"), "MEMBER_NOT_FOUND (AAA 75)"),  # 6 not found
        (("XYZ-123", "Alex", "Rivera", "1985-04-12"), "MEMBER_NOT_FOUND (AAA 72)"),  # 7 invalid member id
        (("SBX100001", "Alex", "Rivera", "1985-04-13"), "MEMBER_NOT_FOUND (AAA 71)"),  # 8 DOB mismatch
    ],
    ids=["6-not-found", "7-invalid-id", "8-dob-mismatch"],
)
async def test_member_data_rejection_is_not_found_after_exactly_one_attempt(
    client: Client, stedi: StediStandIn, member: tuple[str, str, str, str], reason: str
) -> None:
    check = await client.check(inquiry(*member))
    assert (status_name(check.status), check.failure_reason, check.attempts) == ("NOT_FOUND", reason, 1)
    assert not check.HasField("summary")
    assert seen(stedi) == 1


# ---------------------------------------------------------------- payer connectivity: retried within the budget


@pytest.mark.parametrize(("member", "code"), [(QUINN_42, "42"), (DIAZ_80, "80")], ids=["9-aaa42", "11-aaa80"])
async def test_persistent_payer_unavailable_fails_after_the_budget(
    client: Client, stedi: StediStandIn, member: tuple[str, str, str, str], code: str
) -> None:
    exc = await client.check_error(inquiry(*member))
    # Budget 1.5 s: attempt, wait 0 s, attempt, then the 2 s wait does not fit any more.
    await assert_failed(client, exc, f"PAYER_UNAVAILABLE (AAA {code})", attempts=2)
    assert seen(stedi) == 2


async def test_10_flaky_42_then_verified_with_both_attempts_recorded(client: Client, stedi: StediStandIn) -> None:
    check = await client.check(inquiry(*QUINN_FLAKY))
    assert (check.status, check.attempts) == (VERIFIED, 2)
    assert check.summary.activity == pb.COVERAGE_ACTIVITY_ACTIVE
    assert seen(stedi) == 2


async def test_aaa79_under_http_200_is_retried_once(make_app: MakeApp, stedi: StediStandIn) -> None:
    app = await make_app(eligibility_retry_budget_seconds=10)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = Client(channel, app.dev_token or "")
        exc = await client.check_error(inquiry("UHCAAA79", "John", "Doe", "1970-01-01", payer="87726"))
        await assert_failed(client, exc, "PAYER_REJECTED (AAA 79)", attempts=2)
    assert seen(stedi) == 2


# ---------------------------------------------------------------- HTTP-level failures: FAILED + UNAVAILABLE


async def test_14_throttled_is_retried_then_failed(make_app: MakeApp, stedi: StediStandIn) -> None:
    app = await make_app(eligibility_retry_budget_seconds=6)  # room for all five tries and their backoff
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = Client(channel, app.dev_token or "")
        exc = await client.check_error(inquiry(*THROTTLED))
        await assert_failed(client, exc, "STEDI_THROTTLED (HTTP 429)", attempts=5)
    assert seen(stedi) == 5


async def test_throttling_beyond_the_budget_fails_with_the_throttled_reason(
    client: Client, stedi: StediStandIn
) -> None:
    stedi.faults.script(ELIGIBILITY_PATH, *[Fault(status=429, retry_after="1")] * 5)
    exc = await client.check_error(inquiry(*RIVERA))  # budget 1.5 s: the second Retry-After no longer fits
    await assert_failed(client, exc, "STEDI_THROTTLED (HTTP 429)", attempts=2)


async def test_429_then_answer_is_verified(client: Client, stedi: StediStandIn) -> None:
    stedi.faults.script(ELIGIBILITY_PATH, Fault(status=429), Fault(status=429, retry_after="0"))
    check = await client.check(inquiry(*RIVERA))
    assert (check.status, check.attempts) == (VERIFIED, 3)
    assert seen(stedi) == 3


async def test_15_unavailable_is_failed_and_unavailable(make_app: MakeApp, stedi: StediStandIn) -> None:
    app = await make_app(eligibility_retry_budget_seconds=6)  # room for three tries and the waits (1 s, 4 s)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = Client(channel, app.dev_token or "")
        exc = await client.check_error(inquiry(*UNAVAILABLE))
        await assert_failed(client, exc, "STEDI_UNAVAILABLE (HTTP 503)", attempts=3)
    assert seen(stedi) == 3


async def test_unavailable_beyond_the_budget_stops_before_the_wait_that_no_longer_fits(
    client: Client, stedi: StediStandIn
) -> None:
    exc = await client.check_error(inquiry(*UNAVAILABLE))  # budget 1.5 s: try, wait 1 s, try; 4 s no longer fits
    await assert_failed(client, exc, "STEDI_UNAVAILABLE (HTTP 503)", attempts=2)
    assert seen(stedi) == 2


async def test_malformed_answer_is_failed_not_retried_as_an_answer(client: Client, stedi: StediStandIn) -> None:
    stedi.faults.malformed_next(ELIGIBILITY_PATH)
    exc = await client.check_error(inquiry(*RIVERA))
    await assert_failed(client, exc, "STEDI_UNAVAILABLE (malformed body)", attempts=1)


async def test_16_unknown_payer_is_failed_and_a_failed_precondition(client: Client, stedi: StediStandIn) -> None:
    exc = await client.check_error(inquiry(*RIVERA, payer="NOPE1"))  # permanent: not UNAVAILABLE (clients retry that)
    await assert_failed(client, exc, "PAYER_NOT_CONFIGURED (AAA 79)", attempts=1,
                        code=grpc.StatusCode.FAILED_PRECONDITION)
    assert seen(stedi) == 1


async def test_bad_api_key_is_failed_unavailable_and_never_logged(
    make_app: MakeApp, stedi: StediStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "test_wrong_key_do_not_log_0123"
    caplog.set_level(logging.DEBUG)
    app = await make_app(stedi_api_key=wrong_key)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = Client(channel, app.dev_token or "")
        exc = await client.check_error(inquiry(*RIVERA))
        await assert_failed(client, exc, "CLEARINGHOUSE_AUTH (HTTP 403)", attempts=1)
    text = caplog.text
    assert wrong_key not in text
    assert re.search(r"stedi refused our API key \(HTTP 403\)", text)
    for phi in ("SBX100001", "Rivera", "RIVERA", "19850412", "1985-04-12"):
        assert phi not in text


async def test_no_phi_in_logs_of_a_verified_check(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    check = await client.check(inquiry(*RIVERA))
    assert check.status == VERIFIED
    assert check.id in caplog.text and check.clearinghouse_check_id in caplog.text  # ids are logged...
    for phi in ("SBX100001", "Alex", "Rivera", "RIVERA", "19850412"):  # ...member data never
        assert phi not in caplog.text
