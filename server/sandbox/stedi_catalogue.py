"""Members of the Stedi stand-in (spec §5.2 Stedi's mock members, §5.3 our SBX01 catalogue).

Benefit lines are generated in Stedi's shape from small tables, with plan dates following the
request's year. Standalone on purpose: the sandbox shares no code with the service it stands in for.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Final

DATA_DIR: Final = Path(__file__).parent / "data"
SANDBOX_PAYER: Final = "SBX01"

Json = dict[str, Any]

# ---------------------------------------------------------------- names the generated lines carry

_BENEFIT_NAMES: Final = {
    "1": "Active Coverage", "6": "Inactive", "A": "Co-Insurance", "B": "Co-Payment", "C": "Deductible",
    "F": "Limitations", "G": "Out of Pocket (Stop Loss)", "I": "Non-Covered",
    "U": "Contact Following Entity for Eligibility or Benefit Information",
}
_LEVEL_NAMES: Final = {"IND": "Individual", "FAM": "Family", "EMP": "Employee Only"}
_TIME_NAMES: Final = {"23": "Calendar Year", "24": "Year to Date", "25": "Contract", "27": "Visit", "29": "Remaining"}
_NETWORK_NAMES: Final = {"Y": "Yes", "N": "No", "W": "Not Applicable", "U": "Unknown"}
_INSURANCE_NAMES: Final = {
    "PR": "Preferred Provider Organization (PPO)", "HM": "Health Maintenance Organization (HMO)", "C1": "Commercial",
    "MA": "Medicare Part A", "MB": "Medicare Part B", "SP": "Supplemental Policy",
}
_QUANTITY_NAMES: Final = {"VS": "Visits", "P6": "Number of Services or Procedures", "S7": "Age, High Value"}
_STC_NAMES: Final = {
    "1": "Medical Care", "5": "Diagnostic Lab", "30": "Health Benefit Plan Coverage", "33": "Chiropractic",
    "35": "Dental Care", "47": "Hospital", "48": "Hospital - Inpatient", "50": "Hospital - Outpatient",
    "62": "MRI/CAT Scan", "86": "Emergency Services", "88": "Pharmacy", "96": "Professional (Physician)",
    "98": "Professional (Physician) Visit - Office", "A6": "Psychotherapy", "AL": "Vision (Optometry)",
    "BY": "Physician Visit - Office: Sick", "BZ": "Physician Visit - Office: Well", "DM": "Durable Medical Equipment",
    "MH": "Mental Health", "PT": "Physical Therapy", "UC": "Urgent Care",
}
_PLACE_NAMES: Final = {
    "02": "Telehealth Provided Other than in Patient's Home", "11": "Office", "20": "Urgent Care Facility",
    "23": "Emergency Room - Hospital",
}


def eb(
    code: str,
    stcs: tuple[str, ...] = (),
    *,
    level: str | None = None,
    ins: str | None = None,
    plan: str | None = None,
    tq: str | None = None,
    amount: str | None = None,
    percent: str | None = None,
    quantity: tuple[str, str] | None = None,
    auth: str | None = None,
    net: str | None = None,
    msgs: tuple[str, ...] = (),
    pos: str | None = None,
    entity: Json | None = None,
) -> Json:
    """One `benefitsInformation` entry in Stedi's field order, names filled from the code tables."""
    out: Json = {"code": code, "name": _BENEFIT_NAMES[code]}
    if level:
        out |= {"coverageLevelCode": level, "coverageLevel": _LEVEL_NAMES[level]}
    if stcs:
        out |= {"serviceTypeCodes": list(stcs), "serviceTypes": [_STC_NAMES[s] for s in stcs]}
    if ins:
        out |= {"insuranceTypeCode": ins, "insuranceType": _INSURANCE_NAMES[ins]}
    if plan:
        out["planCoverage"] = plan
    if tq:
        out |= {"timeQualifierCode": tq, "timeQualifier": _TIME_NAMES[tq]}
    if amount is not None:
        out["benefitAmount"] = amount
    if percent is not None:
        out["benefitPercent"] = percent
    if quantity:
        out |= {"quantityQualifierCode": quantity[0], "quantityQualifier": _QUANTITY_NAMES[quantity[0]],
                "benefitQuantity": quantity[1]}
    if auth:
        out["authOrCertIndicator"] = auth
    if net:
        out |= {"inPlanNetworkIndicatorCode": net, "inPlanNetworkIndicator": _NETWORK_NAMES[net]}
    if pos:
        place = {"codeListQualifierCode": "ZZ", "codeListQualifier": "Mutually Defined", "industryCode": pos,
                 "industry": _PLACE_NAMES[pos]}
        out |= {"eligibilityAdditionalInformation": place, "eligibilityAdditionalInformationList": [dict(place)]}
    if msgs:
        out["additionalInformation"] = [{"description": m} for m in msgs]
    if entity:
        out["benefitsRelatedEntities"] = [entity]
    return out


