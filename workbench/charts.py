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
