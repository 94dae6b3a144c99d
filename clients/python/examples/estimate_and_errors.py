"""A typed costestimator-client example: auth metadata, a deadline, a stream read as it arrives, error details.

    pip install costestimator-client
    python estimate_and_errors.py --target 127.0.0.1:50051 --token "$(cat .data/dev-token)"

It prints one line per provider as the stream delivers it, then provokes two failures and prints what a program
can read from them: the `google.rpc.BadRequest` field violations and the `google.rpc.ErrorInfo` reason, both
from the `grpc-status-details-bin` trailer (a `google.rpc.Status`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from decimal import Decimal

import grpc
from google.rpc import error_details_pb2, status_pb2
from google.type import money_pb2

from costestimator.v1 import common_pb2, estimate_service_pb2, estimate_service_pb2_grpc

DEADLINE_SECONDS = 15.0
MEMBER = common_pb2.Member(membership_id="5~186103331+10+7+20260101+793854+8A+829", plan_identifier="3~")
CODES = {code.value[0]: code for code in grpc.StatusCode}
INACTIVE_MEMBER = common_pb2.Member(membership_id="5~186103339+10+7+20250101+793869+8A+899", plan_identifier="3~")


def money(value: money_pb2.Money) -> Decimal:
    """Money is units + nanos, never a float."""
    return Decimal(value.units) + Decimal(value.nanos).scaleb(-9)


def status_details(error: grpc.RpcError) -> status_pb2.Status | None:
    """The rich status a server attaches to a failure, or None when it has none."""
    if not isinstance(error, grpc.Call):  # every error of a call made through a stub is also a grpc.Call
        return None
    trailers: Sequence[tuple[str, str | bytes]] = error.trailing_metadata() or ()
    for key, value in trailers:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def describe_error(error: grpc.RpcError) -> list[str]:
    """One line for the status, then one per field violation and per ErrorInfo."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    lines = [f"error: {code.name}"]
    status = status_details(error)
    for detail in status.details if status else ():
        bad_request = error_details_pb2.BadRequest()
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(bad_request):
            lines += [f"  field {v.field}: {v.description}" for v in bad_request.field_violations]
        elif detail.Unpack(info):
            lines.append(f"  reason {info.reason} ({info.domain}) {dict(sorted(info.metadata.items()))}")
    return lines


def request(member: common_pb2.Member) -> estimate_service_pb2.StreamEstimatesRequest:
    """An MRI at two in-network providers and one out of network."""
    usd = money_pb2.Money
    return estimate_service_pb2.StreamEstimatesRequest(
        product_type=common_pb2.BENEFIT_PRODUCT_TYPE_MEDICAL,
        member=member,
        service=estimate_service_pb2.RequestedService(code="70551", code_type=common_pb2.CODE_TYPE_CPT4,
                                                      place_of_service_code="11"),
        providers=[
            estimate_service_pb2.Provider(provider_id="imaging-center", benefit_tier_name="1",
                                          network_category=common_pb2.NETWORK_CATEGORY_IN_NETWORK,
                                          negotiated_amount=usd(currency_code="USD", units=850)),
            estimate_service_pb2.Provider(provider_id="hospital", benefit_tier_name="2", provider_type_code="HO",
                                          network_category=common_pb2.NETWORK_CATEGORY_IN_NETWORK,
                                          negotiated_amount=usd(currency_code="USD", units=2400)),
            estimate_service_pb2.Provider(provider_id="out-of-network",
                                          network_category=common_pb2.NETWORK_CATEGORY_OUT_OF_NETWORK,
                                          negotiated_amount=usd(currency_code="USD", units=1900, nanos=500_000_000)),
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--token", default=os.environ.get("COSTESTIMATOR_TOKEN", ""))
    args = parser.parse_args(argv)
    metadata = (("authorization", f"Bearer {args.token}"),)

    with grpc.insecure_channel(args.target) as channel:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(channel)
        # A server stream is an iterator: each message is printed the moment it arrives.
        for message in stub.StreamEstimates(request(MEMBER), metadata=metadata, timeout=DEADLINE_SECONDS):
            estimate = message.estimate
            code = CODES[estimate.status.code]  # a provider's own outcome inside the stream
            print(f"stream: {estimate.provider_id} member_pays={money(estimate.member_pays):.2f} "
                  f"plan_pays={money(estimate.plan_pays):.2f} status={code.name}", flush=True)

        failing = [request(common_pb2.Member()), request(INACTIVE_MEMBER)]  # bad input, then an inactive member
        for bad in failing:
            unary = estimate_service_pb2.EstimateRequest(member=bad.member, product_type=bad.product_type,
                                                         service=bad.service, providers=bad.providers)
            try:
                stub.Estimate(unary, metadata=metadata, timeout=DEADLINE_SECONDS)
            except grpc.RpcError as error:
                print(*describe_error(error), sep="\n")
            else:
                print("error: none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
