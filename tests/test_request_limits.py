"""The request walker on its own: which fields it refuses and the paths it names (the servers' tests in
tests/test_bad_input.py show the same refusals as INVALID_ARGUMENT over real sockets)."""

from __future__ import annotations

from costestimator.v1 import common_pb2 as cpb
from costestimator.v1 import eligibility_service_pb2 as elpb
from costestimator.v1 import estimate_service_pb2 as epb
from google.type import money_pb2

from server.api.request_limits import RequestLimits


def _paths(limits: RequestLimits, message: object) -> list[tuple[str, str]]:
    return [(v.field, v.description) for v in limits.violations(message)]  # type: ignore[arg-type]


def _stream(providers: int) -> epb.StreamEstimatesRequest:
    return epb.StreamEstimatesRequest(
        member=cpb.Member(membership_id="M1", plan_identifier="P1"),
        providers=[epb.Provider(provider_id=f"p{i}", negotiated_amount=money_pb2.Money(currency_code="USD", units=1))
                   for i in range(providers)],
    )


def test_a_clean_request_has_no_violations() -> None:
    limits = RequestLimits.for_settings(max_providers=50)
    assert _paths(limits, _stream(50)) == []
    inquiry = elpb.EligibilityInquiry(payer_id="SBX01", subscriber=elpb.Person(member_id="SBX1", first_name="Ann"),
                                      service_type_codes=["30", "98"])
    assert _paths(limits, elpb.CheckEligibilityRequest(inquiry=inquiry)) == []


def test_nested_repeated_and_list_fields_are_named_by_their_full_path() -> None:
    limits = RequestLimits.for_settings(max_providers=50)
    request = _stream(3)
    request.providers[1].provider_id = "x" * 65  # Provider.provider_id: 64
    request.providers[2].negotiated_amount.currency_code = "USDX"  # Money.currency_code: 3
    request.member.membership_id = "M\x00"
    assert _paths(limits, request) == [
        ("member.membership_id", "must not contain control or format characters"),
        ("providers[1].provider_id", "must be at most 64 characters"),
        ("providers[2].negotiated_amount.currency_code", "must be at most 3 characters"),
    ]
    inquiry = elpb.EligibilityInquiry(payer_id="SBX01", service_type_codes=["30", "9\u202e8", "123456789"],
                                      subscriber=elpb.Person(member_id="S", first_name="A" * 36))
    assert _paths(limits, elpb.CheckEligibilityRequest(inquiry=inquiry)) == [
        ("inquiry.subscriber.first_name", "must be at most 35 characters"),
        ("inquiry.service_type_codes[1]", "must not contain control or format characters"),
        ("inquiry.service_type_codes[2]", "must be at most 8 characters"),
    ]


def test_an_oversized_list_is_refused_as_a_whole_by_its_configured_limit() -> None:
    request = _stream(6)
    for provider in request.providers:
        provider.provider_id = "\x01"  # bad items of a refused list are not looked at
    assert _paths(RequestLimits.for_settings(max_providers=5), request) == [("providers", "at most 5 items")]
    assert len(_paths(RequestLimits.for_settings(max_providers=6), request)) == 6


def test_map_keys_and_values_are_checked_by_position() -> None:
    estimate = epb.CostEstimate(trace=[epb.TraceLine(handler="H1", values={"ok": "fine"}),
                                       epb.TraceLine(handler="H2", values={"k\x00": "v" * 257})])
    assert _paths(RequestLimits(), estimate) == [
        ("trace[1].values[0].key", "must not contain control or format characters"),
        ("trace[1].values[0].value", "must be at most 256 characters"),
    ]


def test_the_walk_stops_at_the_violation_cap() -> None:
    request = _stream(40)
    for provider in request.providers:
        provider.provider_id = "\x00"
        provider.negotiated_amount.currency_code = "\x00"
    limits = RequestLimits(max_violations=7, repeated={"costestimator.v1.StreamEstimatesRequest.providers": 100})
    assert len(limits.violations(request)) == 7
    assert len(RequestLimits(repeated={"costestimator.v1.StreamEstimatesRequest.providers": 100})
               .violations(request)) == 80


def test_limits_of_one_instance_do_not_leak_into_another() -> None:
    """Each instance works out its own rules per message type (its limits differ)."""
    request = _stream(1)
    request.providers[0].provider_id = "x" * 20
    tight = RequestLimits(strings={"costestimator.v1.Provider.provider_id": 10})
    assert _paths(tight, request) == [("providers[0].provider_id", "must be at most 10 characters")]
    assert _paths(RequestLimits(), request) == []
    assert _paths(tight, request) == [("providers[0].provider_id", "must be at most 10 characters")]


def test_extension_fields_are_walked_like_the_types_own() -> None:
    """An extension is not among its message type's fields: its rule is worked out when met."""
    from google.api import annotations_pb2
    from google.protobuf import descriptor_pb2

    options = descriptor_pb2.MethodOptions()
    options.Extensions[annotations_pb2.http].get = "x" * 257
    assert _paths(RequestLimits(), options) == [("http.get", "must be at most 256 characters")]
