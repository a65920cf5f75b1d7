"""Chart builders of the Events and Usage pages: altair charts with the expected data and encodings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import altair as alt
import pandas as pd

from workbench import charts


def spec(chart: alt.Chart) -> tuple[dict, list[dict]]:
    d = chart.to_dict()
    (data,) = d["datasets"].values()
    return d, data


def test_daily_usage_chart_single_series():
    df = pd.DataFrame({
        "day": [date(2026, 10, 1), date(2026, 10, 2)],
        "value": [Decimal("0.3"), Decimal("12345678901234567890.123456789")],
        "events": [2, 5],
        "skipped": [0, 1],
    })
    chart = charts.daily_usage_chart(df, unit="tokens", stacked=True)
    assert isinstance(chart, alt.Chart)
    d, data = spec(chart)
    assert d["mark"]["type"] == "bar"
    enc = d["encoding"]
    assert enc["x"]["field"] == "day" and enc["x"]["type"] == "temporal" and enc["x"]["timeUnit"] == "utcyearmonthdate"
    assert enc["y"]["field"] == "value" and enc["y"]["title"] == "tokens"
    assert "color" not in enc
    assert [r["day"] for r in data] == ["2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z"]
    assert [r["value"] for r in data] == [0.3, float(Decimal("12345678901234567890.123456789"))]
    # the exact figure travels in the tooltip
    assert [r["value_text"] for r in data] == ["0.3", "12345678901234567890.123456789"]
    assert [r["events"] for r in data] == [2, 5]
    assert {t["field"] for t in enc["tooltip"]} == {"day", "value_text", "events"}


def test_daily_usage_chart_split_stacks_additive_and_lines_otherwise():
    df = pd.DataFrame({
        "day": [date(2026, 10, 1)] * 2 + [date(2026, 10, 2)] * 2,
        "group": ["a", "null", "a", "null"],
        "value": [Decimal(1), Decimal(2), Decimal(3), Decimal(0)],
        "events": [1, 1, 2, 0],
        "skipped": [0, 0, 0, 0],
    })
    d, data = spec(charts.daily_usage_chart(df, unit="requests", stacked=True))
    assert d["mark"]["type"] == "bar"
    assert d["encoding"]["color"]["field"] == "group"
    assert d["encoding"]["y"]["stack"] == "zero"
    assert [(r["group"], r["value"]) for r in data] == [("a", 1.0), ("null", 2.0), ("a", 3.0), ("null", 0.0)]

    d, _ = spec(charts.daily_usage_chart(df, unit="GB", stacked=False))
    assert d["mark"]["type"] == "line" and d["mark"]["point"] is True
    assert d["encoding"]["color"]["field"] == "group"
    assert d["encoding"]["y"].get("stack") is None


def test_top_customers_chart_sorted_largest_first():
    df = pd.DataFrame({"customer_id": ["c2", "c1", "c3"], "value": [Decimal("5"), Decimal("10.5"), Decimal("1")]})
    chart = charts.top_customers_chart(df, unit="tokens")
    d, data = spec(chart)
    assert d["mark"]["type"] == "bar"
    assert d["encoding"]["x"]["field"] == "value" and d["encoding"]["x"]["type"] == "quantitative"
    assert d["encoding"]["y"]["field"] == "customer_id" and d["encoding"]["y"]["sort"] == ["c1", "c2", "c3"]
    assert {r["customer_id"]: r["value_text"] for r in data} == {"c2": "5", "c1": "10.5", "c3": "1"}


def test_daily_volume_chart():
    df = pd.DataFrame({
        "day": [date(2026, 10, 1), date(2026, 10, 1), date(2026, 10, 2)],
        "event_name": ["api.request", "llm.tokens", "api.request"],
        "events": [10, 4, 12],
    })
    d, data = spec(charts.daily_volume_chart(df))
    assert d["mark"]["type"] == "bar"
    assert d["encoding"]["y"]["field"] == "events" and d["encoding"]["color"]["field"] == "event_name"
    assert [(r["day"][:10], r["event_name"], r["events"]) for r in data] == [
        ("2026-10-01", "api.request", 10), ("2026-10-01", "llm.tokens", 4), ("2026-10-02", "api.request", 12),
    ]
    single = spec(charts.daily_volume_chart(df.drop(columns="event_name")))[0]
    assert "color" not in single["encoding"]


def test_empty_frames_still_make_charts():
    empty_daily = pd.DataFrame({"day": [], "value": [], "events": pd.Series([], dtype="int64"), "skipped": []})
    assert isinstance(charts.daily_usage_chart(empty_daily, unit="u"), alt.Chart)
    assert isinstance(charts.top_customers_chart(pd.DataFrame({"customer_id": [], "value": []}), unit="u"), alt.Chart)
    assert isinstance(charts.daily_volume_chart(pd.DataFrame({"day": [], "event_name": [], "events": []})), alt.Chart)
