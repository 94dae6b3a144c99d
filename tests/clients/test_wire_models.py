"""Wire models and message sanitising, without the network."""

from __future__ import annotations

from decimal import Decimal

import pytest
from msgspec import ValidationError as AnswerError
from pydantic import ValidationError

from server.clients.errors import UpstreamRejected, safe_upstream_message
from server.clients.models import (
    AccumulatorModel, BenefitRequestModel, CoverageModel, convert, decode, encode, parse_json)


def test_parse_json_keeps_decimals_exact() -> None:
    data = parse_json(b'{"a": 0.1, "b": 1e-2, "c": 3}')
    assert data == {"a": Decimal("0.1"), "b": Decimal("0.01"), "c": 3}
    with pytest.raises(ValueError):
        parse_json(b'{"a": Infinity}')


@pytest.mark.parametrize("value", [0.1, True, "abc", [1], "NaN"])
def test_money_refuses_floats_and_junk(value: object) -> None:
    with pytest.raises(AnswerError):
        convert({"costShareCopay": value}, CoverageModel)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(Decimal("25.00"), Decimal("25.00")), (25, Decimal(25)), ("1,500.10", Decimal("1500.10")), ("", None), (None, None)],
)
def test_money_accepts_numbers_and_strings(value: object, expected: Decimal | None) -> None:
    assert convert({"costShareCopay": value}, CoverageModel).costShareCopay == expected


def test_counts_and_unknown_fields() -> None:
    acc = convert({"numOfIndividualsMet": "2", "numOfIndividualsNeededToMeet": Decimal("2.0"), "new": 1}, AccumulatorModel)
    assert (acc.numOfIndividualsMet, acc.numOfIndividualsNeededToMeet) == (2, 2)
    with pytest.raises(AnswerError):
        convert({"numOfIndividualsMet": Decimal("1.5")}, AccumulatorModel)


def test_request_repr_hides_the_member() -> None:
    req = BenefitRequestModel.model_validate(
        {
            "benefitProductType": "Medical",
            "membershipID": "5~186103331+10",
            "planIdentifier": "3~",
            "serviceInfo": [{"serviceCodeInfo": {"code": "99214", "type": "CPT4"}}],
        }
    )
    assert "186103331" not in repr(req) and "186103331" not in str(req)
    assert b'"membershipID":"5~186103331+10"' in req.to_wire()
    with pytest.raises(ValidationError):
        BenefitRequestModel.model_validate({**req.model_dump(), "serviceInfo": []})


def test_safe_upstream_message() -> None:
    body = b'{"httpMessage": "Bad Request", "moreInformation": "Subscriber 5~186103331+10 DOB 02/03/1980 phone 5551234567 unknown", "echo": "JANE"}'
    msg = safe_upstream_message(body, 400)
    assert msg.startswith("Bad Request - Subscriber [redacted] DOB [redacted]")
    for leak in ("186103331", "1980", "5551234567", "JANE"):
        assert leak not in msg
    assert len(safe_upstream_message(b'{"httpMessage": "' + b"x " * 500 + b'"}', 400)) <= 160
    assert safe_upstream_message(b"not json", 409) == "request rejected (HTTP 409)"
    err = UpstreamRejected("benefits", msg, 400)
    assert err.upstream == "benefits" and err.status == 400


LONG = ("0.1000000000000000055511151231257827", "12345678901234567890.12")


