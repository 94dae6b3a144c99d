"""The per-answer work of StreamEstimates (candidates, coverages) is shared by later requests given the same answer
object (benefit cache hits), and stays bounded whatever callers send."""

from __future__ import annotations

from typing import Any

from server.clients.models import BenefitResponseModel, convert
from server.usecases import estimates
from server.usecases.benefit_selection import ProviderTraits
from server.usecases.estimates import EstimateRunner

ANSWER: dict[str, Any] = {"serviceInfo": [{"benefit": [
    {"benefitName": "Office", "networkCategory": "InNetwork", "benefitTier": {"benefitTierName": "1"},
     "coverages": [{"sequenceNumber": 1, "costShareCopay": "25"}]}]}]}


def runner() -> EstimateRunner:
    return EstimateRunner(None, None, fanout=4)  # type: ignore[arg-type] # the memo needs neither collaborator


def test_same_answer_object_shares_its_memo_and_a_new_one_does_not() -> None:
    r = runner()
    answer = convert(ANSWER, BenefitResponseModel)
    memo = r._memo(answer)
    traits = ProviderTraits("InNetwork", "1", None)
    first = memo.candidates(traits)
    assert r._memo(answer) is memo and memo.candidates(traits) is first
    other = convert(ANSWER, BenefitResponseModel)  # equal, but another object (another upstream answer)
    assert r._memo(other) is not memo


def test_memos_and_traits_per_memo_are_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(estimates, "ANSWER_MEMOS", 3)
    monkeypatch.setattr(estimates, "MEMO_TRAITS", 2)
    r = runner()
    answers = [convert(ANSWER, BenefitResponseModel) for _ in range(5)]
    memos = [r._memo(a) for a in answers]
    assert len(r._memos) == 3
    assert r._memo(answers[0]) is not memos[0]  # evicted: made afresh
    assert r._memo(answers[4]) is memos[4]
    memo = memos[4]
    for tier in ("1", "2", "3", "4"):
        assert [c.benefit.benefitName for c in memo.candidates(ProviderTraits("InNetwork", tier, None))] == (
            ["Office"] if tier == "1" else [])
    assert len(memo._candidates) == 2
