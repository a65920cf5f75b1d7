"""The stored-events browser on the embedded engine: a filter as a numpy mask, a page of the
newest events found by a partial sort, and only that page's keys and properties read from
the segment files."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from metering.engine.columns import to_us
from metering.engine.interface import EventQuery

if TYPE_CHECKING:
    from metering.engine.frame import EventFrame

PAGE_COLUMNS = ["ts_us", "event_name", "customer_id", "properties", "idempotency_key", "import_id"]


def mask(frame: EventFrame, q: EventQuery) -> np.ndarray:
    keep = np.ones(len(frame), dtype=bool)
    if q.event_name:
        keep &= frame.event_names.isin([q.event_name])
    if q.customer_id:
        keep &= frame.customers.isin([q.customer_id])
    if q.start is not None:
        keep &= frame.ts_us >= to_us(datetime(q.start.year, q.start.month, q.start.day, tzinfo=timezone.utc))
    if q.end is not None:
        end = q.end + timedelta(days=1)
        keep &= frame.ts_us < to_us(datetime(end.year, end.month, end.day, tzinfo=timezone.utc))
    if q.import_id is not None:
        keep &= frame.imports == q.import_id
    return keep


def count_events(frame: EventFrame, q: EventQuery) -> int:
    return int(np.count_nonzero(mask(frame, q)))


def browse(frame: EventFrame, q: EventQuery, *, limit: int, offset: int) -> pd.DataFrame:
    """One page of the matching events, newest first (ties: stored last first)."""
    rows = np.flatnonzero(mask(frame, q))
    want = offset + limit
    if want < len(rows):
        # Only the newest `want` matter: cut at the want-th newest time, keep its ties.
        ts = frame.ts_us[rows]
        cut = np.partition(ts, len(ts) - want)[len(ts) - want]
        rows = rows[ts >= cut]
    order = np.lexsort((-frame.seq[rows], -frame.ts_us[rows]))
    page = rows[order][offset:want]
    imports = frame.imports[page]
    return pd.DataFrame({
        "ts_us": frame.ts_us[page],
        "event_name": [frame.event_names.values[c] for c in frame.event_names.codes[page]],
        "customer_id": [frame.customers.values[c] for c in frame.customers.codes[page]],
        "properties": frame.column_at(page, "properties"),
        "idempotency_key": frame.column_at(page, "idempotency_key"),
        "import_id": pd.array([None if i < 0 else int(i) for i in imports], dtype="Int64"),
    }, columns=PAGE_COLUMNS)


def key_rows(frame: EventFrame, rows: np.ndarray) -> pa.Array:
    return pa.array(frame.column_at(rows, "idempotency_key"), type=pa.string())
