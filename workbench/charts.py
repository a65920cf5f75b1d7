"""Chart builders for the app: independent pure functions, DataFrame in → Altair chart out.

No Streamlit and no engine calls here: each function only shapes the data it is given, so
pages can test and reuse them. Exact figures belong in tables; charts take float columns.
"""

from __future__ import annotations

import altair as alt
import pandas as pd


def group_bars(
    df: pd.DataFrame,
    *,
    label: str = "group",
    value: str = "value_number",
    value_text: str = "value",
    events: str = "events",
    title: str = "value",
    color: str = "#1c83e1",
) -> alt.Chart:
    """Horizontal bars of a metric's groups, largest first (the editor's group breakdown).

    `df` has one row per group: `label` (text), `value` (float, bar length), and optionally
    `value_text` (the exact figure, shown in the tooltip) and `events`.
    """
    tooltip = [alt.Tooltip(f"{label}:N", title="group")]
    if value_text in df.columns:
        tooltip.append(alt.Tooltip(f"{value_text}:N", title=title))
    if events in df.columns:
        tooltip.append(alt.Tooltip(f"{events}:Q", title="events", format=","))
    height = 32 * max(len(df), 1) + 40  # bars plus the axis and its title
    return (
        alt.Chart(df)
        .mark_bar(color=color, cornerRadiusEnd=3)
        .encode(
            x=alt.X(f"{value}:Q", title=title, axis=alt.Axis(format="~s")),
            y=alt.Y(f"{label}:N", sort="-x", title=None, axis=alt.Axis(labelLimit=220)),
            tooltip=tooltip,
        )
        .properties(height=height)
    )


# --------------------------------------------------------------------------- events & usage pages
# Days are UTC calendar days; the x axes read them as UTC so a browser in another timezone does
# not shift the bars. Exact Decimal values are plotted as floats and shown exactly in tooltips.


def _utc_days(days: pd.Series) -> pd.Series:
    return pd.to_datetime(pd.Series(days).astype(str), utc=True).dt.strftime("%Y-%m-%dT00:00:00Z")


def _day_axis(title: str = "Day (UTC)") -> alt.X:
    return alt.X("day:T", title=title, timeUnit="utcyearmonthdate", axis=alt.Axis(format="%b %d", labelAngle=0))


def daily_volume_chart(df: pd.DataFrame, *, height: int = 180) -> alt.Chart:
    """Events per UTC day (columns `day`, `events`; optional `event_name` stacks the streams)."""
    data = pd.DataFrame({"day": _utc_days(df["day"]), "events": df["events"].astype("int64")})
    tooltip = [alt.Tooltip("day:T", title="Day (UTC)", timeUnit="utcyearmonthdate"), alt.Tooltip("events:Q", title="Events", format=",")]
    encoding: dict = {"x": _day_axis(), "y": alt.Y("events:Q", title="Events"), "tooltip": tooltip}
    if "event_name" in df.columns:
        data["event_name"] = df["event_name"].astype(str).to_numpy()
        encoding["color"] = alt.Color("event_name:N", title="Event")
        encoding["tooltip"] = [alt.Tooltip("event_name:N", title="Event"), *tooltip]
    return alt.Chart(data).mark_bar().encode(**encoding).properties(height=height)


def daily_usage_chart(df: pd.DataFrame, *, unit: str, stacked: bool = True, height: int = 300) -> alt.Chart:
    """Usage per UTC day from `usage_series.daily_usage` (columns `day`, `value`, `events`, and
    `group` when split). Bars; split by group they stack when the aggregation adds up
    (`stacked`), else one line per group (a sum of maxima would mean nothing)."""
    data = pd.DataFrame({
        "day": _utc_days(df["day"]),
        "value": [float(v) for v in df["value"]],
        "value_text": [str(v) for v in df["value"]],
        "events": df["events"].astype("int64").to_numpy(),
    })
    tooltip = [
        alt.Tooltip("day:T", title="Day (UTC)", timeUnit="utcyearmonthdate"),
        alt.Tooltip("value_text:N", title=unit or "Usage"),
        alt.Tooltip("events:Q", title="Events", format=","),
    ]
    y = alt.Y("value:Q", title=unit or "Usage", stack="zero" if stacked else None)
    if "group" in df.columns:
        data["group"] = df["group"].astype(str).to_numpy()
        color = alt.Color("group:N", title="Group")
        tooltip = [alt.Tooltip("group:N", title="Group"), *tooltip]
        mark = alt.Chart(data).mark_bar() if stacked else alt.Chart(data).mark_line(point=True)
        return mark.encode(x=_day_axis(), y=y, color=color, tooltip=tooltip).properties(height=height)
    return alt.Chart(data).mark_bar().encode(x=_day_axis(), y=y, tooltip=tooltip).properties(height=height)


