"""The Usage page: one metric's usage over a window, by group, by day and by customer.

Every figure comes from the engine (`aggregation.aggregate`, `aggregate_by_customer` and
`usage_series.daily_usage` over the cached event frame); this module only lays them out.
Days and dates are UTC; the "To" date is inclusive (the window is [From 00:00, To + 1 day)).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import streamlit as st

from metering import aggregation, metrics, usage_series
from metering.aggregation import AggregateResult
from metering.engine.columns import to_us
from metering.engine.interface import Events
from metering.models import MetricPublic
from metering.usage_series import NULL_GROUP
from metering.values import decimal_str
from workbench import charts, downloads, state
from workbench.text import md, md_code

KEY = "usage:"
TOP_DEFAULT = 10


def fmt(value: Decimal) -> str:
    """An exact decimal with thousands separators: 1234567.5 → 1,234,567.5."""
    text = decimal_str(value)
    whole, dot, frac = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-')):,}{dot}{frac}"


def share(part: Decimal, total: Decimal) -> str:
    if total == 0:
        return "–"
    return f"{(part / total * 100):.1f} %"


def default_window(frame: Events, metric: MetricPublic, today: date | None = None) -> tuple[date, date]:
    """The UTC month of the metric's latest event up to today — never later: one event dated
    2099 must not take the page over — as (first day, last day) inclusive; the current month
    ends today (month to date). Without such an event, this month to date."""
    today = today or datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)
    days = usage_series.daily_usage(frame, metric, end=datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC),
                                    fill=False)
    latest = days["day"].iloc[-1] if len(days) else today
    first = latest.replace(day=1)
    if (latest.year, latest.month) == (today.year, today.month):
        return first, today
    start, end = usage_series.window_of_month(to_us(datetime(first.year, first.month, 1, tzinfo=UTC)))
    return start.date(), (end - timedelta(days=1)).date()


def window_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00 UTC, last + 1 day 00:00 UTC)."""
    end = last + timedelta(days=1)
    return datetime(first.year, first.month, first.day, tzinfo=UTC), datetime(end.year, end.month, end.day, tzinfo=UTC)


def groups_table(metric: MetricPublic, result: AggregateResult) -> pd.DataFrame:
    additive = usage_series.is_additive(metric)
    rows = []
    for g in result.groups:
        row = {path: (NULL_GROUP if value is None else value) for path, value in g.group.items()}
        row.update({"value": fmt(g.value), "events": g.events, "skipped": g.skipped})
        if additive:
            row["share"] = share(g.value, result.value)
        rows.append(row)
    columns = [*metric.group_by, "value", "events", "skipped", *(["share"] if additive else [])]
    return pd.DataFrame(rows, columns=columns)


def top_customers(metric: MetricPublic, by_customer: dict[str, AggregateResult], total: Decimal, n: int) -> pd.DataFrame:
    """The n customers with the largest value (ties: customer id), as a table."""
    ranked = sorted(by_customer.items(), key=lambda kv: (-kv[1].value, kv[0]))[:n]
    additive = usage_series.is_additive(metric)
    rows = []
    for customer, res in ranked:
        row = {"customer_id": customer, "value": res.value, "value_text": fmt(res.value), "events": res.events, "skipped": res.skipped}
        if additive:
            row["share"] = share(res.value, total)
        rows.append(row)
    return pd.DataFrame(rows, columns=["customer_id", "value", "value_text", "events", "skipped", *(["share"] if additive else [])])


@dataclass
class Selection:
    metric: MetricPublic
    first: date
    last: date
    customers: list[str] | None  # None = all

    @property
    def start(self) -> datetime:
        return window_bounds(self.first, self.last)[0]

    @property
    def end(self) -> datetime:
        return window_bounds(self.first, self.last)[1]


def _choose(frame: Events, available: list[MetricPublic]) -> Selection | None:
    by_code = {m.code: m for m in available}
    cols = st.columns([2.4, 1, 1])
    code = cols[0].selectbox(
        "Metric", list(by_code), key=KEY + "metric",
        format_func=lambda c: f"{by_code[c].name} ({c})",
    )
    metric = by_code[code]
    first_default, last_default = default_window(frame, metric)
    # Keyed by metric: choosing another metric starts from that metric's latest month.
    first = cols[1].date_input("From (UTC)", value=first_default, key=f"{KEY}from:{code}")
    last = cols[2].date_input("To (UTC)", value=last_default, key=f"{KEY}to:{code}", help="Inclusive: usage up to the end of this day.")
    options = frame.customer_ids()
    chosen = st.multiselect(
        "Customers", options, default=[], key=KEY + "customers", placeholder="All customers",
    )
    if first is None or last is None:
        st.warning("Pick both dates.")
        return None
    if last < first:
        st.warning("The To date is before the From date.")
        return None
    return Selection(metric, first, last, list(chosen) or None)



