"""EstimateService pb <-> the estimate use case and the chain, with field-level validation of every request."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, Protocol

from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import estimate_service_pb2 as epb
from google.type import decimal_pb2

from server.api.benefit_convert import CODE_TYPES, NETWORKS, PRODUCT_TYPES
from server.api.errors import status_for
from server.api.money import CURRENCY, decimal_to_money, money_to_decimal, parse_decimal
from server.api.validation import (
    Violations,
    check_code,
    check_enum,
    check_member,
    check_provider_count,
    check_provider_id,
)
from server.domain.costshare import (
    AccumKind,
    AccumulatorState,
    Coverage,
    CostShareResult,
    Level,
    LimitType,
    MemberAccumulator,
    RelatedAccumulator,
)
from server.domain.costshare.trace import show_trace_value
from server.usecases.benefit_selection import ProviderTraits
from server.usecases.estimates import (
    NETWORK_CODE,
    AccumulatorOverride,
    ChosenBenefit,
    EstimateQuery,
    ProviderOutcome,
    ProviderQuery,
)

KINDS = {cpb.ACCUMULATOR_KIND_DEDUCTIBLE: AccumKind.DEDUCTIBLE, cpb.ACCUMULATOR_KIND_OUT_OF_POCKET_MAX: AccumKind.OOP,
         cpb.ACCUMULATOR_KIND_LIMIT: AccumKind.LIMIT}
LEVELS = {cpb.ACCUMULATOR_LEVEL_INDIVIDUAL: Level.INDIVIDUAL, cpb.ACCUMULATOR_LEVEL_FAMILY: Level.FAMILY}
KIND_PB = {v: k for k, v in KINDS.items()}
LEVEL_PB = {v: k for k, v in LEVELS.items()}
LIMIT_TYPE_PB = {LimitType.DOLLAR: cpb.LIMIT_TYPE_DOLLAR, LimitType.COUNTER: cpb.LIMIT_TYPE_COUNTER}
_OVERRIDE_LIMIT_TYPES = {cpb.LIMIT_TYPE_DOLLAR: "Dollar", cpb.LIMIT_TYPE_COUNTER: "Counter"}  # the payer's spelling
NETWORK_PB = {"I": cpb.NETWORK_CATEGORY_IN_NETWORK, "O": cpb.NETWORK_CATEGORY_OUT_OF_NETWORK}
INDICATORS = {cpb.INDICATOR_UNSPECIFIED: None, cpb.INDICATOR_YES: "Y", cpb.INDICATOR_NO: "N"}
_MAX_ID = 64
_PERCENT_PLACES = 10  # a payer's fraction has a handful of digits; beyond is noise, not a share
_MAX_TEXT = 64


class EstimateRequestPb(Protocol):
    """EstimateRequest and StreamEstimatesRequest carry the same fields."""

    @property
    def member(self) -> cpb.Member: ...
    @property
    def product_type(self) -> int: ...
    @property
    def service(self) -> epb.RequestedService: ...
    @property
    def providers(self) -> Any: ...
    @property
    def include_trace(self) -> bool: ...
    @property
    def accumulator_overrides(self) -> Any: ...

    def HasField(self, field_name: Literal["member", "service"]) -> bool: ...


def _optional_code(value: str, path: str, v: Violations) -> str | None:
    return value if value and check_code(value, path, v, required=False) else None


def estimate_query_from_pb(req: EstimateRequestPb, max_providers: int) -> tuple[EstimateQuery | None, Violations]:
    v = Violations()
    product = check_enum(req.product_type, PRODUCT_TYPES, "product_type", v)
    if not req.HasField("member"):
        v.add("member", "is required")
    else:
        check_member(req.member, "member", v)
    code_type: str | None = None
    if not req.HasField("service"):
        v.add("service", "is required")
    else:
        check_code(req.service.code, "service.code", v, required=True)
        code_type = check_enum(req.service.code_type, CODE_TYPES, "service.code_type", v)
        _optional_code(req.service.place_of_service_code, "service.place_of_service_code", v)
    providers = _providers(req.providers, max_providers, v)
    overrides = _overrides(req.accumulator_overrides, v)
    if v or product is None or code_type is None:
        return None, v
    return EstimateQuery(
        membership_id=req.member.membership_id, plan_identifier=req.member.plan_identifier, product_type=product,
        service_code=req.service.code, code_type=code_type,
        place_of_service=req.service.place_of_service_code or None, providers=tuple(providers),
        include_trace=req.include_trace, overrides=tuple(overrides),
    ), v


def _providers(items: Any, max_providers: int, v: Violations) -> list[ProviderQuery]:
    if not check_provider_count(items, max_providers, v):
        return []
    seen: set[str] = set()
    out = []
    for i, p in enumerate(items):
        path = f"providers[{i}]"
        ok = check_provider_id(p.provider_id, f"{path}.provider_id", seen, v, max_length=_MAX_ID)
        network = check_enum(p.network_category, NETWORKS, f"{path}.network_category", v)
        for name in ("benefit_tier_name", "provider_designation", "display_name"):
            if len(getattr(p, name)) > _MAX_TEXT:
                ok = v.require(False, f"{path}.{name}", f"at most {_MAX_TEXT} characters")
        ptype = _optional_code(p.provider_type_code, f"{path}.provider_type_code", v)
        specialty = _optional_code(p.provider_specialty_code, f"{path}.provider_specialty_code", v)
        amount = None
        if not p.HasField("negotiated_amount"):
            v.add(f"{path}.negotiated_amount", "is required")
        else:
            amount = money_to_decimal(p.negotiated_amount, f"{path}.negotiated_amount", v, allow_zero=False)
        if ok and network and amount is not None:
            out.append(ProviderQuery(
                provider_id=p.provider_id,
                traits=ProviderTraits(network, p.benefit_tier_name or None, p.provider_designation or None),
                provider_type=ptype, specialty=specialty, amount=amount))
    return out


def _overrides(items: Any, v: Violations) -> list[AccumulatorOverride]:
    out, seen = [], set()
    for i, o in enumerate(items):
        path = f"accumulator_overrides[{i}]"
        kind = check_enum(o.kind, {k: str(x) for k, x in KINDS.items()}, f"{path}.kind", v)
        level = check_enum(o.level, {k: str(x) for k, x in LEVELS.items()}, f"{path}.level", v)
        network = check_enum(o.network, NETWORKS, f"{path}.network", v)
        remaining = None
        if not o.HasField("remaining"):
            v.add(f"{path}.remaining", "is required")
        else:
            remaining = _non_negative(o.remaining, f"{path}.remaining", v)
        limit_type = check_enum(o.limit_type, _OVERRIDE_LIMIT_TYPES, f"{path}.limit_type", v, required=False)
        if limit_type is not None and o.kind != cpb.ACCUMULATOR_KIND_LIMIT:
            v.add(f"{path}.limit_type", "is for limits only")
            continue
        if limit_type == "Counter" and remaining is not None and remaining != remaining.to_integral_value():
            v.add(f"{path}.remaining", "a counter limit counts whole visits")
            continue
        if None in (kind, level, network, remaining) or (o.limit_type and limit_type is None):
            continue
        key = (o.kind, o.level, o.network)
        if key in seen:
            v.add(path, "duplicate override for the same kind, level and network")
            continue
        seen.add(key)
        out.append(AccumulatorOverride(KINDS[o.kind], LEVELS[o.level], NETWORK_CODE[network], remaining,  # type: ignore[index,arg-type]
                                       limit_type))
    return out


def _non_negative(d: decimal_pb2.Decimal, path: str, v: Violations) -> Decimal | None:
    value = parse_decimal(d, path, v)
    if value is None:
        return None
    if value < 0:
        v.add(path, "must not be negative")
        return None
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        v.add(path, "at most two decimal places")
        return None
    return value


def _percent(d: decimal_pb2.Decimal, path: str, v: Violations) -> Decimal | None:
    """0..100 at the scale the chain reads it: a 271's fraction "0.33333" is 33.333 % (exact, never rounded)."""
    value = parse_decimal(d, path, v)
    if value is None:
        return None
    if not 0 <= value <= 100:
        v.add(path, "must be between 0 and 100")
        return None
    if value.as_tuple().exponent < -_PERCENT_PLACES:  # type: ignore[operator]
        v.add(path, f"at most {_PERCENT_PLACES} decimal places")
        return None
    return value


