"""Render the raw 271 (`x12` field) from a sandbox JSON body, following Stedi's JSON <-> X12 mapping (§5.1).

Good enough to look like Stedi's: clients only store it, they never parse it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

_ENTITY_CODES: Final = {"Vendor": "VN", "Payer": "PR", "Provider": "1P", "Primary Care Provider": "P3"}
_FOLLOWUP_LETTERS: Final = {
    "Please Correct and Resubmit": "C", "Resubmission Not Allowed": "N", "Please Resubmit Original Transaction": "P",
    "Resubmission Allowed": "R", "Do Not Resubmit; Inquiry Initiated to a Third Party": "S",
    "Please Wait 30 Days and Resubmit": "W", "Please Wait 10 Days and Resubmit": "X",
    "Do Not Resubmit; We Will Hold Your Request and Respond Again Shortly": "Y",
}
_DATE_QUALIFIERS: Final = (
    ("plan", "291"), ("planBegin", "346"), ("planEnd", "347"), ("eligibilityBegin", "356"),
    ("eligibilityEnd", "357"), ("service", "472"),
)


def _seg(*elements: object) -> str:
    parts = ["" if e is None else str(e) for e in elements]
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return "*".join(parts)


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _percent(value: str | None) -> str | None:
    if value is None:
        return None
    return value[1:] if value.startswith("0.") else value


def _per(party: Mapping[str, Any]) -> list[str]:
    """One PER segment holding up to three contacts, as payers send it."""
    elements: list[object] = []
    for contact in _list(_dict(party.get("contactInformation")).get("contacts"))[:3]:
        mode = "UR" if "URL" in str(contact.get("communicationMode")) else "TE"
        elements += [mode, contact.get("communicationNumber")]
    return [_seg("PER", "IC", "", *elements)] if elements else []


def _aaa(errors: object) -> list[str]:
    return [
        _seg("AAA", "N", "", e.get("code"), _FOLLOWUP_LETTERS.get(str(e.get("followupAction")), ""))
        for e in _list(errors)
    ]


def _dates(info: Mapping[str, Any]) -> list[str]:
    out = []
    for key, qualifier in _DATE_QUALIFIERS:
        value = info.get(key)
        if isinstance(value, str) and value:
            out.append(_seg("DTP", qualifier, "RD8" if "-" in value else "D8", value))
    return out


def _benefit(entry: Mapping[str, Any]) -> list[str]:
    segs = [
        _seg(
            "EB", entry.get("code"), entry.get("coverageLevelCode"), "^".join(entry.get("serviceTypeCodes", [])),
            entry.get("insuranceTypeCode"), entry.get("planCoverage"), entry.get("timeQualifierCode"),
            entry.get("benefitAmount"), _percent(entry.get("benefitPercent")), entry.get("quantityQualifierCode"),
            entry.get("benefitQuantity"), entry.get("authOrCertIndicator"), entry.get("inPlanNetworkIndicatorCode"),
        )
    ]
    segs += _dates(_dict(entry.get("benefitsDateInformation")))
    segs += [_seg("MSG", m.get("description")) for m in _list(entry.get("additionalInformation"))]
    segs += [_seg("III", p.get("codeListQualifierCode"), p.get("industryCode"))
             for p in _list(entry.get("eligibilityAdditionalInformationList"))]
    for entity in _list(entry.get("benefitsRelatedEntities")):
        segs.append("LS*2120")
        code = _ENTITY_CODES.get(str(entity.get("entityIdentifier")), "2U")
        id_qualifier, id_value = entity.get("entityIdentification"), entity.get("entityIdentificationValue")
        segs.append(_seg("NM1", code, "2", entity.get("entityName"), "", "", "", "", id_qualifier, id_value))
        segs += _per(entity)
        segs.append("LE*2120")
    return segs


def _person(tag: str, person: Mapping[str, Any], with_id: bool, group_description: object = None) -> list[str]:
    name = _seg("NM1", tag, "1", person.get("lastName"), person.get("firstName"), person.get("middleName"), "",
                person.get("suffix"), "MI" if with_id else "", person.get("memberId") if with_id else "")
    segs = [name]
    if with_id:
        if person.get("groupNumber"):
            description = person.get("groupDescription") or group_description
            segs.append(_seg("REF", "6P", person.get("groupNumber"), description))
        if person.get("planNumber"):
            segs.append(_seg("REF", "18", person.get("planNumber")))
    address = _dict(person.get("address"))
    if address:
        segs.append(_seg("N3", address.get("address1")))
        segs.append(_seg("N4", address.get("city"), address.get("state"), address.get("postalCode")))
    segs += _aaa(person.get("aaaErrors"))
    if person.get("dateOfBirth"):
        segs.append(_seg("DMG", "D8", person.get("dateOfBirth"), person.get("gender")))
    if person.get("relationToSubscriberCode"):
        segs.append(_seg("INS", "N", person.get("relationToSubscriberCode")))
    return segs


def render_271(body: Mapping[str, Any], *, control_number: str, now: dt.datetime, test_mode: bool) -> str:
    meta = _dict(body.get("meta"))
    payer = _dict(body.get("payer"))
    provider = _dict(body.get("provider"))
    subscriber = _dict(body.get("subscriber"))
    dependents = _list(body.get("dependents"))
    segs = [
        _seg("ST", "271", "0001", "005010X279A1"),
        _seg("BHT", "0022", "11", meta.get("traceId"), now.strftime("%Y%m%d"), now.strftime("%H%M")),
        _seg("HL", "1", "", "20", "1"),
        _seg("NM1", "PR", "2", payer.get("name"), "", "", "", "", "PI", payer.get("payorIdentification")),
    ]
    segs += _per(payer)
    segs += _aaa(payer.get("aaaErrors"))
    if subscriber:
        segs.append(_seg("HL", "2", "1", "21", "1"))
        segs.append(_seg("NM1", "1P", "2", provider.get("providerName"), "", "", "", "", "XX", provider.get("npi")))
        segs += _aaa(provider.get("aaaErrors"))
        segs.append(_seg("HL", "3", "2", "22", "1" if dependents else "0"))
        group_description = _dict(body.get("planInformation")).get("groupDescription")
        segs += _person("IL", subscriber, with_id=True, group_description=group_description)
        patient_dates = _dates(_dict(body.get("planDateInformation")))
        if dependents:
            segs.append(_seg("HL", "4", "3", "23", "0"))
            segs += _person("03", dependents[0], with_id=False)
        segs += patient_dates
        for entry in _list(body.get("benefitsInformation")):
            segs += _benefit(entry)
    segs.append(_seg("SE", len(segs) + 1, "0001"))
    isa = (
        f"ISA*00*          *00*          *ZZ*{'STEDI':<15}*01*{'117151744':<15}*{now:%y%m%d}*{now:%H%M}*^*00501*"
        f"{control_number}*0*{'T' if test_mode else 'P'}*>"
    )
    gs = _seg("GS", "HB", "STEDI", "117151744", f"{now:%Y%m%d}", f"{now:%H%M%S}", "1", "X", "005010X279A1")
    trailer = [_seg("GE", "1", "1"), _seg("IEA", "1", control_number)]
    return "~".join([isa, gs, *segs, *trailer]) + "~"
