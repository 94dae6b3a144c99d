"""How a failure's rich status reads: every detail the server may attach (BadRequest, ErrorInfo, RetryInfo).

The server sends ErrorInfo/RetryInfo only for some failures (and more once issue 10 §2 lands), so the decoding is
checked here on a Status built with the googleapis messages, the same bytes `grpc-status-details-bin` carries.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from costestimator_cli.errors import Details, ExitCode, describe, exit_code


def packed(message: error_details_pb2.BadRequest | error_details_pb2.ErrorInfo | error_details_pb2.RetryInfo,
           ) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(message)
    return detail


def test_field_violations_reason_and_retry_delay_are_all_shown() -> None:
    status = status_pb2.Status.FromString(status_pb2.Status(code=14, message="circuit open", details=[
        packed(error_details_pb2.ErrorInfo(reason="CIRCUIT_OPEN", domain="costestimator.v1")),
        packed(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=7, nanos=500_000_000))),
    ]).SerializeToString())
    lines = describe(grpc.StatusCode.UNAVAILABLE, status.message, Details.of(status))
    assert lines[0].endswith("(UNAVAILABLE)")
    assert "  reason: CIRCUIT_OPEN" in lines and "  try again in 7.5 s" in lines

    bad = status_pb2.Status(code=3, details=[packed(error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field="member.membership_id", description="is required")]))])
    lines = describe(grpc.StatusCode.INVALID_ARGUMENT, "bad", Details.of(bad))
    assert lines[1:] == ["  member.membership_id: is required"]


def test_deadline_and_unreachable_say_what_to_do_and_codes_map_to_exit_codes() -> None:
    deadline = describe(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", Details(), deadline=2)
    assert "  try again, or allow more than 2 s with --deadline" in deadline
    unreachable = describe(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", Details(),
                           target="127.0.0.1:1")
    assert unreachable[0] == "cannot reach 127.0.0.1:1 (UNAVAILABLE)"
    assert [exit_code(c) for c in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                                   grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)] == [
        ExitCode.FAILED, ExitCode.BAD_INPUT, ExitCode.TRY_AGAIN, ExitCode.NOT_ALLOWED]
