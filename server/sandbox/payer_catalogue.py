"""Test members and plan benefits served by the payer stand-in (wire JSON shapes of seed 000 and
cost-share-rules §1.2). Pure data + builders: no I/O, imports nothing from the rest of `server`.

Benefit money is emitted as JSON numbers (like the seed), accumulator values as strings (like the
Accumulators API). Accumulator exception codes tie coverages to accumulators:
in-network L01/L02 deductible ind/fam, L03/L04 OOP ind/fam, L05 PT visit limit, L06 DME dollar limit;
out-of-network L11/L12 deductible, L13/L14 OOP.

Between them, the members and services below reach every row of the rule book's routing table (§4) through
`Estimate`; docs/sandbox-members.md lists the combinations and tests/test_sandbox_branches.py proves it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import msgspec

__all__ = [
    "MEMBERS",
    "PCP_SPECIALTIES",
    "PLAN_IDENTIFIERS",
    "SERVICES",
    "Member",
    "accumulators_answer",
    "accumulators_json",
    "benefits_for_service",
    "dumps_exact",
    "service_answer_json",
]

JSON = dict[str, Any]

# Provider specialty codes that make an office visit a primary-care (PCP) visit.
PCP_SPECIALTIES = frozenset({"01", "08", "11", "37", "38"})  # general/family/internal/pediatrics/geriatrics
TELEHEALTH_POS = frozenset({"02", "10"})
HOSPITAL_OUTPATIENT_POS = frozenset({"19", "22"})


# ---- coverage builders ----------------------------------------------------------------------------


def _related(code: str, level: str, ex: str, network: str) -> JSON:
    return {"code": code, "level": level, "deductibleCode": "", "accumExCode": ex, "networkIndicatorCode": network}


def _coverage(
    description: str,
    *,
    copay: Decimal = Decimal(0),
    coins: Decimal = Decimal(0),
    network: str = "I",
    deductible: bool = True,
    ded_before_copay: str = "N",
    copay_to_ded: str = "N",
    copay_after_ded: str = "Y",
    copay_after_oop: str = "N",
    covered: str = "Y",
    limit: str | None = None,
    limit_network: str | None = None,
) -> JSON:
    related: list[JSON] = []
    if covered == "Y":
        d = ("L01", "L02") if network == "I" else ("L11", "L12")
        o = ("L03", "L04") if network == "I" else ("L13", "L14")
        if deductible:
            related += [_related("Deductible", "Individual", d[0], network), _related("Deductible", "Family", d[1], network)]
        related += [_related("OOP Max", "Individual", o[0], network), _related("OOP Max", "Family", o[1], network)]
        if limit:
            related.append(_related("Limit", "Individual", limit, limit_network or network))
    return {
        "sequenceNumber": 1,
        "benefitDescription": description,
        "costShareCopay": copay,
        "costShareCoinsurance": coins,
        "copayAppliesOutOfPocket": "Y",
        "coinsAppliesOutOfPocket": "Y",
        "deductibleAppliesOutOfPocket": "Y",
        "copayCountToDeductibleIndicator": copay_to_ded,
        "copayContinueWhenDeductibleMetIndicator": copay_after_ded,
        "copayContinueWhenOutOfPocketMaxMetIndicator": copay_after_oop,
        "isDeductibleBeforeCopay": ded_before_copay,
        "benefitLimitation": "Y" if limit else "N",
        "isServiceCovered": covered,
        "relatedAccumulators": related,
    }


def _benefit(
    name: str,
    code: int,
    network: str,
    tier: str,
    coverage: JSON,
    *,
    designation: str | None = None,
    provider: str = "PPONET",
) -> JSON:
    return {
        "benefitName": name,
        "benefitCode": code,
        "isInitialBenefit": "N",
        "networkCategory": "InNetwork" if network == "I" else "OutofNetwork",
        "benefitTier": {"benefitTierName": tier},
        "benefitProvider": provider,
        "serviceProvider": [{"providerDesignation": designation}] if designation else [],
        "coverages": [coverage],
    }


def _oon(name: str, code: int, description: str, coins: Decimal = Decimal(40), **kw: Any) -> JSON:
    return _benefit(name, code, "O", "OON", _coverage(description, coins=coins, network="O", **kw), provider="OON")


# ---- services -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceRequest:
    """The parts of one requested serviceInfo that pick benefits."""

    code: str
    code_type: str
    provider_types: tuple[str, ...]
    places_of_service: tuple[str, ...]
    specialties: tuple[str, ...]


def _office_visit(req: ServiceRequest) -> list[JSON]:
    if TELEHEALTH_POS & set(req.places_of_service):
        return [
            _benefit("Telehealth Visit", 1240, "I", "1", _coverage("Virtual visit", copay=Decimal("10.0"), deductible=False)),
            _oon("Telehealth Visit - Out of Network", 1249, "Virtual visit", covered="N"),
        ]
    if PCP_SPECIALTIES & set(req.specialties):
        return [
            _benefit(
                "Office Visit - PCP", 1234, "I", "1",
                _coverage("Office Visit - Primary Care", copay=Decimal("25.0"), deductible=False), designation="PCP",
            ),
            _benefit(
                "Office Visit - PCP Tier 2", 1235, "I", "2",
                _coverage("Office Visit - Primary Care, tier 2", copay=Decimal("40.0"), deductible=False), designation="PCP",
            ),
            _oon("Office Visit - Out of Network", 1239, "Office Visit - Out of Network"),
        ]
    return [
        _benefit("Office Visit - Specialist", 1236, "I", "1", _coverage("Specialist office visit", copay=Decimal("50.0"), deductible=False)),
        _benefit(
            "Office Visit - Specialist Tier 2", 1237, "I", "2",
            _coverage("Specialist office visit, tier 2", copay=Decimal("75.0"), deductible=False),
        ),
        _oon("Office Visit - Out of Network", 1239, "Office Visit - Out of Network"),
    ]


def _physical_therapy(req: ServiceRequest) -> list[JSON]:
    # One 20-visit limit shared in and out of network (tracked on the in-network L05 accumulator).
    return [
        _benefit("Physical Therapy", 2100, "I", "1", _coverage("Outpatient physical therapy", copay=Decimal("30.0"), deductible=False, limit="L05")),
        _benefit(
            "Physical Therapy Tier 2", 2101, "I", "2",
            _coverage("Outpatient physical therapy, tier 2", copay=Decimal("45.0"), deductible=False, limit="L05"),
        ),
        _oon("Physical Therapy - Out of Network", 2109, "Outpatient physical therapy", limit="L05", limit_network="I"),
    ]


def _dme(req: ServiceRequest) -> list[JSON]:
    return [
        _benefit(
            "Durable Medical Equipment", 3100, "I", "1",
            _coverage("Durable medical equipment, $1500 yearly limit", coins=Decimal("20.0"), limit="L06"), provider="DMESUPPLY",
        ),
        _oon("Durable Medical Equipment - Out of Network", 3109, "Durable medical equipment", coins=Decimal("50.0"), limit="L06", limit_network="I"),
    ]


def _mri(req: ServiceRequest) -> list[JSON]:
    freestanding = _benefit("Advanced Imaging - Freestanding", 4100, "I", "1", _coverage("MRI/CT at a freestanding center", coins=Decimal("20.0")))
    hospital = _benefit("Advanced Imaging - Hospital Outpatient", 4101, "I", "2", _coverage("MRI/CT in a hospital outpatient department", coins=Decimal("30.0")))
    in_hospital = bool(HOSPITAL_OUTPATIENT_POS & set(req.places_of_service)) or "HO" in req.provider_types
    (hospital if in_hospital else freestanding)["isInitialBenefit"] = "Y"
    return [freestanding, hospital, _oon("Advanced Imaging - Out of Network", 4109, "MRI/CT out of network", coins=Decimal("50.0"))]


def _preventive(req: ServiceRequest) -> list[JSON]:
    return [
        _benefit("Preventive Care", 5100, "I", "1", _coverage("Routine preventive exam, covered in full", deductible=False), designation="PCP"),
        _oon("Preventive Care - Out of Network", 5109, "Routine preventive exam"),
    ]


def _lab(req: ServiceRequest) -> list[JSON]:
    return [
        _benefit("Laboratory - Independent Lab", 6100, "I", "1", _coverage("Independent laboratory", coins=Decimal("10.0"))),
        _oon("Laboratory - Out of Network", 6109, "Laboratory"),
    ]


def _emergency(req: ServiceRequest) -> list[JSON]:
    # Copay first (it also counts toward the deductible), then the deductible, then 20 %; the copay is still
    # charged once the deductible or the OOP max is met. Out of network it is paid at the in-network level.
    er: dict[str, Any] = {
        "copay": Decimal("150.00"), "coins": Decimal("20.0"), "copay_to_ded": "Y", "copay_after_ded": "Y", "copay_after_oop": "Y",
    }
    return [
        _benefit(
            "Emergency Room", 8100, "I", "1",
            _coverage("Emergency room visit: $150 copay, then deductible, then 20%", **er),
        ),
        _oon("Emergency Room - Out of Network", 8109, "Emergency room visit, paid at the in-network level", **er),
    ]


def _acupuncture(req: ServiceRequest) -> list[JSON]:
    return [
        _benefit("Acupuncture", 7100, "I", "1", _coverage("Acupuncture is not a covered service", covered="N")),
        _oon("Acupuncture - Out of Network", 7109, "Acupuncture is not a covered service", covered="N"),
    ]


SERVICES: dict[str, tuple[str, Any]] = {
    "99213": ("Office visit, established patient, low complexity", _office_visit),
    "99214": ("Office visit, established patient, moderate complexity", _office_visit),
    "97110": ("Physical therapy, therapeutic exercise", _physical_therapy),
    "E0110": ("Crutches, forearm (DME, HCPCS)", _dme),
    "70551": ("MRI brain without contrast", _mri),
    "99395": ("Preventive visit, 18-39 years", _preventive),
    "80053": ("Comprehensive metabolic panel (lab)", _lab),
    "97810": ("Acupuncture (not covered)", _acupuncture),
    "99281": ("Emergency department visit, straightforward", _emergency),
    "99284": ("Emergency department visit, moderate complexity", _emergency),
    "99285": ("Emergency department visit, high complexity", _emergency),
}
"""Service code → (description, benefit builder). Other codes answer with no benefits."""


def _to_hdhp(benefits: list[JSON]) -> list[JSON]:
    """High-deductible plan: the deductible comes first for everything except preventive care.

    Edits in place: the service builders return freshly built benefits on every call, nothing shared.
    """
    out = benefits
    for b in out:
        b["benefitProvider"] = "HDHPNET" if b["benefitProvider"] == "PPONET" else b["benefitProvider"]
        for cov in b["coverages"]:
            if b["benefitCode"] in (5100,) or cov["isServiceCovered"] != "Y":
                continue
            cov["isDeductibleBeforeCopay"] = "Y"
            net = "I" if b["networkCategory"] == "InNetwork" else "O"
            codes = {(r["code"], r["level"]) for r in cov["relatedAccumulators"]}
            if ("Deductible", "Individual") not in codes:
                d = ("L01", "L02") if net == "I" else ("L11", "L12")
                cov["relatedAccumulators"][:0] = [
                    _related("Deductible", "Individual", d[0], net),
                    _related("Deductible", "Family", d[1], net),
                ]
    return out


def benefits_for_service(plan: str, req: ServiceRequest) -> list[JSON]:
    """Benefits of `plan` ("PPO" or "HDHP") for one requested service; [] for an unknown code."""
    entry = SERVICES.get(req.code.upper())
    if entry is None:
        return []
    benefits: list[JSON] = entry[1](req)
    if benefits and not any(b["isInitialBenefit"] == "Y" for b in benefits):
        benefits[0]["isInitialBenefit"] = "Y"
    return _to_hdhp(benefits) if plan == "HDHP" else benefits


# ---- members ---------------------------------------------------------------------------------------

PLAN_IDENTIFIERS = {"PPO": "3~PPO-GOLD-2026", "HDHP": "3~HDHP-SILVER-2026"}
LEGACY_PLAN_IDENTIFIER = "3~"  # the seed's example value; accepted for every active member
PERIOD = {"datetimeBegin": "2026-01-01", "datetimeEnd": "2026-12-31"}


def _acc(
    code: str,
    level: str,
    network: str,
    ex: str,
    limit: str,
    current: str,
    *,
    limit_type: str | None = None,
    description: str | None = None,
    met: int | None = None,
    needed: int | None = None,
) -> JSON:
    remaining = max(Decimal(limit) - Decimal(current), Decimal(0))
    acc: JSON = {
        "code": code,
        "level": level,
        "networkIndicator": "InNetwork" if network == "I" else "OutofNetwork",
        "networkIndicatorCode": network,
        "accumExCode": ex,
        "deductibleCode": "",
        "frequency": "Calendar Year",
        "benefitProductType": "Medical",
        "limitValue": limit,
        "currentValue": current,
        "calculatedValue": f"{remaining:.2f}" if "." in limit else str(remaining),
        "effectivePeriod": dict(PERIOD),
    }
    if description:
        acc["description"] = description
    if limit_type:
        acc["limitType"] = limit_type
    if met is not None:
        acc["numOfIndividualsMet"] = met
        acc["numOfIndividualsNeededToMeet"] = needed
    return acc


def _ppo_accumulators(
    *,
    ded: str = "0.00",
    fam_ded: str = "0.00",
    fam_met: int = 0,
    oop: str = "0.00",
    fam_oop: str = "0.00",
    pt_used: str = "0",
    dme_used: str = "0.00",
    ded_limit: str = "1500.00",
    fam_ded_limit: str = "3000.00",
    oop_limit: str = "6500.00",
    fam_oop_limit: str = "13000.00",
    pt_limit_type: str = "Counter",
) -> list[JSON]:
    return [
        _acc("Deductible", "Individual", "I", "L01", ded_limit, ded, met=fam_met, needed=2),
        _acc("Deductible", "Family", "I", "L02", fam_ded_limit, fam_ded, met=fam_met, needed=2),
        _acc("OOP Max", "Individual", "I", "L03", oop_limit, oop),
        _acc("OOP Max", "Family", "I", "L04", fam_oop_limit, fam_oop),
        _acc("Limit", "Individual", "I", "L05", "20", pt_used, limit_type=pt_limit_type, description="Physical therapy visits"),
        _acc("Limit", "Individual", "I", "L06", "1500.00", dme_used, limit_type="Dollar", description="Durable medical equipment"),
        _acc("Deductible", "Individual", "O", "L11", "3000.00", "0.00"),
        _acc("Deductible", "Family", "O", "L12", "6000.00", "0.00"),
        _acc("OOP Max", "Individual", "O", "L13", "13000.00", "0.00"),
        _acc("OOP Max", "Family", "O", "L14", "26000.00", "0.00"),
    ]


@dataclass(frozen=True)
class Member:
    membership_id: str
    description: str
    plan: str  # "PPO" or "HDHP"
    family: str  # members of one family answer together in the Accumulators API
    subscriber: bool
    active: bool = True
    accumulators: list[JSON] = field(default_factory=list)

    @property
    def plan_identifier(self) -> str:
        return PLAN_IDENTIFIERS[self.plan]


_MEMBER_LIST = [
    Member(
        "5~186103330+10+7+20260101+793853+8A+828",
        "PPO subscriber of family A: $855 of the $1500 deductible used ($645 left), OOP $1710 of $6500",
        "PPO", "A", True,
        accumulators=_ppo_accumulators(ded="855.00", fam_ded="1975.00", fam_met=1, oop="1710.00", fam_oop="4020.00"),
    ),
    Member(
        "5~186103331+10+7+20260101+793854+8A+829",
        "PPO dependent of family A, deductible partly met: $1120 of $1500 ($380 left), family $1975 of $3000, "
        "OOP $2310 of $6500, 14 of 20 PT visits used",
        "PPO", "A", False,
        accumulators=_ppo_accumulators(ded="1120.00", fam_ded="1975.00", fam_met=1, oop="2310.00", fam_oop="4020.00", pt_used="14"),
    ),
    Member(
        "5~186103332+10+7+20260101+793860+8A+831",
        "PPO dependent of family B whose FAMILY deductible is met ($3000 of $3000, 2 of 2 individuals met) "
        "while the own individual deductible shows $1300 left ($200 of $1500)",
        "PPO", "B", False,
        accumulators=_ppo_accumulators(ded="200.00", fam_ded="3000.00", fam_met=2, oop="450.00", fam_oop="5200.00"),
    ),
    Member(
        "5~186103337+10+7+20260101+793860+8A+836",
        "PPO subscriber of family B: individual deductible met ($1500 of $1500)",
        "PPO", "B", True,
        accumulators=_ppo_accumulators(ded="1500.00", fam_ded="3000.00", fam_met=2, oop="2600.00", fam_oop="5200.00"),
    ),
    Member(
        "5~186103338+10+7+20260101+793860+8A+837",
        "PPO dependent of family B: individual deductible met ($1500 of $1500)",
        "PPO", "B", False,
        accumulators=_ppo_accumulators(ded="1500.00", fam_ded="3000.00", fam_met=2, oop="2150.00", fam_oop="5200.00"),
    ),
    Member(
        "5~186103333+10+7+20260101+793861+8A+832",
        "PPO subscriber, OOP max met ($6500 of $6500; deductible met too): in-network covered care costs $0",
        "PPO", "C", True,
        accumulators=_ppo_accumulators(ded="1500.00", fam_ded="1500.00", oop="6500.00", fam_oop="6500.00"),
    ),
    Member(
        "5~186103334+10+7+20260101+793862+8A+833",
        "PPO subscriber with 2 physical-therapy visits left of 20 (counter limit L05: 18 used)",
        "PPO", "D", True,
        accumulators=_ppo_accumulators(ded="1500.00", fam_ded="1500.00", oop="1840.00", fam_oop="1840.00", pt_used="18"),
    ),
    Member(
        "5~186103335+10+7+20260101+793863+8A+834",
        "PPO subscriber with $350 left of a $1500 durable-medical-equipment dollar limit (L06: $1150 used)",
        "PPO", "E", True,
        accumulators=_ppo_accumulators(ded="1500.00", fam_ded="1500.00", oop="2100.00", fam_oop="2100.00", dme_used="1150.00"),
    ),
    Member(
        "5~186103336+10+7+20260101+793864+8A+835",
        "HDHP subscriber, nothing met yet: deductible $3200 first for everything but preventive care, OOP $7000",
        "HDHP", "F", True,
        accumulators=_ppo_accumulators(
            ded_limit="3200.00", fam_ded_limit="6400.00", oop_limit="7000.00", fam_oop_limit="14000.00"
        ),
    ),
    Member(
        "5~186103340+10+7+20260101+793865+8A+840",
        "PPO subscriber who has used all 20 physical-therapy visits (L05: 20 of 20): "
        "another PT visit is over the limit and the member pays all of it",
        "PPO", "G", True,
        accumulators=_ppo_accumulators(ded="1500.00", fam_ded="1500.00", oop="2460.00", fam_oop="2460.00", pt_used="20"),
    ),
    Member(
        "5~186103341+10+7+20260101+793866+8A+841",
        "PPO subscriber with 1 physical-therapy visit left of 20 (L05: 19 used): the next visit uses the last one",
        "PPO", "H", True,
        accumulators=_ppo_accumulators(ded="640.00", fam_ded="640.00", oop="1290.00", fam_oop="1290.00", pt_used="19"),
    ),
    Member(
        "5~186103342+10+7+20260101+793867+8A+842",
        "PPO subscriber $20 from the OOP max ($6480 of $6500, all copays) with the deductible untouched "
        "($1500 left): the next copay, deductible or ER visit hits the OOP max",
        "PPO", "I", True,
        accumulators=_ppo_accumulators(oop="6480.00", fam_oop="6480.00", pt_used="12"),
    ),
    Member(
        "5~186103343+10+7+20260101+793868+8A+843",
        "HDHP subscriber with $100 of the $3200 deductible left (OOP $3100 of $7000): "
        "an office visit finishes the deductible, then the copay starts",
        "HDHP", "J", True,
        accumulators=_ppo_accumulators(
            ded="3100.00", fam_ded="3100.00", oop="3100.00", fam_oop="3100.00",
            ded_limit="3200.00", fam_ded_limit="6400.00", oop_limit="7000.00", fam_oop_limit="14000.00",
        ),
    ),
    Member(
        "5~186103344+10+7+20260101+793870+8A+844",
        "PPO subscriber whose PT visit limit (L05, 16 of 20 left) carries limitType \"Visits\", neither Dollar "
        "nor Counter: a PT estimate is refused (INVALID_ARGUMENT) for that provider",
        "PPO", "K", True,
        accumulators=_ppo_accumulators(
            ded="300.00", fam_ded="300.00", oop="420.00", fam_oop="420.00", pt_used="4", pt_limit_type="Visits"
        ),
    ),
    Member(
        "5~186103339+10+7+20250101+793869+8A+899",
        "Inactive member (coverage ended 2025-12-31): both APIs answer 400 ACTIVE MEMBER COVERAGE NOT FOUND",
        "PPO", "Z", True, active=False,
    ),
]

MEMBERS: dict[str, Member] = {m.membership_id: m for m in _MEMBER_LIST}
"""Membership id → member. Any id not listed here answers like the inactive member."""


def _identifier(membership_id: str) -> JSON:
    source, _, value = membership_id.partition("~")
    return {"idSource": source, "idType": "memberships", "idValue": value, "resourceId": membership_id}


def accumulators_answer(member: Member) -> JSON:
    """The Accumulators API answer for `member`: the whole family (subscriber + dependents). A fresh structure."""
    answer: JSON = json.loads(accumulators_json(member.membership_id))
    return answer


@lru_cache(maxsize=None)
def accumulators_json(membership_id: str) -> bytes:
    """The Accumulators API answer as JSON, built once per member (the catalogue never changes while serving)."""
    member = MEMBERS[membership_id]
    family = [m for m in _MEMBER_LIST if m.family == member.family and m.active]

    def entry(m: Member) -> JSON:
        return {
            "privacyRestriction": "false",
            "membershipIdentifier": _identifier(m.membership_id),
            "accumulators": m.accumulators,
        }

    subscriber = next((m for m in family if m.subscriber), None)
    memberships: JSON = {"dependents": [entry(m) for m in family if not m.subscriber]}
    if subscriber is not None:
        memberships["subscriber"] = entry(subscriber)
    return json.dumps({"readAccumulatorsResponse": {"memberships": memberships}}).encode()


# ---- JSON ------------------------------------------------------------------------------------------

_EXACT_ENCODER = msgspec.json.Encoder(decimal_format="number")


def dumps_exact(data: Any) -> str:
    """JSON with Decimal amounts written as JSON numbers, digit for digit (the payer sends numbers, not floats).

    msgspec writes each Decimal's own text unquoted, in C: the standard library's encoder (with a marker and a
    regular expression for the Decimals) was a fifth of the stand-in's CPU per benefit answer."""
    return _EXACT_ENCODER.encode(data).decode()


@lru_cache(maxsize=4096)
def service_answer_json(plan: str, req: ServiceRequest) -> str:
    """One serviceInfo entry of the Benefits API answer, serialised once per (plan, request) and then reused."""
    return dumps_exact({
        "serviceCodeInfo": [{"code": req.code, "type": req.code_type}],
        "placeOfService": [{"code": c} for c in req.places_of_service],
        "providerType": [{"code": c} for c in req.provider_types],
        "providerSpecialty": [{"code": c} for c in req.specialties],
        "benefit": benefits_for_service(plan, req),
    })
