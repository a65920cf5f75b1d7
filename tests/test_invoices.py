"""Invoices (contract §4, §6): lines, per-line rounding, credit, periods per customer anchor,
what-if pricing, quota overage, the JSON shape and the CSV / JSON downloads."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metering import ingest, invoices
from metering.billing import PeriodUsage
from metering.frame import EventFrame
from metering.money import round_money
from metering.plans import Plan
from metering.workspace import parse_workspace

D = Decimal
UTC = timezone.utc
OCT, NOV = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)


def at(month: int, day: int = 5, second: int = 0, year: int = 2026) -> int:
    return int(datetime(year, month, day, 12, 0, 0, tzinfo=UTC).timestamp()) + second


def frame_of(events: list[dict[str, Any]]) -> EventFrame:
    lines = "".join(
        json.dumps({"customer_id": "c1", "idempotency_key": f"k{i}", **e}) + "\n" for i, e in enumerate(events)
    )
    parsed = ingest.parse_jsonl(lines)
    assert parsed.errors == [], parsed.errors
    return EventFrame.from_parsed(parsed)


def calls(n: int, customer: str = "c1", month: int = 10, **props: Any) -> list[dict[str, Any]]:
    return [{"event_name": "api", "customer_id": customer, "timestamp": at(month, 1, i), "properties": dict(props)}
            for i in range(n)]


METRICS = [
    {"name": "API calls", "code": "api", "unit": "calls", "event_name": "api", "aggregation": "count",
     "group_by": ["endpoint"]},
    {"name": "Payments", "code": "payments", "unit": "USD", "event_name": "pay", "aggregation": "sum",
     "value_property": "amount"},
    {"name": "SMS credits", "code": "sms", "unit": "sms", "event_name": "sms", "aggregation": "sum",
     "value_property": "n", "metric_type": "limit_recurring"},
    {"name": "Seats used", "code": "seats", "unit": "seats", "event_name": "seat", "aggregation": "count",
     "metric_type": "limit_metered"},
]


def workspace(plans: list[dict[str, Any]], subscriptions: list[dict[str, Any]] | None = None, tz: str = "UTC") -> Any:
    return parse_workspace({"timezone": tz, "metrics": METRICS, "plans": plans, "subscriptions": subscriptions or []})


def api_plan(**fields: Any) -> dict[str, Any]:
    return {"code": "pro", "name": "Pro", "currency": "USD",
            "charges": [{"metric": "api", "model": "standard", "free_units": 1000, "unit_price": "0.02"}], **fields}


# --- worked examples ------------------------------------------------------------------------


def test_2500_calls_with_1000_free_at_two_cents_is_30_dollars() -> None:
    frame = frame_of(calls(2500))
    ws = workspace([api_plan()], [{"customer_id": "c1", "plan": "pro"}])
    result = invoices.run(frame, ws, month=(2026, 10))
    report = invoices.report(result)
    assert report == {
        "period": {"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
        "currency": "USD",
        "invoices": [{
            "customer_id": "c1",
            "plan": "pro",
            "period": {"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
            "currency": "USD",
            "lines": [{"description": "API calls", "metric": "api", "units": "2500", "amount": "30.00",
                       "groups": [{"group": {"endpoint": None}, "units": "2500"}]}],
            "subtotal": "30.00",
            "credit": "0.00",
            "total": "30.00",
        }],
        "total": "30.00",
    }
    assert list(report) == ["period", "currency", "invoices", "total"]
    assert list(report["invoices"][0]) == ["customer_id", "plan", "period", "currency", "lines", "subtotal", "credit", "total"]
    explained = result[0].lines[0].explain("USD")
    assert explained[0] == "2,500 units; first 1,000 free → 1,500 billable"
    assert explained[1] == "1,500 × $0.02 = $30.00"


def test_500_calls_at_ten_cents_is_50_dollars() -> None:
    frame = frame_of(calls(500))
    plan = {"code": "payg", "name": "Pay as you go", "currency": "USD",
            "charges": [{"metric": "api", "model": "standard", "unit_price": "0.10"}]}
    [inv] = invoices.run(frame, workspace([plan]), plan_code="payg", month=(2026, 10))
    assert [(l.description, l.amount) for l in inv.lines] == [("API calls", D("50.00"))]
    assert inv.total == D("50.00") and str(inv.total) == "50.00"


# --- lines ----------------------------------------------------------------------------------


def test_lines_base_fee_fixed_charges_usage_and_their_order() -> None:
    frame = frame_of(calls(1500, endpoint="/a") + calls(1000, endpoint="/b")[:1000])
    plan = api_plan(base_fee="49", fixed_charges=[{"name": "Seats", "quantity": 3, "unit_price": "12.50"},
                                                  {"name": "Support", "unit_price": "100"}])
    [inv] = invoices.run(frame, workspace([plan]), plan_code="pro", month=(2026, 10))
    body = inv.to_json()
    assert [(l["description"], l["metric"], l["units"], l["amount"]) for l in body["lines"]] == [
        ("Base fee", None, "1", "49.00"),
        ("Seats", None, "3", "37.50"),
        ("Support", None, "1", "100.00"),
        ("API calls", "api", "2500", "30.00"),
    ]
    assert body["lines"][3]["groups"] == [{"group": {"endpoint": "/a"}, "units": "1500"},
                                          {"group": {"endpoint": "/b"}, "units": "1000"}]
    assert all(l["groups"] == [] for l in body["lines"][:3])
    assert body["subtotal"] == "216.50" and body["total"] == "216.50"


def test_every_usage_charge_has_a_line_even_without_usage() -> None:
    frame = frame_of([{"event_name": "other", "timestamp": at(10)}])
    [inv] = invoices.run(frame, workspace([api_plan()]), plan_code="pro", month=(2026, 10))
    assert [(l.description, l.units, l.amount) for l in inv.lines] == [("API calls", D(0), D("0.00"))]
    assert inv.total == D("0.00")


def test_credit_applies_to_usage_lines_only_and_never_exceeds_them() -> None:
    frame = frame_of(calls(2500))
    plans = [api_plan(base_fee="10", included_credit="20")]
    [inv] = invoices.run(frame, workspace(plans), plan_code="pro", month=(2026, 10))
    assert (inv.subtotal, inv.credit, inv.total) == (D("40.00"), D("20.00"), D("20.00"))
    plans = [api_plan(base_fee="10", included_credit="100")]
    [inv] = invoices.run(frame, workspace(plans), plan_code="pro", month=(2026, 10))
    assert (inv.subtotal, inv.credit, inv.total) == (D("40.00"), D("30.00"), D("10.00"))  # base fee stays
    assert inv.explain()[1] == "credit = min(included credit $100.00, usage lines $30.00) = $30.00"


def test_credit_refreshes_every_period_and_never_carries_over() -> None:
    frame = frame_of(calls(1100) + calls(2500, month=11))
    ws = workspace([api_plan(included_credit="5")], [{"customer_id": "c1", "plan": "pro", "start": "2026-10-01"}])
    [oct_inv] = invoices.run(frame, ws, month=(2026, 10))
    [nov_inv] = invoices.run(frame, ws, month=(2026, 11))
    assert (oct_inv.subtotal, oct_inv.credit, oct_inv.total) == (D("2.00"), D("2.00"), D("0.00"))
    assert (nov_inv.subtotal, nov_inv.credit, nov_inv.total) == (D("30.00"), D("5.00"), D("25.00"))


def test_each_line_is_rounded_half_up_before_the_subtotal() -> None:
    # two lines of $0.005 each: rounded per line → 0.01 + 0.01 (a total rounded once would be 0.01)
    frame = frame_of(calls(1) + [{"event_name": "pay", "timestamp": at(10), "properties": {"amount": "0.5"}}])
    plan = {"code": "p", "name": "P", "currency": "USD", "charges": [
        {"metric": "api", "model": "standard", "unit_price": "0.005"},
        {"metric": "payments", "model": "standard", "unit_price": "0.01"},
    ]}
    [inv] = invoices.run(frame, workspace([plan]), plan_code="p", month=(2026, 10))
    assert [l.amount for l in inv.lines] == [D("0.01"), D("0.01")]
    assert [l.exact for l in inv.lines] == [D("0.005"), D("0.005")]
    assert inv.subtotal == D("0.02")
    assert inv.lines[0].explain("USD")[-1] == "rounded half-up to $0.01"


def test_jpy_lines_round_to_whole_yen() -> None:
    frame = frame_of(calls(3))
    plan = {"code": "jp", "name": "JP", "currency": "JPY", "base_fee": "980.5",
            "charges": [{"metric": "api", "model": "standard", "unit_price": "0.5"}], "included_credit": "0.9"}
    [inv] = invoices.run(frame, workspace([plan]), plan_code="jp", month=(2026, 10))
    body = inv.to_json()
    assert [l["amount"] for l in body["lines"]] == ["981", "2"]  # 980.5 → 981, 1.5 → 2
    # included credit below one yen is truncated: no credit is granted beyond what the plan says
    assert (body["subtotal"], body["credit"], body["total"]) == ("983", "0", "983")
    assert invoices.report([inv])["total"] == "983"


def test_percentage_charge_counts_every_matching_event_skipped_ones_included() -> None:
    pays = [{"event_name": "pay", "timestamp": at(10, 1, i), "properties": {"amount": a}}
            for i, a in enumerate(["100", "250.50", "oops"])] + [{"event_name": "pay", "timestamp": at(10, 2)}]
    frame = frame_of(pays)
    plan = {"code": "p", "name": "P", "currency": "USD", "charges": [
        {"metric": "payments", "model": "percentage", "rate": "2.9", "fixed_fee": "0.30"}]}
    [inv] = invoices.run(frame, workspace([plan]), plan_code="p", month=(2026, 10))
    line = inv.lines[0]
    # 350.50 × 2.9% = 10.1645, + 4 events × 0.30 = 1.20 → 11.3645 → 11.36
    assert (line.units, line.exact, line.amount) == (D("350.5"), D("11.3645"), D("11.36"))
    assert any("2 event(s) skipped" in text for text in line.explain("USD"))


def test_graduated_line_explains_each_tier_crossed() -> None:
    frame = frame_of(calls(1500))
    plan = {"code": "g", "name": "G", "currency": "USD", "charges": [{
        "metric": "api", "model": "graduated",
        "tiers": [{"up_to": 1000, "unit_price": "0"}, {"up_to": None, "unit_price": "0.01", "flat_fee": "2"}]}]}
    [inv] = invoices.run(frame, workspace([plan]), plan_code="g", month=(2026, 10))
    assert inv.lines[0].amount == D("7.00")
    assert inv.lines[0].explain("USD") == [
        "tier 1 (0–1,000): 1,000 × $0.00 = $0.00",
        "tier 2 (above 1,000): 500 × $0.01 + $2.00 flat = $7.00",
        "total $7.00",
    ]


# --- quotas ---------------------------------------------------------------------------------


def test_limit_recurring_overage_line_after_carryover_and_credit_applies_to_it() -> None:
    sms = [{"event_name": "sms", "timestamp": at(10), "properties": {"n": 700}},
           {"event_name": "sms", "timestamp": at(11), "properties": {"n": 1500}}]
    frame = frame_of(sms)
    plan = {"code": "q", "name": "Q", "currency": "USD", "base_fee": "5", "included_credit": "0.5",
            "quotas": [{"metric": "sms", "limit": 1000, "overage_unit_price": "0.01"}]}
    ws = workspace([plan], [{"customer_id": "c1", "plan": "q", "start": "2026-10-01"}])
    [oct_inv] = invoices.run(frame, ws, month=(2026, 10))
    [nov_inv] = invoices.run(frame, ws, month=(2026, 11))
    assert [(l.description, l.units, l.amount) for l in oct_inv.lines] == [
        ("Base fee", D(1), D("5.00")), ("SMS credits overage", D(0), D("0.00"))]
    # November: available 1000 + 300 carried = 1300; used 1500 → 200 over × $0.01
    over = nov_inv.lines[1]
    assert (over.metric, over.units, over.amount) == ("sms", D(200), D("2.00"))
    assert over.explain("USD")[0] == "used 1500 of 1300 available → overage 200"
    assert (nov_inv.subtotal, nov_inv.credit, nov_inv.total) == (D("7.00"), D("0.50"), D("6.50"))
    # the same month as an explicit window carries the same October carryover in
    [window_inv] = invoices.run(frame, ws, window=(NOV, datetime(2026, 12, 1, tzinfo=UTC)))
    assert window_inv.lines[1].units == D(200)


def test_quotas_without_a_price_and_hard_limits_bill_nothing() -> None:
    frame = frame_of([{"event_name": "seat", "timestamp": at(10, 1, i)} for i in range(9)])
    plan = {"code": "q", "name": "Q", "currency": "USD", "base_fee": "5",
            "quotas": [{"metric": "seats", "limit": 5}, {"metric": "sms", "limit": 100}]}
    [inv] = invoices.run(frame, workspace([plan]), plan_code="q", month=(2026, 10))
    assert [l.description for l in inv.lines] == ["Base fee"]


# --- who and when ---------------------------------------------------------------------------


def test_period_is_the_first_one_starting_in_the_month_per_customer_anchor() -> None:
    frame = frame_of(calls(10) + calls(4, customer="c2") + calls(6, customer="c2", month=11))
    ws = workspace([api_plan(charges=[{"metric": "api", "model": "standard", "unit_price": "1"}])],
                   [{"customer_id": "c1", "plan": "pro"}, {"customer_id": "c2", "plan": "pro", "start": "2026-10-15"}])
    result = invoices.run(frame, ws, month=(2026, 10))
    assert [(i.customer_id, i.start, i.end, i.total) for i in result] == [
        ("c1", OCT, NOV, D("10.00")),
        ("c2", datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC), D("6.00")),
    ]
    # September: c1's default anchor is 1 October, c2 starts on the 15th: nobody is billed
    assert invoices.run(frame, ws, month=(2026, 9)) == []
    assert invoices.report([], window=None) == {"period": None, "currency": None, "invoices": [], "total": "0"}


def test_subscription_start_as_a_bare_date_is_midnight_in_the_workspace_timezone() -> None:
    frame = frame_of(calls(3))
    ws = workspace([api_plan()], [{"customer_id": "c1", "plan": "pro", "start": "2026-10-01"}], tz="Europe/Berlin")
    [inv] = invoices.run(frame, ws, month=(2026, 10))
    assert invoices.report([inv])["period"] == {"start": "2026-09-30T22:00:00Z", "end": "2026-10-31T23:00:00Z"}


def test_what_if_plan_prices_every_customer_in_the_events() -> None:
    frame = frame_of(calls(2500) + calls(1200, customer="c2") + [{"event_name": "other", "customer_id": "c3", "timestamp": at(10)}])
    ws = workspace([api_plan(), {"code": "free", "name": "Free", "currency": "USD"}],
                   [{"customer_id": "c1", "plan": "free"}])
    result = invoices.run(frame, ws, plan_code="pro", month=(2026, 10))
    assert [(i.customer_id, i.plan, i.total) for i in result] == [
        ("c1", "pro", D("30.00")), ("c2", "pro", D("4.00")), ("c3", "pro", D("0.00"))]
    assert invoices.report(result)["total"] == "34.00"
    # without --plan only subscribed customers are billed, under their own plan
    assert [(i.customer_id, i.plan, i.total) for i in invoices.run(frame, ws, month=(2026, 10))] == [("c1", "free", D("0.00"))]
    only = invoices.run(frame, ws, plan_code="pro", month=(2026, 10), customer_id="c2")
    assert [i.customer_id for i in only] == ["c2"]


def test_window_bills_exactly_that_window_once() -> None:
    frame = frame_of(calls(1100) + calls(1100, month=11))
    ws = workspace([api_plan(base_fee="10")])
    start = datetime(2026, 10, 1, 12, tzinfo=UTC) + timedelta(seconds=500)
    end = datetime(2026, 11, 1, 12, tzinfo=UTC) + timedelta(seconds=600)
    [inv] = invoices.run(frame, ws, plan_code="pro", window=(start, end))
    # events at 12:00:00+i s: October's from i=500 (600 of them), November's below i=600 (600)
    assert inv.lines[1].units == D(1200)
    assert (inv.start, inv.end) == (start, end)
    assert invoices.report([inv], window=(start, end))["period"] == {
        "start": "2026-10-01T12:08:20Z", "end": "2026-11-01T12:10:00Z"}


def test_a_yearly_plan_has_no_period_in_most_months() -> None:
    frame = frame_of(calls(5))
    ws = workspace([api_plan(interval="year")], [{"customer_id": "c1", "plan": "pro", "start": "2026-10-01"}])
    assert len(invoices.run(frame, ws, month=(2026, 10))) == 1
    assert invoices.run(frame, ws, month=(2026, 11)) == []
    assert len(invoices.run(frame, ws, month=(2027, 10))) == 1


def test_report_total_sums_only_the_first_invoices_currency() -> None:
    frame = frame_of(calls(2500) + calls(2500, customer="c2"))
    eur = api_plan(code="eu", currency="EUR")
    ws = workspace([api_plan(), eur], [{"customer_id": "c1", "plan": "pro"}, {"customer_id": "c2", "plan": "eu"}])
    report = invoices.report(invoices.run(frame, ws, month=(2026, 10)))
    assert [i["currency"] for i in report["invoices"]] == ["USD", "EUR"]
    assert (report["currency"], report["total"]) == ("USD", "30.00")


def test_errors_for_unknown_plan_customer_and_month() -> None:
    frame = frame_of(calls(1))
    ws = workspace([api_plan()], [{"customer_id": "c1", "plan": "pro"}])
    with pytest.raises(invoices.InvoiceError, match="plan 'nope' is not in the workspace"):
        invoices.run(frame, ws, plan_code="nope", month=(2026, 10))
    with pytest.raises(invoices.InvoiceError, match="customer 'zz' has no subscription"):
        invoices.run(frame, ws, month=(2026, 10), customer_id="zz")
    with pytest.raises(invoices.InvoiceError, match="no events and no subscription"):
        invoices.run(frame, ws, plan_code="pro", month=(2026, 10), customer_id="zz")
    for bad in ("2026-13", "2026/10", "26-10", "2026-1"):
        with pytest.raises(invoices.InvoiceError, match="YYYY-MM"):
            invoices.parse_month(bad)
    assert invoices.parse_month("2026-10") == (2026, 10)


# --- downloads ------------------------------------------------------------------------------


def test_csv_and_json_downloads() -> None:
    frame = frame_of(calls(2500) + calls(10, customer="c2"))
    result = invoices.run(frame, workspace([api_plan(base_fee="1.5")]), plan_code="pro", month=(2026, 10))
    rows = list(csv.DictReader(io.StringIO(invoices.to_csv(result))))
    assert list(rows[0]) == invoices.LINE_COLUMNS
    assert [(r["customer_id"], r["description"], r["metric"], r["units"], r["amount"]) for r in rows] == [
        ("c1", "Base fee", "", "1", "1.50"), ("c1", "API calls", "api", "2500", "30.00"),
        ("c2", "Base fee", "", "1", "1.50"), ("c2", "API calls", "api", "10", "0.00"),
    ]
    summary = list(csv.DictReader(io.StringIO(invoices.to_csv(result, summary=True))))
    assert [(r["customer_id"], r["subtotal"], r["credit"], r["total"]) for r in summary] == [
        ("c1", "31.50", "0.00", "31.50"), ("c2", "1.50", "0.00", "1.50")]
    assert json.loads(invoices.to_json_text(result)) == invoices.report(result)


def test_csv_cells_that_start_a_formula_are_neutralized_numbers_are_not() -> None:
    frame = frame_of(calls(3, customer="=HYPERLINK(\"http://x\")") + calls(2, customer="@SUM(1)"))
    fixed = [{"name": "+cmd|' /C calc'!A0", "quantity": "1", "unit_price": "-0"}]
    result = invoices.run(frame, workspace([api_plan(fixed_charges=fixed)]), plan_code="pro", month=(2026, 10))
    rows = list(csv.DictReader(io.StringIO(invoices.to_csv(result))))
    assert {r["customer_id"] for r in rows} == {"'=HYPERLINK(\"http://x\")", "'@SUM(1)"}
    assert "'+cmd|' /C calc'!A0" in {r["description"] for r in rows}
    assert all(not r[c].startswith("'") for r in rows for c in ("units", "amount"))
    summary = list(csv.DictReader(io.StringIO(invoices.to_csv(result, summary=True))))
    assert {r["customer_id"] for r in summary} == {"'=HYPERLINK(\"http://x\")", "'@SUM(1)"}


# --- property: totals -----------------------------------------------------------------------

_money = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False)
_units = st.decimals(min_value=-10, max_value=100000, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def _charge(draw: Any, metric: str) -> dict[str, Any]:
    model = draw(st.sampled_from(["standard", "graduated", "volume", "package", "percentage"]))
    out: dict[str, Any] = {"metric": metric, "model": model, "free_units": str(draw(st.decimals(0, 500, places=0)))}
    if model == "standard":
        out["unit_price"] = str(draw(_money))
    elif model in ("graduated", "volume"):
        bounds = sorted(draw(st.sets(st.integers(1, 50000), min_size=0, max_size=3)))
        out["tiers"] = [{"up_to": b, "unit_price": str(draw(_money)), "flat_fee": str(draw(_money))} for b in bounds]
        out["tiers"].append({"up_to": None, "unit_price": str(draw(_money))})
    elif model == "package":
        out["package_size"] = str(draw(st.integers(1, 1000)))
        out["package_price"] = str(draw(_money))
    else:
        out["rate"] = str(draw(st.decimals(0, 100, places=2)))
        out["fixed_fee"] = str(draw(_money))
    return out


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    currency=st.sampled_from(["USD", "JPY", "KWD", "EUR"]),
    base_fee=_money, credit=_money, overage_price=st.one_of(st.none(), _money),
)
def test_total_is_sum_of_rounded_lines_minus_credit(data: Any, currency: str, base_fee: Decimal, credit: Decimal,
                                                    overage_price: Decimal | None) -> None:
    charges = [data.draw(_charge(m)) for m in ("api", "payments")]
    quota: dict[str, Any] = {"metric": "sms", "limit": "1000"}
    if overage_price is not None:
        quota["overage_unit_price"] = str(overage_price)
    plan = Plan.model_validate({
        "code": "p", "name": "P", "currency": currency, "base_fee": str(base_fee), "included_credit": str(credit),
        "fixed_charges": [{"name": "Seats", "quantity": data.draw(st.integers(0, 20)), "unit_price": str(data.draw(_money))}],
        "charges": charges, "quotas": [quota],
    })
    usages = {
        m: PeriodUsage("c1", m, "charge_metered", OCT, NOV, usage=data.draw(_units), period_events=data.draw(st.integers(0, 50)))
        for m in ("api", "payments")
    }
    over = data.draw(st.decimals(0, 5000, places=2))
    usages["sms"] = PeriodUsage("c1", "sms", "limit_recurring", OCT, NOV, usage=D(1000) + over,
                                available=D(1000), carryover=D(0), overage=over)
    inv = invoices.build_invoice(plan, "c1", (OCT, NOV), usages, {})
    for line in inv.lines:
        assert line.amount == round_money(line.exact, currency)
        assert line.amount >= 0
    usage_lines = sum((l.amount for l in inv.lines if l.metric is not None), D(0))
    assert inv.subtotal == sum((l.amount for l in inv.lines), D(0))
    assert inv.credit == min(usage_lines, invoices.credit_granted(plan.included_credit, currency))
    assert 0 <= inv.credit <= plan.included_credit
    assert inv.credit <= usage_lines
    assert inv.total == inv.subtotal - inv.credit
    assert inv.total >= 0
    body = inv.to_json()
    places = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}[currency]
    for text in [body["subtotal"], body["credit"], body["total"], *(l["amount"] for l in body["lines"])]:
        assert len(text.partition(".")[2]) == places, text
