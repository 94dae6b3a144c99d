"""What the use case hands the API: the domain summary itself (no storage-form round trip per answer), and the
summary's storage form written by orjson exactly as `EligibilitySummary.to_json` writes it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from costestimator.v1 import eligibility_service_pb2 as pb

from server.api.eligibility_convert import check_pb, fill_check
from server.clients.models import parse_json
from server.domain.eligibility import NormalizationContext, normalize_response
from server.domain.eligibility.summary import Accumulator, Bucket, EligibilitySummary, NetworkBuckets
from server.store import CheckMode, CheckRecord, CheckStatus
from server.store.records import ResponseRecord
from server.usecases.eligibility import CheckView, summary_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stedi-v3"


def _summaries() -> list[EligibilitySummary]:
    out = []
    for path in sorted(FIXTURES.glob("*.json")):
        for payer, dos in (("60054", dt.date(2024, 9, 17)), ("87726", dt.date(2024, 3, 1))):
            result = normalize_response(200, parse_json(path.read_bytes()), NormalizationContext(payer, dos, ("30",)))
            assert result.summary is not None
            out.append(result.summary)
    return out


@pytest.mark.parametrize("summary", _summaries())
def test_storage_form_is_exactly_to_json(summary: EligibilitySummary) -> None:
    stored = summary_json(summary)
    assert stored == summary.to_json()
    assert json.dumps(stored, sort_keys=True) == summary.to_json_text()  # same types too (money as strings)
    assert EligibilitySummary.from_json(stored) == summary


@pytest.mark.parametrize("amount", ["1E+3", "1.5E-7", "0E-8", "-0.00", "1294.84", "12.50"])
def test_storage_form_never_writes_exponents(amount: str) -> None:
    """Decimals whose `str` is exponent form (a payer may send "1E+3") are stored as `to_json` writes them."""
    base = _summaries()[0]
    bucket = Bucket(period="23", total=Decimal(amount), remaining=Decimal("0.0000001"))
    summary = dataclasses.replace(base, deductible=Accumulator(NetworkBuckets(in_network=bucket)),
                                  plan_name="PLAN 2E+5")
    stored = summary_json(summary)
    assert stored == summary.to_json()
    assert stored["deductible"]["individual"]["in_network"]["total"] == format(Decimal(amount), "f")
    assert EligibilitySummary.from_json(stored) == summary


def _record(summary: dict[str, object] | None, status: CheckStatus = CheckStatus.VERIFIED) -> CheckRecord:
    now = datetime(2026, 3, 15, tzinfo=UTC)
    response = ResponseRecord("c1", 200, now, summary=summary, raw={"memberId": "SBX100001"})
    return CheckRecord(
        id="c1", tenant_id="t", policy_id="p", patient_id=None, payer_id="60054", status=status,
        mode=CheckMode.SYNC, requested_at=now, updated_at=now, completed_at=now, clearinghouse_id="s-1",
        trace_id="tr", failure_reason=None, attempts=1, next_attempt_at=None, claimed_by=None, lease_until=None,
        version=2, request_payload={"subscriber": {"memberId": "SBX100001"}}, response=response,
    )


def test_view_of_a_stored_check_reads_the_domain_summary() -> None:
    summary = _summaries()[0]
    view = CheckView.of(_record(summary_json(summary)))
    assert view.summary == summary and view.raw == {"memberId": "SBX100001"}
    assert (view.id, view.status, view.attempts, view.clearinghouse_id) == ("c1", CheckStatus.VERIFIED, 1, "s-1")


def test_view_uses_the_summary_the_caller_holds_without_reading_the_stored_form() -> None:
    summary = _summaries()[0]
    view = CheckView.of(_record({"not": "a summary"}), summary)  # from_json of this would raise
    assert view.summary is summary


def test_view_repr_carries_no_member_data() -> None:
    record = dataclasses.replace(_record(summary_json(_summaries()[0])), policy_id="POLICY-4471",
                                 patient_id="MRN-0099172")
    for text in (repr(CheckView.of(record)), repr(record)):
        assert "SBX100001" not in text and "summary" not in text and "raw" not in text
        assert "POLICY-4471" not in text and "MRN-0099172" not in text  # the caller's references to a person


@pytest.mark.parametrize("status", [CheckStatus.VERIFIED, CheckStatus.FAILED])
def test_check_written_into_a_response_is_the_check_message(status: CheckStatus) -> None:
    """The servicers fill the response's `check` in place: same bytes as the message built on its own and copied
    in (requested/completed times set, summary only when not FAILED, raw only when asked for)."""
    view = dataclasses.replace(CheckView.of(_record(summary_json(_summaries()[0]), status)),
                               raw={"memberId": "SBX100001", "amount": "1.50"})
    for include_raw in (False, True):
        built = pb.CheckEligibilityResponse(check=check_pb(view, include_raw=include_raw))
        filled = pb.CheckEligibilityResponse()
        fill_check(filled.check, view, include_raw=include_raw)
        assert filled.SerializeToString(deterministic=True) == built.SerializeToString(deterministic=True)
        assert filled.check.completed_at.ToDatetime(tzinfo=UTC) == view.completed_at
        assert filled.check.HasField("summary") is (status is CheckStatus.VERIFIED)
        assert filled.check.HasField("raw_response") is include_raw
