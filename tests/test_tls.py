"""Inbound TLS and mTLS with certificates made by trustme; the Docker health check and the web console still work
with TLS on."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from costestimator.v1 import eligibility_service_pb2, eligibility_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.app import Application
from server.console_launch import certificate_name, launch_console
from server.settings import Settings, SettingsError
from tests.conftest import ROOT
from tests.server_process import free_port, server_env

SERVER_NAME = "costest.internal"  # not the address dialled: the name is checked, not the IP


class Pki:
    """A server CA with the server's certificate, and a separate CA for internal callers' client certificates."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.server_ca = trustme.CA()
        self.client_ca = trustme.CA()
        server = self.server_ca.issue_cert(SERVER_NAME, "localhost")
        caller = self.client_ca.issue_cert("billing-service.internal")
        stranger = trustme.CA().issue_cert("billing-service.internal")  # a certificate from another CA
        self.files = {
            "server_ca": self._write("server-ca.pem", self.server_ca.cert_pem.bytes()),
            "client_ca": self._write("client-ca.pem", self.client_ca.cert_pem.bytes()),
            "server_cert": self._write("server.pem", b"".join(p.bytes() for p in server.cert_chain_pems)),
            "server_key": self._write("server.key", server.private_key_pem.bytes()),
            "caller_cert": self._write("caller.pem", b"".join(p.bytes() for p in caller.cert_chain_pems)),
            "caller_key": self._write("caller.key", caller.private_key_pem.bytes()),
        }
        self.caller = (caller.private_key_pem.bytes(), caller.cert_chain_pems[0].bytes())
        self.stranger = (stranger.private_key_pem.bytes(), stranger.cert_chain_pems[0].bytes())

    def _write(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.write_bytes(data)
        return path

    def server_settings(self, **extra: Any) -> dict[str, Any]:
        return {"tls_cert_file": self.files["server_cert"], "tls_key_file": self.files["server_key"], **extra}

    def channel(self, port: int, client: tuple[bytes, bytes] | None = None) -> grpc.aio.Channel:
        key, chain = client if client else (None, None)
        credentials = grpc.ssl_channel_credentials(self.server_ca.cert_pem.bytes(), key, chain)
        return grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials,
                                       options=[("grpc.ssl_target_name_override", SERVER_NAME)])


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    (tmp_path / "pki").mkdir()
    return Pki(tmp_path / "pki")


async def health(channel: grpc.aio.Channel) -> Any:
    return await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)


async def stats_code(channel: grpc.aio.Channel, app: Application) -> grpc.StatusCode:
    stub = eligibility_service_pb2_grpc.EligibilityServiceStub(channel)
    try:
        await stub.GetEligibilityStats(eligibility_service_pb2.GetEligibilityStatsRequest(), timeout=10,
                                       metadata=(("authorization", f"Bearer {app.dev_token}"),))
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def refused(channel: grpc.aio.Channel) -> grpc.StatusCode:
    try:
        await health(channel)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    raise AssertionError("the call went through")


async def test_tls_serves_verified_callers_and_refuses_plaintext(start_app: Callable[..., Any], pki: Pki) -> None:
    app = await start_app(**pki.server_settings())
    async with pki.channel(app.port) as channel:
        assert (await health(channel)).status == health_pb2.HealthCheckResponse.SERVING
        assert await stats_code(channel, app) is grpc.StatusCode.OK  # TLS does not replace the bearer token
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as plaintext:
        assert await refused(plaintext) is grpc.StatusCode.UNAVAILABLE
    untrusting = grpc.ssl_channel_credentials(trustme.CA().cert_pem.bytes())  # does not know the server's CA
    async with grpc.aio.secure_channel(f"127.0.0.1:{app.port}", untrusting,
                                       options=[("grpc.ssl_target_name_override", SERVER_NAME)]) as channel:
        assert await refused(channel) is grpc.StatusCode.UNAVAILABLE