# ---------------------------------------------------------------- benefit sets


@dataclass(frozen=True)
class Limits:
    """One accumulator (deductible or OOP): (total, remaining[, year-to-date]) per level and network."""

    ind_in: tuple[str, ...]
    fam_in: tuple[str, ...]
    ind_out: tuple[str, str]
    fam_out: tuple[str, str]


def _limit_lines(code: str, limits: Limits, ins: str | None) -> list[Json]:
    lines: list[Json] = []
    for level, net, values in (("IND", "Y", limits.ind_in), ("FAM", "Y", limits.fam_in),
                               ("IND", "N", limits.ind_out), ("FAM", "N", limits.fam_out)):
        lines.append(eb(code, ("30",), level=level, ins=ins, tq="23", amount=values[0], net=net))
        lines.append(eb(code, ("30",), level=level, ins=ins, tq="29", amount=values[1], net=net))
    for level, values in (("IND", limits.ind_in), ("FAM", limits.fam_in)):
        if len(values) > 2:
            lines.append(eb(code, ("30",), level=level, ins=ins, tq="24", amount=values[2], net="Y"))
    return lines


_COVERED: Final = ("1", "33", "47", "48", "50", "86", "88", "98", "AL", "MH", "UC")
PBM: Final[Json] = {
    "entityIdentifier": "Vendor", "entityType": "Non-Person Entity", "entityName": "EXAMPLE PHARMACY BENEFIT MANAGER",
    "contactInformation": {"contacts": [{"communicationMode": "Telephone", "communicationNumber": "8005550142"}]},
}


NO_OFFICE_DEDUCTIBLE: Final = "DEDUCTIBLE DOES NOT APPLY TO OFFICE VISIT COPAY"


def ppo_benefits(
    plan: str,
    deductible: Limits,
    oop: Limits,
    office_copays: tuple[tuple[str, str | None], ...] = (("30", "PRIMARY CARE PHYSICIAN"), ("60", "SPECIALIST")),
) -> list[Json]:
    """The §2.4 PPO shape: status, accumulators, office/urgent/ER/hospital cost shares, auth, pharmacy carve-out."""
    lines = [
        eb("1", ("30",), ins="PR", plan=plan, net="W"),
        eb("1", _COVERED, net="W"),
        *_limit_lines("C", deductible, None),
        *_limit_lines("G", oop, "PR"),
    ]
    for amount, note in office_copays:
        lines.append(eb("B", ("98",), level="IND", tq="27", amount=amount, net="Y", pos="11",
                        msgs=(note,) if note else ()))
    lines += [
        eb("A", ("98",), level="IND", tq="27", percent="0", net="Y", pos="11"),
        eb("A", ("98",), level="IND", tq="27", percent="0.4", net="N", pos="11"),
        eb("C", ("98",), level="IND", tq="27", amount="0", net="Y", msgs=(NO_OFFICE_DEDUCTIBLE,)),
        eb("B", ("UC",), level="IND", tq="27", amount="75", net="Y", pos="20"),
        eb("A", ("UC",), level="IND", tq="27", percent="0.4", net="N"),
        eb("B", ("86",), level="IND", tq="27", amount="250", net="W", pos="23", msgs=("COPAY WAIVED IF ADMITTED",)),
        eb("A", ("86",), level="IND", tq="27", percent="0.2", net="W"),
        eb("A", ("47", "48", "50"), level="IND", tq="27", percent="0.2", net="Y"),
        eb("A", ("47", "48", "50"), level="IND", tq="27", percent="0.4", net="N"),
        eb("1", ("48",), auth="Y", net="Y", msgs=("PRIOR AUTHORIZATION REQUIRED FOR ELECTIVE ADMISSIONS",)),
        eb("U", ("88",), net="W", entity=PBM),
    ]
    return lines


def partly_met() -> list[Json]:  # §5.3 #1 = §2.4
    return ppo_benefits(
        "CHOICE PPO 2500",
        Limits(("2500", "1650", "850"), ("5000", "3400", "1600"), ("5000", "5000"), ("10000", "10000")),
        Limits(("6000", "4800", "1200"), ("12000", "10100", "1900"), ("12000", "12000"), ("24000", "24000")),
    )


def deductible_met() -> list[Json]:  # §5.3 #3
    return ppo_benefits(
        "CHOICE PPO 2000",
        Limits(("2000", "0", "2000"), ("4000", "1500", "2500"), ("5000", "5000"), ("10000", "10000")),
        Limits(("7000", "3200", "3800"), ("14000", "10200", "3800"), ("12000", "12000"), ("24000", "24000")),
    )


def oop_met() -> list[Json]:  # §5.3 #4
    return ppo_benefits(
        "CHOICE PPO 2000",
        Limits(("2000", "0", "2000"), ("4000", "1000", "3000"), ("5000", "5000"), ("10000", "10000")),
        Limits(("6500", "0", "6500"), ("13000", "4100", "8900"), ("12000", "12000"), ("24000", "24000")),
        office_copays=(("30", None),),
    )


