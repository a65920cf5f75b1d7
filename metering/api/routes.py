"""The /api/v1 routes (Starlette), each answering JSON."""

from __future__ import annotations


from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from anyio import to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from metering import apikeys
from metering.metrics import list_metrics
from metering.api.limits import (
    API_VERSION,
    MAX_BATCH,
    MAX_BODY_BYTES,
    PREFIX,
    _METHODS,
)
from metering.api.errors import ApiError, _log
from metering.api.backend import Backend, default_backend
from metering.api.params import (
    _iso,
    _metric_json,
    _metric_or_none,
    parse_time_param,
)
from metering.api.intake import cloudevents_kind
from metering.api.openapi import openapi_document
from metering.api.quota_routes import quota_handlers


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if declared > MAX_BODY_BYTES:
            raise _too_large(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(None)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int | None) -> ApiError:
    got = f" (this one has {size:,} bytes)" if size is not None else ""
    return ApiError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES:,} bytes{got}: send at most {MAX_BATCH:,} events per request and split larger batches")


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def api_routes(engine: Engine | None = None) -> list[BaseRoute]:
    """The API's routes. Without an engine they use the process's default backend (created on
    first use, for DATABASE_URL); with one (tests), a backend of their own over it."""
    own = Backend(engine) if engine is not None else None

    def backend() -> Backend:
        return own if own is not None else default_backend()

    async def ready() -> Backend:
        b = backend()
        if not b.ready:
            await run_in_threadpool(b.start)
        return b

    async def authorize(request: Request) -> Backend:
        b = await ready()
        key = _presented_key(request)
        if key is None:
            key_id = None
        elif apikeys.needs_lookup(b.engine):
            key_id = await run_in_threadpool(apikeys.identify, b.engine, key)
        else:
            key_id = apikeys.identify(b.engine, key)
        if key_id is not None and apikeys.use_due(b.engine, key_id):
            # "last used" on the Developers page: written at most once a minute per key
            await run_in_threadpool(apikeys.mark_used, b.engine, key_id)
        if key_id is None:
            reason = "missing API key: send Authorization: Bearer <key>" if key is None else "invalid API key"
            raise ApiError(401, "unauthorized", reason, headers={"WWW-Authenticate": 'Bearer realm="metering"'})
        return b

    async def post_events(request: Request) -> Response:
        b = await authorize(request)
        body = await _read_body(request)
        kind = cloudevents_kind(request.headers.get("content-type"))  # CloudEvents are mapped before validation
        status, payload = await to_thread.run_sync(b.ingest, body, kind, limiter=b.ingest_limiter())
        return JSONResponse(payload, status)

    async def get_metrics(request: Request) -> Response:
        b = await authorize(request)
        metrics = await run_in_threadpool(list_metrics, b.engine)
        return JSONResponse({"metrics": [_metric_json(m) for m in metrics]})

    async def get_metric_by_code(request: Request) -> Response:
        b = await authorize(request)
        code = request.path_params["code"]
        metric = await run_in_threadpool(_metric_or_none, b.engine, code)
        if metric is None:
            raise ApiError(404, "not_found", f"no metric with code '{code[:80]}'")
        return JSONResponse(_metric_json(metric))

    async def get_usage(request: Request) -> Response:
        b = await authorize(request)
        params = request.query_params
        code = params.get("metric", "")  # exactly as sent, like every identifier
        problems = []
        if not code:
            problems.append("metric is required (a metric code, see GET /api/v1/metrics)")
        times: dict[str, int | None] = {"from": None, "to": None}
        for name in ("from", "to"):
            raw = params.get(name)
            if raw is not None:
                try:
                    times[name] = parse_time_param(name, raw)
                except ApiError as exc:
                    problems.append(exc.detail)
        if times["from"] is not None and times["to"] is not None and times["from"] >= times["to"]:
            problems.append("from must be before to (the window is [from, to))")
        # Customer ids are kept as sent (events are never trimmed either): " c1" is not "c1".
        customers = params.getlist("customer_id") or None
        if customers is not None and any(not c or len(c) > 255 for c in customers):
            problems.append("customer_id must be 1–255 characters (repeat the parameter for several customers)")
        if problems:
            raise ApiError(422, "invalid_parameter", "; ".join(problems))
        metric = await run_in_threadpool(_metric_or_none, b.engine, code)
        if metric is None:
            raise ApiError(404, "not_found", f"no metric with code '{code[:80]}'")
        result = await run_in_threadpool(b.usage, metric, times["from"], times["to"], customers)
        result["from"], result["to"] = _iso(times["from"]), _iso(times["to"])
        result["customer_id"] = customers
        return JSONResponse(result)

    async def get_health(request: Request) -> Response:
        try:
            b = await ready()
            await run_in_threadpool(b.health)
        except Exception as exc:  # noqa: BLE001 - report, never crash
            return JSONResponse({"status": "unavailable", "detail": f"the store cannot be reached: {type(exc).__name__}"}, 503)
        return JSONResponse({"status": "ok", "version": API_VERSION})

    async def get_openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    def route(path: str, handlers: dict[str, Callable[[Request], Any]]) -> Route:
        allowed = sorted(set(handlers) | ({"HEAD"} if "GET" in handlers else set()))

        async def endpoint(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            handler = handlers.get(method)
            try:
                if handler is None:
                    raise ApiError(405, "method_not_allowed", f"{request.method} is not allowed here; use {', '.join(allowed)}",
                                   headers={"Allow": ", ".join(allowed)})
                return await handler(request)
            except ApiError as exc:
                return exc.response()
            except Exception as exc:  # noqa: BLE001 - a bug: answer JSON, log the cause
                _log(f"{request.method} {request.url.path} failed: {type(exc).__name__}: {exc}")
                return JSONResponse({"error": "internal_error", "detail": "the server failed to answer this request"}, 500)

        return _any_method(Route(path, endpoint, methods=_METHODS, name=f"api:{path}"))

    async def not_found(request: Request) -> Response:
        return ApiError(404, "not_found", f"no API endpoint at {request.url.path[:120]}; see {PREFIX}/openapi.json").response()

    quotas = quota_handlers(authorize)  # contract §8
    return [
        route(f"{PREFIX}/events", {"POST": post_events}),
        route(f"{PREFIX}/entitlements/{{customer_id:anytext}}/{{metric}}", {"GET": quotas["entitlement"]}),
        route(f"{PREFIX}/alerts", {"GET": quotas["alerts"]}),
        route(f"{PREFIX}/metrics", {"GET": get_metrics}),
        route(f"{PREFIX}/metrics/{{code}}", {"GET": get_metric_by_code}),
        route(f"{PREFIX}/usage", {"GET": get_usage}),
        route(f"{PREFIX}/health", {"GET": get_health}),
        route(f"{PREFIX}/openapi.json", {"GET": get_openapi}),
        _any_method(Route(PREFIX, not_found, methods=_METHODS)),
        _any_method(Route(f"{PREFIX}/{{rest:path}}", not_found, methods=_METHODS)),
    ]


def _any_method(route: Route) -> Route:
    """Let every HTTP method (TRACE, CONNECT, PROPFIND, …) reach the endpoint, which answers
    405 as JSON with an Allow header itself. Left to Starlette, a method outside the route's
    list raises HTTPException, which nothing handles on the /api/v1 short way (a 500)."""
    route.methods = None
    return route
