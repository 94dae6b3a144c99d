"""Bounded TTL stores behind the benefit cache: one in process, one in Redis (shared by every server process).

Both hold opaque values under opaque keys; the caller chooses keys without PHI and a codec for Redis. A store
raises on trouble (Redis down) and the caller decides what that means (the benefit cache calls the upstream).
The Redis store keeps a small local copy of what it read, valid exactly as long as the Redis entry (its PTTL),
so a warm process does not decode the same answer on every request and never serves an entry past its expiry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import redis.asyncio as aioredis
from cachetools import TLRUCache, TTLCache

V = TypeVar("V")
Clock = Callable[[], float]


class TtlStore(Protocol[V]):
    async def get(self, key: str) -> V | None: ...
    async def put(self, key: str, value: V) -> None: ...
    async def close(self) -> None: ...


class MemoryStore(Generic[V]):
    """At most `max_entries` values (least recently used evicted first), each for `ttl` seconds of `clock`."""

    def __init__(self, *, ttl: float, max_entries: int, clock: Clock = time.monotonic) -> None:
        self._entries: TTLCache[str, V] = TTLCache(maxsize=max_entries, ttl=ttl, timer=clock)

    async def get(self, key: str) -> V | None:
        return self._entries.get(key)

    async def put(self, key: str, value: V) -> None:
        self._entries[key] = value

    def keys(self) -> list[str]:
        """For tests and diagnostics: the keys held now."""
        return list(self._entries.keys())

    async def close(self) -> None:
        self._entries.clear()


def _expiry(_key: str, value: tuple[float, object], _now: float) -> float:
    return value[0]


class RedisStore(Generic[V]):
    """Values in Redis under `key` with a TTL (`SET … PX`); Redis's own memory policy bounds the shared size."""

    def __init__(self, url: str, *, ttl: float, max_local_entries: int, encode: Callable[[V], bytes],
                 decode: Callable[[bytes], V], clock: Clock = time.monotonic, timeout: float = 0.5) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._ttl_ms = max(1, int(ttl * 1000))
        self._encode, self._decode, self._clock = encode, decode, clock
        self._local: TLRUCache[str, tuple[float, V]] = TLRUCache(maxsize=max_local_entries, ttu=_expiry, timer=clock)

    async def get(self, key: str) -> V | None:
        local = self._local.get(key)
        if local is not None:
            return local[1]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            raw, pttl = await pipe.execute()
        if raw is None:
            return None
        value = self._decode(raw)
        if isinstance(pttl, int) and pttl > 0:
            self._local[key] = (self._clock() + min(pttl, self._ttl_ms) / 1000, value)
        return value

    async def put(self, key: str, value: V) -> None:
        await self._redis.set(key, self._encode(value), px=self._ttl_ms)
        self._local[key] = (self._clock() + self._ttl_ms / 1000, value)

    async def close(self) -> None:
        self._local.clear()
        await self._redis.aclose()
