"""Trace lines: for each handler visited, the row of §4 it took and the values it looked at.

Tracing off costs nothing but one ``is None`` test per handler. Tracing on stores the raw values (Decimal,
bool, None); text is only produced when :meth:`TraceLine.text` is called, at the API edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Callable, Final

from server.domain.costshare.routing import Edge, HandlerId

if TYPE_CHECKING:
    from server.domain.costshare.context import Context

TraceValue = Decimal | bool | str | None


@dataclass(frozen=True, slots=True)
class TraceLine:
    """One decision. ``handler`` None marks an input warning (e.g. an unknown remainder, §1.4)."""

    handler: HandlerId | None
    condition: str
    depth: int = 0
    looked_at: tuple[tuple[str, TraceValue], ...] = ()
    charged: tuple[tuple[str, Decimal], ...] = ()
    member_pays: Decimal | None = None
    amount_left: Decimal | None = None

    def text(self) -> str:
        """Human line, e.g. ``[H3 OOPMax] O known and 0 | O=0.00``."""
        head = "warning" if self.handler is None else self.handler.value
        parts = [f"{'  ' * self.depth}[{head}] {self.condition}"]
        if self.looked_at:
            parts.append(" ".join(f"{name}={show_trace_value(value)}" for name, value in self.looked_at))
        if self.charged:
            parts.append("charged " + " ".join(f"{name}={value}" for name, value in self.charged))
        if self.member_pays is not None:
            parts.append(f"member_pays={self.member_pays} amount_left={self.amount_left}")
        return " | ".join(parts)


def show_trace_value(value: TraceValue) -> str:
    """A looked-at value as the rule book names it (§1.4): None is "absent" (an unknown remainder is "unknown" or
    treated as absent with a warning before it gets here), indicators Y/N."""
    if value is None:
        return "absent"
    if value is True:
        return "Y"
    if value is False:
        return "N"
    return str(value)


# Comparison signs in words or as ≤ ≥: JSON printers (grpcurl, Go's encoding/json) escape < and > as \u003c / \u003e,
# which makes a trace unreadable in a terminal. The rule book's row labels (routing.py) stay as written there.
_SIGNS: Final = ((">=", "≥"), ("<=", "≤"), (">", "above"), ("<", "below"))
_READABLE: dict[str, str] = {}


def readable_condition(condition: str) -> str:
    """A routing row's condition as the trace shows it, e.g. "D > 0, otherwise" → "D above 0, otherwise"."""
    found = _READABLE.get(condition)
    if found is None:
        found = condition
        for sign, words in _SIGNS:
            found = found.replace(sign, words)
        _READABLE[condition] = found
    return found


def _lines(ctx: Context) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
    return (ctx.line_deductible, ctx.line_copay, ctx.line_coinsurance, ctx.line_not_covered, ctx.line_over_limit)


_LINE_NAMES = ("deductible", "copay", "coinsurance", "not_covered", "over_limit")


def _limit_view(ctx: Context) -> TraceValue:
    if not ctx.limit:
        return None
    value = ctx.l()
    return "unknown" if value is None else value


# What each handler looks at (§3), read before it runs. Functions, so nothing is computed when tracing is off.
_WATCH: dict[HandlerId, Callable[[Context], tuple[tuple[str, TraceValue], ...]]] = {
    HandlerId.H1: lambda c: (("covered", c.terms.covered), ("amount_left", c.amount_left)),
    HandlerId.H2: lambda c: (("L", _limit_view(c)),
                             ("limit_type", None if c.limit_type is None else c.limit_type.value),
                             ("amount_left", c.amount_left)),
    HandlerId.H3: lambda c: (("O", c.o()),),
    HandlerId.H4: lambda c: (("copay_left", c.copay_left), ("copay_after_oop", c.terms.copay_after_oop),
                             ("amount_left", c.amount_left)),
    HandlerId.H5: lambda c: (("D", c.d()), ("ded_first", c.terms.ded_first), ("copay_left", c.copay_left)),
    HandlerId.H6: lambda c: (("O", c.o()), ("copay_left", c.copay_left), ("copay_to_oop", c.terms.copay_to_oop),
                             ("amount_left", c.amount_left)),
    HandlerId.H7: lambda c: (("copay_after_ded", c.terms.copay_after_ded), ("copay_left", c.copay_left)),
    HandlerId.H8: lambda c: (("O", c.o()), ("D", c.d()), ("copay_left", c.copay_left),
                             ("copay_to_oop", c.terms.copay_to_oop), ("copay_to_ded", c.terms.copay_to_ded),
                             ("ded_first", c.terms.ded_first), ("amount_left", c.amount_left)),
    HandlerId.H9: lambda c: (("O", c.o()), ("D", c.d()), ("ded_to_oop", c.terms.ded_to_oop),
                             ("ded_first", c.terms.ded_first), ("amount_left", c.amount_left)),
    HandlerId.H10: lambda c: (("O", c.o()), ("percent", c.terms.percent), ("coins_to_oop", c.terms.coins_to_oop),
                              ("amount_left", c.amount_left)),
}


class Tracer:
    """Collects :class:`TraceLine` objects; exists only when the caller asked for a trace."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[TraceLine] = []

    def warn(self, message: str) -> None:
        self.lines.append(TraceLine(None, message))

    def around(self, handler: HandlerId, step: Callable[[Context], Edge], ctx: Context, depth: int) -> Edge:
        """Run ``step`` and record what it saw, which row it took and what it charged."""
        looked_at = _WATCH[handler](ctx)
        before = _lines(ctx)
        edge = step(ctx)
        after = _lines(ctx)
        charged = tuple((name, a - b) for name, b, a in zip(_LINE_NAMES, before, after) if a != b)
        self.lines.append(TraceLine(handler, readable_condition(edge.condition), depth, looked_at, charged,
                                    ctx.member_pays, ctx.amount_left))
        return edge
