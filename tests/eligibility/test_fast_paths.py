"""The shortcuts taken for CPU (issue 13 §2) give what the general path gives, on the inputs they skip."""

from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal
from types import MappingProxyType

from server.domain.eligibility.benefits import IN, OUT, parse_entries, parse_entry
from server.domain.eligibility.validation import _EXTRA_FOLDS, fold_to_ascii


def _slow_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_EXTRA_FOLDS))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def test_ascii_is_a_fixed_point_of_the_fold() -> None:
    assert all(key > 127 for key in _EXTRA_FOLDS)  # str.maketrans keys are code points
    every_ascii = "".join(chr(i) for i in range(128))
    assert fold_to_ascii(every_ascii) == _slow_fold(every_ascii) == every_ascii
    assert fold_to_ascii("Zoë Ø") == _slow_fold("Zoë Ø") == "Zoe O"


def test_entry_with_only_a_code() -> None:
    e = parse_entry(3, {"code": "1"})
    assert (e.position, e.code, e.name, e.level, e.service_type_codes, e.amount, e.fraction) == (3, "1", None, None, (), None, None)
    assert (e.notes, e.place_of_service, e.begin, e.end, e.related_entities, e.networks) == ((), None, None, None, (), (IN, OUT))


def test_entry_values_as_the_general_path_reads_them() -> None:
    raw = {
        "code": "B", "benefitAmount": " 25 ", "benefitPercent": "abc", "inPlanNetworkIndicatorCode": "N",
        "benefitsDateInformation": MappingProxyType({"plan": "20260101-20261231"}),
        "additionalInformation": [{"description": "a"}, {"description": ""}, "x", {"other": 1}],
        "eligibilityAdditionalInformationList": [{"industryCode": ""}],
        "eligibilityAdditionalInformation": {"industryCode": "11"},
        "benefitsRelatedEntity": {"entityName": "PCP"}, "name": "", "serviceTypeCodes": ["98", 7],
    }
    e = parse_entry(0, raw)
    assert (e.amount, e.fraction, e.networks, e.name, e.service_type_codes) == (Decimal(25), None, (OUT,), None, ("98",))
    assert (e.begin, e.end) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert (e.notes, e.place_of_service, e.related_entities) == (("a",), "11", ({"entityName": "PCP"},))
    assert parse_entry(0, {"code": "B", "benefitsDateInformation": "20260101", "benefitAmount": ""}).begin is None
    assert [x.position for x in parse_entries([{"code": "1"}, "junk", MappingProxyType({"code": "6"})])] == [0, 2]
