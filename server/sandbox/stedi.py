"""Stand-in for Stedi's real-time eligibility endpoint (spec §5): same URL path, auth, shapes and errors.

`create_stedi_app(config)` serves `POST /2024-04-01/change/medicalnetwork/eligibility/v3` for the members
of `stedi_catalogue` plus `POST /_sandbox/reset`. Production and sandbox differ only by base URL and key.
Imports nothing from the service except the pure NPI check (allowed: the domain is stdlib-only).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson
from aiohttp import web

from .stedi_catalogue import (
    HTTP_BEHAVIOURS,
    PAYER_CONTACTS,
    PAYER_NAMES,
    SANDBOX_PAYER,
    AaaSpec,
    Behaviour,
    Json,
    Member,
    canned_body,
    find_member,
    known_payer,
)
from .stedi_x12 import render_271

log = logging.getLogger(__name__)

ELIGIBILITY_PATH: Final = "/2024-04-01/change/medicalnetwork/eligibility/v3"
RESET_PATH: Final = "/_sandbox/reset"
DEFAULT_TEST_KEY: Final = "test_sandbox_key"
_SBX_MEMBER_ID: Final = re.compile(r"SBX\d{6}")


class FaultInjector(Protocol):
    """What the shared fault plan (`server/sandbox/faults.py`) offers; None from `apply` = answer normally."""

    async def apply(self, request: web.Request) -> web.StreamResponse | None: ...


@dataclass(frozen=True)
class StediSandboxConfig:
    api_keys: frozenset[str] = frozenset({DEFAULT_TEST_KEY})  # keys starting "test_" answer in test mode
    slow_seconds: float = 8.0
    payer_timeout_seconds: float = 60.0
    flaky_failures: int = 2
    flaky_reset_seconds: float = 600.0
    today: Callable[[], dt.date] = field(default=dt.date.today)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> StediSandboxConfig:
        keys = frozenset(k.strip() for k in env.get("SANDBOX_STEDI_API_KEYS", DEFAULT_TEST_KEY).split(",") if k.strip())
        return cls(
            api_keys=keys,
            slow_seconds=float(env.get("SANDBOX_SLOW_SECONDS", "8")),
            payer_timeout_seconds=float(env.get("SANDBOX_PAYER_TIMEOUT_SECONDS", "60")),
            flaky_failures=int(env.get("SANDBOX_FLAKY_FAILURES", "2")),
        )


# ---------------------------------------------------------------- ids


_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid() -> str:
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def new_uuid7() -> str:
    millis = time.time_ns() // 1_000_000
    value = millis << 80 | 0x7 << 76 | secrets.randbits(12) << 64 | 0b10 << 62 | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def new_control_number() -> str:
    return str(100_000_000 + secrets.randbelow(900_000_000))


# ---------------------------------------------------------------- request validation (Stedi's schema, not ours)

_DATE: Final = re.compile(r"\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")
_MEMBER_ID: Final = re.compile(r"[A-Za-z0-9\- ]+")
_STC_SHAPE: Final = re.compile(r"[A-Z0-9]{1,2}")


class _Fields:
    def __init__(self) -> None:
        self.errors: list[Json] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append({"path": path, "message": message})

    def string(
        self, obj: Mapping[str, Any], key: str, path: str, low: int, high: int, pattern: re.Pattern[str] | None = None
    ) -> None:
        value = obj.get(key)
        if value is None:
            return
        if not isinstance(value, str):
            self.add(f"{path}/{key}", "must be a string")
        elif not low <= len(value) <= high:
            self.add(f"{path}/{key}", f"length must be between {low} and {high}")
        elif pattern is not None and not pattern.fullmatch(value):
            self.add(f"{path}/{key}", f"must match pattern {pattern.pattern}")


def npi_checks(npi: str) -> bool:
    """The NPI's check digit, as Stedi verifies it: Luhn over the NPI behind the 80840 health-industry prefix
    (CMS). The stand-in's own few lines, so the sandbox does not lean on the service it stands in front of."""
    digits = [int(c) for c in reversed("80840" + npi)]
    return sum(d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d) for i, d in enumerate(digits)) % 10 == 0


