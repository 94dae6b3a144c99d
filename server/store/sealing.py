"""Member data at rest: every stored value carrying PHI is sealed with AES-256-GCM under a keyring.

Why here: the store is the only place that writes rows, so sealing at its edge means no caller can store plain
text by mistake. Each value is bound to its row by the associated data (table, column, tenant, row id, key id),
so a ciphertext copied into another row or column does not open. A keyring holds the *current* key (seals every
write) and older keys (still open rows sealed under them until `python -m server.store rotate-key` re-seals).

Stored form: the JSON column holds a JSON string `"s1:" + base64(nonce(12) || ciphertext || tag(16))`;
the row's `data_key_id` column names the key. Keeping the columns' JSON type lets the migration add the key-id
columns without rebuilding tables (SQLite cannot change a column's type in place).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .engine import json_bytes
from .errors import DataKeyError, SealedDataError

KEY_BYTES = 32
NONCE_BYTES = 12
ENVELOPE_PREFIX = "s1:"
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_AD_LABEL = "costest/sealed/v1"


@dataclass(frozen=True, slots=True)
class DataKey:
    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not KEY_ID_PATTERN.match(self.key_id):
            raise DataKeyError(f"data key id {self.key_id!r} must be 1-32 characters of A-Z a-z 0-9 . _ -")
        if len(self.secret) != KEY_BYTES:
            raise DataKeyError(f"data key {self.key_id!r} must be {KEY_BYTES} bytes (base64 of 32 random bytes)")


def derived_key_id(secret: bytes) -> str:
    """The id of a key given without one: a short one-way fingerprint (reveals nothing usable about the key)."""
    return "k" + hashlib.sha256(b"costest data key id\0" + secret).hexdigest()[:12]


def _decode_secret(text: str, where: str) -> bytes:
    try:
        # Standard or URL-safe alphabet.
        secret = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise DataKeyError(f"{where}: a data key is not valid base64") from None
    if len(secret) != KEY_BYTES:
        raise DataKeyError(f"{where}: a data key must be base64 of exactly {KEY_BYTES} bytes, got {len(secret)}")
    return secret


class Keyring:
    """The current key (first) and older keys by id.

    Text format (COSTEST_DATA_KEY: entries separated by commas; COSTEST_DATA_KEY_FILE: one entry per line, `#`
    comments): each entry is `<key id>:<base64 of 32 bytes>` or a bare `<base64>` (its id is then derived from
    the key). The FIRST entry is the current key.
    """

    def __init__(self, keys: Iterable[DataKey]) -> None:
        self._keys: dict[str, DataKey] = {}
        for key in keys:
            if key.key_id in self._keys:
                raise DataKeyError(f"data key id {key.key_id!r} appears twice in the keyring")
            self._keys[key.key_id] = key
        if not self._keys:
            raise DataKeyError("the data keyring is empty")
        self.current = next(iter(self._keys.values()))

    def __repr__(self) -> str:
        return f"Keyring(current={self.current.key_id!r}, ids={self.ids!r})"

    @property
    def ids(self) -> list[str]:
        return list(self._keys)

    def get(self, key_id: str) -> DataKey | None:
        return self._keys.get(key_id)

    def keys(self) -> list[DataKey]:
        return list(self._keys.values())

    @classmethod
    def parse(cls, text: str, *, where: str) -> Keyring:
        entries: list[str] = []
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            entries.extend(part.strip() for part in line.split(",") if part.strip())
        keys = []
        for entry in entries:
            key_id, sep, encoded = entry.rpartition(":")
            secret = _decode_secret(encoded.strip(), where)
            keys.append(DataKey(key_id.strip() if sep else derived_key_id(secret), secret))
        if not keys:
            raise DataKeyError(f"{where}: no data key found")
        return cls(keys)

    @staticmethod
    def new_entry(key_id: str | None = None) -> str:
        """A fresh random key in the text format (for key files and `python -m server.store new-key`)."""
        secret = os.urandom(KEY_BYTES)
        key = DataKey(key_id or derived_key_id(secret), secret)
        return f"{key.key_id}:{base64.b64encode(key.secret).decode()}"


@dataclass(frozen=True, slots=True)
class RowRef:
    """Where a sealed value lives; it becomes the associated data, so the value opens only in this place."""

    table: str
    column: str
    tenant_id: str
    row_id: str

    def associated_data(self, key_id: str) -> bytes:
        return json.dumps([_AD_LABEL, self.table, self.column, self.tenant_id, self.row_id, key_id]).encode()


class Sealer:
    """Seals JSON values under the keyring's current key and opens them under the key their row names."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keyring.keys()}

    def __repr__(self) -> str:
        return f"Sealer({self._keyring!r})"

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    @property
    def key_id(self) -> str:
        """The id stored with every row this sealer writes."""
        return self._keyring.current.key_id

    def seal(self, value: Any, where: RowRef) -> str:
        key_id = self.key_id
        nonce = os.urandom(NONCE_BYTES)
        plain = json_bytes(value)
        sealed = self._ciphers[key_id].encrypt(nonce, plain, where.associated_data(key_id))
        return ENVELOPE_PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, stored: Any, key_id: str | None, where: RowRef) -> Any:
        """The value sealed in `stored`; `SealedDataError` (naming table, column and row id only) otherwise."""
        place = f"{where.table}.{where.column} of row {where.row_id}"
        if key_id is None or not isinstance(stored, str) or not stored.startswith(ENVELOPE_PREFIX):
            raise SealedDataError(f"{place} is not sealed; run `python -m server.store rotate-key` to seal it")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SealedDataError(f"{place} is sealed under data key id {key_id!r}, which is not configured "
                                  "(COSTEST_DATA_KEY / COSTEST_DATA_KEY_FILE)")
        try:
            raw = binascii.a2b_base64(stored[len(ENVELOPE_PREFIX):])  # the GCM tag vouches for the bytes
            plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], where.associated_data(key_id))
        except (InvalidTag, ValueError, binascii.Error):
            raise SealedDataError(f"{place} does not open with data key id {key_id!r}: wrong key, or the value "
                                  "was altered or moved from another row") from None
        return json.loads(plain)
