"""The cost-share calculation chain of the rule book (docs/spec/cost-share-rules.md).

Public entry point: :func:`calculate`; inputs in :mod:`.inputs`, output in :mod:`.result`.
"""

from server.domain.costshare.chain import calculate
from server.domain.costshare.inputs import (
    AccumKind,
    Coverage,
    Indicator,
    Level,
    LimitType,
    MemberAccumulator,
    RelatedAccumulator,
)
from server.domain.costshare.matching import MemberAccumulators
from server.domain.costshare.result import AccumulatorState, Breakdown, CostShareResult
from server.domain.costshare.routing import HandlerId
from server.domain.costshare.trace import TraceLine

__all__ = [
    "AccumKind",
    "AccumulatorState",
    "Breakdown",
    "CostShareResult",
    "Coverage",
    "HandlerId",
    "Indicator",
    "Level",
    "LimitType",
    "MemberAccumulator",
    "MemberAccumulators",
    "RelatedAccumulator",
    "TraceLine",
    "calculate",
]
