"""Payer wire models → the chain's inputs. Field for field: the domain keeps the payer's spellings and judges them."""

from __future__ import annotations

from collections.abc import Iterable

from server.clients.models import AccumulatorModel, BenefitModel, CoverageModel
from server.domain.costshare import Coverage, MemberAccumulator, RelatedAccumulator


def coverage_from_wire(benefit: BenefitModel, coverage: CoverageModel) -> Coverage:
    return Coverage(
        is_service_covered=coverage.isServiceCovered,
        copay=coverage.costShareCopay,
        coinsurance_percent=coverage.costShareCoinsurance,
        copay_applies_out_of_pocket=coverage.copayAppliesOutOfPocket,
        coins_applies_out_of_pocket=coverage.coinsAppliesOutOfPocket,
        deductible_applies_out_of_pocket=coverage.deductibleAppliesOutOfPocket,
        copay_count_to_deductible=coverage.copayCountToDeductibleIndicator,
        copay_continue_when_deductible_met=coverage.copayContinueWhenDeductibleMetIndicator,
        copay_continue_when_out_of_pocket_max_met=coverage.copayContinueWhenOutOfPocketMaxMetIndicator,
        is_deductible_before_copay=coverage.isDeductibleBeforeCopay,
        network_category=benefit.networkCategory,
        related_accumulators=related_from_wire(coverage),
    )


def related_from_wire(coverage: CoverageModel) -> tuple[RelatedAccumulator, ...]:
    """The accumulators a coverage uses (`relatedAccumulators`), as the domain names them."""
    return tuple(
        RelatedAccumulator(code=r.code, level=r.level, network_indicator_code=r.networkIndicatorCode,
                           accum_ex_code=r.accumExCode, deductible_code=r.deductibleCode)
        for r in coverage.relatedAccumulators
    )


def accumulators_from_wire(items: Iterable[AccumulatorModel]) -> list[MemberAccumulator]:
    return [
        MemberAccumulator(
            code=a.code, level=a.level, network_indicator_code=a.networkIndicatorCode,
            network_indicator=a.networkIndicator, accum_ex_code=a.accumExCode, deductible_code=a.deductibleCode,
            limit_type=a.limitType, limit_value=a.limitValue, current_value=a.currentValue,
            calculated_value=a.calculatedValue, num_of_individuals_met=a.numOfIndividualsMet,
            num_of_individuals_needed_to_meet=a.numOfIndividualsNeededToMeet,
        )
        for a in items
    ]