def top_customers_chart(df: pd.DataFrame, *, unit: str, height: int | None = None) -> alt.Chart:
    """Horizontal bars of usage per customer (columns `customer_id`, `value`), largest on top."""
    data = pd.DataFrame({
        "customer_id": df["customer_id"].astype(str).to_numpy(),
        "value": [float(v) for v in df["value"]],
        "value_text": [str(v) for v in df["value"]],
    })
    order = data.sort_values("value", ascending=False, kind="stable")["customer_id"].tolist()
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("value:Q", title=unit or "Usage"),
            y=alt.Y("customer_id:N", title="Customer", sort=order),
            tooltip=[alt.Tooltip("customer_id:N", title="Customer"), alt.Tooltip("value_text:N", title=unit or "Usage")],
        )
        .properties(height=height or alt.Step(24))
    )


# --------------------------------------------------------------------------- billing pages
# Money and usage arrive as exact Decimals; bars and lines take floats, tooltips the exact text.

USAGE_COLOR = "#1c83e1"
AVAILABLE_COLOR = "#ff8c1a"


def _floats(values: pd.Series) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and v != v) else float(v) for v in values]


def _texts(values: pd.Series) -> list[str]:
    return ["—" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values]


def timeline_chart(df: pd.DataFrame, *, unit: str, height: int = 300) -> alt.LayerChart | alt.Chart:
    """A metric's timeline, one x position per billing period (in the frame's order).

    `df` columns: `period` (label), `usage` (Decimal), and optionally `available` (Decimal or
    None: the quota of limit types), `usage_text` / `available_text` (exact texts for the
    tooltip) and `amount_text`. Bars show usage; a line with points shows the available quota
    when any period has one. The chart data is long: one row per (period, series), series
    `Usage` or `Available`, with `value` (float) and `value_text` (exact).
    """
    order = df["period"].astype(str).tolist()
    usage_text = df["usage_text"].tolist() if "usage_text" in df.columns else _texts(df["usage"])
    amount_text = df["amount_text"].tolist() if "amount_text" in df.columns else ["—"] * len(df)
    rows = [
        {"period": p, "series": "Usage", "value": v, "value_text": t, "amount_text": a}
        for p, v, t, a in zip(order, _floats(df["usage"]), usage_text, amount_text)
    ]
    has_available = "available" in df.columns and any(v is not None for v in _floats(df["available"]))
    if has_available:
        available_text = df["available_text"].tolist() if "available_text" in df.columns else _texts(df["available"])
        rows += [
            {"period": p, "series": "Available", "value": v, "value_text": t, "amount_text": a}
            for p, v, t, a in zip(order, _floats(df["available"]), available_text, amount_text)
            if v is not None
        ]
    data = pd.DataFrame(rows, columns=["period", "series", "value", "value_text", "amount_text"])
    names = ["Usage", "Available"] if has_available else ["Usage"]
    color = alt.Color(
        "series:N", title=None, legend=alt.Legend(orient="top"),
        scale=alt.Scale(domain=names, range=[USAGE_COLOR, AVAILABLE_COLOR][: len(names)]),
    )
    tooltip = [
        alt.Tooltip("period:N", title="Period"),
        alt.Tooltip("series:N", title="Series"),
        alt.Tooltip("value_text:N", title=unit or "Value"),
        alt.Tooltip("amount_text:N", title="Amount"),
    ]
    x = alt.X("period:N", sort=order, title="Billing period", axis=alt.Axis(labelAngle=0))
    y = alt.Y("value:Q", title=unit or "Usage")
    base = alt.Chart(data).encode(x=x, y=y, color=color, tooltip=tooltip)
    bars = base.transform_filter(alt.datum.series == "Usage").mark_bar(cornerRadiusEnd=3, opacity=0.9)
    if not has_available:
        return bars.properties(height=height)
    line = base.transform_filter(alt.datum.series == "Available").mark_line(
        point=alt.OverlayMarkDef(size=70, filled=True), strokeWidth=3
    )
    return alt.layer(bars, line).properties(height=height)


