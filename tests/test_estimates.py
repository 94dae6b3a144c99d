"""Calculate, Estimate and StreamEstimates over a real socket (the payer sandbox behind Estimate)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import grpc
import pytest
import pytest_asyncio
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.rpc import code_pb2, error_details_pb2
from google.type import decimal_pb2, money_pb2
from grpc_status import rpc_status

from server.app import Application
from server.domain.costshare import AccumKind, Coverage, Level, MemberAccumulator
from server.domain.costshare.chain import calculate
from server.domain.errors import InvalidInput
from server.sandbox.faults import Fault
from server.usecases.estimates import AccumulatorOverride, apply_overrides
from tests.conftest import auth, payer_sandbox
from tests.domain.builders import D, scenario
from tests.domain.test_worked_examples import EXAMPLES, Example

ACTIVE = "5~186103331+10+7+20260101+793854+8A+829"
INACTIVE = "5~186103339+10+7+20250101+793869+8A+899"
BENEFITS, ACCUMULATORS = "/benefits/v3/retrieve", "/accumulators/v1/read"
IN, OUT = cpb.NETWORK_CATEGORY_IN_NETWORK, cpb.NETWORK_CATEGORY_OUT_OF_NETWORK


def money(amount: str) -> money_pb2.Money:
    units, _, cents = amount.partition(".")
    return money_pb2.Money(currency_code="USD", units=int(units), nanos=int((cents or "0").ljust(2, "0")) * 10_000_000)


def as_decimal(m: money_pb2.Money) -> Decimal:
    return Decimal(m.units) + Decimal(m.nanos) / Decimal(10**9)


_IND = {None: cpb.INDICATOR_UNSPECIFIED, "Y": cpb.INDICATOR_YES, "N": cpb.INDICATOR_NO}


def calculate_request(coverage: Coverage, accumulators: list[MemberAccumulator], amount: str) -> epb.CalculateRequest:
    """The chain's inputs as a caller would send them over the wire."""
    c = epb.CalculateRequest(service_amount=money(amount), include_trace=True)
    cov = c.coverage
    for pb_name, value in [
        ("service_covered", coverage.is_service_covered),
        ("copay_applies_out_of_pocket", coverage.copay_applies_out_of_pocket),
        ("coinsurance_applies_out_of_pocket", coverage.coins_applies_out_of_pocket),
        ("deductible_applies_out_of_pocket", coverage.deductible_applies_out_of_pocket),
        ("copay_counts_to_deductible", coverage.copay_count_to_deductible),
        ("copay_continues_when_deductible_met", coverage.copay_continue_when_deductible_met),
        ("copay_continues_when_out_of_pocket_max_met", coverage.copay_continue_when_out_of_pocket_max_met),
        ("deductible_before_copay", coverage.is_deductible_before_copay),
    ]:
        setattr(cov, pb_name, _IND[value])  # type: ignore[index]
    if coverage.copay is not None:
        cov.copay.CopyFrom(money(f"{coverage.copay:.2f}"))
    if coverage.coinsurance_percent is not None:
        cov.coinsurance_percent.value = str(coverage.coinsurance_percent)
    for r in coverage.related_accumulators:
        cov.related_accumulators.add(code=r.code or "", level=r.level or "",
                                     network_indicator_code=r.network_indicator_code or "")
    for a in accumulators:
        pb = c.accumulators.add(code=a.code or "", level=a.level or "",
                                network_indicator_code=a.network_indicator_code or "", limit_type=a.limit_type or "")
        if a.calculated_value is not None:
            pb.calculated_value.value = str(a.calculated_value)
        if a.num_of_individuals_met is not None:
            pb.individuals_met = a.num_of_individuals_met
        if a.num_of_individuals_needed_to_meet is not None:
            pb.individuals_needed_to_meet = a.num_of_individuals_needed_to_meet
    return c


@pytest_asyncio.fixture
async def estimate_app(start_app: Callable[..., Any]) -> Application:
    """Fan-out 1 makes the order of benefit calls deterministic (failure and cancellation tests rely on it).
    The benefit cache is off: these tests count and fault the upstream calls (tests/test_benefit_cache.py has it on)."""
    app: Application = await start_app(upstream_backoff_seconds=0.01, upstream_backoff_max_seconds=0.02,
                                       benefit_fanout=1, max_providers=5, benefit_cache_ttl_seconds=0)
    return app


