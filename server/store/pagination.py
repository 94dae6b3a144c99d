"""Opaque, tamper-evident page tokens for keyset pagination.

A token carries the position after the last row of a page (requested_at, id) and an HMAC-SHA256 over that
position *and* the query's binding (tenant and filters). The binding itself is not in the token, so a token
reveals no filter values (patient ids), and a token replayed with other filters or by another tenant fails the
check exactly like a forged one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from .errors import StoreError

_VERSION = 1
_DOMAIN = b"costest.eligibility.page.v1\x00"
MAX_TOKEN_LENGTH = 512
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class InvalidPageToken(StoreError, ValueError):
    """The page token is malformed, forged, or was issued for another tenant or other filters."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last row returned (rows are ordered by requested_at DESC, id DESC)."""

    requested_at: datetime
    id: str


def clamp_page_size(page_size: int | None) -> int:
    """0/None means the default; larger than the maximum is lowered to it (AIP-158)."""
    if page_size is None or page_size == 0:
        return DEFAULT_PAGE_SIZE
    if page_size < 0:
        raise ValueError("page_size must not be negative")
    return min(page_size, MAX_PAGE_SIZE)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokenCodec:
    """Signs and checks page tokens with a server secret (settings: page token secret)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("page token secret must be at least 16 bytes")
        self._secret = secret

    def _mac(self, body: str, binding: Mapping[str, str | None]) -> bytes:
        canonical = json.dumps(dict(binding), sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._secret, _DOMAIN + body.encode("ascii") + b"\x00" + canonical, hashlib.sha256).digest()

    def encode(self, cursor: Cursor, binding: Mapping[str, str | None]) -> str:
        payload = {"v": _VERSION, "t": cursor.requested_at.isoformat(), "i": cursor.id}
        body = _b64encode(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{_b64encode(self._mac(body, binding))}"

    def decode(self, token: str, binding: Mapping[str, str | None]) -> Cursor:
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
            raise InvalidPageToken("malformed page token")
        body, signature = token.split(".")
        try:
            given = _b64decode(signature)
        except (binascii.Error, ValueError):
            raise InvalidPageToken("malformed page token") from None
        try:
            expected = self._mac(body, binding)
        except UnicodeEncodeError:
            raise InvalidPageToken("malformed page token") from None
        if not hmac.compare_digest(given, expected):
            raise InvalidPageToken("page token does not match this query")
        try:
            payload = json.loads(_b64decode(body))
            version = payload["v"]
            at = datetime.fromisoformat(str(payload["t"]))
            row_id = payload["i"]
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise InvalidPageToken("malformed page token") from None
        if version != _VERSION:
            raise InvalidPageToken("unsupported page token version")
        if at.tzinfo is None or not isinstance(row_id, str):
            raise InvalidPageToken("malformed page token")
        return Cursor(requested_at=at, id=row_id)
