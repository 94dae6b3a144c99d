"""Small pure pieces of the eligibility edge: exact money on the wire, the client's secrecy, URL handling."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.api.eligibility_convert import money_pb, summary_pb
from server.clients.http import UpstreamConfig, UpstreamSession
from server.clients.resilience import Resilience
from server.clients.stedi import ELIGIBILITY_PATH, StediAnswer, StediClient, eligibility_url
from server.domain.eligibility.summary import Accumulator, Bucket, EligibilitySummary, NetworkBuckets, RawRef
from prometheus_client import CollectorRegistry
from tests.eligibility_service.helpers import bucket, money


@pytest.mark.parametrize("text", ["1294.845", "0.001", "-12.5", "7", "0", "123456789.123456789"])
def test_money_on_the_wire_is_exact_beyond_cents(text: str) -> None:
    assert money(money_pb(Decimal(text))) == Decimal(text)


def test_summary_amounts_with_three_decimals_are_not_rounded() -> None:
    summary = EligibilitySummary(
        active=True, coverage_status=None, plan_name="P", insurance_type_code=None, group_number=None,
        group_name=None, plan_number=None, payer_id="SBX01", payer_reported_id=None, payer_name=None,
        effective_date=None, termination_date=None, eligibility_begin_date=None,
        deductible=Accumulator(individual=NetworkBuckets(
            in_network=Bucket("23", Decimal("1000.005"), Decimal("999.995"), Decimal("0.010")))),
        out_of_pocket=Accumulator(), service_cost_shares=(), office_visit_in_network=None,
        office_visit_out_of_network=None, cost_shares=(), notes=(), flags=(), source_refs=(), raw_ref=RawRef(),
    )
    wire = summary_pb(EligibilitySummary.from_json(summary.to_json()))
    assert bucket(wire.deductible.individual.in_network) == (Decimal("1000.005"), Decimal("999.995"),
                                                             Decimal("0.010"))
    assert not wire.deductible.family.HasField("in_network")  # a bucket the payer did not send stays unset


def test_eligibility_url_accepts_host_or_full_endpoint() -> None:
    assert eligibility_url("https://healthcare.us.stedi.com") == "https://healthcare.us.stedi.com" + ELIGIBILITY_PATH
    assert eligibility_url("http://127.0.0.1:9/") == "http://127.0.0.1:9" + ELIGIBILITY_PATH
    assert eligibility_url("https://proxy.test/custom/path") == "https://proxy.test/custom/path"


def test_api_key_and_bodies_stay_out_of_reprs() -> None:
    key = "live_secret_key_value_123"
    client = StediClient(UpstreamSession(UpstreamConfig("stedi", "http://127.0.0.1:9")),
                         Resilience(registry=CollectorRegistry()), key)
    assert key not in repr(client) and key not in str(vars(client))
    answer = StediAnswer(200, {"subscriber": {"memberId": "SBX100001"}}, "ec_1", "T1")
    assert "SBX100001" not in repr(answer)
