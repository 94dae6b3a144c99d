"""`costestimator eligibility …` over a real socket against the sandbox clearinghouse (SQLite in the server's
data dir): what the CLI shows is what the stubs read back."""

from __future__ import annotations

import json

import grpc

from costestimator.v1 import eligibility_service_pb2 as pb
from costestimator.v1 import eligibility_service_pb2_grpc
from tests.cli.test_estimate_cli import against, run_cli
from tests.client_package.live_server import LiveServer

ALEX = ["--payer", "SBX01", "--npi", "1999999984", "--organization", "Riverbend Family Medicine",
        "--member-id", "SBX100001", "--first-name", "Alex", "--last-name", "Rivera", "--dob", "1985-04-12"]
PAT_TWICE_UNABLE = ["--payer", "SBX01", "--npi", "1999999984", "--organization", "Riverbend",
                    "--member-id", "SBX420002", "--first-name", "Pat", "--last-name", "Quinn", "--dob", "1980-01-01"]


def stub_get(server: LiveServer, check_id: str) -> pb.EligibilityCheck:
    with grpc.insecure_channel(server.target) as channel:
        return eligibility_service_pb2_grpc.EligibilityServiceStub(channel).GetEligibilityCheck(
            pb.GetEligibilityCheckRequest(id=check_id), metadata=(("authorization", f"Bearer {server.token}"),),
            timeout=30).check


def test_check_shows_the_verified_card(live_server: LiveServer) -> None:
    ran = run_cli(*against(live_server), "eligibility", "check", *ALEX, "--policy-id", "cli-card",
                  "--patient-id", "p1", "--json")
    assert ran.returncode == 0, ran.stderr
    check_id = json.loads(ran.stdout)["id"]
    stored = stub_get(live_server, check_id)
    assert stored.status == pb.ELIGIBILITY_STATUS_VERIFIED

    card = run_cli(*against(live_server), "eligibility", "get", check_id)
    assert card.returncode == 0, card.stderr
    assert "VERIFIED" in card.stdout and stored.summary.plan_name in card.stdout
    assert check_id in card.stdout and "deductible" in card.stdout


def test_submit_watch_follows_pending_to_verified_then_list_and_stats(live_server: LiveServer) -> None:
    policy = "cli-watch"
    ran = run_cli(*against(live_server), "eligibility", "submit", *PAT_TWICE_UNABLE, "--policy-id", policy,
                  "--patient-id", "p2", "--watch")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    states = [line.split()[1] for line in ran.stdout.splitlines() if line[:2].isdigit() and line[2:3] == ":"]
    assert states[0] == "PENDING" and states[-1] == "VERIFIED", ran.stdout

    first = run_cli(*against(live_server), "eligibility", "check", *ALEX, "--policy-id", policy,
                    "--patient-id", "p3", "--json")
    assert first.returncode == 0, first.stderr
    page = run_cli(*against(live_server), "eligibility", "list", "--policy-id", policy, "--page-size", "1", "--json")
    assert page.returncode == 0, page.stderr
    one = json.loads(page.stdout)
    assert len(one["checks"]) == 1 and one["next_page_token"]
    every = run_cli(*against(live_server), "eligibility", "list", "--policy-id", policy, "--page-size", "1", "--all",
                    "--json")
    listed = json.loads(every.stdout)["checks"]
    assert len(listed) == 2 and {c["policy_id"] for c in listed} == {policy}
    assert all(stub_get(live_server, c["id"]).status == pb.ELIGIBILITY_STATUS_VERIFIED for c in listed)

    table = run_cli(*against(live_server), "eligibility", "list", "--policy-id", policy, "--page-size", "1")
    assert "more: --page-token " + one["next_page_token"] in table.stdout.replace("\n", "")
    stats = run_cli(*against(live_server), "eligibility", "stats", "--policy-id", policy, "--json")
    counts = json.loads(stats.stdout)
    assert (counts["total"], counts["verified"]) == ("2", "2")


def test_an_unknown_check_is_not_found_and_a_bad_date_is_refused(live_server: LiveServer) -> None:
    missing = run_cli(*against(live_server), "eligibility", "get", "no-such-check")
    assert missing.returncode == 1 and "(NOT_FOUND)" in missing.stderr
    bad = run_cli(*against(live_server), "eligibility", "check", *ALEX[:-2], "--dob", "12/04/1985",
                  "--policy-id", "x", "--patient-id", "y")
    assert bad.returncode == 2 and "--dob must be a date" in bad.stderr
    invalid = run_cli(*against(live_server), "eligibility", "check", *ALEX[:-2], "--dob", "2999-01-01",
                      "--policy-id", "x", "--patient-id", "y")
    assert invalid.returncode == 2 and "(INVALID_ARGUMENT)" in invalid.stderr
    assert "inquiry.subscriber.date_of_birth" in invalid.stderr


def test_watch_by_id_prints_each_state_until_final(live_server: LiveServer) -> None:
    submitted = run_cli(*against(live_server), "eligibility", "submit", *PAT_TWICE_UNABLE, "--policy-id", "cli-w2",
                        "--patient-id", "p4", "--json")
    assert submitted.returncode == 0, submitted.stderr
    check = json.loads(submitted.stdout)
    assert check["status"] == "ELIGIBILITY_STATUS_PENDING"
    watched = run_cli(*against(live_server), "eligibility", "watch", check["id"], "--json")
    assert watched.returncode == 0, watched.stderr
    states = [json.loads(line)["status"] for line in watched.stdout.splitlines() if line.strip()]
    assert states[-1] == "ELIGIBILITY_STATUS_VERIFIED"
    assert pb.EligibilityStatus.Value(states[-1]) == stub_get(live_server, check["id"]).status
