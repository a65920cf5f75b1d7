"""Chart builders of the Timeline and Invoices pages: altair charts with the expected data and encodings."""

from __future__ import annotations

from decimal import Decimal as D

import altair as alt
import pandas as pd

from workbench import charts


def datasets(chart: alt.TopLevelMixin) -> tuple[dict, list[dict]]:
    d = chart.to_dict()
    (data,) = d["datasets"].values()
    return d, data


def test_timeline_chart_bars_of_usage_and_a_line_of_available() -> None:
    df = pd.DataFrame({
        "period": ["2026-10", "2026-11", "2026-12"],
        "usage": [D(700), D(900), D("450.5")],
        "usage_text": ["700", "900", "450.5"],
        "available": [D(1000), D(1300), D(1400)],
        "available_text": ["1,000", "1,300", "1,400"],
        "amount_text": ["$0.00", "$0.00", "$0.00"],
    })
    chart = charts.timeline_chart(df, unit="sms")
    assert isinstance(chart, alt.LayerChart)
    d, data = datasets(chart)
    bars, line = d["layer"]
    assert bars["mark"]["type"] == "bar" and line["mark"]["type"] == "line"
    assert bars["transform"] == [{"filter": "(datum.series === 'Usage')"}]
    assert line["transform"] == [{"filter": "(datum.series === 'Available')"}]
    enc = d["encoding"] if "encoding" in d else bars["encoding"]
    assert enc["x"]["field"] == "period" and enc["x"]["sort"] == ["2026-10", "2026-11", "2026-12"]
    assert enc["y"]["field"] == "value" and enc["y"]["title"] == "sms"
    assert enc["color"]["scale"]["domain"] == ["Usage", "Available"]
    usage = [r for r in data if r["series"] == "Usage"]
    available = [r for r in data if r["series"] == "Available"]
    assert [r["value"] for r in usage] == [700.0, 900.0, 450.5]
    assert [r["value_text"] for r in usage] == ["700", "900", "450.5"]  # exact text in the tooltip
    assert [r["value"] for r in available] == [1000.0, 1300.0, 1400.0]
    assert [r["value_text"] for r in available] == ["1,000", "1,300", "1,400"]
    assert {t["field"] for t in enc["tooltip"]} == {"period", "series", "value_text", "amount_text"}


def test_timeline_chart_without_quota_is_bars_only() -> None:
    df = pd.DataFrame({"period": ["a", "b"], "usage": [D(1), D(3)], "available": [None, None]})
    chart = charts.timeline_chart(df, unit="GB")
    assert isinstance(chart, alt.Chart)
    d, data = datasets(chart)
    assert d["mark"]["type"] == "bar"
    assert [r["series"] for r in data] == ["Usage", "Usage"]
    assert [r["value_text"] for r in data] == ["1", "3"]
    assert d["encoding"]["color"]["scale"]["domain"] == ["Usage"]


def test_revenue_chart_sorted_largest_first_with_kinds() -> None:
    df = pd.DataFrame({
        "line": ["Base fee", "API Requests", "Seats"],
        "kind": ["base fee", "usage", "fixed charge"],
        "amount": [D("49.00"), D("130.25"), D("45.00")],
        "amount_text": ["$49.00", "$130.25", "$45.00"],
    })
    d, data = datasets(charts.revenue_chart(df, currency="USD"))
    assert d["mark"]["type"] == "bar"
    enc = d["encoding"]
    assert enc["y"]["field"] == "line" and enc["y"]["sort"] == ["API Requests", "Base fee", "Seats"]
    assert enc["x"]["field"] == "amount" and enc["x"]["title"] == "Revenue (USD)"
    assert enc["color"]["field"] == "kind"
    assert [(r["line"], r["amount"], r["amount_text"]) for r in data] == [
        ("Base fee", 49.0, "$49.00"), ("API Requests", 130.25, "$130.25"), ("Seats", 45.0, "$45.00")]


def test_plan_comparison_chart_groups_plans_per_customer() -> None:
    df = pd.DataFrame({
        "customer_id": ["acme", "acme", "beta", "beta"],
        "plan": ["starter", "growth", "starter", "growth"],
        "total": [D("94.00"), D("319.00"), D("120.50"), D("330.10")],
        "total_text": ["$94.00", "$319.00", "$120.50", "$330.10"],
        "difference_text": ["$0.00", "+$225.00", "$0.00", "+$209.60"],
    })
    d, data = datasets(charts.plan_comparison_chart(df, currency="USD", plans=["starter", "growth"]))
    enc = d["encoding"]
    assert d["mark"]["type"] == "bar"
    assert enc["x"]["field"] == "customer_id" and enc["xOffset"]["field"] == "plan"
    assert enc["xOffset"]["sort"] == ["starter", "growth"] and enc["color"]["sort"] == ["starter", "growth"]
    assert enc["y"]["field"] == "total"
    assert [r["total"] for r in data] == [94.0, 319.0, 120.5, 330.1]
    assert {t["field"] for t in enc["tooltip"]} == {"customer_id", "plan", "total_text", "difference_text"}
