"""EligibilityService wire ↔ domain/store values.

Inbound: `inquiry_from_pb` turns the request into the domain inquiry and validates it (wire rules such as a
real google.type.Date, then the domain's spec §1.4 rules), raising `RequestInvalid` with every violation under
its request path (`inquiry.subscriber.date_of_birth`). Descriptions name rules, never values (PHI).
Outbound: the use case's `CheckView` → `EligibilityCheck`, with the normalized summary; money is exact (google.type.Money
carries nanos, so a payer amount such as 1294.845 is not rounded), percents are google.type.Decimal.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from costestimator.v1 import eligibility_service_pb2 as pb
from google.protobuf import struct_pb2, timestamp_pb2
from google.type import date_pb2, decimal_pb2, money_pb2

from server.api.money import CURRENCY
from server.api.validation import FieldViolation, RequestInvalid, Violations, check_enum
from server.domain.eligibility import EligibilityInquiry, EligibilitySummary, Person, calendar_date, validate_inquiry
from server.domain.eligibility.status import CheckStatus, Stats
from server.domain.eligibility.summary import (
    Accumulator,
    Bucket,
    CostShareCell,
    CostShareLine,
    NetworkBuckets,
    OfficeVisitHeadline,
    ServiceLine,
)
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
_STATUS_NAMES: Final[dict[int, str]] = {number: status.name for number, status in _STATUS_FROM_PB.items()}


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
    """The status filter: UNSPECIFIED (0) means "any status"; a number the enum does not define is refused
    (INVALID_ARGUMENT on `status`), never widened to "any"."""
    v = Violations()
    check_enum(int(value), _STATUS_NAMES, "status", v, required=False)
    v.raise_if_any()
    return _STATUS_FROM_PB.get(int(value))


def page_size_from_pb(value: int) -> int:
    """Negative → INVALID_ARGUMENT; 0 (the default) and anything above the maximum are the store's to settle: it
    reads 0 as its default page size and lowers a larger one to its maximum (AIP-158)."""
    if value < 0:
        raise RequestInvalid([FieldViolation("page_size", "must not be negative")])
    return value


def required_id(value: str) -> str:
    check_id = value.strip()
    if not check_id:
        raise RequestInvalid([FieldViolation("id", "is required")])
    return check_id


# ---------------------------------------------------------------- outbound


@functools.lru_cache(maxsize=4096)
def _money_parts(amount: Decimal) -> tuple[int, int]:
    """(units, nanos) of an amount. A pure function of the value, and payers repeat the same few amounts
    (0, the plan's deductible, the copays), so it is memoised (bounded) rather than recomputed per field."""
    exact = amount.quantize(_NANO)
    units = int(exact)  # truncates toward zero, so units and nanos share the sign
    nanos = int((exact - units) * _NANOS)
    return units, nanos


def money_pb(amount: Decimal) -> money_pb2.Money:
    """Exact USD Money: units + nanos carry up to nine decimals, so payer amounts are never rounded to cents.

    (More than nine decimals — never seen from a payer — round half-even to nanos.)
    """
    units, nanos = _money_parts(amount)
    return money_pb2.Money(currency_code=CURRENCY, units=units, nanos=nanos)


def _set_money(target: money_pb2.Money, amount: Decimal) -> None:
    """`money_pb` written straight into the parent's field (no message built and copied)."""
    units, nanos = _money_parts(amount)
    target.currency_code = CURRENCY
    target.units = units
    target.nanos = nanos


def _set_decimal(target: decimal_pb2.Decimal, value: Decimal) -> None:
    """`decimal_to_pb` written straight into the parent's field."""
    target.value = format(value, "f")


def date_pb(value: dt.date) -> date_pb2.Date:
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def timestamp_pb(value: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


# The summary is written into the response in place: building each sub-message on its own and copying it into
# its parent (CopyFrom, or a message passed to a constructor) cost about half of the conversion. Every message
# the previous form set stays set (`SetInParent`), so the bytes on the wire are the same (a test pins them).


def _fill_bucket(out: pb.AccumulatorBucket, bucket: Bucket) -> None:
    out.SetInParent()
    out.period = bucket.period or ""
    out.flags.extend(bucket.flags)
    out.source_indices.extend(bucket.source_refs)
    if bucket.total is not None:
        _set_money(out.total, bucket.total)
    if bucket.met is not None:
        _set_money(out.met, bucket.met)
    if bucket.met_reported is not None:
        _set_money(out.met_reported, bucket.met_reported)
    if bucket.remaining is not None:
        _set_money(out.remaining, bucket.remaining)


def _fill_network(out: pb.NetworkBuckets, buckets: NetworkBuckets) -> None:
    out.SetInParent()
    if buckets.in_network is not None:
        _fill_bucket(out.in_network, buckets.in_network)
    if buckets.out_of_network is not None:
        _fill_bucket(out.out_of_network, buckets.out_of_network)


def _fill_levels(out: pb.LevelBuckets, accumulator: Accumulator) -> None:
    out.SetInParent()
    _fill_network(out.individual, accumulator.individual)
    _fill_network(out.family, accumulator.family)


def _refs(source_ref: int) -> tuple[int, ...]:
    """A candidate's one entry index as `source_indices` (none when the normalizer did not know it: -1)."""
    return (source_ref,) if source_ref >= 0 else ()


def _fill_cell(out: pb.NetworkCostShare, cell: CostShareCell) -> None:
    out.SetInParent()
    out.flags.extend(cell.flags)
    out.source_indices.extend(cell.source_refs)
    for c in cell.copay_candidates:
        _set_money(out.copay_candidates.add(notes=c.notes, place_of_service=c.place_of_service or "",
                                            source_indices=_refs(c.source_ref)).amount, c.value)
    for c in cell.coinsurance_candidates:
        candidate = out.coinsurance_candidates.add(notes=c.notes, place_of_service=c.place_of_service or "",
                                                   source_indices=_refs(c.source_ref))
        _set_decimal(candidate.percent, c.value)
    if cell.copay is not None:
        _set_money(out.copay, cell.copay)
    if cell.coinsurance_percent is not None:
        _set_decimal(out.coinsurance_percent, cell.coinsurance_percent)


def _fill_headline(out: pb.OfficeVisitHeadline, h: OfficeVisitHeadline) -> None:
    out.SetInParent()
    out.service_type_code = h.service_type_code
    out.source_indices.extend(h.source_refs)
    if h.copay is not None:
        _set_money(out.copay, h.copay)
    if h.coinsurance_percent is not None:
        _set_decimal(out.coinsurance_percent, h.coinsurance_percent)


def _fill_line(out: pb.CostShareLine, line: CostShareLine) -> None:
    if line.amount is not None:
        _set_money(out.amount, line.amount)
    if line.percent is not None:
        _set_decimal(out.percent, line.percent)


def _fill_service_line(out: pb.ServiceLine, line: ServiceLine) -> None:
    if line.amount is not None:
        _set_money(out.amount, line.amount)
    if line.percent is not None:
        _set_decimal(out.percent, line.percent)
    if line.quantity is not None:
        _set_decimal(out.quantity, line.quantity)


def _fill_date(out: date_pb2.Date, value: dt.date) -> None:
    out.year, out.month, out.day = value.year, value.month, value.day


def _activity(active: bool | None) -> pb.CoverageActivity.ValueType:
    if active is True:
        return pb.COVERAGE_ACTIVITY_ACTIVE
    if active is False:
        return pb.COVERAGE_ACTIVITY_INACTIVE
    return pb.COVERAGE_ACTIVITY_UNCLEAR


def fill_summary(out: pb.EligibilitySummary, summary: EligibilitySummary) -> None:
    """The summary as the API shows it, written into `out` (e.g. a check's `summary` field)."""
    out.SetInParent()
    out.activity = _activity(summary.active)
    out.plan_name = summary.plan_name or ""
    out.plan_number = summary.plan_number or ""
    out.group_number = summary.group_number or ""
    out.group_name = summary.group_name or ""
    out.insurance_type_code = summary.insurance_type_code or ""
    out.payer_name = summary.payer_name or ""
    out.payer_reported_id = summary.payer_reported_id or ""
    _fill_levels(out.deductible, summary.deductible)
    _fill_levels(out.out_of_pocket, summary.out_of_pocket)
    for s in summary.service_cost_shares:
        service = out.service_cost_shares.add(service_type_code=s.service_type_code,
                                              service_type_name=s.service_type_name)
        _fill_cell(service.in_network, s.in_network)
        _fill_cell(service.out_of_network, s.out_of_network)
    for n in summary.notes:
        out.notes.add(kind=n.kind.value, service_type_codes=n.service_type_codes, text=n.text)
    out.flags.extend(summary.flags)
    out.recipe_version = summary.recipe_version
    if summary.coverage_status is not None:
        out.coverage_status.code = summary.coverage_status.code
        out.coverage_status.name = summary.coverage_status.name
    out.source_indices.extend(summary.source_refs)
    for line in summary.cost_shares:
        _fill_line(out.cost_shares.add(
            kind=line.kind.value, service_type_codes=line.service_type_codes,
            network_code=line.network_code or "", coverage_level_code=line.coverage_level_code or "",
            time_qualifier_code=line.time_qualifier_code or "", notes=line.notes,
            place_of_service=line.place_of_service or "", auth_or_cert_indicator=line.auth_or_cert_indicator or "",
            source_index=line.source_ref,
        ), line)
    if summary.office_visit_in_network is not None:
        _fill_headline(out.office_visit_in_network, summary.office_visit_in_network)
    if summary.office_visit_out_of_network is not None:
        _fill_headline(out.office_visit_out_of_network, summary.office_visit_out_of_network)
    if summary.effective_date is not None:
        _fill_date(out.effective_date, summary.effective_date)
    if summary.termination_date is not None:
        _fill_date(out.termination_date, summary.termination_date)
    if summary.eligibility_begin_date is not None:
        _fill_date(out.eligibility_begin_date, summary.eligibility_begin_date)
    for sl in summary.service_lines:
        _fill_service_line(out.service_lines.add(
            kind=sl.kind.value, service_type_codes=sl.service_type_codes, network_code=sl.network_code or "",
            coverage_level_code=sl.coverage_level_code or "", time_qualifier_code=sl.time_qualifier_code or "",
            quantity_qualifier_code=sl.quantity_qualifier_code or "", notes=sl.notes,
            place_of_service=sl.place_of_service or "", auth_or_cert_indicator=sl.auth_or_cert_indicator or "",
            source_index=sl.source_ref,
        ), sl)
    for pc in summary.plan_coverages:
        out.plan_coverages.add(plan_coverage=pc.plan_coverage or "", insurance_type_code=pc.insurance_type_code or "")
    if summary.date_of_service is not None:
        _fill_date(out.date_of_service, summary.date_of_service)


def summary_pb(summary: EligibilitySummary) -> pb.EligibilitySummary:
    out = pb.EligibilitySummary()
    fill_summary(out, summary)
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
    out = pb.EligibilityCheck()
    fill_check(out, record, include_raw=include_raw)
    return out


def fill_check(out: pb.EligibilityCheck, record: CheckView, *, include_raw: bool = False) -> None:
    """`check_pb` written into `out` (e.g. a response's `check` field: no copy of the summary)."""
    out.SetInParent()
    out.id = record.id
    out.status = _STATUS_TO_PB[record.status]
    out.policy_id = record.policy_id or ""
    out.patient_id = record.patient_id or ""
    out.payer_id = record.payer_id
    out.failure_reason = record.failure_reason or ""
    out.clearinghouse_check_id = record.clearinghouse_id or ""
    out.attempts = record.attempts
    out.requested_at.FromDatetime(record.requested_at)
    if record.completed_at is not None:
        out.completed_at.FromDatetime(record.completed_at)
    if record.summary is not None and record.status is not CheckStatus.FAILED:
        fill_summary(out.summary, record.summary)
    if include_raw and record.raw is not None:
        out.raw_response.CopyFrom(raw_struct(record.raw))


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
