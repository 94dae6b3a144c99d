"""The normalizer and the summary's wire/storage forms, pinned byte for byte over every 271 we have.

The recipe was tuned for CPU (issue 13 §2) without changing any output: this compares the summary JSON, the
outcome and the protobuf bytes of every real capture and every sandbox catalogue answer, under several
contexts, with the outputs recorded before the tuning (digests in `golden_normalize.json`; a failure names the case). A deliberate recipe change
bumps `RECIPE_VERSION` and re-records: `python -m tests.eligibility.test_normalize_golden`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.api.eligibility_convert import summary_pb
from server.domain.eligibility.normalize import NormalizationContext, normalize_response
from server.sandbox import stedi_catalogue as catalogue
from server.sandbox.stedi import _Call, aaa_body, active_body
from server.usecases.eligibility import summary_json

from .conftest import FIXTURES, load_fixture

GOLDEN = Path(__file__).with_name("golden_normalize.json")
_NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)
_STCS: tuple[tuple[str, ...], ...] = (("30",), ("30", "98", "UC"), ("98", "BZ", "96"), ("35",), ("88", "30"))


def _call(payer_id: str, member_id: str) -> _Call:
    request = {"subscriber": {"memberId": member_id}, "dependents": [{"firstName": "X"}]}
    return _Call(True, payer_id, 2026, request, now=_NOW, control="000000001", trace="01TRACE")


def bodies() -> Iterator[tuple[str, dict[str, Any], str, dt.date]]:
    """(name, body, payer, a date of service inside the plan) for every capture and catalogue answer."""
    yield "active_aetna", load_fixture("active_aetna.json"), "60054", dt.date(2024, 9, 17)
    yield "inactive_uhc", load_fixture("inactive_uhc.json"), "87726", dt.date(2024, 9, 17)
    for m in (*catalogue.SBX_MEMBERS, *catalogue.STEDI_MOCK_MEMBERS):
        if m.benefits is not None:
            body = active_body(m, _call(m.payer_id, m.member_id))
        elif m.aaa is not None:
            body = aaa_body(m.aaa, _call(m.payer_id, m.member_id), m)
        else:
            continue
        body["id"], body["eligibilitySearchId"] = "ec_fixed", "fixed"  # generated per call
        yield f"{m.payer_id}/{m.member_id}", body, m.payer_id, dt.date(2026, 3, 15)


def _contexts(payer: str, dos: dt.date) -> Iterator[tuple[str, NormalizationContext]]:
    for stcs in _STCS:
        yield f"{'+'.join(stcs)}@{dos}", NormalizationContext(payer, dos, stcs)
    yield "30@dependent", NormalizationContext(payer, dos, ("30",), patient_is_dependent=True)
    for shifted in (dos - dt.timedelta(days=400), dos + dt.timedelta(days=400)):
        yield f"30@{shifted}", NormalizationContext(payer, shifted, ("30",))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def outputs() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, body, payer, dos in bodies():
        for label, context in _contexts(payer, dos):
            result = normalize_response(200, json.loads(json.dumps(body)), context)
            case: dict[str, Any] = {"outcome": repr(result.outcome), "aaa": repr(result.aaa)}
            if result.summary is not None:
                stored = result.summary.to_json()
                assert summary_json(result.summary) == stored
                case["summary_sha256"] = _digest(json.dumps(stored, sort_keys=True).encode())
                wire = summary_pb(result.summary).SerializeToString(deterministic=True)
                case["pb_sha256"] = _digest(wire)
            out[f"{name} {label}"] = case
    return out


def test_fixtures_are_all_covered() -> None:
    assert {p.name for p in FIXTURES.glob("*.json")} == {"active_aetna.json", "inactive_uhc.json"}


def test_every_output_is_unchanged() -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    actual = outputs()
    assert sorted(actual) == sorted(expected)
    differ = [name for name in expected if actual[name] != expected[name]]
    assert not differ, differ[:5]
    assert sum("summary_sha256" in case for case in actual.values()) > 100


@pytest.mark.parametrize("name", ["active_aetna.json", "inactive_uhc.json"])
def test_parsing_does_not_touch_the_body(name: str) -> None:
    body = load_fixture(name)
    before = json.dumps(body, sort_keys=True)
    normalize_response(200, body, NormalizationContext("60054", dt.date(2024, 9, 17)))
    assert json.dumps(body, sort_keys=True) == before


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(outputs(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
