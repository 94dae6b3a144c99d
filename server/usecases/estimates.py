"""Estimate / StreamEstimates: one member, one service, many providers, upstream calls done once each.

Per request: the accumulators are fetched once, concurrently with the benefit calls; providers whose upstream
benefit request would be identical (same provider type and specialty) share one call. Benefit answers go through
the benefit cache (per tenant; identical calls in flight across requests are coalesced). The fan-out is bounded
by the benefits upstream's connection pool (and the caller's deadline), not by a narrower fixed width. As each
benefit answer arrives, every provider sharing it is computed and yielded at once.
Request-level failures (member not found, accumulators unavailable) end the stream; a provider's own failure is
that provider's outcome. Leaving the generator early (client cancel, deadline) cancels every outstanding call.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from server.clients.accumulators import AccumulatorsClient
from server.clients.errors import MemberNotFound
from server.clients.models import (
    AccumulatorsResponseModel,
    BenefitRequestModel,
    BenefitResponseModel,
    CodeModel,
    RequestServiceCodeInfoModel,
    RequestServiceInfoModel,
)
from server.domain.costshare import (
    AccumKind,
    Coverage,
    CostShareResult,
    Level,
    MemberAccumulator,
    MemberAccumulators,
    calculate,
)
from server.domain.costshare.inputs import parse_code, parse_level, parse_network
from server.domain.errors import InvalidInput
from server.usecases.benefit_cache import BenefitAnswer, BenefitCache
from server.usecases.benefit_selection import Candidate, ProviderTraits, candidates
from server.usecases.wire_to_domain import accumulators_from_wire, coverage_from_wire

ANSWER_MEMOS = 256  # answers whose per-answer work (candidates, coverages) is kept across requests

MEMO_TRAITS = 64  # distinct provider traits remembered per answer

NETWORK_CODE = {"InNetwork": "I", "OutofNetwork": "O"}


class NoMatchingBenefit(Exception):
    """No benefit of the payer's answer fits this provider (→ NOT_FOUND on that provider only)."""


class MemberAccumulatorsMissing(Exception):
    """The accumulators answer has no entry for the member: never computed as if nothing were used."""


@dataclass(frozen=True)
class ProviderQuery:
    provider_id: str
    traits: ProviderTraits
    provider_type: str | None
    specialty: str | None
    amount: Decimal


@dataclass(frozen=True)
class AccumulatorOverride:
    """What-if: replace the remaining value of every accumulator of this kind, level and network."""

    kind: AccumKind
    level: Level
    network: str  # "I" / "O"
    remaining: Decimal
    # Limits only: the payer's unit ("Dollar" / "Counter") of a limit the member does not have, which the
    # override then adds; a limit the member has keeps its own.
    limit_type: str | None = None


@dataclass(frozen=True)
class EstimateQuery:
    membership_id: str
    plan_identifier: str
    product_type: str  # wire spelling
    service_code: str
    code_type: str  # wire spelling
    place_of_service: str | None
    providers: tuple[ProviderQuery, ...]
    include_trace: bool = False
    overrides: tuple[AccumulatorOverride, ...] = ()

    def __repr__(self) -> str:  # the membership id is PHI
        return f"EstimateQuery(service={self.service_code!r}, providers={len(self.providers)})"


@dataclass(frozen=True)
class ChosenBenefit:
    benefit_name: str | None
    benefit_code: str | None
    tier: str | None
    network: str | None
    coverage_sequence: int | None
    designations: tuple[str, ...]


@dataclass(frozen=True)
class ProviderOutcome:
    provider_id: str
    result: CostShareResult | None = None
    benefit: ChosenBenefit | None = None
    error: BaseException | None = None
    benefit_from_cache: bool = False


@dataclass
class UpstreamCalls:
    """Counted per request, so a test or a log line can confirm "distinct benefit requests + 1".

    `benefits` counts the benefit answers this request needed; `benefits_from_cache` those the cache had.
    """

    benefits: int = 0
    accumulators: int = 0
    benefits_from_cache: int = 0


