"""The normalized eligibility summary (spec §2.5, §4) and its JSON storage form.

Frozen dataclasses with exact types: money and percents are Decimal (stored as strings), dates are
`datetime.date` (stored ISO). `to_json`/`from_json` round-trip losslessly so summaries can be stored and
recomputed when `RECIPE_VERSION` changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import types
import typing
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any, Final, TypeVar

RECIPE_VERSION: Final = "stedi-v3/2"  # /2: service_lines, plan_coverages, date_of_service


class NoteKind(StrEnum):
    AUTH_REQUIRED = "AUTH_REQUIRED"
    PCP = "PCP"
    RELATED_ENTITY = "RELATED_ENTITY"
    INFO = "INFO"


class CostShareKind(StrEnum):
    COPAY = "COPAY"  # EB01 B, benefitAmount
    COINSURANCE = "COINSURANCE"  # EB01 A, benefitPercent


class ServiceLineKind(StrEnum):
    """What a service-level line says (estimate-from-eligibility.md §7.1)."""

    DEDUCTIBLE = "DEDUCTIBLE"  # EB01 C for STCs other than 30
    OUT_OF_POCKET = "OUT_OF_POCKET"  # EB01 G for STCs other than 30
    LIMITATION = "LIMITATION"  # EB01 F
    NOT_COVERED = "NOT_COVERED"  # EB01 I


@dataclasses.dataclass(frozen=True, slots=True)
class CodeName:
    code: str
    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class Bucket:
    """One accumulator cell, e.g. individual in-network deductible. `met` is derived (total − remaining)."""

    period: str | None = None  # time qualifier that gave `total`: 23, 22, 25 or 21
    total: Decimal | None = None
    remaining: Decimal | None = None
    met: Decimal | None = None
    met_reported: Decimal | None = None  # time qualifier 24 as the payer sent it
    flags: tuple[str, ...] = ()
    source_refs: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkBuckets:
    in_network: Bucket | None = None
    out_of_network: Bucket | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Accumulator:
    individual: NetworkBuckets = NetworkBuckets()
    family: NetworkBuckets = NetworkBuckets()


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    """One competing copay (amount) or coinsurance (percent) value, with what tells them apart."""

    value: Decimal
    notes: tuple[str, ...] = ()
    place_of_service: str | None = None
    source_ref: int = -1


@dataclasses.dataclass(frozen=True, slots=True)
class CostShareCell:
    copay: Decimal | None = None
    coinsurance_percent: Decimal | None = None  # 20 means 20 %
    flags: tuple[str, ...] = ()
    copay_candidates: tuple[Candidate, ...] = ()  # filled only when AMBIGUOUS_COPAY
    coinsurance_candidates: tuple[Candidate, ...] = ()  # filled only when AMBIGUOUS_COINSURANCE
    source_refs: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceCostShare:
    service_type_code: str
    service_type_name: str
    in_network: CostShareCell
    out_of_network: CostShareCell


@dataclasses.dataclass(frozen=True, slots=True)
class OfficeVisitHeadline:
    service_type_code: str
    copay: Decimal | None
    coinsurance_percent: Decimal | None
    source_refs: tuple[int, ...] = ()  # the cell's: the entries the copay and coinsurance came from


@dataclasses.dataclass(frozen=True, slots=True)
class CostShareLine:
    """Every A/B entry as sent, so nothing hides behind the headline values."""

    kind: CostShareKind
    service_type_codes: tuple[str, ...]
    network_code: str | None
    coverage_level_code: str | None
    time_qualifier_code: str | None
    amount: Decimal | None
    percent: Decimal | None
    notes: tuple[str, ...]
    place_of_service: str | None
    auth_or_cert_indicator: str | None
    source_ref: int


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceLine:
    """A service-level C/G line (STC list without 30), or any F / I line, as sent: the plan-level buckets leave
    them out (EL §4 step 4.1), the estimate needs them (deductible signals, limits, not-covered)."""

    kind: ServiceLineKind
    service_type_codes: tuple[str, ...]
    network_code: str | None
    coverage_level_code: str | None
    time_qualifier_code: str | None
    amount: Decimal | None
    percent: Decimal | None
    quantity_qualifier_code: str | None
    quantity: Decimal | None
    notes: tuple[str, ...]
    place_of_service: str | None
    auth_or_cert_indicator: str | None
    source_ref: int


@dataclasses.dataclass(frozen=True, slots=True)
class PlanCoverage:
    """One distinct (planCoverage, insuranceTypeCode) of the active STC-30 lines: two or more = several plans."""

    plan_coverage: str | None
    insurance_type_code: str | None
    source_refs: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Note:
    kind: NoteKind
    service_type_codes: tuple[str, ...]
    text: str
    source_ref: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RawRef:
    stedi_id: str | None = None
    trace_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class EligibilitySummary:
    active: bool | None
    coverage_status: CodeName | None
    plan_name: str | None
    insurance_type_code: str | None
    group_number: str | None
    group_name: str | None
    plan_number: str | None
    payer_id: str | None
    payer_reported_id: str | None
    payer_name: str | None
    effective_date: dt.date | None
    termination_date: dt.date | None
    eligibility_begin_date: dt.date | None
    deductible: Accumulator
    out_of_pocket: Accumulator
    service_cost_shares: tuple[ServiceCostShare, ...]
    office_visit_in_network: OfficeVisitHeadline | None
    office_visit_out_of_network: OfficeVisitHeadline | None
    cost_shares: tuple[CostShareLine, ...]
    notes: tuple[Note, ...]
    flags: tuple[str, ...]
    source_refs: tuple[int, ...]  # benefit entries that decided `active`
    raw_ref: RawRef
    recipe_version: str = RECIPE_VERSION
    # Added by recipe stedi-v3/2 (defaults only so older stored forms still load; they are re-derived on read).
    service_lines: tuple[ServiceLine, ...] = ()
    plan_coverages: tuple[PlanCoverage, ...] = ()
    date_of_service: dt.date | None = None  # the check's: what every value in here is "as of"

    def service(self, code: str) -> ServiceCostShare | None:
        return next((item for item in self.service_cost_shares if item.service_type_code == code), None)

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible dict (Decimal -> string, date -> ISO string)."""
        dumped = _dump(self)
        assert isinstance(dumped, dict)
        return dumped

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> EligibilitySummary:
        return _load(cls, json.loads(data) if isinstance(data, str) else data)


def _dump(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_dump(item) for item in value]
    return value


T = TypeVar("T")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """Resolving the annotations costs milliseconds; the classes never change, so once per class."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _load(cls: type[T], data: Mapping[str, Any]) -> T:
    hints = _hints(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    kwargs = {f.name: _load_value(hints[f.name], data[f.name]) for f in fields if f.name in data}
    return cls(**kwargs)


def _load_value(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return _load_value(inner, value)
    if origin is tuple:
        (inner, *_rest) = typing.get_args(tp)
        return tuple(_load_value(inner, item) for item in value)
    if tp is Decimal:
        return Decimal(str(value))
    if tp is dt.date:
        return dt.date.fromisoformat(value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _load(tp, value)
    return value
