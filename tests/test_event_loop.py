"""COSTEST_UVLOOP: `python -m server` runs on uvloop by default, on the standard asyncio loop when turned off."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import uvloop

from server import event_loop
from server.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]

# Runs the real entry point with the application replaced by one that reports its loop and stops.
PROBE = """
import asyncio, sys
import server.app
async def run(self, on_ready=None):
    print(type(asyncio.get_running_loop()).__module__, flush=True)
server.app.Application.run = run
import server.__main__
sys.exit(server.__main__.main())
"""


def _loop_module(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COSTEST_")}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**clean, **env}, capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_setting_defaults_to_uvloop_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COSTEST_UVLOOP", raising=False)
    assert load_settings().uvloop is True
    monkeypatch.setenv("COSTEST_UVLOOP", "false")
    assert load_settings().uvloop is False


def test_install_picks_the_loop() -> None:
    try:
        assert event_loop.install(True) == "uvloop"
        loop = asyncio.new_event_loop()
        assert isinstance(loop, uvloop.Loop)
        loop.close()
        assert event_loop.install(False) == "asyncio"
        loop = asyncio.new_event_loop()
        assert not isinstance(loop, uvloop.Loop)
        loop.close()
    finally:
        asyncio.set_event_loop_policy(None)


def test_the_server_entry_point_runs_on_uvloop_by_default() -> None:
    assert _loop_module().startswith("uvloop")


def test_the_server_entry_point_runs_on_asyncio_when_turned_off() -> None:
    assert _loop_module(COSTEST_UVLOOP="false") == "asyncio.unix_events"
