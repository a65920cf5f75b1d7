"""Usage of a metric per UTC day (and optionally per value of one label), on columns only.

Each day's value is the metric's aggregation over that day's window `[day, day + 1)`, exactly
as `aggregation.aggregate` computes it for that window: the day is one more key of the same
pyarrow hash aggregate, so count and sum add up to the window's total and max, min,
unique_count and latest are the true per-day values (not sums of anything). Days of the
window without events are 0 (contract §2: no matching events → 0).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd

from metering.engine.columns import to_us
from metering.engine.interface import Events
from metering.models import Aggregation, MetricBase

DAY_US = 86_400_000_000
NULL_GROUP = "null"  # label of events without the split key (contract §2: the group `null`)
ADDITIVE = frozenset({Aggregation.count, Aggregation.sum})

__all__ = ["ADDITIVE", "DAY_US", "NULL_GROUP", "daily_usage", "is_additive", "window_of_month"]


def is_additive(metric: MetricBase) -> bool:
    """True when per-day (and per-group) values add up to the window's value."""
    return metric.aggregation in ADDITIVE


def _day(index: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(index))


def daily_usage(
    events: Events,
    metric: MetricBase,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    customer_ids: list[str] | None = None,
    split_by: str | None = None,
    fill: bool = True,
) -> pd.DataFrame:
    """One row per UTC day (× value of `split_by`) in `[start, end)`.

    Columns: `day` (datetime.date), `group` (only with `split_by`; the label's text value,
    `"null"` when absent), `value` (exact Decimal), `events` (matching events, skipped ones
    included) and `skipped`. With `fill`, every day from the first to the last day of the
    window (or of the matching events when the window is open) is present, at 0 when it had
    no events; with `split_by`, every day × group that has events anywhere in the window.
    """
    columns = ["day", *(["group"] if split_by else []), "value", "events", "skipped"]
    rows = events.daily_usage(metric, start=start, end=end, customer_ids=customer_ids, split_by=split_by)
    first_day, last_day = _day_bounds(rows, start, end)
    if first_day is None:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("day", "group", "value") else "int64") for c in columns})
    out = rows.copy()
    if split_by:
        out["group"] = [NULL_GROUP if g is None or (isinstance(g, float) and g != g) else g for g in out["group"]]
    out = out[columns]
    if fill:
        out = _fill(out, first_day, last_day, split_by is not None)
    sort = ["day", "group"] if split_by else ["day"]
    return out.sort_values(sort, kind="stable").reset_index(drop=True)[columns]


def _day_bounds(
    rows: pd.DataFrame, start: datetime | int | None, end: datetime | int | None
) -> tuple[int | None, int | None]:
    """First and last day index (inclusive) to show: the window's, else the events' days."""
    start_us, end_us = to_us(start), to_us(end)
    first_day = last_day = None
    if len(rows):
        indexes = [(d - date(1970, 1, 1)).days for d in rows["day"]]
        first_day, last_day = min(indexes), max(indexes)
    first = start_us // DAY_US if start_us is not None else first_day
    last = (end_us - 1) // DAY_US if end_us is not None else last_day
    if first is None or last is None or last < first:
        return None, None
    return first, last


def _fill(out: pd.DataFrame, first_day: int, last_day: int, split: bool) -> pd.DataFrame:
    all_days = [_day(d) for d in range(first_day, last_day + 1)]
    if split:
        groups = sorted(out["group"].unique().tolist(), key=lambda g: (g == NULL_GROUP, g))
        if not groups:
            return out
        grid = pd.MultiIndex.from_product([all_days, groups], names=["day", "group"])
        out = out.set_index(["day", "group"]).reindex(grid).reset_index()
    else:
        out = out.set_index("day").reindex(pd.Index(all_days, name="day")).reset_index()
    missing = out["events"].isna()
    out.loc[missing, "events"] = 0
    out.loc[missing, "skipped"] = 0
    out["value"] = [Decimal(0) if m else v for m, v in zip(missing, out["value"])]
    out["events"] = out["events"].astype("int64")
    out["skipped"] = out["skipped"].astype("int64")
    return out


def window_of_month(ts_us: int) -> tuple[datetime, datetime]:
    """The UTC calendar month holding `ts_us`: [first day 00:00, first day of next month)."""
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(ts_us))
    start = datetime(moment.year, moment.month, 1, tzinfo=timezone.utc)
    end = datetime(moment.year + (moment.month == 12), moment.month % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end
