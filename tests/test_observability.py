"""Per-RPC metrics on the Prometheus endpoint, and access log lines that carry no request content."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import grpc
import pytest
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc

from tests.conftest import auth
from tests.server_process import free_port


async def test_rpc_metrics_and_access_log(start_app: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    metrics_port = free_port()
    app = await start_app(metrics_port=metrics_port)
    caplog.set_level(logging.INFO, logger="server.access")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        for metadata in (None, auth(app)):
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Calculate(epb.CalculateRequest(), metadata=metadata, timeout=5)
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
        text = await resp.text()
    method = "/costestimator.v1.EstimateService/Calculate"
    assert f'costestimator_grpc_handled_total{{code="UNAUTHENTICATED",method="{method}"}} 1.0' in text
    assert f'costestimator_grpc_handled_total{{code="INVALID_ARGUMENT",method="{method}"}} 1.0' in text
    assert "costestimator_upstream_circuit_state" in text
    lines = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    assert any(line.startswith(f"{method} INVALID_ARGUMENT ") for line in lines), lines
