"""Payer stand-in: OAuth token endpoint, Benefits API and Accumulators API on one loopback server.

    sandbox = await start_payer_sandbox(PayerSandboxConfig(token_ttl=60, latency=0.1))
    ... sandbox.base_url, sandbox.token_url, sandbox.faults, sandbox.calls ...
    await sandbox.close()

Routes:
  POST /oauth2/token            client-credentials (HTTP Basic or form client_id/client_secret)
  POST /benefits/v3/retrieve    Bearer access token + `id_token` header; JSON BenefitRequest
  GET  /accumulators/v1/read?membershipId=…&planIdentifier=…   Bearer access token + `id_token`
Members and benefits: `payer_catalogue`. Faults: `faults.FaultPlan`.
Run standalone: `python -m server.sandbox.payer --port 8089 --latency 0.1`.
Access logs are off: the accumulators query string carries member ids.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import secrets
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from .faults import FaultPlan
from .payer_catalogue import (
    LEGACY_PLAN_IDENTIFIER,
    MEMBERS,
    Member,
    ServiceRequest,
    accumulators_json,
    dumps_exact,
    service_answer_json,
)

__all__ = [
    "ACCUMULATORS_PATH",
    "BENEFITS_PATH",
    "TOKEN_PATH",
    "PayerSandbox",
    "dumps_exact",
    "PayerSandboxConfig",
    "RunningSandbox",
    "start_payer_sandbox",
]

TOKEN_PATH = "/oauth2/token"
BENEFITS_PATH = "/benefits/v3/retrieve"
ACCUMULATORS_PATH = "/accumulators/v1/read"
MEMBER_NOT_FOUND = "ACTIVE MEMBER COVERAGE NOT FOUND"


@dataclass(frozen=True)
class PayerSandboxConfig:
    """How the stand-in behaves. `latency` is added to every Benefits/Accumulators call."""

    host: str = "127.0.0.1"
    port: int = 0
    client_id: str = "costestimator-sandbox"
    client_secret: str = field(default="sandbox-secret", repr=False)
    token_ttl: float = 3600.0
    latency: float = 0.0
    token_latency: float = 0.0
    ssl_context: ssl.SSLContext | None = None


@dataclass
class _Issued:
    id_token: str
    issued_at: float
    expires_at: float


def _gateway_error(status: int, message: str, more: str) -> web.Response:
    """Errors in the API gateway's shape (httpCode / httpMessage / moreInformation)."""
    return web.json_response({"httpCode": str(status), "httpMessage": message, "moreInformation": more}, status=status)


