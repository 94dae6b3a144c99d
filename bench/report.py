"""The table of figures: rows with value, same-run baseline, ratio, target and verdict; printing and JSON.

Pure code (no I/O but `write_json`), so the verdict logic is tested without running a benchmark.
"""

from __future__ import annotations

import json
import operator
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PASS, FAIL, NA, ERROR = "PASS", "FAIL", "N/A", "ERROR"
_OPS = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Spread:
    """Median and range of repeated measurements (rounds)."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no measurements")
        return cls(statistics.median(values), min(values), max(values))

    def fmt(self, digits: int = 0, unit: str = "") -> str:
        if self.low == self.high:
            return f"{self.median:,.{digits}f}{unit}"
        return f"{self.median:,.{digits}f}{unit} ({self.low:,.{digits}f}–{self.high:,.{digits}f})"


@dataclass(frozen=True)
class Target:
    """`measure op limit`, e.g. Target("ratio", ">=", 0.40) or Target("p99_ms", "<=", 200)."""

    measure: str
    op: str
    limit: float
    text: str

    def met(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.limit))


@dataclass
class Row:
    figure: str
    value: str
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    verdict: str = NA
    note: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)


def judge(numbers: dict[str, float | None], targets: Sequence[Target]) -> str:
    """PASS when every target's measure meets it, FAIL when any does not, N/A when a measure is missing."""
    verdict = PASS
    for t in targets:
        value = numbers.get(t.measure)
        if value is None:
            return NA
        if not t.met(value):
            verdict = FAIL
    return verdict


def row(figure: str, value: str, numbers: dict[str, Any], targets: Sequence[Target], *, baseline: str = "—",
        ratio: str = "—", note: str = "") -> Row:
    return Row(figure, value, baseline, ratio, " and ".join(t.text for t in targets) or "—",
               judge(numbers, targets) if targets else NA, note, numbers)


def not_applicable(figure: str, target: str, reason: str) -> Row:
    return Row(figure, "—", target=target, verdict=NA, note=reason)


def failed(figure: str, error: str) -> Row:
    return Row(figure, "—", verdict=ERROR, note=error)


COLUMNS = ("figure", "value", "baseline", "ratio", "target", "verdict")


def render(rows: Sequence[Row]) -> str:
    """Aligned columns; notes go on an indented line under their row."""
    cells = [[getattr(r, c) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) if cells else len(c) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for r, line in zip(rows, cells, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if r.note:
            lines.append(f"    ↳ {r.note}")
    return "\n".join(lines)


def missed(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.verdict in (FAIL, ERROR)]


def write_json(rows: Sequence[Row], meta: dict[str, Any], directory: Path, stamp: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**meta, "rows": [asdict(r) for r in rows]}, indent=2, default=str) + "\n"
    path = directory / f"{stamp}.json"
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    return path
