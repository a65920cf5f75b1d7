"""Query parameters and the JSON forms of times and metrics."""

from __future__ import annotations


import re
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from metering import ingest
from metering.metrics import get_metric
from metering.models import CODE_RE, MetricPublic
from metering.api.errors import ApiError
from metering.api.intake import _fast_timestamp


# --------------------------------------------------------------------------- query parameters


def parse_time_param(name: str, raw: str) -> int:
    """A `from`/`to` value (ISO 8601, no offset = UTC, or epoch seconds) → epoch microseconds."""
    value = raw.strip()
    # An unencoded '+' in a query string arrives as a space: "…T14:00:00 02:00".
    value = re.sub(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$", r"\1+\2", value)
    if not value:
        raise ApiError(422, "invalid_parameter", f"{name} is empty: give an ISO 8601 time or Unix epoch seconds")
    if re.fullmatch(r"-?\d{1,12}(?:\.\d{1,6})?", value):
        stamp: Any = ingest._mark(value)  # epoch seconds, read as the number they are
    else:
        stamp = value
    fast = _fast_timestamp(stamp)
    if fast is not None:
        return fast
    try:
        values, reasons = ingest.parse_timestamps([value])
        reason = reasons.get(0)
    except Exception:  # noqa: BLE001 - text the parser cannot take at all
        reason = "unreadable"
    if reason is not None:
        if "outside the supported times" in reason or "out of range" in reason:
            # A time no event can have (e.g. from=-99999999999): refused, never a server error.
            raise ApiError(422, "invalid_parameter", f"{name}: '{raw[:60]}' is outside the supported times, {ingest.TS_RANGE_TEXT}")
        raise ApiError(422, "invalid_parameter", f"{name}: '{raw[:60]}' is not an ISO 8601 time (2026-10-03T12:00:00Z) or Unix epoch seconds")
    return int(values[0])


def _iso(us: int | None) -> str | None:
    if us is None:
        return None
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + pd.Timedelta(microseconds=us).to_pytimedelta()
    return moment.isoformat().replace("+00:00", "Z")


def _metric_or_none(engine: Engine, code: str) -> MetricPublic | None:
    """The metric with this code; a text that cannot be a code (NUL, any length) is not looked up."""
    return get_metric(engine, code=code) if CODE_RE.fullmatch(code) else None


def _metric_json(metric: MetricPublic) -> dict[str, Any]:
    data = metric.model_dump(mode="json", exclude={"id"})
    for name in ("created_at", "updated_at"):
        value = getattr(metric, name)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            data[name] = value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return data