class PayerSandbox:
    """The aiohttp application and its state (issued tokens, call counters)."""

    def __init__(self, config: PayerSandboxConfig, faults: FaultPlan | None = None) -> None:
        self.config = config
        self.faults = faults if faults is not None else FaultPlan()
        if config.latency:
            self.faults.set_latency(config.latency, BENEFITS_PATH)
            self.faults.set_latency(config.latency, ACCUMULATORS_PATH)
        if config.token_latency:
            self.faults.set_latency(config.token_latency, TOKEN_PATH)
        self.calls: Counter[str] = Counter()
        self.tokens_issued = 0
        self._tokens: dict[str, _Issued] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(TOKEN_PATH, self.token)
        app.router.add_post(BENEFITS_PATH, self.benefits)
        app.router.add_get(ACCUMULATORS_PATH, self.accumulators)
        return app

    # ---- OAuth ------------------------------------------------------------------------------

    def _client_credentials(self, request: web.Request, form: Any) -> tuple[str, str]:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                user, _, pwd = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return "", ""
            return user, pwd
        return str(form.get("client_id", "")), str(form.get("client_secret", ""))

    async def token(self, request: web.Request) -> web.StreamResponse:
        self.calls["token"] += 1
        if (fault := await self.faults.apply(request)) is not None:
            return fault
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        client_id, secret = self._client_credentials(request, form)
        if not (
            secrets.compare_digest(client_id, self.config.client_id)
            and secrets.compare_digest(secret, self.config.client_secret)
        ):
            return web.json_response(
                {"error": "invalid_client"}, status=401, headers={"WWW-Authenticate": 'Basic realm="sandbox"'}
            )
        access, id_token = "sbx-at-" + secrets.token_urlsafe(24), "sbx-id-" + secrets.token_urlsafe(24)
        now = time.monotonic()
        self._tokens[access] = _Issued(id_token, now, now + self.config.token_ttl)
        self.tokens_issued += 1
        return web.json_response(
            {
                "access_token": access,
                "id_token": id_token,
                "token_type": "Bearer",
                "expires_in": int(self.config.token_ttl) if self.config.token_ttl >= 1 else self.config.token_ttl,
            },
            headers={"Cache-Control": "no-store"},
        )

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        issued = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        now = time.monotonic()
        if (
            issued is None
            or now >= issued.expires_at
            or self.faults.token_revoked(issued.issued_at)
            or request.headers.get("id_token") != issued.id_token
        ):
            return _gateway_error(401, "Unauthorized", "Invalid or expired access token")
        return None

    # ---- members ----------------------------------------------------------------------------

    @staticmethod
    def _member(membership_id: str, plan_identifier: str) -> Member | None:
        member = MEMBERS.get(membership_id)
        if member is None or not member.active:
            return None
        if plan_identifier not in (member.plan_identifier, LEGACY_PLAN_IDENTIFIER):
            return None
        return member

    # ---- Benefits API -----------------------------------------------------------------------

    async def benefits(self, request: web.Request) -> web.StreamResponse:
        self.calls["benefits"] += 1
        if (fault := await self.faults.apply(request)) is not None:
            return fault
        if (denied := self._unauthorized(request)) is not None:
            return denied
        try:
            body = orjson.loads(await request.read())  # the stdlib's parser cost the stand-in a visible share
        except ValueError:  # orjson's JSONDecodeError, invalid UTF-8 included
            return _gateway_error(400, "Bad Request", "Request body is not valid JSON")
        problem = self._validate_benefit_request(body)
        if problem:
            return _gateway_error(400, "Bad Request", problem)
        if body["benefitProductType"].lower() != "medical":
            return _gateway_error(400, "Bad Request", "Unsupported benefitProductType")
        member = self._member(body["membershipID"], body["planIdentifier"])
        if member is None:
            return _gateway_error(400, "Bad Request", MEMBER_NOT_FOUND)
        parts = []
        for si in body["serviceInfo"]:
            sci = si["serviceCodeInfo"]
            req = ServiceRequest(
                code=sci["code"],
                code_type=sci["type"],
                provider_types=tuple(p["code"] for p in sci.get("providerType") or []),
                places_of_service=tuple(p["code"] for p in sci.get("placeOfService") or []),
                specialties=tuple(p["code"] for p in sci.get("providerSpecialty") or []),
            )
            parts.append(service_answer_json(member.plan, req))  # serialised once per distinct request
        return web.Response(text='{"serviceInfo":[' + ",".join(parts) + "]}", content_type="application/json")

    @staticmethod
    def _validate_benefit_request(body: Any) -> str | None:
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        for key in ("benefitProductType", "membershipID", "planIdentifier"):
            if not isinstance(body.get(key), str) or not body[key]:
                return f"{key} is required"
        services = body.get("serviceInfo")
        if not isinstance(services, list) or not services:
            return "serviceInfo is required"
        for si in services:
            sci = si.get("serviceCodeInfo") if isinstance(si, dict) else None
            if not isinstance(sci, dict) or not isinstance(sci.get("code"), str) or not isinstance(sci.get("type"), str):
                return "serviceInfo.serviceCodeInfo.code and type are required"
            for key in ("providerType", "placeOfService", "providerSpecialty"):
                items = sci.get(key) or []
                if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("code"), str) for i in items):
                    return f"serviceCodeInfo.{key} must be a list of {{code}}"
        return None

    # ---- Accumulators API -------------------------------------------------------------------

    async def accumulators(self, request: web.Request) -> web.StreamResponse:
        self.calls["accumulators"] += 1
        if (fault := await self.faults.apply(request)) is not None:
            return fault
        if (denied := self._unauthorized(request)) is not None:
            return denied
        membership_id = request.query.get("membershipId", "")
        plan = request.query.get("planIdentifier", "")
        if not membership_id or not plan:
            return _gateway_error(400, "Bad Request", "membershipId and planIdentifier are required")
        member = self._member(membership_id, plan)
        if member is None:
            return _gateway_error(400, "Bad Request", MEMBER_NOT_FOUND)
        return web.Response(body=accumulators_json(member.membership_id), content_type="application/json")


@dataclass
class RunningSandbox:
    """A started payer stand-in: its URLs, fault plan and counters. `await close()` when done."""

    sandbox: PayerSandbox
    runner: web.AppRunner
    base_url: str

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def benefits_url(self) -> str:
        return self.base_url + BENEFITS_PATH

    @property
    def accumulators_url(self) -> str:
        return self.base_url + ACCUMULATORS_PATH

    @property
    def faults(self) -> FaultPlan:
        return self.sandbox.faults

    @property
    def calls(self) -> Counter[str]:
        """Requests received per endpoint: "token", "benefits", "accumulators"."""
        return self.sandbox.calls

    @property
    def config(self) -> PayerSandboxConfig:
        return self.sandbox.config

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_payer_sandbox(
    config: PayerSandboxConfig | None = None, faults: FaultPlan | None = None
) -> RunningSandbox:
    """Start the stand-in on a real socket (port 0 = any free port) and return its URLs."""
    cfg = config or PayerSandboxConfig()
    sandbox = PayerSandbox(cfg, faults)
    # handler_cancellation: an abandoned request stops its handler (and is counted by the faults).
    runner = web.AppRunner(sandbox.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, cfg.host, cfg.port, ssl_context=cfg.ssl_context)
        await site.start()
        host, port = runner.addresses[0][:2]
    except BaseException:
        await runner.cleanup()
        raise
    scheme = "https" if cfg.ssl_context is not None else "http"
    return RunningSandbox(sandbox, runner, f"{scheme}://{host}:{port}")


async def _serve_forever(args: argparse.Namespace) -> None:
    running = await start_payer_sandbox(PayerSandboxConfig(host=args.host, port=args.port, latency=args.latency))
    print(f"payer sandbox on {running.base_url} (client id {running.config.client_id})", flush=True)
    for m in MEMBERS.values():
        print(f"  {m.membership_id}  {m.description}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await running.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the payer stand-in (token, Benefits, Accumulators).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API call")
    args = parser.parse_args()
    try:
        asyncio.run(_serve_forever(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
