"""Chart builders of the Backtest page: altair charts with the expected data and encodings."""

from __future__ import annotations

from decimal import Decimal as D

import altair as alt
import pandas as pd

from workbench import backtest_charts as charts


def datasets(chart: alt.TopLevelMixin) -> tuple[dict, list[dict]]:
    d = chart.to_dict()
    (data,) = d["datasets"].values()
    return d, data


def test_revenue_by_month_is_one_line_per_plan_in_plan_order() -> None:
    df = pd.DataFrame({
        "month": ["2026-10", "2026-11", "2026-10", "2026-11"],
        "plan": ["Starter", "Starter", "Growth", "Growth"],
        "total": [D("10.50"), D("12"), D("20.25"), D("1E+1")],
        "total_text": ["$10.50", "$12.00", "$20.25", "$10.00"],
    })
    d, data = datasets(charts.revenue_by_month_chart(df, currency="USD", plans=["Starter", "Growth"]))
    assert d["mark"]["type"] == "line"
    assert d["encoding"]["x"]["field"] == "month" and d["encoding"]["x"]["sort"] == ["2026-10", "2026-11"]
    assert d["encoding"]["color"]["scale"]["domain"] == ["Starter", "Growth"]
    assert d["encoding"]["y"]["title"] == "Revenue (USD)"
    assert [r["total"] for r in data] == [10.5, 12.0, 20.25, 10.0]
    assert [r["total_text"] for r in data] == ["$10.50", "$12.00", "$20.25", "$10.00"]


def test_revenue_by_line_bars_side_by_side_per_plan_with_negative_credit() -> None:
    df = pd.DataFrame({
        "line": ["Base fee", "API calls", "Included credit", "Base fee"],
        "kind": ["base fee", "usage", "credit", "base fee"],
        "plan": ["A", "A", "A", "B"],
        "amount": [D(49), D("12.34"), D(-10), D(99)],
    })
    d, data = datasets(charts.revenue_by_line_chart(df, currency="EUR", plans=["A", "B"]))
    assert d["mark"]["type"] == "bar"
    assert d["encoding"]["yOffset"]["field"] == "plan" and d["encoding"]["yOffset"]["sort"] == ["A", "B"]
    assert d["encoding"]["y"]["sort"] == ["Base fee · base fee", "API calls · usage", "Included credit · credit"]
    assert [r["amount"] for r in data] == [49.0, 12.34, -10.0, 99.0]
    assert data[2]["amount_text"] == "-10"


def test_histogram_bins_and_guardrail_rule() -> None:
    df = pd.DataFrame({"lo": [D(-10), D(0), D(10)], "hi": [D(0), D(10), D(20)], "count": [2, 0, 5]})
    chart = charts.change_histogram_chart(df, guardrail=15.0)
    assert isinstance(chart, alt.LayerChart)
    d = chart.to_dict()
    bars, rule = d["layer"]
    assert bars["mark"]["type"] == "bar" and rule["mark"]["type"] == "rule"
    assert bars["encoding"]["x"]["bin"] == "binned" and bars["encoding"]["x2"]["field"] == "hi"
    sets = list(d["datasets"].values())
    bins = next(s for s in sets if "count" in s[0])
    assert [(b["lo"], b["hi"], b["count"], b["range"]) for b in bins] == [
        (-10.0, 0.0, 2, "-10 % to 0 %"), (0.0, 10.0, 0, "0 % to +10 %"), (10.0, 20.0, 5, "+10 % to +20 %")]
    assert next(s for s in sets if "guardrail" in s[0]) == [{"guardrail": 15.0}]
    plain = charts.change_histogram_chart(df)
    assert plain.to_dict()["mark"]["type"] == "bar"
