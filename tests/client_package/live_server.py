"""One `python -m server` on the embedded sandbox for a whole test module, and its development token.

The client package, the CLI and the Node.js interop tests are callers from outside: they get a real server
process on a free port (tests/server_process.py), found the way a user finds it (the token in its data dir).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server_process import ServerProcess, free_port, server_env


@dataclass(frozen=True)
class LiveServer:
    target: str
    data_dir: Path
    token: str


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live-server")
    port = free_port()
    process = ServerProcess.start(server_env(root / "data", port), root / "server.log")
    try:
        process.wait_serving()
        token = (root / "data" / "dev-token").read_text().strip()
        yield LiveServer(f"127.0.0.1:{port}", root / "data", token)
    finally:
        assert process.stop() == 0, process.log[-3000:]
