"""What EstimateFromEligibility must answer for the SBX6xxxxx sandbox members: an oracle kept apart from the code.

Worked out by hand from `shared/spec/estimate-from-eligibility.md` (D2-D9, §5) and the rule book
(`cost-share-rules.md`), the way the spec's §8 examples are; each expectation carries its derivation in `why`.
The members' 271 answers are `server/sandbox/stedi_catalogue.py` (`cost_share_choice` ... `lapsed`);
`docs/sandbox-members.md` shows the same requests for grpcurl.

How to run a case: make the check (CheckEligibility with `member`'s inquiry, or EstimateFromEligibility with the
inquiry itself), then send `service` and the `providers` in order; with `source` CHECK_ID the stored check's id is
sent, with INQUIRY the inquiry. Each provider's answer must match its `Expected` (status; for OK also the service
type used, member pays point/low/high, completeness and exactly the set of assumption codes), or the RPC must
fail with `Refusal` (gRPC status + `google.rpc.ErrorInfo.reason`). Plan pays = allowed - member pays (point).
For NOT_FOUND providers only the status is asserted (the spec gives no numbers and no assumptions for them).

Member pays values are exact Decimal strings in dollars; compare with `Decimal(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

Network = Literal["IN", "OUT"]
Role = Literal["", "PRIMARY_CARE", "SPECIALIST"]
Completeness = Literal["COMPLETE", "AMBIGUOUS", "INCOMPLETE"]
Source = Literal["CHECK_ID", "INQUIRY"]

# The assumption codes of spec §4 D9, by kind.
GAP_CODES: Final = frozenset({
    "DEDUCTIBLE_NOT_SENT", "DEDUCTIBLE_REMAINING_NOT_SENT", "OUT_OF_POCKET_NOT_SENT",
    "OUT_OF_POCKET_REMAINING_NOT_SENT", "LIMIT_REMAINING_NOT_SENT", "COPAY_INVALID", "COINSURANCE_INVALID",
})
AMBIGUITY_CODES: Final = frozenset({
    "AMBIGUOUS_COPAY", "AMBIGUOUS_COINSURANCE", "DEDUCTIBLE_APPLICABILITY_UNKNOWN", "DEDUCTIBLE_SIGNALS_CONFLICT",
    "NOT_COVERED_LINE_PRESENT", "AMBIGUOUS_LIMIT", "SEVERAL_PLANS",
})
INFO_CODES: Final = frozenset({
    "COPAY_NOT_SENT", "COINSURANCE_NOT_SENT", "NOT_COVERED", "AUTH_REQUIRED", "ACCUMULATOR_FLAGGED", "AMOUNT_ROUNDED",
    "LIMITATION_NOT_MODELLED", "OUT_OF_NETWORK_BALANCE_BILLING_EXCLUDED",
})
ALL_CODES: Final = GAP_CODES | AMBIGUITY_CODES | INFO_CODES
OON: Final = "OUT_OF_NETWORK_BALANCE_BILLING_EXCLUDED"


@dataclass(frozen=True)
class Member:
    """The inquiry's patient (the subscriber); `payer_id` SBX01 unless stated, provider: NPI 1999999984."""

    member_id: str
    first_name: str
    last_name: str
    date_of_birth: str  # ISO
    payer_id: str = "SBX01"


@dataclass(frozen=True)
class Service:
    """`ServiceToEstimate`: a CPT4/HCPCS procedure and/or explicit service type codes, and a place of service."""

    procedure: str = ""
    code_type: Literal["CPT4", "HCPCS"] = "CPT4"  # of `procedure`; meaningless when it is empty
    service_type_codes: tuple[str, ...] = ()
    place_of_service_code: str = ""


@dataclass(frozen=True)
class Provider:
    provider_id: str
    network: Network
    allowed_amount: str  # USD, Decimal string
    role: Role = ""


@dataclass(frozen=True)
class Expected:
    """One provider's answer. For status OK every field is asserted; for NOT_FOUND only the status."""

    provider: Provider
    status: Literal["OK", "NOT_FOUND"]
    why: str
    service_type_code: str = ""
    member_pays: str | None = None  # the point
    low: str | None = None
    high: str | None = None
    completeness: Completeness | None = None
    assumptions: frozenset[str] = frozenset()

    @property
    def plan_pays(self) -> Decimal | None:
        if self.member_pays is None:
            return None
        return Decimal(self.provider.allowed_amount) - Decimal(self.member_pays)


