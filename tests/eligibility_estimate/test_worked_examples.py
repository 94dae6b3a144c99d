"""Every worked example of estimate-from-eligibility.md §8 through the domain derivation (EX-01..18)."""

from __future__ import annotations

import pytest

from server.domain.costshare import AccumKind, calculate
from server.domain.eligibility_estimate import (
    IN,
    OUT,
    CoverageRefused,
    EstimateProvider,
    ProviderRole,
    ServiceToEstimate,
    estimate_from_eligibility,
)

from .examples import EXAMPLES, REFUSED, Example
from .summaries import summary_for

_KIND = {AccumKind.DEDUCTIBLE: "deductible", AccumKind.OOP: "oop", AccumKind.LIMIT: "limit"}


def run(example: Example, *, trace: bool = False):  # type: ignore[no-untyped-def]
    service = ServiceToEstimate(example.procedure, example.stcs, example.place_of_service)
    providers = [EstimateProvider(p.provider_id, IN if p.network == "in" else OUT, p.amount,
                                  ProviderRole(p.role) if p.role else None) for p in example.providers]
    return estimate_from_eligibility(summary_for(example.source), service, providers, trace=trace)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_worked_example(example: Example) -> None:
    results = run(example)
    assert [r.provider_id for r in results] == [p.provider_id for p in example.providers]
    for result, expect in zip(results, example.expect, strict=True):
        if expect.member is None:
            assert not result.found and result.point is None
            continue
        assert result.found and result.point is not None
        assert (result.point.member_pays, result.point.plan_pays) == (expect.member, expect.plan)
        assert (result.member_pays_low, result.member_pays_high) == (expect.low, expect.high)
        assert result.completeness is not None and result.completeness.value == expect.completeness
        assert result.codes() == expect.codes, result.assumptions
        if expect.service_type:
            assert result.service_type_code == expect.service_type
        after = {(_KIND[s.kind], s.level.value): s.remaining_after for s in result.point.accumulators}
        for key, value in expect.after.items():
            assert after[key] == value, key


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_the_derived_inputs_reproduce_the_point(example: Example) -> None:
    for result in run(example):
        if result.found:
            assert result.inputs is not None and result.point is not None
            again = calculate(result.inputs.coverage, result.inputs.accumulators, result.inputs.service_amount)
            assert (again.member_pays, again.plan_pays, again.breakdown, again.path) == (
                result.point.member_pays, result.point.plan_pays, result.point.breakdown, result.point.path)


@pytest.mark.parametrize(("name", "source", "reason"), REFUSED)
def test_inactive_coverage_is_refused(name: str, source: str, reason: str) -> None:
    with pytest.raises(CoverageRefused) as caught:
        estimate_from_eligibility(summary_for(source), ServiceToEstimate("99213"),
                                  [EstimateProvider("p", IN, EXAMPLES[0].providers[0].amount)])
    assert caught.value.reason == reason


def test_assumptions_name_the_entries_they_rest_on() -> None:
    (result,) = run(EXAMPLES[0])  # EX-01: the two competing 98 copays of the §2.4 body
    (copay,) = [a for a in result.assumptions if a.code == "AMBIGUOUS_COPAY"]
    summary = summary_for("SBX100001")
    lines = {line.source_ref: line for line in summary.cost_shares}
    assert sorted(lines[i].amount for i in copay.source_indices) == [30, 60]  # type: ignore[type-var]
    assert set(copay.source_indices) <= set(result.source_indices)


def test_the_trace_starts_with_the_decisions() -> None:
    (result,) = run(EXAMPLES[4], trace=True)  # EX-05
    assert [d.step for d in result.decisions][:2] == ["D2", "D3"] and result.decisions[-1].step == "D9"
    assert result.point is not None and result.point.trace
