"""The benefit request body is built without pydantic's dump, yet must stay byte for byte what the dump gives."""

from __future__ import annotations

import json

import pytest

from server.clients.models import (
    BenefitRequestModel,
    CodeModel,
    RequestServiceCodeInfoModel,
    RequestServiceInfoModel,
)


def _request(provider_types: list[str], places: list[str], specialties: list[str], services: int = 1,
             member: str = "M-ü\"1") -> BenefitRequestModel:
    infos = [RequestServiceInfoModel(serviceCodeInfo=RequestServiceCodeInfoModel(
        code=f"9921{i}", type="CPT4", providerType=[CodeModel(code=c) for c in provider_types],
        placeOfService=[CodeModel(code=c) for c in places], providerSpecialty=[CodeModel(code=c) for c in specialties]))
        for i in range(services)]
    return BenefitRequestModel(benefitProductType="Medical", membershipID=member, planIdentifier="P/1",
                               serviceInfo=infos)


@pytest.mark.parametrize("request_model", [
    _request([], [], []),
    _request(["22"], ["11"], ["X1"]),
    _request(["22", "23"], [], ["X1", "é"], services=3),
    _request(["\x7f"], ["\x1f"], ["a\\b"]),
    _request(["22"], ["11"], ["X1"], member="5~1+2/3\"x"),
    _request(["\x7f"], [], [], member="5~1"),
    _request(["\x1f", "\n"], ["\t"], [], member="5~1"),
])
def test_body_equals_pydantic_dump(request_model: BenefitRequestModel) -> None:
    dumped = json.dumps(request_model.model_dump(mode="json", exclude_none=True), separators=(",", ":")).encode()
    assert request_model.to_wire() == dumped


def test_every_request_field_is_written() -> None:
    """A field added to a request model must be added to `to_wire` too (this fails until it is)."""
    assert list(BenefitRequestModel.model_fields) == ["benefitProductType", "membershipID", "planIdentifier",
                                                      "serviceInfo"]
    assert list(RequestServiceInfoModel.model_fields) == ["serviceCodeInfo"]
    assert list(RequestServiceCodeInfoModel.model_fields) == ["code", "type", "providerType", "placeOfService",
                                                              "providerSpecialty"]
    assert list(CodeModel.model_fields) == ["code"]