# ---- Calculate ------------------------------------------------------------------------------------------------

_INDICATOR_FIELDS = {
    # proto field → domain field
    "service_covered": "is_service_covered",
    "copay_applies_out_of_pocket": "copay_applies_out_of_pocket",
    "coinsurance_applies_out_of_pocket": "coins_applies_out_of_pocket",
    "deductible_applies_out_of_pocket": "deductible_applies_out_of_pocket",
    "copay_counts_to_deductible": "copay_count_to_deductible",
    "copay_continues_when_deductible_met": "copay_continue_when_deductible_met",
    "copay_continues_when_out_of_pocket_max_met": "copay_continue_when_out_of_pocket_max_met",
    "deductible_before_copay": "is_deductible_before_copay",
}


def calculate_inputs_from_pb(
    req: epb.CalculateRequest,
) -> tuple[tuple[Coverage, list[MemberAccumulator], Decimal] | None, Violations]:
    v = Violations()
    if not req.HasField("coverage"):
        v.add("coverage", "is required")
    c = req.coverage
    flags: dict[str, str | None] = {}
    for pb_name, domain_name in _INDICATOR_FIELDS.items():
        value = getattr(c, pb_name)
        if value not in INDICATORS:
            v.add(f"coverage.{pb_name}", f"unknown value {value}")
        flags[domain_name] = INDICATORS.get(value)
    copay = money_to_decimal(c.copay, "coverage.copay", v) if c.HasField("copay") else None
    percent = None
    if c.HasField("coinsurance_percent"):
        percent = _percent(c.coinsurance_percent, "coverage.coinsurance_percent", v)
    network = check_enum(req.network, NETWORKS, "network", v, required=False)
    amount = None
    if not req.HasField("service_amount"):
        v.add("service_amount", "is required")
    else:
        amount = money_to_decimal(req.service_amount, "service_amount", v)
    accumulators = [_accumulator(a, f"accumulators[{i}]", v) for i, a in enumerate(req.accumulators)]
    if v or amount is None:
        return None, v
    coverage = Coverage(
        copay=copay, coinsurance_percent=percent, network_category=network,
        related_accumulators=tuple(
            RelatedAccumulator(code=r.code, level=r.level, network_indicator_code=r.network_indicator_code or None,
                               accum_ex_code=r.accum_ex_code or None, deductible_code=r.deductible_code or None)
            for r in c.related_accumulators),
        **flags,
    )
    return (coverage, accumulators, amount), v


