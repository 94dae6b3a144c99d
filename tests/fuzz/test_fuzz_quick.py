"""The quick fuzz profile in the test suite: a few hundred hostile requests over every RPC, shrunk on failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.harness import FuzzTarget
from tests.fuzz.runner import run

QUICK_EXAMPLES = 300


@pytest.fixture(scope="module")
def target() -> Iterator[FuzzTarget]:
    with FuzzTarget() as t:
        yield t


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_fuzz_profile_never_internal_unknown_or_unreadable(target: FuzzTarget) -> None:
    results = run(target, QUICK_EXAMPLES, fail_fast=True)
    assert results.total >= QUICK_EXAMPLES
    assert results.counts["INVALID_ARGUMENT"] > 0  # the hostile inputs did reach the validators
    log = target.server_log()
    assert "Traceback (most recent call last)" not in log, log[-3000:]
