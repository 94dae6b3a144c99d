"""Every branch of the rule book (cost-share-rules §4) is reachable through `Estimate` on the sandbox's catalogue.

Each scenario is one member + service + provider sent over a real gRPC socket to the server with its embedded
payer sandbox. The expected member pays are worked out BY HAND from the rule book and the catalogue's figures
(`server/sandbox/payer_catalogue.py`); the arithmetic is in the comment of each row. The second test derives
every scenario's transitions (handler → next handler / kind of end) from the returned path, breakdown and
accumulator states, and checks that together they are exactly the rows of §4.

Catalogue figures used below (remaining = limit − used; D = smallest deductible level, O = smallest OOP level):
  A-sub 828  ded I 1500−855=645,  F 3000−1975=1025 (1 of 2 met); OOP I 6500−1710=4790, F 13000−4020=8980
  A-dep 829  ded I 1500−1120=380, F 1025;  OOP I 6500−2310=4190, F 8980;  PT 20−14=6
  B-dep 831  ded I 1300, F 0, 2 of 2 individuals met (met by count); OOP I 6050, F 7800
  B-sub 836  ded I 0, F 0;         OOP I 6500−2600=3900, F 7800
  C     832  ded I 0, F 1500;      OOP I 0 (met), F 6500
  E     834  ded I 0, F 1500;      OOP I 6500−2100=4400, F 10900; DME dollar limit 1500−1150=350
  G     840  PT 20−20=0
  H     841  ded I 860, F 2360;    OOP I 6500−1290=5210, F 11710; PT 20−19=1
  I     842  ded I 1500, F 3000;   OOP I 6500−6480=20, F 13000−6480=6520
  J     843  HDHP: ded I 3200−3100=100, F 6400−3100=3300; OOP I 7000−3100=3900, F 10900
  K     844  PT limit 16 left with limitType "Visits"
Services (in network, tier 1): 99213/99214 PCP (specialty 08) copay 25, specialist copay 50, no deductible;
97110 PT copay 30, no deductible, counter limit L05; E0110 DME 20 % after the deductible, dollar limit L06;
70551 MRI freestanding 20 % after the deductible; 80053 lab 10 % after the deductible; 97810 not covered;
99281/99284 ER copay 150 first (counts toward the deductible), then deductible, then 20 %, copay continues after
the deductible and after the OOP max. The HDHP puts the deductible first on everything but preventive care.
Every coverage counts copay, coinsurance and deductible toward the OOP max.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import grpc
import pytest
import pytest_asyncio
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.rpc import code_pb2
from google.type import money_pb2
from prometheus_client import CollectorRegistry

from server.app import Application
from server.sandbox.payer_catalogue import MEMBERS
from server.settings import Settings

A_SUB = "5~186103330+10+7+20260101+793853+8A+828"
A_DEP = "5~186103331+10+7+20260101+793854+8A+829"
B_DEP_COUNT = "5~186103332+10+7+20260101+793860+8A+831"
B_SUB = "5~186103337+10+7+20260101+793860+8A+836"
C_OOP_MET = "5~186103333+10+7+20260101+793861+8A+832"
E_DME = "5~186103335+10+7+20260101+793863+8A+834"
G_PT_USED_UP = "5~186103340+10+7+20260101+793865+8A+840"
H_PT_LAST = "5~186103341+10+7+20260101+793866+8A+841"
I_OOP_20 = "5~186103342+10+7+20260101+793867+8A+842"
J_HDHP_100 = "5~186103343+10+7+20260101+793868+8A+843"
K_BAD_LIMIT = "5~186103344+10+7+20260101+793870+8A+844"

CPT, HCPCS = cpb.CODE_TYPE_CPT4, cpb.CODE_TYPE_HCPCS
IN = cpb.NETWORK_CATEGORY_IN_NETWORK
DED, OOP, LIMIT = cpb.ACCUMULATOR_KIND_DEDUCTIBLE, cpb.ACCUMULATOR_KIND_OUT_OF_POCKET_MAX, cpb.ACCUMULATOR_KIND_LIMIT
IND, FAM = cpb.ACCUMULATOR_LEVEL_INDIVIDUAL, cpb.ACCUMULATOR_LEVEL_FAMILY


@dataclass(frozen=True)
class Scenario:
    name: str
    member: str
    service: str
    code_type: int
    place: str
    amount: str
    path: str  # handler codes as returned; "" when the provider is refused
    member_pays: str | None  # None when refused
    tier: str = "1"
    network: int = IN
    specialty: str = ""
    provider_type: str = ""
    designation: str = ""
    status: int = code_pb2.OK
    lines: dict[str, str] = field(default_factory=dict)  # breakdown lines that must hold these values
    after: dict[tuple[int, int], str] = field(default_factory=dict)  # (kind, level) → remaining after


SCENARIOS = [
    # Not covered: member pays all 85.00 (line not_covered); nothing moves.
    Scenario("acupuncture_not_covered", A_DEP, "97810", CPT, "11", "85.00", "H1", "85.00",
             lines={"not_covered": "85.00"}),
    # PT counter 0 (20 of 20 used): member pays all 140.00 (line over_limit); counter stays 0.
    Scenario("pt_visits_used_up", G_PT_USED_UP, "97110", CPT, "11", "140.00", "H1 H2", "140.00",
             lines={"over_limit": "140.00"}, after={(LIMIT, IND): "0"}),
    # PT limit with limitType "Visits" and 16 left: a positive limit of unknown type is refused (§1.1).
    Scenario("pt_limit_of_unknown_type", K_BAD_LIMIT, "97110", CPT, "11", "140.00", "", None,
             status=code_pb2.INVALID_ARGUMENT),
    # Last PT visit: counter 1 ≥ 1 → sub-chain; no deductible (H5 → H6); copay 30 (O 5210 → 5180), 110 left;
    # coinsurance 0 % → nothing. Member 30.00, plan 110.00; counter 1 → 0.
    Scenario("pt_last_visit", H_PT_LAST, "97110", CPT, "11", "140.00", "H1 H2 H3 H5 H6 H10", "30.00",
             lines={"copay": "30.00"}, after={(LIMIT, IND): "0", (OOP, IND): "5180.00"}),
    # One PT unit at 28.00 < copay 30: copay step charges min(30, 28) = 28, nothing left → H6 ends.
    # Member 28.00, plan 0.00; counter 6 → 5.
    Scenario("pt_unit_below_copay", A_DEP, "97110", CPT, "11", "28.00", "H1 H2 H3 H5 H6", "28.00",
             lines={"copay": "28.00"}, after={(LIMIT, IND): "5"}),
    # DME dollar limit 350 > 0 → sub-chain; D = min(0, 1500) = 0 → H7; copay 0 → H10: 20 % × 450 = 90.00
    # (O 4400 → 4310). Plan share 450 − 90 = 360 > 350 → plan pays 350, over limit 10.00.
    # Member 90 + 10 = 100.00, plan 350.00; limit 350 → 0.
    Scenario("dme_dollar_limit_caps_plan", E_DME, "E0110", HCPCS, "12", "450.00", "H1 H2 H3 H5 H7 H10", "100.00",
             lines={"coinsurance": "90.00", "over_limit": "10.00"},
             after={(LIMIT, IND): "0.00", (OOP, IND): "4310.00"}),
    # OOP met (I 0): H3 → H4; PCP copay-after-OOP N → nothing. Member 0.00, plan 180.00.
    Scenario("oop_met_office_visit_free", C_OOP_MET, "99213", CPT, "11", "180.00", "H1 H2 H3 H4", "0.00",
             specialty="08"),
    # OOP met: H3 → H4; ER copay-after-OOP Y → member pays min(150, 1400) = 150.00 (credited nowhere),
    # plan 1250.00; OOP stays 0.
    Scenario("oop_met_er_copay_continues", C_OOP_MET, "99284", CPT, "23", "1400.00", "H1 H2 H3 H4", "150.00",
             lines={"copay": "150.00"}, after={(OOP, IND): "0.00"}),
    # Specialist, no deductible: copay 50 (O 4790 → 4740), 130 left; coinsurance 0 %. Member 50.00, plan 130.00.
    Scenario("specialist_copay", A_SUB, "99214", CPT, "11", "180.00", "H1 H2 H3 H5 H6 H10", "50.00",
             specialty="20", lines={"copay": "50.00"}, after={(OOP, IND): "4740.00"}),
    # MRI, deductible met inside the service: D = min(380, 1025) = 380, copay 0 → H9: deductible 380 (820 left);
    # the PPO coverage is ded-first N → H10: 20 % × 820 = 164.00. Member 380 + 164 = 544.00, plan 656.00;
    # deductible I 0 / F 1025 − 380 = 645; OOP I 4190 − 544 = 3646.
    Scenario("mri_deductible_met_inside", A_DEP, "70551", CPT, "11", "1200.00", "H1 H2 H3 H5 H9 H10", "544.00",
             lines={"deductible": "380.00", "coinsurance": "164.00"},
             after={(DED, IND): "0.00", (DED, FAM): "645.00", (OOP, IND): "3646.00"}),
    # Lab 45.00 below D = min(645, 1025) = 645: deductible 45, nothing left → H9 ends. Member 45.00, plan 0.00;
    # deductible I 600.
    Scenario("lab_below_deductible", A_SUB, "80053", CPT, "81", "45.00", "H1 H2 H3 H5 H9", "45.00",
             lines={"deductible": "45.00"}, after={(DED, IND): "600.00"}),
    # Family deductible met by count (2 of 2) → D = 0 → H7; copay 0 → H10: 20 % × 1200 = 240.00.
    # Member 240.00, plan 960.00; the individual deductible keeps its 1300.
    Scenario("mri_family_met_by_count", B_DEP_COUNT, "70551", CPT, "11", "1200.00", "H1 H2 H3 H5 H7 H10", "240.00",
             lines={"coinsurance": "240.00"}, after={(DED, IND): "1300.00"}),
    # Specialist copay 50 capped at O = min(20, 6520) = 20 → OOP 0 with 160 left → H4; copay-after-OOP N.
    # Member 20.00, plan 160.00; OOP I 0.
    Scenario("oop_hit_by_specialist_copay", I_OOP_20, "99214", CPT, "11", "180.00", "H1 H2 H3 H5 H6 H4", "20.00",
             specialty="20", lines={"copay": "20.00"}, after={(OOP, IND): "0.00", (OOP, FAM): "6500.00"}),
    # ER: D = min(1500, 3000) > 0, ded-first N, copay 150 → H8: copay min(150, 1400) = 150 capped at O 20 → 20,
    # credited to the deductible (1500 → 1480); OOP 0 with 1380 left → H4: copay-after-OOP Y → the other 130.
    # Member 150.00, plan 1250.00.
    Scenario("oop_hit_by_er_copay", I_OOP_20, "99284", CPT, "23", "1400.00", "H1 H2 H3 H5 H8 H4", "150.00",
             lines={"copay": "150.00", "deductible": "0.00"},
             after={(OOP, IND): "0.00", (DED, IND): "1480.00"}),
    # MRI: D 1500, O 20 → H9: want min(1200, 1500) = 1200, charge min(1200, 20) = 20 < want → stop.
    # Member 20.00, plan 1180.00; deductible 1480, OOP 0.
    Scenario("oop_runs_out_inside_deductible", I_OOP_20, "70551", CPT, "11", "1200.00", "H1 H2 H3 H5 H9", "20.00",
             lines={"deductible": "20.00"}, after={(OOP, IND): "0.00", (DED, IND): "1480.00"}),
    # Level-1 ER visit at 95.00 < copay 150: D 380 > 0, ded-first N → H8: copay 95, credited to the deductible
    # (380 → 285); nothing left → H8 ends. Member 95.00, plan 0.00.
    Scenario("er_below_copay", A_DEP, "99281", CPT, "23", "95.00", "H1 H2 H3 H5 H8", "95.00",
             lines={"copay": "95.00"}, after={(DED, IND): "285.00", (OOP, IND): "4095.00"}),
    # ER copay first: H8 copay 150 (1250 left; deductible 380 → 230, OOP 4190 → 4040) → H9: deductible
    # min(1250, 230) = 230 (1020 left; OOP 3810) → H10: 20 % × 1020 = 204.00 (OOP 3606).
    # Member 150 + 230 + 204 = 584.00, plan 816.00.
    Scenario("er_copay_then_deductible", A_DEP, "99284", CPT, "23", "1400.00", "H1 H2 H3 H5 H8 H9 H10", "584.00",
             lines={"copay": "150.00", "deductible": "230.00", "coinsurance": "204.00"},
             after={(DED, IND): "0.00", (DED, FAM): "645.00", (OOP, IND): "3606.00"}),
    # ER, deductible met (I 0): H7 copay-after-ded Y → H8: copay 150 (credit min(150, 0) = 0), 1250 left →
    # ded-first N → H9: deductible min(1250, 0) = 0 → H10: 20 % × 1250 = 250.00.
    # Member 150 + 250 = 400.00, plan 1000.00; OOP 3900 → 3500.
    Scenario("er_deductible_already_met", B_SUB, "99284", CPT, "23", "1400.00", "H1 H2 H3 H5 H7 H8 H9 H10",
             "400.00", lines={"copay": "150.00", "deductible": "0.00", "coinsurance": "250.00"},
             after={(OOP, IND): "3500.00"}),
    # HDHP PCP visit, deductible first: D = min(100, 3300) = 100 → H9: deductible 100 (80 left) → H7:
    # copay-after-ded Y → H8: copay 25 (55 left) → ded-first Y → H10: 0 % → nothing.
    # Member 100 + 25 = 125.00, plan 55.00; deductible I 0, OOP 3900 → 3775.
    Scenario("hdhp_deductible_then_copay", J_HDHP_100, "99213", CPT, "11", "180.00", "H1 H2 H3 H5 H9 H7 H8 H10",
             "125.00", specialty="08", lines={"deductible": "100.00", "copay": "25.00"},
             after={(DED, IND): "0.00", (OOP, IND): "3775.00"}),
]

# Rule book §4, one entry per row: (handler, where the row leads). Ends and sub-chains carry the row's meaning.
ROUTING_TABLE = {
    ("H1", "end not_covered"),  # not covered → end: member pays all (not_covered)
    ("H1", "H2"),  # covered
    ("H2", "H3"),  # no limit accumulator
    ("H2", "end over_limit"),  # limit unknown, ≤ 0, or counter < 1
    ("H2", "error INVALID_ARGUMENT"),  # type not dollar/counter
    ("H2", "sub-chain counter"),  # counter ≥ 1: sub-chain H3…; counter −1; end
    ("H2", "sub-chain dollar"),  # dollar > 0: sub-chain H3…; plan share capped at limit; end
    ("H3", "H4"),  # O known and 0
    ("H3", "H5"),  # O absent or > 0
    ("H4", "end copay continues"),  # copay left > 0 and copay-after-OOP
    ("H4", "end"),  # otherwise
    ("H5", "H6"),  # D absent
    ("H5", "H7"),  # D = 0 (incl. met by count)
    ("H5", "H8"),  # D > 0, ded-first N, copay > 0
    ("H5", "H9"),  # D > 0, otherwise
    ("H6", "H4"),  # copay step reached or found O = 0
    ("H6", "end"),  # amount left 0
    ("H6", "H10"),  # otherwise
    ("H7", "H8"),  # copay-after-ded and copay > 0
    ("H7", "H10"),  # otherwise
    ("H8", "H4"),  # copay step reached or found O = 0
    ("H8", "end"),  # amount left 0
    ("H8", "H10"),  # ded-first Y
    ("H8", "H9"),  # ded-first N
    ("H9", "end OOP ran out"),  # O already 0, or OOP ran out before the deductible was met
    ("H9", "end amount left 0"),  # amount left 0
    ("H9", "H7"),  # ded-first Y
    ("H9", "H10"),  # ded-first N
    ("H10", "end"),  # always
}


def money(amount: str) -> money_pb2.Money:
    units, _, cents = amount.partition(".")
    return money_pb2.Money(currency_code="USD", units=int(units), nanos=int((cents or "0").ljust(2, "0")) * 10_000_000)


def as_decimal(m: money_pb2.Money) -> Decimal:
    return Decimal(m.units) + Decimal(m.nanos) / Decimal(10**9)


def request(s: Scenario) -> epb.EstimateRequest:
    return epb.EstimateRequest(
        member=cpb.Member(membership_id=s.member, plan_identifier=MEMBERS[s.member].plan_identifier),
        product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL,
        service=epb.RequestedService(code=s.service, code_type=s.code_type,  # type: ignore[arg-type]
                                     place_of_service_code=s.place),
        providers=[epb.Provider(provider_id=s.name, network_category=s.network,  # type: ignore[arg-type]
                                benefit_tier_name=s.tier, provider_specialty_code=s.specialty,
                                provider_type_code=s.provider_type, provider_designation=s.designation,
                                negotiated_amount=money(s.amount))])


def transitions(e: epb.CostEstimate) -> set[tuple[str, str]]:
    """The §4 rows one estimate went through, read off its status, path, breakdown and accumulator states."""
    if e.status.code == code_pb2.INVALID_ARGUMENT:
        assert "limit_type" in e.status.message, e.status.message
        return {("H2", "error INVALID_ARGUMENT")}
    assert e.status.code == code_pb2.OK, e.status
    path = [p.split()[0] for p in e.path]
    amount, b = as_decimal(e.service_amount), e.breakdown
    out: set[tuple[str, str]] = set()
    for here, there in zip(path, path[1:]):
        if here == "H2":
            limits = [s for s in e.accumulators if s.kind == LIMIT]
            if not limits:
                out.add(("H2", "H3"))
            else:
                kind = {cpb.LIMIT_TYPE_COUNTER: "counter", cpb.LIMIT_TYPE_DOLLAR: "dollar"}[limits[0].limit_type]
                out.add(("H2", f"sub-chain {kind}"))
        else:
            out.add((here, there))
    last = path[-1]
    if last == "H1":
        assert as_decimal(b.not_covered) == amount
        end = "end not_covered"
    elif last == "H2":
        assert as_decimal(b.over_limit) == amount
        end = "end over_limit"
    elif last == "H4":
        # Every catalogue coverage counts copay, deductible and coinsurance toward the OOP, so what the member paid
        # in cost sharing beyond the OOP credit is the continuing copay H4 charged (credited nowhere).
        oop = next(s for s in e.accumulators if s.kind == OOP)
        credit = Decimal(oop.remaining_before.value) - Decimal(oop.remaining_after.value)
        charged_by_h4 = as_decimal(b.copay) + as_decimal(b.deductible) + as_decimal(b.coinsurance) - credit
        end = "end copay continues" if charged_by_h4 > 0 else "end"
    elif last == "H9":
        # Stopping inside the deductible leaves the rest to the plan; "amount left 0" leaves it nothing.
        end = "end OOP ran out" if as_decimal(e.plan_pays) > 0 else "end amount left 0"
    else:
        assert last in ("H6", "H8", "H10"), f"a path cannot end at {last}"
        end = "end"
    out.add((last, end))
    return out


@pytest_asyncio.fixture
async def estimate_app(make_settings: Callable[..., Settings]) -> AsyncIterator[Application]:
    application = Application(make_settings(upstream_backoff_seconds=0.01, upstream_backoff_max_seconds=0.02),
                              registry=CollectorRegistry())
    await application.start()
    yield application
    await application.stop(grace=0)


@pytest_asyncio.fixture
async def stub(estimate_app: Application) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{estimate_app.port}") as ch:
        yield estimate_service_pb2_grpc.EstimateServiceStub(ch)


async def estimate(stub: Any, app: Application, s: Scenario) -> epb.CostEstimate:
    reply = await stub.Estimate(request(s), metadata=(("authorization", f"Bearer {app.dev_token}"),), timeout=10)
    assert len(reply.estimates) == 1
    result: epb.CostEstimate = reply.estimates[0]
    return result


@pytest.mark.parametrize("s", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario(stub: Any, estimate_app: Application, s: Scenario) -> None:
    e = await estimate(stub, estimate_app, s)
    assert e.status.code == s.status, e.status
    if s.member_pays is None:
        assert not e.HasField("member_pays") and not e.path
        return
    assert " ".join(p.split()[0] for p in e.path) == s.path
    assert as_decimal(e.member_pays) == Decimal(s.member_pays)
    assert as_decimal(e.plan_pays) == Decimal(s.amount) - Decimal(s.member_pays)
    for line, expected in s.lines.items():
        assert as_decimal(getattr(e.breakdown, line)) == Decimal(expected), line
    after: dict[tuple[int, int], str] = {
        (a.kind, a.level): a.remaining_after.value for a in e.accumulators if a.network == IN}
    for key, expected in s.after.items():
        assert after[key] == expected, key


async def test_scenarios_cover_every_row_of_the_routing_table(stub: Any, estimate_app: Application) -> None:
    assert len(ROUTING_TABLE) == 29  # the rows of §4
    reached: dict[tuple[str, str], list[str]] = {}
    for s in SCENARIOS:
        for t in transitions(await estimate(stub, estimate_app, s)):
            reached.setdefault(t, []).append(s.name)
    assert set(reached) - ROUTING_TABLE == set(), "a transition the rule book does not have"
    assert ROUTING_TABLE - set(reached) == set(), "rows no scenario reaches"
