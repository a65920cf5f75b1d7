"""A pandas DataFrame of events → the importer, as the file it would be.

A frame is imported exactly as the app imports simulated events (`importing.import_frames`:
written as CSV with `simulate.to_csv`, read back by the file importer), so a frame and the CSV
file of the same rows store the same events, with the same row errors and idempotency keys.

Columns: `event_name`, `customer_id`, `timestamp` (ISO text, epoch seconds, or datetimes:
naive ones are UTC, kept to the microsecond), optionally `idempotency_key` and `properties`
(a JSON object as text, or dicts), and any other column is a property (a dotted name such as
`usage.tokens` is a nested one). Missing values (None, NaN, NaT) are left out, as empty CSV
cells are. As in a CSV file, a cell is a number when it reads as one (Decimal columns stay
exact). Rejected rows are numbered by their position in the frame (1 = the first row) and
name the frame's index label (`row`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

REQUIRED = ("event_name", "customer_id", "timestamp")


@dataclass(frozen=True)
class Prepared:
    frame: pd.DataFrame  # what importing.import_frames takes
    first_lines: np.ndarray  # the CSV line each row starts on (header = line 1)
    labels: list[Any]  # the original index label of each row


def _iso_times(values: pd.Series) -> pd.Series:
    """Datetimes → ISO 8601 text in UTC to the microsecond (vectorised with Arrow)."""
    ser = values if values.dt.tz is not None else values.dt.tz_localize("UTC")
    arr = pa.array(ser.dt.tz_convert("UTC"), from_pandas=True).cast(pa.timestamp("us", tz="UTC"))
    text = pc.binary_join_element_wise(pc.strftime(arr, format="%Y-%m-%dT%H:%M:%S"), pa.scalar("Z"), "")
    return pd.Series(text.to_pylist(), index=values.index, dtype=object)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):  # text: a string that reads as a number still aggregates as one
        return format(value, "f")
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _properties_text(values: pd.Series) -> pd.Series:
    def one(value: Any) -> Any:  # dict cells only (a column of JSON text passes through)
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False, default=_json_default)
        return value

    return values.map(one)


def prepare(df: pd.DataFrame) -> Prepared:
    """The frame in the shape `importing.import_frames` writes and reads back."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"events must be a pandas DataFrame or a file path, not {type(df).__name__}")
    names = [str(c) for c in df.columns]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ValueError(f"the DataFrame needs the column(s) {', '.join(missing)} (it has: {', '.join(names) or 'none'})")
    if len(set(names)) != len(names):
        raise ValueError("the DataFrame has two columns with the same name")
    labels = list(df.index)
    out = df.reset_index(drop=True).copy()
    out.columns = names
    stamps = out["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(stamps.dtype):
        out["timestamp"] = _iso_times(stamps)
    elif stamps.dtype == object and pd.api.types.infer_dtype(stamps, skipna=True) in ("datetime", "datetime64"):
        out["timestamp"] = _iso_times(pd.to_datetime(stamps, utc=True))
    if "properties" in out.columns and out["properties"].dtype == object:
        out["properties"] = _properties_text(out["properties"])
    # Each row starts one line after the previous one ends: a quoted cell may hold line breaks.
    breaks = np.zeros(len(out), dtype=np.int64)
    for name in out.columns:
        col = out[name]
        if pd.api.types.infer_dtype(col, skipna=True) == "string":
            counts = pc.count_substring(pa.array(col, from_pandas=True, type=pa.large_string()), "\n")
            breaks += counts.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    first_lines = 2 + np.arange(len(out), dtype=np.int64) + np.concatenate([[0], np.cumsum(breaks)[:-1]]).astype(np.int64)
    return Prepared(out, first_lines[: len(out)], labels)


def row_of(prepared: Prepared, line: int) -> int:
    """The 0-based row position of a CSV line number."""
    return max(int(np.searchsorted(prepared.first_lines, line, side="right")) - 1, 0)
