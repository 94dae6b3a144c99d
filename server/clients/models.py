"""Pydantic models of the payer wire JSON (Benefits API request/response, Accumulators API answer).

Unknown fields are ignored (the payer adds fields over time); wrong types are refused. Money is a
`Decimal` made from the JSON text: bodies are parsed with a msgspec decoder whose `float_hook` is `Decimal`
(see `parse_json`) and the `Money` type refuses binary floats, so 0.1 stays exactly 0.1.
Money and indicator fields are optional and may be blank (""), which becomes None.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from pydantic import (
    BaseModel, ConfigDict, Field, GetCoreSchemaHandler, PlainValidator, StrictInt, StrictStr, StringConstraints)
from pydantic_core import core_schema

__all__ = [
    "AccumulatorModel",
    "AccumulatorsResponseModel",
    "BenefitModel",
    "BenefitRequestModel",
    "BenefitResponseModel",
    "BenefitTierModel",
    "CodeModel",
    "CoverageModel",
    "EffectivePeriodModel",
    "MemberAccumulatorsModel",
    "MembershipIdentifierModel",
    "MembershipsModel",
    "Money",
    "ReadAccumulatorsResponseModel",
    "RelatedAccumulatorModel",
    "RequestServiceCodeInfoModel",
    "RequestServiceInfoModel",
    "ResponseServiceCodeInfoModel",
    "ResponseServiceInfoModel",
    "ServiceProviderModel",
    "parse_json",
]


_DECODER = msgspec.json.Decoder(float_hook=Decimal)
"""msgspec hands the number's own text to `Decimal` (never a float) and, being strict JSON, refuses NaN/Infinity;
it parses about twice as fast as `json.loads(parse_float=Decimal)`. Its DecodeError is a ValueError."""


def parse_json(body: bytes | str) -> Any:
    """Parse JSON with every non-integer number as an exact Decimal (never a float); malformed → ValueError."""
    return _DECODER.decode(body)


def _to_money(value: Any) -> Decimal | None:
    if type(value) is Decimal:  # the common case: `parse_json` already made it exact; no second conversion
        if not value.is_finite():
            raise ValueError("money must be finite")
        return value
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float):
        # bool is an int subclass; a float has already lost exactness.
        raise ValueError("money must be a JSON number or a numeric string, parsed without float")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        if not text:
            return None
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError("not a decimal number") from None
    else:
        raise ValueError("money must be a number or a numeric string")
    if not result.is_finite():
        raise ValueError("money must be finite")
    return result


def _to_count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError("a count must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        value = _to_money(text)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise ValueError("a count must be an integer")


def _to_optional_str(value: Any) -> Any:
    if type(value) is str and (not value or value[0].isspace() or value[-1].isspace()) and not value.strip():
        return None
    return value


def _to_text(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise ValueError("text must be a string")
    return None if not value.strip() else value


# Each wire type is a left-to-right union whose first branch is checked natively by pydantic-core and covers what
# the payer usually sends (a finite Decimal from `parse_json`, a JSON integer, a non-blank string, null); only the
# rest (numeric strings, blanks, junk) reaches the Python validator, which alone decides what else is accepted.
# A Python validator per field was about half of each answer's validation time.
_StrictCount = Annotated[int, Field(strict=True)]
# Non-blank as `str.strip` sees it: Unicode whitespace plus the separators \x1c-\x1f that Python also strips.
_NonBlank = Annotated[str, StringConstraints(strict=True, pattern=r"[^\s\x1c-\x1f]")]



class _MoneySchema:
    """Python input (from `parse_json`): a finite Decimal is taken natively, anything else goes to `_to_money`.
    JSON input (`model_validate_json`, e.g. a cached answer): always `_to_money`, because pydantic's JSON parser
    has already turned a number into a float (which `_to_money` refuses) where msgspec would have kept its text."""

    @staticmethod
    def __get_pydantic_core_schema__(source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        slow = core_schema.no_info_plain_validator_function(_to_money)
        # A plain decimal string ("1500.00", as the Accumulators API sends money) is made a Decimal natively.
        plain = core_schema.chain_schema([
            core_schema.str_schema(strict=True, pattern=r"^-?[0-9]+(\.[0-9]+)?$"), core_schema.decimal_schema()])
        return core_schema.json_or_python_schema(
            json_schema=slow,
            python_schema=core_schema.union_schema(
                [core_schema.decimal_schema(strict=True, allow_inf_nan=False), core_schema.none_schema(), plain, slow],
                mode="left_to_right"),
            serialization=core_schema.to_string_ser_schema(when_used="json-unless-none"),
        )


Money = Annotated[Decimal | None, _MoneySchema]
"""Exact money/quantity: Decimal from a JSON number or string; blank → None; floats refused."""
Text = Annotated[_NonBlank | None | Annotated[Any, PlainValidator(_to_text)], Field(union_mode="left_to_right")]
Indicator = Text
"""A Y/N-style flag as the payer spells it (Y, N, Yes, true…); blank → None. Interpreted by the domain."""
Count = Annotated[
    _StrictCount | None | Annotated[Any, PlainValidator(_to_count)], Field(union_mode="left_to_right")]
"""A whole number sent as a JSON integer or a numeric string."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


