"""Benefits and Accumulators clients against the real payer stand-in: answers and status mapping."""

from __future__ import annotations

import gc
import time
from decimal import Decimal

import pytest

from server.clients import (
    MemberNotFound,
    PayerClients,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from server.sandbox.faults import Fault
from server.sandbox.payer import RunningSandbox
from tests.clients.payer_client_helpers import ACCUMULATORS, BENEFITS, INACTIVE_MEMBER, PPO_MEMBER, benefit_request


async def test_benefits_200_pcp_office_visit(clients: PayerClients, sandbox: RunningSandbox) -> None:
    answer = await clients.benefits.get_benefits(benefit_request(), timeout=2)

    assert len(answer.serviceInfo) == 1
    info = answer.serviceInfo[0]
    assert info.serviceCodeInfo[0].code == "99214"
    networks = [(b.networkCategory, b.benefitTier.benefitTierName if b.benefitTier else None) for b in info.benefit]
    assert networks == [("InNetwork", "1"), ("InNetwork", "2"), ("OutofNetwork", "OON")]
    pcp = answer.benefits(network_category="InNetwork", benefit_tier_name="1")[0]
    assert pcp.serviceProvider[0].providerDesignation == "PCP"
    cov = pcp.coverages[0]
    assert cov.costShareCopay == Decimal("25") and isinstance(cov.costShareCopay, Decimal)
    assert cov.isServiceCovered == "Y"
    assert {(r.code, r.level) for r in cov.relatedAccumulators} == {("OOP Max", "Individual"), ("OOP Max", "Family")}
    assert sandbox.calls == {"token": 1, "benefits": 1}


async def test_benefits_depend_on_provider_and_place(clients: PayerClients) -> None:
    specialist = await clients.benefits.get_benefits(benefit_request(specialty="06"), timeout=2)
    assert specialist.benefits()[0].benefitName == "Office Visit - Specialist"
    assert specialist.benefits()[0].coverages[0].costShareCopay == Decimal("50")

    mri_hospital = await clients.benefits.get_benefits(benefit_request(code="70551", pos="22"), timeout=2)
    initial = [b for b in mri_hospital.benefits() if b.isInitialBenefit == "Y"]
    assert [b.benefitTier.benefitTierName for b in initial if b.benefitTier] == ["2"]

    pt = await clients.benefits.get_benefits(benefit_request(code="97110", specialty="65"), timeout=2)
    limits = [r for r in pt.benefits()[0].coverages[0].relatedAccumulators if r.code == "Limit"]
    assert [(r.accumExCode, r.networkIndicatorCode) for r in limits] == [("L05", "I")]

    dme = await clients.benefits.get_benefits(benefit_request(code="E0110", code_type="HCPCS"), timeout=2)
    assert dme.benefits()[0].coverages[0].costShareCoinsurance == Decimal("20")

    unknown = await clients.benefits.get_benefits(benefit_request(code="00000"), timeout=2)
    assert unknown.serviceInfo[0].benefit == ()


async def test_accumulators_200(clients: PayerClients, sandbox: RunningSandbox) -> None:
    answer = await clients.accumulators.get_accumulators(PPO_MEMBER, "3~", timeout=2)

    member = answer.member(PPO_MEMBER)
    assert member is not None
    assert answer.readAccumulatorsResponse.memberships.subscriber is not None  # the family comes along
    by_ex = {a.accumExCode: a for a in member.accumulators}
    assert by_ex["L01"].calculatedValue == Decimal("380.00")
    assert by_ex["L01"].numOfIndividualsMet == 1 and by_ex["L01"].numOfIndividualsNeededToMeet == 2
    assert by_ex["L05"].limitType == "Counter" and by_ex["L05"].calculatedValue == Decimal("6")
    assert answer.member("5~nobody") is None
    assert sandbox.faults.seen[ACCUMULATORS] == 1


@pytest.mark.parametrize("call", ["benefits", "accumulators"])
async def test_member_not_found_is_fast_and_not_retried(
    clients: PayerClients, sandbox: RunningSandbox, call: str
) -> None:
    started = time.monotonic()
    with pytest.raises(MemberNotFound) as err:
        if call == "benefits":
            await clients.benefits.get_benefits(benefit_request(INACTIVE_MEMBER), timeout=2)
        else:
            await clients.accumulators.get_accumulators(INACTIVE_MEMBER, "3~", timeout=2)
    assert time.monotonic() - started < 0.5
    assert sandbox.calls[call] == 1
    assert err.value.upstream == call
    assert "186103339" not in str(err.value)


async def test_other_400_is_rejected_with_safe_message(clients: PayerClients, sandbox: RunningSandbox) -> None:
    with pytest.raises(UpstreamRejected) as err:
        await clients.benefits.get_benefits(benefit_request(product="Dental"), timeout=2)
    assert err.value.status == 400
    assert err.value.detail == "Bad Request - Unsupported benefitProductType"
    assert sandbox.calls["benefits"] == 1


async def test_rejected_message_never_carries_member_data(clients: PayerClients, sandbox: RunningSandbox) -> None:
    body = (
        '{"httpCode": "422", "httpMessage": "Unprocessable Entity",'
        ' "moreInformation": "Member 5~186103331+10+7 born 1980-02-03 (id 186103331) jane@example.org is invalid",'
        ' "memberName": "JANE DOE", "dateOfBirth": "1980-02-03"}'
    )
    sandbox.faults.script(BENEFITS, Fault(status=422, body=body))
    with pytest.raises(UpstreamRejected) as err:
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    text = str(err.value)
    assert err.value.status == 422
    assert "Unprocessable Entity" in text and "is invalid" in text
    for secret in ("186103331", "1980", "JANE", "DOE", "jane@", "example.org"):
        assert secret not in text


async def test_non_json_400_gets_a_generic_message(clients: PayerClients, sandbox: RunningSandbox) -> None:
    sandbox.faults.script(BENEFITS, Fault(status=400, body="<html>member JANE DOE 1980-02-03</html>", content_type="text/html"))
    with pytest.raises(UpstreamRejected) as err:
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert err.value.detail == "request rejected (HTTP 400)"


async def test_404_is_upstream_not_found(clients: PayerClients, sandbox: RunningSandbox) -> None:
    sandbox.faults.fail_next(BENEFITS, 404)
    with pytest.raises(UpstreamNotFound):
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert sandbox.calls["benefits"] == 1


async def test_malformed_json_is_unavailable_and_not_retried(clients: PayerClients, sandbox: RunningSandbox) -> None:
    sandbox.faults.malformed_next(BENEFITS)
    with pytest.raises(UpstreamUnavailable) as err:
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert "benefits returned a malformed body" in str(err.value)
    assert err.value.upstream == "benefits"
    assert sandbox.calls["benefits"] == 1


@pytest.mark.parametrize(
    "body",
    [
        '{"serviceInfo": "not a list"}',
        '{"serviceInfo": [{"benefit": [{"coverages": [{"costShareCopay": true}]}]}]}',
        '{"serviceInfo": [{"benefit": [{"coverages": [{"isServiceCovered": 1}]}]}]}',
        '{"serviceInfo": [{"benefit": [{"coverages": [{"costShareCopay": "twelve"}]}]}]}',
        '{"serviceInfo": [{"benefit": [{"coverages": [{"costShareCopay": NaN}]}]}]}',
        "[]",
    ],
)
async def test_schema_mismatch_is_malformed(clients: PayerClients, sandbox: RunningSandbox, body: str) -> None:
    sandbox.faults.script(BENEFITS, Fault(status=200, body=body))
    with pytest.raises(UpstreamUnavailable, match="malformed body"):
        await clients.benefits.get_benefits(benefit_request(), timeout=2)


async def test_accumulators_schema_mismatch(clients: PayerClients, sandbox: RunningSandbox) -> None:
    sandbox.faults.script(ACCUMULATORS, Fault(status=200, body='{"readAccumulatorsResponse": {}}'))
    with pytest.raises(UpstreamUnavailable, match="accumulators returned a malformed body"):
        await clients.accumulators.get_accumulators(PPO_MEMBER, "3~", timeout=2)


async def test_money_is_exact_decimal(clients: PayerClients, sandbox: RunningSandbox) -> None:
    body = (
        '{"serviceInfo": [{"benefit": [{"benefitName": "x", "unknownField": {"a": 1}, "coverages": [{'
        '"costShareCopay": 0.1, "costShareCoinsurance": 12.345678901234567890123,'
        ' "isServiceCovered": "", "copayAppliesOutOfPocket": "Yes", "sequenceNumber": "2"}]}]}]}'
    )
    sandbox.faults.script(BENEFITS, Fault(status=200, body=body))
    answer = await clients.benefits.get_benefits(benefit_request(), timeout=2)
    cov = answer.serviceInfo[0].benefit[0].coverages[0]
    assert cov.costShareCopay == Decimal("0.1")
    assert cov.costShareCopay + Decimal("0.2") == Decimal("0.3")
    assert cov.costShareCoinsurance == Decimal("12.345678901234567890123")
    assert cov.isServiceCovered is None  # blank → absent
    assert cov.copayAppliesOutOfPocket == "Yes"
    assert cov.sequenceNumber == 2

    sandbox.faults.script(
        ACCUMULATORS,
        Fault(
            status=200,
            body='{"readAccumulatorsResponse": {"memberships": {"subscriber": {"membershipIdentifier": '
            '{"resourceId": "5~1"}, "accumulators": [{"code": "Deductible", "limitValue": "1500.10",'
            ' "currentValue": 0.7, "calculatedValue": 1499.40, "numOfIndividualsMet": 1}]}}}}',
        ),
    )
    accs = await clients.accumulators.get_accumulators("5~1", "3~", timeout=2)
    member = accs.member("5~1")
    assert member is not None
    acc = member.accumulators[0]
    assert (acc.limitValue, acc.currentValue, acc.calculatedValue) == (
        Decimal("1500.10"),
        Decimal("0.7"),
        Decimal("1499.40"),
    )
    assert str(acc.calculatedValue) == "1499.40"


def _gc_tracked(root: object) -> list[str]:
    """Type names of everything reachable from an answer (through Struct fields and containers) that the cyclic GC
    tracks after a collection."""
    gc.collect()
    found: list[str] = []
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, Decimal)) or obj is None:
            continue
        seen.add(id(obj))
        if gc.is_tracked(obj):
            found.append(type(obj).__name__)
        fields = getattr(obj, "__struct_fields__", None)
        todo.extend(getattr(obj, f) for f in fields) if fields is not None else todo.extend(gc.get_referents(obj))
    return found


async def test_answers_hold_nothing_the_cyclic_gc_scans(clients: PayerClients) -> None:
    """The benefit cache keeps thousands of answers: each one must cost a full GC pass nothing (no tracked list
    or dict inside), or every full collection stalls the event loop for ~100 ms with a full cache."""
    benefits = await clients.benefits.get_benefits(benefit_request(), timeout=2)
    accumulators = await clients.accumulators.get_accumulators(PPO_MEMBER, "3~", timeout=2)
    assert benefits.serviceInfo[0].benefit[0].coverages, "the sandbox answer should have nested coverages"
    assert _gc_tracked(benefits) == []
    assert _gc_tracked(accumulators) == []
