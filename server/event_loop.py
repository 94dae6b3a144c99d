"""Which event loop runs the service: uvloop by default (libuv: less CPU per RPC and per upstream call), or the
standard asyncio loop with COSTEST_UVLOOP=false (e.g. to rule the loop out while debugging)."""

from __future__ import annotations

import asyncio
import gc


def install(use_uvloop: bool) -> str:
    """Set the event loop policy for the `asyncio.run` that follows; returns the loop's name ("uvloop"/"asyncio").

    Also moves everything allocated by imports and settings into the GC's permanent generation (`gc.freeze`):
    collections then skip those long-lived objects instead of rescanning them on every full pass.
    """
    name = "asyncio"
    if use_uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        name = "uvloop"
    else:
        asyncio.set_event_loop_policy(None)
    gc.freeze()
    return name