async def test_mtls_refuses_callers_without_a_certificate_of_the_client_ca(
    start_app: Callable[..., Any], pki: Pki
) -> None:
    app = await start_app(**pki.server_settings(tls_client_ca_file=pki.files["client_ca"]))
    async with pki.channel(app.port) as anonymous:
        assert await refused(anonymous) is grpc.StatusCode.UNAVAILABLE
    async with pki.channel(app.port, pki.stranger) as stranger:
        assert await refused(stranger) is grpc.StatusCode.UNAVAILABLE
    async with pki.channel(app.port, pki.caller) as caller:
        assert (await health(caller)).status == health_pb2.HealthCheckResponse.SERVING
        assert await stats_code(caller, app) is grpc.StatusCode.OK


def healthcheck(app: Application, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**server_env(tmp_path / "unused", app.port,
                                tls_cert_file=str(app.settings.tls_cert_file)), **env}
    return subprocess.run([sys.executable, "-m", "server.healthcheck"], env=environment, cwd=ROOT,
                          capture_output=True, text=True, timeout=30)


async def test_the_health_check_helper_works_with_tls_and_mtls(
    start_app: Callable[..., Any], pki: Pki, tmp_path: Path
) -> None:
    tls_app = await start_app(**pki.server_settings())
    ca = {"COSTEST_HEALTHCHECK_CA_FILE": str(pki.files["server_ca"]),
          "COSTEST_HEALTHCHECK_SERVER_NAME": SERVER_NAME}
    ok = await asyncio.to_thread(healthcheck, tls_app, tmp_path, **ca)
    assert (ok.returncode, ok.stdout.strip()) == (0, "SERVING"), ok.stderr
    no_ca = await asyncio.to_thread(healthcheck, tls_app, tmp_path)  # system roots do not know our CA
    assert no_ca.returncode == 1 and no_ca.stderr.splitlines()[-1] == "unhealthy: UNAVAILABLE"

    mtls_app = await start_app(**pki.server_settings(tls_client_ca_file=pki.files["client_ca"]))
    anonymous = await asyncio.to_thread(healthcheck, mtls_app, tmp_path, **ca)
    assert anonymous.returncode == 1
    with_cert = await asyncio.to_thread(
        healthcheck, mtls_app, tmp_path, **ca, COSTEST_HEALTHCHECK_CERT_FILE=str(pki.files["caller_cert"]),
        COSTEST_HEALTHCHECK_KEY_FILE=str(pki.files["caller_key"]))
    assert (with_cert.returncode, with_cert.stdout.strip()) == (0, "SERVING"), with_cert.stderr


def test_tls_settings_are_checked_at_start(make_settings: Callable[..., Settings], pki: Pki) -> None:
    with pytest.raises(SettingsError, match="set both COSTEST_TLS_CERT_FILE and COSTEST_TLS_KEY_FILE"):
        make_settings(tls_cert_file=pki.files["server_cert"])
    with pytest.raises(SettingsError, match="COSTEST_TLS_CLIENT_CA_FILE .* needs COSTEST_TLS_CERT_FILE"):
        make_settings(tls_client_ca_file=pki.files["client_ca"])
    with pytest.raises(SettingsError, match="COSTEST_TLS_KEY_FILE: no such file"):
        make_settings(**pki.server_settings(tls_key_file=pki.dir / "missing.key"))
    with pytest.raises(SettingsError, match="not a matching PEM certificate chain and key"):
        make_settings(**pki.server_settings(tls_key_file=pki.files["caller_key"]))  # another certificate's key
    with pytest.raises(SettingsError, match="COSTEST_TLS_CLIENT_CA_FILE: not a PEM CA certificate"):
        make_settings(**pki.server_settings(tls_client_ca_file=pki.files["server_key"]))


# ---------------------------------------------------------------- the web console in front of a TLS port

STATS_PATH = "costestimator.v1.EligibilityService/GetEligibilityStats"
CONNECT_JSON = {"content-type": "application/json", "connect-protocol-version": "1"}


