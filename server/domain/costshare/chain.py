"""Entry point of the calculation chain: validate, select accumulators, run H1 onward, report (§1-§10)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import Final

from server.domain.costshare.context import Context
from server.domain.costshare.handlers import HANDLERS, h2_after_subchain
from server.domain.costshare.inputs import AccumKind, Coverage, Level, MemberAccumulator, parse_terms
from server.domain.costshare.matching import MemberAccumulators, Selection, select
from server.domain.costshare.result import AccumulatorState, Breakdown, CostShareResult
from server.domain.costshare.routing import Edge, HandlerId
from server.domain.costshare.trace import Tracer
from server.domain.errors import ChainDefect
from server.domain.money import EXACT, parse_money

#: The longest legal path has 9 handlers (H1 H2 H3 H5 H9 H7 H8 H10 plus H4); anything past this is a cycle.
MAX_STEPS: Final = 16


def calculate(
    coverage: Coverage,
    accumulators: Sequence[MemberAccumulator] | MemberAccumulators,
    service_amount: Decimal | str | int,
    *,
    trace: bool = False,
) -> CostShareResult:
    """Member and plan share of one service under one coverage.

    ``accumulators`` is the member's answer as a list, or already wrapped in :class:`MemberAccumulators`
    when the same answer serves several coverages or providers (it is then normalised only once).
    Raises :class:`~server.domain.errors.InvalidInput` (with a field path) for anything §1.1 refuses; never
    returns a made-up zero.
    """
    with localcontext(EXACT):
        amount = parse_money(service_amount, "service_amount")
        terms = parse_terms(coverage)
        if not isinstance(accumulators, MemberAccumulators):
            accumulators = MemberAccumulators(accumulators)
        selection = select(coverage, accumulators)
        tracer = Tracer() if trace else None
        ded: dict[Level, Decimal] = {}
        oop: dict[Level, Decimal] = {}
        limit: dict[Level, Decimal | None] = {}
        warnings: list[str] = list(selection.missing)
        for sel in selection.accumulators:
            if sel.kind is AccumKind.LIMIT:
                limit[sel.level] = sel.remaining
            elif sel.remaining is not None:
                (ded if sel.kind is AccumKind.DEDUCTIBLE else oop)[sel.level] = sel.remaining
            if sel.remaining is None:
                warnings.append(_unknown_warning(sel.kind, sel.level, sel.index))
            elif sel.clamped:
                warnings.append(f"accumulators[{sel.index}] ({sel.kind.value} {sel.level.value}): negative "
                                "remaining from the payer, treated as 0")
        if tracer is not None:
            for message in warnings:
                tracer.warn(message)
        ctx = Context(terms, amount, ded=ded, oop=oop, limit=limit, limit_type=selection.limit_type,
                      family_met_by_count=selection.family_met_by_count, tracer=tracer)
        run(ctx)
        return _result(ctx, selection, tuple(warnings))


def run(ctx: Context, start: HandlerId = HandlerId.H1) -> None:
    """Drive the handlers from ``start`` until one completes: a bounded loop, no recursion.

    H2's sub-chain (§3 H2 step 3) is the same loop continuing at H3; when it completes, H2's after-work runs.
    """
    handlers = HANDLERS
    path = ctx.path
    tracer = ctx.tracer
    pending: Edge | None = None
    depth = 0
    current: HandlerId | None = start
    while current is not None:
        if len(path) >= MAX_STEPS:
            raise ChainDefect(f"chain did not complete within {MAX_STEPS} handlers: {path}")
        path.append(current)
        step = handlers[current]
        edge = step(ctx) if tracer is None else tracer.around(current, step, ctx, depth)
        if edge.subchain:
            pending = edge
            ctx.subchain_start = len(path)
            depth = 1
        current = edge.target
        if current is None and pending is not None:
            if tracer is None:
                h2_after_subchain(ctx)
            else:
                tracer.around(pending.source, h2_after_subchain, ctx, 0)
            pending = None


def _unknown_warning(kind: AccumKind, level: Level, index: int) -> str:
    treated = "exhausted" if kind is AccumKind.LIMIT else "absent"
    return f"accumulators[{index}] ({kind.value} {level.value}): remaining unknown, treated as {treated}"


def _result(ctx: Context, selection: Selection, warnings: tuple[str, ...]) -> CostShareResult:
    states = []
    for sel in selection.accumulators:
        before = sel.remaining
        after: Decimal | None
        if before is None:
            after = None
        elif sel.kind is AccumKind.DEDUCTIBLE:
            after = ctx.ded[sel.level]
        elif sel.kind is AccumKind.OOP:
            after = ctx.oop[sel.level]
        else:
            after = ctx.limit[sel.level]
        current = sel.current_value
        current_after = current
        if current is not None and before is not None and after is not None and before != after:
            current_after = current + (before - after)
        src = sel.source
        states.append(AccumulatorState(
            sel.kind, sel.level, sel.network, sel.limit_type, sel.index, src.accum_ex_code, src.deductible_code,
            sel.limit_value, current, current_after, before, after,
            src.num_of_individuals_met, src.num_of_individuals_needed_to_meet,
        ))
    oop = ctx.o()
    ded = ctx.d()
    member = ctx.member_pays
    return CostShareResult(
        service_amount=ctx.service_amount,
        member_pays=member,
        plan_pays=ctx.service_amount - member,
        breakdown=Breakdown(ctx.line_deductible, ctx.line_copay, ctx.line_coinsurance, ctx.line_not_covered,
                            ctx.line_over_limit),
        accumulators=tuple(states),
        service_covered=ctx.terms.covered,
        limit_reached=ctx.limit_reached,
        oop_met=oop is not None and not oop,
        deductible_met=ded is not None and not ded,
        path=tuple(ctx.path),
        subchain_start=ctx.subchain_start,
        trace=() if ctx.tracer is None else tuple(ctx.tracer.lines),
        warnings=warnings,
    )


__all__ = ["MAX_STEPS", "calculate", "run"]
