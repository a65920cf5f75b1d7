"""Backtests (contract §7): the document's shape and numbers on worked examples, periods per
interval, refusals, reasons for each line's difference, guardrails, the distribution, movers,
revenue by line, CSV, drafts and the cache that makes a draft's edit cheap."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from metering import backtest, ingest, invoices
from metering.backtest import analysis, drafts, reasons
from metering.backtest.months import BacktestError, month_range, periods_in_month
from metering.billing import Schedule
from metering.frame import EventFrame
from metering.plans import Plan
from metering.workspace import parse_workspace

D = Decimal

METRICS = [
    {"name": "API calls", "code": "api", "unit": "calls", "event_name": "api", "aggregation": "count"},
    {"name": "Payments", "code": "pay", "unit": "USD", "event_name": "pay", "aggregation": "sum",
     "value_property": "amount"},
    {"name": "SMS", "code": "sms", "unit": "sms", "event_name": "sms", "aggregation": "count",
     "metric_type": "limit_recurring"},
]

BASE = {"code": "base", "name": "Base", "currency": "USD",
        "charges": [{"metric": "api", "model": "standard", "free_units": "1000", "unit_price": "0.02"}]}
PRO = {"code": "pro", "name": "Pro", "currency": "USD", "base_fee": "10",
       "charges": [{"metric": "api", "model": "standard", "unit_price": "0.01"}]}


def ws(*plans: dict[str, Any], subscriptions: list[dict[str, Any]] | None = None, tz: str = "UTC") -> Any:
    return parse_workspace({"timezone": tz, "metrics": METRICS, "plans": list(plans), "subscriptions": subscriptions or []})


def at(month: int, day: int = 3, second: int = 0, year: int = 2026) -> str:
    moment = datetime(year, month, day, 12, tzinfo=UTC) + timedelta(seconds=second)
    return moment.isoformat().replace("+00:00", "Z")


def frame_of(events: list[dict[str, Any]]) -> EventFrame:
    lines = "".join(json.dumps({"idempotency_key": f"k{i}", **e}) + "\n" for i, e in enumerate(events))
    parsed = ingest.parse_jsonl(lines)
    assert parsed.errors == []
    return EventFrame.from_parsed(parsed)


def calls(customer: str, month: int, n: int, year: int = 2026) -> list[dict[str, Any]]:
    return [{"event_name": "api", "customer_id": customer, "timestamp": at(month, 1 + i % 27, i // 27, year)}
            for i in range(n)]


# --- the document ---------------------------------------------------------------------------


def test_worked_example_document_shape_and_numbers() -> None:
    # acme: 2,500 calls in October (1,000 free at $0.02 → $30.00; Pro: $10 + $25 = $35.00),
    #       500 in November (base $0.00; Pro $15.00); bob: 100 calls in November only
    frame = frame_of(calls("acme", 10, 2500) + calls("acme", 11, 500) + calls("bob", 11, 100))
    bt = backtest.run_codes(frame, ws(BASE, PRO), ["base", "pro"], "2026-10", "2026-11")
    doc = bt.to_json()
    assert list(doc) == ["currency", "baseline", "months", "plans", "customers", "summary"]
    assert doc["currency"] == "USD" and doc["baseline"] == "base" and doc["months"] == ["2026-10", "2026-11"]
    assert doc["plans"] == [
        {"plan": "base", "total": "30.00", "months": [{"month": "2026-10", "total": "30.00"},
                                                     {"month": "2026-11", "total": "0.00"}]},
        {"plan": "pro", "total": "71.00", "months": [{"month": "2026-10", "total": "45.00"},
                                                    {"month": "2026-11", "total": "26.00"}]},
    ]
    # both anchored on 2026-10-01 (the default anchor): bob has an October invoice of 0 / $10
    assert doc["customers"] == [
        {"customer_id": "acme", "totals": {"base": "30.00", "pro": "50.00"}, "change": {"pro": "20.00"},
         "change_percent": {"pro": "66.67"}},
        {"customer_id": "bob", "totals": {"base": "0.00", "pro": "21.00"}, "change": {"pro": "21.00"},
         "change_percent": {"pro": None}},
    ]
    assert doc["summary"] == [{"plan": "pro", "total": "71.00", "change": "41.00", "change_percent": "136.67",
                               "customers_up": 2, "customers_down": 0, "customers_unchanged": 0}]
    # the same numbers as `metering invoice --plan P --period M`
    for code in ("base", "pro"):
        for i, month in enumerate([(2026, 10), (2026, 11)]):
            report = invoices.report(invoices.run(frame, ws(BASE, PRO), plan_code=code, month=month))
            assert doc["plans"][[p["plan"] for p in doc["plans"]].index(code)]["months"][i]["total"] == report["total"]


def test_change_percent_rounds_half_up_and_is_null_without_a_baseline() -> None:
    assert backtest.percent(D("1"), D("8")) == D("12.50")
    assert backtest.percent(D("1"), D("3")) == D("33.33")
    assert backtest.percent(D("2"), D("3")) == D("66.67")
    assert backtest.percent(D("-1"), D("3")) == D("-33.33")
    assert backtest.percent(D("0.00001"), D("1000")) == D("0.00")  # not "-0.00", not "1E-6"
    assert str(backtest.percent(D("-0.00001"), D("1000"))) == "0.00"
    assert backtest.percent(D("5"), D("0")) is None


def test_jpy_amounts_have_no_decimals_and_empty_months_say_zero() -> None:
    yen = [{**p, "currency": "JPY"} for p in (BASE, PRO)]
    frame = frame_of(calls("acme", 10, 1500))
    doc = backtest.run_codes(frame, ws(*yen), ["base", "pro"], "2026-10", "2026-12").to_json()
    assert doc["plans"][0]["months"] == [{"month": "2026-10", "total": "10"}, {"month": "2026-11", "total": "0"},
                                         {"month": "2026-12", "total": "0"}]


def test_customer_filter_and_customers_without_events() -> None:
    frame = frame_of(calls("acme", 10, 10) + calls("bob", 10, 10))
    workspace = ws(BASE, PRO, subscriptions=[{"customer_id": "quiet", "plan": "pro", "start": "2026-10-01"}])
    bt = backtest.run_codes(frame, workspace, ["base", "pro"], "2026-10", "2026-10", customer_ids=["bob", "quiet"])
    assert bt.customers == ("bob", "quiet")
    assert bt.customer_totals["pro"]["quiet"] == D("10.00")  # the base fee, as `invoice --customer quiet`
    with pytest.raises(BacktestError, match="'nobody' has no events and no subscription"):
        backtest.run_codes(frame, workspace, ["base", "pro"], "2026-10", "2026-10", customer_ids=["nobody"])


def test_a_subscription_starting_later_is_billed_from_its_start_only() -> None:
    frame = frame_of(calls("acme", 10, 10) + calls("late", 11, 10) + calls("later", 12, 5))
    workspace = ws(BASE, PRO, subscriptions=[{"customer_id": "late", "plan": "base", "start": "2026-11-01"},
                                             {"customer_id": "later", "plan": "base", "start": "2027-03-01"}])
    bt = backtest.run_codes(frame, workspace, ["base", "pro"], "2026-10", "2026-12")
    assert "later" not in bt.customers  # no period in the months: left out
    assert [len(c) for c in bt.invoices_of("pro", "late")] == [0, 1, 1]
    assert bt.customer_month_totals["pro"]["late"] == (D(0), D("10.10"), D("10.00"))
    rows = [r for r in bt.csv_rows() if r["customer_id"] == "late"]
    assert [r["month"] for r in rows] == ["2026-11", "2026-11", "2026-12", "2026-12"]


def test_limit_recurring_overage_carries_over_across_the_months_as_invoices_do() -> None:
    sms = lambda month, n: [{"event_name": "sms", "customer_id": "acme", "timestamp": at(month, 2, i)} for i in range(n)]  # noqa: E731
    frame = frame_of(sms(10, 700) + sms(11, 900) + sms(12, 1500))
    quota = {"metric": "sms", "limit": "1000", "overage_unit_price": "0.01"}
    plans = [{**BASE, "quotas": [quota]}, {**PRO, "quotas": [{**quota, "max_carryover": "100"}]}]
    workspace = ws(*plans)
    bt = backtest.run_codes(frame, workspace, ["base", "pro"], "2026-11", "2026-12")  # carryover from October
    for code in ("base", "pro"):
        for i, month in enumerate([(2026, 11), (2026, 12)]):
            (ref,) = invoices.run(frame, workspace, plan_code=code, month=month, customer_id="acme")
            (got,) = bt.invoices_of(code, "acme")[i]
            assert got.total == ref.total
    # base: Nov available 1,300 (used 900, carry 400) → Dec 1,400 → overage 100; pro: cap 100
    overage = lambda code, i: [l for l in bt.invoices_of(code, "acme")[i][0].lines if l.kind == "overage"][0]  # noqa: E731
    assert overage("base", 1).units == D(100) and overage("pro", 1).units == D(400)


# --- intervals ------------------------------------------------------------------------------


def test_weekly_plans_bill_every_week_starting_in_the_month() -> None:
    weekly = [{**p, "interval": "week"} for p in (BASE, PRO)]
    frame = frame_of(calls("acme", 10, 30) + calls("mid", 10, 30))
    workspace = ws(*weekly, subscriptions=[{"customer_id": "mid", "plan": "base", "start": "2026-10-15"}])
    bt = backtest.run_codes(frame, workspace, ["base", "pro"], "2026-10", "2026-10")
    starts = lambda cid: [inv.start.day for inv in bt.invoices_of("pro", cid)[0]]  # noqa: E731
    assert starts("acme") == [1, 8, 15, 22, 29]
    assert starts("mid") == [15, 22, 29]  # from the subscription start, not before
    assert bt.customer_month_totals["pro"]["mid"][0] == sum(
        (i.total for i in bt.invoices_of("pro", "mid")[0]), D(0))


def test_periods_in_month_for_each_interval() -> None:
    anchor = datetime(2026, 1, 31, tzinfo=UTC)
    monthly = Schedule(anchor, "month", "UTC")
    assert periods_in_month(monthly, (2026, 2)) == ((datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)),)
    yearly = Schedule(anchor, "year", "UTC")
    assert periods_in_month(yearly, (2026, 2)) == ()
    assert len(periods_in_month(yearly, (2027, 1))) == 1
    daily = Schedule(datetime(2026, 2, 10, tzinfo=UTC), "day", "UTC")
    assert len(periods_in_month(daily, (2026, 2))) == 19  # Feb 10 … Feb 28
    assert periods_in_month(daily, (2026, 1)) == ()  # before the anchor


# --- refusals -------------------------------------------------------------------------------


def test_plans_that_cannot_be_compared_are_refused_with_a_clear_message() -> None:
    frame = frame_of(calls("acme", 10, 10))
    eur = {**PRO, "code": "eur", "currency": "EUR"}
    weekly = {**PRO, "code": "weekly", "interval": "week"}
    workspace = ws(BASE, PRO, eur, weekly)
    with pytest.raises(BacktestError, match="plans must share a currency: 'base' bills in USD, 'eur' in EUR"):
        backtest.run_codes(frame, workspace, ["base", "eur"], "2026-10", "2026-10")
    with pytest.raises(BacktestError, match="plans must share a billing interval: 'base' bills every month, "
                                            "'weekly' every week"):
        backtest.run_codes(frame, workspace, ["base", "weekly"], "2026-10", "2026-10")
    with pytest.raises(BacktestError, match="at least 2 plans"):
        backtest.run_codes(frame, workspace, ["base"], "2026-10", "2026-10")
    with pytest.raises(BacktestError, match="listed twice"):
        backtest.run_codes(frame, workspace, ["base", "base"], "2026-10", "2026-10")
    many = [Plan.model_validate({**PRO, "code": f"p{i}"}) for i in range(7)]
    with pytest.raises(BacktestError, match="at most 6 plans"):
        backtest.run(frame, workspace, many, [(2026, 10)])
    with pytest.raises(BacktestError, match="plan 'nope' is not in the workspace"):
        backtest.run_codes(frame, workspace, ["base", "nope"], "2026-10", "2026-10")


def test_month_ranges() -> None:
    assert month_range("2026-11", "2027-02") == [(2026, 11), (2026, 12), (2027, 1), (2027, 2)]
    assert len(month_range("2025-01", "2026-12")) == 24
    with pytest.raises(BacktestError, match="at most 24 months: 2025-01 to 2027-01 is 25"):
        month_range("2025-01", "2027-01")
    with pytest.raises(BacktestError, match="--to 2026-09 is before --from 2026-10"):
        month_range("2026-10", "2026-09")
    with pytest.raises(BacktestError, match="--from: period '2026-1' is not a month"):
        month_range("2026-1", "2026-09")


# --- reasons --------------------------------------------------------------------------------


def _one_month(plans: list[dict[str, Any]], events: list[dict[str, Any]]) -> backtest.Backtest:
    return backtest.run_codes(frame_of(events), ws(*plans), [p["code"] for p in plans], "2026-10", "2026-10")


def _diff(bt: backtest.Backtest, code: str, description: str, cid: str = "acme") -> reasons.LineDiff:
    return next(d for d in reasons.customer_diffs(bt, cid, code, 0) if d.description == description)


def test_reasons_name_the_tier_that_differs() -> None:
    tiers = lambda p2: [{"up_to": "1000", "unit_price": "0.02"}, {"up_to": "5000", "unit_price": p2},  # noqa: E731
                        {"up_to": None, "unit_price": "0.005"}]
    a = {"code": "a", "name": "A", "currency": "USD", "charges": [{"metric": "api", "model": "graduated", "tiers": tiers("0.01")}]}
    b = {**a, "code": "b", "charges": [{"metric": "api", "model": "graduated", "tiers": tiers("0.015")}]}
    bt = _one_month([a, b], calls("acme", 10, 2500))
    d = _diff(bt, "b", "API calls")
    assert (d.baseline, d.candidate, d.difference) == (D("35.00"), D("42.50"), D("7.50"))
    assert [r.factor for r in d.reasons] == ["tier"]
    assert d.reasons[0].text == "tier 2 (1,000–5,000): 1,500 × $0.01 = $15.00 → 1,500 × $0.015 = $22.50"
    assert reasons.factors(reasons.customer_diffs(bt, "acme", "b", 0)) == ["tier"]


def test_reasons_for_free_units_entering_a_tier_and_a_volume_tier_switch() -> None:
    tiers = [{"up_to": "1000", "unit_price": "0.02"}, {"up_to": None, "unit_price": "0.01", "flat_fee": "5"}]
    a = {"code": "a", "name": "A", "currency": "USD", "charges": [{"metric": "api", "model": "graduated", "tiers": tiers}]}
    b = {**a, "code": "b", "charges": [{"metric": "api", "model": "graduated", "tiers": tiers, "free_units": "600"}]}
    c = {**a, "code": "c", "charges": [{"metric": "api", "model": "volume", "tiers": tiers}]}
    bt = _one_month([a, b, c], calls("acme", 10, 1500))
    d = _diff(bt, "b", "API calls")
    assert [r.factor for r in d.reasons] == ["free_units", "tier", "tier"]
    assert d.reasons[0].text == "free units 0 → 600: billable 1,500 → 900"
    assert d.reasons[1].text == "tier 1 (0–1,000): 1,000 × $0.02 = $20.00 → 900 × $0.02 = $18.00"
    assert d.reasons[2].text.startswith("tier 2 (above 1,000) is no longer entered (was 500 × $0.01 + $5.00 flat")
    d = _diff(bt, "c", "API calls")
    assert [r.factor for r in d.reasons] == ["model"]
    assert "graduated → volume" in d.reasons[0].text

    small = _one_month([{**c, "code": "v1"}, {**c, "code": "v2", "charges": [
        {"metric": "api", "model": "volume", "tiers": [{"up_to": "2000", "unit_price": "0.02"},
                                                        {"up_to": None, "unit_price": "0.01"}]}]}], calls("acme", 10, 1500))
    d = _diff(small, "v2", "API calls")
    assert d.reasons[0].text == ("every unit is priced by tier 1 (0–2,000) instead of tier 2 (above 1,000): "
                                 "1,500 × $0.01 + $5.00 flat = $20.00 → 1,500 × $0.02 = $30.00")


def test_reasons_for_fees_credit_quota_and_lines_of_one_plan_only() -> None:
    pay = [{"event_name": "pay", "customer_id": "acme", "timestamp": at(10, 2, i), "properties": {"amount": "100"}}
           for i in range(10)]
    sms = [{"event_name": "sms", "customer_id": "acme", "timestamp": at(10, 3, i)} for i in range(1500)]
    a = {"code": "a", "name": "A", "currency": "USD", "base_fee": "20", "included_credit": "5",
         "fixed_charges": [{"name": "Seats", "quantity": "3", "unit_price": "10"}],
         "charges": [{"metric": "pay", "model": "percentage", "rate": "2.9", "fixed_fee": "0.30"}],
         "quotas": [{"metric": "sms", "limit": "1000", "overage_unit_price": "0.02"}]}
    b = {"code": "b", "name": "B", "currency": "USD", "base_fee": "25", "included_credit": "1",
         "fixed_charges": [{"name": "Seats", "quantity": "3", "unit_price": "12"}, {"name": "Support", "unit_price": "50"}],
         "charges": [{"metric": "pay", "model": "percentage", "rate": "2.5", "fixed_fee": "0.25"},
                     {"metric": "api", "model": "standard", "unit_price": "0.1"}],
         "quotas": [{"metric": "sms", "limit": "1200", "overage_unit_price": "0.03"}]}
    bt = _one_month([a, b], pay + sms + calls("acme", 10, 10))
    diffs = {d.description: d for d in reasons.customer_diffs(bt, "acme", "b", 0)}
    assert diffs["Base fee"].reasons[0].text == "base fee $20.00 → $25.00"
    assert diffs["Seats"].reasons[0].text == "Seats: 3 × $10.00 → 3 × $12.00"
    assert diffs["Support"].baseline is None and diffs["Support"].reasons[0].factor == "only_candidate"
    assert diffs["API calls"].reasons[0].factor == "only_candidate"
    payments = [r.text for r in diffs["Payments"].reasons]
    assert payments == ["rate 2.9% → 2.5% of 1,000", "fee per event $0.30 → $0.25 × 10 events"]
    quota = diffs["SMS overage"].reasons
    assert [r.factor for r in quota] == ["quota", "overage_price"]
    assert quota[0].text == "quota limit 1,000 → 1,200; available 1,000 → 1,200 for usage 1,500: overage 500 → 300"
    credit = diffs["Included credit"]
    assert (credit.baseline, credit.candidate) == (D("-5.00"), D("-1.00"))
    assert credit.reasons[0].text == "included credit $5.00 → $1.00 (credit applied $5.00 → $1.00)"
    # every difference adds up to the change of the invoice's total
    (inv_a,), (inv_b,) = bt.invoices_of("a", "acme")[0], bt.invoices_of("b", "acme")[0]
    assert sum((d.difference for d in diffs.values()), D(0)) == inv_b.total - inv_a.total
    # lines that did not change have no reasons
    unchanged = _one_month([a, {**a, "code": "same"}], pay + sms)
    assert all(not d.reasons and not d.changed for d in reasons.customer_diffs(unchanged, "acme", "same", 0))


def test_credit_capped_by_usage_lines_says_so() -> None:
    a = {"code": "a", "name": "A", "currency": "USD", "included_credit": "100",
         "charges": [{"metric": "api", "model": "standard", "unit_price": "0.01"}]}
    b = {**a, "code": "b", "charges": [{"metric": "api", "model": "standard", "unit_price": "0.02"}]}
    bt = _one_month([a, b], calls("acme", 10, 1000))
    credit = _diff(bt, "b", "Included credit")
    assert "the credit covers at most the usage lines: $10.00 → $20.00" in credit.reasons[0].text
    assert bt.customer_totals["b"]["acme"] == bt.customer_totals["a"]["acme"] == D("0.00")


# --- analysis -------------------------------------------------------------------------------


def _spread() -> backtest.Backtest:
    # five customers, baseline $0.01 per call; candidate: $10 base fee + $0.01 per call
    frame = frame_of(calls("a", 10, 100) + calls("b", 10, 1000) + calls("c", 10, 2000) + calls("d", 10, 5000)
                     + [{"event_name": "pay", "customer_id": "z", "timestamp": at(10)}])
    base = {"code": "base", "name": "Base", "currency": "USD", "charges": [{"metric": "api", "model": "standard", "unit_price": "0.01"}]}
    cand = {**base, "code": "cand", "base_fee": "10"}
    return backtest.run_codes(frame, ws(base, cand), ["base", "cand"], "2026-10", "2026-10")


def test_distribution_median_p95_histogram_and_counts() -> None:
    bt = _spread()  # % changes: a 1000, b 100, c 50, d 20; z has no baseline bill (0 → $10)
    dist = analysis.distribution(bt, "cand")
    assert [p for _, p in dist.percents] == [D("20.00"), D("50.00"), D("100.00"), D("1000.00")]
    assert dist.no_baseline == ("z",)
    assert dist.median == D("75.00")  # mean of 50 and 100
    assert dist.p95 == D("1000.00")  # rank ⌈0.95 × 4⌉ = 4
    assert (dist.up, dist.down, dist.unchanged) == (5, 0, 0)
    assert sum(b.count for b in dist.bins) == 4 and len(dist.bins) <= analysis.MAX_BINS
    assert dist.bins[0].lo <= D(20) < dist.bins[0].hi and dist.bins[-1].lo <= D(1000) < dist.bins[-1].hi
    assert analysis.median([D(1), D(2), D(4)]) == D(2)
    assert analysis.nearest_rank([D(i) for i in range(1, 21)], 95) == D(19)


def test_guardrail_flags_customers_past_the_threshold() -> None:
    bt = _spread()
    rail = analysis.guardrail(bt, "cand", D(20))
    assert not rail.passed and rail.count == 4
    assert [m.customer_id for m in rail.flagged] == ["z", "a", "b", "c"]  # no baseline first, then largest %
    assert rail.flagged[0].change_percent is None
    assert analysis.guardrail(bt, "cand", D(50)).count == 3  # 50 % exactly is not past +50 %
    generous = analysis.guardrail(bt, "cand", D(5000))
    assert generous.count == 1 and generous.flagged[0].customer_id == "z"


def test_movers_both_ways() -> None:
    frame = frame_of(calls("a", 10, 100) + calls("b", 10, 5000) + calls("c", 10, 3000))
    base = {"code": "base", "name": "Base", "currency": "USD", "base_fee": "20",
            "charges": [{"metric": "api", "model": "standard", "unit_price": "0.01"}]}
    cand = {**base, "code": "cand", "base_fee": "0", "charges": [{"metric": "api", "model": "standard", "unit_price": "0.015"}]}
    bt = backtest.run_codes(frame, ws(base, cand), ["base", "cand"], "2026-10", "2026-10")
    up, down = analysis.movers(bt, "cand", n=5)
    assert [(m.customer_id, m.change) for m in up] == [("b", D("5.00"))]
    assert [(m.customer_id, m.change) for m in down] == [("a", D("-19.50")), ("c", D("-5.00"))]


def test_revenue_by_line_adds_up_to_each_plan_total() -> None:
    bt = backtest.run_codes(frame_of(calls("acme", 10, 2500) + calls("bob", 11, 700)),
                            ws({**BASE, "included_credit": "3"}, PRO), ["base", "pro"], "2026-10", "2026-11")
    lines = analysis.revenue_by_line(bt)
    for code in ("base", "pro"):
        mine = [r for r in lines if r.plan == code]
        assert sum((r.amount for r in mine), D(0)) == bt.totals[code]
    assert [(r.kind, r.line) for r in lines if r.plan == "base"] == [("usage", "API calls"), ("credit", "Included credit")]
    assert [(r.kind, r.line) for r in lines if r.plan == "pro"] == [("base_fee", "Base fee"), ("usage", "API calls")]


def test_csv_one_row_per_customer_month_plan_and_spreadsheet_safe() -> None:
    frame = frame_of(calls("=HYPERLINK(1)", 10, 1500) + calls("bob", 11, 10))
    bt = backtest.run_codes(frame, ws(BASE, PRO), ["base", "pro"], "2026-10", "2026-11")
    rows = list(csv.DictReader(io.StringIO(bt.to_csv())))
    assert len(rows) == 2 * 2 * 2
    first = rows[0]
    assert first["customer_id"] == "'=HYPERLINK(1)"
    assert (first["month"], first["plan"], first["baseline"], first["periods"]) == ("2026-10", "base", "base", "1")
    assert (first["total"], first["change"], first["change_percent"]) == ("10.00", "0.00", "0.00")
    pro = rows[1]
    assert (pro["plan"], pro["total"], pro["baseline_total"], pro["change"], pro["change_percent"]) == (
        "pro", "25.00", "10.00", "15.00", "150.00")


# --- drafts and the cache -------------------------------------------------------------------


def test_drafts_copy_validate_and_price_without_saving() -> None:
    plan = Plan.model_validate(PRO)
    data = drafts.duplicate(plan, ["base", "pro"])
    assert data["code"] == "pro_draft" and data["name"] == "Pro (draft)"
    assert drafts.draft_code("pro", ["pro_draft", "pro_draft_2"]) == "pro_draft_3"
    assert len(drafts.draft_code("x" * 64, [])) == 64
    types = {m["code"]: m.get("metric_type", "charge_metered") for m in METRICS}
    data["charges"][0]["unit_price"] = "-1"
    errors = drafts.draft_errors(data, types, ["base", "pro"])
    assert errors == [("charges.0.unit_price", "unit_price must be 0 or more")]
    data["charges"][0]["unit_price"] = "0.005"
    assert drafts.draft_errors({**data, "code": "base"}, types, ["base", "pro"]) == [
        ("code", "a plan with code 'base' already exists")]
    draft = drafts.draft_plan(data, types, ["base", "pro"])
    frame = frame_of(calls("acme", 10, 2000))
    bt = backtest.run(frame, ws(BASE, PRO), [Plan.model_validate(BASE), plan, draft], [(2026, 10)])
    assert bt.customer_totals["pro_draft"]["acme"] == D("20.00")  # $10 + 2,000 × $0.005
    with pytest.raises(drafts.DraftError, match="unit_price must be 0 or more"):
        drafts.draft_plan({**data, "charges": [{**data["charges"][0], "unit_price": "-2"}]}, types)


def test_the_cache_measures_usage_once_and_reprices_only_a_changed_plan() -> None:
    frame = frame_of(calls("acme", 10, 2500) + calls("bob", 11, 300))
    workspace = ws(BASE, PRO)
    cache = backtest.BacktestCache()
    plans = [Plan.model_validate(BASE), Plan.model_validate(PRO)]
    first = backtest.run(frame, workspace, plans, [(2026, 10), (2026, 11)], cache=cache)
    # both plans price the same metric over the same periods: measured once, used twice
    assert first.stats == {"usage_computed": 1, "usage_reused": 1, "plans_computed": 2, "plans_reused": 0}
    edited = plans[1].model_copy(update={"base_fee": D("12")})
    second = backtest.run(frame, workspace, [plans[0], edited], [(2026, 10), (2026, 11)], cache=cache)
    assert second.stats == {"usage_computed": 1, "usage_reused": 2, "plans_computed": 3, "plans_reused": 1}
    fresh = backtest.run(frame, workspace, [plans[0], edited], [(2026, 10), (2026, 11)])
    assert second.to_json() == fresh.to_json()
    assert second.totals["pro"] == first.totals["pro"] + 8  # $2 more a month: two customers, two months each
    # new events: everything is measured again
    more = frame_of(calls("acme", 10, 2600))
    third = backtest.run(more, workspace, plans, [(2026, 10)], cache=cache)
    assert third.stats["usage_computed"] == 2 and third.totals["base"] == D("32.00")
