"""COSTEST_UVLOOP: `python -m server` runs on uvloop by default, on the standard asyncio loop when turned off."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_settle_moves_what_startup_built_out_of_the_collectors_way() -> None:
    """After `settle`, a full collection no longer scans what existed before it (the 40–50 ms pauses under load)."""
    before = gc.get_freeze_count()
    startup = [[i] for i in range(2000)]  # long-lived containers, as imports and the server build them
    try:
        event_loop.settle()
        assert gc.get_freeze_count() >= before + len(startup)
        scanned = {id(o) for o in gc.get_objects()}
        assert not any(id(item) in scanned for item in startup)
        assert [item[0] for item in startup[:3]] == [0, 1, 2]  # frozen, not freed
    finally:
        gc.unfreeze()


async def test_run_settles_once_serving_before_it_reports_ready(make_settings: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client import CollectorRegistry

    from server import app as app_module

    steps: list[str] = []
    monkeypatch.setattr(app_module.event_loop, "settle", lambda: steps.append("settle"))
    application = app_module.Application(make_settings(), registry=CollectorRegistry())

    def ready() -> None:
        steps.append("ready")
        application.request_stop()

    await asyncio.wait_for(application.run(on_ready=ready), 60)
    assert steps == ["settle", "ready"]
