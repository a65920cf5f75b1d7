"""Limits on request heads: at most MAX_HEADERS header fields and MAX_HEAD_BYTES for the request
line and headers together, for every request the server takes (pages, websocket, API).

Streamlit's `st.App` starts uvicorn with fixed options, and uvicorn's default HTTP parser
(httptools) sets no limit of its own: a client could send megabytes of headers, all kept in
memory. Two layers, because they catch different things:

* `limit_parser()` counts bytes while uvicorn's httptools protocol is still reading a request's
  head and answers 431 (then closes the connection) once the head outgrows MAX_HEAD_BYTES, so
  memory stays bounded by one read (64 KiB) past the limit. It patches uvicorn's protocol class
  (st.App leaves no other hook); when that class is not there it says so and the middleware
  still applies.
* `HeaderLimitMiddleware` (ASGI, outermost) checks the parsed headers of each HTTP or websocket
  request, whatever server or parser runs the app: more than MAX_HEADERS fields or more than
  MAX_HEAD_BYTES get 431 (a websocket is refused).

Why these numbers: browsers send 1–8 KiB; Streamlit's sign-in cookies are split into 4 KiB
chunks (a few of them); nginx's default allows 4 × 8 KiB, Node 16 KiB; Apache allows 100 fields.
"""

from __future__ import annotations

import logging
from typing import Any

MAX_HEADERS = 100
MAX_HEAD_BYTES = 64 * 1024
REASON = b"Request Header Fields Too Large"
_BODY = b"request headers too large: at most 100 header fields and 64 KiB for the request line and headers\n"
_LOG = logging.getLogger("uvicorn.error")


def too_large(headers: list[tuple[bytes, bytes]], path: str = "") -> bool:
    """Whether a request's head breaks the limits (the request line is counted as its path)."""
    if len(headers) > MAX_HEADERS:
        return True
    size = len(path) + sum(len(k) + len(v) + 4 for k, v in headers)
    return size > MAX_HEAD_BYTES


class HeaderLimitMiddleware:
    """Refuse requests whose parsed headers break the limits (ASGI middleware, for `st.App`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and too_large(list(scope.get("headers") or []),
                                                                scope.get("raw_path", b"") or b""):
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 431,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": _BODY})
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


def _refuse(protocol: Any) -> None:
    response = (b"HTTP/1.1 431 " + REASON + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY)
    transport = getattr(protocol, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.write(response)
        transport.close()


def limit_parser() -> bool:
    """Make uvicorn's httptools protocol refuse oversized heads while it reads them. True when
    installed (idempotent); False, with a log line, when that protocol is not available."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency of this project
        _LOG.warning("request head limits: uvicorn's httptools protocol is missing; only the ASGI check applies")
        return False
    if getattr(HttpToolsProtocol, "_head_limits", False):
        return True
    needed = ("data_received", "on_headers_complete", "on_message_complete")
    if not all(hasattr(HttpToolsProtocol, name) for name in needed):  # pragma: no cover - another uvicorn
        _LOG.warning("request head limits: this uvicorn's protocol differs; only the ASGI check applies")
        return False
    data_received = HttpToolsProtocol.data_received
    on_headers_complete = HttpToolsProtocol.on_headers_complete
    on_message_complete = HttpToolsProtocol.on_message_complete

    def limited_data_received(self: Any, data: bytes) -> None:
        in_head = not getattr(self, "_head_done", False)
        if in_head:
            self._head_bytes = getattr(self, "_head_bytes", 0) + len(data)
        data_received(self, data)
        if in_head and not getattr(self, "_head_done", False) and self._head_bytes > MAX_HEAD_BYTES:
            _refuse(self)

    def limited_on_headers_complete(self: Any) -> None:
        self._head_done, self._head_bytes = True, 0
        on_headers_complete(self)

    def limited_on_message_complete(self: Any) -> None:
        on_message_complete(self)
        self._head_done = False  # what follows on a kept-alive connection is the next request's head

    HttpToolsProtocol.data_received = limited_data_received
    HttpToolsProtocol.on_headers_complete = limited_on_headers_complete
    HttpToolsProtocol.on_message_complete = limited_on_message_complete
    HttpToolsProtocol._head_limits = True
    return True
