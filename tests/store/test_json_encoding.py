"""The JSON of sealed and JSON columns (orjson, `engine.json_bytes`): the same text the standard library wrote, so
rows written before the switch open and compare unchanged; money stays an exact string; what orjson cannot write
exactly (integers beyond 64 bits) still gets written, the slow way."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from server.store.engine import _json_default, json_bytes, json_dumps
from server.store.sealing import DataKey, Keyring, RowRef, Sealer

VALUES: list[object] = [
    {"benefitAmount": Decimal("1294.845"), "percent": Decimal("0.2"), "tiny": Decimal("1E-7"), "big": Decimal("1E+3")},
    {"at": datetime(2026, 3, 15, 12, 30, 1, 123456, tzinfo=UTC), "naive": datetime(2026, 3, 15, 1, 2, 3),
     "day": date(2026, 2, 28), "id": UUID("12345678-1234-5678-1234-567812345678")},
    {"name": "RIVERA, Álex — ü", "codes": ("30", "98"), "n": 3, "ok": True, "none": None, "nested": [{"a": [1, 2]}]},
    {"huge": 2**70, "neg": -(2**65)},
]


def _stdlib(value: object) -> bytes:
    return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("value", VALUES)
def test_json_bytes_writes_what_the_standard_library_wrote(value: object) -> None:
    assert json_bytes(value) == _stdlib(value)
    assert json_dumps(value) == _stdlib(value).decode()


def test_money_is_an_exact_string_never_a_float() -> None:
    text = json_bytes({"amount": Decimal("1294.845"), "sum": Decimal("0.1") + Decimal("0.2")}).decode()
    assert text == '{"amount":"1294.845","sum":"0.3"}'


def test_a_value_sealed_with_the_old_encoding_opens_and_reseals_identically() -> None:
    """A row sealed before the switch (standard-library JSON inside the envelope) opens to the same value."""
    keyring = Keyring([DataKey("k1", os.urandom(32))])
    sealer = Sealer(keyring)
    where = RowRef("eligibility_responses", "raw_payload", "tenant-a", "check-1")
    value = VALUES[2]
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    import base64

    nonce = os.urandom(12)
    old = AESGCM(keyring.current.secret).encrypt(nonce, _stdlib(value), where.associated_data("k1"))
    stored = "s1:" + base64.b64encode(nonce + old).decode()
    opened = sealer.open(stored, "k1", where)
    assert opened == json.loads(_stdlib(value))
    assert sealer.open(sealer.seal(value, where), "k1", where) == opened


def test_unwritable_values_still_fail() -> None:
    with pytest.raises(TypeError):
        json_bytes({"x": object()})
