"""The worked examples of estimate-from-eligibility.md §8 as data, shared by the domain and the RPC tests.

Each example names its source (a sandbox member or a captured fixture), the service and the providers, and what
the spec says each provider gets: the point (member / plan pays), the range, completeness, the assumption codes
and, where the spec states them, accumulator remainders after the service (kind, level) -> value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

D = Decimal


@dataclass(frozen=True)
class Expect:
    member: Decimal | None  # None: this provider's status is NOT_FOUND
    plan: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    completeness: str = ""
    codes: frozenset[str] = frozenset()
    after: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # ("oop"|"deductible", "individual"|...) -> after
    service_type: str | None = None


@dataclass(frozen=True)
class Provider:
    provider_id: str
    network: str  # "in" / "out"
    amount: Decimal
    role: str | None = None  # "PRIMARY_CARE" / "SPECIALIST"


@dataclass(frozen=True)
class Example:
    name: str
    source: str  # sandbox member id, or "fixture:<file>"
    procedure: str | None
    place_of_service: str | None
    stcs: tuple[str, ...]
    providers: tuple[Provider, ...]
    expect: tuple[Expect, ...]


def _c(*codes: str) -> frozenset[str]:
    return frozenset(codes)


OON = "OUT_OF_NETWORK_BALANCE_BILLING_EXCLUDED"
UNKNOWN = "DEDUCTIBLE_APPLICABILITY_UNKNOWN"
AMB, COMPLETE = "AMBIGUOUS", "COMPLETE"
AETNA = "fixture:active_aetna.json"

EXAMPLES: tuple[Example, ...] = (
    Example("EX-01", "SBX100001", "99213", "11", (), (Provider("p", "in", D("180.00")),),
            (Expect(D("60.00"), D("120.00"), D("30.00"), D("60.00"), AMB, _c("AMBIGUOUS_COPAY"),
                    {("oop", "individual"): D("4740"), ("oop", "family"): D("10040")}, "98"),)),
    Example("EX-02", "SBX100001", "99213", "11", (), (Provider("p", "in", D("180.00"), "PRIMARY_CARE"),),
            (Expect(D("30.00"), D("150.00"), D("30.00"), D("30.00"), COMPLETE, _c(),
                    {("oop", "individual"): D("4770"), ("oop", "family"): D("10070")}, "98"),)),
    Example("EX-03", "SBX100001", "99213", "11", (), (Provider("p", "out", D("180.00")),),
            (Expect(D("180.00"), D("0.00"), D("72.00"), D("180.00"), AMB, _c("COPAY_NOT_SENT", UNKNOWN, OON),
                    {("deductible", "individual"): D("4820"), ("deductible", "family"): D("9820"),
                     ("oop", "individual"): D("11820"), ("oop", "family"): D("23820")}, "98"),)),
    Example("EX-04", "SBX100001", "99214", "20", (), (Provider("p", "in", D("200.00")),),
            (Expect(D("75.00"), D("125.00"), D("75.00"), D("200.00"), AMB, _c("COINSURANCE_NOT_SENT", UNKNOWN),
                    service_type="UC"),)),
    Example("EX-05", "SBX100001", "99285", None, (), (Provider("p", "in", D("2400.00")),),
            (Expect(D("2000.00"), D("400.00"), D("680.00"), D("2000.00"), AMB, _c(UNKNOWN),
                    {("deductible", "individual"): D("0"), ("deductible", "family"): D("1750"),
                     ("oop", "individual"): D("2800"), ("oop", "family"): D("8100")}, "86"),)),
    Example("EX-06", "SBX100001", None, None, ("48",), (Provider("p", "in", D("20000.00")),),
            (Expect(D("4800.00"), D("15200.00"), D("4000.00"), D("4800.00"), AMB,
                    _c("COPAY_NOT_SENT", UNKNOWN, "AUTH_REQUIRED"),
                    {("oop", "individual"): D("0"), ("oop", "family"): D("5300")}, "48"),)),
    Example("EX-07", "SBX100001", None, None, ("88",), (Provider("p", "in", D("45.00")),), (Expect(None),)),
    Example("EX-08", "SBX200001", "99213", "11", (), (Provider("p", "in", D("600.00")),),
            (Expect(D("460.00"), D("140.00"), D("140.00"), D("460.00"), AMB, _c(UNKNOWN),
                    {("deductible", "individual"): D("0"), ("deductible", "family"): D("900"),
                     ("oop", "individual"): D("3440"), ("oop", "family"): D("7840")}, "98"),)),
    Example("EX-09", "SBX200001", "99213", "11", (), (Provider("p", "out", D("600.00")),),
            (Expect(D("600.00"), D("0.00"), D("240.00"), D("600.00"), AMB, _c("COPAY_NOT_SENT", UNKNOWN, OON),
                    service_type="98"),)),
    Example("EX-10", "SBX300001", "99214", "11", (), (Provider("p", "in", D("180.00"), "SPECIALIST"),),
            (Expect(D("60.00"), D("120.00"), D("60.00"), D("60.00"), COMPLETE, _c(),
                    {("oop", "individual"): D("3140")}, "98"),)),
    Example("EX-11", "SBX300001", None, None, ("50",), (Provider("p", "in", D("2000.00")),),
            (Expect(D("400.00"), D("1600.00"), D("400.00"), D("400.00"), COMPLETE, _c("COPAY_NOT_SENT"),
                    {("deductible", "individual"): D("0"), ("deductible", "family"): D("1500"),
                     ("oop", "individual"): D("2800")}, "50"),)),
    Example("EX-12", "SBX400001", "99213", "11", (), (Provider("p", "in", D("180.00"), "PRIMARY_CARE"),),
            (Expect(D("0.00"), D("180.00"), D("0.00"), D("0.00"), COMPLETE, _c(), service_type="98"),)),
    Example("EX-15", AETNA, "99213", "11", (),
            (Provider("in", "in", D("150.00")), Provider("out", "out", D("150.00"))),
            (Expect(D("30.00"), D("120.00"), D("30.00"), D("150.00"), AMB, _c(UNKNOWN),
                    {("oop", "individual"): D("6970")}, "98"),
             Expect(D("150.00"), D("0.00"), D("75.00"), D("150.00"), AMB, _c("COPAY_NOT_SENT", UNKNOWN, OON),
                    {("deductible", "individual"): D("850"), ("oop", "individual"): D("13850")}, "98"))),
    Example("EX-16", AETNA, "99284", None, (), (Provider("p", "in", D("1200.00")),),
            (Expect(D("672.00"), D("528.00"), D("272.00"), D("672.00"), AMB, _c(UNKNOWN),
                    {("oop", "individual"): D("6328")}, "86"),)),
    Example("EX-17", AETNA, "98940", None, (), (Provider("p", "in", D("85.00")),),
            (Expect(D("25.00"), D("60.00"), D("25.00"), D("85.00"), AMB, _c(UNKNOWN), service_type="33"),)),
    Example("EX-18", AETNA, "99213", "20", (), (Provider("p", "in", D("160.00")),),
            (Expect(D("40.00"), D("120.00"), D("40.00"), D("160.00"), AMB, _c(UNKNOWN), service_type="UC"),)),
)

#: Refused examples: source -> the reason (FAILED_PRECONDITION).
REFUSED: tuple[tuple[str, str, str], ...] = (
    ("EX-13", "SBX500001", "COVERAGE_INACTIVE"),
    ("EX-14", "fixture:inactive_uhc.json", "COVERAGE_INACTIVE"),
)
