"""The upstream stand-ins in their own process, as a real deployment has them: `python -m bench.standins payer|stedi`.

Prints one JSON line (`{"url": ...}`) once listening, then serves until killed. Logging is off: the stand-ins log a
line per call, which would cost the measured machine CPU for nothing; and they run on uvloop, for the same reason
(the upstreams' own CPU is not ours, yet on this machine it is taken from the server under test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

import uvloop
from aiohttp import web

from server.sandbox.payer import PayerSandboxConfig, start_payer_sandbox
from server.sandbox.stedi import StediSandboxConfig, create_stedi_app


async def _payer(port: int, latency: float) -> None:
    running = await start_payer_sandbox(PayerSandboxConfig(port=port, latency=latency))
    cfg = running.config
    print(json.dumps({"url": running.base_url, "client_id": cfg.client_id, "client_secret": cfg.client_secret}),
          flush=True)
    await asyncio.Event().wait()


async def _stedi(port: int, key: str) -> None:
    runner = web.AppRunner(create_stedi_app(StediSandboxConfig(api_keys=frozenset({key}))),
                           handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = runner.addresses[0][:2]
    print(json.dumps({"url": f"http://{host}:{bound}"}), flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["payer", "stedi"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="payer: seconds added to every API call")
    parser.add_argument("--key", default="test_bench_key", help="stedi: the accepted API key")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    coro = _payer(args.port, args.latency) if args.kind == "payer" else _stedi(args.port, args.key)
    try:
        uvloop.run(coro)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
