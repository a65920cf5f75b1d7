"""ASGI plumbing for `st.App`: middleware and the lifespan hook."""

from __future__ import annotations


import socket
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Router

from metering.api.limits import (
    PREFIX,
    SWITCH_INTERVAL_S,
)
from metering.api.errors import _log
from metering.api.headers import HeaderLimitMiddleware
from metering.api.backend import default_backend


class NoDelayMiddleware:
    """Turn off Nagle's algorithm on each connection (ASGI middleware, for `st.App(middleware=)`).

    Streamlit 1.67 binds its listening socket with `socket.socket(family)` (protocol 0), so
    asyncio's usual TCP_NODELAY (only set when the protocol is IPPROTO_TCP) is never applied.
    uvicorn writes a response's head and body separately; on a kept-alive connection the body
    then waits for the client's delayed ACK: ~40 ms per request, 25 requests/s per client.
    The connection's transport is reachable from uvicorn's `receive` (a bound method of its
    request cycle); anything unexpected leaves the connection as it is.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            try:
                transport = getattr(getattr(receive, "__self__", None), "transport", None)
                sock = transport.get_extra_info("socket") if transport is not None else None
                if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
        await self.app(scope, receive, send)


class ApiFirstMiddleware:
    """Send /api/v1 requests straight to the API's routes (ASGI middleware, outermost).

    Registered with `st.App(routes=...)` the routes would work too, but every request would
    first pass Streamlit's own middleware (path security for its static files, its session
    cookie, gzip) and router: about a third of a small request's time, for nothing the API
    uses. Everything else goes on to Streamlit unchanged."""

    def __init__(self, app: Any, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.api = Router(routes=list(routes))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            if path == PREFIX or path.startswith(PREFIX + "/"):
                await self.api(scope, receive, send)
                return
        await self.app(scope, receive, send)


def middleware(routes: Sequence[BaseRoute] | None = None) -> list[Middleware]:
    """Middleware for `st.App`: request-head limits (outermost, every request), TCP_NODELAY on
    every connection and, given the API's routes, the short way to them for /api/v1 requests."""
    stack = [Middleware(HeaderLimitMiddleware), Middleware(NoDelayMiddleware)]
    if routes is not None:
        stack.append(Middleware(ApiFirstMiddleware, routes=routes))
    return stack


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    """Start-up for `st.App(..., lifespan=lifespan)`: open the store, create the key if needed,
    and shorten the interpreter's thread switch interval (see SWITCH_INTERVAL_S)."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        await run_in_threadpool(default_backend().start)
    except Exception as exc:  # noqa: BLE001 - the UI still starts; /api/v1/health reports it
        _log(f"could not open the store: {type(exc).__name__}: {exc}")
    yield
