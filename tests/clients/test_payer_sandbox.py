"""The payer stand-in itself, spoken to with a bare aiohttp client (no code of ours in between)."""

from __future__ import annotations

import asyncio

import aiohttp

from server.sandbox.faults import Fault, FaultPlan
from server.sandbox.payer import PayerSandboxConfig, RunningSandbox, start_payer_sandbox
from server.sandbox.payer_catalogue import MEMBERS

PPO = "5~186103331+10+7+20260101+793854+8A+829"


async def _token(http: aiohttp.ClientSession, sb: RunningSandbox) -> dict[str, str]:
    async with http.post(
        sb.token_url,
        data={"grant_type": "client_credentials", "client_id": sb.config.client_id, "client_secret": sb.config.client_secret},
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    return {"Authorization": f"Bearer {body['access_token']}", "id_token": body["id_token"]}


async def test_token_endpoint_checks_credentials_and_grant(sandbox: RunningSandbox) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(sandbox.token_url, data={"grant_type": "password"}) as resp:
            assert resp.status == 400
        async with http.post(
            sandbox.token_url, data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"}
        ) as resp:
            assert resp.status == 401
        await _token(http, sandbox)
    assert sandbox.calls["token"] == 3


async def test_bearer_token_required(sandbox: RunningSandbox) -> None:
    async with aiohttp.ClientSession() as http:
        params = {"membershipId": PPO, "planIdentifier": "3~"}
        async with http.get(sandbox.accumulators_url, params=params) as resp:
            assert resp.status == 401
        headers = await _token(http, sandbox)
        async with http.get(sandbox.accumulators_url, params=params, headers={"Authorization": headers["Authorization"]}) as resp:
            assert resp.status == 401  # the id_token header is required too
        async with http.get(sandbox.accumulators_url, params=params, headers=headers) as resp:
            assert resp.status == 200
        sandbox.faults.expire_tokens()
        async with http.get(sandbox.accumulators_url, params=params, headers=headers) as resp:
            assert resp.status == 401


async def test_every_catalogue_member_answers(sandbox: RunningSandbox) -> None:
    async with aiohttp.ClientSession() as http:
        headers = await _token(http, sandbox)
        for member in MEMBERS.values():
            params = {"membershipId": member.membership_id, "planIdentifier": member.plan_identifier}
            async with http.get(sandbox.accumulators_url, params=params, headers=headers) as resp:
                text = await resp.text()
                if member.active:
                    assert resp.status == 200, member.description
                    assert member.membership_id in text
                else:
                    assert resp.status == 400 and "ACTIVE MEMBER COVERAGE NOT FOUND" in text
            body = {
                "benefitProductType": "Medical",
                "membershipID": member.membership_id,
                "planIdentifier": member.plan_identifier,
                "serviceInfo": [{"serviceCodeInfo": {"code": "97110", "type": "CPT4"}}],
            }
            async with http.post(sandbox.benefits_url, json=body, headers=headers) as resp:
                assert resp.status == (200 if member.active else 400)
        # wrong plan → like an unknown member
        params = {"membershipId": PPO, "planIdentifier": "3~HDHP-SILVER-2026"}
        async with http.get(sandbox.accumulators_url, params=params, headers=headers) as resp:
            assert resp.status == 400


async def test_hdhp_puts_the_deductible_first(sandbox: RunningSandbox) -> None:
    hdhp = next(m for m in MEMBERS.values() if m.plan == "HDHP")
    async with aiohttp.ClientSession() as http:
        headers = await _token(http, sandbox)
        body = {
            "benefitProductType": "Medical",
            "membershipID": hdhp.membership_id,
            "planIdentifier": hdhp.plan_identifier,
            "serviceInfo": [
                {"serviceCodeInfo": {"code": "99213", "type": "CPT4", "providerSpecialty": [{"code": "08"}]}},
                {"serviceCodeInfo": {"code": "99395", "type": "CPT4"}},
            ],
        }
        async with http.post(sandbox.benefits_url, json=body, headers=headers) as resp:
            answer = await resp.json()
    office, preventive = (si["benefit"][0]["coverages"][0] for si in answer["serviceInfo"])
    assert office["isDeductibleBeforeCopay"] == "Y"
    assert [r["code"] for r in office["relatedAccumulators"]][:2] == ["Deductible", "Deductible"]
    assert preventive["isDeductibleBeforeCopay"] == "N"


async def test_fault_plan_scripts_latency_and_cancellation() -> None:
    plan = FaultPlan()
    sb = await start_payer_sandbox(PayerSandboxConfig(latency=0.5), faults=plan)
    try:
        plan.script("*", Fault(status=503, retry_after="7"))
        async with aiohttp.ClientSession() as http:
            async with http.post(sb.token_url, data={}) as resp:
                assert resp.status == 503 and resp.headers["Retry-After"] == "7"
            with_timeout = aiohttp.ClientTimeout(total=0.1)
            try:
                async with http.get(sb.accumulators_url, timeout=with_timeout):
                    pass
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(0.1)
        assert plan.seen == {"/oauth2/token": 1, "/accumulators/v1/read": 1}
        assert plan.cancelled["/accumulators/v1/read"] == 1
        assert plan.pending("*") == 0
        plan.reset()
        assert not plan.seen
    finally:
        await sb.close()
