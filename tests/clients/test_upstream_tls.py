"""TLS is verified by default: a self-signed upstream is refused unless its CA is configured."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import trustme

from server.clients import UpstreamUnavailable
from server.clients.http import UpstreamConfig, build_ssl
from server.sandbox.payer import PayerSandboxConfig, RunningSandbox, start_payer_sandbox
from tests.clients.payer_client_helpers import MakeClients, benefit_request, payer_config


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "payer-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    yield str(path)


@pytest_asyncio.fixture
async def https_sandbox(ca: trustme.CA) -> AsyncIterator[RunningSandbox]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    running = await start_payer_sandbox(PayerSandboxConfig(ssl_context=server_ctx))
    try:
        yield running
    finally:
        await running.close()


def _tls(**fields: object) -> dict[str, dict[str, object]]:
    return {"benefits": dict(fields), "accumulators": dict(fields), "payer-oauth": dict(fields)}


async def test_self_signed_upstream_is_refused_by_default(
    make_clients: MakeClients, https_sandbox: RunningSandbox
) -> None:
    assert https_sandbox.base_url.startswith("https://")
    clients = await make_clients(payer_config(https_sandbox))
    with pytest.raises(UpstreamUnavailable) as err:
        await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert "TLS" in str(err.value) and "certificate" in str(err.value)
    assert err.value.upstream == "payer-oauth"  # the first HTTPS hop is the token endpoint
    assert https_sandbox.calls["token"] == 0  # the handshake failed before any request
    with pytest.raises(UpstreamUnavailable, match="TLS"):
        await clients.tokens.get()


async def test_configured_ca_bundle_is_trusted(
    make_clients: MakeClients, https_sandbox: RunningSandbox, ca_bundle: str
) -> None:
    clients = await make_clients(payer_config(https_sandbox, **_tls(ca_bundle=ca_bundle)))
    answer = await clients.benefits.get_benefits(benefit_request(), timeout=2)
    assert answer.serviceInfo
    assert https_sandbox.calls == {"token": 1, "benefits": 1}


async def test_disabling_verification_is_explicit_and_warned(
    make_clients: MakeClients, https_sandbox: RunningSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="server.clients")
    clients = await make_clients(payer_config(https_sandbox, **_tls(verify_tls=False)))
    warned = [r for r in caplog.records if "TLS certificate verification is DISABLED" in r.getMessage()]
    assert len(warned) == 3 and all(r.levelno == logging.WARNING for r in warned)
    await clients.benefits.get_benefits(benefit_request(), timeout=2)


def test_the_system_trust_context_verifies_and_is_built_once_per_process(tmp_path: Path) -> None:
    """Every upstream without a CA bundle shares one verifying context (the store is loaded once, not four times
    per start); a CA bundle is read at each start, so a renewed file is picked up."""
    first = build_ssl(UpstreamConfig("benefits", "https://payer.example"))
    second = build_ssl(UpstreamConfig("stedi", "https://stedi.example"))
    assert isinstance(first, ssl.SSLContext) and first is second
    assert first.verify_mode is ssl.CERT_REQUIRED and first.check_hostname
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    own = build_ssl(UpstreamConfig("benefits", "https://payer.example", ca_bundle=str(bundle)))
    again = build_ssl(UpstreamConfig("benefits", "https://payer.example", ca_bundle=str(bundle)))
    assert isinstance(own, ssl.SSLContext) and own is not first and own is not again
    assert own.verify_mode is ssl.CERT_REQUIRED and own.check_hostname
    assert build_ssl(UpstreamConfig("benefits", "https://payer.example", verify_tls=False)) is False
