"""Request ids (taken from `x-request-id` or generated, returned to the caller, on every log line of the RPC) and
the JSON access line's own fields."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from costestimator.v1 import benefit_service_pb2_grpc
from costestimator.v1 import eligibility_service_pb2 as elpb
from costestimator.v1 import eligibility_service_pb2_grpc
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc

from server.logging_setup import JsonFormatter, TextFormatter
from server.telemetry import request_ids
from tests.conftest import auth
from tests.eligibility_service.helpers import RIVERA, inquiry
from tests.server_process import ServerProcess, free_port, server_env
from tests.test_observability_tracing import ACTIVE, code_of, get_benefit, stream_estimates

GENERATED = re.compile(r"[0-9a-f]{32}")


async def returned_id(call: Any) -> str:
    """A unary call's id: in its trailers (with the answer or the error), never in a separate initial metadata."""
    await code_of(call)
    assert "x-request-id" not in dict(await call.initial_metadata())
    metadata = dict(await call.trailing_metadata())
    value: str = metadata["x-request-id"]
    return value


async def test_request_id_is_kept_when_safe_else_generated_and_returned(start_app: Callable[..., Any]) -> None:
    app = await start_app()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)

        def calculate(*extra: tuple[str, str]) -> Any:
            return stub.Calculate(epb.CalculateRequest(), metadata=(*auth(app), *extra), timeout=5)

        assert await returned_id(calculate(("x-request-id", "req-1.A:b_c-9"))) == "req-1.A:b_c-9"
        for bad in ("has space", "semi;colon", "x" * 129, "-leading-dash", "a/b?c=\"d\""):
            got = await returned_id(calculate(("x-request-id", bad)))
            assert GENERATED.fullmatch(got), (bad, got)
        first, second = await returned_id(calculate()), await returned_id(calculate())
        assert GENERATED.fullmatch(first) and first != second
        # refused before authentication: still an id
        assert await returned_id(stub.Calculate(epb.CalculateRequest(), timeout=5,
                                                metadata=(("x-request-id", "unauth-1"),))) == "unauth-1"
        benefits = benefit_service_pb2_grpc.BenefitServiceStub(ch)
        ok = benefits.GetBenefit(get_benefit(ACTIVE), metadata=(*auth(app), ("x-request-id", "ok-1")), timeout=15)
        assert await returned_id(ok) == "ok-1" and (await ok).service_infos  # a successful call too
        stream = stub.StreamEstimates(stream_estimates(providers=2), metadata=(*auth(app), ("x-request-id", "stream-1")),
                                      timeout=15)
        assert dict(await stream.initial_metadata())["x-request-id"] == "stream-1"
        assert len([m async for m in stream]) == 2


async def test_every_log_line_of_an_rpc_carries_its_request_id(
        start_app: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = await start_app(benefit_cache_ttl_seconds=0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        md = auth(app)
        benefits = benefit_service_pb2_grpc.BenefitServiceStub(ch)
        estimates = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        eligibility = eligibility_service_pb2_grpc.EligibilityServiceStub(ch)
        await benefits.GetBenefit(get_benefit(ACTIVE), metadata=(*md, ("x-request-id", "unary-1")), timeout=15)
        async for _ in estimates.StreamEstimates(stream_estimates(providers=3),
                                                 metadata=(*md, ("x-request-id", "stream-1")), timeout=15):
            pass
        await eligibility.CheckEligibility(elpb.CheckEligibilityRequest(inquiry=inquiry(*RIVERA)),
                                           metadata=(*md, ("x-request-id", "check-1")), timeout=15)
    ours = {"unary-1", "stream-1", "check-1"}
    access = [r for r in caplog.records if r.name == "server.access" and r.getMessage().startswith("/costest")]
    assert [getattr(r, "request_id", None) for r in access] == ["unary-1", "stream-1", "check-1"]
    # Lines written by the HTTP clients (upstream attempts, in fan-out tasks too) and by the eligibility use case
    client_lines = [r for r in caplog.records if r.name.startswith("server.clients.")]
    assert {getattr(r, "request_id", None) for r in client_lines} == ours
    done = [r for r in caplog.records if r.name == "server.usecases.eligibility" and "VERIFIED" in r.getMessage()]
    assert [getattr(r, "request_id", None) for r in done] == ["check-1"]


def test_text_lines_show_the_request_id() -> None:
    request_ids.install_log_record_factory()
    formatter = TextFormatter("%(name)s: %(message)s%(request_tag)s")

    def record() -> logging.LogRecord:
        return logging.getLogger("server.x").makeRecord("server.x", logging.INFO, "f", 1, "hello", (), None)

    def inside() -> str:
        request_ids.bind("abc-1")
        return formatter.format(record())

    assert contextvars.copy_context().run(inside) == "server.x: hello [req abc-1]"
    assert formatter.format(record()) == "server.x: hello"
    assert "request_id" not in json.loads(JsonFormatter().format(record()))


def test_a_logged_exception_keeps_its_frames_and_types_but_only_our_own_messages() -> None:
    """Another library's message may quote member data it was given: withheld. Ours are written without it."""
    from server.clients.errors import UpstreamUnavailable

    member_id, born = "M-" + str(9900112), "-".join(("1980", "04", "12"))  # made at run time: not in a source line

    def lookup() -> None:
        try:
            {"known": 1}[member_id]  # a KeyError quoting the member id it could not find
        except KeyError as missing:
            try:
                int(born)  # a ValueError quoting a date of birth, raised while handling it
            except ValueError:
                raise UpstreamUnavailable("benefits", "benefits returned a malformed body") from missing

    try:
        lookup()
    except UpstreamUnavailable:
        record = logging.getLogger("server.x").makeRecord(
            "server.x", logging.ERROR, "f", 1, "unhandled %s", ("UpstreamUnavailable",), sys.exc_info())
    for text in (TextFormatter("%(message)s%(request_tag)s").format(record),
                 json.loads(JsonFormatter().format(record))["exc"]):
        assert member_id not in text and born not in text
        assert "KeyError: (message withheld: it may carry request data)" in text
        assert text.endswith("server.clients.errors.UpstreamUnavailable: benefits unavailable: benefits returned a malformed body")
        assert "The above exception was the direct cause of the following exception:" in text
        assert "ValueError" not in text  # the context of an explicit cause is not part of the story (`from`)
        assert "{\"known\": 1}[member_id]" in text  # the source line of each frame, as Python shows it
        assert text.count("Traceback (most recent call last):") == 2 and ", in lookup" in text


def test_json_access_line_has_its_fields(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess.start(server_env(tmp_path / "data", port, log_format="json"), tmp_path / "server.log")
    try:
        server.wait_serving()
        token = (tmp_path / "data" / "dev-token").read_text().strip()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Any = estimate_service_pb2_grpc.EstimateServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.Calculate(epb.CalculateRequest(), timeout=10,
                               metadata=(("authorization", f"Bearer {token}"), ("x-request-id", "json-1")))
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        server.wait_for_log('"request_id": "json-1"')
    finally:
        assert server.stop() == 0
    lines = [json.loads(line) for line in server.log.splitlines() if line.startswith("{")]
    [line] = [e for e in lines if e.get("request_id") == "json-1" and e["logger"] == "server.access"]
    assert line["method"] == "/costestimator.v1.EstimateService/Calculate"
    assert line["code"] == "INVALID_ARGUMENT"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["tenant"] == "dev-tenant"
    assert line["pid"] == server.process.pid
