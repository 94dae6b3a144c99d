"""Tracing: a span per RPC ending with the status the caller got, a span per upstream HTTP attempt, and no member
data (ids, names, birth dates of every sandbox member) anywhere in a span: names, attributes, events, statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import pytest_asyncio
from costestimator.v1 import benefit_service_pb2 as bpb
from costestimator.v1 import benefit_service_pb2_grpc
from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import eligibility_service_pb2 as elpb
from costestimator.v1 import eligibility_service_pb2_grpc
from costestimator.v1 import estimate_service_pb2 as epb
from costestimator.v1 import estimate_service_pb2_grpc
from google.type import money_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry
from yarl import URL

from server.app import Application
from server.sandbox.payer_catalogue import MEMBERS
from server.sandbox.stedi_catalogue import SBX_MEMBERS, STEDI_MOCK_MEMBERS
from server.settings import Settings
from server.telemetry.tracing import UrlRedactor
from tests.conftest import auth
from tests.eligibility_service.helpers import RIVERA, inquiry

ACTIVE = "5~186103331+10+7+20260101+793854+8A+829"
INACTIVE = "5~186103339+10+7+20250101+793869+8A+899"


def sandbox_phi() -> set[str]:
    """Every member id, name and birth date of the sandboxes (ids also by their numeric parts)."""
    values: set[str] = set()
    for membership_id in MEMBERS:
        values.add(membership_id)
        values.update(part for part in membership_id.replace("~", "+").split("+") if len(part) >= 6)
    for m in (*SBX_MEMBERS, *STEDI_MOCK_MEMBERS):
        values.update(v for v in (m.member_id, m.first_name, m.last_name) if v)
        people = [(m.dob or "")] + ([m.dependent.dob, m.dependent.first_name] if m.dependent else [])
        for dob in people:
            if len(dob) == 8 and dob.isdigit():
                values.update({dob, f"{dob[:4]}-{dob[4:6]}-{dob[6:]}"})
            elif dob:
                values.add(dob)
    return values


def span_texts(span: ReadableSpan) -> list[str]:
    texts = [span.name, span.status.description or ""]
    texts += [f"{k}={v!s}" for k, v in (span.attributes or {}).items()]
    for event in span.events:
        texts.append(event.name)
        texts += [f"{k}={v!s}" for k, v in (event.attributes or {}).items()]
    texts += [f"{k}={v!s}" for k, v in span.resource.attributes.items()]
    return texts


@pytest_asyncio.fixture
async def traced(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[Application, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    settings = make_settings(upstream_backoff_seconds=0.01, upstream_backoff_max_seconds=0.02)
    app = Application(settings, registry=CollectorRegistry(), span_exporter=exporter)
    await app.start()
    yield app, exporter
    await app.stop(grace=0)


def get_benefit(member: str) -> bpb.GetBenefitRequest:
    service = bpb.ServiceInfo(service_code=cpb.ServiceCode(code="99214", code_type=cpb.CODE_TYPE_CPT4))
    return bpb.GetBenefitRequest(product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL, service_infos=[service],
                                 member=cpb.Member(membership_id=member, plan_identifier="3~"))


def _estimate_fields(member: str, providers: int) -> dict[str, Any]:
    return dict(
        member=cpb.Member(membership_id=member, plan_identifier="3~"), product_type=cpb.BENEFIT_PRODUCT_TYPE_MEDICAL,
        service=epb.RequestedService(code="70551", code_type=cpb.CODE_TYPE_CPT4, place_of_service_code="11"),
        providers=[epb.Provider(provider_id=f"p{i}", network_category=cpb.NETWORK_CATEGORY_IN_NETWORK,
                                benefit_tier_name="1", negotiated_amount=money_pb2.Money(currency_code="USD", units=850))
                   for i in range(providers)])


def estimate(member: str = ACTIVE, providers: int = 1) -> epb.EstimateRequest:
    return epb.EstimateRequest(**_estimate_fields(member, providers))


def stream_estimates(member: str = ACTIVE, providers: int = 1) -> epb.StreamEstimatesRequest:
    return epb.StreamEstimatesRequest(**_estimate_fields(member, providers))


async def code_of(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_rpc_and_upstream_spans_carry_final_codes_and_no_member_data(
        traced: tuple[Application, InMemorySpanExporter]) -> None:
    app, exporter = traced
    md = auth(app)
    got: dict[str, grpc.StatusCode] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        benefits = benefit_service_pb2_grpc.BenefitServiceStub(ch)
        estimates = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        eligibility = eligibility_service_pb2_grpc.EligibilityServiceStub(ch)
        calls: dict[str, Any] = {
            "benefit-ok": benefits.GetBenefit(get_benefit(ACTIVE), metadata=(*md, ("x-request-id", "benefit-ok")),
                                              timeout=15),
            "benefit-not-found": benefits.GetBenefit(get_benefit(INACTIVE),
                                                     metadata=(*md, ("x-request-id", "benefit-not-found")), timeout=15),
            "estimate-ok": estimates.Estimate(estimate(), metadata=(*md, ("x-request-id", "estimate-ok")), timeout=15),
            "calculate-invalid": estimates.Calculate(epb.CalculateRequest(),
                                                     metadata=(*md, ("x-request-id", "calculate-invalid")), timeout=15),
            "check-ok": eligibility.CheckEligibility(elpb.CheckEligibilityRequest(inquiry=inquiry(*RIVERA)),
                                                     metadata=(*md, ("x-request-id", "check-ok")), timeout=15),
            "check-unavailable": eligibility.CheckEligibility(
                elpb.CheckEligibilityRequest(inquiry=inquiry("SBX503001", "Pat", "Quinn", "1980-01-01")),
                metadata=(*md, ("x-request-id", "check-unavailable")), timeout=15),
            "get-not-found": eligibility.GetEligibilityCheck(elpb.GetEligibilityCheckRequest(id="0" * 26),
                                                             metadata=(*md, ("x-request-id", "get-not-found")),
                                                             timeout=15),
        }
        for name, call in calls.items():
            got[name] = await code_of(call)
    assert got == {
        "benefit-ok": grpc.StatusCode.OK, "benefit-not-found": grpc.StatusCode.NOT_FOUND,
        "estimate-ok": grpc.StatusCode.OK, "calculate-invalid": grpc.StatusCode.INVALID_ARGUMENT,
        "check-ok": grpc.StatusCode.OK, "check-unavailable": grpc.StatusCode.UNAVAILABLE,
        "get-not-found": grpc.StatusCode.NOT_FOUND,
    }
    await app.stop(grace=0)  # flushes: every span has ended and been exported
    spans = list(exporter.get_finished_spans())

    rpc_spans = {s.attributes["costest.request_id"]: s for s in spans
                 if s.kind is SpanKind.SERVER and s.attributes is not None}
    assert set(rpc_spans) == set(got)
    for name, code in got.items():
        span = rpc_spans[name]
        assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == code.value[0], name
        if code is grpc.StatusCode.OK:
            assert span.status.status_code is StatusCode.UNSET, name
        else:
            assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, code.name), name
    assert rpc_spans["check-ok"].name == "costestimator.v1.EligibilityService/CheckEligibility"

    # One client span per upstream HTTP attempt, inside the RPC's trace; URLs are route templates.
    clients = [s for s in spans if s.kind is SpanKind.CLIENT]
    upstreams = {s.attributes["costest.upstream"] for s in clients if s.attributes is not None}
    assert {"oauth", "benefits", "accumulators", "stedi"} <= upstreams
    accumulators = [s for s in clients if s.attributes and s.attributes["costest.upstream"] == "accumulators"]
    assert accumulators and all(s.attributes and str(s.attributes["url.full"]).endswith(
        "/accumulators/v1/read?membershipId={}&planIdentifier={}") for s in accumulators)
    estimate_trace = rpc_spans["estimate-ok"].context.trace_id
    assert any(s.context.trace_id == estimate_trace for s in accumulators)
    stedi = [s for s in clients if s.attributes and s.attributes["costest.upstream"] == "stedi"
             and s.context.trace_id == rpc_spans["check-unavailable"].context.trace_id]
    assert len(stedi) >= 2  # retried: one span per attempt
    assert all(s.attributes and s.attributes["http.response.status_code"] == 503 for s in stedi)

    phi = sandbox_phi()
    assert {"SBX100001", "Rivera", "1985-04-12", "19850412", "186103331"} <= phi
    leaks = [(s.name, t) for s in spans for t in span_texts(s) if any(p in t for p in phi)]
    assert leaks == []


async def test_rpc_span_continues_the_callers_trace(traced: tuple[Application, InMemorySpanExporter]) -> None:
    app, exporter = traced
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
        await code_of(stub.Calculate(epb.CalculateRequest(), timeout=5, metadata=(
            *auth(app), ("traceparent", f"00-{trace_id}-{parent_id}-01"))))
    [span] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == parent_id


def test_url_redactor_keeps_only_route_segments() -> None:
    redact = UrlRedactor(["/accumulators/v1/read", "https://h/2024-04-01/change/eligibility/v3"])
    url = URL("https://user:pw@payer.example:8443/accumulators/v1/members/SBX100001/read?membershipId=5~1&x=Rivera#f")
    assert redact.full(url) == "https://payer.example:8443/accumulators/v1/{}/{}/read?membershipId={}&x={}"
    assert redact.path(URL("http://h/2024-04-01/change/eligibility/v3")) == "/2024-04-01/change/eligibility/v3"


async def test_tracing_is_off_by_default_and_then_hooks_nothing(start_app: Callable[..., Any]) -> None:
    app = await start_app()
    assert app.settings.tracing is False and app.tracing is None
    assert app.payer is not None
    assert all(app.payer.clients.pool[name].config.trace_configs == () for name in app.payer.clients.pool.names())


async def test_costest_tracing_exports_with_otlp_to_the_configured_collector(
        start_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """COSTEST_TRACING=true and the standard OTEL_* variables: spans reach an OTLP/gRPC collector (a stand-in)."""
    received: list[trace_service_pb2.ExportTraceServiceRequest] = []

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):
        async def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method's name
            received.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    collector = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), collector)
    port = collector.add_insecure_port("127.0.0.1:0")
    await collector.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "costest-under-test")
        app = await start_app(tracing=True)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
            stub = estimate_service_pb2_grpc.EstimateServiceStub(ch)
            assert await code_of(stub.Calculate(epb.CalculateRequest(), metadata=auth(app), timeout=5)) \
                is grpc.StatusCode.INVALID_ARGUMENT
        await app.stop(grace=0)  # flushes the batch
    finally:
        await collector.stop(None)
    spans = [(rs.resource, span) for r in received for rs in r.resource_spans for ss in rs.scope_spans
             for span in ss.spans]
    [(resource, span)] = spans
    assert span.name == "costestimator.v1.EstimateService/Calculate"
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "costest-under-test"
    assert {a.key: a.value.int_value for a in span.attributes}["rpc.grpc.status_code"] == 3