async def console_stats(pki: Pki, port: int) -> tuple[int, bytes]:
    """GetEligibilityStats through the console, as a browser trusting the server CA would call it (by a name the
    certificate carries: it names `localhost`, not 127.0.0.1)."""
    trust = ssl.create_default_context(cafile=pki.files["server_ca"])
    async with aiohttp.ClientSession() as http:
        async with http.post(f"https://localhost:{port}/{STATS_PATH}", data="{}", headers=CONNECT_JSON,
                             ssl=trust) as reply:
            return reply.status, await reply.read()


async def test_the_console_serves_https_and_reaches_a_tls_port_verified(
    start_app: Callable[..., Any], pki: Pki
) -> None:
    app = await start_app(**pki.server_settings(console_port=free_port(), console_ca_file=pki.files["server_ca"]))
    console = await launch_console(app.settings, app.port, app.dev_token)
    assert console is not None
    try:
        assert console.url.startswith("https://")
        status, body = await console_stats(pki, console.port)
        assert (status, json.loads(body)) == (200, {})  # through TLS, with the development token on loopback
        async with aiohttp.ClientSession() as http:  # no plaintext: member data never crosses in clear
            with pytest.raises(aiohttp.ClientError):
                await http.post(f"http://localhost:{console.port}/{STATS_PATH}", data="{}", headers=CONNECT_JSON)
    finally:
        await console.stop()


async def test_a_console_that_does_not_trust_the_port_gets_no_answer_from_it(
    start_app: Callable[..., Any], pki: Pki
) -> None:
    stranger_ca = pki.dir / "stranger-ca.pem"
    stranger_ca.write_bytes(trustme.CA().cert_pem.bytes())
    app = await start_app(**pki.server_settings(console_port=free_port(), console_ca_file=stranger_ca))
    console = await launch_console(app.settings, app.port, app.dev_token)
    assert console is not None
    try:
        status, body = await console_stats(pki, console.port)
        assert status != 200 and json.loads(body)["code"] == "unavailable", body
    finally:
        await console.stop()


async def test_under_mtls_the_console_needs_a_client_certificate_of_its_own(
    start_app: Callable[..., Any], pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    mtls = pki.server_settings(tls_client_ca_file=pki.files["client_ca"], console_ca_file=pki.files["server_ca"])
    without = await start_app(**mtls, console_port=free_port())
    assert await launch_console(without.settings, without.port, without.dev_token) is None
    assert "requires client certificates (mTLS)" in caplog.text

    app = await start_app(**mtls, console_port=free_port(), console_cert_file=pki.files["caller_cert"],
                          console_key_file=pki.files["caller_key"])
    console = await launch_console(app.settings, app.port, app.dev_token)
    assert console is not None
    try:
        status, body = await console_stats(pki, console.port)
        assert (status, json.loads(body)) == (200, {})
    finally:
        await console.stop()


def test_the_console_checks_the_name_the_servers_certificate_carries(pki: Pki, tmp_path: Path) -> None:
    assert certificate_name(pki.files["server_cert"]) == SERVER_NAME  # the first DNS name, not the dialled address
    only_cn = tmp_path / "cn.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "billing.internal")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    only_cn.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    assert certificate_name(only_cn) == "billing.internal"


def test_console_tls_settings_are_checked_at_start(make_settings: Callable[..., Settings], pki: Pki) -> None:
    with pytest.raises(SettingsError, match="set both COSTEST_CONSOLE_CERT_FILE and COSTEST_CONSOLE_KEY_FILE"):
        make_settings(**pki.server_settings(console_cert_file=pki.files["caller_cert"]))
    with pytest.raises(SettingsError, match="COSTEST_CONSOLE_CA_FILE: no such file"):
        make_settings(**pki.server_settings(console_ca_file=pki.dir / "missing.pem"))
    with pytest.raises(SettingsError, match="COSTEST_CONSOLE_CERT_FILE / COSTEST_CONSOLE_KEY_FILE: not a matching"):
        make_settings(**pki.server_settings(console_cert_file=pki.files["caller_cert"],
                                            console_key_file=pki.files["server_key"]))
    with pytest.raises(SettingsError, match="COSTEST_CONSOLE_CA_FILE: not a PEM CA certificate"):
        make_settings(**pki.server_settings(console_ca_file=pki.files["server_key"]))
