"""Failures as people read them, and the exit code a script can branch on.

The server's rich status (`grpc-status-details-bin`, a `google.rpc.Status`) carries the field violations
(`BadRequest`), the stable reason (`ErrorInfo`) and when to retry (`RetryInfo`); they are decoded here with the
googleapis messages only, so the CLI needs nothing beyond the client package's dependencies.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2


class ExitCode(enum.IntEnum):
    """Documented in the README's CLI section."""

    OK = 0
    FAILED = 1  # the call failed (NOT_FOUND, FAILED_PRECONDITION, INTERNAL, ...)
    BAD_INPUT = 2  # a usage error or INVALID_ARGUMENT
    TRY_AGAIN = 3  # UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED: retrying later may work
    NOT_ALLOWED = 4  # UNAUTHENTICATED, PERMISSION_DENIED, or no token at all
    SOME_PROVIDERS_FAILED = 5  # estimate: the table is complete, but some providers have a non-OK status


_EXIT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT: ExitCode.BAD_INPUT,
    grpc.StatusCode.OUT_OF_RANGE: ExitCode.BAD_INPUT,
    grpc.StatusCode.UNAVAILABLE: ExitCode.TRY_AGAIN,
    grpc.StatusCode.DEADLINE_EXCEEDED: ExitCode.TRY_AGAIN,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ExitCode.TRY_AGAIN,
    grpc.StatusCode.ABORTED: ExitCode.TRY_AGAIN,
    grpc.StatusCode.UNAUTHENTICATED: ExitCode.NOT_ALLOWED,
    grpc.StatusCode.PERMISSION_DENIED: ExitCode.NOT_ALLOWED,
}

_HEADLINES = {
    grpc.StatusCode.INVALID_ARGUMENT: "the request is invalid",
    grpc.StatusCode.NOT_FOUND: "not found",
    grpc.StatusCode.UNAVAILABLE: "the service or one of its upstreams is unavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "no answer within the deadline",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "the service is busy or the request is too large",
    grpc.StatusCode.UNAUTHENTICATED: "the token was refused",
    grpc.StatusCode.PERMISSION_DENIED: "the token carries no tenant",
    grpc.StatusCode.FAILED_PRECONDITION: "the upstream refused the request in its current state",
    grpc.StatusCode.INTERNAL: "the service failed (a bug on its side)",
}

CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


@dataclass
class Details:
    """What a `google.rpc.Status` says beyond its code and message."""

    field_violations: list[tuple[str, str]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    retry_after_seconds: float | None = None

    @classmethod
    def of(cls, status: status_pb2.Status) -> Details:
        details = cls()
        for any_detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            info = error_details_pb2.ErrorInfo()
            retry = error_details_pb2.RetryInfo()
            if any_detail.Unpack(bad_request):
                details.field_violations += [(v.field, v.description) for v in bad_request.field_violations]
            elif any_detail.Unpack(info):
                details.reasons.append(info.reason)
            elif any_detail.Unpack(retry):
                details.retry_after_seconds = retry.retry_delay.ToTimedelta().total_seconds()
        return details


def rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    trailers: Sequence[tuple[str, str | bytes]] = (
        (error.trailing_metadata() or ()) if isinstance(error, grpc.Call) else ())
    for key, value in trailers:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def describe(code: grpc.StatusCode, message: str, details: Details, *, target: str = "",
             deadline: float | None = None) -> list[str]:
    """Human lines for one failure (an RPC's or a provider's inside a stream)."""
    headline = _HEADLINES.get(code, "the call failed")
    unreachable = code is grpc.StatusCode.UNAVAILABLE and bool(target) and "failed to connect" in message.lower()
    if unreachable:
        headline = f"cannot reach {target}"
    lines = [f"{headline} ({code.name})"]
    if unreachable:
        lines.append("  is the server running? (./dev serve starts one on 127.0.0.1:50051)")
    if message and not details.field_violations:
        lines.append(f"  {message}")
    lines += [f"  {name}: {description}" for name, description in details.field_violations]
    if details.reasons:
        lines.append(f"  reason: {', '.join(details.reasons)}")
    if _EXIT_CODES.get(code) is ExitCode.TRY_AGAIN:
        if details.retry_after_seconds is not None:
            lines.append(f"  try again in {details.retry_after_seconds:g} s")
        elif code is grpc.StatusCode.DEADLINE_EXCEEDED and deadline is not None:
            lines.append(f"  try again, or allow more than {deadline:g} s with --deadline")
        else:
            lines.append("  try again in a moment")
    if code is grpc.StatusCode.UNAUTHENTICATED:
        lines.append("  pass a valid --token (or COSTESTIMATOR_TOKEN)")
    return lines


def describe_rpc_error(error: grpc.RpcError, *, target: str, deadline: float) -> tuple[list[str], ExitCode]:
    """The lines to print for a failed call, and the exit code."""
    if not isinstance(error, grpc.Call):
        return [f"the call failed: {error}"], ExitCode.FAILED
    status = rich_status(error)
    details = Details.of(status) if status is not None else Details()
    code = error.code()
    return describe(code, error.details() or "", details, target=target, deadline=deadline), exit_code(code)


def exit_code(code: grpc.StatusCode) -> ExitCode:
    return _EXIT_CODES.get(code, ExitCode.FAILED)
