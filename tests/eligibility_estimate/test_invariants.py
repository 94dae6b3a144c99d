"""§6 invariants of the estimate over random 271s (rendered by the sandbox's line builder, read by the real
normalizer): low ≤ point ≤ high ≤ allowed, RB §6 for the point, COMPLETE ⇒ low = high, the derived inputs
reproduce the point, and each provider's answer depends only on the check and that provider."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.domain.costshare import calculate
from server.domain.eligibility import EligibilitySummary, NormalizationContext, normalize_response
from server.domain.eligibility_estimate import (
    IN,
    OUT,
    Completeness,
    EstimateProvider,
    ProviderRole,
    ServiceToEstimate,
    estimate_from_eligibility,
)
from server.sandbox.stedi_catalogue import eb

STCS = ("98", "UC", "86", "33", "48")
TEXTS = ("DEDUCTIBLE DOES NOT APPLY", "SUBJECT TO DEDUCTIBLE", "COPAY WAIVED AFTER DEDUCTIBLE", "SPECIALIST",
         "PRIMARY CARE PHYSICIAN", "VERIFY IF DEDUCTIBLE APPLIES", "PCP")
DOS = dt.date(2026, 3, 15)

money = st.integers(min_value=0, max_value=500_000).map(lambda c: str(Decimal(c) / 100))
networks = st.sampled_from(["Y", "N", "W", None])
stc_lists = st.lists(st.sampled_from(STCS), min_size=1, max_size=3, unique=True).map(tuple)
texts = st.lists(st.sampled_from(TEXTS), max_size=2).map(tuple)
levels = st.sampled_from(["IND", "FAM", None])


@st.composite
def lines(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["A", "B", "B", "C", "F", "I"]))
    stcs = draw(stc_lists)
    net = draw(networks)
    msgs = draw(texts)
    pos = draw(st.sampled_from([None, "11", "20", "23"]))
    if kind == "A":
        return eb("A", stcs, level=draw(levels), tq="27", percent=draw(st.sampled_from(["0", "0.1", "0.2", "0.5", "1",
                                                                                          "20"])), net=net, msgs=msgs,
                  pos=pos)
    if kind == "B":
        return eb("B", stcs, level=draw(levels), tq="27", amount=draw(money), net=net, msgs=msgs, pos=pos)
    if kind == "C":
        return eb("C", stcs, level="IND", tq="27", amount=draw(st.sampled_from(["0", "500"])), net=net, msgs=msgs)
    if kind == "F":
        line = eb("C", stcs, level=draw(levels), tq=draw(st.sampled_from(["23", "29"])), net=net)
        line.update({"code": "F", "name": "Limitations", "quantityQualifierCode": "VS", "quantityQualifier": "Visits",
                     "benefitQuantity": draw(st.sampled_from(["0", "1", "20"]))})
        line.pop("benefitAmount", None)
        return line
    line = eb("C", stcs, net=net, msgs=msgs)
    line.update({"code": "I", "name": "Non-Covered"})
    return line


@st.composite
def accumulator_lines(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for code in ("C", "G"):
        for level in ("IND", "FAM"):
            for net in ("Y", "N"):
                shape = draw(st.sampled_from(["none", "total", "remaining", "both"]))
                total = draw(money)
                if shape in ("total", "both"):
                    out.append(eb(code, ("30",), level=level, tq="23", amount=total, net=net))
                if shape in ("remaining", "both"):
                    out.append(eb(code, ("30",), level=level, tq="29", amount=draw(money), net=net))
    return out


@st.composite
def summaries(draw: st.DrawFn) -> EligibilitySummary:
    benefits = [eb("1", ("30",), ins="PR", plan="PLAN A", net="W")]
    if draw(st.booleans()):
        benefits.append(eb("1", ("30",), ins="HM", plan="PLAN B", net="W"))
    benefits += draw(accumulator_lines()) + draw(st.lists(lines(), min_size=1, max_size=8))
    body = {"benefitsInformation": benefits, "errors": []}
    summary = normalize_response(200, body, NormalizationContext("SBX01", DOS, ("30",))).summary
    assert summary is not None and summary.active is True
    return summary


providers = st.builds(
    EstimateProvider,
    provider_id=st.uuids().map(str),
    network=st.sampled_from([IN, OUT]),
    allowed_amount=st.integers(min_value=0, max_value=3_000_000).map(lambda c: Decimal(c) / 100),
    role=st.sampled_from([None, ProviderRole.PRIMARY_CARE, ProviderRole.SPECIALIST]),
)
services = st.one_of(
    st.builds(ServiceToEstimate, procedure_code=st.sampled_from(["99213", "99285", "98940", "99214"]),
              place_of_service=st.sampled_from([None, "11", "20", "23"])),
    st.builds(ServiceToEstimate, service_type_codes=stc_lists),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summary=summaries(), service=services, many=st.lists(providers, min_size=1, max_size=4, unique_by=lambda p: p.provider_id))
def test_range_point_and_completeness(summary: EligibilitySummary, service: ServiceToEstimate,
                                      many: list[EstimateProvider]) -> None:
    results = estimate_from_eligibility(summary, service, many)
    for provider, result in zip(many, results, strict=True):
        assert result.provider_id == provider.provider_id
        if not result.found:
            continue
        point = result.point
        assert point is not None and result.member_pays_low is not None and result.member_pays_high is not None
        assert result.member_pays_low <= point.member_pays <= result.member_pays_high <= provider.allowed_amount
        assert point.member_pays + point.plan_pays == provider.allowed_amount
        assert point.breakdown.total() == point.member_pays
        if result.completeness is Completeness.COMPLETE:
            assert result.member_pays_low == result.member_pays_high
        assert result.inputs is not None
        again = calculate(result.inputs.coverage, result.inputs.accumulators, result.inputs.service_amount)
        assert (again.member_pays, again.breakdown, again.path) == (point.member_pays, point.breakdown, point.path)
    # Order independence: each provider alone, and the list reversed, give the same answers.
    alone = [estimate_from_eligibility(summary, service, [p])[0] for p in many]
    assert alone == list(results)
    assert list(estimate_from_eligibility(summary, service, many[::-1])) == list(results)[::-1]
