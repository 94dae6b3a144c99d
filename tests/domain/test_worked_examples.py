"""Rule book §9, E1-E31: member pays, plan pays, path and every after-state figure the book states.

Paths marked "derived" are not printed in the book for that example but are the only route its inputs allow.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

import pytest

from server.domain.costshare import AccumKind, Level, MemberAccumulator, RelatedAccumulator, calculate
from server.domain.errors import InvalidInput
from tests.domain.builders import D, scenario

DED_I, DED_F = (AccumKind.DEDUCTIBLE, Level.INDIVIDUAL), (AccumKind.DEDUCTIBLE, Level.FAMILY)
OOP_I, OOP_F = (AccumKind.OOP, Level.INDIVIDUAL), (AccumKind.OOP, Level.FAMILY)
LIM_I = (AccumKind.LIMIT, Level.INDIVIDUAL)


@dataclass
class Example:
    name: str
    service: str
    setup: dict[str, object]
    member: str
    plan: str
    path: str | None
    after: dict[tuple[AccumKind, Level], str] = field(default_factory=dict)
    lines: dict[str, str] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)


E11 = {"copay": D(35), "coinsurance_percent": D(20), "copay_continue_when_deductible_met": "Y",
       "ded": ("400", "2000"), "oop": ("5000", "9000")}
E19 = {"copay": D(60), "coinsurance_percent": D(20), "oop": ("25", None)}

EXAMPLES = [
    Example("E1 not covered", "640.00",
            {"is_service_covered": "N", "copay": D(35), "ded": ("300", None)},
            "640.00", "0.00", "H1", {DED_I: "300.00"}, {"not_covered": "640.00"},
            {"service_covered": False, "limit_reached": False}),
    Example("E2 counter exhausted", "185.00",
            {"copay": D(35), "limit": ("0", None), "limit_type": "Counter"},
            "185.00", "0.00", "H1 H2", {LIM_I: "0"}, {"over_limit": "185.00"}, {"limit_reached": True}),
    Example("E3 counter available", "185.00",
            {"copay": D(35), "limit": ("6", None), "limit_type": "Counter", "oop": ("2400", "5100")},
            "35.00", "150.00", "H1 H2 [H3 H5 H6 H10]", {OOP_I: "2365.00", OOP_F: "5065.00", LIM_I: "5"},
            {"copay": "35.00", "coinsurance": "0.00"}, {"limit_reached": False}),
    Example("E4 dollar limit, partial", "260.00",
            {"coinsurance_percent": D(30), "limit": ("90", None)},
            "170.00", "90.00", "H1 H2 [H3 H5 H6 H10]", {LIM_I: "0.00"},
            {"coinsurance": "78.00", "over_limit": "92.00"}, {"limit_reached": True}),
    Example("E5 dollar limit, within", "420.00",
            {"coinsurance_percent": D(10), "limit": ("1500", None), "ded": ("100", None), "oop": ("3000", None)},
            "132.00", "288.00", "H1 H2 [H3 H5 H9 H7 H10]", {LIM_I: "1212.00", DED_I: "0.00", OOP_I: "2868.00"},
            {"deductible": "100.00", "coinsurance": "32.00"}, {"limit_reached": False, "deductible_met": True}),
    Example("E6 family OOP met, copay stops", "920.00",
            {"copay": D(45), "coinsurance_percent": D(20), "oop": ("1250", "0")},
            "0.00", "920.00", "H1 H2 H3 H4", {OOP_I: "1250.00", OOP_F: "0.00"}, {}, {"oop_met": True}),
    Example("E7 OOP met, copay continues", "920.00",
            {"copay": D(45), "copay_continue_when_out_of_pocket_max_met": "Y", "oop": ("0", None)},
            "45.00", "875.00", "H1 H2 H3 H4", {OOP_I: "0.00"}, {"copay": "45.00"}, {"oop_met": True}),
    Example("E8 continuing copay above the service", "28.00",
            {"copay": D(45), "copay_continue_when_out_of_pocket_max_met": "Y", "oop": ("0", None)},
            "28.00", "0.00", "H1 H2 H3 H4",  # derived
            {OOP_I: "0.00"}, {"copay": "28.00"}),
    Example("E9 no deductible: copay then coinsurance", "480.00",
            {"copay": D(35), "coinsurance_percent": D(20), "oop": ("1000", "3000")},
            "124.00", "356.00", "H1 H2 H3 H5 H6 H10", {OOP_I: "876.00", OOP_F: "2876.00"},
            {"copay": "35.00", "coinsurance": "89.00"}, {"oop_met": False, "deductible_met": False}),
    Example("E10 deductible first, service below it", "210.00",
            {"copay": D(35), "coinsurance_percent": D(20), "copay_continue_when_deductible_met": "Y",
             "ded": ("750", "1900"), "oop": ("4000", None)},
            "210.00", "0.00", "H1 H2 H3 H5 H9", {DED_I: "540.00", DED_F: "1690.00", OOP_I: "3790.00"},
            {"deductible": "210.00"}, {"deductible_met": False}),
    Example("E11 deductible met inside the service, copay continues", "1180.00", E11,
            "584.00", "596.00", "H1 H2 H3 H5 H9 H7 H8 H10",
            {DED_I: "0.00", DED_F: "1600.00", OOP_I: "4416.00", OOP_F: "8416.00"},
            {"deductible": "400.00", "copay": "35.00", "coinsurance": "149.00"}, {"deductible_met": True}),
    Example("E12 same, copay stops after the deductible", "1180.00",
            {**E11, "copay_continue_when_deductible_met": "N"},
            "556.00", "624.00", "H1 H2 H3 H5 H9 H7 H10", {OOP_I: "4444.00", OOP_F: "8444.00", DED_I: "0.00"},
            {"deductible": "400.00", "copay": "0.00", "coinsurance": "156.00"}),
    Example("E13 deductible already met, copay continues", "275.00",
            {"copay": D(35), "copay_continue_when_deductible_met": "Y", "ded": ("0", "1100"),
             "oop": ("2000", None)},
            "35.00", "240.00", "H1 H2 H3 H5 H7 H8 H10", {OOP_I: "1965.00", DED_I: "0.00", DED_F: "1100.00"}),
    Example("E14 copay first, not credited to the deductible", "275.00",
            {"is_deductible_before_copay": "N", "copay": D(35), "coinsurance_percent": D(20),
             "ded": ("600", None), "oop": ("2000", None)},
            "275.00", "0.00", "H1 H2 H3 H5 H8 H9", {DED_I: "360.00", OOP_I: "1725.00"},
            {"copay": "35.00", "deductible": "240.00"}),
    Example("E15 copay first, credited to the deductible", "655.00",
            {"is_deductible_before_copay": "N", "copay_count_to_deductible": "Y", "copay": D(35),
             "coinsurance_percent": D(20), "ded": ("150", None), "oop": ("2000", None)},
            "251.00", "404.00", "H1 H2 H3 H5 H8 H9 H10", {DED_I: "0.00", OOP_I: "1749.00"},
            {"copay": "35.00", "deductible": "115.00", "coinsurance": "101.00"}),
    Example("E16 copay first, copay above the service, credited", "22.50",
            {"is_deductible_before_copay": "N", "copay_count_to_deductible": "Y", "copay": D(35),
             "ded": ("150", None), "oop": ("2000", None)},
            "22.50", "0.00", "H1 H2 H3 H5 H8", {DED_I: "127.50", OOP_I: "1977.50"}, {"copay": "22.50"}),
    Example("E17 no deductible, copay above the service", "18.75",
            {"copay": D(35), "oop": ("600", "1400")},
            "18.75", "0.00", "H1 H2 H3 H5 H6", {OOP_I: "581.25", OOP_F: "1381.25"}, {"copay": "18.75"}),
    Example("E18 OOP reached during coinsurance", "2350.00",
            {"coinsurance_percent": D(30), "oop": ("410", "6000")},
            "410.00", "1940.00", "H1 H2 H3 H5 H6 H10", {OOP_I: "0.00", OOP_F: "5590.00"},
            {"coinsurance": "410.00"}, {"oop_met": True}),
    Example("E19 OOP reached during the copay, copay stops", "310.00", E19,
            "25.00", "285.00", "H1 H2 H3 H5 H6 H4", {OOP_I: "0.00"}, {"copay": "25.00"}, {"oop_met": True}),
    Example("E20 same, copay continues", "310.00",
            {**E19, "copay_continue_when_out_of_pocket_max_met": "Y"},
            "60.00", "250.00", "H1 H2 H3 H5 H6 H4",  # derived
            {OOP_I: "0.00"}, {"copay": "60.00"}),
    Example("E21 OOP runs out inside the deductible", "2050.00",
            {"copay": D(35), "coinsurance_percent": D(20), "copay_continue_when_deductible_met": "Y",
             "copay_continue_when_out_of_pocket_max_met": "Y", "ded": ("1500", None), "oop": ("700", "4000")},
            "700.00", "1350.00", "H1 H2 H3 H5 H9", {DED_I: "800.00", OOP_I: "0.00", OOP_F: "3300.00"},
            {"deductible": "700.00", "copay": "0.00"}, {"oop_met": True, "deductible_met": False}),
    Example("E22 deductible not counted to the OOP", "1020.00",
            {"deductible_applies_out_of_pocket": "N", "coinsurance_percent": D(20), "ded": ("300", None),
             "oop": ("250", None)},
            "444.00", "576.00", "H1 H2 H3 H5 H9 H7 H10", {OOP_I: "106.00", DED_I: "0.00"},
            {"deductible": "300.00", "coinsurance": "144.00"}),
    Example("E23 coinsurance not counted to the OOP", "840.00",
            {"coinsurance_percent": D(25), "coins_applies_out_of_pocket": "N", "oop": ("50", None)},
            "210.00", "630.00", "H1 H2 H3 H5 H6 H10", {OOP_I: "50.00"}, {"coinsurance": "210.00"}),
    Example("E24 family deductible smaller than individual", "520.00",
            {"coinsurance_percent": D(10), "ded": ("900", "120"), "oop": ("6000", "12000")},
            "160.00", "360.00", "H1 H2 H3 H5 H9 H7 H10",
            {DED_I: "780.00", DED_F: "0.00", OOP_I: "5840.00", OOP_F: "11840.00"},
            {"deductible": "120.00", "coinsurance": "40.00"}, {"deductible_met": True}),
    Example("E25 family deductible met by number of individuals", "510.00",
            {"copay": D(35), "copay_continue_when_deductible_met": "Y", "coinsurance_percent": D(20),
             "ded": ("650", "1300"), "met": (2, 2), "oop": ("3000", None)},
            "130.00", "380.00", "H1 H2 H3 H5 H7 H8 H10", {DED_I: "650.00", DED_F: "1300.00", OOP_I: "2870.00"},
            {"copay": "35.00", "coinsurance": "95.00", "deductible": "0.00"}, {"deductible_met": True}),
    Example("E26 fraction of a cent", "99.99",
            {"coinsurance_percent": D("12.5"), "oop": ("5000", None)},
            "12.50", "87.49", "H1 H2 H3 H5 H6 H10",  # derived
            {OOP_I: "4987.50"}, {"coinsurance": "12.50"}),
    Example("E27 coinsurance 100 %", "340.00",
            {"coinsurance_percent": D(100), "oop": ("5000", None)},
            "340.00", "0.00", "H1 H2 H3 H5 H6 H10",  # derived
            {OOP_I: "4660.00"}, {"coinsurance": "340.00"}),
    Example("E28 zero amount", "0.00",
            {"copay": D(35), "coinsurance_percent": D(20), "oop": ("400", None)},
            "0.00", "0.00", "H1 H2 H3 H5 H6", {OOP_I: "400.00"}),
    Example("E29 dollar limit with the OOP met", "430.00",
            {"limit": ("150", None), "oop": ("0", None)},
            "280.00", "150.00", "H1 H2 [H3 H4]", {LIM_I: "0.00", OOP_I: "0.00"}, {"over_limit": "280.00"},
            {"limit_reached": True, "oop_met": True}),
]


@pytest.mark.parametrize("ex", EXAMPLES, ids=[e.name.split()[0] for e in EXAMPLES])
def test_worked_example(ex: Example) -> None:
    coverage, accumulators = scenario(**ex.setup)  # type: ignore[arg-type]
    result = calculate(coverage, accumulators, D(ex.service), trace=True)

    assert result.member_pays == D(ex.member)
    assert result.plan_pays == D(ex.plan)
    assert str(result.member_pays) == ex.member  # exactly two decimals, no stray scale
    if ex.path is not None:
        assert result.path_text() == ex.path
    states = {(s.kind, s.level): s for s in result.accumulators}
    for key, expected in ex.after.items():
        assert states[key].remaining_after == D(expected), key
        assert str(states[key].remaining_after) == expected, key
    for line, expected in ex.lines.items():
        assert getattr(result.breakdown, line) == D(expected), line
    for flag, value in ex.flags.items():
        assert getattr(result, flag) is value, flag
    assert result.breakdown.total() == result.member_pays


def test_e30_missing_in_network_oop_means_no_cap() -> None:
    coverage, _ = scenario(coinsurance_percent=D(20), oop=("999999", None))  # relates in-network individual OOP
    only_oon = [MemberAccumulator(code="OOP Max", level="Individual", network_indicator_code="O",
                                  calculated_value=D("80.00"))]
    result = calculate(coverage, only_oon, D("5000.00"))
    assert (result.member_pays, result.plan_pays) == (D("1000.00"), D("4000.00"))
    assert result.accumulators == ()  # the OON accumulator is not used
    assert result.oop_met is False
    assert result.path_text() == "H1 H2 H3 H5 H6 H10"  # derived


def test_e31_unknown_limit_type_is_refused() -> None:
    coverage = replace(scenario()[0], related_accumulators=(RelatedAccumulator(code="Limit", level="Individual"),))
    accs = [MemberAccumulator(code="Limit", level="Individual", network_indicator_code="I", limit_type="Percent",
                              calculated_value=D(4))]
    with pytest.raises(InvalidInput) as err:
        calculate(coverage, accs, D("75.50"))
    assert err.value.field == "accumulators[0].limit_type"
    assert "Percent" in err.value.message


def test_every_book_example_is_covered() -> None:
    """E1-E31 all appear above (E30/E31 as their own tests)."""
    names = {e.name.split()[0] for e in EXAMPLES} | {"E30", "E31"}
    assert names == {f"E{i}" for i in range(1, 32)}


def test_examples_do_not_depend_on_input_scale() -> None:
    """§6.9: "20", "20.0" and "20.000" percent, "480" and "480.000" dollars give the very same answer."""
    a = calculate(*scenario(copay=D("35"), coinsurance_percent=D("20"), oop=("1000", "3000")), D("480"))
    b = calculate(*scenario(copay=D("35.000"), coinsurance_percent=D("20.000"), oop=("1000.00", "3000.0")),
                  D("480.000"))
    assert a == b
    assert isinstance(a.member_pays, Decimal) and str(a.member_pays) == "124.00"