def _person(f: _Fields, obj: Mapping[str, Any], path: str) -> None:
    f.string(obj, "firstName", path, 1, 35)
    f.string(obj, "lastName", path, 1, 60)
    f.string(obj, "middleName", path, 1, 25)
    f.string(obj, "suffix", path, 1, 10)
    f.string(obj, "dateOfBirth", path, 8, 8, _DATE)
    if obj.get("gender") not in (None, "M", "F"):
        f.add(f"{path}/gender", "must be one of M, F")


def validate_request(body: object) -> list[Json]:
    """Schema errors as Stedi reports them: JSON-pointer path + message."""
    f = _Fields()
    if not isinstance(body, Mapping):
        f.add("", "request body must be a JSON object")
        return f.errors
    if "tradingPartnerServiceId" not in body:
        f.add("/tradingPartnerServiceId", "is required")
    f.string(body, "tradingPartnerServiceId", "", 1, 80)
    f.string(body, "externalPatientId", "", 1, 36)
    f.string(body, "controlNumber", "", 9, 9)
    provider = body.get("provider")
    if not isinstance(provider, Mapping):
        f.add("/provider", "is required")
    else:
        f.string(provider, "organizationName", "/provider", 1, 60)
        f.string(provider, "firstName", "/provider", 1, 35)
        f.string(provider, "lastName", "/provider", 1, 60)
        if not provider.get("organizationName") and not provider.get("lastName"):
            f.add("/provider/organizationName", "organizationName or firstName and lastName is required")
        npi = provider.get("npi")
        if npi is None:
            f.add("/provider/npi", "is required")
        elif not isinstance(npi, str) or not re.fullmatch(r"\d{10}", npi):
            f.add("/provider/npi", "must match pattern ^\\d{10}$")
        elif not npi_checks(npi):
            f.add("/provider/npi", "NPI check digit is invalid")
    subscriber = body.get("subscriber")
    if not isinstance(subscriber, Mapping):
        f.add("/subscriber", "is required")
    else:
        f.string(subscriber, "memberId", "/subscriber", 2, 80, _MEMBER_ID)
        _person(f, subscriber, "/subscriber")
        if not any(subscriber.get(k) for k in ("memberId", "dateOfBirth", "lastName")):
            f.add("/subscriber", "at least one of memberId, dateOfBirth, lastName is required")
    dependents = body.get("dependents")
    if dependents is not None:
        if not isinstance(dependents, list) or len(dependents) > 1:
            f.add("/dependents", "must be an array of at most 1 item")
        else:
            for i, dependent in enumerate(dependents):
                if not isinstance(dependent, Mapping):
                    f.add(f"/dependents/{i}", "must be an object")
                    continue
                _person(f, dependent, f"/dependents/{i}")
                if dependent.get("individualRelationshipCode") not in (None, "01", "19", "34"):
                    f.add(f"/dependents/{i}/individualRelationshipCode", "must be one of 01, 19, 34")
    encounter = body.get("encounter")
    if encounter is not None:
        if not isinstance(encounter, Mapping):
            f.add("/encounter", "must be an object")
        else:
            _encounter(f, encounter)
    return f.errors


def _encounter(f: _Fields, encounter: Mapping[str, Any]) -> None:
    codes = encounter.get("serviceTypeCodes")
    if codes is not None:
        if not isinstance(codes, list) or not 1 <= len(codes) <= 99:
            f.add("/encounter/serviceTypeCodes", "must be an array of 1 to 99 items")
        else:
            for i, code in enumerate(codes):
                if not isinstance(code, str) or not _STC_SHAPE.fullmatch(code):
                    f.add(f"/encounter/serviceTypeCodes/{i}", "must be a service type code")
    for key in ("dateOfService", "beginningDateOfService", "endDateOfService"):
        f.string(encounter, key, "/encounter", 8, 8, _DATE)
    if ("beginningDateOfService" in encounter) != ("endDateOfService" in encounter):
        f.add("/encounter", "beginningDateOfService and endDateOfService go together")
    if "dateOfService" in encounter and "beginningDateOfService" in encounter:
        f.add("/encounter", "use dateOfService or the range, not both")


def _validation_response(errors: list[Json]) -> web.Response:
    noun = "error" if len(errors) == 1 else "errors"
    return web.json_response({"message": f"{len(errors)} validation {noun} detected", "fieldList": errors}, status=400)


