"""Plan comparison (shadow billing): the same usage under several plans, per customer and in
total, with the difference against the first (baseline) plan."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from metering import compare, ingest, invoices
from metering.frame import EventFrame
from metering.workspace import parse_workspace

D = Decimal
UTC = timezone.utc


def frame_of(counts: dict[str, int]) -> EventFrame:
    rows = []
    for customer, n in counts.items():
        for i in range(n):
            rows.append({"event_name": "api", "customer_id": customer, "idempotency_key": f"{customer}{i}",
                         "timestamp": int(datetime(2026, 10, 2, tzinfo=UTC).timestamp()) + i})
    parsed = ingest.parse_jsonl("".join(json.dumps(r) + "\n" for r in rows))
    assert parsed.errors == []
    return EventFrame.from_parsed(parsed)


def workspace(extra_plans: list[dict[str, Any]] | None = None, subscriptions: list[dict[str, Any]] | None = None) -> Any:
    return parse_workspace({
        "metrics": [{"name": "API calls", "code": "api", "unit": "calls", "event_name": "api"}],
        "plans": [
            {"code": "current", "name": "Current", "currency": "USD", "base_fee": "10",
             "charges": [{"metric": "api", "model": "standard", "free_units": 1000, "unit_price": "0.02"}]},
            {"code": "payg", "name": "Pay as you go", "currency": "USD",
             "charges": [{"metric": "api", "model": "standard", "unit_price": "0.10"}]},
            {"code": "bundle", "name": "Bundle", "currency": "USD",
             "charges": [{"metric": "api", "model": "package", "package_size": 1000, "package_price": "15"}]},
            *(extra_plans or []),
        ],
        "subscriptions": subscriptions or [],
    })


def test_compare_per_customer_and_in_total_against_the_baseline() -> None:
    frame = frame_of({"a": 2500, "b": 500})
    ws = workspace()
    result = compare.compare_plans(frame, ws.metrics, [ws.plan("current"), ws.plan("payg"), ws.plan("bundle")], month=(2026, 10))
    assert result.baseline == "current" and result.plans == ["current", "payg", "bundle"]
    a, b = result.customers
    # a: current 10 + 1500×0.02 = 40; payg 2500×0.10 = 250; bundle 3×15 = 45
    assert (a.customer_id, a.totals) == ("a", {"current": D("40.00"), "payg": D("250.00"), "bundle": D("45.00")})
    assert a.differences == {"current": D("0.00"), "payg": D("210.00"), "bundle": D("5.00")}
    # b: current 10; payg 50; bundle 15
    assert b.totals == {"current": D("10.00"), "payg": D("50.00"), "bundle": D("15.00")}
    assert result.totals == {"current": D("50.00"), "payg": D("300.00"), "bundle": D("60.00")}
    assert result.differences == {"current": D("0.00"), "payg": D("250.00"), "bundle": D("10.00")}
    assert a.invoices["payg"].lines[0].amount == D("250.00")
    body = result.to_json()
    assert body["totals"] == {"current": "50.00", "payg": "300.00", "bundle": "60.00"}
    assert body["customers"][0]["differences"]["payg"] == "210.00"
    json.dumps(body)  # plain data


def test_comparison_matches_what_if_invoices() -> None:
    frame = frame_of({"a": 1234, "b": 77, "c": 4000})
    ws = workspace()
    result = compare.compare_plans(frame, ws.metrics, [ws.plan("payg"), ws.plan("bundle")], month=(2026, 10))
    for code in ("payg", "bundle"):
        expected = {i.customer_id: i.total for i in invoices.run(frame, ws, plan_code=code, month=(2026, 10))}
        assert {c.customer_id: c.totals[code] for c in result.customers} == expected


def test_dataframe_helper() -> None:
    frame = frame_of({"a": 2500, "b": 500})
    ws = workspace()
    df = compare.comparison_frame(compare.compare_plans(frame, ws.metrics, [ws.plan("current"), ws.plan("payg")], month=(2026, 10)))
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["customer_id", "current", "payg", "payg vs current"]
    assert df["payg vs current"].tolist() == [D("210.00"), D("40.00")]
    assert all(isinstance(v, Decimal) for v in df["current"])  # exact, never float


def test_customer_filter_and_subscription_anchor() -> None:
    frame = frame_of({"a": 2500, "b": 500})
    ws = workspace(subscriptions=[{"customer_id": "b", "plan": "payg", "start": "2026-10-20"}])
    result = compare.compare_plans(frame, ws.metrics, [ws.plan("current"), ws.plan("payg")],
                                   subscriptions=ws.subscriptions, month=(2026, 10))
    b = next(c for c in result.customers if c.customer_id == "b")
    # b's periods start on the 20th: its October events (on the 2nd) are before its first period
    assert b.totals == {"current": D("10.00"), "payg": D("0.00")}
    only = compare.compare_plans(frame, ws.metrics, [ws.plan("current"), ws.plan("payg")], month=(2026, 10), customer_ids=["a"])
    assert [c.customer_id for c in only.customers] == ["a"]


def test_plans_that_cannot_be_compared() -> None:
    frame = frame_of({"a": 1})
    ws = workspace([
        {"code": "euro", "name": "Euro", "currency": "EUR"},
        {"code": "yearly", "name": "Yearly", "currency": "USD", "interval": "year"},
    ])
    with pytest.raises(compare.ComparisonError, match="at least two"):
        compare.compare_plans(frame, ws.metrics, [ws.plan("current")], month=(2026, 10))
    with pytest.raises(compare.ComparisonError, match="share a currency"):
        compare.compare_plans(frame, ws.metrics, [ws.plan("current"), ws.plan("euro")], month=(2026, 10))
    with pytest.raises(compare.ComparisonError, match="share a billing interval"):
        compare.compare_plans(frame, ws.metrics, [ws.plan("current"), ws.plan("yearly")], month=(2026, 10))
    with pytest.raises(compare.ComparisonError, match="only once"):
        compare.compare_plans(frame, ws.metrics, [ws.plan("current"), ws.plan("current")], month=(2026, 10))


def test_compatible_groups_put_where_the_customers_are_first() -> None:
    from metering.plans import Plan

    def plan(code: str, currency: str = "USD", interval: str = "month", fee: str = "0") -> Plan:
        return Plan.model_validate({"code": code, "name": code.title(), "currency": currency, "interval": interval,
                                    "base_fee": fee})

    plans = [plan("cheap_eur", "EUR", fee="1"), plan("a", fee="10"), plan("b", fee="20"), plan("w", interval="week"),
             plan("eur2", "EUR", fee="5"), plan("eur3", "EUR", fee="6")]
    subs = [{"customer_id": "c1", "plan": "a"}, {"customer_id": "c2", "plan": "b"}]
    groups = compare.compatible_groups(plans, subs)
    assert [(g.currency, g.interval, [p.code for p in g.plans], g.subscribers) for g in groups] == [
        ("USD", "month", ["a", "b"], 2), ("EUR", "month", ["cheap_eur", "eur2", "eur3"], 0), ("USD", "week", ["w"], 0)]
    assert groups[0].label == "USD · every month (2 plans)" and groups[2].label == "USD · every week (1 plan)"
    # without subscribers: the group with the most plans
    assert [g.currency for g in compare.compatible_groups(plans)][:1] == ["EUR"]
