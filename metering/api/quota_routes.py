"""GET /api/v1/entitlements/{customer_id}/{metric} and GET /api/v1/alerts (contract §8)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import re
from decimal import Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from metering.api.errors import ApiError
from metering.values import in_range

MAX_ALERTS = 1000


class _AnyText(Convertor[str]):
    """A path parameter that may hold any character, "/" and line breaks included (customer ids
    are any text; Starlette's `path` convertor stops at a line break)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", _AnyText())


QUANTITY_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_quantity(raw: str) -> Decimal:
    """`?quantity=` → a decimal number of units ≥ 0, written plainly (`1`, `250`, `0.5`);
    ApiError 422 saying what was wrong."""
    if raw.startswith("-") and QUANTITY_RE.fullmatch(raw[1:]):
        raise ApiError(422, "invalid_parameter", f"quantity: '{raw[:60]}' is negative; ask for 0 or more units")
    if len(raw) > 40:
        raise ApiError(422, "invalid_parameter", "quantity: at most 40 characters (40 integer digits and 18 decimal places)")
    if not QUANTITY_RE.fullmatch(raw):
        raise ApiError(422, "invalid_parameter", f"quantity: '{raw[:60]}' is not a number of units (write e.g. 1, 250 or 0.5)")
    value = Decimal(raw)
    if not in_range(value):
        raise ApiError(422, "invalid_parameter", "quantity: at most 40 integer digits and 18 decimal places")
    return value


def _alert_limit(raw: str | None) -> int:
    if raw is None:
        return MAX_ALERTS
    text = raw.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_ALERTS:
        raise ApiError(422, "invalid_parameter", f"limit: '{raw[:40]}' must be a whole number from 1 to {MAX_ALERTS}")
    return int(text)


def _only(request: Request, known: tuple[str, ...]) -> None:
    """Refuse unknown query parameters (a misspelt filter must not silently list everything)."""
    unknown = sorted({name for name in request.query_params.keys() if name not in known})
    if unknown:
        allowed = ", ".join(known) if known else "none"
        raise ApiError(422, "invalid_parameter", f"unknown parameter '{unknown[0][:40]}' (this endpoint takes: {allowed})")


def quota_handlers(authorize: Callable[[Request], Awaitable[Any]]) -> dict[str, Callable[[Request], Awaitable[Response]]]:
    """The two handlers, authorized like every other endpoint (the workspace API key)."""
    from metering.quotas.alerts import list_alerts
    from metering.quotas.entitlement import NoQuota, check

    async def get_entitlement(request: Request) -> Response:
        b = await authorize(request)
        customer = request.path_params["customer_id"]
        code = request.path_params["metric"]
        _only(request, ("quantity",))
        raw = request.query_params.get("quantity")
        quantity = Decimal(1) if raw is None else parse_quantity(raw)
        if not customer or len(customer) > 255:
            raise ApiError(404, "not_found", "customer_id must be 1–255 characters")
        try:
            found = await run_in_threadpool(check, b.engine, customer, code, quantity=quantity)
        except NoQuota as exc:
            raise ApiError(404, "not_found", exc.detail) from None
        return JSONResponse(found.to_json())

    async def get_alerts(request: Request) -> Response:
        b = await authorize(request)
        _only(request, ("customer_id", "metric", "limit"))
        params = request.query_params
        customer = params.get("customer_id")
        metric = params.get("metric")
        problems = []
        if customer is not None and not 0 < len(customer) <= 255:
            problems.append("customer_id must be 1–255 characters")
        if metric is not None and not 0 < len(metric) <= 64:
            problems.append("metric must be a metric code (1–64 characters)")
        try:
            limit = _alert_limit(params.get("limit"))
        except ApiError as exc:
            problems.append(exc.detail)
            limit = MAX_ALERTS
        if problems:
            raise ApiError(422, "invalid_parameter", "; ".join(problems))
        if (customer and "\x00" in customer) or (metric and "\x00" in metric):
            return JSONResponse({"alerts": []})  # no stored id holds NUL
        alerts = await run_in_threadpool(lambda: list_alerts(b.engine, customer_id=customer, metric=metric, limit=limit))
        return JSONResponse({"alerts": [a.to_json() for a in alerts]})

    return {"entitlement": get_entitlement, "alerts": get_alerts}