BenefitKey = tuple[str | None, str | None]


class EstimateRunner:
    def __init__(self, benefits: BenefitCache, accumulators: AccumulatorsClient, *, fanout: int) -> None:
        self._benefits = benefits
        self._accumulators = accumulators
        self._fanout = fanout
        self._memos: OrderedDict[int, tuple[BenefitResponseModel, _AnswerMemo]] = OrderedDict()

    def _benefit_request(self, q: EstimateQuery, key: BenefitKey) -> BenefitRequestModel:
        """Built without re-validation (`model_construct`): every part is an already validated request string."""
        provider_type, specialty = key
        info = RequestServiceCodeInfoModel.model_construct(
            code=q.service_code, type=q.code_type,
            providerType=[CodeModel.model_construct(code=provider_type)] if provider_type else [],
            placeOfService=[CodeModel.model_construct(code=q.place_of_service)] if q.place_of_service else [],
            providerSpecialty=[CodeModel.model_construct(code=specialty)] if specialty else [],
        )
        return BenefitRequestModel.model_construct(
            benefitProductType=q.product_type, membershipID=q.membership_id, planIdentifier=q.plan_identifier,
            serviceInfo=[RequestServiceInfoModel.model_construct(serviceCodeInfo=info)])

    def _memo(self, answer: BenefitResponseModel) -> _AnswerMemo:
        """The shared work of this answer object, kept across requests: the benefit cache and the parse memo hand
        out the same (frozen) answer object again and again. Keyed by id(); the entry holds the answer itself, so
        the id cannot be reused by another object while the entry lives."""
        memos = self._memos
        found = memos.get(id(answer))
        if found is not None and found[0] is answer:
            memos.move_to_end(id(answer))
            return found[1]
        memo = _AnswerMemo(answer)
        memos[id(answer)] = (answer, memo)
        if len(memos) > ANSWER_MEMOS:
            memos.popitem(last=False)
        return memo

    async def stream(
        self, q: EstimateQuery, *, deadline_at: float | None, calls: UpstreamCalls | None = None,
        tenant: str | None = None,
    ) -> AsyncIterator[ProviderOutcome]:
        """Yield one outcome per provider as soon as it is known (completion order).

        `tenant`: the authenticated caller's tenant, which scopes the benefit cache (None: no cache).
        """
        calls = calls if calls is not None else UpstreamCalls()
        remaining: Callable[[], float | None] = (
            (lambda: None) if deadline_at is None else (lambda: max(0.0, deadline_at - time.monotonic())))
        groups: dict[BenefitKey, list[ProviderQuery]] = {}
        for p in q.providers:
            groups.setdefault((p.provider_type, p.specialty), []).append(p)
        gate = asyncio.Semaphore(self._fanout)

        async def fetch_benefits(key: BenefitKey) -> BenefitAnswer:
            async with gate:
                calls.benefits += 1
                got = await self._benefits.get(tenant, self._benefit_request(q, key), timeout=remaining())
                calls.benefits_from_cache += got.from_cache
                return got

        async def fetch_accumulators() -> MemberAccumulators:
            calls.accumulators += 1
            answer: AccumulatorsResponseModel = await self._accumulators.get_accumulators(
                q.membership_id, q.plan_identifier, timeout=remaining())
            entry = answer.member(q.membership_id)
            if entry is None:
                raise MemberAccumulatorsMissing("the accumulators answer has no entry for this member")
            return MemberAccumulators(apply_overrides(accumulators_from_wire(entry.accumulators), q.overrides))

        accumulators_task = asyncio.ensure_future(fetch_accumulators())
        if len(groups) == 1:  # one benefit key (every Estimate): awaited here, no task, queue or callbacks of its own
            # The same outcomes, in the same order, as the many-key path below.
            try:
                (key, providers), = groups.items()
                try:
                    got = await fetch_benefits(key)
                except MemberNotFound:
                    raise
                except Exception as failed:  # noqa: BLE001 - as a failed task below: each provider's status
                    await _member_accumulators(accumulators_task)
                    for provider in providers:
                        yield ProviderOutcome(provider.provider_id, error=failed)
                    return
                member = await _member_accumulators(accumulators_task)
                memo = self._memo(got.answer)
                for provider in providers:
                    yield self._compute(provider, got, member, q.include_trace, memo)
            finally:
                accumulators_task.cancel()
                await asyncio.gather(accumulators_task, return_exceptions=True)
            return
        benefit_tasks: dict[asyncio.Future[BenefitAnswer], BenefitKey] = {}
        # Completion order through one queue fed by done-callbacks: O(keys), where re-waiting on every pending task
        # after each completion (asyncio.wait in a loop) re-registered callbacks O(keys²) times.
        landed: asyncio.Queue[asyncio.Future[BenefitAnswer]] = asyncio.Queue()
        try:
            for key in groups:
                started = asyncio.ensure_future(fetch_benefits(key))
                benefit_tasks[started] = key
                started.add_done_callback(landed.put_nowait)
                # Each call leaves before the next is built. Started all at once, the calls advance in lockstep, one
                # loop pass per step (before Python 3.12, aiohttp writes a request's body in a task of its own): no
                # request goes out before every one is built, and the first answer lands the whole build time late.
                await asyncio.sleep(0)
            left = len(benefit_tasks)
            while left:
                done = [await landed.get()]
                while not landed.empty():  # everything already landed is handled in this pass, as before
                    done.append(landed.get_nowait())
                left -= len(done)
                for task in done:
                    key = benefit_tasks[task]
                    error = task.exception()
                    if isinstance(error, MemberNotFound):
                        raise error
                    member = await _member_accumulators(accumulators_task)
                    if error is not None:
                        for provider in groups[key]:
                            yield ProviderOutcome(provider.provider_id, error=error)
                        continue
                    got = task.result()
                    memo = self._memo(got.answer)
                    for provider in groups[key]:
                        yield self._compute(provider, got, member, q.include_trace, memo)
        finally:
            accumulators_task.cancel()
            for t in benefit_tasks:
                t.cancel()
            await asyncio.gather(accumulators_task, *benefit_tasks, return_exceptions=True)

    def _compute(self, provider: ProviderQuery, got: BenefitAnswer, member: MemberAccumulators | Exception,
                 trace: bool, memo: _AnswerMemo) -> ProviderOutcome:
        cached = got.from_cache
        if isinstance(member, Exception):
            return ProviderOutcome(provider.provider_id, error=member, benefit_from_cache=cached)
        options = memo.candidates(provider.traits)
        if not options:
            t = provider.traits
            return ProviderOutcome(provider.provider_id, benefit_from_cache=cached, error=NoMatchingBenefit(
                f"no benefit matches network {t.network}" + (f", tier {t.tier}" if t.tier else "")
                + (f", designation {t.designation}" if t.designation else "")))
        try:
            best = max(
                ((c, calculate(memo.coverage(c), member, provider.amount, trace=trace))
                 for c in options),
                key=lambda pair: pair[1].member_pays,  # highest member pay wins; max keeps the first of ties
            )
        except Exception as exc:  # noqa: BLE001 - domain errors become this provider's status
            return ProviderOutcome(provider.provider_id, error=exc, benefit_from_cache=cached)
        return ProviderOutcome(provider.provider_id, result=best[1], benefit=memo.chosen(best[0]),
                               benefit_from_cache=cached)


