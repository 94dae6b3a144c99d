"""Which event loop runs the service: uvloop by default (libuv: less CPU per RPC and per upstream call), or the
standard asyncio loop with COSTEST_UVLOOP=false (e.g. to rule the loop out while debugging)."""

from __future__ import annotations

import asyncio
import gc


GC_YOUNG_THRESHOLD = 20_000


def install(use_uvloop: bool) -> str:
    """Set the event loop policy for the `asyncio.run` that follows; returns the loop's name ("uvloop"/"asyncio").

    Also moves everything allocated by imports and settings into the GC's permanent generation (`gc.freeze`):
    collections then skip those long-lived objects instead of rescanning them on every full pass. And the young
    generation is collected after `GC_YOUNG_THRESHOLD` allocations instead of 700: each request allocates
    thousands of short-lived containers (parsed answers, protobuf, aiohttp objects) that reference counting frees
    anyway, so the default ran a collection several times per request (about a tenth of a request's CPU).
    """
    name = "asyncio"
    if use_uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        name = "uvloop"
    else:
        asyncio.set_event_loop_policy(None)
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
    return name


def settle() -> None:
    """Once the server serves: move what startup built (modules imported late, the gRPC server, sessions, pools)
    into the permanent generation too. Otherwise each full collection rescans those ~100,000 long-lived objects,
    a 40–50 ms pause of the event loop every few seconds under load (p99 of every request in flight then)."""
    gc.collect()
    gc.freeze()
