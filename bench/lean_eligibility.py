"""Baseline: the leanest server doing CheckEligibility's durable work, with a bare `grpc.aio` server and asyncpg,
on uvloop like the service.

Per check: INSERT the request row PENDING (one autocommit statement), POST the 270 to the same clearinghouse
stand-in over HTTP, then UPDATE the row to its final status and INSERT the raw response in ONE transaction. Same
tables as the product (the bench migrates the database first), no auth, no retries, no normalisation. The request
and the answer carry member data, so they are stored sealed (AES-256-GCM, the row id as associated data), as the
house rules demand of any server: storing them in plain text would not be the same durable work.

With `--product-answer` it also does the domain work the product's answer requires and the durable work alone
does not: the answer read by the product's `normalize_response`, its summary stored (sealed, in the product's
storage form) with the raw response and answered through the product's `fill_summary`. What the product spends
beyond *that* server is the price of its infrastructure (auth, metrics, resilience, the store layer), as the lean
Estimate server shows for Estimate; what it spends beyond the plain one includes the normalisation the API owes.
`python -m bench.lean_eligibility --port P --dsn postgresql://... --stedi-url URL --key KEY [--product-answer]`
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import uvloop
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from costestimator.v1 import eligibility_service_pb2 as pb

from server.api.eligibility_convert import fill_summary
from server.domain.eligibility.normalize import NormalizationContext, normalize_response
from server.domain.eligibility.status import CheckStatus
from server.usecases.eligibility import service_today, summary_json

from .bare_grpc import serve_unary

METHOD = "/costestimator.v1.EligibilityService/CheckEligibility"
STEDI_PATH = "/2024-04-01/change/medicalnetwork/eligibility/v3"
TENANT = "bench-lean"

INSERT_PENDING = (
    "INSERT INTO eligibility_requests (id, tenant_id, policy_id, patient_id, payer_id, status, mode, requested_at,"
    " updated_at, request_payload, attempts, version) VALUES ($1, $2, $3, $4, $5, 'PENDING', 'sync', $6, $6, $7, 0, 1)")
UPDATE_FINAL = (
    "UPDATE eligibility_requests SET status = $3, completed_at = $4, updated_at = $4, attempts = attempts + 1,"
    " clearinghouse_id = $5, version = version + 1 WHERE tenant_id = $1 AND id = $2 AND status = 'PENDING'")
INSERT_RESPONSE = (
    "INSERT INTO eligibility_responses (request_id, http_status, raw_payload, normalized_summary, created_at)"
    " VALUES ($1, $2, $3, $4, $5)")
_STATUS_PB = {CheckStatus.VERIFIED: pb.ELIGIBILITY_STATUS_VERIFIED,
              CheckStatus.NOT_FOUND: pb.ELIGIBILITY_STATUS_NOT_FOUND, CheckStatus.FAILED: pb.ELIGIBILITY_STATUS_FAILED}


def stedi_body(inquiry: pb.EligibilityInquiry) -> dict[str, Any]:
    s = inquiry.subscriber
    dob = s.date_of_birth
    return {
        "tradingPartnerServiceId": inquiry.payer_id,
        "provider": {"organizationName": inquiry.provider.organization_name, "npi": inquiry.provider.npi},
        "subscriber": {"memberId": s.member_id, "firstName": s.first_name, "lastName": s.last_name,
                       "dateOfBirth": f"{dob.year:04d}{dob.month:02d}{dob.day:02d}"},
    }


class Lean:
    def __init__(self, pool: asyncpg.Pool, http: aiohttp.ClientSession, url: str, key: str,
                 product_answer: bool = False) -> None:
        self.pool, self.http, self.url, self.key = pool, http, url, key
        self.product_answer = product_answer
        self.cipher = AESGCM(AESGCM.generate_key(bit_length=256))

    def seal(self, plain: bytes, row: str) -> str:
        """The JSON text of a sealed value: a string column value, as the product writes into its jsonb columns."""
        nonce = os.urandom(12)
        return json.dumps(base64.b64encode(nonce + self.cipher.encrypt(nonce, plain, row.encode())).decode())

    async def check(self, request: pb.CheckEligibilityRequest, context: Any) -> pb.CheckEligibilityResponse:
        inquiry = request.inquiry
        body = stedi_body(inquiry)
        check_id, now = str(uuid.uuid4()), datetime.now(UTC)
        await self.pool.execute(INSERT_PENDING, check_id, TENANT, inquiry.policy_id or None,
                                inquiry.patient_id or None, inquiry.payer_id, now,
                                self.seal(json.dumps(body).encode(), check_id))
        async with self.http.post(self.url, json=body, headers={"Authorization": f"Key {self.key}"}) as resp:
            raw = await resp.read()
            http_status = resp.status
        answer = json.loads(raw)
        done = datetime.now(UTC)
        if self.product_answer:
            return await self._answered(inquiry, check_id, http_status, raw, answer, done)
        status = "VERIFIED" if http_status == 200 and not answer.get("errors") else "FAILED"
        await self._finish(check_id, status, done, answer, http_status, raw, None)
        final = pb.ELIGIBILITY_STATUS_VERIFIED if status == "VERIFIED" else pb.ELIGIBILITY_STATUS_FAILED
        return pb.CheckEligibilityResponse(check=pb.EligibilityCheck(id=check_id, status=final,
                                                                     payer_id=inquiry.payer_id))

    async def _answered(self, inquiry: pb.EligibilityInquiry, check_id: str, http_status: int, raw: bytes,
                        answer: Any, done: datetime) -> pb.CheckEligibilityResponse:
        """The `--product-answer` ending: the product's normalisation, stored summary and answered summary."""
        context = NormalizationContext(payer_id=inquiry.payer_id, date_of_service=service_today())
        result = normalize_response(http_status, answer, context)
        summary = None if result.summary is None else summary_json(result.summary)
        sealed_summary = None if summary is None else self.seal(json.dumps(summary).encode(), check_id)
        status = result.outcome.status
        await self._finish(check_id, status.value, done, answer, http_status, raw, sealed_summary)
        out = pb.CheckEligibilityResponse()
        check = out.check
        check.id, check.status, check.payer_id = check_id, _STATUS_PB[status], inquiry.payer_id
        if result.summary is not None:
            fill_summary(check.summary, result.summary)
        return out

    async def _finish(self, check_id: str, status: str, done: datetime, answer: Any, http_status: int, raw: bytes,
                      sealed_summary: str | None) -> None:
        """The second write: the final status and the response row (raw answer sealed), in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(UPDATE_FINAL, TENANT, check_id, status, done, answer.get("id"))
            await conn.execute(INSERT_RESPONSE, check_id, http_status, self.seal(raw, check_id), sealed_summary,
                               done)


async def serve(port: int, dsn: str, stedi_url: str, key: str, product_answer: bool = False) -> None:
    async def jsonb(conn: asyncpg.Connection) -> None:
        await conn.set_type_codec("jsonb", encoder=lambda v: v, decoder=lambda v: v, schema="pg_catalog")

    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=20, init=jsonb)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    lean = Lean(pool, http, stedi_url.rstrip("/") + STEDI_PATH, key, product_answer)

    try:
        await serve_unary(port, METHOD, lean.check, pb.CheckEligibilityRequest.FromString,
                          pb.CheckEligibilityResponse.SerializeToString)
    finally:
        await http.close()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True, help="postgresql://... (asyncpg form)")
    parser.add_argument("--stedi-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--product-answer", action="store_true",
                        help="also normalise, store and answer the summary with the product's own code")
    args = parser.parse_args()
    try:
        uvloop.run(serve(args.port, args.dsn, args.stedi_url, args.key, args.product_answer))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
