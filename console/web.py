"""The console's ASGI application: its static files, and the Connect bridge for everything else.

The files are a fixed set read once at start (no path from a request ever reaches the file system). Every answer
forbids framing and sniffing and allows scripts only from this origin; requests whose `Host` or `Origin` is not this
console are refused, so another site (or a DNS-rebound name) cannot drive it with the development token.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"

Scope = dict[str, Any]
Receive = Any
Send = Any

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
     b"form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)

_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml",
          ".csv": "text/csv", ".png": "image/png"}


def static_files(root: Path = STATIC) -> dict[str, tuple[bytes, str]]:
    """URL path -> (bytes, content type) for every file under `static/`; `/` is `index.html`."""
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind.startswith("text/"):
            kind += "; charset=utf-8"
        files["/" + path.relative_to(root).as_posix()] = (path.read_bytes(), kind)
    files["/"] = files["/index.html"]
    return files


class ConsoleApp:
    """Routes `GET` of a known file to it and every other request to the bridge, after the origin checks."""

    def __init__(self, bridge: Any, allowed_hosts: Iterable[str] | None) -> None:
        """`allowed_hosts`: the `Host` values this console answers to (None: any, when it is not on loopback)."""
        self._bridge = bridge
        self._files = static_files()
        self._hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._bridge(scope, receive, send)  # lifespan
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "").lower()
        if self._hosts is not None and host not in self._hosts:
            await _plain(send, 421, "This console does not answer to that host name.")
            return
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in {f"http://{host}", f"https://{host}"}:
            await _plain(send, 403, "Cross-origin requests are refused.")
            return
        path = scope["path"]
        if scope["method"] in ("GET", "HEAD") and path in self._files:
            body, kind = self._files[path]
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode()),
                                    *SECURITY_HEADERS]})
            await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
            return
        if scope["method"] == "GET":
            await _plain(send, 404, "Not found.")
            return

        async def send_secured(event: dict[str, Any]) -> None:
            if event["type"] == "http.response.start":
                event = {**event, "headers": [*event.get("headers", []), *SECURITY_HEADERS]}
            await send(event)

        await self._bridge(scope, receive, send_secured)


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
