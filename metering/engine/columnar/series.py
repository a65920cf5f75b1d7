"""Usage of a metric per UTC day (and optionally per value of one label) on the embedded
engine's columns: the day is one more key of the same pyarrow hash aggregate as `aggregate`,
so every day's value is exactly the metric over that day's window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from metering.engine.columnar.aggregate import _reduce, _rows, select
from metering.models import MetricBase

if TYPE_CHECKING:
    from metering.engine.frame import EventFrame

DAY_US = 86_400_000_000
COLUMNS = ["day", "group", "value", "events", "skipped"]


def daily_usage(
    frame: EventFrame,
    metric: MetricBase,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    customer_ids: Sequence[str] | None = None,
    split_by: str | None = None,
) -> pd.DataFrame:
    """One row per UTC day (× value of `split_by`) that has matching events: day (date), group
    (the label's text, None when absent; None throughout without `split_by`), value (exact
    Decimal), events, skipped."""
    idx = select(frame, metric, start=start, end=end, customer_ids=customer_ids)
    if not len(idx):
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("day", "group", "value") else "int64") for c in COLUMNS})
    day_index = np.floor_divide(frame.ts_us[idx], DAY_US)
    days, day_codes = np.unique(day_index, return_inverse=True)
    keys: list[tuple[str, pa.Array, list[str]]] = [("day", pa.array(day_codes.astype(np.int32)), [str(d) for d in days])]
    if split_by:
        cats = frame.path(split_by).text
        codes = cats.codes[idx]
        keys.append((split_by, pa.array(codes, mask=codes < 0), cats.values))
    rows = _rows(_reduce(frame, metric, idx, keys), metric, keys)
    epoch = date(1970, 1, 1)
    return pd.DataFrame.from_records(
        [
            {
                "day": epoch + timedelta(days=int(row["key"][0])),
                "group": row["key"][1] if split_by else None,
                "value": row["value"],
                "events": row["events"],
                "skipped": sum(row["skip"].values()),
            }
            for row in rows
        ],
        columns=COLUMNS,
    )
