"""The live table's state on its own: rows fill in out of order and stay sorted by what the member pays."""

from __future__ import annotations

from io import StringIO

from google.rpc import status_pb2
from google.type import money_pb2
from rich.console import Console

from costestimator.v1 import estimate_service_pb2 as pb
from costestimator_cli.comparison import Comparison


def usd(units: int, nanos: int = 0) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", units=units, nanos=nanos)


def rendered(comparison: Comparison) -> list[str]:
    out = StringIO()
    Console(file=out, width=160, color_system=None).print(comparison.table())
    return [line for line in out.getvalue().splitlines() if line.startswith("│")]


def test_rows_are_sorted_as_they_arrive_failed_after_priced_waiting_last() -> None:
    comparison = Comparison.of([pb.Provider(provider_id=name, negotiated_amount=usd(100)) for name in "abcd"])
    assert [line.split("│")[2].strip() for line in rendered(comparison)] == ["a", "b", "c", "d"]
    assert all("waiting" in line for line in rendered(comparison))

    comparison.record(pb.CostEstimate(provider_id="c", member_pays=usd(90), plan_pays=usd(10)))
    comparison.record(pb.CostEstimate(provider_id="a", status=status_pb2.Status(code=14, message="payer down")))
    comparison.record(pb.CostEstimate(provider_id="d", member_pays=usd(89, 990_000_000), plan_pays=usd(10)))
    lines = rendered(comparison)
    assert [line.split("│")[2].strip() for line in lines] == ["d", "c", "a", "b"]
    assert "$89.99" in lines[0] and lines[0].split("│")[1].strip() == "1"
    assert "UNAVAILABLE" in lines[2] and "waiting" in lines[3]
    assert (comparison.arrived, comparison.failed) == (3, 1)


def test_repeated_provider_ids_fill_one_row_each() -> None:
    comparison = Comparison.of([pb.Provider(provider_id="same"), pb.Provider(provider_id="same")])
    comparison.record(pb.CostEstimate(provider_id="same", member_pays=usd(5)))
    comparison.record(pb.CostEstimate(provider_id="same", member_pays=usd(3)))
    comparison.record(pb.CostEstimate(provider_id="other"))
    assert [row.arrival for row in comparison.sorted_rows()] == [2, 1]
    assert [e.provider_id for e in comparison.unexpected] == ["other"]