class _AnswerMemo:
    """Work shared by the providers of one benefit answer (and by later requests given the same answer object): which benefits fit given traits (providers of one group
    mostly share them), each coverage converted to the domain once, each chosen benefit described once."""

    __slots__ = ("_answer", "_candidates", "_coverages", "_chosen")

    def __init__(self, answer: BenefitResponseModel) -> None:
        self._answer = answer
        self._candidates: dict[ProviderTraits, list[Candidate]] = {}
        self._coverages: dict[int, Coverage] = {}
        self._chosen: dict[int, ChosenBenefit] = {}

    def candidates(self, traits: ProviderTraits) -> list[Candidate]:
        found = self._candidates.get(traits)
        if found is None:
            found = candidates(self._answer, traits)
            if len(self._candidates) < MEMO_TRAITS:  # the memo outlives a request: bounded whatever callers send
                self._candidates[traits] = found
        return found

    # Keyed by id(): the answer holds every coverage alive for as long as this memo lives.
    def coverage(self, c: Candidate) -> Coverage:
        found = self._coverages.get(id(c.coverage))
        if found is None:
            found = self._coverages[id(c.coverage)] = coverage_from_wire(c.benefit, c.coverage)
        return found

    def chosen(self, c: Candidate) -> ChosenBenefit:
        found = self._chosen.get(id(c.coverage))
        if found is None:
            found = self._chosen[id(c.coverage)] = _chosen(c)
        return found


