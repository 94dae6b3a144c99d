"""Issue 10 §4: a Node.js client (@grpc/grpc-js + @grpc/proto-loader, protos/ loaded at run time) against a real
server, its decoding checked against the Python stubs' answers to the same requests.

Needs node and npm (and the npm registry, or npm's cache in tests/node/.npm-cache): without them it skips,
unless COSTEST_REQUIRE_NODE=1 (set by .ci/run) makes that a failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc_status import rpc_status

from costestimator.v1 import (common_pb2, eligibility_service_pb2, eligibility_service_pb2_grpc, estimate_service_pb2,
                              estimate_service_pb2_grpc)
from google.rpc import error_details_pb2
from google.type import date_pb2, money_pb2
from tests.client_package.live_server import LiveServer
from tests.conftest import ROOT, unavailable

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parent
MEMBER = common_pb2.Member(membership_id="5~186103331+10+7+20260101+793854+8A+829", plan_identifier="3~")
INACTIVE = common_pb2.Member(membership_id="5~186103339+10+7+20250101+793869+8A+899", plan_identifier="3~")
CODES = {code.value[0]: code.name for code in grpc.StatusCode}


def _providers() -> list[estimate_service_pb2.Provider]:
    in_network = common_pb2.NETWORK_CATEGORY_IN_NETWORK
    return [
        estimate_service_pb2.Provider(provider_id="imaging-center", network_category=in_network, benefit_tier_name="1",
                                      negotiated_amount=money_pb2.Money(currency_code="USD", units=850)),
        estimate_service_pb2.Provider(provider_id="hospital", network_category=in_network, benefit_tier_name="2",
                                      provider_type_code="HO",
                                      negotiated_amount=money_pb2.Money(currency_code="USD", units=2400)),
        estimate_service_pb2.Provider(provider_id="out-of-network",
                                      network_category=common_pb2.NETWORK_CATEGORY_OUT_OF_NETWORK,
                                      negotiated_amount=money_pb2.Money(currency_code="USD", units=1900,
                                                                        nanos=500_000_000)),
    ]


def _estimate(member: common_pb2.Member) -> estimate_service_pb2.EstimateRequest:
    return estimate_service_pb2.EstimateRequest(
        member=member, product_type=common_pb2.BENEFIT_PRODUCT_TYPE_MEDICAL, providers=_providers(),
        service=estimate_service_pb2.RequestedService(code="70551", code_type=common_pb2.CODE_TYPE_CPT4,
                                                      place_of_service_code="11"))


def _eligibility() -> eligibility_service_pb2.CheckEligibilityRequest:
    return eligibility_service_pb2.CheckEligibilityRequest(inquiry=eligibility_service_pb2.EligibilityInquiry(
        payer_id="SBX01", service_type_codes=["30"], policy_id="node-policy", patient_id="node-patient",
        provider=eligibility_service_pb2.ProviderIdentity(npi="1999999984", organization_name="Riverbend"),
        subscriber=eligibility_service_pb2.Person(member_id="SBX100001", first_name="Alex", last_name="Rivera",
                                                  date_of_birth=date_pb2.Date(year=1985, month=4, day=12))))


def _json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _money(value: dict[str, Any] | money_pb2.Money) -> Decimal:
    if isinstance(value, money_pb2.Money):
        return Decimal(value.units) + Decimal(value.nanos).scaleb(-9)
    return Decimal(str(value.get("units") or 0)) + Decimal(value.get("nanos") or 0).scaleb(-9)


def _row(provider_id: str, member_pays: Any, plan_pays: Any, code: int) -> tuple[str, Decimal, Decimal, str]:
    return provider_id, _money(member_pays), _money(plan_pays), CODES[code]


def _decoded_error(stub: estimate_service_pb2_grpc.EstimateServiceStub, request: estimate_service_pb2.EstimateRequest,
                   metadata: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The Python reading of the same failure (grpcio-status), in the shape interop.js prints."""
    with pytest.raises(grpc.RpcError) as caught:
        stub.Estimate(request, metadata=metadata, timeout=30)
    error = caught.value
    assert isinstance(error, grpc.Call)
    decoded: dict[str, Any] = {"code": error.code().name, "field_violations": [], "error_infos": [],
                               "other_details": []}
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        bad, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
        if detail.Unpack(bad):
            decoded["field_violations"] += [{"field": v.field, "description": v.description}
                                            for v in bad.field_violations]
        elif detail.Unpack(info):
            decoded["error_infos"].append({"reason": info.reason, "domain": info.domain,
                                           "metadata": dict(info.metadata)})
        else:
            decoded["other_details"].append(detail.type_url.rsplit("/", 1)[-1])
    return decoded


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """`npm ci` from the committed lock file (npm's cache kept in tests/node/.npm-cache, git-ignored)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        unavailable("node", "node and npm are needed for the Node.js interop test (Debian: apt-get install nodejs npm)")
    installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--cache", str(NODE_DIR / ".npm-cache")],
                               cwd=NODE_DIR, capture_output=True, text=True, timeout=300)
    if installed.returncode != 0:
        unavailable("node", f"`npm ci` failed (offline?):\n{installed.stderr[-2000:]}")
    return NODE_DIR / "node_modules"


def test_a_node_client_built_from_the_protos_reads_what_python_reads(
        node_modules: Path, live_server: LiveServer, tmp_path: Path) -> None:
    requests = {"estimate": _estimate(MEMBER), "bad": _estimate(common_pb2.Member()), "not_found": _estimate(INACTIVE),
                "stream": estimate_service_pb2.StreamEstimatesRequest(**{
                    f.name: getattr(_estimate(MEMBER), f.name) for f in _estimate(MEMBER).DESCRIPTOR.fields}),
                "eligibility": _eligibility()}
    config = {"target": live_server.target, "token": live_server.token, "protos": str(ROOT / "protos"),
              "includes": [str(ROOT / "third_party" / "googleapis")],
              "requests": {name: _json(message) for name, message in requests.items()}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    ran = subprocess.run(["node", str(NODE_DIR / "interop.js"), str(tmp_path / "config.json")], cwd=NODE_DIR,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-3000:]
    node = json.loads(ran.stdout)

    metadata = (("authorization", f"Bearer {live_server.token}"),)
    with grpc.insecure_channel(live_server.target) as channel:
        estimates = estimate_service_pb2_grpc.EstimateServiceStub(channel)
        python = estimates.Estimate(requests["estimate"], metadata=metadata, timeout=30).estimates
        want = sorted(_row(e.provider_id, e.member_pays, e.plan_pays, e.status.code) for e in python)
        assert sorted(_row(e["provider_id"], e["member_pays"], e["plan_pays"], e["status_code"])
                      for e in node["estimate"]) == want
        assert any(row[1] > 0 for row in want) and all(row[3] == "OK" for row in want)

        # The stream: one 'data' event per provider, the first handled before the stream ended.
        stream = node["stream"]
        assert sorted(_row(m["provider_id"], m["member_pays"], m["plan_pays"], m["status_code"])
                      for m in stream["messages"]) == want
        assert stream["messages"][0]["at_ms"] < stream["end_ms"]

        # CheckEligibility from Node, read back from Python.
        eligibility = eligibility_service_pb2_grpc.EligibilityServiceStub(channel)
        stored = eligibility.GetEligibilityCheck(eligibility_service_pb2.GetEligibilityCheckRequest(
            id=node["eligibility"]["id"]), metadata=metadata, timeout=30).check
        assert node["eligibility"]["status"] == eligibility_service_pb2.EligibilityStatus.Name(stored.status)
        assert node["eligibility"]["status"] == "ELIGIBILITY_STATUS_VERIFIED"
        assert node["eligibility"]["plan_name"] == stored.summary.plan_name != ""

        # google.rpc.BadRequest (always) and google.rpc.ErrorInfo (wherever the server sends one), as Python reads them.
        for name in ("bad", "not_found"):
            assert node[name] == _decoded_error(estimates, requests[name], metadata), name
    assert node["bad"]["code"] == "INVALID_ARGUMENT" and node["bad"]["field_violations"]
    assert {v["field"] for v in node["bad"]["field_violations"]} >= {"member.membership_id"}
    assert node["not_found"]["code"] == "NOT_FOUND"
