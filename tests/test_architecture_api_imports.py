"""Guard on the api layer's imports: the gRPC edge sees use-case and domain types, never the upstream clients, their
wire models or the store's records (architecture.md), so the payer's and the database's shapes can change without
touching the api. The allowances: a module named `errors`, and `server/api/errors.py` itself (the one error map
imports every layer's typed errors)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "server" / "api"
SOURCES = sorted(API.rglob("*.py"))
FORBIDDEN = ("server.clients", "server.store")
ERROR_MAP = API / "errors.py"


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
    """The names from the clients or the store among `names`, but for those of a module named `errors`."""
    return sorted(n for n in names
                  if any(n == f or n.startswith(f + ".") for f in FORBIDDEN) and "errors" not in n.split("."))


def test_sources_found() -> None:
    assert API / "benefit_convert.py" in SOURCES and API / "errors.py" in SOURCES


@pytest.mark.parametrize("path", [p for p in SOURCES if p != ERROR_MAP], ids=_rel)
def test_api_does_not_import_clients_or_store(path: Path) -> None:
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
        "from server.store import CheckStatus\n"
        "from server.store.errors import StoreUnavailable\n"
    )
    bad = forbidden(imported_modules(ast.parse(sample), ["server", "api"]))
    assert bad == ["server.clients.http", "server.clients.models.BenefitModel", "server.clients.models.CodeModel",
                   "server.clients.payer", "server.clients.stedi", "server.store.CheckStatus"]