@pytest_asyncio.fixture
async def stub(estimate_app: Application) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{estimate_app.port}") as ch:
        yield estimate_service_pb2_grpc.EstimateServiceStub(ch)


sandbox = payer_sandbox


def bad_fields(err: grpc.aio.AioRpcError) -> set[str]:
    detail = error_details_pb2.BadRequest()
    rpc_status.from_call(err).details[0].Unpack(detail)
    return {v.field for v in detail.field_violations}


# ---- Calculate: the rule book's worked examples over the wire ----------------------------------------------------

@pytest.mark.parametrize("ex", EXAMPLES, ids=[e.name.split()[0] for e in EXAMPLES])
async def test_worked_example_through_calculate(stub: Any, estimate_app: Application, ex: Example) -> None:
    coverage, accumulators = scenario(**ex.setup)  # type: ignore[arg-type]
    reply = await stub.Calculate(calculate_request(coverage, accumulators, ex.service), metadata=auth(estimate_app),
                                 timeout=5)
    e = reply.estimate
    assert e.status.code == code_pb2.OK
    assert as_decimal(e.member_pays) == D(ex.member) and as_decimal(e.plan_pays) == D(ex.plan)
    if ex.path is not None:
        assert [h.split()[0] for h in e.path] == ex.path.replace("[", "").replace("]", "").split()
    kinds = {cpb.ACCUMULATOR_KIND_DEDUCTIBLE: "ded", cpb.ACCUMULATOR_KIND_OUT_OF_POCKET_MAX: "oop",
             cpb.ACCUMULATOR_KIND_LIMIT: "limit"}
    after = {(kinds[s.kind], s.level): s.remaining_after.value for s in e.accumulators}
    for (kind, level), expected in ex.after.items():
        key = ({"deductible": "ded", "oop": "oop", "limit": "limit"}[kind.value],
               cpb.ACCUMULATOR_LEVEL_INDIVIDUAL if level.value == "individual" else cpb.ACCUMULATOR_LEVEL_FAMILY)
        assert after[key] == expected
    for line, expected in ex.lines.items():
        assert as_decimal(getattr(e.breakdown, line)) == D(expected), line
    assert e.trace, "include_trace was set"


async def test_e31_unknown_limit_type_is_invalid_argument(stub: Any, estimate_app: Application) -> None:
    coverage, _ = scenario(limit=("4", None), limit_type="Percent")
    request = calculate_request(coverage, scenario(limit=("4", None), limit_type="Percent")[1], "75.50")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Calculate(request, metadata=auth(estimate_app), timeout=5)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(err.value) == {"accumulators[0].limit_type"}


async def test_calculate_refuses_bad_input_field_by_field(stub: Any, estimate_app: Application) -> None:
    coverage, accumulators = scenario(copay=D(35), oop=("100", None))
    request = calculate_request(coverage, accumulators, "10.00")
    request.service_amount.CopyFrom(money_pb2.Money(currency_code="USD", units=10, nanos=1))  # over-precise
    request.coverage.coinsurance_percent.value = "120"
    request.coverage.copay.CopyFrom(money_pb2.Money(currency_code="EUR", units=1))
    request.coverage.service_covered = 7  # type: ignore[assignment]
    request.accumulators[0].calculated_value.value = "lots"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Calculate(request, metadata=auth(estimate_app), timeout=5)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(err.value) == {"service_amount.nanos", "coverage.coinsurance_percent",
                                     "coverage.copay.currency_code", "coverage.service_covered",
                                     "accumulators[0].calculated_value"}


# ---- Estimate / StreamEstimates against the sandbox -----------------------------------------------------------

def provider(pid: str, amount: str = "180.00", network: int = IN, tier: str = "1", specialty: str = "08",
             ptype: str = "") -> epb.Provider:
    return epb.Provider(provider_id=pid, network_category=network, benefit_tier_name=tier,  # type: ignore[arg-type]
                        provider_specialty_code=specialty, provider_type_code=ptype, negotiated_amount=money(amount))


def estimate_request(*providers: epb.Provider, member: str = ACTIVE, **extra: Any) -> epb.EstimateRequest:
    return epb.EstimateRequest(
        member=cpb.Member(membership_id=member, plan_identifier="3~"),
        product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL,
        service=epb.RequestedService(code="99214", code_type=cpb.CODE_TYPE_CPT4, place_of_service_code="11"),
        providers=list(providers), **extra)