# ---------------------------------------------------------------- answers

_AAA_TEXT: Final = {
    "42": "Unable to Respond at Current Time", "43": "Invalid/Missing Provider Identification",
    "71": "Patient Birth Date Does Not Match That for the Patient on the Database",
    "72": "Invalid/Missing Subscriber/Insured ID", "73": "Invalid/Missing Subscriber/Insured Name",
    "75": "Subscriber/Insured Not Found", "77": "Subscriber Found, Patient Not Found",
    "79": "Invalid Participant Identification", "80": "No Response received - Transaction Terminated",
}
_FOLLOWUP: Final = {"C": "Please Correct and Resubmit", "N": "Resubmission Not Allowed", "R": "Resubmission Allowed"}
_LOOPS: Final = {"payer": "Loop 2100A", "provider": "Loop 2100B", "subscriber": "Loop 2100C", "dependent": "Loop 2100D"}
_ADVICE: Final = {
    "42": "Temporary payer problem. Retry at once and keep trying for about 2 minutes.",
    "75": "The payer did not find the subscriber. Send all four identifiers and check the card.",
    "80": "The payer did not respond in time. Retry.",
}
_RELATIONSHIPS: Final = {"01": "Spouse", "19": "Child", "34": "Other Adult"}


@dataclass
class _Call:
    """Per-request values shared by the envelope and the X12 rendering."""

    test_mode: bool
    payer_id: str
    plan_year: int
    request: Mapping[str, Any]
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    control: str = field(default_factory=new_control_number)
    trace: str = field(default_factory=new_ulid)

    @property
    def subscriber(self) -> Mapping[str, Any]:
        value = self.request.get("subscriber")
        return value if isinstance(value, Mapping) else {}

    @property
    def dependent(self) -> Mapping[str, Any] | None:
        deps = self.request.get("dependents")
        return deps[0] if isinstance(deps, list) and deps and isinstance(deps[0], Mapping) else None


def _upper(value: object) -> str | None:
    return value.upper() if isinstance(value, str) and value else None


def _compact(obj: Json) -> Json:
    return {k: v for k, v in obj.items() if v not in (None, "", [], {})}


def _meta(test_mode: bool) -> Json:
    return {"senderId": "STEDI", "submitterId": "117151744", "applicationMode": "test" if test_mode else "production"}


def _envelope(call: _Call) -> Json:
    return {
        "meta": _meta(call.test_mode) | {"traceId": call.trace, "outboundTraceId": call.trace},
        "controlNumber": call.control,
        "reassociationKey": call.control,
        "tradingPartnerServiceId": call.payer_id,
    }


def _provider(call: _Call) -> Json:
    sent = call.request.get("provider")
    provider: Mapping[str, Any] = sent if isinstance(sent, Mapping) else {}
    npi = provider.get("npi")
    if call.payer_id != SANDBOX_PAYER:  # Stedi's mocks answer a canned provider name
        return {"providerName": "MEDICAL PROVIDER", "entityIdentifier": "Provider", "entityType": "Non-Person Entity",
                "npi": npi}
    if provider.get("organizationName"):
        return {"providerName": _upper(provider.get("organizationName")), "entityIdentifier": "Provider",
                "entityType": "Non-Person Entity", "npi": npi}
    return _compact({"providerFirstName": _upper(provider.get("firstName")),
                     "providerName": _upper(provider.get("lastName")),
                     "entityIdentifier": "Provider", "entityType": "Person", "npi": npi})


def _payer(payer_id: str) -> Json:
    payer: Json = {"entityIdentifier": "Payer", "entityType": "Non-Person Entity", "name": PAYER_NAMES[payer_id],
                   "payorIdentification": payer_id}
    if payer_id in PAYER_CONTACTS:
        payer["contactInformation"] = {"contacts": [dict(c) for c in PAYER_CONTACTS[payer_id]]}
    return payer


def _echo_subscriber(call: _Call) -> Json:
    sent = call.subscriber
    return _compact({"memberId": sent.get("memberId"), "firstName": _upper(sent.get("firstName")),
                     "lastName": _upper(sent.get("lastName")), "entityIdentifier": "Insured or Subscriber",
                     "entityType": "Person", "dateOfBirth": sent.get("dateOfBirth")})