async def _member_accumulators(task: asyncio.Future[MemberAccumulators]) -> MemberAccumulators | Exception:
    """The accumulators, or the per-provider error; upstream failures end the request (raised)."""
    try:
        if task.done():  # the common case after the first answer: no shield future per benefit answer
            return task.result()
        return await asyncio.shield(task)
    except MemberAccumulatorsMissing as exc:
        return exc


def _chosen(c: Candidate) -> ChosenBenefit:
    b = c.benefit
    return ChosenBenefit(
        benefit_name=b.benefitName, benefit_code=None if b.benefitCode is None else str(b.benefitCode),
        tier=b.benefitTier.benefitTierName if b.benefitTier else None, network=b.networkCategory,
        coverage_sequence=c.coverage.sequenceNumber,
        designations=tuple(p.providerDesignation for p in b.serviceProvider if p.providerDesignation),
    )


def _identity(a: MemberAccumulator) -> tuple[AccumKind, Level, str] | None:
    kind = parse_code(a.code)
    if kind is None:
        return None
    try:
        level = parse_level(a.level, "accumulators.level")
    except InvalidInput:
        return None  # the chain refuses it with its own field path
    return kind, level, parse_network(a.network_indicator_code) or parse_network(a.network_indicator) or "I"


_KIND_CODE = {AccumKind.DEDUCTIBLE: "Deductible", AccumKind.OOP: "OOP Max", AccumKind.LIMIT: "Limit"}
_LEVEL_NAME = {Level.INDIVIDUAL: "Individual", Level.FAMILY: "Family"}


def apply_overrides(items: Sequence[MemberAccumulator], overrides: Sequence[AccumulatorOverride]
                    ) -> list[MemberAccumulator]:
    """Replace matching remainders; an override with no matching accumulator adds one (what if there were one).

    A limit added so needs its unit, which only the override can give (`overrides` are in request order: the
    field path names the request's override)."""
    out = list(items)
    for n, o in enumerate(overrides):
        hits = [i for i, a in enumerate(out) if _identity(a) == (o.kind, o.level, o.network)]
        for i in hits:
            out[i] = replace(out[i], calculated_value=o.remaining)
        if hits:
            continue
        if o.kind is AccumKind.LIMIT and o.limit_type is None:
            raise InvalidInput(f"accumulator_overrides[{n}].limit_type",
                               "is required: the member has no such limit, so the override adds one (Dollar or "
                               "Counter)")
        out.append(MemberAccumulator(code=_KIND_CODE[o.kind], level=_LEVEL_NAME[o.level],
                                     network_indicator_code=o.network, calculated_value=o.remaining,
                                     limit_type="Dollar" if o.kind is not AccumKind.LIMIT else o.limit_type))
    return out