@dataclass(frozen=True)
class Refusal:
    """The whole RPC fails: gRPC status code name and ErrorInfo reason."""

    code: str
    reason: str
    why: str


@dataclass(frozen=True)
class Case:
    name: str
    member: Member
    service: Service
    providers: tuple[Provider, ...]
    outcome: tuple[Expected, ...] | Refusal  # per provider, in request order
    sources: tuple[Source, ...] = ("CHECK_ID", "INQUIRY")


def ok(provider: Provider, stc: str, point: str, low: str, high: str, completeness: Completeness, codes: set[str],
       why: str) -> Expected:
    return Expected(provider, "OK", why, stc, point, low, high, completeness, frozenset(codes))


def not_found(provider: Provider, why: str) -> Expected:
    return Expected(provider, "NOT_FOUND", why)


# ---------------------------------------------------------------- the members (server/sandbox/stedi_catalogue.py)

ORTIZ: Final = Member("SBX600001", "Jamie", "Ortiz", "1988-03-09")  # cost-share choice, non-covered lines
BROOKS: Final = Member("SBX600002", "Taylor", "Brooks", "1983-11-02")  # deductible signals
CHEN: Final = Member("SBX600003", "Riley", "Chen", "1991-06-18")  # totals without remaining, inconsistent OOP
SANTOS: Final = Member("SBX600004", "Avery", "Santos", "1979-12-01")  # no deductible in / no OOP out
NGUYEN: Final = Member("SBX600005", "Casey", "Nguyen", "1986-09-25")  # HMO, limits, nothing out of network
LEWIS: Final = Member("SBX600006", "Harper", "Lewis", "1994-02-27")  # two plans
REYES: Final = Member("SBX600007", "Elliot", "Reyes", "1975-07-14")  # invalid values beside valid ones
ELLIS: Final = Member("SBX600008", "Rowan", "Ellis", "1969-04-30")  # active and inactive status lines
PRICE: Final = Member("SBX600009", "Morgan", "Price", "1977-08-17")  # plan dates ended last year

OFFICE: Final = Service("99213", place_of_service_code="11")


def _in(pid: str, amount: str, role: Role = "") -> Provider:
    return Provider(pid, "IN", amount, role)


def _out(pid: str, amount: str) -> Provider:
    return Provider(pid, "OUT", amount)


# ORTIZ: D in = min(I 600, F 1500) = 600, O in = min(3000, 7000); D out = min(2000, 4000), O out 8000 / 16000.
_TELE = _in("telehealth", "120.00")
_PCP, _SPEC = _in("pcp", "120.00", "PRIMARY_CARE"), _in("specialist", "120.00", "SPECIALIST")
_ANY = _in("any", "120.00")
_ORTIZ_OON = _out("out-of-network", "120.00")
_UC = _in("urgent-care", "200.00")
_THERAPIST = _in("therapist", "150.00")
_EYE_IN, _EYE_OUT = _in("optometrist", "140.00"), _out("optometrist-oon", "140.00")

# BROOKS: D in = min(I 900, F 2200) = 900, O in = min(4000, 8500) = 4000.
_MRI = _in("imaging", "1200.00")
_ER = _in("er", "2000.00")
_CHIRO = _in("chiro", "85.00")
_LAB = _in("lab", "150.00")
_BROOKS_UC = _in("urgent-care", "200.00")

# CHEN: in: D individual total 1500 only, O individual 4500 (INCONSISTENT: 6000 - 4500 != met 1000);
# out: D individual 2500 left, O individual total 12000 only.
_CHEN_IN, _CHEN_UC, _CHEN_OUT = _in("office", "200.00"), _in("urgent-care", "150.00"), _out("office-oon", "200.00")

# SANTOS: in: no deductible line at all, O individual 3000; out: D individual 4000, no OOP line at all.
_HOSP_IN, _HOSP_OUT = _in("hospital", "1000.00"), _out("hospital-oon", "1000.00")
_OUTPATIENT = Service(service_type_codes=("50",), place_of_service_code="22")
_SANTOS_OFFICE = _in("office", "120.00")

