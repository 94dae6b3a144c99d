"""The console over real sockets: a started Application, the console's own HTTP server in front of it, and
(for the browser tests) Debian's Chromium driven by Playwright — skipped with a reason when Chromium is absent,
a failure when COSTEST_REQUIRE_BROWSER=1 (CI installs it)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from console.server import ConsoleConfig, ConsoleServer
from server.app import Application
from tests.conftest import ROOT, unavailable

#: Screenshots of the browser tests (git-ignored), kept after the run as artefacts.
ARTIFACTS = ROOT / "test-artifacts" / "console"


def chromium_path() -> str | None:
    """Debian's chromium (never a downloaded browser); COSTEST_CHROMIUM names another binary."""
    named = os.environ.get("COSTEST_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest_asyncio.fixture
async def console_app(start_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Application:
    """The service with the benefit cache off (every comparison reaches the sandbox) and a 1.5 s slow payer."""
    monkeypatch.setenv("SANDBOX_SLOW_SECONDS", "1.5")
    app: Application = await start_app(benefit_cache_ttl_seconds=0)
    return app


@pytest_asyncio.fixture
async def console(console_app: Application) -> AsyncIterator[ConsoleServer]:
    """The console on a free loopback port, bridging to `console_app` with its development token."""
    server = ConsoleServer(ConsoleConfig(host="127.0.0.1", port=0, grpc_target=f"127.0.0.1:{console_app.port}",
                                         loopback=True, dev_token=console_app.dev_token))
    await server.start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def open_page(url: str, screenshot: str) -> AsyncIterator[Any]:
    """A Chromium page on `url`, loaded; its screenshot is saved under test-artifacts/console/ at the end."""
    executable = chromium_path()
    if executable is None:
        unavailable("browser", "Chromium is not installed (apt-get install -y chromium): browser tests skipped")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            tab = await browser.new_page(viewport={"width": 1366, "height": 900})
            errors: list[str] = []
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            await tab.goto(url)
            await tab.wait_for_selector("body[data-ready=true]")
            yield tab
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await tab.screenshot(path=str(ARTIFACTS / f"{screenshot}.png"), full_page=True)
            assert errors == [], f"script errors on the page: {errors}"
        finally:
            await browser.close()


@pytest_asyncio.fixture
async def page(console: ConsoleServer, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """The console in Chromium (see `open_page`)."""
    async with open_page(console.url, request.node.name) as tab:
        yield tab
