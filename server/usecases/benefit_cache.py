"""The benefit cache: payer benefit answers change rarely, so they are kept per tenant for a while.

* Key: everything the upstream request carries (product, member, plan, and per service its code, code type,
  provider types, places of service, specialties) plus the caller's tenant, run through HMAC-SHA256 under a
  secret. No member id (or anything else readable) ends up in a key, in process or in Redis.
* Value: the parsed answer (`BenefitResponseModel`). It holds service codes and benefit rules only: the model
  drops every field it does not know, and none of its fields names or identifies a member. In Redis it is JSON
  with money as strings (never floats).
* Identical calls in flight are coalesced: one upstream call per key; each caller still waits at most its own
  deadline, and the call is cancelled when the last caller leaves.
* Trouble with the store (Redis down) never fails a request: the upstream is called, and a warning is logged at
  most once per `warn_interval`; the store is not tried again for `retry_after` seconds.
Accumulators never come here: they change with every claim and are fetched once per request.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from server.cache.stores import TtlStore
from server.clients.benefits import BenefitsClient
from server.clients.errors import UpstreamDeadlineExceeded
from server.clients.models import BenefitRequestModel, BenefitResponseModel, decode, encode
from server.usecases.counting import NO_COUNT, Count

log = logging.getLogger(__name__)

KEY_NAMESPACE = "costest:benefit:v1:"


def encode_answer(answer: BenefitResponseModel) -> bytes:
    """JSON for a shared store: Decimal money as strings, which the answer type reads back exactly."""
    return encode(answer)


def decode_answer(raw: bytes) -> BenefitResponseModel:
    return decode(raw, BenefitResponseModel)


@dataclass(frozen=True)
class BenefitAnswer:
    answer: BenefitResponseModel
    from_cache: bool


class _Flight:
    """One upstream call shared by every caller asking for the same key at the same time."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[BenefitResponseModel]) -> None:
        self.task = task
        self.waiters = 0


class BenefitCache:
    """`get(tenant, request)`: the cached answer, or one (coalesced) upstream call whose answer is then cached.

    `store=None` turns caching off (every call goes upstream, identical calls in flight are still coalesced).
    """

    def __init__(self, client: BenefitsClient, store: TtlStore[BenefitResponseModel] | None, *, secret: bytes,
                 namespace: str = KEY_NAMESPACE, clock: Callable[[], float] = time.monotonic,
                 warn_interval: float = 60.0, retry_after: float = 5.0,
                 hits: Count = NO_COUNT, misses: Count = NO_COUNT) -> None:
        self._client = client
        self._hits, self._misses = hits, misses
        self._store = store
        self._secret = secret
        self._namespace = namespace
        self._clock = clock
        self._warn_interval = warn_interval
        self._retry_after = retry_after
        self._warned_at: float | None = None
        self._store_down_until = 0.0
        self._flights: dict[str, _Flight] = {}

    @property
    def store(self) -> TtlStore[BenefitResponseModel] | None:
        """The store behind the cache (None: off); tests read its keys."""
        return self._store

    def key(self, tenant: str, request: BenefitRequestModel) -> str:
        parts: list[object] = [tenant, request.benefitProductType, request.membershipID, request.planIdentifier]
        for si in request.serviceInfo:
            c = si.serviceCodeInfo
            parts.append([c.code, c.type, [x.code for x in c.providerType], [x.code for x in c.placeOfService],
                          [x.code for x in c.providerSpecialty]])
        # orjson writes what json.dumps(separators=(",", ":"), ensure_ascii=False) does for these strings and
        # lists (so keys are unchanged), and hmac.digest is the one-shot C path: half the cost of a key.
        return self._namespace + hmac.digest(self._secret, orjson.dumps(parts), "sha256").hex()

    async def get(self, tenant: str | None, request: BenefitRequestModel, *, timeout: float | None) -> BenefitAnswer:
        """`tenant=None` (no authenticated caller): straight to the upstream, nothing shared or kept."""
        if tenant is None:
            return BenefitAnswer(await self._client.get_benefits(request, timeout=timeout), False)
        key = self.key(tenant, request)
        if self._store is not None and self._clock() >= self._store_down_until:
            try:
                cached = await self._store.get(key)
            except Exception as exc:  # noqa: BLE001 - a broken cache must not fail the request
                self._store_trouble("read", exc)
            else:
                if cached is not None:
                    self._hits.inc()
                    return BenefitAnswer(cached, True)
            self._misses.inc()
        return BenefitAnswer(await self._join(key, request, timeout), False)

    async def _join(self, key: str, request: BenefitRequestModel, timeout: float | None) -> BenefitResponseModel:
        flight = self._flights.get(key)
        if flight is None:
            # The shared call carries no caller's deadline: each waiter bounds its own wait below, and the call
            # stops when the last one leaves. Bound by the first caller's, it would fail a later caller with more
            # time left (DEADLINE_EXCEEDED on someone else's clock); left alone, it has the upstream's own budget.
            flight = _Flight(asyncio.ensure_future(self._fetch(key, request)))
            self._flights[key] = flight
            flight.task.add_done_callback(functools.partial(self._landed, key, flight))
        flight.waiters += 1
        try:
            if timeout is None:
                return await asyncio.shield(flight.task)
            try:
                async with asyncio.timeout(timeout):
                    return await asyncio.shield(flight.task)
            except TimeoutError:
                if flight.task.done():
                    raise
                raise UpstreamDeadlineExceeded("benefits") from None
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()  # nobody is waiting any more: stop the upstream call
                if self._flights.get(key) is flight:
                    del self._flights[key]  # a caller arriving now starts afresh

    def _landed(self, key: str, flight: _Flight, _task: object) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.task.cancelled():
            flight.task.exception()  # retrieved: callers who left early must not leave it "never retrieved"

    async def _fetch(self, key: str, request: BenefitRequestModel) -> BenefitResponseModel:
        answer = await self._client.get_benefits(request, timeout=None)
        if self._store is not None and self._clock() >= self._store_down_until:
            try:
                await self._store.put(key, answer)
            except Exception as exc:  # noqa: BLE001 - the answer is good even if it cannot be kept
                self._store_trouble("write", exc)
        return answer

    def _store_trouble(self, what: str, exc: Exception) -> None:
        now = self._clock()
        self._store_down_until = now + self._retry_after
        if self._warned_at is None or now - self._warned_at >= self._warn_interval:
            self._warned_at = now
            log.warning("benefit cache %s failed (%s): calling the payer directly; not retried for %.0fs, "
                        "this warning repeats at most every %.0fs", what, type(exc).__name__, self._retry_after,
                        self._warn_interval)

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
