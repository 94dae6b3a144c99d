"""Guard on the api layer's imports: the gRPC edge sees use-case and domain types, never the upstream clients or
their wire models (architecture.md), so the payer's shapes can change without touching the api. The one allowance:
a module named `errors` (the error map imports every layer's typed errors in one place)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "server" / "api"
SOURCES = sorted(API.rglob("*.py"))
FORBIDDEN = "server.clients"


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _package(path: Path) -> list[str]:
    return list(path.relative_to(ROOT).with_suffix("").parts[:-1])


def imported_modules(tree: ast.AST, package: list[str]) -> set[str]:
    """Every name an import brings in, as a full dotted path (`from m import n` is m.n), relative ones resolved."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def forbidden(names: set[str]) -> list[str]:
    """The names from the clients among `names`, but for those of a module named `errors`."""
    return sorted(n for n in names
                  if (n == FORBIDDEN or n.startswith(FORBIDDEN + ".")) and "errors" not in n.split("."))


def test_sources_found() -> None:
    assert API / "benefit_convert.py" in SOURCES and API / "errors.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_api_does_not_import_clients(path: Path) -> None:
    assert forbidden(imported_modules(ast.parse(path.read_text(), str(path)), _package(path))) == [], _rel(path)


def test_import_scanner_can_fail() -> None:
    sample = (
        "import server.clients.http\n"
        "from server.clients.models import BenefitModel\n"
        "from server.clients import payer\n"
        "from ..clients import stedi\n"
        "def lazy():\n    from server.clients.models import CodeModel\n"
        "from server.clients.errors import UpstreamUnavailable\n"
        "from server.clients import errors\n"
        "from server.usecases.benefits import BenefitLookup\n"
    )
    bad = forbidden(imported_modules(ast.parse(sample), ["server", "api"]))
    assert bad == ["server.clients.http", "server.clients.models.BenefitModel", "server.clients.models.CodeModel",
                   "server.clients.payer", "server.clients.stedi"]
