"""Issue 9 §2 over a real gRPC server: one caller's failing member must not fail everyone else's checks.

Measured before the change: two checks for a member whose clearinghouse calls answer 503 opened the shared
"stedi" breaker (every retry attempt counted, 5 in a row opened it), and a healthy check one second later was
stored FAILED "circuit open" in 0.02 s. Breakers now count one outcome per request and open on a failure rate
over a minimum volume (default ≥ 50 % of ≥ 20 requests in 10 s).
"""

from __future__ import annotations

import asyncio

import grpc

from costestimator.v1 import eligibility_service_pb2 as pb
from server.app import Application
from tests.eligibility_service.conftest import MakeApp
from tests.eligibility_service.helpers import RIVERA, UNAVAILABLE, Client, inquiry


async def test_two_failing_members_do_not_open_the_breaker_for_a_healthy_one(make_app: MakeApp) -> None:
    app: Application = await make_app(stedi_url=None, stedi_api_key=None)  # the embedded Stedi sandbox
    assert app.dev_token is not None and app.resources is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        client = Client(channel, app.dev_token)
        for n in range(2):
            err = await client.check_error(inquiry(*UNAVAILABLE, patient_id=f"p-503-{n}"), timeout=20)
            assert err.code() is grpc.StatusCode.UNAVAILABLE
        assert await app.resources.resilience.state("stedi") == "closed"
        await asyncio.sleep(1.0)
        check = await client.check(inquiry(*RIVERA, patient_id="p-healthy"), timeout=20)
        assert check.status == pb.ELIGIBILITY_STATUS_VERIFIED, check
    breaker = app.resources.resilience.breakers.find("stedi")
    assert breaker is not None and breaker.counts() == (3, 2)  # one outcome per check, not per attempt
