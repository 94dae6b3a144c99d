"""EstimateFromEligibility: resolve the check (a stored one of the caller's tenant, or an inquiry run now and
stored exactly as CheckEligibility does), refuse what D1 refuses, then the pure derivation per provider.

Refusals (estimate-from-eligibility.md §3) are typed exceptions carrying the spec's `reason` and the check id;
the API's one error map turns them into statuses with `google.rpc.ErrorInfo`. Knows nothing of gRPC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from server.domain.eligibility import EligibilityInquiry, EligibilitySummary
from server.domain.eligibility import status as reasons
from server.domain.eligibility_estimate import (
    CoverageRefused,
    EstimateProvider,
    ProviderEstimate,
    ServiceToEstimate,
    estimate_from_eligibility,
)
from server.store import CheckStatus

from .eligibility import (
    CheckNotFound,
    CheckView,
    EligibilityCheckDeferred,
    EligibilityCheckFailed,
    EligibilityChecks,
    stored_summary,
    summary_is_stale,
)


class EstimateRefused(Exception):
    """Nothing is estimated (D1). `reason` is the ErrorInfo reason; `check_id` its metadata when a check exists.
    Subclasses say which status it is; messages never carry member data."""

    status: ClassVar[str] = "FAILED_PRECONDITION"

    def __init__(self, reason: str, message: str, check_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.check_id = check_id

    @property
    def error_metadata(self) -> dict[str, str]:
        return {"check_id": self.check_id} if self.check_id else {}


class CheckUnusable(EstimateRefused):
    """FAILED_PRECONDITION: the check is pending, expired, failed, found no member, or its coverage is inactive
    or unclear."""


class CheckUnknown(EstimateRefused):
    """NOT_FOUND: no such check in the caller's tenant."""

    status = "NOT_FOUND"


class EligibilityUnavailable(EstimateRefused):
    """UNAVAILABLE: the inquiry run now failed on payer connectivity or clearinghouse trouble (retryable)."""

    status = "UNAVAILABLE"


class CheckStillRunning(EstimateRefused):
    """DEADLINE_EXCEEDED: the inquiry run now outlived the caller's deadline; it goes on in the background."""

    status = "DEADLINE_EXCEEDED"


@dataclass(frozen=True, slots=True)
class EligibilityEstimates:
    check_id: str
    date_of_service: dt.date | None
    estimates: tuple[ProviderEstimate, ...]


_STORED_REFUSALS = {
    CheckStatus.PENDING: ("CHECK_PENDING", "the eligibility check is still pending"),
    CheckStatus.EXPIRED: ("CHECK_EXPIRED", "the eligibility check is too old; run a new one"),
    CheckStatus.NOT_FOUND: ("MEMBER_NOT_FOUND", "the payer did not find the member"),
    CheckStatus.FAILED: ("CHECK_FAILED", "the eligibility check failed"),
}
_COVERAGE_MESSAGES = {"COVERAGE_INACTIVE": "the member's coverage is not active on the date of service",
                      "COVERAGE_STATUS_UNCLEAR": "the payer's answer does not say whether the coverage is active"}


def failed_inquiry(check_id: str, failure_reason: str) -> EstimateRefused:
    """An inquiry run now that ended FAILED: retryable connectivity trouble is UNAVAILABLE, the rest refused."""
    if failure_reason.startswith(reasons.PAYER_UNAVAILABLE):
        return EligibilityUnavailable("PAYER_UNAVAILABLE", "the payer is unable to respond", check_id)
    if failure_reason.startswith((reasons.STEDI_THROTTLED, reasons.STEDI_UNAVAILABLE)):
        return EligibilityUnavailable("CLEARINGHOUSE_UNAVAILABLE", "the clearinghouse is unavailable", check_id)
    return CheckUnusable("CHECK_FAILED", "the eligibility check failed", check_id)


class EligibilityEstimator:
    """The use case: one check, one service, the providers in order."""

    def __init__(self, checks: EligibilityChecks) -> None:
        self._checks = checks

    async def from_check_id(
        self, tenant_id: str, check_id: str, service: ServiceToEstimate, providers: Sequence[EstimateProvider],
        *, trace: bool = False,
    ) -> EligibilityEstimates:
        try:
            record = await self._checks.record(tenant_id, check_id)
        except CheckNotFound:
            raise CheckUnknown("CHECK_NOT_FOUND", "eligibility check not found") from None
        refused = _STORED_REFUSALS.get(record.status)
        if refused is not None:
            raise CheckUnusable(refused[0], refused[1], record.id)
        if summary_is_stale(record) and (record.response is None or record.response.raw is None):
            raise CheckUnusable("CHECK_FAILED", "the stored check cannot be read with the current recipe", record.id)
        return self._estimate(record.id, stored_summary(record), service, providers, trace)

    async def from_inquiry(
        self, tenant_id: str, inquiry: EligibilityInquiry, service: ServiceToEstimate,
        providers: Sequence[EstimateProvider], *, timeout: float | None, trace: bool = False,
    ) -> EligibilityEstimates:
        try:
            view: CheckView = await self._checks.check(tenant_id, inquiry, timeout=timeout)
        except EligibilityCheckDeferred as exc:
            raise CheckStillRunning("CHECK_PENDING", "the eligibility check continues in the background",
                                    exc.check_id) from exc
        except EligibilityCheckFailed as exc:
            raise failed_inquiry(exc.check_id, exc.failure_reason) from exc
        if view.status is not CheckStatus.VERIFIED:  # NOT_FOUND: a member-data answer
            reason, message = _STORED_REFUSALS.get(view.status, ("CHECK_FAILED", "the eligibility check failed"))
            raise CheckUnusable(reason, message, view.id)
        return self._estimate(view.id, view.summary, service, providers, trace)

    @staticmethod
    def _estimate(
        check_id: str, summary: EligibilitySummary | None, service: ServiceToEstimate,
        providers: Sequence[EstimateProvider], trace: bool,
    ) -> EligibilityEstimates:
        if summary is None:
            raise CheckUnusable("CHECK_FAILED", "the eligibility check has no benefits", check_id)
        try:
            estimates = estimate_from_eligibility(summary, service, providers, trace=trace)
        except CoverageRefused as exc:
            raise CheckUnusable(exc.reason, _COVERAGE_MESSAGES[exc.reason], check_id) from None
        return EligibilityEstimates(check_id, summary.date_of_service, estimates)
