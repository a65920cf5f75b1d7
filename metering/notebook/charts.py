"""Chart builders for the notebook results: pure functions, DataFrame in → Altair chart out.

No engine calls and no Streamlit: each function shapes only the rows it is given. Altair
refuses to embed more than 5,000 rows (`MaxRowsError`), so every builder takes at most
`MAX_ROWS` rows and the helpers below reduce bigger inputs first (`top_n`: the largest labels
plus one "other" row; `coarsen_days`: days into weeks or months). Exact figures belong in
`to_pandas()`; marks take floats, tooltips the exact text.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

MAX_ROWS = 5_000  # altair's default limit for data embedded in a chart
OTHER = "(other)"
_STEPS = (("day", None), ("week", "W"), ("month", "M"), ("year", "Y"))


def _alt() -> Any:
    import altair as alt  # imported when a chart is drawn, not when `metering` is imported

    return alt


def _checked(df: pd.DataFrame) -> pd.DataFrame:
    if len(df) > MAX_ROWS:
        raise ValueError(f"a chart takes at most {MAX_ROWS} rows, not {len(df)}: reduce it first (top_n, coarsen_days)")
    return df


def _floats(values: pd.Series) -> list[float | None]:
    return [None if v is None else float(v) for v in values]


def _texts(values: pd.Series) -> list[str]:
    return ["" if v is None else (format(v, "f") if isinstance(v, Decimal) else str(v)) for v in values]


def top_n(df: pd.DataFrame, *, label: str, value: str, n: int, additive: bool = True) -> tuple[pd.DataFrame, int]:
    """The `n` rows with the largest `value` (ties by label); the rest become one `(other)` row
    holding their sum when the values add up (`additive`), else they are left out. Returns the
    rows and how many were folded or left out."""
    if len(df) <= n:
        return df, 0
    ordered = df.assign(_key=[-v for v in df[value]]).sort_values(["_key", label], kind="stable").drop(columns="_key")
    head, rest = ordered.iloc[:n], ordered.iloc[n:]
    if not additive:
        return head.reset_index(drop=True), len(rest)
    other = {c: None for c in df.columns}
    other[label] = OTHER
    other[value] = sum(rest[value], Decimal(0))
    return pd.concat([head, pd.DataFrame([other])], ignore_index=True), len(rest)


def coarsen_days(df: pd.DataFrame, *, how: str, groups: int = 1) -> tuple[pd.DataFrame, str]:
    """Daily rows (`day`, optional `group`, `value` Decimal) folded into the finest of day,
    week, month or year that keeps `rows × groups` within MAX_ROWS. `how` folds values:
    "sum" (count, sum), "max" (the peak day: max, unique_count), "min", or "last" (latest).
    Returns the rows (a `day` column holding each bucket's first day) and the bucket name."""
    days = pd.to_datetime(pd.Series(df["day"]))
    span = int((days.max() - days.min()).days) + 1 if len(df) else 0
    for name, freq in _STEPS:
        buckets = {"day": span, "week": span / 7 + 1, "month": span / 28 + 1, "year": span / 365 + 1}[name]
        if buckets * max(groups, 1) <= MAX_ROWS:
            break
    if freq is None:
        return df, "day"
    keys = ["bucket", *(["group"] if "group" in df.columns else [])]
    work = df.assign(bucket=days.dt.to_period(freq).dt.start_time.dt.date.values)
    fold = {"sum": lambda s: sum(s, Decimal(0)), "max": max, "min": min, "last": lambda s: list(s)[-1]}[how]
    out = work.groupby(keys, sort=True)["value"].agg(fold).reset_index().rename(columns={"bucket": "day"})
    return out, name


def bars(df: pd.DataFrame, *, label: str, value: str, title: str, color: str = "#1c83e1") -> Any:
    """Horizontal bars, one per `label`, in the frame's order; `value` holds Decimals."""
    alt = _alt()
    df = _checked(df)
    data = pd.DataFrame({"label": _texts(df[label]), "value": _floats(df[value]), "text": _texts(df[value])})
    return (
        alt.Chart(data)
        .mark_bar(color=color)
        .encode(
            y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=260)),
            x=alt.X("value:Q", title=title),
            tooltip=[alt.Tooltip("label:N", title=label), alt.Tooltip("text:N", title=title)],
        )
        .properties(height=max(60, 22 * len(data)))
    )


def daily(df: pd.DataFrame, *, title: str, step: str = "day") -> Any:
    """Usage per `day` (a date: the first day of each bucket), one line per `group` when the
    frame has one; `value` holds Decimals."""
    alt = _alt()
    df = _checked(df)
    data = pd.DataFrame({
        "day": pd.to_datetime(pd.Series(df["day"])).dt.tz_localize("UTC"),
        "value": _floats(df["value"]), "text": _texts(df["value"]),
        **({"group": _texts(df["group"])} if "group" in df.columns else {}),
    })
    encoding: dict[str, Any] = {
        "x": alt.X("day:T", title=f"{step} (UTC)"),
        "y": alt.Y("value:Q", title=title),
        "tooltip": [alt.Tooltip("day:T", title=step), alt.Tooltip("text:N", title=title)],
    }
    if "group" in data.columns:
        encoding["color"] = alt.Color("group:N", title=None, sort=None)
        encoding["tooltip"].insert(1, alt.Tooltip("group:N"))
    return alt.Chart(data).mark_line(point=len(data) <= 200).encode(**encoding).properties(height=280)


def periods(df: pd.DataFrame, *, title: str) -> Any:
    """A timeline: `usage` per period `start`, one line per `customer_id`, with the quota's
    `available` as a dashed line where the frame has it."""
    alt = _alt()
    df = _checked(df)
    data = pd.DataFrame({
        "start": pd.to_datetime(pd.Series(df["start"]), utc=True), "customer": _texts(df["customer_id"]),
        "usage": _floats(df["usage"]), "usage_text": _texts(df["usage"]),
    })
    base = alt.Chart(data).encode(x=alt.X("start:T", title="period start (UTC)"),
                                  color=alt.Color("customer:N", title=None, sort=None))
    usage = base.mark_line(point=True).encode(
        y=alt.Y("usage:Q", title=title),
        tooltip=[alt.Tooltip("customer:N"), alt.Tooltip("start:T"), alt.Tooltip("usage_text:N", title="usage")])
    if "available" not in df.columns or df["available"].isna().all():
        return usage.properties(height=280)
    data["available"] = _floats(df["available"].where(df["available"].notna(), None))
    available = alt.Chart(data).mark_line(strokeDash=[4, 3]).encode(
        x="start:T", y="available:Q", color=alt.Color("customer:N", sort=None),
        tooltip=[alt.Tooltip("customer:N"), alt.Tooltip("available:Q")])
    return alt.layer(usage, available).properties(height=280)


def plan_months(df: pd.DataFrame, *, currency: str, plans: Sequence[str]) -> Any:
    """Revenue per `month` (YYYY-MM) per `plan` (baseline first); `total` holds Decimals."""
    alt = _alt()
    df = _checked(df)
    data = pd.DataFrame({"month": _texts(df["month"]), "plan": _texts(df["plan"]),
                         "total": _floats(df["total"]), "text": _texts(df["total"])})
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("month:O", title="month"),
            y=alt.Y("total:Q", title=f"revenue ({currency})"),
            color=alt.Color("plan:N", sort=list(plans), title=None),
            tooltip=[alt.Tooltip("plan:N"), alt.Tooltip("month:O"), alt.Tooltip("text:N", title=currency)],
        )
        .properties(height=280)
    )
