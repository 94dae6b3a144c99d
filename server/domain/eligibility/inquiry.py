"""The eligibility inquiry as the domain sees it: plain values, no wire types.

The API layer converts protobuf to this; validation, request building and normalization read it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Person:
    """Subscriber or dependent. Empty string = not given (protobuf style)."""

    member_id: str = ""
    first_name: str = ""
    last_name: str = ""
    middle_name: str = ""
    suffix: str = ""
    date_of_birth: dt.date | None = None

    def __repr__(self) -> str:
        # PHI: never let a stray log line or assertion message print names, ids or birth dates.
        return "Person(<redacted>)"


@dataclass(frozen=True, slots=True)
class EligibilityInquiry:
    payer_id: str
    npi: str
    subscriber: Person
    provider_organization_name: str = ""
    provider_first_name: str = ""
    provider_last_name: str = ""
    dependent: Person | None = None
    relationship_code: str = ""  # dependent's individualRelationshipCode: 01, 19 or 34
    service_type_codes: Sequence[str] = ()  # empty = ["30"]
    date_of_service: dt.date | None = None  # None = today
    policy_id: str = ""
    patient_id: str = ""

    @property
    def patient(self) -> Person:
        """Who the check is about: the dependent when there is one, else the subscriber."""
        return self.dependent if self.dependent is not None else self.subscriber

    @property
    def patient_is_dependent(self) -> bool:
        return self.dependent is not None
