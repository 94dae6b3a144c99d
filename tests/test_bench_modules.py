"""Every benchmark module imports and exposes main(), so `./dev bench` cannot rot unnoticed (they run in bench/)."""

from __future__ import annotations

import importlib

import pytest

from bench.__main__ import available


@pytest.mark.parametrize("name", available())
def test_benchmark_module_imports(name: str) -> None:
    module = importlib.import_module(f"bench.bench_{name}")
    assert callable(module.main)


def test_the_three_benchmarks_exist() -> None:
    assert set(available()) >= {"chain", "estimates", "eligibility"}
