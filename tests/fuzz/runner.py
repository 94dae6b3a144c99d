"""Drive the fuzz target with hypothesis: pick an RPC, then a hostile message or malformed bytes for it."""

from __future__ import annotations

import sys
import time

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import BAD, FuzzTarget, Results, all_rpcs
from tests.fuzz.strategies import malformed_bytes, message_strategy

MALFORMED_SHARE = 5  # one request in five is raw malformed bytes


def run(target: FuzzTarget, examples: int, *, fail_fast: bool, progress: bool = False) -> Results:
    rpcs = all_rpcs()
    messages = {r.path: message_strategy(r.request) for r in rpcs}
    raw = {r.path: malformed_bytes(r.request) for r in rpcs}
    results = Results()
    started = time.monotonic()
    phases = [Phase.generate, Phase.shrink] if fail_fast else [Phase.generate]

    @settings(max_examples=examples, deadline=None, database=None, phases=phases,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one(data: st.DataObject) -> None:
        rpc = data.draw(st.sampled_from(rpcs), label="rpc")
        malformed = data.draw(st.integers(0, MALFORMED_SHARE - 1), label="kind") == 0
        body = data.draw(raw[rpc.path]) if malformed else data.draw(messages[rpc.path]).SerializeToString()
        verdict, detail = target.send(rpc, body)
        results.record(rpc, "bytes" if malformed else "message", verdict, detail)
        if progress and results.total % 1000 == 0:
            print(f"  {results.total} requests, {time.monotonic() - started:.0f} s: "
                  + ", ".join(f"{k} {v}" for k, v in results.counts.most_common()), file=sys.stderr, flush=True)
        if fail_fast:
            assert verdict not in BAD, f"{rpc.path}: {verdict} {detail[:300]}"

    one()
    return results