def revenue_chart(df: pd.DataFrame, *, currency: str, height: int | None = None) -> alt.Chart:
    """Horizontal bars of revenue per invoice line (a metric, the base fee, a fixed charge),
    largest on top. `df` columns: `line`, `amount` (Decimal), `amount_text`; optional `kind`
    (usage / base fee / fixed charge / overage) colours the bars."""
    data = pd.DataFrame({
        "line": df["line"].astype(str).to_numpy(),
        "amount": _floats(df["amount"]),
        "amount_text": df["amount_text"].astype(str).to_numpy() if "amount_text" in df.columns else _texts(df["amount"]),
    })
    order = data.sort_values("amount", ascending=False, kind="stable")["line"].tolist()
    tooltip = [alt.Tooltip("line:N", title="Line"), alt.Tooltip("amount_text:N", title=f"Revenue ({currency})")]
    encoding: dict = {
        "x": alt.X("amount:Q", title=f"Revenue ({currency})"),
        "y": alt.Y("line:N", title=None, sort=order, axis=alt.Axis(labelLimit=220)),
        "tooltip": tooltip,
    }
    if "kind" in df.columns:
        data["kind"] = df["kind"].astype(str).to_numpy()
        encoding["color"] = alt.Color("kind:N", title=None, legend=alt.Legend(orient="bottom", direction="horizontal", columns=2, labelLimit=0))
        encoding["tooltip"] = [*tooltip, alt.Tooltip("kind:N", title="Kind")]
    return alt.Chart(data).mark_bar(cornerRadiusEnd=3).encode(**encoding).properties(height=height or alt.Step(26))


def plan_comparison_chart(df: pd.DataFrame, *, currency: str, plans: list[str], height: int = 320) -> alt.Chart:
    """Grouped bars: each customer's invoice total under each plan (same usage).

    `df` is long: one row per (customer_id, plan) with `total` (Decimal) and optionally
    `total_text` and `difference_text` (against the baseline, for the tooltip). `plans` gives
    the order of the bars within a group (baseline first).
    """
    data = pd.DataFrame({
        "customer_id": df["customer_id"].astype(str).to_numpy(),
        "plan": df["plan"].astype(str).to_numpy(),
        "total": _floats(df["total"]),
        "total_text": df["total_text"].astype(str).to_numpy() if "total_text" in df.columns else _texts(df["total"]),
    })
    tooltip = [alt.Tooltip("customer_id:N", title="Customer"), alt.Tooltip("plan:N", title="Plan"),
               alt.Tooltip("total_text:N", title=f"Total ({currency})")]
    if "difference_text" in df.columns:
        data["difference_text"] = df["difference_text"].astype(str).to_numpy()
        tooltip.append(alt.Tooltip("difference_text:N", title="vs baseline"))
    return (
        alt.Chart(data)
        .mark_bar(cornerRadiusEnd=2)
        .encode(
            x=alt.X("customer_id:N", title="Customer", axis=alt.Axis(labelAngle=-30)),
            xOffset=alt.XOffset("plan:N", sort=plans),
            y=alt.Y("total:Q", title=f"Invoice total ({currency})"),
            color=alt.Color("plan:N", title="Plan", sort=plans, legend=alt.Legend(orient="top")),
            tooltip=tooltip,
        )
        .properties(height=height)
    )
