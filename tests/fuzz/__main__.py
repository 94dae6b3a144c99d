"""`python -m tests.fuzz [N]` (or `./dev fuzz [N]`): the long fuzz profile, N requests (default 10,000).

Prints the counts by status code; exits 1 on any INTERNAL, UNKNOWN or unreadable answer, or a traceback in the
server's log.
"""

from __future__ import annotations

import sys
import time

from tests.fuzz.harness import BAD, FuzzTarget
from tests.fuzz.runner import run


def main(argv: list[str]) -> int:
    examples = int(argv[0]) if argv else 10_000
    started = time.monotonic()
    print(f"fuzzing every RPC with {examples} requests (a server in its own process)...", file=sys.stderr)
    with FuzzTarget() as target:
        results = run(target, examples, fail_fast=False, progress=True)
        log = target.server_log()
    tracebacks = log.count("Traceback (most recent call last)")
    print(f"\n{results.total} requests in {time.monotonic() - started:.0f} s, counts by status code:")
    print(results.table())
    print(f"server log: {tracebacks} tracebacks, {log.count('malformed request body')} malformed-body lines")
    bad = sum(results.counts[k] for k in BAD)
    for line in results.bad:
        print("BAD", line)
    print("verdict:", "PASS (0 INTERNAL, 0 UNKNOWN, 0 unreadable)" if not bad and not tracebacks else "FAIL")
    return 0 if not bad and not tracebacks else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