def family_plan() -> list[Json]:  # §5.3 #2
    return [
        eb("1", ("30",), level="FAM", ins="PR", plan="FAMILY PPO 1500", net="W"),
        *_limit_lines("C", Limits(("1500", "400"), ("3000", "1300"), ("3000", "3000"), ("6000", "6000")), None),
        *_limit_lines("G", Limits(("5000", "3900"), ("10000", "8300"), ("10000", "10000"), ("20000", "20000")), "PR"),
        eb("B", ("98",), level="IND", tq="27", amount="25", net="Y", pos="11"),
        eb("A", ("98",), level="IND", tq="27", percent="0.2", net="Y", pos="11"),
        eb("A", ("98",), level="IND", tq="27", percent="0.4", net="N", pos="11"),
    ]


def inactive() -> list[Json]:  # §5.3 #5
    return [eb("6", ("30",), net="W")]


def uhc_hmo() -> list[Json]:
    """Stedi's UHC123456 as described in §5.2 (values only; the real body was not captured)."""
    optum = {"entityIdentifier": "Vendor", "entityType": "Non-Person Entity", "entityName": "OPTUMRX"}
    return [
        eb("1", ("30",), level="IND", ins="HM", plan="Gold Plan HMO", net="W"),
        eb("C", ("30",), level="IND", tq="29", amount="0", net="Y"),
        eb("G", ("30",), level="IND", tq="23", amount="1500", net="Y"),
        eb("G", ("30",), level="IND", tq="24", amount="650", net="Y"),
        eb("G", ("30",), level="IND", tq="29", amount="850", net="Y"),
        eb("G", ("30",), level="FAM", tq="23", amount="3000", net="Y"),
        eb("G", ("30",), level="FAM", tq="24", amount="925", net="Y"),
        eb("G", ("30",), level="FAM", tq="29", amount="2200", net="Y"),
        eb("B", ("96",), level="IND", tq="27", amount="15", net="Y"),
        eb("B", ("BY", "BZ", "UC"), level="IND", tq="27", amount="15", net="Y"),
        eb("B", ("86",), level="IND", tq="27", amount="50", net="Y"),
        eb("U", ("88",), net="W", entity=optum),
    ]


def uhc_choice_plus() -> list[Json]:
    """Stedi's UHC202649 (dependent) per §5.2's summary of the OpenAPI example; amounts from there."""
    return [
        eb("1", ("30",), level="FAM", ins="C1", plan="CHOICE PLUS", net="W"),
        eb("C", ("30",), level="FAM", tq="23", amount="3200", net="Y"),
        eb("C", ("30",), level="FAM", tq="29", amount="0", net="Y"),
        eb("C", ("30",), level="FAM", tq="23", amount="5000", net="N"),
        eb("C", ("30",), level="FAM", tq="29", amount="1800", net="N"),
        eb("C", ("30",), level="FAM", tq="24", amount="3200", net="W"),
        eb("G", ("30",), level="FAM", tq="23", amount="6850", net="Y"),
        eb("G", ("30",), level="FAM", tq="29", amount="1294.84", net="Y"),
        eb("G", ("30",), level="FAM", tq="23", amount="15500", net="N"),
        eb("G", ("30",), level="FAM", tq="29", amount="9944.84", net="N"),
        eb("G", ("30",), level="FAM", tq="24", amount="5555.16", net="W"),
        eb("B", ("A6",), level="IND", tq="27", amount="0", net="Y"),
        eb("A", ("A6",), level="IND", tq="27", percent="0", net="Y"),
        eb("A", ("A6",), level="IND", tq="27", percent="0.5", net="N"),
    ]


# ---------------------------------------------------------------- SBX6xxxxx: every rule of EstimateFromEligibility
# Each answer is built so that a newcomer can watch one group of the derivation's rules fire (spec
# estimate-from-eligibility.md D2-D9); docs/sandbox-members.md lists the requests, and
# tests/eligibility_estimate/sandbox_expectations.py holds the expected answers, worked out by hand.


def _cell(code: str, level: str, net: str, ins: str | None = None, *, total: str | None = None,
          remaining: str | None = None, met: str | None = None) -> list[Json]:
    """One plan-level accumulator cell (STC 30): only the time qualifiers given are sent."""
    return [eb(code, ("30",), level=level, ins=ins, tq=tq, amount=value, net=net)
            for tq, value in (("23", total), ("29", remaining), ("24", met)) if value is not None]


def _status(plan: str, ins: str, covered: tuple[str, ...]) -> list[Json]:
    return [eb("1", ("30",), ins=ins, plan=plan, net="W"), eb("1", covered, net="W")]


