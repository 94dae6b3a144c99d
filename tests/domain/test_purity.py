"""Guards on the domain's source: no float anywhere and standard library only (all of ``server/domain``),
one rounding point (§7, the cost-share chain)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "server" / "domain"
SOURCES = sorted(DOMAIN.rglob("*.py"))
COSTSHARE = [p for p in SOURCES if "costshare" in p.parts] + [DOMAIN / "money.py", DOMAIN / "errors.py"]


def _rel(path: Path) -> str:
    return str(path.relative_to(DOMAIN.parent.parent))


def float_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (float, complex)):
            found.append(f"line {node.lineno}: literal {node.value!r}")
        elif isinstance(node, ast.Name) and node.id == "float":
            found.append(f"line {node.lineno}: name float")
        elif isinstance(node, ast.Attribute) and node.attr == "float":
            found.append(f"line {node.lineno}: attribute .float")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip() == "float":
            found.append(f"line {node.lineno}: string annotation 'float'")
    return found


def test_sources_found() -> None:
    assert DOMAIN / "costshare" / "chain.py" in SOURCES and len(SOURCES) >= 12


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_no_float_in_domain(path: Path) -> None:
    assert float_uses(ast.parse(path.read_text(), str(path))) == []


def test_float_scanner_can_fail() -> None:
    sample = "x: float = 1.5\ny = float('2')\ndef f(a: 'float') -> None: ...\n"
    assert len(float_uses(ast.parse(sample))) == 4


def imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                roots.add("server.domain (relative)")
            elif node.module:
                roots.add(node.module)
    return roots


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_domain_imports_only_stdlib_and_itself(path: Path) -> None:
    for module in imported_roots(ast.parse(path.read_text(), str(path))):
        top = module.split(".")[0]
        assert top in sys.stdlib_module_names or module.startswith("server.domain"), f"{_rel(path)}: {module}"


def test_import_scanner_can_fail() -> None:
    roots = imported_roots(ast.parse("import grpc\nfrom server.api import x\nfrom decimal import Decimal\n"))
    bad = [m for m in roots if m.split(".")[0] not in sys.stdlib_module_names and not m.startswith("server.domain")]
    assert sorted(bad) == ["grpc", "server.api"]


def test_rounding_happens_only_in_the_coinsurance_step() -> None:
    """§7: ``to_cents`` (and any ROUND_ constant other than the floor of counters) appears in one step only."""
    callers = []
    for path in COSTSHARE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "to_cents":
                callers.append(_rel(path))
    assert callers == ["server/domain/costshare/steps.py"]  # exactly one call, in coinsurance_step
    for path in COSTSHARE:
        text = path.read_text()
        assert "ROUND_HALF" not in text or path.name == "money.py", _rel(path)
        assert ".quantize(" not in text or path.name == "money.py", _rel(path)
