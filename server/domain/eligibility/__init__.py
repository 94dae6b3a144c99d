"""Eligibility (Stedi 270/271) domain: validation, request building, AAA classification, normalization.

Pure standard library (no I/O, no logging): the orchestration layer calls Stedi and stores results.
Typical flow: `validate_inquiry` -> `build_stedi_request` -> (client call) -> `normalize_response`.
"""

from __future__ import annotations

from .aaa import AaaClass, AaaClassification, AaaError, AaaLevel, classify_aaa, classify_body, collect_aaa_errors
from .inquiry import EligibilityInquiry, Person
from .normalize import NormalizationContext, NormalizedEligibility, build_summary, normalize_response
from .npi import is_valid_npi, npi_check_digit
from .request import build_stedi_request, external_patient_id
from .status import CheckOutcome, CheckStatus, RetryPolicy
from .summary import RECIPE_VERSION, EligibilitySummary
from .validation import FieldViolation, calendar_date, clean_inquiry, parse_yyyymmdd, validate_inquiry

__all__ = [
    "RECIPE_VERSION",
    "AaaClass",
    "AaaClassification",
    "AaaError",
    "AaaLevel",
    "CheckOutcome",
    "CheckStatus",
    "EligibilityInquiry",
    "EligibilitySummary",
    "FieldViolation",
    "NormalizationContext",
    "NormalizedEligibility",
    "Person",
    "RetryPolicy",
    "build_stedi_request",
    "build_summary",
    "calendar_date",
    "classify_aaa",
    "classify_body",
    "clean_inquiry",
    "collect_aaa_errors",
    "external_patient_id",
    "is_valid_npi",
    "normalize_response",
    "npi_check_digit",
    "parse_yyyymmdd",
    "validate_inquiry",
]