def cost_share_choice() -> list[Json]:
    """SBX600001: D3/D4 (place of service, role, rounding), D5 (non-covered lines), a 0 service deductible."""
    return [
        *_status("OPEN ACCESS PPO 1000", "PR", ("1", "98", "A6", "MH", "UC")),
        *_limit_lines("C", Limits(("1000", "600", "400"), ("2000", "1500", "500"), ("2000", "2000"),
                                  ("4000", "4000")), None),
        *_limit_lines("G", Limits(("4000", "3000", "1000"), ("8000", "7000", "1000"), ("8000", "8000"),
                                  ("16000", "16000")), "PR"),
        eb("B", ("98",), level="IND", tq="27", amount="25", net="Y", pos="11", msgs=("PCP OFFICE VISIT",)),
        eb("B", ("98",), level="IND", tq="27", amount="50", net="Y", pos="11", msgs=("SPECIALIST OFFICE VISIT",)),
        eb("B", ("98",), level="IND", tq="27", amount="10", net="Y", pos="02", msgs=("TELEHEALTH VISIT",)),
        eb("A", ("98",), level="IND", tq="27", percent="0", net="Y"),
        eb("A", ("98",), level="IND", tq="27", percent="0.3", net="N"),
        eb("C", ("98",), level="IND", tq="27", amount="0", net="Y"),
        eb("B", ("UC",), level="IND", tq="27", amount="34.125", net="Y", pos="20", msgs=("NO DEDUCTIBLE",)),
        eb("A", ("UC",), level="IND", tq="27", percent="0.3", net="N"),
        eb("B", ("A6",), level="IND", tq="27", amount="20", net="Y"),
        eb("A", ("A6",), level="IND", tq="27", percent="0", net="Y"),
        eb("C", ("A6",), level="IND", tq="27", amount="0", net="Y"),
        eb("I", ("A6",), net="W", msgs=("MARRIAGE AND FAMILY COUNSELING",)),
        eb("I", ("AL",), net="W", msgs=("ROUTINE VISION EXAMS",)),
        eb("U", ("88",), net="W", entity=PBM),
    ]


def deductible_signals() -> list[Json]:
    """SBX600002: D6, each kind of signal (service-level deductible lines, waived / applies texts, hedges)."""
    return [
        *_status("SELECT PPO 1500", "PR", ("1", "5", "33", "62", "86", "98", "UC")),
        *_limit_lines("C", Limits(("1500", "900", "600"), ("3000", "2200", "800"), ("3000", "3000"),
                                  ("6000", "6000")), None),
        *_limit_lines("G", Limits(("5000", "4000", "1000"), ("10000", "8500", "1500"), ("10000", "10000"),
                                  ("20000", "20000")), "PR"),
        eb("B", ("62",), level="IND", tq="27", amount="100", net="Y", msgs=("COPAY WAIVED AFTER DEDUCTIBLE",)),
        eb("A", ("62",), level="IND", tq="27", percent="0.2", net="Y"),
        eb("1", ("62",), auth="Y", net="Y", msgs=("PRIOR AUTHORIZATION REQUIRED",)),
        eb("B", ("86",), level="IND", tq="27", amount="150", net="W", pos="23", msgs=("NOT SUBJECT TO DEDUCTIBLE",)),
        eb("A", ("86",), level="IND", tq="27", percent="0.1", net="W"),
        eb("C", ("86",), level="IND", tq="27", amount="500", net="W"),
        eb("B", ("33",), level="IND", tq="27", amount="30", net="Y", msgs=("VERIFY IF SUBJECT TO DEDUCTIBLE",)),
        eb("A", ("33",), level="IND", tq="27", percent="0", net="Y", msgs=("MAY BE SUBJECT TO DEDUCTIBLE",)),
        eb("B", ("UC",), level="IND", tq="27", amount="60", net="Y", pos="20", msgs=("DEDUCTIBLE APPLIES",)),
        eb("A", ("5",), level="IND", tq="27", percent="0", net="Y"),
        eb("C", ("5",), level="IND", tq="23", amount="75", net="Y"),
    ]


def accumulators_partly_sent() -> list[Json]:
    """SBX600003: D7, totals without remaining (in: deductible; out: OOP), an inconsistent in-network OOP."""
    return [
        *_status("VALUE PPO 1500", "PR", ("1", "98", "UC")),
        *_cell("C", "IND", "Y", total="1500"),
        *_cell("C", "IND", "N", total="3000", remaining="2500"),
        *_cell("G", "IND", "Y", "PR", total="6000", remaining="4500", met="1000"),
        *_cell("G", "IND", "N", "PR", total="12000"),
        eb("B", ("98",), level="IND", tq="27", amount="40", net="Y", pos="11"),
        eb("A", ("98",), level="IND", tq="27", percent="0.2", net="Y", pos="11"),
        eb("A", ("98",), level="IND", tq="27", percent="0.4", net="N", pos="11"),
        eb("B", ("UC",), level="IND", tq="27", amount="50", net="Y", pos="20", msgs=("DEDUCTIBLE WAIVED",)),
    ]