def _describe(metric: MetricPublic) -> str:
    """One line for a caption (Markdown): every property path and value is user text."""
    agg = metric.aggregation.value
    what = {"count": "count of", "unique_count": f"distinct {md_code(metric.distinct_by)} in"}.get(
        agg, f"{agg} of {md_code(metric.value_property)} in")
    filters = "; ".join(f"{md_code(k)} in {md(', '.join(v))}" for k, v in (metric.filters or {}).items())
    return f"{what} {md_code(metric.event_name)} events" + (f" where {filters}" if filters else "")


def render(engine) -> None:  # noqa: ANN001 - a SQLAlchemy engine
    available = metrics.list_metrics(engine)
    if not available:
        st.info("No metrics yet: create one on the Metric editor page to see its usage.")
        st.page_link("pages/editor.py", label="Metric editor", icon=":material/edit_note:")
        return
    frame = state.frame()
    selection = _choose(frame, available)
    if selection is None:
        return
    metric = selection.metric
    result = aggregation.aggregate(frame, metric, start=selection.start, end=selection.end, customer_ids=selection.customers)
    st.caption(
        f"{_describe(metric)}, {selection.first:%Y-%m-%d} to {selection.last:%Y-%m-%d} (UTC, inclusive)"
        + (f", {len(selection.customers)} customer(s)" if selection.customers else ", all customers")
    )
    cols = st.columns(3)
    cols[0].metric(f"{md(metric.name)} ({md(metric.unit)})", f"{fmt(result.value)} {md(metric.unit)}")
    cols[1].metric("Events", f"{result.events:,}")
    cols[2].metric("Skipped", f"{result.skipped:,}")
    for reason, n in result.skip_reasons.items():
        st.caption(f":orange[Skipped {n:,} event(s): {md(reason)}]")
    if result.events == 0:
        st.info("No matching events in this window: the usage is 0.")
        return

    if metric.group_by:
        st.subheader("By group")
        groups = groups_table(metric, result)
        if not groups["skipped"].any():
            groups = groups.drop(columns="skipped")
        downloads.csv_button("Groups (CSV)", groups, file_name=f"usage-{metric.code}-groups-{selection.first}_{selection.last}.csv",
                             key=KEY + "csv:groups")
        st.dataframe(groups, hide_index=True, key=KEY + "groups", column_config={
            "value": st.column_config.TextColumn(f"value ({metric.unit})", alignment="right"),
            "events": st.column_config.NumberColumn("events", format="localized"),
            "share": st.column_config.TextColumn("share", alignment="right"),
        })

    st.subheader("Per day")
    split_by = None
    if metric.group_by:
        if st.checkbox(f"Split by {md(metric.group_by[0])}", key=KEY + "split"):
            split_by = metric.group_by[0]
    daily = usage_series.daily_usage(
        frame, metric, start=selection.start, end=selection.end, customer_ids=selection.customers, split_by=split_by
    )
    st.altair_chart(
        charts.daily_usage_chart(daily, unit=metric.unit, stacked=usage_series.is_additive(metric)),
        key=KEY + "daily", width="stretch",
    )
    if not usage_series.is_additive(metric):
        st.caption(f"Each day shows the {metric.aggregation.value} over that day alone.")
    downloads.csv_button("Per day (CSV)", daily, file_name=f"usage-{metric.code}-daily-{selection.first}_{selection.last}.csv",
                         key=KEY + "csv:daily")

    st.subheader("Top customers")
    by_customer = aggregation.aggregate_by_customer(
        frame, metric, start=selection.start, end=selection.end, customer_ids=selection.customers
    )
    n = int(st.number_input(
        "Customers shown", min_value=1, max_value=max(1, len(by_customer)), value=min(TOP_DEFAULT, max(1, len(by_customer))),
        step=1, key=KEY + "top_n", width=180,
    ))
    top = top_customers(metric, by_customer, result.value, n)
    left, right = st.columns([1, 1])
    left.altair_chart(charts.top_customers_chart(top, unit=metric.unit), key=KEY + "top_chart", width="stretch")
    shown = top.drop(columns=["value"] + (["skipped"] if not top["skipped"].any() else []))
    right.dataframe(
        shown.rename(columns={"value_text": f"value ({metric.unit})"}), hide_index=True, key=KEY + "top",
        column_config={
            f"value ({metric.unit})": st.column_config.TextColumn(alignment="right"),
            "events": st.column_config.NumberColumn("events", format="localized"),
            "share": st.column_config.TextColumn("share", alignment="right"),
        },
    )
    st.caption(f"{len(by_customer):,} customer(s) with matching events in the window.")
    every = top_customers(metric, by_customer, result.value, len(by_customer)).drop(columns=["value"])
    downloads.csv_button("Every customer (CSV)", every.rename(columns={"value_text": "value"}),
                         file_name=f"usage-{metric.code}-customers-{selection.first}_{selection.last}.csv",
                         key=KEY + "csv:customers")