def _record_subscriber(member: Member, call: _Call) -> Json:
    return _compact({
        "memberId": member.member_id, "firstName": _upper(member.first_name), "lastName": _upper(member.last_name),
        "gender": member.gender, "entityIdentifier": "Insured or Subscriber", "entityType": "Person",
        "dateOfBirth": member.dob or call.subscriber.get("dateOfBirth"), "groupNumber": member.plan.group_number,
        "planNumber": member.plan.plan_number, "address": member.plan.address,
    })


def _record_dependent(member: Member) -> Json:
    dep = member.dependent
    assert dep is not None
    return {
        "firstName": dep.first_name.upper(), "lastName": dep.last_name.upper(), "dateOfBirth": dep.dob,
        "gender": dep.gender, "relationToSubscriber": _RELATIONSHIPS[dep.relationship],
        "relationToSubscriberCode": dep.relationship, "entityIdentifier": "Dependent", "entityType": "Person",
        "insuredIndicator": "N",
    }


def _finish(body: Json, call: _Call) -> Json:
    body.setdefault("errors", [])
    body["x12"] = render_271(body, control_number=call.control, now=call.now, test_mode=call.test_mode)
    body["eligibilitySearchId"] = new_uuid7()
    body["id"] = "ec_" + new_uuid7()
    return body


def _plan_status(benefits: list[Json]) -> list[Json]:
    return [
        _compact({"statusCode": b["code"], "status": b["name"], "planDetails": b.get("planCoverage"),
                  "serviceTypeCodes": b.get("serviceTypeCodes")})
        for b in benefits
        if b["code"] in {"1", "2", "3", "4", "5", "6", "7", "8"} and "authOrCertIndicator" not in b
    ]


def active_body(member: Member, call: _Call) -> Json:
    assert member.benefits is not None
    benefits = member.benefits()
    year = call.plan_year
    if member.behaviour in (Behaviour.INACTIVE, Behaviour.LAPSED):
        dates: Json = {"planBegin": f"{year - 1}0101", "planEnd": f"{year - 1}1231"}
    else:
        dates = _compact({"plan": f"{year}0101-{year}1231", "eligibilityBegin": member.plan.eligibility_begin})
    body = _envelope(call)
    body["provider"] = _provider(call)
    body["subscriber"] = _record_subscriber(member, call)
    if call.dependent is not None and member.dependent is not None:
        body["dependents"] = [_record_dependent(member)]
    body["payer"] = _payer(call.payer_id)
    plan_info = _compact({"groupNumber": member.plan.group_number, "groupDescription": member.plan.group_description,
                          "planNumber": member.plan.plan_number})
    if plan_info:
        body["planInformation"] = plan_info
    body["planDateInformation"] = dates
    body["planStatus"] = _plan_status(benefits)
    body["benefitsInformation"] = benefits
    return _finish(body, call)


def aaa_body(spec: AaaSpec, call: _Call, member: Member | None = None) -> Json:
    error = {
        "field": "AAA", "code": spec.code, "description": _AAA_TEXT[spec.code],
        "followupAction": _FOLLOWUP[spec.followup], "location": _LOOPS[spec.level],
        "possibleResolutions": _ADVICE.get(spec.code, "Correct the request and resubmit."),
    }
    body = _envelope(call)
    if spec.level != "payer":
        body["provider"] = _provider(call)
        if spec.level == "provider":
            body["provider"]["aaaErrors"] = [dict(error)]
        if spec.level == "dependent" and member is not None:
            body["subscriber"] = _record_subscriber(member, call)
            sent = call.dependent or {}
            echo = {"firstName": _upper(sent.get("firstName")), "lastName": _upper(sent.get("lastName")),
                    "dateOfBirth": sent.get("dateOfBirth"), "entityIdentifier": "Dependent", "entityType": "Person",
                    "aaaErrors": [dict(error)]}
            body["dependents"] = [_compact(echo)]
        else:
            body["subscriber"] = _echo_subscriber(call)
            if spec.code == "42":
                body["subscriber"]["groupNumber"] = "666777"
            if spec.level == "subscriber":
                body["subscriber"]["aaaErrors"] = [dict(error)]
    body["payer"] = _payer(call.payer_id)
    if spec.level == "payer":
        body["payer"]["aaaErrors"] = [dict(error)]
    if spec.code == "42" and spec.level == "subscriber":
        body["planInformation"] = {"groupNumber": "666777"}
    body["errors"] = [error]
    return _finish(body, call)


