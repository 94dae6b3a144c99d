"""Calculate carries what the rule book promised (issue 10 §5): the textual network indicator of an accumulator
(cost-share-rules.md §1.2 fallback), the accumulator state a caller needs to explain the answer, and a readable trace
(each warning once; absent/unknown as §1.4 names them; indicators Y/N). Over a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import grpc
import pytest_asyncio
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.protobuf import json_format

from server.app import Application
from tests.conftest import auth

ALL_RELATED = [{"code": "Deductible", "level": "Individual"}, {"code": "Deductible", "level": "Family"},
               {"code": "OOP Max", "level": "Individual"}, {"code": "OOP Max", "level": "Family"}]


@pytest_asyncio.fixture
async def stub(app: Application) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        yield estimate_service_pb2_grpc.EstimateServiceStub(ch)


async def calculate(stub: Any, app: Application, request: dict[str, Any]) -> epb.CostEstimate:
    message = json_format.ParseDict({"service_amount": {"currency_code": "USD", "units": 1000}, **request},
                                    epb.CalculateRequest())
    reply = await stub.Calculate(message, metadata=auth(app), timeout=10)
    estimate: epb.CostEstimate = reply.estimate
    return estimate


def coverage(**extra: Any) -> dict[str, Any]:
    return {"service_covered": "INDICATOR_YES", "coinsurance_percent": {"value": "20"},
            "deductible_applies_out_of_pocket": "INDICATOR_YES", "coinsurance_applies_out_of_pocket": "INDICATOR_YES",
            "related_accumulators": [{"code": "Deductible", "level": "Individual"}], **extra}


async def test_the_textual_network_indicator_picks_the_accumulator_when_the_code_is_blank(
    stub: Any, app: Application
) -> None:
    """Out of network, with only `networkIndicator` sent: the out-of-network deductible ($500 left) applies, not the
    in-network one (met). Without the field both would read as in network and the deductible would be absent."""
    estimate = await calculate(stub, app, {
        "coverage": coverage(), "network": "NETWORK_CATEGORY_OUT_OF_NETWORK",
        "accumulators": [
            {"code": "Deductible", "level": "Individual", "network_indicator": "InNetwork",
             "calculated_value": {"value": "0"}},
            {"code": "Deductible", "level": "Individual", "network_indicator": "OutofNetwork",
             "calculated_value": {"value": "500"}}]})
    (state,) = estimate.accumulators
    assert (state.network, Decimal(state.remaining_before.value)) == (cpb.NETWORK_CATEGORY_OUT_OF_NETWORK, 500)
    assert estimate.breakdown.deductible.units == 500


async def test_the_accumulator_state_explains_a_deductible_met_by_count(stub: Any, app: Application) -> None:
    estimate = await calculate(stub, app, {
        "coverage": coverage(related_accumulators=ALL_RELATED[:2]),
        "accumulators": [
            {"code": "Deductible", "level": "Individual", "network_indicator_code": "I", "deductible_code": "D1",
             "limit_value": {"value": "1500"}, "current_value": {"value": "900"}, "calculated_value": {"value": "600"},
             "individuals_met": 2, "individuals_needed_to_meet": 2},
            {"code": "Deductible", "level": "Family", "network_indicator_code": "I", "limit_value": {"value": "3000"},
             "current_value": {"value": "2500"}, "calculated_value": {"value": "500"}}]})
    assert estimate.flags.deductible_met and estimate.breakdown.deductible.units == 0
    individual = next(s for s in estimate.accumulators if s.level == cpb.ACCUMULATOR_LEVEL_INDIVIDUAL)
    assert (individual.deductible_code, Decimal(individual.current_value.value)) == ("D1", 900)
    assert individual.HasField("individuals_met") and (individual.individuals_met,
                                                       individual.individuals_needed_to_meet) == (2, 2)
    assert Decimal(individual.remaining_before.value) == 600  # "met" next to a positive remainder: the count says why
    family = next(s for s in estimate.accumulators if s.level == cpb.ACCUMULATOR_LEVEL_FAMILY)
    assert not family.HasField("individuals_met") and Decimal(family.current_value.value) == 2500


async def test_the_trace_is_readable(stub: Any, app: Application) -> None:
    request = {
        "coverage": coverage(related_accumulators=ALL_RELATED, deductible_before_copay="INDICATOR_NO"),
        "accumulators": [{"code": "Deductible", "level": "Individual", "network_indicator_code": "I"}],  # unknown
    }
    plain = await calculate(stub, app, request)
    traced = await calculate(stub, app, {**request, "include_trace": True})
    warnings = [line.decision for line in traced.trace if line.handler == "warning"]
    assert warnings == [line.decision for line in plain.trace] and len(warnings) == len(set(warnings)) >= 1
    assert any("remaining unknown" in w for w in warnings)
    values = [v for line in traced.trace for v in line.values.values()]
    assert values and not {"None", "True", "False"} & set(values)
    assert "absent" in values  # no OOP cap and no usable deductible: §1.4 calls it absent
    assert {"Y", "N"} <= set(values)  # indicators (e.g. coins_to_oop Y, ded_first N)
