"""Hypothesis strategies built from protobuf descriptors: one builder walks any message descriptor.

Every scalar type gets its boundary values, enums get unknown numbers, repeated fields are sometimes huge, strings
are long, non-ASCII, with NUL and controls; google.type.Money/Date/Decimal get odd values; page tokens are bogus.
Field-name hints mix in values that pass validation (sandbox members, codes) so the fuzzer also reaches the code
behind the validators. `malformed_bytes` mutates valid encodings into bytes that do not parse (or barely do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

MAX_DEPTH = 6
I32 = (0, 1, -1, 2**31 - 1, -(2**31))
I64 = (0, 1, -1, 2**63 - 1, -(2**63), 2**53 + 1)
U32 = (0, 1, 2**32 - 1)
U64 = (0, 1, 2**64 - 1)
SPECIAL_STRINGS = (
    "", " ", "\x00", "a\x00b", "\n", "\t", "\x7f", "\u202e", "\u200b", "\ufeff", "\u2028", "é", "日本語", "🙂",
    "x" * 36, "x" * 37, "x" * 80, "x" * 81, "x" * 128, "x" * 129, "x" * 256, "x" * 257, "x" * 5000,
    "'; DROP TABLE eligibility_checks; --", "%s%s%n", "../../etc/passwd", "null", "NaN", "-0",
)
HINTS: dict[str, tuple[str, ...]] = {
    "membership_id": ("5~186103331+10+7+20260101+793854+8A+829", "5~186103339+10+7+20250101+793869+8A+899"),
    "plan_identifier": ("3~",),
    "code": ("99214", "70551", "97110", "E0110", "Deductible", "OOP Max"),
    "place_of_service_code": ("11", "02"),
    "provider_id": ("p1", "p2"),
    "benefit_tier_name": ("1", "2"),
    "payer_id": ("SBX01", "NOPE1"),
    "npi": ("1999999984", "1234567890"),
    "member_id": ("SBX100001", "SBX999999", "XYZ-123"),
    "first_name": ("Alex",),
    "last_name": ("Rivera",),
    "organization_name": ("Riverbend Family Medicine",),
    "service_type_codes": ("30", "ZZ"),
    "policy_id": ("policy-1",),
    "patient_id": ("patient-1",),
    "id": ("00000000-0000-0000-0000-000000000000",),
    "page_token": ("abc", "a.b", "eyJ4IjoxfQ.AAAA", "." * 100, "x" * 2000, "%%%", "\x00"),
    "level": ("Individual", "Family"),
    "network_indicator_code": ("I", "O"),
    "currency_code": ("USD", "", "EUR", "usd", "US\x00", "XXXX"),
    "value": ("20", "0", "-1", "0.001", "NaN", "Infinity", "1e999999", "", "abc", "1" * 100),
}


def _text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=12),
        st.sampled_from(SPECIAL_STRINGS),
        st.text(min_size=100, max_size=600),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    )


def _string(fd: FieldDescriptor) -> st.SearchStrategy[str]:
    hints = HINTS.get(fd.name)
    return st.one_of(st.sampled_from(hints), _text()) if hints else _text()


def _enum(fd: FieldDescriptor) -> st.SearchStrategy[int]:
    assert fd.enum_type is not None
    known = [v.number for v in fd.enum_type.values]
    return st.one_of(st.sampled_from(known), st.sampled_from((-1, 99, 2**31 - 1, -(2**31))))


def _scalar(fd: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = fd.type
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return st.one_of(st.sampled_from(I32), st.integers(-(2**31), 2**31 - 1))
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return st.one_of(st.sampled_from(I64), st.integers(-(2**63), 2**63 - 1))
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.one_of(st.sampled_from(U32), st.integers(0, 2**32 - 1))
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.one_of(st.sampled_from(U64), st.integers(0, 2**64 - 1))
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_DOUBLE:
        return st.floats()
    if t == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FieldDescriptor.TYPE_STRING:
        return _string(fd)
    if t == FieldDescriptor.TYPE_ENUM:
        return _enum(fd)
    raise AssertionError(f"unexpected field type {t} of {fd.full_name}")


def _money() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "currency_code": st.sampled_from(HINTS["currency_code"]),
        "units": st.one_of(st.sampled_from((0, 1, -1, 100, 850, 10_000_001, 2**63 - 1, -(2**63))),
                           st.integers(-(2**63), 2**63 - 1)),
        "nanos": st.sampled_from((0, 1, -1, 500_000_000, -500_000_000, 999_999_999, -999_999_999,
                                  1_000_000_000, -1_000_000_000, 2**31 - 1, -(2**31), 10_000_000, 5)),
    })


def _date() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "year": st.sampled_from((0, 1, 1899, 1900, 1985, 2026, 2027, 9999, 10000, -1, 2**31 - 1)),
        "month": st.sampled_from((0, 1, 2, 4, 12, 13, -1)),
        "day": st.sampled_from((0, 1, 12, 28, 29, 30, 31, 32, -1)),
    })


_SPECIAL: dict[str, Callable[[], st.SearchStrategy[dict[str, Any]]]] = {
    "google.type.Money": _money,
    "google.type.Date": _date,
}


HUGE_LIST_BYTES = 2_000_000  # a huge list stays about this size on the wire (nested huge lists must not explode)


def _wire_size(value: Any) -> int:
    if isinstance(value, Message):
        return value.ByteSize() + 3
    if isinstance(value, str):
        return len(value.encode()) + 3
    if isinstance(value, bytes):
        return len(value) + 3
    return 10


def _replicate(item: Any, count: int) -> list[Any]:
    return [item] * max(1, min(count, HUGE_LIST_BYTES // _wire_size(item)))


def _repeated(element: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    # Mostly short lists; sometimes one element repeated a huge number of times (cheap to generate, big on the wire).
    return st.one_of(
        st.lists(element, max_size=3),
        st.builds(_replicate, element, st.sampled_from((21, 101, 1001, 30_000))),
    )


def _field(fd: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if fd.message_type is not None:
        if fd.message_type.GetOptions().map_entry:
            return st.just({})  # no request message has a map; responses do (never generated)
        single: st.SearchStrategy[Any] = message_strategy(fd.message_type, depth + 1)
    else:
        single = _scalar(fd)
    return _repeated(single) if fd.is_repeated else single


_CACHE: dict[tuple[str, int], st.SearchStrategy[Message]] = {}


def message_strategy(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of `desc`'s type with any subset of fields set to hostile or plausible values."""
    key = (desc.full_name, depth)
    if key in _CACHE:
        return _CACHE[key]
    cls = message_factory.GetMessageClass(desc)
    if depth > MAX_DEPTH:
        strategy: st.SearchStrategy[Message] = st.builds(cls)
    elif desc.full_name in _SPECIAL:
        strategy = _SPECIAL[desc.full_name]().map(lambda kw: cls(**kw))
    else:
        fields = {fd.name: _field(fd, depth) for fd in desc.fields}
        strategy = st.fixed_dictionaries({}, optional=fields).map(lambda kw: _build(cls, desc, kw))
    _CACHE[key] = strategy
    return strategy


def _build(cls: Any, desc: Descriptor, values: dict[str, Any]) -> Message:
    message = cls()
    for name, value in values.items():
        fd = desc.fields_by_name[name]
        if fd.is_repeated:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                continue
            getattr(message, name).extend(value)
        elif fd.message_type is not None:
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def _mutate(data: bytes, how: int, where: int, byte: int) -> bytes:
    if not data:
        return bytes([byte])
    i = where % len(data)
    if how == 0:
        return data[:i]  # truncated
    if how == 1:
        return data[:i] + bytes([byte]) + data[i + 1:]  # one byte changed
    if how == 2:
        return data[:i] + b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" + data[i:]  # an overlong varint
    return data + bytes([byte])  # trailing garbage


def malformed_bytes(desc: Descriptor) -> st.SearchStrategy[bytes]:
    """Raw request bodies: random bytes, and valid encodings truncated or corrupted."""
    valid = message_strategy(desc).map(lambda m: m.SerializeToString())
    return st.one_of(
        st.binary(max_size=64),
        st.sampled_from((b"\xff\xff\xff\xff", b"\x0a\x05ab", b"\x0c", b"\x0b" * 5, b"\x08\xff", b"\x0a" * 200)),
        st.builds(_mutate, valid, st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 255)),
    )