async def warm(stub: Any, app: Application) -> None:
    """One call so the token is cached; then reset the counters."""
    await stub.Estimate(estimate_request(provider("warm")), metadata=auth(app), timeout=10)
    sandbox(app).faults.reset()


async def test_estimate_calls_each_upstream_once_per_distinct_request(stub: Any, estimate_app: Application) -> None:
    await warm(stub, estimate_app)
    reply = await stub.Estimate(estimate_request(
        provider("pcp-1", specialty="08"), provider("pcp-2", specialty="08", amount="90.00"),
        provider("spec-1", specialty="20"), provider("oon", network=OUT, tier="", specialty="08"),
        provider("spec-2", specialty="20", tier="2")), metadata=auth(estimate_app), timeout=10)
    assert [e.provider_id for e in reply.estimates] == ["pcp-1", "pcp-2", "spec-1", "oon", "spec-2"]
    assert all(e.status.code == code_pb2.OK for e in reply.estimates), [e.status for e in reply.estimates]
    seen = sandbox(estimate_app).faults.seen
    assert (seen[BENEFITS], seen[ACCUMULATORS]) == (2, 1)  # (08, 20) specialties + accumulators once
    by_id = {e.provider_id: e for e in reply.estimates}
    assert as_decimal(by_id["pcp-1"].member_pays) == Decimal("25.00")  # tier 1 PCP copay
    assert by_id["spec-1"].matched_benefit.benefit_tier_name == "1"
    assert as_decimal(by_id["oon"].member_pays) + as_decimal(by_id["oon"].plan_pays) == Decimal("180.00")


async def test_one_provider_failing_does_not_fail_the_others(stub: Any, estimate_app: Application) -> None:
    await warm(stub, estimate_app)
    sandbox(estimate_app).faults.script(BENEFITS, *[Fault(status=503)] * 3)  # fan-out 1: the first group's call
    reply = await stub.Estimate(estimate_request(provider("a", specialty="08"), provider("b", specialty="20")),
                                metadata=auth(estimate_app), timeout=10)
    codes = {e.provider_id: e.status.code for e in reply.estimates}
    assert codes == {"a": code_pb2.UNAVAILABLE, "b": code_pb2.OK}
    assert "benefits" in reply.estimates[0].status.message
    assert not reply.estimates[0].HasField("member_pays")


async def test_provider_without_matching_benefit_is_not_found_alone(stub: Any, estimate_app: Application) -> None:
    reply = await stub.Estimate(estimate_request(provider("tier9", tier="9"), provider("ok")),
                                metadata=auth(estimate_app), timeout=10)
    assert [e.status.code for e in reply.estimates] == [code_pb2.NOT_FOUND, code_pb2.OK]
    assert "tier 9" in reply.estimates[0].status.message