@pytest.mark.parametrize("quote", ["", '"'])
def test_long_decimals_stay_exact_in_both_answers(quote: str) -> None:
    """A float would make these 0.1000000000000000055511151231257827 → 0.1 and …890.12 → …8900000 (issue 13)."""
    from server.clients.models import AccumulatorsResponseModel, BenefitResponseModel

    small, big = (f"{quote}{v}{quote}" for v in LONG)
    benefits = convert(parse_json(
        '{"serviceInfo": [{"benefit": [{"coverages": [{"costShareCopay": %s, "costShareCoinsurance": %s}]}]}]}'
        % (small, big)), BenefitResponseModel)
    cov = benefits.serviceInfo[0].benefit[0].coverages[0]
    assert (str(cov.costShareCopay), str(cov.costShareCoinsurance)) == LONG
    accums = convert(parse_json(
        '{"readAccumulatorsResponse": {"memberships": {"subscriber": {"membershipIdentifier": {"idValue": "m"},'
        ' "accumulators": [{"limitValue": %s, "currentValue": %s, "calculatedValue": %s}]}}}}' % (big, small, big)), AccumulatorsResponseModel)
    entry = accums.member("m")
    assert entry is not None
    acc = entry.accumulators[0]
    assert (str(acc.limitValue), str(acc.currentValue), str(acc.calculatedValue)) == (LONG[1], LONG[0], LONG[1])
    # The benefit cache's JSON round trip keeps them exact too.
    again = decode(encode(benefits), BenefitResponseModel)
    assert str(again.serviceInfo[0].benefit[0].coverages[0].costShareCopay) == LONG[0]


def test_answer_bodies_keep_long_numbers_exact_and_refuse_junk() -> None:
    # Decoded straight from the body: a number's own text becomes the Decimal (never a float in between).
    assert decode('{"costShareCopay": 0.1000000000000000055511151231257827}', CoverageModel).costShareCopay == (
        Decimal("0.1000000000000000055511151231257827"))
    assert decode('{"costShareCopay": "0.10"}', CoverageModel).costShareCopay == Decimal("0.10")
    for junk in ('{"costShareCopay": true}', '{"costShareCopay": NaN}', '{"isServiceCovered": 1}', "{"):
        with pytest.raises(ValueError):
            decode(junk, CoverageModel)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("-Infinity"), "Infinity", "1.5.5", {}])
def test_money_refuses_non_finite_and_junk(value: object) -> None:
    with pytest.raises(AnswerError):
        convert({"costShareCopay": value}, CoverageModel)


@pytest.mark.parametrize(("value", "expected"), [("Y", "Y"), ("", None), ("  \t", None), ("\x1c", None), (None, None)])
def test_text_blank_becomes_none(value: object, expected: str | None) -> None:
    assert convert({"isServiceCovered": value}, CoverageModel).isServiceCovered == expected


@pytest.mark.parametrize("value", [1, True, 1.0, ["Y"]])
def test_text_refuses_non_strings(value: object) -> None:
    with pytest.raises(AnswerError):
        convert({"isServiceCovered": value}, CoverageModel)


@pytest.mark.parametrize("value", [True, 1.0, Decimal("1.5"), "x"])
def test_count_refuses_non_integers(value: object) -> None:
    with pytest.raises(AnswerError):
        convert({"numOfIndividualsMet": value}, AccumulatorModel)


@pytest.mark.parametrize("body", [
    '{"readAccumulatorsResponse": {"memberships": {"subscriber": {"accumulators": []}}}}',  # no membershipIdentifier
    '{"readAccumulatorsResponse": {}}',
    '{"readAccumulatorsResponse": {"memberships": {"dependents": null}}}',
    '{"readAccumulatorsResponse": {"memberships": {"dependents": [{"membershipIdentifier": {"idValue": 7}}]}}}',
])
def test_accumulators_answer_refuses_missing_parts_and_wrong_types(body: str) -> None:
    from server.clients.models import AccumulatorsResponseModel

    with pytest.raises(ValueError):
        decode(body, AccumulatorsResponseModel)


@pytest.mark.parametrize(("code", "ok"), [("7", True), ("12", True), ("true", False), ("1.0", False), ('"A1"', True)])
def test_benefit_code_is_a_json_integer_or_string(code: str, ok: bool) -> None:
    from server.clients.models import BenefitResponseModel

    body = '{"serviceInfo": [{"benefit": [{"benefitCode": %s, "networkCategory": " "}]}]}' % code
    if not ok:
        with pytest.raises(ValueError):
            decode(body, BenefitResponseModel)
        return
    benefit = decode(body, BenefitResponseModel).serviceInfo[0].benefit[0]
    assert str(benefit.benefitCode) == code.strip('"') and benefit.networkCategory is None