# NGUYEN: in only: D = min(I 0, F 400) = 0 (met: both D6 treatments agree, no applicability flag), O = 2200.
_PT_IN, _PT_OUT = _in("pt-clinic", "140.00"), _out("pt-clinic-oon", "140.00")
_NGUYEN_CHIRO, _NGUYEN_THERAPIST = _in("chiro", "70.00"), _in("therapist", "150.00")
_DME, _NGUYEN_EYE, _NGUYEN_PCP = _in("dme", "500.00"), _in("optometrist", "150.00"), _in("pcp", "200.00")

# LEWIS: D in = min(I 0, F 600) = 0 (met), O in = min(2100, 5200) = 2100.
_LEWIS_OFFICE, _LEWIS_MRI = _in("office", "120.00"), _in("imaging", "1000.00")
# REYES: D in = min(I 0, F 800) = 0 (met), O in = min(3000, 7000) = 3000.
_REYES_OFFICE, _REYES_UC = _in("office", "150.00"), _in("urgent-care", "200.00")
_REFUSED = (_in("office", "120.00"),)

CASES: Final[tuple[Case, ...]] = (
    # ---------------------------------------------------------------- SBX600001: D3/D4/D5
    Case("ortiz-telehealth-pos-filter", ORTIZ, Service("99213", place_of_service_code="02"), (_TELE,), (
        ok(_TELE, "98", "10.00", "10.00", "10.00", "COMPLETE", set(),
           "D2 98; D4.1 POS 02 keeps the $10 copay (the 25/50 lines are POS 11), coinsurance 0 has no POS so stays; "
           "D6 service-level C 98 amount 0 -> waived only; H6 copay 10, H10 0 %"),
    )),
    Case("ortiz-office-role-filter", ORTIZ, OFFICE, (_PCP, _SPEC, _ANY), (
        ok(_PCP, "98", "25.00", "25.00", "25.00", "COMPLETE", set(),
           "POS 11 keeps 25/50; role PRIMARY_CARE matches ' PCP ' of 'PCP OFFICE VISIT' -> 25; C 98 amount 0: waived"),
        ok(_SPEC, "98", "50.00", "50.00", "50.00", "COMPLETE", set(),
           "POS 11 keeps 25/50; role SPECIALIST keeps 50; waived -> copay 50"),
        ok(_ANY, "98", "50.00", "25.00", "50.00", "AMBIGUOUS", {"AMBIGUOUS_COPAY"},
           "no role: 25 and 50 stay, point = largest 50, range down to 25"),
    )),
    Case("ortiz-office-out-of-network", ORTIZ, OFFICE, (_ORTIZ_OON,), (
        ok(_ORTIZ_OON, "98", "120.00", "36.00", "120.00", "AMBIGUOUS",
           {"COPAY_NOT_SENT", "DEDUCTIBLE_APPLICABILITY_UNKNOWN", OON},
           "98 out: no copay (0), coinsurance 30; the C 98 line is Y -> no signal out of network; point applies "
           "(30 > 0): D 2000 takes all 120; waived: 30 % x 120 = 36"),
    )),
    Case("ortiz-urgent-care-rounded-copay", ORTIZ, Service("99214", place_of_service_code="20"), (_UC,), (
        ok(_UC, "UC", "34.13", "34.13", "34.13", "COMPLETE", {"AMOUNT_ROUNDED", "COINSURANCE_NOT_SENT"},
           "D2 UC first; copay 34.125 rounded half-up to 34.13; no UC coinsurance in network -> 0; text 'NO "
           "DEDUCTIBLE' (group 2) -> waived only; H6 copay 34.13"),
    )),
    Case("ortiz-psychotherapy-not-covered-line", ORTIZ, Service("90834", place_of_service_code="11"), (_THERAPIST,), (
        ok(_THERAPIST, "A6", "20.00", "20.00", "150.00", "AMBIGUOUS", {"NOT_COVERED_LINE_PRESENT"},
           "D2 A6: copay 20, coinsurance 0; C A6 amount 0 -> waived; an I line for A6 (W) -> covered N is the high "
           "end: member pays all 150"),
    )),
    Case("ortiz-eye-exam-not-covered", ORTIZ, Service("92004", place_of_service_code="11"), (_EYE_IN, _EYE_OUT), (
        ok(_EYE_IN, "AL", "140.00", "140.00", "140.00", "COMPLETE", {"NOT_COVERED"},
           "D2 AL: no copay/coinsurance for AL; I line for AL (W) -> covered N, member pays all, nothing credited"),
        ok(_EYE_OUT, "AL", "140.00", "140.00", "140.00", "COMPLETE", {"NOT_COVERED", OON},
           "same out of network (the I line is W): not covered + the out-of-network INFO flag only"),
    )),
    # ---------------------------------------------------------------- SBX600002: D6 signals
    Case("brooks-mri-copay-waived-after-deductible", BROOKS, Service("70551", place_of_service_code="11"), (_MRI,), (
        ok(_MRI, "62", "960.00", "960.00", "960.00", "COMPLETE", {"AUTH_REQUIRED"},
           "D2 62; copay 100, coinsurance 20; 'COPAY WAIVED AFTER DEDUCTIBLE' (group 1) -> applies, copay-after-ded N: "
           "H9 900, H7 -> H10 20 % x 300 = 60 -> 960; the 1 line for 62 has auth Y"),
    )),
    Case("brooks-er-signals-conflict", BROOKS, Service("99284", place_of_service_code="23"), (_ER,), (
        ok(_ER, "86", "1145.00", "335.00", "1145.00", "AMBIGUOUS", {"DEDUCTIBLE_SIGNALS_CONFLICT"},
           "86 (W): copay 150 POS 23, coinsurance 10; C 86 amount 500 -> applies, 'NOT SUBJECT TO DEDUCTIBLE' is "
           "group 2 (before group 3) -> does not apply; both -> point applies (10 > 0): 900 + 150 + 10 % x 950 = "
           "1145; waived: 150 + 10 % x 1850 = 335"),
    )),
    Case("brooks-chiropractic-hedged-text", BROOKS, Service("98940", place_of_service_code="11"), (_CHIRO,), (
        ok(_CHIRO, "33", "30.00", "30.00", "85.00", "AMBIGUOUS", {"DEDUCTIBLE_APPLICABILITY_UNKNOWN"},
           "33: copay 30, coinsurance 0; 'VERIFY IF SUBJECT TO DEDUCTIBLE' (VERIFY, IF) and 'MAY BE SUBJECT TO "
           "DEDUCTIBLE' (MAY) are ignored -> no signal; point waived (0 %) -> 30; applies: D 900 takes all 85"),
    )),
    Case("brooks-urgent-care-deductible-applies-text", BROOKS, Service("99214", place_of_service_code="20"),
         (_BROOKS_UC,), (
        ok(_BROOKS_UC, "UC", "200.00", "200.00", "200.00", "COMPLETE", {"COINSURANCE_NOT_SENT"},
           "UC: copay 60, no coinsurance (0 -> shape default would waive); 'DEDUCTIBLE APPLIES' (group 3) -> "
           "applies only: D 900 takes all 200"),
    )),
    Case("brooks-lab-service-deductible", BROOKS, Service("80053", place_of_service_code="81"), (_LAB,), (
        ok(_LAB, "5", "150.00", "150.00", "150.00", "COMPLETE", {"COPAY_NOT_SENT"},
           "D2 5: coinsurance 0, no copay; service-level C 5 amount 75 > 0 -> applies only (overrides the 0 % shape "
           "default; 75 itself unused): plan-level D 900 takes all 150"),
    )),
    # ---------------------------------------------------------------- SBX600003: D7 totals only, flagged bucket
    Case("chen-office-deductible-remaining-not-sent", CHEN, OFFICE, (_CHEN_IN,), (
        ok(_CHEN_IN, "98", "200.00", "72.00", "200.00", "INCOMPLETE",
           {"DEDUCTIBLE_APPLICABILITY_UNKNOWN", "DEDUCTIBLE_REMAINING_NOT_SENT", "ACCUMULATOR_FLAGGED"},
           "98 in: copay 40, coinsurance 20, no signal -> point applies; D individual total 1500 (alt 0) takes all "
           "200; D 0 or waived: 40 + 20 % x 160 = 72; the OOP bucket used is INCONSISTENT"),
    )),
    Case("chen-urgent-care-deductible-not-used", CHEN, Service("99214", place_of_service_code="20"), (_CHEN_UC,), (
        ok(_CHEN_UC, "UC", "50.00", "50.00", "50.00", "COMPLETE", {"COINSURANCE_NOT_SENT", "ACCUMULATOR_FLAGGED"},
           "UC: copay 50, 'DEDUCTIBLE WAIVED' -> waived only, so no deductible flag; the OOP bucket is still used "
           "(flagged, INFO)"),
    )),
    Case("chen-office-out-of-network-oop-remaining-not-sent", CHEN, OFFICE, (_CHEN_OUT,), (
        ok(_CHEN_OUT, "98", "200.00", "0.00", "200.00", "INCOMPLETE",
           {"COPAY_NOT_SENT", "DEDUCTIBLE_APPLICABILITY_UNKNOWN", "OUT_OF_POCKET_REMAINING_NOT_SENT", OON},
           "98 out: coinsurance 40; point applies, D out 2500 takes 200; waived 80; OOP out total 12000 only, "
           "alternative 0 = met -> H4, member pays 0"),
    )),
    # ---------------------------------------------------------------- SBX600004: D7 nothing sent
    Case("santos-outpatient-deductible-not-sent", SANTOS, _OUTPATIENT, (_HOSP_IN,), (
        ok(_HOSP_IN, "50", "200.00", "200.00", "1000.00", "INCOMPLETE",
           {"COPAY_NOT_SENT", "DEDUCTIBLE_APPLICABILITY_UNKNOWN", "DEDUCTIBLE_NOT_SENT"},
           "explicit STC 50: coinsurance 20 (47/48/50 line); no signal, no level known 0; no deductible in -> point "
           "none: 20 % x 1000 = 200; applies with a deductible = allowed: 1000"),
    )),
    Case("santos-outpatient-oop-not-sent", SANTOS, _OUTPATIENT, (_HOSP_OUT,), (
        ok(_HOSP_OUT, "50", "1000.00", "400.00", "1000.00", "INCOMPLETE",
           {"COPAY_NOT_SENT", "DEDUCTIBLE_APPLICABILITY_UNKNOWN", "OUT_OF_POCKET_NOT_SENT", OON},
           "50 out: coinsurance 40; point applies, D out 4000 takes all 1000, no OOP line out -> no cap; waived: "
           "40 % x 1000 = 400"),
    )),
    Case("santos-office-deductible-not-used", SANTOS, OFFICE, (_SANTOS_OFFICE,), (
        ok(_SANTOS_OFFICE, "98", "30.00", "30.00", "30.00", "COMPLETE", {"COINSURANCE_NOT_SENT"},
           "98: copay 30, 'DEDUCTIBLE DOES NOT APPLY' -> waived only, so DEDUCTIBLE_NOT_SENT is not raised"),
    )),
    # ---------------------------------------------------------------- SBX600005: D8 limits, HMO
    Case("nguyen-physical-therapy-visits-left", NGUYEN, Service("97110", place_of_service_code="11"),
         (_PT_IN, _PT_OUT), (
        ok(_PT_IN, "PT", "35.00", "35.00", "35.00", "COMPLETE", {"COINSURANCE_NOT_SENT"},
           "D2 PT: copay 35; F PT VS 29 = 8 visits left (23 = 20 is the total) -> counter 8, sub-chain copay 35; "
           "D met -> no applicability flag"),
        not_found(_PT_OUT, "HMO: no PT line (nor any line) for out of network, no I line -> NOT_FOUND"),
    )),
    Case("nguyen-chiropractic-limit-total-only", NGUYEN, Service("98940", place_of_service_code="11"),
         (_NGUYEN_CHIRO,), (
        ok(_NGUYEN_CHIRO, "33", "25.00", "25.00", "70.00", "INCOMPLETE",
           {"COINSURANCE_NOT_SENT", "LIMIT_REMAINING_NOT_SENT"},
           "33: copay 25; F 33 VS 23 = 12 only -> point 12 visits left (copay 25), alternative exhausted: member "
           "pays all 70 (over limit)"),
    )),
    Case("nguyen-psychotherapy-ambiguous-limit", NGUYEN, Service("90834", place_of_service_code="11"),
         (_NGUYEN_THERAPIST,), (
        ok(_NGUYEN_THERAPIST, "A6", "150.00", "20.00", "150.00", "AMBIGUOUS",
           {"COINSURANCE_NOT_SENT", "AMBIGUOUS_LIMIT"},
           "A6: copay 20; two F A6 VS 29 lines, 6 and 0 -> point = smallest 0: exhausted, member pays all 150; "
           "alternative 6 -> copay 20"),
    )),
    Case("nguyen-dme-dollar-limit", NGUYEN,
         Service("E0110", "HCPCS", service_type_codes=("DM",), place_of_service_code="12"), (_DME,), (
        ok(_DME, "DM", "200.00", "200.00", "200.00", "COMPLETE", {"COPAY_NOT_SENT"},
           "explicit DM: coinsurance 20; F DM 29 amount 300 = dollar limit; 20 % x 500 = 100, plan share 400 "
           "capped at 300 -> 100 over limit; member 200"),
    )),
    Case("nguyen-eye-exam-limitation-not-modelled", NGUYEN, Service("92004", place_of_service_code="11"),
         (_NGUYEN_EYE,), (
        ok(_NGUYEN_EYE, "AL", "10.00", "10.00", "10.00", "COMPLETE",
           {"COINSURANCE_NOT_SENT", "LIMITATION_NOT_MODELLED"},
           "AL: copay 10; the F AL line is an age (S7), not a counter or dollar limit -> not modelled, INFO"),
    )),
    Case("nguyen-preventive-falls-through-to-98", NGUYEN, Service("99395", place_of_service_code="11"),
         (_NGUYEN_PCP,), (
        ok(_NGUYEN_PCP, "98", "15.00", "15.00", "15.00", "COMPLETE", {"COINSURANCE_NOT_SENT"},
           "D2 BZ, 98, 96: BZ has no line -> D3 uses the first STC with a value, 98: copay 15"),
    )),
    # ---------------------------------------------------------------- SBX600006: two plans
    Case("lewis-office-two-plans", LEWIS, OFFICE, (_LEWIS_OFFICE,), (
        ok(_LEWIS_OFFICE, "98", "35.00", "20.00", "35.00", "AMBIGUOUS", {"AMBIGUOUS_COPAY", "SEVERAL_PLANS"},
           "two active STC-30 plans; 98 copays 20 and 35 compete -> point 35; coinsurance 0; D met -> no flag"),
    )),
    Case("lewis-mri-two-coinsurances", LEWIS, Service("70551", place_of_service_code="11"), (_LEWIS_MRI,), (
        ok(_LEWIS_MRI, "62", "200.00", "100.00", "200.00", "AMBIGUOUS",
           {"AMBIGUOUS_COINSURANCE", "COPAY_NOT_SENT", "SEVERAL_PLANS"},
           "62: coinsurance 10 and 20 -> point 20 % x 1000 = 200, low 10 % = 100; D met"),
    )),
    # ---------------------------------------------------------------- SBX600007: invalid values
    Case("reyes-office-negative-copay", REYES, OFFICE, (_REYES_OFFICE,), (
        ok(_REYES_OFFICE, "98", "40.00", "40.00", "40.00", "INCOMPLETE", {"COPAY_INVALID"},
           "98 copays 40 and -25: -25 dropped (never reinterpreted) -> 40; coinsurance 0; D met; a GAP flag makes "
           "it INCOMPLETE even with low = high"),
    )),
    Case("reyes-urgent-care-percent-as-whole-number", REYES, Service("99214", place_of_service_code="20"),
         (_REYES_UC,), (
        ok(_REYES_UC, "UC", "95.00", "95.00", "95.00", "INCOMPLETE", {"COINSURANCE_INVALID"},
           "UC: copay 50; coinsurance '0.3' and '20' (= 2000 %, dropped) -> 30; D met: 50 + 30 % x 150 = 95"),
    )),
    # ---------------------------------------------------------------- refusals (D1)
    Case("ellis-status-unclear", ELLIS, OFFICE, _REFUSED,
         Refusal("FAILED_PRECONDITION", "COVERAGE_STATUS_UNCLEAR",
                 "STC 30 has an active (1) and an inactive (6) status line -> active = null")),
    Case("price-dates-outside-plan", PRICE, OFFICE, _REFUSED,
         Refusal("FAILED_PRECONDITION", "COVERAGE_INACTIVE",
                 "status 1, but the plan ended 12/31 of last year -> DOS_OUTSIDE_PLAN_DATES, active = false")),
    # §3 refusals reached by older members (spec EX-13, EX-20, EX-21 and §3's table)
    Case("morgan-inactive", Member("SBX500001", "Chris", "Morgan", "1968-11-11"), OFFICE, _REFUSED,
         Refusal("FAILED_PRECONDITION", "COVERAGE_INACTIVE", "EX-13: status 6 for STC 30")),
    Case("not-found-member", Member("SBX999999", "Alex", "Rivera", "1985-04-12"), OFFICE, _REFUSED,
         Refusal("FAILED_PRECONDITION", "MEMBER_NOT_FOUND", "EX-20: AAA 75 -> check NOT_FOUND")),
    Case("payer-unavailable", Member("SBX420001", "Pat", "Quinn", "1980-01-01"), OFFICE, _REFUSED,
         Refusal("UNAVAILABLE", "PAYER_UNAVAILABLE", "EX-21: AAA 42 on every attempt"), sources=("INQUIRY",)),
    Case("clearinghouse-unavailable", Member("SBX503001", "Any", "Body", "1980-01-01"), OFFICE, _REFUSED,
         Refusal("UNAVAILABLE", "CLEARINGHOUSE_UNAVAILABLE", "HTTP 503 on every attempt"), sources=("INQUIRY",)),
    Case("unknown-payer", Member("SBX100001", "Alex", "Rivera", "1985-04-12", payer_id="NOPE1"), OFFICE, _REFUSED,
         Refusal("FAILED_PRECONDITION", "CHECK_FAILED", "400 AAA 79 unknown payer: any other FAILED check")),
)


