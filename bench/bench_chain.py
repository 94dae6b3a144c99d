"""Microbenchmark of the cost-share chain: microseconds per ``calculate`` with and without trace.

Runs a fixed mix of representative inputs (one per typical path of rule book §4), many iterations per run,
several runs; reports the median run. Writes ``bench/results/chain.json``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path

from server.domain.costshare import Coverage, MemberAccumulator, MemberAccumulators, RelatedAccumulator, calculate

TARGET_US = 20
RESULTS = Path(__file__).resolve().parent / "results" / "chain.json"  # outside the figures table
Inputs = tuple[Coverage, list[MemberAccumulator], Decimal]


def _acc(code: str, level: str, remaining: str, ex: str | None = None, **kw: object) -> MemberAccumulator:
    return MemberAccumulator(code=code, level=level, network_indicator_code="I", accum_ex_code=ex,
                             calculated_value=Decimal(remaining), **kw)  # type: ignore[arg-type]


# A realistic member answer: in- and out-of-network deductible and OOP at both levels, one visit limit.
MEMBER = [
    _acc("Deductible", "Individual", "380.00", ex="L01", limit_value=Decimal("1500.00"),
         current_value=Decimal("1120.00"), num_of_individuals_met=1, num_of_individuals_needed_to_meet=2),
    _acc("Deductible", "Family", "1025.00", ex="L02", num_of_individuals_met=1, num_of_individuals_needed_to_meet=2),
    _acc("OOP Max", "Individual", "4190.00", ex="L03"),
    _acc("OOP Max", "Family", "8980.00", ex="L04"),
    _acc("Limit", "Individual", "6", ex="L05", limit_type="Counter"),
    MemberAccumulator(code="OOP Max", level="Individual", network_indicator_code="O", accum_ex_code="L13",
                      calculated_value=Decimal("13000.00")),
    MemberAccumulator(code="Deductible", level="Individual", network_indicator_code="O",
                      calculated_value=Decimal("3000.00")),
]
MET = [_acc("OOP Max", "Individual", "0.00"), _acc("OOP Max", "Family", "2000.00")]
DOLLAR = [_acc("Limit", "Individual", "90.00", limit_type="Dollar")]


def _related(*pairs: tuple[str, str]) -> tuple[RelatedAccumulator, ...]:
    return tuple(RelatedAccumulator(code=c, level=lvl, network_indicator_code="I") for c, lvl in pairs)


DED_OOP = _related(("Deductible", "Individual"), ("Deductible", "Family"), ("OOP Max", "Individual"),
                   ("OOP Max", "Family"))
BASE = {"is_service_covered": "Y", "copay_applies_out_of_pocket": "Y", "coins_applies_out_of_pocket": "Y",
        "deductible_applies_out_of_pocket": "Y", "network_category": "InNetwork"}


def _cov(**kw: object) -> Coverage:
    return Coverage(**{**BASE, **kw})  # type: ignore[arg-type]


MIX: dict[str, Inputs] = {
    "no deductible: copay + coinsurance": (
        _cov(copay=Decimal("35.00"), coinsurance_percent=Decimal("20"), related_accumulators=DED_OOP[2:]),
        MEMBER, Decimal("480.00")),
    "deductible first, met inside, copay continues": (
        _cov(copay=Decimal("35.00"), coinsurance_percent=Decimal("20"), copay_continue_when_deductible_met="Y",
             is_deductible_before_copay="Y", related_accumulators=DED_OOP), MEMBER, Decimal("1180.00")),
    "copay first, credited to deductible": (
        _cov(copay=Decimal("35.00"), coinsurance_percent=Decimal("12.5"), copay_count_to_deductible="Y",
             is_deductible_before_copay="N", related_accumulators=DED_OOP), MEMBER, Decimal("655.55")),
    "counter limit + deductible": (
        _cov(copay=Decimal("25.00"), coinsurance_percent=Decimal("10"), is_deductible_before_copay="Y",
             related_accumulators=DED_OOP + _related(("Limit", "Individual"))), MEMBER, Decimal("185.00")),
    "OOP met, copay continues": (
        _cov(copay=Decimal("45.00"), copay_continue_when_out_of_pocket_max_met="Y",
             related_accumulators=DED_OOP[2:]), MET, Decimal("920.00")),
    "dollar limit, partial": (
        _cov(coinsurance_percent=Decimal("30"), related_accumulators=_related(("Limit", "Individual"))),
        DOLLAR, Decimal("260.00")),
    "not covered": (_cov(is_service_covered="N", related_accumulators=DED_OOP), MEMBER, Decimal("640.00")),
}


def _measure(fn: Callable[[], object], iterations: int, runs: int) -> float:
    """Median over ``runs`` of the microseconds per call of ``iterations`` back-to-back calls."""
    per_run = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            fn()
        per_run.append((time.perf_counter_ns() - start) / iterations / 1000)
    return statistics.median(per_run)


COLUMNS = {
    "list": "plain list, no trace",
    "list_trace": "plain list, trace",
    "prepared": "MemberAccumulators, no trace",
    "prepared_trace": "MemberAccumulators, trace",
}


def run(iterations: int = 20_000, runs: int = 7) -> dict[str, object]:
    """``list``: the accumulator answer passed as a list (normalised inside every call). ``prepared``: wrapped
    once in :class:`MemberAccumulators`, as ``Estimate`` does for the providers of one member."""
    rows: list[dict[str, object]] = []
    for name, (cov, accs, amount) in MIX.items():
        prepared = MemberAccumulators(accs)
        calls: dict[str, Callable[[], object]] = {
            "list": partial(calculate, cov, accs, amount),
            "list_trace": partial(calculate, cov, accs, amount, trace=True),
            "prepared": partial(calculate, cov, prepared, amount),
            "prepared_trace": partial(calculate, cov, prepared, amount, trace=True),
        }
        row: dict[str, object] = {"case": name, "path": calculate(cov, accs, amount).path_text()}
        for column, fn in calls.items():
            fn()  # warm-up
            row[column] = round(_measure(fn, iterations, runs), 2)
        rows.append(row)
    means = {c: round(statistics.fmean(float(r[c]) for r in rows), 2) for c in COLUMNS}  # type: ignore[arg-type]
    worst = {c: max(float(r[c]) for r in rows) for c in COLUMNS}  # type: ignore[arg-type]
    return {
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "iterations": iterations,
        "runs": runs,
        "statistic": "median of runs, microseconds per calculate()",
        "target_us_no_trace": TARGET_US,
        "columns": COLUMNS,
        "mix_mean_us": means,
        "worst_case_us": worst,
        "meets_target": {"mix_mean_list": means["list"] <= TARGET_US,
                         "every_case_list": worst["list"] <= TARGET_US,
                         "every_case_prepared": worst["prepared"] <= TARGET_US},
        "cases": rows,
    }


def main(argv: list[str] | None = None) -> None:
    """Print the table and write the JSON; ``argv`` may give the iterations per run (default 20,000)."""
    iterations = int(argv[0]) if argv else 20_000
    report = run(iterations)
    rows: list[dict[str, object]] = report["cases"]  # type: ignore[assignment]
    width = max(len(str(r["case"])) for r in rows)
    head = "".join(f"{c:>16}" for c in COLUMNS)
    print(f"{'case (µs per calculate)':<{width}}  {'path':<28}{head}")
    for r in rows:
        cells = "".join(f"{float(r[c]):>16.2f}" for c in COLUMNS)  # type: ignore[arg-type]
        print(f"{str(r['case']):<{width}}  {str(r['path']):<28}{cells}")
    means: dict[str, float] = report["mix_mean_us"]  # type: ignore[assignment]
    print(f"{'mean of the mix':<{width}}  {'':<28}" + "".join(f"{means[c]:>16.2f}" for c in COLUMNS))
    print(f"target ≤ {TARGET_US} µs without trace: {report['meets_target']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main(sys.argv[1:])
