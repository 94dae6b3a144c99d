"""The three money steps of rule book §2.1: the only code that charges the member or credits accumulators.

Each step charges at most ``amount_left`` and credits at most O / D, which is what keeps every remainder
non-negative (§6.4, §6.5) without any clamping after the fact.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from server.domain.costshare.context import Context
from server.domain.money import ZERO, to_cents

_PERCENT: Final = Decimal("0.01")


def copay_step(ctx: Context) -> tuple[Decimal, bool]:
    """Charge the copay (capped by O when it counts to the OOP). Returns (charged, go to H4)."""
    oop = ctx.o()
    if oop is not None and not oop:
        return ZERO, True  # 1. OOP already met: only H4 may still charge a continuing copay
    c = min(ctx.copay_left, ctx.amount_left)  # 2.
    to_oop = ctx.terms.copay_to_oop
    if to_oop and oop is not None and c > oop:
        c = oop
    ctx.member_pays += c  # 3.
    ctx.line_copay += c
    ctx.amount_left -= c
    ctx.copay_left -= c
    if to_oop:
        ctx.credit_oop(c)
        # 4. the copay used up the OOP: H4 finishes the copay (if copay-after-OOP) and nothing else is charged
        if oop is not None and oop == c and ctx.amount_left:
            return c, True
    return c, False


def deductible_step(ctx: Context) -> bool:
    """Charge toward the deductible (capped by O when it counts to the OOP). Returns True when the chain
    must complete: the OOP was already met, or it ran out before the deductible was satisfied."""
    oop = ctx.o()
    if oop is not None and not oop:
        return True  # 1.
    ded = ctx.d()
    want = min(ctx.amount_left, ZERO if ded is None else ded)  # 2.
    charge = want
    to_oop = ctx.terms.ded_to_oop
    if to_oop and oop is not None and charge > oop:
        charge = oop
    ctx.member_pays += charge  # 3.
    ctx.line_deductible += charge
    ctx.amount_left -= charge
    ctx.credit_deductible(charge)
    if to_oop:
        ctx.credit_oop(charge)
    return charge < want  # 4.


def coinsurance_step(ctx: Context) -> None:
    """Charge the member's percentage of what is left, rounded half-up once (§7), capped by O if counted."""
    percent = ctx.terms.percent
    left = ctx.amount_left
    oop = ctx.o()
    if not left or not percent or (oop is not None and not oop):
        return  # 1.
    k = to_cents(left * percent * _PERCENT)  # 2. the single rounding point of the whole chain
    to_oop = ctx.terms.coins_to_oop
    if to_oop and oop is not None and k > oop:
        k = oop
    ctx.member_pays += k  # 3.
    ctx.line_coinsurance += k
    ctx.amount_left -= k
    if to_oop:
        ctx.credit_oop(k)
