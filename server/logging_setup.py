"""Process-wide logging: text for people, JSON lines for log shippers. Never log PHI or secrets.

Every line written while an RPC is served carries its request id (`server/telemetry/request_ids.py`): text lines
as `[req <id>]`, JSON lines as the field `request_id`. Lines that pass structured fields (`FIELDS`, e.g. the access
line's method, code, duration and tenant) get them as JSON fields of their own.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, TypeAlias

from server.telemetry.request_ids import install_log_record_factory

#: Record attributes written as JSON fields when present (passed with `extra=`; `request_id` by the factory).
FIELDS: Final = ("method", "code", "duration_ms", "tenant", "request_id")
#: Modules whose exception messages are ours: written never to carry member data or secrets.
OWN_MODULES: Final = ("server.", "console.")
WITHHELD: Final = "(message withheld: it may carry request data)"
ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def safe_exception_text(exc_info: ExcInfo) -> str:
    """A logged exception as Python prints it (its chain, each traceback's frames), but with the message only of
    exceptions our own code defines. Another library's message may quote what it was given, and what it was given
    may be member data (a `KeyError` naming a member id, a `ValueError` quoting a date of birth): its type and the
    frames are enough to find the bug, and the logs stay free of PHI whatever a dependency puts in its text."""
    _type, exc, _tb = exc_info
    if exc is None:
        return ""
    lines: list[str] = []
    _render(exc, lines, set())
    return "".join(lines).rstrip("\n")


def _render(exc: BaseException, lines: list[str], seen: set[int]) -> None:
    seen.add(id(exc))
    cause, context = exc.__cause__, None if exc.__suppress_context__ else exc.__context__
    if cause is not None and id(cause) not in seen:
        _render(cause, lines, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and id(context) not in seen:
        _render(context, lines, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if exc.__traceback__ is not None:
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(exc.__traceback__))
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    text = str(exc) if kind.__module__.startswith(OWN_MODULES) else WITHHELD
    lines.append(f"{name}: {text}\n" if text and str(exc) else f"{name}\n")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)

    def formatException(self, ei: ExcInfo) -> str:  # noqa: N802 - logging's name
        return safe_exception_text(ei)


class TextFormatter(logging.Formatter):
    """The plain format, with ` [req <id>]` at the end of the message while an RPC is served (at the end, so the
    start of a line reads as before)."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request_tag = f" [req {request_id}]" if request_id else ""
        return super().format(record)

    def formatException(self, ei: ExcInfo) -> str:  # noqa: N802 - logging's name
        return safe_exception_text(ei)


def configure_logging(level: str, fmt: str, *, show_pid: bool = False) -> None:
    """`show_pid` (several worker processes share one terminal): text lines carry `[pid N]`; JSON always does."""
    install_log_record_factory()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        pid = "[pid %(process)d] " if show_pid else ""
        handler.setFormatter(TextFormatter(f"%(asctime)s %(levelname)-7s {pid}%(name)s: %(message)s%(request_tag)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one INFO line per plugin at import