def accumulators_missing() -> list[Json]:
    """SBX600004: D7, no in-network deductible and no out-of-network OOP maximum at all."""
    return [
        *_status("BASIC PPO", "PR", ("1", "47", "48", "50", "98")),
        *_cell("C", "IND", "N", total="4000", remaining="4000"),
        *_cell("G", "IND", "Y", "PR", total="5000", remaining="3000"),
        eb("A", ("47", "48", "50"), level="IND", tq="27", percent="0.2", net="Y"),
        eb("A", ("47", "48", "50"), level="IND", tq="27", percent="0.4", net="N"),
        eb("B", ("98",), level="IND", tq="27", amount="30", net="Y", pos="11", msgs=("DEDUCTIBLE DOES NOT APPLY",)),
    ]


def hmo_limits() -> list[Json]:
    """SBX600005: D8 limits of every kind; an HMO: nothing out of network (D3 NOT_FOUND); deductible met."""
    return [
        *_status("CARE HMO 500", "HM", ("1", "33", "98", "A6", "AL", "DM", "PT")),
        *_cell("C", "IND", "Y", total="500", remaining="0", met="500"),
        *_cell("C", "FAM", "Y", total="1000", remaining="400", met="600"),
        *_cell("G", "IND", "Y", "HM", total="3000", remaining="2200", met="800"),
        *_cell("G", "FAM", "Y", "HM", total="6000", remaining="5000", met="1000"),
        eb("B", ("98",), level="IND", tq="27", amount="15", net="Y"),
        eb("B", ("PT",), level="IND", tq="27", amount="35", net="Y"),
        eb("F", ("PT",), level="IND", tq="23", quantity=("VS", "20"), net="Y"),
        eb("F", ("PT",), level="IND", tq="29", quantity=("VS", "8"), net="Y"),
        eb("B", ("33",), level="IND", tq="27", amount="25", net="Y"),
        eb("F", ("33",), level="IND", tq="23", quantity=("VS", "12"), net="Y"),
        eb("B", ("A6",), level="IND", tq="27", amount="20", net="Y"),
        eb("F", ("A6",), level="IND", tq="29", quantity=("VS", "6"), net="Y", msgs=("OUTPATIENT THERAPY VISITS",)),
        eb("F", ("A6",), level="IND", tq="29", quantity=("VS", "0"), net="Y", msgs=("PSYCHOTHERAPY VISITS",)),
        eb("A", ("DM",), level="IND", tq="27", percent="0.2", net="Y"),
        eb("F", ("DM",), level="IND", tq="23", amount="1500", net="Y"),
        eb("F", ("DM",), level="IND", tq="29", amount="300", net="Y"),
        eb("B", ("AL",), level="IND", tq="27", amount="10", net="Y"),
        eb("F", ("AL",), level="IND", quantity=("S7", "19"), net="Y", msgs=("ROUTINE EYE EXAM",)),
    ]


def two_plans() -> list[Json]:
    """SBX600006: two active plans in one answer (SEVERAL_PLANS); their copays and coinsurances compete."""
    return [
        eb("1", ("30",), ins="PR", plan="EMPLOYER PPO 750", net="W"),
        eb("1", ("30",), ins="SP", plan="RETIREE SUPPLEMENT", net="W"),
        eb("1", ("1", "62", "98"), net="W"),
        *_limit_lines("C", Limits(("750", "0", "750"), ("1500", "600", "900"), ("1500", "1500"),
                                  ("3000", "3000")), None),
        *_limit_lines("G", Limits(("3500", "2100", "1400"), ("7000", "5200", "1800"), ("7000", "7000"),
                                  ("14000", "14000")), "PR"),
        eb("B", ("98",), level="IND", tq="27", amount="20", net="Y", pos="11"),
        eb("B", ("98",), level="IND", tq="27", amount="35", net="Y", pos="11"),
        eb("A", ("98",), level="IND", tq="27", percent="0", net="Y", pos="11"),
        eb("A", ("62",), level="IND", tq="27", percent="0.1", net="Y"),
        eb("A", ("62",), level="IND", tq="27", percent="0.2", net="Y"),
    ]


def invalid_values() -> list[Json]:
    """SBX600007: a negative copay and a percent sent as a whole number ("20"), each beside a valid line."""
    return [
        *_status("CLASSIC PPO 1000", "PR", ("1", "98", "UC")),
        *_limit_lines("C", Limits(("1000", "0", "1000"), ("2000", "800", "1200"), ("2000", "2000"),
                                  ("4000", "4000")), None),
        *_limit_lines("G", Limits(("4500", "3000", "1500"), ("9000", "7000", "2000"), ("9000", "9000"),
                                  ("18000", "18000")), "PR"),
        eb("B", ("98",), level="IND", tq="27", amount="40", net="Y", pos="11"),
        eb("B", ("98",), level="IND", tq="27", amount="-25", net="Y", pos="11"),
        eb("A", ("98",), level="IND", tq="27", percent="0", net="Y", pos="11"),
        eb("B", ("UC",), level="IND", tq="27", amount="50", net="Y", pos="20"),
        eb("A", ("UC",), level="IND", tq="27", percent="0.3", net="Y", pos="20"),
        eb("A", ("UC",), level="IND", tq="27", percent="20", net="Y", pos="20"),
    ]


