"""EligibilityService wire ↔ domain/store values.

Inbound: `inquiry_from_pb` turns the request into the domain inquiry and validates it (wire rules such as a
real google.type.Date, then the domain's spec §1.4 rules), raising `RequestInvalid` with every violation under
its request path (`inquiry.subscriber.date_of_birth`). Descriptions name rules, never values (PHI).
Outbound: the use case's `CheckView` → `EligibilityCheck`, with the normalized summary; money is exact (google.type.Money
carries nanos, so a payer amount such as 1294.845 is not rounded), percents are google.type.Decimal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from costestimator.v1 import eligibility_service_pb2 as pb
from google.protobuf import struct_pb2, timestamp_pb2
from google.type import date_pb2, money_pb2

from server.api.money import CURRENCY, decimal_to_pb
from server.api.validation import FieldViolation, RequestInvalid, Violations
from server.domain.eligibility import EligibilityInquiry, EligibilitySummary, Person, calendar_date, validate_inquiry
from server.domain.eligibility.summary import (
    Bucket,
    Candidate,
    CostShareCell,
    CostShareLine,
    NetworkBuckets,
    OfficeVisitHeadline,
)
from server.store import DEFAULT_PAGE_SIZE, CheckStatus, Stats
from server.usecases.eligibility import CheckView

INQUIRY: Final = "inquiry"
# Domain field names that differ from the request's.
_FIELD_ALIASES: Final = {"dependent.relationship_code": "dependent_relationship_code"}
_NANOS: Final = Decimal(1_000_000_000)
_NANO: Final = Decimal("1e-9")

_STATUS_TO_PB: Final = {
    CheckStatus.PENDING: pb.ELIGIBILITY_STATUS_PENDING,
    CheckStatus.VERIFIED: pb.ELIGIBILITY_STATUS_VERIFIED,
    CheckStatus.FAILED: pb.ELIGIBILITY_STATUS_FAILED,
    CheckStatus.NOT_FOUND: pb.ELIGIBILITY_STATUS_NOT_FOUND,
    CheckStatus.EXPIRED: pb.ELIGIBILITY_STATUS_EXPIRED,
}
_STATUS_FROM_PB: Final[dict[int, CheckStatus]] = {int(value): key for key, value in _STATUS_TO_PB.items()}


# ---------------------------------------------------------------- inbound


def date_from_pb(value: date_pb2.Date, path: str, v: Violations) -> dt.date | None:
    """An all-zero Date is "not given"; a partial or impossible one (2026-02-31) is a violation."""
    if value.year == 0 and value.month == 0 and value.day == 0:
        return None
    if not (value.year and value.month and value.day):
        v.add(path, "must be a full date (year, month and day)")
        return None
    day = calendar_date(value.year, value.month, value.day)
    if day is None:
        v.add(path, "must be a real calendar date")
    return day


def _person(message: pb.Person, path: str, v: Violations) -> Person:
    return Person(
        member_id=message.member_id,
        first_name=message.first_name,
        last_name=message.last_name,
        middle_name=message.middle_name,
        suffix=message.suffix,
        date_of_birth=date_from_pb(message.date_of_birth, f"{path}.date_of_birth", v),
    )


def _given(message: pb.Person) -> bool:
    return any((message.member_id, message.first_name, message.last_name, message.middle_name, message.suffix,
                message.date_of_birth.year, message.date_of_birth.month, message.date_of_birth.day))


def inquiry_from_pb(message: pb.EligibilityInquiry, *, today: dt.date) -> EligibilityInquiry:
    """The validated domain inquiry, or `RequestInvalid` listing every problem at once."""
    v = Violations()
    dependent = None
    if message.HasField("dependent") and _given(message.dependent):
        dependent = _person(message.dependent, f"{INQUIRY}.dependent", v)
    inquiry = EligibilityInquiry(
        payer_id=message.payer_id,
        npi=message.provider.npi,
        subscriber=_person(message.subscriber, f"{INQUIRY}.subscriber", v),
        provider_organization_name=message.provider.organization_name,
        provider_first_name=message.provider.first_name,
        provider_last_name=message.provider.last_name,
        dependent=dependent,
        relationship_code=message.dependent_relationship_code,
        service_type_codes=tuple(message.service_type_codes),
        date_of_service=date_from_pb(message.date_of_service, f"{INQUIRY}.date_of_service", v),
        policy_id=message.policy_id.strip(),
        patient_id=message.patient_id.strip(),
    )
    for field, text in (("policy_id", inquiry.policy_id), ("patient_id", inquiry.patient_id)):
        if len(text) > 128:
            v.add(f"{INQUIRY}.{field}", "must be at most 128 characters")
    already = {item.field for item in v.items}
    for violation in validate_inquiry(inquiry, today=today):
        path = f"{INQUIRY}.{_FIELD_ALIASES.get(violation.field, violation.field)}"
        if path not in already:  # e.g. an impossible date is not also "required"
            v.add(path, violation.description)
    v.raise_if_any()
    return inquiry


def optional_text(value: str) -> str | None:
    """Proto3 strings have no presence: empty means "no filter"."""
    stripped = value.strip()
    return stripped or None


def status_from_pb(value: int) -> CheckStatus | None:
    """UNSPECIFIED (or an unknown number) means "any status"."""
    return _STATUS_FROM_PB.get(int(value))


def page_size_from_pb(value: int) -> int:
    """0 → the default; negative → INVALID_ARGUMENT; above the maximum → the maximum (the store clamps)."""
    if value < 0:
        raise RequestInvalid([FieldViolation("page_size", "must not be negative")])
    return value or DEFAULT_PAGE_SIZE


def required_id(value: str) -> str:
    check_id = value.strip()
    if not check_id:
        raise RequestInvalid([FieldViolation("id", "is required")])
    return check_id


# ---------------------------------------------------------------- outbound


def money_pb(amount: Decimal) -> money_pb2.Money:
    """Exact USD Money: units + nanos carry up to nine decimals, so payer amounts are never rounded to cents.

    (More than nine decimals — never seen from a payer — round half-even to nanos.)
    """
    exact = amount.quantize(_NANO)
    units = int(exact)  # truncates toward zero, so units and nanos share the sign
    nanos = int((exact - units) * _NANOS)
    return money_pb2.Money(currency_code=CURRENCY, units=units, nanos=nanos)


def date_pb(value: dt.date) -> date_pb2.Date:
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def timestamp_pb(value: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def _bucket(bucket: Bucket | None) -> pb.AccumulatorBucket | None:
    if bucket is None:
        return None
    out = pb.AccumulatorBucket(period=bucket.period or "", flags=list(bucket.flags))
    for name in ("total", "met", "met_reported", "remaining"):
        amount = getattr(bucket, name)
        if amount is not None:
            getattr(out, name).CopyFrom(money_pb(amount))
    return out


def _network(buckets: NetworkBuckets) -> pb.NetworkBuckets:
    out = pb.NetworkBuckets()
    if (inn := _bucket(buckets.in_network)) is not None:
        out.in_network.CopyFrom(inn)
    if (oon := _bucket(buckets.out_of_network)) is not None:
        out.out_of_network.CopyFrom(oon)
    return out


def _levels(individual: NetworkBuckets, family: NetworkBuckets) -> pb.LevelBuckets:
    return pb.LevelBuckets(individual=_network(individual), family=_network(family))


def _candidates(items: Iterable[Candidate], *, percent: bool) -> list[pb.CostShareCandidate]:
    out = []
    for c in items:
        candidate = pb.CostShareCandidate(notes=list(c.notes), place_of_service=c.place_of_service or "")
        if percent:
            candidate.percent.CopyFrom(decimal_to_pb(c.value))
        else:
            candidate.amount.CopyFrom(money_pb(c.value))
        out.append(candidate)
    return out


def _cell(cell: CostShareCell) -> pb.NetworkCostShare:
    out = pb.NetworkCostShare(
        flags=list(cell.flags),
        copay_candidates=_candidates(cell.copay_candidates, percent=False),
        coinsurance_candidates=_candidates(cell.coinsurance_candidates, percent=True),
    )
    if cell.copay is not None:
        out.copay.CopyFrom(money_pb(cell.copay))
    if cell.coinsurance_percent is not None:
        out.coinsurance_percent.CopyFrom(decimal_to_pb(cell.coinsurance_percent))
    return out


def _headline(h: OfficeVisitHeadline | None) -> pb.OfficeVisitHeadline | None:
    if h is None:
        return None
    out = pb.OfficeVisitHeadline(service_type_code=h.service_type_code)
    if h.copay is not None:
        out.copay.CopyFrom(money_pb(h.copay))
    if h.coinsurance_percent is not None:
        out.coinsurance_percent.CopyFrom(decimal_to_pb(h.coinsurance_percent))
    return out


def _line(line: CostShareLine) -> pb.CostShareLine:
    out = pb.CostShareLine(
        kind=line.kind.value, service_type_codes=list(line.service_type_codes),
        network_code=line.network_code or "", coverage_level_code=line.coverage_level_code or "",
        time_qualifier_code=line.time_qualifier_code or "", notes=list(line.notes),
        place_of_service=line.place_of_service or "", auth_or_cert_indicator=line.auth_or_cert_indicator or "",
        source_index=line.source_ref,
    )
    if line.amount is not None:
        out.amount.CopyFrom(money_pb(line.amount))
    if line.percent is not None:
        out.percent.CopyFrom(decimal_to_pb(line.percent))
    return out


def _activity(active: bool | None) -> pb.CoverageActivity.ValueType:
    if active is True:
        return pb.COVERAGE_ACTIVITY_ACTIVE
    if active is False:
        return pb.COVERAGE_ACTIVITY_INACTIVE
    return pb.COVERAGE_ACTIVITY_UNCLEAR


def summary_pb(summary: EligibilitySummary) -> pb.EligibilitySummary:
    out = pb.EligibilitySummary(
        activity=_activity(summary.active),
        plan_name=summary.plan_name or "",
        plan_number=summary.plan_number or "",
        group_number=summary.group_number or "",
        group_name=summary.group_name or "",
        insurance_type_code=summary.insurance_type_code or "",
        payer_name=summary.payer_name or "",
        payer_reported_id=summary.payer_reported_id or "",
        deductible=_levels(summary.deductible.individual, summary.deductible.family),
        out_of_pocket=_levels(summary.out_of_pocket.individual, summary.out_of_pocket.family),
        service_cost_shares=[
            pb.ServiceCostShare(
                service_type_code=s.service_type_code,
                service_type_name=s.service_type_name,
                in_network=_cell(s.in_network),
                out_of_network=_cell(s.out_of_network),
            )
            for s in summary.service_cost_shares
        ],
        notes=[pb.SummaryNote(kind=n.kind.value, service_type_codes=list(n.service_type_codes), text=n.text)
               for n in summary.notes],
        flags=list(summary.flags),
        recipe_version=summary.recipe_version,
        cost_shares=[_line(line) for line in summary.cost_shares],
    )
    for name in ("office_visit_in_network", "office_visit_out_of_network"):
        if (headline := _headline(getattr(summary, name))) is not None:
            getattr(out, name).CopyFrom(headline)
    for name in ("effective_date", "termination_date", "eligibility_begin_date"):
        value = getattr(summary, name)
        if value is not None:
            getattr(out, name).CopyFrom(date_pb(value))
    return out


def raw_struct(raw: Mapping[str, Any]) -> struct_pb2.Struct:
    """The clearinghouse body as stored (amounts are JSON strings there, so nothing passes through a float)."""
    out = struct_pb2.Struct()
    out.update(_jsonable(raw))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def check_pb(record: CheckView, *, include_raw: bool = False) -> pb.EligibilityCheck:
    """A check as the API shows it. Summary only when the payer answered with benefits (never on FAILED)."""
    out = pb.EligibilityCheck(
        id=record.id,
        status=_STATUS_TO_PB[record.status],
        policy_id=record.policy_id or "",
        patient_id=record.patient_id or "",
        payer_id=record.payer_id,
        failure_reason=record.failure_reason or "",
        clearinghouse_check_id=record.clearinghouse_id or "",
        attempts=record.attempts,
    )
    out.requested_at.CopyFrom(timestamp_pb(record.requested_at))
    if record.completed_at is not None:
        out.completed_at.CopyFrom(timestamp_pb(record.completed_at))
    if record.summary is not None and record.status is not CheckStatus.FAILED:
        out.summary.CopyFrom(summary_pb(record.summary))
    if include_raw and record.raw is not None:
        out.raw_response.CopyFrom(raw_struct(record.raw))
    return out


def stats_pb(stats: Stats) -> pb.GetEligibilityStatsResponse:
    out = pb.GetEligibilityStatsResponse(
        total=stats.total,
        pending=stats.pending,
        verified=stats.verified,
        failed=stats.failed,
        not_found=stats.not_found,
        expired=stats.expired,
    )
    if stats.last_requested_at is not None:
        out.last_checked_at.CopyFrom(timestamp_pb(stats.last_requested_at))
    if stats.last_completed_at is not None:
        out.last_completed_at.CopyFrom(timestamp_pb(stats.last_completed_at))
    return out
