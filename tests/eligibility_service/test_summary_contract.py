"""What the specs promised the summary carries (issue 10 §5): the coverage line's EB01 status, and for every number
the indices of the benefitsInformation entries it came from (eligibility.md §4: every number traceable to the 271).
Checked against the raw 271 of the same answer, over a real socket."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from costestimator.v1 import eligibility_service_pb2 as pb
from google.protobuf import json_format

from tests.eligibility_service.helpers import MORGAN, RIVERA, Client, inquiry, money, service


def entries(check: pb.EligibilityCheck) -> list[dict[str, Any]]:
    raw = json_format.MessageToDict(check.raw_response)
    found: list[dict[str, Any]] = raw["benefitsInformation"]
    return found


def amounts(raw: list[dict[str, Any]], indices: Any) -> set[Decimal]:
    return {Decimal(raw[i]["benefitAmount"]) for i in indices if "benefitAmount" in raw[i]}


def percents(raw: list[dict[str, Any]], indices: Any) -> set[Decimal]:
    return {Decimal(raw[i]["benefitPercent"]) * 100 for i in indices if "benefitPercent" in raw[i]}


async def test_coverage_status_is_the_eb01_of_the_coverage_line(client: Client) -> None:
    active = await client.check(inquiry(*RIVERA), raw=True)
    status = active.summary.coverage_status
    assert (status.code, status.name) == ("1", "Active Coverage")
    raw = entries(active)
    assert active.summary.source_indices and {raw[i]["code"] for i in active.summary.source_indices} == {"1"}
    inactive = (await client.check(inquiry(*MORGAN))).summary
    assert inactive.activity == pb.COVERAGE_ACTIVITY_INACTIVE and inactive.coverage_status.code == "6"


async def test_every_number_names_the_entries_it_came_from(client: Client) -> None:
    check = await client.check(inquiry(*RIVERA), raw=True)
    s, raw = check.summary, entries(check)
    for kind, levels in (("C", s.deductible), ("G", s.out_of_pocket)):
        for level in (levels.individual, levels.family):
            for network, bucket in (("Y", level.in_network), ("N", level.out_of_network)):
                assert bucket.source_indices, (kind, network)
                cited = [raw[i] for i in bucket.source_indices]
                assert {e["code"] for e in cited} == {kind}
                assert {e["inPlanNetworkIndicatorCode"] for e in cited} == {network}
                # the total and remaining are amounts of the cited entries
                assert {money(bucket.total), money(bucket.remaining)} <= amounts(raw, bucket.source_indices)
    office = service(s, "98").in_network
    assert money(office.copay) in amounts(raw, office.source_indices)
    assert len(office.copay_candidates) == 2
    for candidate in office.copay_candidates:
        (index,) = candidate.source_indices
        assert (raw[index]["code"], Decimal(raw[index]["benefitAmount"])) == ("B", money(candidate.amount))
    headline = s.office_visit_in_network
    assert headline.source_indices and money(headline.copay) in amounts(raw, headline.source_indices)
    out_headline = s.office_visit_out_of_network
    assert Decimal(out_headline.coinsurance_percent.value) in percents(raw, out_headline.source_indices)