def status_unclear() -> list[Json]:
    """SBX600008: an active and an inactive status line for STC 30 (COVERAGE_STATUS_UNCLEAR)."""
    return [
        eb("1", ("30",), ins="PR", plan="CHOICE PPO 2500", net="W"),
        eb("6", ("30",), ins="HM", plan="BRONZE HMO", net="W"),
        *_limit_lines("C", Limits(("2500", "2500"), ("5000", "5000"), ("5000", "5000"), ("10000", "10000")), None),
        eb("B", ("98",), level="IND", tq="27", amount="30", net="Y", pos="11"),
    ]


def lapsed() -> list[Json]:
    """SBX600009: active status lines, but the plan dates ended last year (DOS_OUTSIDE_PLAN_DATES)."""
    return [
        *_status("CHOICE PPO 2500", "PR", ("1", "98")),
        *_limit_lines("C", Limits(("2500", "2500"), ("5000", "5000"), ("5000", "5000"), ("10000", "10000")), None),
        eb("B", ("98",), level="IND", tq="27", amount="30", net="Y", pos="11"),
    ]


def generic_active(plan: str, stc: str = "30") -> Callable[[], list[Json]]:
    """Stedi mock members we know only as 'active': one status line."""
    return lambda: [eb("1", (stc,), level="IND", plan=plan, net="W")]


# ---------------------------------------------------------------- members


