"""The README's grpcurl session runs as written against a default server (only the port and data dir differ)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

from server.app import Application
from tests.conftest import ROOT
from tests.test_foundation import _grpcurl


def grpcurl_session() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A grpcurl session", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return block.group(1)


async def test_readme_grpcurl_session_works(app: Application) -> None:
    _grpcurl()  # skips where grpcurl is not installed
    script = grpcurl_session().replace("localhost:50051", f"127.0.0.1:{app.port}").replace(
        ".data/dev-token", str(app.settings.data_dir / "dev-token"))
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    result = await asyncio.to_thread(subprocess.run, ["bash", "-euo", "pipefail", "-c", script],
                                     capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert '"SERVING"' in out
    assert '"benefit_name": "Office Visit - PCP"' in out
    assert out.count('"provider_id": "') >= 3  # three streamed estimates
    assert '"provider_id": "out-of-network"' in out
    assert '"units": "584"' in out  # E11: the member pays 584.00
    assert '"status": "ELIGIBILITY_STATUS_VERIFIED"' in out
    assert '"plan_name": "CHOICE PPO 2500"' in out
    assert '"verified": "1"' in out  # the stats saw the check
    assert "\\u00" not in out  # readable: no \u003e escapes (e.g. of the trace's conditions)
    assert '"not_covered": {' in out and '"code": 0' in out  # -emit-defaults: zero amounts and OK statuses shown


def test_readme_documents_every_setting() -> None:
    from server.settings import Settings, _env

    readme = (ROOT / "README.md").read_text()
    names = {_env(name) for name in Settings.model_fields}
    assert {n for n in names if n not in readme} == set()
