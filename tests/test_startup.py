"""Start-up as an operator sees it, with real `python -m server` processes: --help, a second start, restarts.

A second start (port in use) or `--help` must leave the running server's development token alone; the token
survives a restart because its signing key lives in the data dir; the log names the token file, never the token.
"""

from __future__ import annotations

import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import jwt
from costestimator.v1 import eligibility_service_pb2, eligibility_service_pb2_grpc

from server.api.auth import DEV_AUDIENCE, DEV_ISSUER, DevelopmentAuth
from server.datadir import read_or_create_secret
from tests.server_process import ServerProcess, free_port, run_server, server_env


def stats_code(port: int, token: str) -> grpc.StatusCode:
    """An authenticated RPC with `token`: OK, or the status it was refused with."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = eligibility_service_pb2_grpc.EligibilityServiceStub(channel)
        try:
            stub.GetEligibilityStats(eligibility_service_pb2.GetEligibilityStatsRequest(),
                                     metadata=(("authorization", f"Bearer {token}"),), timeout=15)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def snapshot(path: Path) -> tuple[str, int]:
    return path.read_text(), path.stat().st_mtime_ns


def test_help_prints_usage_without_reading_settings_or_touching_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-created"
    env = {**server_env(data_dir, 50051, workers="0"), "COSTEST_PORT": "not-a-port"}  # would stop a real start
    result = run_server(env, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m server")
    assert "--workers N" in result.stdout and "COSTEST_" in result.stdout
    assert result.stderr == ""
    assert not data_dir.exists()


def test_a_second_start_is_refused_in_one_line_and_leaves_the_token_alone(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = server_env(data_dir, port)
    first = ServerProcess.start(env, tmp_path / "first.log")
    try:
        first.wait_serving()
        token_file, secret_file = data_dir / "dev-token", data_dir / "dev-token-secret"
        before = snapshot(token_file), snapshot(secret_file)
        token = token_file.read_text().strip()

        second = run_server(env)
        assert second.returncode == 2
        assert second.stderr.splitlines() == [
            f"costestimator: cannot start: 127.0.0.1:{port} is already in use (is another server running?)"]
        assert run_server(env, "--help").returncode == 0

        assert (snapshot(token_file), snapshot(secret_file)) == before
        assert stats_code(port, token) is grpc.StatusCode.OK
        assert first.process.poll() is None
    finally:
        assert first.stop() == 0


def test_the_development_token_survives_a_restart_and_is_never_logged(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = server_env(data_dir, port)
    first = ServerProcess.start(env, tmp_path / "server.log")
    try:
        first.wait_serving()
    finally:
        assert first.stop() == 0
    token_file = data_dir / "dev-token"
    token = token_file.read_text().strip()
    before = snapshot(token_file)

    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in ("dev-token", "dev-token-secret"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name

    second = ServerProcess.start(env, tmp_path / "server.log")
    try:
        second.wait_for_log("serving gRPC on", count=2)
        assert stats_code(port, token) is grpc.StatusCode.OK  # the token handed out before the restart
        assert stats_code(port, token[:-2] + "xx") is grpc.StatusCode.UNAUTHENTICATED
        assert snapshot(token_file) == before  # not rewritten
    finally:
        assert second.stop() == 0
    log = second.log
    assert token not in log
    assert log.count(f"the development token (valid until ") == 2 and f"is in {token_file}" in log


def test_the_development_token_is_reused_while_good_and_replaced_when_bad_or_expiring(tmp_path: Path) -> None:
    first = DevelopmentAuth.load(tmp_path, "dev-tenant", "tenant_id")
    assert not first.token_file.exists()  # load() never writes the token: start() saves it once the port is bound
    first.save()
    assert DevelopmentAuth.load(tmp_path, "dev-tenant", "tenant_id").token == first.token
    assert DevelopmentAuth.load(tmp_path, "other-tenant", "tenant_id").token != first.token

    secret = (tmp_path / "dev-token-secret").read_text().strip()
    expiring = jwt.encode({"tenant_id": "dev-tenant", "iss": DEV_ISSUER, "aud": DEV_AUDIENCE,
                           "exp": int(time.time()) + 86400}, secret, algorithm="HS256")
    for stale in ("not a token", expiring):
        first.token_file.write_text(stale + "\n")
        renewed = DevelopmentAuth.load(tmp_path, "dev-tenant", "tenant_id")
        assert renewed.token != stale and renewed.verifier.tenant_of(renewed.token) == "dev-tenant"
        assert renewed.expires_at > time.time() + 29 * 86400
        assert renewed.verifier.tenant_of(first.token) == "dev-tenant"  # same key: older tokens stay valid


def test_processes_starting_together_share_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "data" / "dev-token-secret"
    with ThreadPoolExecutor(16) as pool:
        secrets = set(pool.map(lambda _: read_or_create_secret(path), range(64)))
    assert len(secrets) == 1 and path.read_text().strip() in secrets
    assert sorted(p.name for p in path.parent.iterdir()) == ["dev-token-secret"]  # no temporary files left