class Behaviour(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    LAPSED = "LAPSED"  # active status lines, plan dates of the previous year
    CANNED = "CANNED"  # a captured Stedi body from data/
    AAA = "AAA"
    FLAKY_42 = "FLAKY_42"  # AAA 42 for the first N calls, then ACTIVE
    SLOW = "SLOW"  # sleeps slow_seconds, then ACTIVE
    PAYER_TIMEOUT = "PAYER_TIMEOUT"  # sleeps payer_timeout_seconds, then AAA 80
    HTTP_429 = "HTTP_429"
    HTTP_503 = "HTTP_503"
    HTTP_504 = "HTTP_504"  # sleeps slow_seconds, then 504


HTTP_BEHAVIOURS: Final = frozenset({Behaviour.HTTP_429, Behaviour.HTTP_503, Behaviour.HTTP_504})


@dataclass(frozen=True)
class AaaSpec:
    code: str
    level: str  # payer | provider | subscriber | dependent
    followup: str  # X12 letter


@dataclass(frozen=True)
class DependentRecord:
    first_name: str
    last_name: str
    dob: str
    gender: str
    relationship: str


@dataclass(frozen=True)
class Plan:
    group_number: str | None = None
    group_description: str | None = None
    plan_number: str | None = None
    address: Json | None = None
    eligibility_begin: str | None = None


@dataclass(frozen=True)
class Member:
    payer_id: str
    member_id: str
    first_name: str | None
    last_name: str | None
    dob: str | None
    behaviour: Behaviour
    gender: str | None = None
    benefits: Callable[[], list[Json]] | None = None
    plan: Plan = field(default_factory=Plan)
    dependent: DependentRecord | None = None
    aaa: AaaSpec | None = None
    canned: str | None = None


_RIVERA_PLAN: Final = Plan(
    "GRP778812", "ACME MANUFACTURING EMPLOYEES", "PPO2500",
    {"address1": "400 ELM ST", "city": "COLUMBUS", "state": "OH", "postalCode": "43215"}, "20190301",
)
_OTHER_PLAN: Final = Plan("GRP778812", "ACME MANUFACTURING EMPLOYEES", "PPO2000", None, "20210101")
_ESTIMATE_PLAN: Final = Plan("GRP660100", "LAKESIDE LOGISTICS EMPLOYEES", None, None, "20200101")


def _sbx(member_id: str, first: str, last: str, dob: str, behaviour: Behaviour, **kw: Any) -> Member:
    return Member(SANDBOX_PAYER, member_id, first, last, dob, behaviour, **kw)


_A = Behaviour.ACTIVE
SBX_MEMBERS: Final[tuple[Member, ...]] = (
    _sbx("SBX100001", "Alex", "Rivera", "19850412", _A, gender="M", benefits=partly_met, plan=_RIVERA_PLAN),
    _sbx("SBX200001", "Priya", "Shah", "19790823", _A, gender="F", benefits=family_plan,
         plan=Plan("GRP551100", "SHAH FAMILY EMPLOYER GROUP", "FPPO1500", None, "20150101"),
         dependent=DependentRecord("Maya", "Shah", "20120605", "F", "19")),
    _sbx("SBX300001", "Jordan", "Lee", "19900214", _A, gender="M", benefits=deductible_met, plan=_OTHER_PLAN),
    _sbx("SBX400001", "Sam", "Patel", "19720930", _A, gender="M", benefits=oop_met, plan=_OTHER_PLAN),
    _sbx("SBX500001", "Chris", "Morgan", "19681111", Behaviour.INACTIVE, gender="F", benefits=inactive),
    _sbx("SBX420001", "Pat", "Quinn", "19800101", Behaviour.AAA, aaa=AaaSpec("42", "subscriber", "R")),
    _sbx("SBX420002", "Pat", "Quinn", "19800101", Behaviour.FLAKY_42, benefits=partly_met, plan=_RIVERA_PLAN),
    _sbx("SBX800001", "Robin", "Diaz", "19750505", Behaviour.AAA, aaa=AaaSpec("80", "payer", "R")),
    _sbx("SBX700001", "Dana", "Kim", "19920707", Behaviour.SLOW, benefits=partly_met, plan=_RIVERA_PLAN),
    _sbx("SBX700002", "Dana", "Kim", "19920707", Behaviour.PAYER_TIMEOUT),
    Member(SANDBOX_PAYER, "SBX429001", None, None, None, Behaviour.HTTP_429),
    Member(SANDBOX_PAYER, "SBX503001", None, None, None, Behaviour.HTTP_503),
    Member(SANDBOX_PAYER, "SBX504001", None, None, None, Behaviour.HTTP_504),
    # SBX6xxxxx: the rules of EstimateFromEligibility (docs/sandbox-members.md)
    _sbx("SBX600001", "Jamie", "Ortiz", "19880309", _A, gender="F", benefits=cost_share_choice, plan=_ESTIMATE_PLAN),
    _sbx("SBX600002", "Taylor", "Brooks", "19831102", _A, gender="M", benefits=deductible_signals,
         plan=_ESTIMATE_PLAN),
    _sbx("SBX600003", "Riley", "Chen", "19910618", _A, gender="F", benefits=accumulators_partly_sent,
         plan=_ESTIMATE_PLAN),
    _sbx("SBX600004", "Avery", "Santos", "19791201", _A, gender="M", benefits=accumulators_missing,
         plan=_ESTIMATE_PLAN),
    _sbx("SBX600005", "Casey", "Nguyen", "19860925", _A, gender="F", benefits=hmo_limits,
         plan=Plan("GRP660500", "NORTHSIDE SCHOOLS", "HMO500", None, "20220101")),
    _sbx("SBX600006", "Harper", "Lewis", "19940227", _A, gender="F", benefits=two_plans, plan=_ESTIMATE_PLAN),
    _sbx("SBX600007", "Elliot", "Reyes", "19750714", _A, gender="M", benefits=invalid_values, plan=_ESTIMATE_PLAN),
    _sbx("SBX600008", "Rowan", "Ellis", "19690430", _A, gender="M", benefits=status_unclear, plan=_ESTIMATE_PLAN),
    _sbx("SBX600009", "Morgan", "Price", "19770817", Behaviour.LAPSED, gender="F", benefits=lapsed,
         plan=_ESTIMATE_PLAN),
)


def _mock(payer: str, member_id: str, first: str, last: str, dob: str | None, behaviour: Behaviour = _A,
          **kw: Any) -> Member:
    return Member(payer, member_id, first, last, dob, behaviour, **kw)


def _active_mock(payer: str, member_id: str, first: str, last: str, dob: str | None, stc: str = "30",
                 **kw: Any) -> Member:
    return _mock(payer, member_id, first, last, dob, benefits=generic_active("MOCK PLAN", stc), **kw)


def _dep(first: str, last: str, dob: str, relationship: str) -> DependentRecord:
    return DependentRecord(first, last, dob, "F" if relationship == "01" else "M", relationship)


_UHC = "87726"
STEDI_MOCK_MEMBERS: Final[tuple[Member, ...]] = (
    _mock("60054", "AETNA12345", "Jane", "Doe", "20040404", Behaviour.CANNED, canned="stedi_60054_AETNA12345.json"),
    _active_mock("60054", "AETNA9wcSu", "John", "Doe", None, dependent=_dep("Jordan", "Doe", "20010714", "19")),
    _active_mock("68069", "AMBETTER123", "John", "Doe", "19940404"),
    _active_mock("62308", "23456789100", "James", "Jones", "19910202"),
    _active_mock("62308", "5643296", "Rolando", "Arrojo", "19710102"),
    _active_mock("62308", "R5TJR4HR4H", "Rod", "Beck", "19720203"),
    _active_mock("62308", "5642296", "David", "Cone", "19730304"),
    _active_mock("62308", "FTRJRG3254", "Frank", "Castillo", "19750405"),
    _active_mock("62308", "5641296", "Casey", "Fossum", "19760506"),
    _active_mock("62308", "DHW5445", "Rich", "Garces", "19770607"),
    _active_mock("62308", "CIGNAJTUxNm", "John", "Doe", None, dependent=_dep("Jordan", "Doe", "20150920", "19")),
    _active_mock("61101", "HUMANA123", "Jane", "Doe", "19750505"),
    _active_mock("KSRCN", "KAISER123456", "Jane", "Doe", "20020202"),
    _active_mock("CMS", "CMS12345678", "Jane", "Doe", "19550505"),
    _mock(_UHC, "UHC123456", "Jane", "Doe", "19710101", benefits=uhc_hmo, gender="F"),
    _mock(_UHC, "UHC202649", "John", "Doe", None, benefits=uhc_choice_plus, gender="M",
          dependent=_dep("Jane", "Doe", "19521121", "01")),
    _active_mock("040", "CGMBCBSCA123", "Jane", "Doe", None, dependent=_dep("John", "Doe", "19750101", "01")),
    _active_mock("G84980", "A2CBCBSTX123", "John", "Doe", None, dependent=_dep("Jane", "Doe", "20150101", "19")),
    _active_mock("OSCAR", "OSCAR123456", "John", "Doe", None, dependent=_dep("Jane", "Doe", "20010101", "19")),
    _mock(_UHC, "UHCINACTIVE", "Jane", "Doe", "19710101", Behaviour.CANNED, canned="stedi_87726_UHCINACTIVE.json"),
    _mock(_UHC, "UHCAAA42", "Jane", "Doe", "20010101", Behaviour.AAA, aaa=AaaSpec("42", "subscriber", "R")),
    _mock(_UHC, "UHCAAA43", "Jane", "Doe", "19700101", Behaviour.AAA, aaa=AaaSpec("43", "provider", "C")),
    _mock(_UHC, "UHCAAA72", "John", "Doe", "19900101", Behaviour.AAA, aaa=AaaSpec("72", "subscriber", "C")),
    _mock(_UHC, "UHCAAA73", "John", "Doe", "19900101", Behaviour.AAA, aaa=AaaSpec("73", "subscriber", "C")),
    _mock(_UHC, "UHCAAA75", "Jane", "Doe", "19900101", Behaviour.AAA, aaa=AaaSpec("75", "subscriber", "N")),
    _mock(_UHC, "UHCAAA79", "John", "Doe", "19700101", Behaviour.AAA, aaa=AaaSpec("79", "payer", "C")),
    _mock("STEDI", "23051322", "Bernie", "Prohas", None, Behaviour.AAA, aaa=AaaSpec("73", "subscriber", "C")),
    _active_mock("AMTAS00425", "007007007", "Falcon", "Dent", "19850607", stc="35"),
    _active_mock("84103", "AFK987654321", "Aardvark", "Dent", "19701212", stc="35"),
    _active_mock("62308", "U3141592653", "Jaguar", "Dent", "19960505", stc="35"),
    _active_mock("10134", "88877788", "Elephant", "Dent", "19840229", stc="35"),
    _active_mock("52133", "404404404", "Beaver", "Dent", "19690628", stc="35"),
)

PAYER_NAMES: Final[Mapping[str, str]] = {
    SANDBOX_PAYER: "SANDBOX MUTUAL HEALTH", "60054": "AETNA", "68069": "AMBETTER", "62308": "CIGNA",
    "61101": "HUMANA", "KSRCN": "KAISER FOUNDATION HEALTH PLAN NORTHERN CALIFORNIA", "CMS": "CMS",
    _UHC: "UNITEDHEALTHCARE", "040": "ANTHEM BLUE CROSS CA", "G84980": "BLUE CROSS BLUE SHIELD OF TEXAS",
    "OSCAR": "OSCAR HEALTH", "STEDI": "STEDI TEST PAYER", "AMTAS00425": "AMERITAS", "84103": "ANTHEM DENTAL",
    "10134": "METLIFE DENTAL", "52133": "UNITEDHEALTHCARE DENTAL",
}
PAYER_CONTACTS: Final[Mapping[str, list[Json]]] = {
    SANDBOX_PAYER: [
        {"communicationMode": "Telephone", "communicationNumber": "8005550100"},
        {"communicationMode": "Uniform Resource Locator (URL)",
         "communicationNumber": "WWW.EXAMPLE-PAYER.TEST/PROVIDERS"},
    ],
    _UHC: [{"communicationMode": "Uniform Resource Locator (URL)", "communicationNumber": "WWW.UHCPROVIDER.COM"}],
}

_BY_KEY: Final[Mapping[tuple[str, str], Member]] = {
    (m.payer_id, m.member_id): m for m in (*SBX_MEMBERS, *STEDI_MOCK_MEMBERS)
}


def find_member(payer_id: str, member_id: str) -> Member | None:
    return _BY_KEY.get((payer_id, member_id))


def known_payer(payer_id: str) -> bool:
    return payer_id in PAYER_NAMES


@cache
def _canned_text(name: str) -> str:
    return (DATA_DIR / name).read_text(encoding="utf-8")


def canned_body(name: str) -> Json:
    """A fresh copy of a captured Stedi body (callers rewrite its envelope)."""
    body = json.loads(_canned_text(name))
    assert isinstance(body, dict)
    return copy.deepcopy(body)