def _accumulator(a: cpb.Accumulator, path: str, v: Violations) -> MemberAccumulator:
    def dec(name: Literal["limit_value", "current_value", "calculated_value"]) -> Decimal | None:
        return parse_decimal(getattr(a, name), f"{path}.{name}", v) if a.HasField(name) else None

    return MemberAccumulator(
        code=a.code, level=a.level, network_indicator_code=a.network_indicator_code or None,
        network_indicator=a.network_indicator or None, accum_ex_code=a.accum_ex_code or None, deductible_code=a.deductible_code or None,
        limit_type=a.limit_type or None, limit_value=dec("limit_value"), current_value=dec("current_value"),
        calculated_value=dec("calculated_value"),
        num_of_individuals_met=a.individuals_met if a.HasField("individuals_met") else None,
        num_of_individuals_needed_to_meet=(
            a.individuals_needed_to_meet if a.HasField("individuals_needed_to_meet") else None),
    )


# ---- results --------------------------------------------------------------------------------------------------

@lru_cache(maxsize=4096)  # amounts repeat across providers (copays, zero lines)
def _cents(amount: Decimal) -> tuple[int, int]:
    """(units, nanos) of `amount` rounded half-up to cents, the single rounding point at the edge."""
    m = decimal_to_money(amount)
    return m.units, m.nanos


def _set_money(out: Any, amount: Decimal) -> None:
    """Fill a google.type.Money field in place (no temporary message, no CopyFrom)."""
    out.currency_code = CURRENCY
    out.units, out.nanos = _cents(amount)


