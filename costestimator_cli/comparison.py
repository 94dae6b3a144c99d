"""The live provider comparison: rows filled in as StreamEstimates delivers them, sorted by what the member pays.

Kept apart from the terminal so the sort and the table can be checked on their own, and so the JSON output and
the table read the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import grpc
from rich.console import Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from costestimator.v1 import common_pb2, estimate_service_pb2

from costestimator_cli.errors import CODES_BY_NUMBER
from costestimator_cli.formatting import enum_text, money_text, money_value


NETWORKS = {common_pb2.NETWORK_CATEGORY_IN_NETWORK: "in", common_pb2.NETWORK_CATEGORY_OUT_OF_NETWORK: "out",
            common_pb2.NETWORK_CATEGORY_UNSPECIFIED: "-"}


NAMES_MIN_WIDTH = 112  # below this the names column would wrap every row


@dataclass
class Row:
    provider: estimate_service_pb2.Provider
    estimate: estimate_service_pb2.CostEstimate | None = None
    arrival: int | None = None  # 1 for the first result the stream delivered

    @property
    def code(self) -> grpc.StatusCode | None:
        return None if self.estimate is None else CODES_BY_NUMBER.get(self.estimate.status.code,
                                                                        grpc.StatusCode.UNKNOWN)

    def sort_key(self) -> tuple[int, Decimal, str]:
        """Priced rows by member cost, then failed rows, then those still waiting."""
        if self.estimate is None:
            return 2, Decimal(0), self.provider.provider_id
        if self.code is not grpc.StatusCode.OK:
            return 1, Decimal(0), self.provider.provider_id
        return 0, money_value(self.estimate.member_pays), self.provider.provider_id


@dataclass
class Comparison:
    rows: list[Row]
    arrived: int = 0
    unexpected: list[estimate_service_pb2.CostEstimate] = field(default_factory=list)

    @classmethod
    def of(cls, providers: list[estimate_service_pb2.Provider]) -> Comparison:
        return cls([Row(p) for p in providers])

    def record(self, estimate: estimate_service_pb2.CostEstimate) -> None:
        """Fill the first waiting row of that provider (ids may repeat in a request)."""
        self.arrived += 1
        for row in self.rows:
            if row.estimate is None and row.provider.provider_id == estimate.provider_id:
                row.estimate, row.arrival = estimate, self.arrived
                return
        self.unexpected.append(estimate)

    def sorted_rows(self) -> list[Row]:
        return sorted(self.rows, key=Row.sort_key)

    @property
    def failed(self) -> int:
        return sum(1 for row in self.rows if row.estimate is not None and row.code is not grpc.StatusCode.OK)

    def table(self, title: str = "", width: int = 200) -> Table:
        """Amounts and provider ids are never cut: a narrow terminal (`width`) loses the names first."""
        named = width >= NAMES_MIN_WIDTH and any(row.provider.display_name for row in self.rows)
        cells: list[tuple[str, str, str, str, str, str, str, Text]] = []
        rank = 0
        for row in self.sorted_rows():
            provider, estimate = row.provider, row.estimate
            network = NETWORKS.get(provider.network_category, "?")
            if provider.benefit_tier_name:
                network += f", tier {provider.benefit_tier_name}"
            price = money_text(provider.negotiated_amount) if provider.HasField("negotiated_amount") else ""
            start = (provider.provider_id, provider.display_name, network)
            if estimate is None:
                cells.append(("", *start, price, "", "", Text("waiting…", style="dim")))
            elif row.code is grpc.StatusCode.OK:
                rank += 1
                cells.append((str(rank), *start, money_text(estimate.service_amount) or price,
                              money_text(estimate.member_pays), money_text(estimate.plan_pays),
                              Text(_ok_status(estimate), style="green")))
            else:  # the reason is printed under the table
                cells.append(("", *start, price, "", "", Text(row.code.name if row.code else "UNKNOWN", style="red")))

        # Rich narrows wrappable columns first: only the names (and the network) may wrap, never an id or an amount.
        table = Table(title=title or None, title_justify="left", expand=False)
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("provider", no_wrap=True)  # the id --explain takes
        if named:
            table.add_column("name", max_width=26)
        table.add_column("network")
        for header in ("price", "member pays", "plan pays"):
            table.add_column(header, justify="right", no_wrap=True, style="bold" if header == "member pays" else "")
        table.add_column("status", no_wrap=True)
        for cell in cells:
            table.add_row(*(cell if named else cell[:2] + cell[3:]))
        return table


def _ok_status(estimate: estimate_service_pb2.CostEstimate) -> str:
    flags = estimate.flags
    notes = [text for present, text in ((not flags.service_covered, "not covered"),
                                        (flags.out_of_pocket_met, "OOP max met"),
                                        (flags.limit_reached, "limit reached")) if present]
    return "OK" + (f" ({', '.join(notes)})" if notes else "")


def new_progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn())


def live_view(progress: Progress, comparison: Comparison, title: str, width: int) -> RenderableType:
    return Group(progress, comparison.table(title, width))


def trace_view(estimate: estimate_service_pb2.CostEstimate) -> RenderableType:
    """--explain: the chain's path and every trace line in words, and the accumulators before and after."""
    parts: list[RenderableType] = []
    benefit = estimate.matched_benefit
    header = Text(f"Why {estimate.provider_id} costs {money_text(estimate.member_pays)}", style="bold")
    parts.append(header)
    if benefit.benefit_name:
        parts.append(Text(f"benefit: {benefit.benefit_name} (code {benefit.benefit_code}, tier "
                          f"{benefit.benefit_tier_name or '-'})"))
    parts.append(Text("breakdown: " + ", ".join(
        f"{fd.name.replace('_', ' ')} {money_text(value)}" for fd, value in estimate.breakdown.ListFields())))
    if estimate.path:
        parts.append(Text(f"path: {' → '.join(estimate.path)}"))
    trace = Table("step", "decision", "values", title="trace", title_justify="left")
    for line in estimate.trace:
        trace.add_row(line.handler, line.decision, ", ".join(f"{k}={v}" for k, v in sorted(line.values.items())))
    parts.append(trace)
    if estimate.accumulators:
        accumulators = Table("accumulator", "level", "network", "remaining before", "remaining after",
                             title="accumulators", title_justify="left")
        for state in estimate.accumulators:
            accumulators.add_row(
                enum_text(common_pb2.AccumulatorKind.Name(state.kind), "ACCUMULATOR_KIND_"),
                enum_text(common_pb2.AccumulatorLevel.Name(state.level), "ACCUMULATOR_LEVEL_"),
                enum_text(common_pb2.NetworkCategory.Name(state.network), "NETWORK_CATEGORY_"),
                state.remaining_before.value, state.remaining_after.value)
        parts.append(accumulators)
    return Group(*parts)
