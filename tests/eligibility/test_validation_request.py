"""Validation rules of spec §1.4 and the Stedi request body of §1.2/§1.3."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from server.domain.eligibility.inquiry import EligibilityInquiry, Person
from server.domain.eligibility.request import build_stedi_request, external_patient_id
from server.domain.eligibility.validation import (
    FieldViolation,
    calendar_date,
    clean_inquiry,
    fold_to_ascii,
    parse_yyyymmdd,
    validate_inquiry,
)

TODAY = dt.date(2026, 3, 15)
MEMBER_ID = "ZQX778812"
FIRST, LAST, MIDDLE = "Zebulon", "Quixotic-Vanterpool", "Marguerite"
DOB = dt.date(1985, 4, 12)
PHI_STRINGS = [MEMBER_ID, FIRST, LAST, MIDDLE, "1985", "19850412", "1985-04-12", "Maya", "Shah", "2012"]
SUBSCRIBER = Person(member_id=MEMBER_ID, first_name=FIRST, last_name=LAST, date_of_birth=DOB)
BASE = EligibilityInquiry(
    payer_id="SBX01",
    npi="1999999984",
    subscriber=SUBSCRIBER,
    provider_organization_name="Riverbend Family Medicine",
    service_type_codes=["30"],
    date_of_service=dt.date(2026, 3, 15),
    policy_id="pol-1",
    patient_id="pat-1",
)
DEPENDENT = Person(first_name="Maya", last_name="Shah", date_of_birth=dt.date(2012, 6, 5))


def with_(**changes: Any) -> EligibilityInquiry:
    return dataclasses.replace(BASE, **changes)


def sub(**changes: Any) -> EligibilityInquiry:
    return with_(subscriber=dataclasses.replace(SUBSCRIBER, **changes))


def fields(violations: list[FieldViolation]) -> list[str]:
    return [v.field for v in violations]


def assert_no_phi(violations: list[FieldViolation]) -> None:
    for violation in violations:
        for value in PHI_STRINGS:
            assert value.lower() not in violation.description.lower(), violation


def test_valid_inquiry_has_no_violations() -> None:
    assert validate_inquiry(BASE, today=TODAY) == []


CASES: list[tuple[str, EligibilityInquiry, str]] = [
    ("payer missing", with_(payer_id=""), "payer_id"),
    ("payer too long", with_(payer_id="9" * 81), "payer_id"),
    ("payer control char", with_(payer_id="SBX\x0001"), "payer_id"),
    ("npi missing", with_(npi=""), "provider.npi"),
    ("npi short", with_(npi="199999998"), "provider.npi"),
    ("npi letters", with_(npi="19999999a4"), "provider.npi"),
    ("npi check digit", with_(npi="1234567890"), "provider.npi"),
    ("no provider name", with_(provider_organization_name=""), "provider.organization_name"),
    ("provider first only", with_(provider_organization_name="", provider_first_name="Ann"), "provider.last_name"),
    ("provider org too long", with_(provider_organization_name="R" * 61), "provider.organization_name"),
    ("provider delimiter", with_(provider_organization_name="Riverbend*Clinic"), "provider.organization_name"),
    ("member id missing", sub(member_id=""), "subscriber.member_id"),
    ("member id blank", sub(member_id="   "), "subscriber.member_id"),
    ("member id too short", sub(member_id="Z"), "subscriber.member_id"),
    ("member id too long", sub(member_id="Z" * 81), "subscriber.member_id"),
    ("member id bad char", sub(member_id=MEMBER_ID + "_1"), "subscriber.member_id"),
    ("first name missing", sub(first_name=""), "subscriber.first_name"),
    ("first name too long", sub(first_name=FIRST * 6), "subscriber.first_name"),
    ("last name missing", sub(last_name=""), "subscriber.last_name"),
    ("last name too long", sub(last_name=LAST * 4), "subscriber.last_name"),
    ("middle name too long", sub(middle_name=MIDDLE * 3), "subscriber.middle_name"),
    ("suffix too long", sub(suffix="Junior-Third"), "subscriber.suffix"),
    ("asterisk", sub(first_name="Zeb*ulon"), "subscriber.first_name"),
    ("tilde", sub(last_name="Quix~otic"), "subscriber.last_name"),
    ("caret", sub(last_name="Quix^otic"), "subscriber.last_name"),
    ("greater-than", sub(last_name="Quix>otic"), "subscriber.last_name"),
    ("grave accent", sub(last_name="Quix`otic"), "subscriber.last_name"),
    ("colon", sub(last_name="Quix:otic"), "subscriber.last_name"),
    ("control char", sub(first_name="Zeb\tulon"), "subscriber.first_name"),
    ("no ascii form", sub(first_name="李"), "subscriber.first_name"),
    ("dob missing", sub(date_of_birth=None), "subscriber.date_of_birth"),
    ("dob in future", sub(date_of_birth=dt.date(2026, 3, 16)), "subscriber.date_of_birth"),
    ("dob after dos", with_(date_of_service=dt.date(2025, 6, 1), subscriber=dataclasses.replace(SUBSCRIBER, date_of_birth=dt.date(2025, 7, 1))), "subscriber.date_of_birth"),
    ("dos too old", with_(date_of_service=dt.date(2025, 3, 14)), "date_of_service"),
    ("dos after month end", with_(date_of_service=dt.date(2026, 4, 1)), "date_of_service"),
    ("bad stc", with_(service_type_codes=["30", "XX"]), "service_type_codes[1]"),
    ("dental-only response stc", with_(service_type_codes=["V3"]), "service_type_codes[0]"),
    ("dependent without relationship", with_(dependent=DEPENDENT), "dependent.relationship_code"),
    ("dependent bad relationship", with_(dependent=DEPENDENT, relationship_code="18"), "dependent.relationship_code"),
    ("dependent dob missing", with_(dependent=dataclasses.replace(DEPENDENT, date_of_birth=None), relationship_code="19"), "dependent.date_of_birth"),
    ("dependent first missing", with_(dependent=dataclasses.replace(DEPENDENT, first_name=""), relationship_code="19"), "dependent.first_name"),
    ("dependent own member id", with_(dependent=dataclasses.replace(DEPENDENT, member_id="ZQX778812-01"), relationship_code="19"), "dependent.member_id"),
    ("relationship without dependent", with_(relationship_code="19"), "dependent.relationship_code"),
]


@pytest.mark.parametrize(("label", "inquiry", "field"), CASES, ids=[c[0] for c in CASES])
def test_each_rule(label: str, inquiry: EligibilityInquiry, field: str) -> None:
    violations = validate_inquiry(inquiry, today=TODAY)
    assert fields(violations) == [field], label
    assert_no_phi(violations)


def test_boundaries_are_inclusive() -> None:
    assert validate_inquiry(with_(date_of_service=dt.date(2025, 3, 15)), today=TODAY) == []
    assert validate_inquiry(with_(date_of_service=dt.date(2026, 3, 31)), today=TODAY) == []
    assert validate_inquiry(sub(date_of_birth=TODAY), today=TODAY) == []
    assert validate_inquiry(sub(member_id="AB"), today=TODAY) == []
    assert validate_inquiry(with_(payer_id="00540"), today=TODAY) == []
    leap = dt.date(2024, 2, 29)
    assert validate_inquiry(with_(date_of_service=dt.date(2024, 2, 28)), today=leap) == []


def test_allowed_name_characters_and_folding() -> None:
    inquiry = sub(first_name="  José ", last_name="O'Brien-Smith Jr.", middle_name="Zoë", suffix="III")
    assert validate_inquiry(inquiry, today=TODAY) == []
    cleaned = clean_inquiry(inquiry)
    assert (cleaned.subscriber.first_name, cleaned.subscriber.middle_name) == ("Jose", "Zoe")
    assert fold_to_ascii("Ångström-Ærø Straße Łukasz’s") == "Angstrom-AEro Strasse Lukasz's"


def test_member_id_is_trimmed_not_rejected() -> None:
    inquiry = sub(member_id=f"  {MEMBER_ID} ")
    assert validate_inquiry(inquiry, today=TODAY) == []
    assert clean_inquiry(inquiry).subscriber.member_id == MEMBER_ID


def test_service_types_are_deduplicated_and_default_to_30() -> None:
    assert clean_inquiry(with_(service_type_codes=[])).service_type_codes == ("30",)
    assert clean_inquiry(with_(service_type_codes=["98", " 98", "uc", "30"])).service_type_codes == ("98", "UC", "30")
    assert validate_inquiry(with_(service_type_codes=["98", "98", "uc"]), today=TODAY) == []


def test_at_most_99_distinct_service_types() -> None:
    from server.domain.eligibility.codes import REQUEST_SERVICE_TYPE_CODES

    many = sorted(REQUEST_SERVICE_TYPE_CODES)[:100]
    assert fields(validate_inquiry(with_(service_type_codes=many), today=TODAY)) == ["service_type_codes"]
    assert validate_inquiry(with_(service_type_codes=many[:99]), today=TODAY) == []


def test_dependent_patient_needs_only_subscriber_member_id() -> None:
    inquiry = with_(subscriber=Person(member_id=MEMBER_ID), dependent=DEPENDENT, relationship_code="19")
    assert validate_inquiry(inquiry, today=TODAY) == []
    assert inquiry.patient is DEPENDENT and inquiry.patient_is_dependent


def test_many_violations_at_once_leak_no_phi() -> None:
    inquiry = with_(
        npi="1234567890",
        subscriber=Person(member_id=MEMBER_ID + "!", first_name=FIRST * 3, last_name=LAST + "*", middle_name=MIDDLE * 3,
                          date_of_birth=dt.date(2027, 1, 1)),
        date_of_service=dt.date(2020, 1, 1),
    )
    violations = validate_inquiry(inquiry, today=TODAY)
    assert len(violations) >= 6
    assert_no_phi(violations)
    assert "Zebulon" not in repr(inquiry) and MEMBER_ID not in repr(inquiry)


def test_real_calendar_dates() -> None:
    assert calendar_date(2026, 2, 31) is None
    assert calendar_date(2024, 2, 29) == dt.date(2024, 2, 29)
    assert parse_yyyymmdd("20260231") is None  # Stedi's regex accepts it; we do not
    assert parse_yyyymmdd("19851332") is None
    assert parse_yyyymmdd("2026031") is None
    assert parse_yyyymmdd("20260315") == dt.date(2026, 3, 15)


# ---------------------------------------------------------------- request body


def test_request_for_a_subscriber_patient_matches_spec_example() -> None:
    inquiry = with_(subscriber=Person(member_id=" SBX100001", first_name="Alex", last_name="Rivera", date_of_birth=DOB))
    body = build_stedi_request(inquiry, tenant_id="t7f3", today=dt.date(2026, 3, 20))
    assert body == {
        "tradingPartnerServiceId": "SBX01",
        "externalPatientId": external_patient_id("t7f3", "pat-1"),
        "provider": {"organizationName": "Riverbend Family Medicine", "npi": "1999999984"},
        "subscriber": {"memberId": "SBX100001", "firstName": "Alex", "lastName": "Rivera", "dateOfBirth": "19850412"},
        "encounter": {"serviceTypeCodes": ["30"], "dateOfService": "20260315"},
    }
    assert "controlNumber" not in body


def test_request_omits_encounter_for_stc_30_today() -> None:
    body = build_stedi_request(with_(date_of_service=None), tenant_id="t", today=TODAY)
    assert "encounter" not in body
    body = build_stedi_request(BASE, tenant_id="t", today=TODAY)  # date of service == today
    assert "encounter" not in body
    body = build_stedi_request(with_(date_of_service=None, service_type_codes=["98", "98"]), tenant_id="t", today=TODAY)
    assert body["encounter"] == {"serviceTypeCodes": ["98"]}


def test_request_for_a_dependent_patient() -> None:
    inquiry = with_(
        payer_id="87726",
        provider_organization_name="Provider Name",
        subscriber=Person(member_id="UHC202649", first_name="John", last_name="Doe"),
        dependent=Person(first_name="Jane", last_name="Doe", date_of_birth=dt.date(1952, 11, 21)),
        relationship_code="01",
        date_of_service=None,
        patient_id="",
    )
    body = build_stedi_request(inquiry, tenant_id="t", today=TODAY)
    assert body == {
        "tradingPartnerServiceId": "87726",
        "provider": {"organizationName": "Provider Name", "npi": "1999999984"},
        "subscriber": {"memberId": "UHC202649", "firstName": "John", "lastName": "Doe"},
        "dependents": [{"firstName": "Jane", "lastName": "Doe", "dateOfBirth": "19521121", "individualRelationshipCode": "01"}],
    }


def test_request_individual_provider_and_folded_names() -> None:
    inquiry = with_(provider_organization_name="", provider_first_name="Renée", provider_last_name="Okafor",
                    subscriber=dataclasses.replace(SUBSCRIBER, first_name="Zoë", suffix="Jr"))
    body = build_stedi_request(inquiry, tenant_id="t", today=TODAY)
    assert body["provider"] == {"firstName": "Renee", "lastName": "Okafor", "npi": "1999999984"}
    assert body["subscriber"]["firstName"] == "Zoe" and body["subscriber"]["suffix"] == "Jr"


def test_external_patient_id_is_opaque_and_stable() -> None:
    first = external_patient_id("tenant-a", "patient-42")
    assert first == external_patient_id("tenant-a", "patient-42")
    assert first != external_patient_id("tenant-b", "patient-42")
    assert first != external_patient_id("tenant-a", "patient-42", key=b"secret")
    assert len(first) <= 36 and "patient-42" not in first and "tenant" not in first