# ---------------------------------------------------------------- the table of docs/sandbox-members.md


def _service_text(service: Service) -> str:
    parts = [f"`{service.procedure}`" + (" HCPCS" if service.code_type == "HCPCS" else "")] if service.procedure else []
    if service.service_type_codes:
        parts.append("STC " + "/".join(f"`{s}`" for s in service.service_type_codes))
    if service.place_of_service_code:
        parts.append(f"POS `{service.place_of_service_code}`")
    return ", ".join(parts)


def _provider_text(provider: Provider) -> str:
    role = {"PRIMARY_CARE": ", PCP", "SPECIALIST": ", specialist"}[provider.role] if provider.role else ""
    return f"{provider.network.lower()} {provider.allowed_amount}{role}"


def _answer_text(expected: Expected) -> str:
    if expected.status == "NOT_FOUND":
        return "status `NOT_FOUND`"
    codes = ", ".join(f"`{c}`" for c in sorted(expected.assumptions)) or "none"
    return (f"**{expected.member_pays}** ({expected.low}–{expected.high}) {expected.completeness}, "
            f"STC `{expected.service_type_code}`; {codes}")


def markdown_table() -> str:
    """The requests-and-answers table of docs/sandbox-members.md (a test keeps the two identical)."""
    rows = ["| case | member | service | provider | member pays (low–high), completeness, service type; assumptions |",
            "|---|---|---|---|---|"]
    for case in CASES:
        member = f"`{case.member.member_id}`" + (f" payer `{case.member.payer_id}`" if case.member.payer_id != "SBX01"
                                                  else "")
        if isinstance(case.outcome, Refusal):
            provider = ", ".join(_provider_text(p) for p in case.providers)
            answer = f"refused: `{case.outcome.code}` `{case.outcome.reason}`"
            rows.append(f"| {case.name} | {member} | {_service_text(case.service)} | {provider} | {answer} |")
            continue
        for i, expected in enumerate(case.outcome):
            first = i == 0
            rows.append(f"| {case.name if first else '〃'} | {member if first else ''} | "
                        f"{_service_text(case.service) if first else ''} | {_provider_text(expected.provider)} | "
                        f"{_answer_text(expected)} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