# ---- Benefits API: request ------------------------------------------------------------------------


class CodeModel(_Wire):
    code: StrictStr


class RequestServiceCodeInfoModel(_Wire):
    code: StrictStr
    type: StrictStr
    providerType: list[CodeModel] = Field(default_factory=list)
    placeOfService: list[CodeModel] = Field(default_factory=list)
    providerSpecialty: list[CodeModel] = Field(default_factory=list)


class RequestServiceInfoModel(_Wire):
    serviceCodeInfo: RequestServiceCodeInfoModel


class BenefitRequestModel(_Wire):
    benefitProductType: StrictStr
    membershipID: StrictStr
    planIdentifier: StrictStr
    serviceInfo: list[RequestServiceInfoModel] = Field(min_length=1)

    def to_wire(self) -> bytes:
        """The JSON body, byte for byte `model_dump(mode="json", exclude_none=True)` (no field here can be None),
        built directly: pydantic's dump was a visible share of each benefit call's CPU."""
        def codes(items: list[CodeModel]) -> list[dict[str, str]]:
            return [{"code": c.code} for c in items]

        body = {
            "benefitProductType": self.benefitProductType, "membershipID": self.membershipID,
            "planIdentifier": self.planIdentifier,
            "serviceInfo": [{"serviceCodeInfo": {
                "code": c.code, "type": c.type, "providerType": codes(c.providerType),
                "placeOfService": codes(c.placeOfService), "providerSpecialty": codes(c.providerSpecialty)}}
                for c in (si.serviceCodeInfo for si in self.serviceInfo)],
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def __repr__(self) -> str:
        # The membership id is PHI: keep it out of logs and tracebacks.
        return (
            f"BenefitRequestModel(benefitProductType={self.benefitProductType!r}, membershipID=<redacted>, "
            f"services={[s.serviceCodeInfo.code for s in self.serviceInfo]!r})"
        )

    __str__ = __repr__


# ---- Benefits API: response -----------------------------------------------------------------------


class ResponseServiceCodeInfoModel(_Wire):
    code: StrictStr
    type: Text = None


class BenefitTierModel(_Wire):
    benefitTierName: Text = None


class ServiceProviderModel(_Wire):
    providerDesignation: Text = None


class RelatedAccumulatorModel(_Wire):
    code: Text = None
    level: Text = None
    deductibleCode: Text = None
    accumExCode: Text = None
    networkIndicatorCode: Text = None


class CoverageModel(_Wire):
    sequenceNumber: Count = None
    benefitDescription: Text = None
    costShareCopay: Money = None
    costShareCoinsurance: Money = None
    copayAppliesOutOfPocket: Indicator = None
    coinsAppliesOutOfPocket: Indicator = None
    deductibleAppliesOutOfPocket: Indicator = None
    copayCountToDeductibleIndicator: Indicator = None
    copayContinueWhenDeductibleMetIndicator: Indicator = None
    copayContinueWhenOutOfPocketMaxMetIndicator: Indicator = None
    isDeductibleBeforeCopay: Indicator = None
    benefitLimitation: Indicator = None
    isServiceCovered: Indicator = None
    relatedAccumulators: list[RelatedAccumulatorModel] = Field(default_factory=list)


class BenefitModel(_Wire):
    benefitName: Text = None
    benefitCode: StrictInt | StrictStr | None = None
    isInitialBenefit: Indicator = None
    networkCategory: Text = None
    benefitTier: BenefitTierModel | None = None
    benefitProvider: Text = None
    serviceProvider: list[ServiceProviderModel] = Field(default_factory=list)
    coverages: list[CoverageModel] = Field(default_factory=list)


class ResponseServiceInfoModel(_Wire):
    serviceCodeInfo: list[ResponseServiceCodeInfoModel] = Field(default_factory=list)
    placeOfService: list[CodeModel] = Field(default_factory=list)
    providerType: list[CodeModel] = Field(default_factory=list)
    providerSpecialty: list[CodeModel] = Field(default_factory=list)
    benefit: list[BenefitModel] = Field(default_factory=list)


class BenefitResponseModel(_Wire):
    serviceInfo: list[ResponseServiceInfoModel]

    def benefits(
        self, *, network_category: str | None = None, benefit_tier_name: str | None = None
    ) -> list[BenefitModel]:
        """All benefits, optionally filtered (the seed's getBenefits helper)."""
        return [
            b
            for si in self.serviceInfo
            for b in si.benefit
            if (network_category is None or b.networkCategory == network_category)
            and (
                benefit_tier_name is None
                or (b.benefitTier is not None and b.benefitTier.benefitTierName == benefit_tier_name)
            )
        ]


# ---- Accumulators API -----------------------------------------------------------------------------


class EffectivePeriodModel(_Wire):
    datetimeBegin: Text = None
    datetimeEnd: Text = None


class AccumulatorModel(_Wire):
    code: Text = None
    level: Text = None
    networkIndicator: Text = None
    networkIndicatorCode: Text = None
    accumExCode: Text = None
    deductibleCode: Text = None
    description: Text = None
    frequency: Text = None
    benefitProductType: Text = None
    limitType: Text = None
    limitValue: Money = None
    currentValue: Money = None
    calculatedValue: Money = None
    numOfIndividualsMet: Count = None
    numOfIndividualsNeededToMeet: Count = None
    effectivePeriod: EffectivePeriodModel | None = None


class MembershipIdentifierModel(_Wire):
    idSource: Text = None
    idType: Text = None
    idValue: Text = None
    resourceId: Text = None

    def __repr__(self) -> str:
        return "MembershipIdentifierModel(<redacted>)"


class MemberAccumulatorsModel(_Wire):
    privacyRestriction: Text = None
    membershipIdentifier: MembershipIdentifierModel
    accumulators: list[AccumulatorModel] = Field(default_factory=list)

    def matches(self, membership_id: str) -> bool:
        ident = self.membershipIdentifier
        return membership_id in (ident.resourceId, ident.idValue)


class MembershipsModel(_Wire):
    subscriber: MemberAccumulatorsModel | None = None
    dependents: list[MemberAccumulatorsModel] = Field(default_factory=list)


class ReadAccumulatorsResponseModel(_Wire):
    memberships: MembershipsModel


class AccumulatorsResponseModel(_Wire):
    readAccumulatorsResponse: ReadAccumulatorsResponseModel

    def member(self, membership_id: str) -> MemberAccumulatorsModel | None:
        """The subscriber or dependent entry for this membership id (cost-share-rules §1.2), or None."""
        ms = self.readAccumulatorsResponse.memberships
        for entry in ([ms.subscriber] if ms.subscriber else []) + list(ms.dependents):
            if entry.matches(membership_id):
                return entry
        return None