def canned(member: Member, call: _Call) -> Json:
    """A captured Stedi body with a fresh envelope (ids, control number, trace, application mode)."""
    assert member.canned is not None
    body = canned_body(member.canned)
    old_control, old_trace = str(body.get("controlNumber", "")), str(body.get("meta", {}).get("traceId", ""))
    body["meta"] = _envelope(call)["meta"]
    body["controlNumber"] = body["reassociationKey"] = call.control
    x12 = str(body.get("x12", ""))
    if old_control:
        x12 = x12.replace(old_control, call.control)
    if old_trace:
        x12 = x12.replace(old_trace, call.trace)
    body["x12"] = x12
    body["eligibilitySearchId"] = new_uuid7()
    body["id"] = "ec_" + new_uuid7()
    return body


def unknown_payer_body(payer_id: str, test_mode: bool) -> Json:
    return {
        "tradingPartnerServiceId": payer_id,
        "errors": [{"field": "AAA", "code": "79", "description": _AAA_TEXT["79"], "followupAction": _FOLLOWUP["C"],
                    "location": "Loop 2100A",
                    "possibleResolutions": f"Payer {payer_id} is not configured for eligibility checks. "
                                           "Check the payer ID."}],
        "status": "ERROR",
        "meta": _meta(test_mode),
        "id": "ec_" + new_uuid7(),
    }


def _same_name(sent: object, record: str | None) -> bool:
    return not isinstance(sent, str) or not sent or record is None or sent.strip().casefold() == record.casefold()


def identity_error(member: Member, call: _Call) -> AaaSpec | None:
    """Names case-insensitively, DOB exactly (only fields that were sent are compared)."""
    sent = call.subscriber
    if not (_same_name(sent.get("firstName"), member.first_name)
            and _same_name(sent.get("lastName"), member.last_name)):
        return AaaSpec("73", "subscriber", "C")
    if sent.get("dateOfBirth") and member.dob and sent.get("dateOfBirth") != member.dob:
        return AaaSpec("71", "subscriber", "C")
    dependent = call.dependent
    if dependent is None:
        return None
    record = member.dependent
    if record is None or not (_same_name(dependent.get("firstName"), record.first_name)
                              and _same_name(dependent.get("lastName"), record.last_name)):
        return AaaSpec("77", "dependent", "C")
    if dependent.get("dateOfBirth") and dependent.get("dateOfBirth") != record.dob:
        return AaaSpec("71", "dependent", "C")
    return None


# ---------------------------------------------------------------- app


