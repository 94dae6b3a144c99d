"""The README's EstimateFromEligibility grpcurl example runs as written and says what the README says."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys

from server.app import Application
from tests.conftest import ROOT
from tests.test_foundation import _grpcurl


def _example() -> str:
    section = (ROOT / "README.md").read_text().split("### Estimate from an eligibility check", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return block.group(1)


async def test_readme_example_answers_as_documented(app: Application) -> None:
    _grpcurl()  # skips where grpcurl is not installed
    script = 'AUTH="authorization: Bearer $(cat .data/dev-token)"\n' + _example()
    script = script.replace("localhost:50051", f"127.0.0.1:{app.port}").replace(
        ".data/dev-token", str(app.settings.data_dir / "dev-token"))
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    result = await asyncio.to_thread(subprocess.run, ["bash", "-euo", "pipefail", "-c", script],
                                     capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    reply = json.loads(result.stdout)
    pcp, oon = reply["estimates"]
    assert pcp["estimate"]["member_pays"]["units"] == "30" and pcp["completeness"] == "ESTIMATE_COMPLETENESS_COMPLETE"
    assert oon["estimate"]["member_pays"]["units"] == "180" and oon["member_pays_low"]["units"] == "72"
    assert oon["completeness"] == "ESTIMATE_COMPLETENESS_AMBIGUOUS"