def _add_state(states: Any, s: AccumulatorState) -> None:
    out = states.add(kind=KIND_PB[s.kind], level=LEVEL_PB[s.level],
                     network=NETWORK_PB.get(s.network, cpb.NETWORK_CATEGORY_UNSPECIFIED),
                     accum_ex_code=s.accum_ex_code or "", deductible_code=s.deductible_code or "")
    if s.kind is AccumKind.LIMIT and s.limit_type is not None:
        out.limit_type = LIMIT_TYPE_PB[s.limit_type]
    if s.remaining_before is not None:
        out.remaining_before.value = format(s.remaining_before, "f")
    if s.remaining_after is not None:
        out.remaining_after.value = format(s.remaining_after, "f")
    if s.limit_value is not None:
        out.limit_value.value = format(s.limit_value, "f")
    if s.current_value is not None:
        out.current_value.value = format(s.current_value, "f")
    if s.current_value_after is not None:
        out.current_value_after.value = format(s.current_value_after, "f")
    if s.num_of_individuals_met is not None:
        out.individuals_met = s.num_of_individuals_met
    if s.num_of_individuals_needed_to_meet is not None:
        out.individuals_needed_to_meet = s.num_of_individuals_needed_to_meet


def result_pb(r: CostShareResult, out: epb.CostEstimate) -> None:
    """Fill `out` field by field: every sub-message is written in place, once."""
    _set_money(out.service_amount, r.service_amount)
    _set_money(out.member_pays, r.member_pays)
    _set_money(out.plan_pays, r.plan_pays)
    b, ob = r.breakdown, out.breakdown
    _set_money(ob.deductible, b.deductible)
    _set_money(ob.copay, b.copay)
    _set_money(ob.coinsurance, b.coinsurance)
    _set_money(ob.not_covered, b.not_covered)
    _set_money(ob.over_limit, b.over_limit)
    for s in r.accumulators:
        _add_state(out.accumulators, s)
    f = out.flags
    f.service_covered, f.limit_reached = r.service_covered, r.limit_reached
    f.out_of_pocket_met, f.deductible_met = r.oop_met, r.deductible_met
    f.SetInParent()  # present even when every flag is false
    out.path.extend([h.value for h in r.path])
    for w in r.warnings:
        out.trace.add(handler="warning", decision=w)
    for line in r.trace:
        if line.handler is None:  # a warning: sent once, above (with or without the trace)
            continue
        out.trace.add(handler=line.handler.value, decision=line.condition,
                      values=_values(line.looked_at, line.charged))


def _values(looked_at: Any, charged: Any) -> Mapping[str, str]:
    """As the rule book names them (§1.4): "absent", "unknown", indicators Y/N."""
    values = {k: show_trace_value(val) for k, val in looked_at}
    values.update({f"charged.{k}": str(val) for k, val in charged})
    return values


def _benefit_pb(b: ChosenBenefit, out: epb.MatchedBenefit) -> None:
    out.MergeFromString(_matched_wire(b))
    out.SetInParent()  # present even when every field has its default (empty wire form)


@lru_cache(maxsize=4096)  # by value: equal benefits of different answers share one entry
def _matched_wire(b: ChosenBenefit) -> bytes:
    """The matched benefit's wire form, made once per distinct benefit: the providers of one answer share the few
    benefits it has, so most results copy bytes instead of setting seven fields."""
    built = epb.MatchedBenefit()
    code = b.benefit_code or ""
    built.benefit_name = b.benefit_name or ""
    built.benefit_code = int(code) if code.lstrip("-").isdigit() else 0
    built.benefit_tier_name = b.tier or ""
    built.network_category = NETWORK_PB.get(NETWORK_CODE.get(b.network or "", ""), cpb.NETWORK_CATEGORY_UNSPECIFIED)
    built.coverage_sequence_number = b.coverage_sequence or 0
    built.provider_designations.extend(b.designations)
    return built.SerializeToString()


def outcome_pb(o: ProviderOutcome, out: epb.CostEstimate | None = None) -> epb.CostEstimate:
    """Fill `out` (a sub-message of the response, so nothing is copied) or a new message."""
    if out is None:
        out = epb.CostEstimate()
    out.provider_id = o.provider_id
    if o.error is None:
        out.status.SetInParent()  # OK: code 0, no message
    else:
        out.status.CopyFrom(status_for(o.error, provider_id=o.provider_id))
    out.benefit_from_cache = o.benefit_from_cache
    if o.result is not None:
        result_pb(o.result, out)
    if o.benefit is not None:
        _benefit_pb(o.benefit, out.matched_benefit)
    return out
