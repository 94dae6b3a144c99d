"""`python -m server` (what `./dev serve` runs) starts the console beside the gRPC port and names its address."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

from tests.server_process import ServerProcess, free_port, server_env


def test_the_server_process_serves_the_console_on_its_port(tmp_path: Path) -> None:
    console_port = free_port()
    process = ServerProcess.start(server_env(tmp_path / "data", free_port(), console_port=str(console_port)),
                                  tmp_path / "server.log")
    try:
        process.wait_for_log(f"web console on http://127.0.0.1:{console_port}/")
        with urllib.request.urlopen(f"http://127.0.0.1:{console_port}/", timeout=10) as reply:
            assert reply.status == 200 and b"Cost estimator console" in reply.read()
        token = (tmp_path / "data" / "dev-token").read_text().strip()
        assert token not in process.log
    finally:
        assert process.stop() == 0


def test_a_busy_console_port_only_warns(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        process = ServerProcess.start(server_env(tmp_path / "data", free_port(), console_port=str(busy)),
                                      tmp_path / "server.log")
        try:
            process.wait_for_log("the web console is off: cannot listen on")
            assert process.process.poll() is None  # the service keeps serving
        finally:
            assert process.stop() == 0
