"""Small builders so a test reads like the rule book's worked examples (§9 defaults)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from server.domain.costshare.context import Context
from server.domain.costshare.inputs import Coverage, Level, LimitType, MemberAccumulator, RelatedAccumulator, Terms

I, F = Level.INDIVIDUAL, Level.FAMILY

#: §9: "Unless stated": covered, copay 0, 0 %, all three →OOP Y, copay→ded N, both "continue" N, ded-first Y.
BOOK_DEFAULTS: dict[str, object] = {
    "is_service_covered": "Y",
    "copay": None,
    "coinsurance_percent": None,
    "copay_applies_out_of_pocket": "Y",
    "coins_applies_out_of_pocket": "Y",
    "deductible_applies_out_of_pocket": "Y",
    "copay_count_to_deductible": "N",
    "copay_continue_when_deductible_met": "N",
    "copay_continue_when_out_of_pocket_max_met": "N",
    "is_deductible_before_copay": "Y",
}

_CODES = {"ded": "Deductible", "oop": "OOP Max", "limit": "Limit"}


def D(value: str | int) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(str(value))


def scenario(
    *,
    ded: tuple[str | None, str | None] = (None, None),
    oop: tuple[str | None, str | None] = (None, None),
    limit: tuple[str | None, str | None] = (None, None),
    limit_type: str = "Dollar",
    met: tuple[int, int] | None = None,
    **coverage: object,
) -> tuple[Coverage, list[MemberAccumulator]]:
    """Coverage with book defaults plus in-network accumulators given as (individual, family) remainders;
    None leaves that level absent. ``met`` puts (numOfIndividualsMet, needed) on the family deductible."""
    fields = dict(BOOK_DEFAULTS)
    fields.update(coverage)
    related: list[RelatedAccumulator] = []
    accs: list[MemberAccumulator] = []
    for kind, pair in (("ded", ded), ("oop", oop), ("limit", limit)):
        for level, value in zip(("Individual", "Family"), pair):
            if value is None:
                continue
            related.append(RelatedAccumulator(code=_CODES[kind], level=level, network_indicator_code="I"))
            acc = MemberAccumulator(
                code=_CODES[kind], level=level, network_indicator_code="I", calculated_value=D(value),
                limit_type=limit_type if kind == "limit" else None,
            )
            if kind == "ded" and level == "Family" and met is not None:
                acc = replace(acc, num_of_individuals_met=met[0], num_of_individuals_needed_to_meet=met[1])
            accs.append(acc)
    cov = Coverage(related_accumulators=tuple(related), **fields)  # type: ignore[arg-type]
    return cov, accs


def terms(**overrides: object) -> Terms:
    """Parsed terms with the book defaults (covered, all →OOP Y, ded-first Y), overridable by field name."""
    base: dict[str, object] = {
        "covered": True, "copay": D("0.00"), "percent": D("0"), "copay_to_oop": True, "coins_to_oop": True,
        "ded_to_oop": True, "copay_to_ded": False, "copay_after_ded": False, "copay_after_oop": False,
        "ded_first": True,
    }
    base.update(overrides)
    return Terms(**base)  # type: ignore[arg-type]


def context(
    amount: str,
    *,
    ded: dict[Level, str] | None = None,
    oop: dict[Level, str] | None = None,
    limit: dict[Level, str | None] | None = None,
    limit_type: LimitType | None = None,
    met_by_count: bool = False,
    **term_overrides: object,
) -> Context:
    """A §2 context built directly, to drive one handler or one money step alone."""
    return Context(
        terms(**term_overrides),
        D(amount),
        ded={k: D(v) for k, v in (ded or {}).items()},
        oop={k: D(v) for k, v in (oop or {}).items()},
        limit={k: (None if v is None else D(v)) for k, v in (limit or {}).items()},
        limit_type=limit_type,
        family_met_by_count=met_by_count,
    )
