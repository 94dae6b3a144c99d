"""The hand-made expectation table of the SBX6xxxxx members is well formed and reaches every rule it claims to.

It is the oracle the EstimateFromEligibility tests run against; these checks keep it honest on its own (spec §6
invariants, §4 D9 completeness rule, coverage of every assumption code) before any implementation exists.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from server.sandbox import stedi_catalogue as catalogue
from tests.eligibility_estimate.sandbox_expectations import (
    ALL_CODES,
    CASES,
    GAP_CODES,
    OON,
    Case,
    Expected,
    Refusal,
    markdown_table,
)

PRICED = [(c, e) for c in CASES if not isinstance(c.outcome, Refusal) for e in c.outcome if e.status == "OK"]


def _cents(text: str | None) -> Decimal:
    assert text is not None
    value = Decimal(text)
    assert value == value.quantize(Decimal("0.01")) and value >= 0, text
    return value


@pytest.mark.parametrize(("case", "expected"), PRICED, ids=[f"{c.name}/{e.provider.provider_id}" for c, e in PRICED])
def test_each_priced_answer_obeys_the_invariants(case: Case, expected: Expected) -> None:
    low, point, high = _cents(expected.low), _cents(expected.member_pays), _cents(expected.high)
    assert low <= point <= high <= Decimal(expected.provider.allowed_amount)
    assert expected.assumptions <= ALL_CODES
    gap = bool(expected.assumptions & GAP_CODES)
    completeness = "INCOMPLETE" if gap else "AMBIGUOUS" if low < high else "COMPLETE"
    assert expected.completeness == completeness
    assert (OON in expected.assumptions) == (expected.provider.network == "OUT")
    assert expected.service_type_code and expected.why


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_case_names_a_catalogue_member_and_answers_every_provider(case: Case) -> None:
    known = catalogue.find_member("SBX01", case.member.member_id)
    assert known is not None or case.member.member_id == "SBX999999"  # the catalogue's "not found" member
    if known is not None and known.first_name is not None and known.dob is not None:
        assert (case.member.first_name, case.member.last_name) == (known.first_name, known.last_name)
        assert case.member.date_of_birth.replace("-", "") == known.dob
    ids = [p.provider_id for p in case.providers]
    assert len(set(ids)) == len(ids) and 1 <= len(ids) <= 100
    assert case.service.procedure or case.service.service_type_codes
    if not isinstance(case.outcome, Refusal):
        assert [e.provider for e in case.outcome] == list(case.providers)


def test_the_table_reaches_every_assumption_code_completeness_and_status() -> None:
    answers = [e for c in CASES if not isinstance(c.outcome, Refusal) for e in c.outcome]
    assert set().union(*(e.assumptions for e in answers)) == ALL_CODES
    assert {e.completeness for e in answers if e.status == "OK"} == {"COMPLETE", "AMBIGUOUS", "INCOMPLETE"}
    assert {e.status for e in answers} == {"OK", "NOT_FOUND"}
    reasons = {c.outcome.reason for c in CASES if isinstance(c.outcome, Refusal)}
    assert {"COVERAGE_STATUS_UNCLEAR", "COVERAGE_INACTIVE", "MEMBER_NOT_FOUND", "PAYER_UNAVAILABLE",
            "CLEARINGHOUSE_UNAVAILABLE", "CHECK_FAILED"} <= reasons


def test_every_estimate_member_of_the_catalogue_has_cases() -> None:
    members = {m.member_id for m in catalogue.SBX_MEMBERS if m.member_id.startswith("SBX6")}
    assert members == {c.member.member_id for c in CASES if c.member.member_id.startswith("SBX6")}


def test_the_docs_show_this_table() -> None:
    """docs/sandbox-members.md pastes `python -m tests.eligibility_estimate.sandbox_expectations`."""
    docs = (Path(__file__).parents[2] / "docs" / "sandbox-members.md").read_text(encoding="utf-8")
    assert markdown_table() in docs
