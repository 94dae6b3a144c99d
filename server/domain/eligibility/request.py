"""Build the Stedi v3 request body (spec §1.2/§1.3) from a validated inquiry.

Deliberately minimal: no deprecated `controlNumber`, no extra provider fields, `encounter` only when it
changes what Stedi would do by default (STC 30, today), and a hashed `externalPatientId` so no MRN or
name ever leaves us as a correlation id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

from .inquiry import EligibilityInquiry, Person
from .validation import DEFAULT_SERVICE_TYPE_CODES, clean_inquiry

EXTERNAL_PATIENT_ID_LENGTH = 32  # Stedi allows 36


def yyyymmdd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def external_patient_id(tenant_id: str, patient_id: str, *, key: bytes = b"") -> str:
    """Stable, opaque correlation id for one patient of one tenant (HMAC-SHA256, hex, 32 chars)."""
    digest = hmac.new(key or b"costestimator/externalPatientId", f"{tenant_id}:{patient_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:EXTERNAL_PATIENT_ID_LENGTH]


def _person_fields(person: Person) -> dict[str, str]:
    fields = {
        "memberId": person.member_id,
        "firstName": person.first_name,
        "lastName": person.last_name,
        "middleName": person.middle_name,
        "suffix": person.suffix,
        "dateOfBirth": yyyymmdd(person.date_of_birth) if person.date_of_birth else "",
    }
    return {name: value for name, value in fields.items() if value}


def build_stedi_request(
    inquiry: EligibilityInquiry, *, tenant_id: str, today: dt.date, external_id_key: bytes = b""
) -> dict[str, Any]:
    """The JSON body for `POST .../eligibility/v3`. Call only after `validate_inquiry` returned no violations."""
    clean = clean_inquiry(inquiry)
    provider: dict[str, str] = {}
    if clean.provider_organization_name:
        provider["organizationName"] = clean.provider_organization_name
    else:
        provider["firstName"] = clean.provider_first_name
        provider["lastName"] = clean.provider_last_name
    provider["npi"] = clean.npi

    body: dict[str, Any] = {"tradingPartnerServiceId": clean.payer_id}
    if clean.patient_id:
        body["externalPatientId"] = external_patient_id(tenant_id, clean.patient_id, key=external_id_key)
    body["provider"] = provider
    body["subscriber"] = _person_fields(clean.subscriber)
    if clean.dependent is not None:
        dependent: dict[str, str] = _person_fields(clean.dependent)
        dependent.pop("memberId", None)  # deprecated for dependents; validation already rejects it
        dependent["individualRelationshipCode"] = clean.relationship_code
        body["dependents"] = [dependent]

    encounter: dict[str, Any] = {}
    codes = tuple(clean.service_type_codes)
    dos = clean.date_of_service
    needs_date = dos is not None and dos != today  # Stedi: omit the date when checking for today
    if codes != DEFAULT_SERVICE_TYPE_CODES or needs_date:
        encounter["serviceTypeCodes"] = list(codes)
    if needs_date and dos is not None:
        encounter["dateOfService"] = yyyymmdd(dos)
    if encounter:
        body["encounter"] = encounter
    return body
