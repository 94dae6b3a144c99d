"""The ten handlers of rule book §3. Each decides which row of the routing table (:mod:`.routing`) applies
and returns it; money only moves through :mod:`.steps` (and H1, H2, H4, whose charges are not cost sharing).
"""

from __future__ import annotations

from typing import Callable, Final

from server.domain.costshare import routing as r
from server.domain.costshare.context import Context
from server.domain.costshare.inputs import LimitType
from server.domain.costshare.routing import Edge, HandlerId
from server.domain.costshare.steps import coinsurance_step, copay_step, deductible_step
from server.domain.errors import InvalidInput


def h1_service_coverage(ctx: Context) -> Edge:
    """Not covered: the member pays everything and no accumulator moves (§6.8)."""
    if ctx.terms.covered:
        return r.H1_COVERED
    left = ctx.amount_left
    ctx.member_pays += left
    ctx.line_not_covered += left
    ctx.amount_left -= left
    return r.H1_NOT_COVERED


def h2_benefit_limitation(ctx: Context) -> Edge:
    """Steps 1-3: an exhausted (or unknown) limit means not covered; otherwise cost-share the whole amount."""
    if not ctx.limit:
        return r.H2_NO_LIMIT
    remaining = ctx.l()
    if remaining is None or remaining <= 0 or (ctx.limit_type is LimitType.COUNTER and remaining < 1):
        left = ctx.amount_left
        ctx.member_pays += left
        ctx.line_over_limit += left
        ctx.amount_left -= left
        ctx.limit_reached = True
        return r.H2_EXHAUSTED
    if ctx.limit_type is LimitType.COUNTER:
        return r.H2_COUNTER
    if ctx.limit_type is LimitType.DOLLAR:
        return r.H2_DOLLAR
    # Normally refused up front by matching; kept so the handler is safe on its own.
    raise InvalidInput("accumulators.limit_type", "a positive limit must be Dollar or Counter")


def h2_after_subchain(ctx: Context) -> Edge:
    """Steps 4-5: a visit uses one counter; a dollar limit caps what the plan pays, the excess is the member's
    and is credited nowhere (§6.7)."""
    limit = ctx.limit
    if ctx.limit_type is LimitType.COUNTER:
        for level, value in limit.items():
            if value is not None:
                limit[level] = value - 1
        return r.H2_AFTER
    plan_share = ctx.amount_left
    cap = ctx.l()
    covered = plan_share if cap is None or plan_share <= cap else cap
    for level, value in limit.items():
        if value is not None:
            limit[level] = value - covered
    excess = plan_share - covered
    if excess:
        ctx.member_pays += excess
        ctx.line_over_limit += excess
        ctx.amount_left -= excess
        ctx.limit_reached = True
    return r.H2_AFTER


def h3_oop_max(ctx: Context) -> Edge:
    oop = ctx.o()
    return r.H3_OOP_MET if oop is not None and not oop else r.H3_OOP_OPEN


def h4_oop_max_copay(ctx: Context) -> Edge:
    """OOP met: only a continuing copay, credited nowhere (decision 24)."""
    if ctx.copay_left and ctx.terms.copay_after_oop:
        c = min(ctx.copay_left, ctx.amount_left)
        ctx.member_pays += c
        ctx.line_copay += c
        ctx.amount_left -= c
        ctx.copay_left -= c
        return r.H4_COPAY
    return r.H4_END


def h5_deductible(ctx: Context) -> Edge:
    ded = ctx.d()
    if ded is None:
        return r.H5_NO_DEDUCTIBLE
    if not ded:
        return r.H5_MET
    if not ctx.terms.ded_first and ctx.copay_left:
        return r.H5_COPAY_FIRST
    return r.H5_DEDUCTIBLE


def h6_cost_share_copay(ctx: Context) -> Edge:
    """No deductible on this benefit: copay, then coinsurance on the rest."""
    _, to_h4 = copay_step(ctx)
    if to_h4:
        return r.H6_OOP_MET
    if not ctx.amount_left:
        return r.H6_DONE
    return r.H6_COINSURANCE


def h7_deductible_cost_share_copay(ctx: Context) -> Edge:
    """Deductible met: is a copay still charged?"""
    if ctx.terms.copay_after_ded and ctx.copay_left:
        return r.H7_COPAY
    return r.H7_COINSURANCE


def h8_deductible_copay(ctx: Context) -> Edge:
    """Copay; on copay-first plans it may also count toward the deductible, up to what is left of it."""
    charged, to_h4 = copay_step(ctx)
    terms = ctx.terms
    if not terms.ded_first and terms.copay_to_ded:
        ded = ctx.d()
        if ded is not None:
            ctx.credit_deductible(min(charged, ded))
    if to_h4:
        return r.H8_OOP_MET
    if not ctx.amount_left:
        return r.H8_DONE
    return r.H8_DED_FIRST if terms.ded_first else r.H8_COPAY_FIRST


def h9_deductible_oop_max(ctx: Context) -> Edge:
    if deductible_step(ctx):
        return r.H9_STOP
    if not ctx.amount_left:
        return r.H9_DONE
    return r.H9_DED_FIRST if ctx.terms.ded_first else r.H9_COPAY_FIRST


def h10_deductible_coinsurance(ctx: Context) -> Edge:
    coinsurance_step(ctx)
    return r.H10_END


HANDLERS: Final[dict[HandlerId, Callable[[Context], Edge]]] = {
    HandlerId.H1: h1_service_coverage,
    HandlerId.H2: h2_benefit_limitation,
    HandlerId.H3: h3_oop_max,
    HandlerId.H4: h4_oop_max_copay,
    HandlerId.H5: h5_deductible,
    HandlerId.H6: h6_cost_share_copay,
    HandlerId.H7: h7_deductible_cost_share_copay,
    HandlerId.H8: h8_deductible_copay,
    HandlerId.H9: h9_deductible_oop_max,
    HandlerId.H10: h10_deductible_coinsurance,
}