class _FlakyCounters:
    """Attempts per (api key, memberId); forgotten after `window` seconds or on reset."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._seen: dict[tuple[str, str], tuple[int, float]] = {}

    def next_attempt(self, key: str, member_id: str) -> int:
        now = time.monotonic()
        count, since = self._seen.get((key, member_id), (0, now))
        if now - since > self._window:
            count, since = 0, now
        self._seen[(key, member_id)] = (count + 1, since)
        return count + 1

    def reset(self) -> None:
        self._seen.clear()


CONFIG_KEY: Final = web.AppKey("stedi_config", StediSandboxConfig)
FLAKY_KEY: Final = web.AppKey("stedi_flaky", _FlakyCounters)


def _api_key(request: web.Request, keys: Iterable[str]) -> str | None:
    header = request.headers.get("Authorization", "").strip()
    key = header[4:].strip() if header.startswith("Key ") else header
    return key if key and key in keys else None


def _plan_year(body: Mapping[str, Any], today: dt.date) -> int:
    encounter = body.get("encounter")
    if isinstance(encounter, Mapping):
        for key in ("dateOfService", "beginningDateOfService"):
            value = encounter.get(key)
            if isinstance(value, str) and _DATE.fullmatch(value):
                return int(value[:4])
    return today.year


def create_stedi_app(config: StediSandboxConfig | None = None, faults: FaultInjector | None = None) -> web.Application:
    """The Stedi stand-in as an aiohttp application (run it with `handler_cancellation=True` for slow members)."""
    cfg = config or StediSandboxConfig()
    app = web.Application()
    app[CONFIG_KEY] = cfg
    app[FLAKY_KEY] = _FlakyCounters(cfg.flaky_reset_seconds)

    async def eligibility(request: web.Request) -> web.StreamResponse:
        if faults is not None and (injected := await faults.apply(request)) is not None:
            return injected
        key = _api_key(request, cfg.api_keys)
        if key is None:
            return web.json_response({"message": "Invalid API key"}, status=403)
        try:
            body = await request.json()
        except ValueError:
            body = None
        errors = validate_request(body)
        if errors:
            return _validation_response(errors)
        assert isinstance(body, dict)
        payer_id = body["tradingPartnerServiceId"]
        test_mode = key.startswith("test_")
        if not known_payer(payer_id):
            return web.json_response(unknown_payer_body(payer_id, test_mode), status=400)
        call = _Call(test_mode, payer_id, _plan_year(body, cfg.today()), body)
        answer = await _answer(call, key, cfg, request.app[FLAKY_KEY])
        if isinstance(answer, web.StreamResponse):
            return answer
        log.info("stedi sandbox answered id=%s trace=%s aaa=%s", answer.get("id"), call.trace,
                 [e.get("code") for e in answer.get("errors", [])])
        # orjson: the answer is ~20 KB of JSON per check, and the stand-in's CPU is taken from the server's machine.
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def reset(request: web.Request) -> web.StreamResponse:
        request.app[FLAKY_KEY].reset()
        return web.json_response({"reset": True})

    async def wrong_method(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "Invalid API key"}, status=403)  # Stedi answers 403, not 405

    app.router.add_post(ELIGIBILITY_PATH, eligibility)
    app.router.add_route("*", ELIGIBILITY_PATH, wrong_method)
    app.router.add_post(RESET_PATH, reset)
    return app


async def _answer(call: _Call, key: str, cfg: StediSandboxConfig, flaky: _FlakyCounters) -> Json | web.StreamResponse:
    member_id = str(call.subscriber.get("memberId", ""))
    member = find_member(call.payer_id, member_id)
    if member is None:
        sandbox_shape = call.payer_id != SANDBOX_PAYER or _SBX_MEMBER_ID.fullmatch(member_id)
        return aaa_body(AaaSpec("75", "subscriber", "N") if sandbox_shape else AaaSpec("72", "subscriber", "C"), call)
    if member.behaviour in HTTP_BEHAVIOURS:
        return await _http_failure(member.behaviour, cfg)
    if (mismatch := identity_error(member, call)) is not None:
        return aaa_body(mismatch, call, member)
    behaviour = member.behaviour
    if behaviour is Behaviour.FLAKY_42 and flaky.next_attempt(key, member.member_id) <= cfg.flaky_failures:
        return aaa_body(AaaSpec("42", "subscriber", "R"), call)
    if behaviour is Behaviour.SLOW:
        await asyncio.sleep(cfg.slow_seconds)
    if behaviour is Behaviour.PAYER_TIMEOUT:
        await asyncio.sleep(cfg.payer_timeout_seconds)
        return aaa_body(AaaSpec("80", "payer", "R"), call)
    if behaviour is Behaviour.AAA:
        assert member.aaa is not None
        return aaa_body(member.aaa, call, member)
    if behaviour is Behaviour.CANNED:
        return canned(member, call)
    return active_body(member, call)


async def _http_failure(behaviour: Behaviour, cfg: StediSandboxConfig) -> web.Response:
    if behaviour is Behaviour.HTTP_429:
        message = "The request can't be submitted because the sender's submission has been throttled: CUSTOMER_LIMIT"
        return web.json_response({"message": message, "code": "TOO_MANY_REQUESTS"}, status=429)
    if behaviour is Behaviour.HTTP_503:
        return web.json_response({"message": "Service unavailable", "code": "SERVICE_UNAVAILABLE"}, status=503)
    await asyncio.sleep(cfg.slow_seconds)
    return web.json_response({"message": "Gateway timeout", "code": "GATEWAY_TIMEOUT"}, status=504)
