"""AAA classification (spec §3.2/§3.3): member data never retried, connectivity retried, 79 depends on HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.eligibility.aaa import AaaClass, AaaLevel, classify_aaa, classify_body, collect_aaa_errors
from server.domain.eligibility.status import CheckStatus, RetryPolicy


def _error(code: str, location: str = "Loop 2100C", followup: str = "Please Correct and Resubmit") -> dict[str, Any]:
    return {"field": "AAA", "code": code, "description": "payer text", "followupAction": followup, "location": location,
            "possibleResolutions": "advice that changes over time"}


def _body(*codes: str, http_location: str = "Loop 2100C") -> dict[str, Any]:
    return {"errors": [_error(c, http_location) for c in codes]}


MEMBER_CODES = ["58", "64", "65", "66", "67", "68", "69", "70", "71", "72", "73", "74", "75", "76", "77", "78"]


@pytest.mark.parametrize("code", MEMBER_CODES)
def test_member_data_is_not_found_and_never_retried(code: str) -> None:
    result = classify_body(_body(code))
    assert result is not None
    assert (result.aaa_class, result.status, result.retry) == (AaaClass.MEMBER_DATA, CheckStatus.NOT_FOUND, RetryPolicy.NONE)
    assert result.failure_reason == f"MEMBER_NOT_FOUND (AAA {code})"
    assert not result.retryable


@pytest.mark.parametrize(
    ("code", "http", "klass", "retry", "reason"),
    [
        ("42", 200, AaaClass.PAYER_CONNECTIVITY, RetryPolicy.PAYER_BUDGET, "PAYER_UNAVAILABLE (AAA 42)"),
        ("80", 200, AaaClass.PAYER_CONNECTIVITY, RetryPolicy.PAYER_BUDGET, "PAYER_UNAVAILABLE (AAA 80)"),
        ("79", 200, AaaClass.PAYER_REJECTED, RetryPolicy.ONCE, "PAYER_REJECTED (AAA 79)"),
        ("79", 400, AaaClass.PAYER_NOT_CONFIGURED, RetryPolicy.NONE, "PAYER_NOT_CONFIGURED (AAA 79)"),
        ("04", 200, AaaClass.REQUEST_VOLUME, RetryPolicy.NONE, "PAYER_VOLUME_LIMIT (AAA 04)"),
        ("41", 200, AaaClass.PROVIDER, RetryPolicy.NONE, "PROVIDER_REJECTED (AAA 41)"),
        ("43", 200, AaaClass.PROVIDER, RetryPolicy.NONE, "PROVIDER_REJECTED (AAA 43)"),
        ("97", 200, AaaClass.PROVIDER, RetryPolicy.NONE, "PROVIDER_REJECTED (AAA 97)"),
        ("T4", 200, AaaClass.REQUEST, RetryPolicy.NONE, "REQUEST_REJECTED (AAA T4)"),
        ("62", 200, AaaClass.REQUEST, RetryPolicy.NONE, "REQUEST_REJECTED (AAA 62)"),
        ("AG", 200, AaaClass.REQUEST, RetryPolicy.NONE, "REQUEST_REJECTED (AAA AG)"),
        ("ZZ", 200, AaaClass.UNKNOWN, RetryPolicy.NONE, "PAYER_ERROR (AAA ZZ)"),
    ],
)
def test_classification_table(code: str, http: int, klass: AaaClass, retry: RetryPolicy, reason: str) -> None:
    result = classify_body(_body(code), http)
    assert result is not None
    assert (result.aaa_class, result.status, result.retry, result.failure_reason) == (klass, CheckStatus.FAILED, retry, reason)
    outcome = result.outcome()
    assert outcome.status is CheckStatus.FAILED and outcome.aaa_codes == (code,) and outcome.retry is retry


def test_member_data_wins_over_connectivity() -> None:
    result = classify_body(_body("42", "75"))
    assert result is not None and result.status is CheckStatus.NOT_FOUND and result.retry is RetryPolicy.NONE
    assert result.codes == ("42", "75")


def test_42_with_79_is_connectivity() -> None:
    result = classify_body(_body("42", "79"))
    assert result is not None and result.aaa_class is AaaClass.PAYER_CONNECTIVITY
    assert result.failure_reason == "PAYER_UNAVAILABLE (AAA 42, 79)"


def test_counts_top_level_errors_only() -> None:
    error = _error("75")
    body = {"subscriber": {"aaaErrors": [error]}, "errors": [error, dict(error)]}
    errors = collect_aaa_errors(body)
    assert [e.code for e in errors] == ["75"]
    assert errors[0].level is AaaLevel.SUBSCRIBER and errors[0].description == "Subscriber/Insured Not Found"


def test_nested_errors_are_a_fallback_only_when_top_level_is_empty() -> None:
    body = {"errors": [], "payer": {"aaaErrors": [{"code": "80", "location": "Loop 2100A"}]},
            "dependents": [{"aaaErrors": [{"code": "71"}]}]}
    errors = collect_aaa_errors(body)
    assert [(e.code, e.level) for e in errors] == [("80", AaaLevel.PAYER), ("71", AaaLevel.DEPENDENT)]


def test_no_errors_means_no_classification() -> None:
    assert classify_body({"errors": []}) is None
    assert classify_aaa([]) is None


def test_reason_never_carries_payer_text() -> None:
    body = {"errors": [{"code": "QQ", "description": "JANE DOE 19710101 not on file"}]}
    result = classify_body(body)
    assert result is not None and result.failure_reason == "PAYER_ERROR (AAA QQ)"
