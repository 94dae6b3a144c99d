"""NPI check digit (spec §1.4 worked values) and the code tables (spec §2.3)."""

from __future__ import annotations

import pytest

from server.domain.eligibility import codes
from server.domain.eligibility.npi import is_valid_npi, npi_check_digit


@pytest.mark.parametrize("npi", ["1999999984", "1447848577", "1679766943", "1234567893"])
def test_worked_npis_pass(npi: str) -> None:
    assert is_valid_npi(npi)
    assert npi_check_digit(npi[:9]) == int(npi[9])


@pytest.mark.parametrize("npi", ["1234567890", "123456789", "12345678931", "12345678a3", "", "１２３４５６７８９３"])
def test_bad_npis_fail(npi: str) -> None:
    assert not is_valid_npi(npi)


def test_check_digit_needs_nine_digits() -> None:
    with pytest.raises(ValueError):
        npi_check_digit("12345678")


def test_every_last_digit_but_one_fails() -> None:
    assert [d for d in "0123456789" if is_valid_npi("123456789" + d)] == ["3"]


def test_code_tables_match_the_spec() -> None:
    assert len(codes.BENEFIT_CODES) == 35
    assert codes.BENEFIT_CODES["G"] == "Out of Pocket (Stop Loss)"
    assert codes.BENEFIT_CODES["V"] == "Cannot Process" and codes.BENEFIT_CODES["Y"] == "Spend Down"
    assert codes.BENEFIT_CODES["N"] == "Services Restricted to Following Provider"  # not "Spend Down" (§4.1 #2)
    assert len(codes.COVERAGE_LEVELS) == 9
    assert codes.TIME_QUALIFIERS["26"] == "Episode" and codes.TIME_QUALIFIERS["29"] == "Remaining"
    assert codes.TIME_QUALIFIERS["24"] == "Year to Date" and len(codes.TIME_QUALIFIERS) == 19
    assert dict(codes.NETWORK_INDICATORS) == {"Y": "Yes", "N": "No", "U": "Unknown", "W": "Not Applicable"}
    assert len(codes.INSURANCE_TYPES) == 45 and codes.INSURANCE_TYPES["PR"] == "Preferred Provider Organization (PPO)"
    assert codes.SERVICE_TYPES["AL"] == "Vision (Optometry)"  # not Alcoholism
    assert "76" not in codes.SERVICE_TYPES
    assert len(codes.REQUEST_SERVICE_TYPE_CODES) == 187
    assert set(codes.SERVICE_TYPES) <= codes.REQUEST_SERVICE_TYPE_CODES


def test_spec_service_type_list_is_complete() -> None:
    listed = "1 4 5 30 33 35 42 45 47 48 50 51 52 62 69 73 81 86 88 93 96 98 A0 A4 A6 A7 A8 AD AE AF AI AL BY BZ DM MH PT UC"
    assert set(codes.SERVICE_TYPES) == set(listed.split())


def test_unknown_codes_pass_through() -> None:
    assert codes.name_for(codes.SERVICE_TYPES, "V3", "Vision Coverage?") == "Vision Coverage?"
    assert codes.name_for(codes.SERVICE_TYPES, "V3") == "V3"
    assert codes.name_for(codes.SERVICE_TYPES, "98", "whatever the payer says") == "Professional (Physician) Visit - Office"
