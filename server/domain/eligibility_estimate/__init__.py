"""Estimate from eligibility (estimate-from-eligibility.md): from a VERIFIED 271 summary to the chain's inputs,
one small module (one table) per decision, and the unchanged chain run over every reading the 271 allows.

D2 `service_types` · D3/D4 `cells` · D5 `not_covered` · D6 `deductible` · D7 `accumulators` · D8 `limits` ·
D9 `readings` · the assumption catalogue `assumptions` · the orchestration (and D1) `estimate`. Pure: no I/O.
"""

from .assumptions import CATALOGUE, Assumption, AssumptionKind
from .cells import ProviderRole
from .estimate import (
    COVERAGE_INACTIVE,
    COVERAGE_STATUS_UNCLEAR,
    CoverageRefused,
    Decision,
    EstimateProvider,
    ProviderEstimate,
    ServiceToEstimate,
    UnmappedService,
    estimate_from_eligibility,
    estimate_provider,
    refusal,
)
from .network import IN, OUT
from .readings import ChainInputs, Completeness
from .service_types import mapped_row

__all__ = [
    "CATALOGUE",
    "COVERAGE_INACTIVE",
    "COVERAGE_STATUS_UNCLEAR",
    "IN",
    "OUT",
    "Assumption",
    "AssumptionKind",
    "ChainInputs",
    "Completeness",
    "CoverageRefused",
    "Decision",
    "EstimateProvider",
    "ProviderEstimate",
    "ProviderRole",
    "ServiceToEstimate",
    "UnmappedService",
    "estimate_from_eligibility",
    "estimate_provider",
    "mapped_row",
    "refusal",
]
