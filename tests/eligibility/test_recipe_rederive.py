"""A summary stored by an older recipe is re-derived from the stored raw 271 on read, never mixed in silently."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from typing import Any

from server.domain.eligibility import RECIPE_VERSION, NormalizationContext, normalize_response
from server.store import CheckMode, CheckRecord, CheckStatus
from server.store.records import ResponseRecord
from server.usecases.eligibility import CheckView, summary_is_stale, summary_json

from .conftest import load_fixture

_NEW_FIELDS = ("service_lines", "plan_coverages", "date_of_service")


def _record(summary: dict[str, Any], raw: dict[str, Any] | None) -> CheckRecord:
    now = datetime(2024, 9, 17, 15, tzinfo=UTC)
    payload = {"tradingPartnerServiceId": "60054", "encounter": {"serviceTypeCodes": ["30"], "dateOfService": "20240917"}}
    response = ResponseRecord("c1", 200, now, summary=summary, raw=raw)
    return CheckRecord(
        id="c1", tenant_id="t", policy_id=None, patient_id=None, payer_id="60054", status=CheckStatus.VERIFIED,
        mode=CheckMode.SYNC, requested_at=now, updated_at=now, completed_at=now, clearinghouse_id=None,
        trace_id=None, failure_reason=None, attempts=1, next_attempt_at=None, claimed_by=None, lease_until=None,
        version=2, request_payload=payload, response=response,
    )


def _old_form() -> tuple[dict[str, Any], dict[str, Any], Any]:
    raw = load_fixture("active_aetna.json")
    current = normalize_response(200, raw, NormalizationContext("60054", dt.date(2024, 9, 17), ("30",))).summary
    assert current is not None and current.plan_coverages and current.date_of_service == dt.date(2024, 9, 17)
    old = {k: v for k, v in summary_json(current).items() if k not in _NEW_FIELDS}
    old["recipe_version"] = "stedi-v3/1"
    return old, raw, current


def test_an_older_recipe_is_rederived_from_the_raw_271() -> None:
    old, raw, current = _old_form()
    record = _record(old, raw)
    assert summary_is_stale(record)
    view = CheckView.of(record)
    assert view.summary == current and view.summary is not None and view.summary.recipe_version == RECIPE_VERSION


def test_without_the_raw_271_the_old_form_is_shown_with_its_own_version() -> None:
    old, _raw, _current = _old_form()
    view = CheckView.of(_record(old, None))
    assert view.summary is not None and view.summary.recipe_version == "stedi-v3/1"
    assert view.summary.service_lines == () and view.summary.date_of_service is None


def test_a_current_summary_is_not_stale() -> None:
    _old, raw, current = _old_form()
    record = _record(summary_json(current), raw)
    assert not summary_is_stale(record) and CheckView.of(record).summary == current
