"""`costestimator estimate` over a real socket against the sandbox: the live table's final content, the JSON
output, the trace, and failures as people read them (with their exit codes).

Every expectation comes from the same request sent here with the stubs, never from numbers written in the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from costestimator.v1 import common_pb2, estimate_service_pb2, estimate_service_pb2_grpc
from costestimator_cli.errors import CODES_BY_NUMBER
from costestimator_cli.estimate import (EXAMPLE_MEMBER, EXAMPLE_PLACE, EXAMPLE_PLAN, EXAMPLE_SERVICE,
                                        example_providers)
from costestimator_cli.formatting import money_text, money_value
from tests.client_package.live_server import LiveServer
from tests.conftest import ROOT
from tests.server_process import free_port

UNKNOWN_LIMIT_MEMBER = "5~186103344+10+7+20260101+793870+8A+844"  # README: that provider's status is INVALID_ARGUMENT


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """`python -m costestimator_cli ARGS` in its own process, wide enough that no table row wraps."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COSTESTIMATOR_")}
    environment.update({"COLUMNS": "220", "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'generated'}"}, **(env or {}))
    return subprocess.run([sys.executable, "-m", "costestimator_cli", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def against(server: LiveServer) -> list[str]:
    """Target and the server's data dir: the CLI finds the development token there, as for `./dev serve`."""
    return ["--target", server.target, "--data-dir", str(server.data_dir)]


def table_rows(output: str) -> list[list[str]]:
    """The body rows of the comparison table (box-drawn), cells stripped."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in output.splitlines() if line.startswith("│")]


def stream_with_stubs(server: LiveServer, request: estimate_service_pb2.StreamEstimatesRequest,
                      ) -> list[estimate_service_pb2.CostEstimate]:
    with grpc.insecure_channel(server.target) as channel:
        replies = estimate_service_pb2_grpc.EstimateServiceStub(channel).StreamEstimates(
            request, metadata=(("authorization", f"Bearer {server.token}"),), timeout=60)
        return [reply.estimate for reply in replies]


def example_request(include_trace: bool = False) -> estimate_service_pb2.StreamEstimatesRequest:
    return estimate_service_pb2.StreamEstimatesRequest(
        member=common_pb2.Member(membership_id=EXAMPLE_MEMBER, plan_identifier=EXAMPLE_PLAN),
        product_type=common_pb2.BENEFIT_PRODUCT_TYPE_MEDICAL,
        service=estimate_service_pb2.RequestedService(code=EXAMPLE_SERVICE, code_type=common_pb2.CODE_TYPE_CPT4,
                                                      place_of_service_code=EXAMPLE_PLACE),
        providers=example_providers(), include_trace=include_trace)


def test_the_final_table_lists_every_provider_sorted_by_what_the_member_pays(live_server: LiveServer) -> None:
    ran = run_cli(*against(live_server), "estimate", "--example", "--explain", "hilltop-imaging")
    assert ran.returncode == 0, ran.stderr
    expected = {e.provider_id: e for e in stream_with_stubs(live_server, example_request(include_trace=True))}
    assert len(expected) == 20 and all(e.status.code == 0 for e in expected.values())

    rows = table_rows(ran.stdout.split("Why ")[0])
    assert [row[0] for row in rows] == [str(rank) for rank in range(1, 21)]
    by_provider = {row[1]: row for row in rows}
    assert by_provider.keys() == expected.keys()
    for provider_id, estimate in expected.items():
        assert by_provider[provider_id][5:7] == [money_text(estimate.member_pays), money_text(estimate.plan_pays)]
    paid = [money_value(expected[row[1]].member_pays) for row in rows]
    assert paid == sorted(paid) and paid[0] < paid[-1]
    assert "20/20" in ran.stdout and "0 failed" in ran.stdout
    assert "waiting" not in ran.stdout

    explained = expected["hilltop-imaging"]
    assert f"Why hilltop-imaging costs {money_text(explained.member_pays)}" in ran.stdout
    assert explained.trace and all(line.handler in ran.stdout for line in explained.trace)
    assert " → ".join(explained.path) in ran.stdout


def test_json_output_is_the_stream_as_proto_json_sorted_by_member_cost(live_server: LiveServer) -> None:
    ran = run_cli(*against(live_server), "estimate", "--example", "--json")
    assert ran.returncode == 0, ran.stderr
    printed = json.loads(ran.stdout)["estimates"]
    expected = {e.provider_id: e for e in stream_with_stubs(live_server, example_request())}
    assert sorted(p["provider_id"] for p in printed) == sorted(expected)
    for item in printed:
        parsed = json_format.ParseDict(item, estimate_service_pb2.CostEstimate())
        want = expected[item["provider_id"]]
        parsed.benefit_from_cache = want.benefit_from_cache  # the second ask may hit the benefit cache
        assert parsed == want
    pays = [Decimal(p["member_pays"]["units"]) + Decimal(p["member_pays"]["nanos"]).scaleb(-9) for p in printed]
    assert pays == sorted(pays)


def test_providers_from_flags_and_a_csv_with_a_failed_provider_exit_5(live_server: LiveServer,
                                                                     tmp_path: Path) -> None:
    (tmp_path / "providers.csv").write_text("id,network,tier,amount\npt-csv,out,,200\n")
    ran = run_cli(*against(live_server), "estimate", "--member", UNKNOWN_LIMIT_MEMBER, "--plan", "3~",
                  "--service", "97110", "--place", "11", "-p", "id=pt-flag,network=in,tier=1,amount=150",
                  "--providers-csv", str(tmp_path / "providers.csv"))
    request = estimate_service_pb2.StreamEstimatesRequest(
        member=common_pb2.Member(membership_id=UNKNOWN_LIMIT_MEMBER, plan_identifier="3~"),
        product_type=common_pb2.BENEFIT_PRODUCT_TYPE_MEDICAL,
        service=estimate_service_pb2.RequestedService(code="97110", code_type=common_pb2.CODE_TYPE_CPT4,
                                                      place_of_service_code="11"),
        providers=[estimate_service_pb2.Provider(
            provider_id="pt-flag", network_category=common_pb2.NETWORK_CATEGORY_IN_NETWORK, benefit_tier_name="1",
            negotiated_amount={"currency_code": "USD", "units": 150}),
            estimate_service_pb2.Provider(
            provider_id="pt-csv", network_category=common_pb2.NETWORK_CATEGORY_OUT_OF_NETWORK,
            negotiated_amount={"currency_code": "USD", "units": 200})])
    expected = {e.provider_id: e for e in stream_with_stubs(live_server, request)}
    failed = {pid for pid, e in expected.items() if e.status.code != 0}
    assert failed, "the sandbox member with an unknown limit type must fail its providers"
    assert ran.returncode == 5, ran.stdout + ran.stderr
    rows = {row[1]: row for row in table_rows(ran.stdout)}
    assert rows.keys() == expected.keys()
    for provider_id in failed:
        assert rows[provider_id][-1] == CODES_BY_NUMBER[expected[provider_id].status.code].name
        assert f"{provider_id}: " in ran.stdout and expected[provider_id].status.message in ran.stdout


def test_bad_input_prints_each_field_violation_and_exits_2(live_server: LiveServer) -> None:
    ran = run_cli(*against(live_server), "estimate", "--member", "m", "--plan", "3~", "--service", "70551",
                  "-p", "id=a,network=in,amount=10.005")
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "(INVALID_ARGUMENT)" in ran.stderr
    assert "providers[0].negotiated_amount" in ran.stderr and "Traceback" not in ran.stderr
    assert ran.stdout.strip() == ""  # no empty table left behind

    unreadable = run_cli(*against(live_server), "estimate", "--example", "-p", "id=a,colour=red")
    assert unreadable.returncode == 2 and "unknown key 'colour'" in unreadable.stderr


def test_help_needs_no_server_and_no_token(tmp_path: Path) -> None:
    ran = run_cli("--data-dir", str(tmp_path), "estimate", "--help")
    assert ran.returncode == 0 and "--explain" in ran.stdout and "--providers-csv" in ran.stdout


def test_an_unreachable_server_says_try_again_and_exits_3(tmp_path: Path) -> None:
    (tmp_path / "dev-token").write_text("not-checked-before-the-connection")
    ran = run_cli("--target", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path), "--deadline", "3",
                  "estimate", "--example")
    assert ran.returncode == 3, ran.stdout + ran.stderr
    assert "cannot reach 127.0.0.1:" in ran.stderr and "try again" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_tokens_from_the_flag_the_env_or_the_local_data_dir(live_server: LiveServer, tmp_path: Path) -> None:
    refused = run_cli("--target", live_server.target, "--token", "not-a-jwt", "estimate", "--example")
    assert refused.returncode == 4 and "(UNAUTHENTICATED)" in refused.stderr
    missing = run_cli("--target", live_server.target, "--data-dir", str(tmp_path), "estimate", "--example")
    assert missing.returncode == 4 and str(tmp_path / "dev-token") in missing.stderr.replace("\n", "")
    from_env = run_cli("--target", live_server.target, "estimate", "--example", "--json",
                       env={"COSTESTIMATOR_TOKEN": live_server.token})
    assert from_env.returncode == 0, from_env.stderr
    from_server_setting = run_cli("--target", live_server.target, "estimate", "--example", "--json",
                                  env={"COSTEST_DATA_DIR": str(live_server.data_dir)})
    assert from_server_setting.returncode == 0, from_server_setting.stderr
    assert json.loads(from_env.stdout) == json.loads(from_server_setting.stdout)
