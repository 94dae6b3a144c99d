"""The payer wire JSON: the Benefits API request (pydantic models) and the Benefits and Accumulators answers
(msgspec Structs, decoded in one pass: see `decode`).

Unknown fields are ignored (the payer adds fields over time); wrong types are refused. Money is a
`Decimal` made from the JSON text: bodies are parsed with a msgspec decoder whose `float_hook` is `Decimal`
(see `parse_json`, `decode`) and money refuses binary floats, so 0.1 stays exactly 0.1.
Money and indicator fields are optional and may be blank (""), which becomes None.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, TypeVar

import msgspec
import orjson
from msgspec.structs import force_setattr
from pydantic import BaseModel, ConfigDict, Field, StrictStr

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
    "ReadAccumulatorsResponseModel",
    "RelatedAccumulatorModel",
    "RequestServiceCodeInfoModel",
    "RequestServiceInfoModel",
    "ResponseServiceCodeInfoModel",
    "ResponseServiceInfoModel",
    "ServiceProviderModel",
    "WireCode",
    "convert",
    "decode",
    "encode",
    "parse_json",
]


_DECODER = msgspec.json.Decoder(float_hook=Decimal)
"""msgspec hands the number's own text to `Decimal` (never a float) and, being strict JSON, refuses NaN/Infinity;
it parses about twice as fast as `json.loads(parse_float=Decimal)`. Its DecodeError is a ValueError."""


class TooDeep(ValueError):
    """A body nested deeper than the parser goes: malformed, like any other body we cannot read."""


def _decoded(decoder: msgspec.json.Decoder[Any], body: bytes | str) -> Any:
    try:
        return decoder.decode(body)
    except RecursionError:  # msgspec stops at about 1,000 levels (a 2 kB body can reach them)
        raise TooDeep("JSON nested too deeply") from None


def parse_json(body: bytes | str) -> Any:
    """Parse JSON with every non-integer number as an exact Decimal (never a float); malformed → ValueError."""
    return _decoded(_DECODER, body)


def _to_money(value: Any) -> Decimal | None:
    if type(value) is Decimal:  # the common case: `parse_json` already made it exact; no second conversion
        if not value.is_finite():
            raise ValueError("money must be finite")
        return value
    if type(value) is str:
        # The other common case, a plain decimal string ("1500.00"): what Decimal takes as it is gives the same
        # number as the general path below (Decimal strips the same whitespace and refuses commas and blanks).
        try:
            quick = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if not quick.is_finite():
                raise ValueError("money must be finite")
            return quick
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
        out = orjson.dumps(body)
        if out.isascii() and b"\x7f" not in out:  # then byte for byte what json.dumps writes, ~10x faster
            return out
        return json.dumps(body, separators=(",", ":")).encode()  # json.dumps escapes non-ASCII and DEL

    def __repr__(self) -> str:
        # The membership id is PHI: keep it out of logs and tracebacks.
        return (
            f"BenefitRequestModel(benefitProductType={self.benefitProductType!r}, membershipID=<redacted>, "
            f"services={[s.serviceCodeInfo.code for s in self.serviceInfo]!r})"
        )

    __str__ = __repr__


# ---- The answers: msgspec Structs ----------------------------------------------------------------
# The answers are decoded straight from the body into these frozen Structs (`decode`), one pass in C, about a
# third of the CPU of building pydantic models (an Estimate decodes two answers, a StreamEstimates one per
# distinct provider kind). They accept exactly what the pydantic types above accept: each field is typed as
# msgspec can check natively (str | None for text, Any for money and counts), and `__post_init__` applies the same
# rules as the payer's spellings need (blank text → None; money by `_to_money`; counts by `_to_count`). Unknown fields are ignored,
# missing required fields and wrong types are refused (msgspec.ValidationError, a ValueError).
# Repeated fields are tuples, not lists, and the Structs are `gc=False`: an answer then holds nothing the cyclic GC
# tracks (a tuple of untracked items is untracked at its first collection). The benefit cache keeps up to 10,000
# answers; as lists they made every full collection scan ~15 objects per answer (~100 ms for a full cache, a
# stall every few seconds under load), as tuples it scans none (~1 ms).


class _Answer(msgspec.Struct, frozen=True, kw_only=True, gc=False, omit_defaults=True):
    """Base of the answer types; `_text`, `_money`, `_count` name the fields that get the wire rules."""

    _text: ClassVar[tuple[str, ...]] = ()
    _money: ClassVar[tuple[str, ...]] = ()
    _count: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name in self._text:
            value = getattr(self, name)
            if value is not None and not value.strip():
                force_setattr(self, name, None)
        for name in self._money:
            value = getattr(self, name)
            if value is not None:
                force_setattr(self, name, _to_money(value))
        for name in self._count:
            value = getattr(self, name)
            if value is not None and type(value) is not int:
                force_setattr(self, name, _to_count(value))


class WireCode(_Answer, frozen=True):
    code: str


class ResponseServiceCodeInfoModel(_Answer, frozen=True):
    code: str
    type: str | None = None
    _text = ("type",)


class BenefitTierModel(_Answer, frozen=True):
    benefitTierName: str | None = None
    _text = ("benefitTierName",)


class ServiceProviderModel(_Answer, frozen=True):
    providerDesignation: str | None = None
    _text = ("providerDesignation",)


class RelatedAccumulatorModel(_Answer, frozen=True):
    code: str | None = None
    level: str | None = None
    deductibleCode: str | None = None
    accumExCode: str | None = None
    networkIndicatorCode: str | None = None
    _text = ("code", "level", "deductibleCode", "accumExCode", "networkIndicatorCode")


class CoverageModel(_Answer, frozen=True):
    sequenceNumber: Any = None
    benefitDescription: str | None = None
    costShareCopay: Any = None
    costShareCoinsurance: Any = None
    copayAppliesOutOfPocket: str | None = None
    coinsAppliesOutOfPocket: str | None = None
    deductibleAppliesOutOfPocket: str | None = None
    copayCountToDeductibleIndicator: str | None = None
    copayContinueWhenDeductibleMetIndicator: str | None = None
    copayContinueWhenOutOfPocketMaxMetIndicator: str | None = None
    isDeductibleBeforeCopay: str | None = None
    benefitLimitation: str | None = None
    isServiceCovered: str | None = None
    relatedAccumulators: tuple[RelatedAccumulatorModel, ...] = ()
    _text = ("benefitDescription", "copayAppliesOutOfPocket", "coinsAppliesOutOfPocket",
             "deductibleAppliesOutOfPocket", "copayCountToDeductibleIndicator",
             "copayContinueWhenDeductibleMetIndicator", "copayContinueWhenOutOfPocketMaxMetIndicator",
             "isDeductibleBeforeCopay", "benefitLimitation", "isServiceCovered")
    _money = ("costShareCopay", "costShareCoinsurance")
    _count = ("sequenceNumber",)


class BenefitModel(_Answer, frozen=True):
    benefitName: str | None = None
    benefitCode: int | str | None = None
    isInitialBenefit: str | None = None
    networkCategory: str | None = None
    benefitTier: BenefitTierModel | None = None
    benefitProvider: str | None = None
    serviceProvider: tuple[ServiceProviderModel, ...] = ()
    coverages: tuple[CoverageModel, ...] = ()
    _text = ("benefitName", "isInitialBenefit", "networkCategory", "benefitProvider")


class ResponseServiceInfoModel(_Answer, frozen=True):
    serviceCodeInfo: tuple[ResponseServiceCodeInfoModel, ...] = ()
    placeOfService: tuple[WireCode, ...] = ()
    providerType: tuple[WireCode, ...] = ()
    providerSpecialty: tuple[WireCode, ...] = ()
    benefit: tuple[BenefitModel, ...] = ()


class BenefitResponseModel(_Answer, frozen=True):
    serviceInfo: tuple[ResponseServiceInfoModel, ...]

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


class EffectivePeriodModel(_Answer, frozen=True):
    datetimeBegin: str | None = None
    datetimeEnd: str | None = None
    _text = ("datetimeBegin", "datetimeEnd")


class AccumulatorModel(_Answer, frozen=True):
    code: str | None = None
    level: str | None = None
    networkIndicator: str | None = None
    networkIndicatorCode: str | None = None
    accumExCode: str | None = None
    deductibleCode: str | None = None
    description: str | None = None
    frequency: str | None = None
    benefitProductType: str | None = None
    limitType: str | None = None
    limitValue: Any = None
    currentValue: Any = None
    calculatedValue: Any = None
    numOfIndividualsMet: Any = None
    numOfIndividualsNeededToMeet: Any = None
    effectivePeriod: EffectivePeriodModel | None = None
    _text = ("code", "level", "networkIndicator", "networkIndicatorCode", "accumExCode", "deductibleCode",
             "description", "frequency", "benefitProductType", "limitType")
    _money = ("limitValue", "currentValue", "calculatedValue")
    _count = ("numOfIndividualsMet", "numOfIndividualsNeededToMeet")


class MembershipIdentifierModel(_Answer, frozen=True):
    idSource: str | None = None
    idType: str | None = None
    idValue: str | None = None
    resourceId: str | None = None
    _text = ("idSource", "idType", "idValue", "resourceId")

    def __repr__(self) -> str:
        return "MembershipIdentifierModel(<redacted>)"


class MemberAccumulatorsModel(_Answer, frozen=True, kw_only=True):
    privacyRestriction: str | None = None
    membershipIdentifier: MembershipIdentifierModel
    accumulators: tuple[AccumulatorModel, ...] = ()
    _text = ("privacyRestriction",)

    def matches(self, membership_id: str) -> bool:
        ident = self.membershipIdentifier
        return membership_id in (ident.resourceId, ident.idValue)


class MembershipsModel(_Answer, frozen=True):
    subscriber: MemberAccumulatorsModel | None = None
    dependents: tuple[MemberAccumulatorsModel, ...] = ()


class ReadAccumulatorsResponseModel(_Answer, frozen=True):
    memberships: MembershipsModel


class AccumulatorsResponseModel(_Answer, frozen=True):
    readAccumulatorsResponse: ReadAccumulatorsResponseModel

    def member(self, membership_id: str) -> MemberAccumulatorsModel | None:
        """The subscriber or dependent entry for this membership id (cost-share-rules §1.2), or None."""
        ms = self.readAccumulatorsResponse.memberships
        for entry in ([ms.subscriber] if ms.subscriber else []) + list(ms.dependents):
            if entry.matches(membership_id):
                return entry
        return None


A = TypeVar("A", bound=_Answer)
_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def decode(body: bytes | str, kind: type[A]) -> A:
    """An answer body as `kind`, in one pass (numbers with a fraction or exponent as exact Decimals, NaN refused);
    malformed JSON or a body that breaks the wire rules → ValueError (msgspec's DecodeError/ValidationError)."""
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind, float_hook=Decimal)
    answer: A = _decoded(decoder, body)
    return answer


def convert(data: Any, kind: type[A]) -> A:
    """Already parsed JSON (e.g. from `parse_json`) as `kind`, under the same rules as `decode`."""
    try:
        return msgspec.convert(data, kind)
    except RecursionError:
        raise TooDeep("JSON nested too deeply") from None


def encode(answer: _Answer) -> bytes:
    """JSON of an answer (money as strings, absent values left out) that `decode` reads back equal."""
    return msgspec.json.encode(answer)