async def test_member_not_found_ends_the_request(stub: Any, estimate_app: Application) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Estimate(estimate_request(provider("a"), member=INACTIVE), metadata=auth(estimate_app), timeout=10)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    stream = stub.StreamEstimates(epb.StreamEstimatesRequest(**_fields(estimate_request(provider("a"),
                                                                                        member=INACTIVE))),
                                  metadata=auth(estimate_app), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as err2:
        async for _ in stream:
            pass
    assert err2.value.code() is grpc.StatusCode.NOT_FOUND


async def test_accumulators_unavailable_ends_the_request(stub: Any, estimate_app: Application) -> None:
    await warm(stub, estimate_app)
    sandbox(estimate_app).faults.script(ACCUMULATORS, *[Fault(status=500)] * 3)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Estimate(estimate_request(provider("a")), metadata=auth(estimate_app), timeout=10)
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE and "accumulators" in err.value.details()


def _fields(req: epb.EstimateRequest) -> dict[str, Any]:
    return {f.name: v for f, v in req.ListFields()}


async def test_stream_sends_each_result_when_ready_and_cancel_stops_upstream_calls(
        stub: Any, estimate_app: Application) -> None:
    await warm(stub, estimate_app)
    plan = sandbox(estimate_app).faults
    plan.set_latency(0.4, BENEFITS)
    request = epb.StreamEstimatesRequest(**_fields(estimate_request(
        provider("a", specialty="08"), provider("b", specialty="20"), provider("c", specialty="11"))))
    call = stub.StreamEstimates(request, metadata=auth(estimate_app), timeout=10)
    first = await call.read()
    assert first.estimate.provider_id == "a" and first.estimate.status.code == code_pb2.OK
    call.cancel()  # fan-out 1: the second benefit call is in flight, the third not started
    await asyncio.sleep(0.3)
    assert plan.cancelled[BENEFITS] >= 1
    assert plan.seen[BENEFITS] == 2  # the third call never started


async def test_deadline_shorter_than_the_sandbox_latency(stub: Any, estimate_app: Application) -> None:
    sandbox(estimate_app).faults.set_latency(1.0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Estimate(estimate_request(provider("a")), metadata=auth(estimate_app), timeout=0.3)
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_what_if_deductible_met_override(stub: Any, estimate_app: Application) -> None:
    base = estimate_request(provider("mri", amount="1200.00", tier="", specialty="", ptype=""))
    base.service.code = "70551"
    plain = (await stub.Estimate(base, metadata=auth(estimate_app), timeout=10)).estimates[0]
    base.accumulator_overrides.add(kind=cpb.ACCUMULATOR_KIND_DEDUCTIBLE, level=cpb.ACCUMULATOR_LEVEL_INDIVIDUAL,
                                   network=IN, remaining=decimal_pb2.Decimal(value="0"))
    what_if = (await stub.Estimate(base, metadata=auth(estimate_app), timeout=10)).estimates[0]
    assert plain.status.code == what_if.status.code == code_pb2.OK
    assert as_decimal(plain.breakdown.deductible) > 0
    assert as_decimal(what_if.breakdown.deductible) == 0
    assert as_decimal(what_if.member_pays) < as_decimal(plain.member_pays)


async def test_estimate_validation_names_each_field(stub: Any, estimate_app: Application) -> None:
    too_many = estimate_request(*[provider(f"p{i}") for i in range(6)])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Estimate(too_many, metadata=auth(estimate_app), timeout=5)
    assert bad_fields(err.value) == {"providers"}
    bad = estimate_request(provider("a"), provider("a"), provider("", amount="-1.00"),
                           epb.Provider(provider_id="z", network_category=IN))
    bad.providers[0].negotiated_amount.nanos = 5  # over-precise
    bad.service.code_type = 42  # type: ignore[assignment]
    bad.accumulator_overrides.add(kind=cpb.ACCUMULATOR_KIND_DEDUCTIBLE, level=cpb.ACCUMULATOR_LEVEL_INDIVIDUAL,
                                  network=IN, remaining=decimal_pb2.Decimal(value="-5"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Estimate(bad, metadata=auth(estimate_app), timeout=5)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(err.value) == {
        "service.code_type", "providers[0].negotiated_amount.nanos", "providers[1].provider_id",
        "providers[2].provider_id", "providers[2].negotiated_amount", "providers[3].negotiated_amount",
        "accumulator_overrides[0].remaining"}


async def test_calculate_reports_inconsistent_accumulators_as_warnings(stub: Any, estimate_app: Application) -> None:
    coverage, accumulators = scenario(coinsurance_percent=D(20), oop=("999", None), ded=("-10", None))
    request = calculate_request(coverage, [a for a in accumulators if a.code == "Deductible"], "100.00")
    request.include_trace = False  # warnings are part of every answer, traced or not
    e = (await stub.Calculate(request, metadata=auth(estimate_app), timeout=5)).estimate
    warnings = [t.decision for t in e.trace if t.handler == "warning"]
    assert any("oop individual" in w and "not in the accumulators answer" in w for w in warnings), warnings
    assert any("negative remaining" in w for w in warnings), warnings
    assert as_decimal(e.member_pays) == Decimal("20.00")  # deductible met (clamped), OOP absent = no cap


# ---- What-if limits: a limit the member does not have needs its unit ----------------------------------------------

def test_an_override_adding_a_limit_takes_its_unit_from_the_override() -> None:
    """The rule book reads a limit only with its unit: the added limit is the override's, and the chain uses it."""
    coverage, accumulators = scenario(coinsurance_percent=D(20), limit=("100", None))
    member_has_no_limit = [a for a in accumulators if a.code != "Limit"]
    dollars = AccumulatorOverride(AccumKind.LIMIT, Level.INDIVIDUAL, "I", D("100"), "Dollar")
    added = apply_overrides(member_has_no_limit, [dollars])
    result = calculate(coverage, added, D("500.00"))
    assert result.limit_reached and result.breakdown.over_limit > 0 and result.plan_pays == D("100.00")
    assert result == calculate(coverage, accumulators, D("500.00"))  # as if the member had that limit
    with pytest.raises(InvalidInput) as err:
        apply_overrides(member_has_no_limit, [replace(dollars, level=Level.FAMILY), replace(dollars, limit_type=None)])
    assert err.value.field == "accumulator_overrides[1].limit_type"


async def test_a_limit_override_names_its_unit_when_the_member_has_no_such_limit(
    stub: Any, estimate_app: Application
) -> None:
    def with_limit(level: int, remaining: str, limit_type: int = cpb.LIMIT_TYPE_UNSPECIFIED) -> epb.EstimateRequest:
        request = estimate_request(provider("pt", amount="120.00", tier="", specialty="", ptype=""))
        request.service.code = "97110"
        request.accumulator_overrides.add(kind=cpb.ACCUMULATOR_KIND_LIMIT, level=level, network=IN,  # type: ignore[arg-type]
                                          remaining=decimal_pb2.Decimal(value=remaining), limit_type=limit_type)
        return request

    # The member's own visit limit (individual, in network): its unit stays the member's.
    used_up = (await stub.Estimate(with_limit(cpb.ACCUMULATOR_LEVEL_INDIVIDUAL, "0"), metadata=auth(estimate_app),
                                   timeout=10)).estimates[0]
    assert used_up.status.code == code_pb2.OK and used_up.flags.limit_reached
    assert as_decimal(used_up.member_pays) == Decimal("120.00")
    # A family limit the member does not have: the override adds it, with the unit it names...
    added = (await stub.Estimate(with_limit(cpb.ACCUMULATOR_LEVEL_FAMILY, "3", cpb.LIMIT_TYPE_COUNTER),
                                 metadata=auth(estimate_app), timeout=10)).estimates[0]
    assert added.status.code == code_pb2.OK
    # ...and refuses to guess it.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Estimate(with_limit(cpb.ACCUMULATOR_LEVEL_FAMILY, "3"), metadata=auth(estimate_app), timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(err.value) == {"accumulator_overrides[0].limit_type"}

    bad = with_limit(cpb.ACCUMULATOR_LEVEL_FAMILY, "2.5", cpb.LIMIT_TYPE_COUNTER)
    bad.accumulator_overrides.add(kind=cpb.ACCUMULATOR_KIND_DEDUCTIBLE, level=cpb.ACCUMULATOR_LEVEL_INDIVIDUAL,
                                  network=IN, remaining=decimal_pb2.Decimal(value="0"),
                                  limit_type=cpb.LIMIT_TYPE_DOLLAR)
    bad.accumulator_overrides.add(kind=cpb.ACCUMULATOR_KIND_LIMIT, level=cpb.ACCUMULATOR_LEVEL_INDIVIDUAL,
                                  network=OUT, remaining=decimal_pb2.Decimal(value="1"), limit_type=9)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Estimate(bad, metadata=auth(estimate_app), timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(err.value) == {"accumulator_overrides[0].remaining", "accumulator_overrides[1].limit_type",
                                     "accumulator_overrides[2].limit_type"}


async def test_calculate_takes_a_coinsurance_percent_at_the_scale_of_a_payer_fraction(
    stub: Any, estimate_app: Application
) -> None:
    """A 271's fraction "0.33333" is 33.333 %: exact, as EstimateFromEligibility derives it and the chain reads it."""
    coverage, accumulators = scenario(coinsurance_percent=D("33.333"))
    request = calculate_request(coverage, accumulators, "100.00")
    e = (await stub.Calculate(request, metadata=auth(estimate_app), timeout=5)).estimate
    assert as_decimal(e.member_pays) == Decimal("33.33")  # 33.333 % of $100.00, half-up to the cent
    for bad in ("33.12345678901", "100.5", "-1"):
        request.coverage.coinsurance_percent.value = bad
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Calculate(request, metadata=auth(estimate_app), timeout=5)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert bad_fields(err.value) == {"coverage.coinsurance_percent"}, bad
