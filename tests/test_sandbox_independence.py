"""The sandbox stands in for the outside world: it imports nothing of the service it stands in front of, so a
change to our domain cannot quietly change what the stand-ins accept (house.md)."""

from __future__ import annotations

import ast
import random
from pathlib import Path

from server.domain.eligibility.npi import is_valid_npi, npi_check_digit
from server.sandbox.stedi import npi_checks
from tests.test_architecture_api_imports import ROOT, imported_modules

SANDBOX = ROOT / "server" / "sandbox"


def test_the_sandbox_imports_only_itself_of_the_server_package() -> None:
    sources = sorted(SANDBOX.rglob("*.py"))
    assert SANDBOX / "stedi.py" in sources
    outside = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(ast.parse(path.read_text(), str(path)),
                                              list(path.relative_to(ROOT).with_suffix("").parts[:-1]))
            if name.startswith("server.") and not name.startswith("server.sandbox"))
        for path in sources
    }
    assert {path: names for path, names in outside.items() if names} == {}


def test_the_stand_ins_npi_check_agrees_with_the_services() -> None:
    """Two formulations of the CMS rule (ours computes the check digit; the stand-in runs Luhn over 80840+NPI):
    for random bases, exactly one of the ten last digits passes both."""
    rng = random.Random(1357)
    for _ in range(300):
        base = f"{rng.randrange(10**9):09d}"
        passing = [d for d in range(10) if npi_checks(f"{base}{d}")]
        assert passing == [npi_check_digit(base)]
        assert all(npi_checks(f"{base}{d}") == is_valid_npi(f"{base}{d}") for d in range(10))
    assert npi_checks("1234567893") and npi_checks("1999999984") and not npi_checks("1234567890")
