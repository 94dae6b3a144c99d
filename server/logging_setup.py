"""Process-wide logging: text for people, JSON lines for log shippers. Never log PHI or secrets.

Every line written while an RPC is served carries its request id (`server/telemetry/request_ids.py`): text lines
as `[req <id>]`, JSON lines as the field `request_id`. Lines that pass structured fields (`FIELDS`, e.g. the access
line's method, code, duration and tenant) get them as JSON fields of their own.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final

from server.telemetry.request_ids import install_log_record_factory

#: Record attributes written as JSON fields when present (passed with `extra=`; `request_id` by the factory).
FIELDS: Final = ("method", "code", "duration_ms", "tenant", "request_id")


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


class TextFormatter(logging.Formatter):
    """The plain format, with ` [req <id>]` at the end of the message while an RPC is served (at the end, so the
    start of a line reads as before)."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request_tag = f" [req {request_id}]" if request_id else ""
        return super().format(record)


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
