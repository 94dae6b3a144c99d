"""The request id of the RPC being served, in a context variable, and on every log record written meanwhile.

Tasks started while serving an RPC (fan-out, coalesced upstream calls) copy the context, so their log lines carry
the id too. A caller's `x-request-id` is kept when it is short and made of safe characters; otherwise (or when
absent) a fresh one is generated, so a log line can never be forged or bloated through it.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from typing import Any, Final

METADATA_KEY: Final = "x-request-id"
MAX_LENGTH: Final = 128
_SAFE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the RPC being served in this context, None outside an RPC."""
    return _request_id.get()


def as_metadata() -> tuple[tuple[str, str], ...]:
    """The current id as response metadata (empty outside an RPC)."""
    current = _request_id.get()
    return () if current is None else ((METADATA_KEY, current),)


def accepted_or_new(incoming: str | bytes | None) -> str:
    """The caller's id if it is acceptable, else a new random one (32 hex digits)."""
    if isinstance(incoming, str) and len(incoming) <= MAX_LENGTH and _SAFE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def from_metadata(metadata: Any) -> str:
    """The request id for a call with this invocation metadata (a sequence of key/value pairs)."""
    for key, value in metadata or ():
        if key == METADATA_KEY:
            return accepted_or_new(value)
    return accepted_or_new(None)


def bind(request_id: str) -> None:
    """Make `request_id` current for the rest of this task (each RPC runs in a task of its own)."""
    _request_id.set(request_id)


_installed = False


def install_log_record_factory() -> None:
    """Every log record gets a `request_id` attribute (None outside an RPC), whatever handler writes it.

    A record factory rather than a handler filter: it also reaches handlers added later (pytest's caplog, a
    library's own) and child loggers, which a filter on one handler or logger would miss. Idempotent.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = _request_id.get()
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
