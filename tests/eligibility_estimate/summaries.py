"""Summaries for the estimate tests, made by the real normalizer from real answers: the sandbox catalogue's
(as the Stedi stand-in renders them) and the two captured fixtures."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path

from server.domain.eligibility import EligibilitySummary, NormalizationContext, normalize_response
from server.sandbox import stedi_catalogue as catalogue
from server.sandbox.stedi import _Call, active_body

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stedi-v3"
SANDBOX_DOS = dt.date(2026, 3, 15)
FIXTURE_DOS = dt.date(2024, 9, 17)
FIXTURE_PAYERS = {"active_aetna.json": "60054", "inactive_uhc.json": "87726"}


@functools.cache
def summary_for(source: str) -> EligibilitySummary:
    """`SBX100001` (a sandbox member) or `fixture:active_aetna.json`."""
    if source.startswith("fixture:"):
        name = source.removeprefix("fixture:")
        body = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
        context = NormalizationContext(FIXTURE_PAYERS[name], FIXTURE_DOS, ("30",))
    else:
        member = catalogue.find_member(catalogue.SANDBOX_PAYER, source)
        assert member is not None and member.benefits is not None, source
        now = dt.datetime.combine(SANDBOX_DOS, dt.time(12), tzinfo=dt.UTC)
        request = {"subscriber": {"memberId": source}, "encounter": {"dateOfService": SANDBOX_DOS.strftime("%Y%m%d")}}
        body = active_body(member, _Call(True, member.payer_id, SANDBOX_DOS.year, request, now=now,
                                         control="000000001", trace="01TRACE"))
        context = NormalizationContext(member.payer_id, SANDBOX_DOS, ("30",))
    result = normalize_response(200, body, context)
    assert result.summary is not None, source
    return result.summary
