"""The Timeline page through the real navigation: every figure equals billing.timeline's.

The demo workspace's cus_unibee (Starter, SMS quota 1000) is UniBee's carryover example:
available 1000 → 1300 → 1400."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pyarrow as pa
from sqlalchemy.engine import Engine

from metering import billing, invoices, metrics, plan_store
from metering.frame import EventFrame
from metering.money import format_money
from metering.preview import fmt
from metering.workspace import workspace_from_store
from tests.app.conftest import demo_months, page


def table(at) -> "pd.DataFrame":  # noqa: F821
    """The period table (the other table, in the expander, is per customer)."""
    (df,) = [d.value for d in at.dataframe if "period" in d.value.columns]
    return df


def chart_rows(at) -> list[dict]:
    (chart,) = at.get("vega_lite_chart")
    (dataset,) = chart.proto.datasets
    return pa.ipc.open_stream(dataset.data.data).read_all().to_pylist()


def engine_rows(engine: Engine, metric: str, plan: str, customer: str, n: int) -> list[billing.TimelinePeriod]:
    frame = EventFrame.from_store(engine)
    ws = workspace_from_store(engine)
    billed = invoices.assignments(frame, plans=ws.plans, subscriptions=ws.subscriptions, tz=ws.timezone,
                                  plan_code=plan, customer_id=customer)
    schedules = {customer: billed[0].schedule(ws.timezone)}
    return billing.timeline(frame, ws.metric(metric), ws.plan(plan), schedules, periods_count=n)[customer]


def test_empty_workspace_points_to_plans_and_demo(app_engine: Engine) -> None:
    at = page("timeline")
    assert not at.exception, at.exception
    assert "No plan charges or limits a metric yet" in at.info[0].value


def test_demo_opens_on_the_unibee_carryover_1000_1300_1400(demo_engine: Engine) -> None:
    at = page("timeline")
    assert not at.exception, at.exception
    assert at.selectbox(key="timeline:metric").value == "sms_credits"
    assert at.selectbox(key="timeline:plan:sms_credits").value == "starter"
    assert at.selectbox(key="timeline:customer:sms_credits:starter").value == "cus_unibee"
    assert at.number_input(key="timeline:periods").value == 3

    rows = engine_rows(demo_engine, "sms_credits", "starter", "cus_unibee", 3)
    df = table(at)
    # the demo's history ends now: two whole months and the current one (its SMS so far), and
    # the default periods run from the subscription start to the current period, no further
    assert df["period"].tolist() == [f"{y}-{m:02d}" for y, m in demo_months()]
    assert df["available"].tolist() == ["1,000", "1,300", "1,400"]
    assert df["available"].tolist() == [fmt(r.available) for r in rows]
    assert df["usage"].tolist() == [fmt(r.usage) for r in rows]
    assert df["usage"].tolist()[:2] == ["700", "900"] and int(df["usage"].tolist()[2]) <= 450
    assert df["carryover"].tolist() == [fmt(r.carryover) for r in rows]
    assert df["overage"].tolist() == [fmt(r.overage) for r in rows]
    assert df["amount"].tolist() == [format_money(r.amount, "USD") for r in rows]
    assert "rejected" not in df.columns  # a soft limit rejects nothing

    data = chart_rows(at)
    assert [(r["series"], r["value"]) for r in data if r["series"] == "Available"] == [
        ("Available", 1000.0), ("Available", 1300.0), ("Available", 1400.0)]
    assert [r["value_text"] for r in data if r["series"] == "Usage"] == df["usage"].tolist()
    captions = " ".join(c.value for c in at.caption)
    assert "available = limit + the previous period's carryover" in captions
    assert {m.label: m.value for m in at.metric}["Limit (sms)"] == fmt(D(1000))


def test_overage_and_its_amount_for_another_customer(demo_engine: Engine) -> None:
    at = page("timeline")
    at.selectbox(key="timeline:customer:sms_credits:starter").set_value("cus_wonka").run()
    assert not at.exception, at.exception
    rows = engine_rows(demo_engine, "sms_credits", "starter", "cus_wonka", 3)
    df = table(at)
    assert df["overage"].tolist() == [fmt(r.overage) for r in rows]
    assert rows[1].overage == D(270)
    assert df["amount"].tolist() == [format_money(r.amount, "USD") for r in rows]
    assert df["amount"].tolist()[1] == format_money(D(270) * D("0.02"), "USD")

    at.number_input(key="timeline:periods").set_value(5).run()
    rows = engine_rows(demo_engine, "sms_credits", "starter", "cus_wonka", 5)
    assert table(at)["available"].tolist() == [fmt(r.available) for r in rows]
    assert len(table(at)) == 5


def test_what_if_plan_and_a_capped_carryover(demo_engine: Engine) -> None:
    at = page("timeline")
    at.selectbox(key="timeline:plan:sms_credits").set_value("growth").run()
    at.selectbox(key="timeline:customer:sms_credits:growth").set_value("cus_unibee").run()
    assert not at.exception, at.exception
    rows = engine_rows(demo_engine, "sms_credits", "growth", "cus_unibee", 3)
    assert table(at)["available"].tolist() == [fmt(r.available) for r in rows]
    assert "what-if" in " ".join(c.value for c in at.caption)


def test_charge_metric_and_charge_recurring_running_usage(demo_engine: Engine) -> None:
    metrics.create_metric(demo_engine, data={
        "name": "Stored GB (lifetime)", "code": "gb_total", "unit": "GB", "metric_type": "charge_recurring",
        "event_name": "storage.snapshot", "aggregation": "sum", "value_property": "gb"})
    plan_store.save_plan(demo_engine, plan={"code": "archive", "name": "Archive", "currency": "USD", "charges": [
        {"metric": "gb_total", "model": "standard", "unit_price": "0.001"}]})
    at = page("timeline")
    at.selectbox(key="timeline:metric").set_value("gb_total").run()
    assert not at.exception, at.exception
    cid = at.selectbox(key="timeline:customer:gb_total:archive").value
    rows = engine_rows(demo_engine, "gb_total", "archive", cid, 3)
    df = table(at)
    assert df["usage"].tolist() == [fmt(r.usage) for r in rows]
    assert rows[0].usage < rows[1].usage < rows[2].usage  # never resets
    assert df["amount"].tolist() == [format_money(r.amount, "USD") for r in rows]
    assert "available" not in df.columns and "carryover" not in df.columns
    assert "never resets" in " ".join(c.value for c in at.caption)

    at.selectbox(key="timeline:metric").set_value("api_requests").run()
    plan = at.selectbox(key="timeline:plan:api_requests").value
    cid = at.selectbox(key=f"timeline:customer:api_requests:{plan}").value
    rows = engine_rows(demo_engine, "api_requests", plan, cid, 3)
    assert table(at)["amount"].tolist() == [format_money(r.amount, "USD") for r in rows]


def test_limit_metered_shows_rejected_events(demo_engine: Engine) -> None:
    metrics.create_metric(demo_engine, data={
        "name": "Capped calls", "code": "capped", "unit": "calls", "metric_type": "limit_metered",
        "event_name": "api.request", "aggregation": "count"})
    plan_store.save_plan(demo_engine, plan={"code": "capped_plan", "name": "Capped", "currency": "USD",
                                            "quotas": [{"metric": "capped", "limit": "500"}]})
    at = page("timeline")
    at.selectbox(key="timeline:metric").set_value("capped").run()
    assert not at.exception, at.exception
    cid = at.selectbox(key="timeline:customer:capped:capped_plan").value
    rows = engine_rows(demo_engine, "capped", "capped_plan", cid, 3)
    df = table(at)
    assert df["rejected"].tolist() == [f"{r.rejected:,}" for r in rows]
    assert df["usage"].tolist() == [fmt(r.usage) for r in rows]
    assert "amount" not in df.columns  # a hard limit bills nothing


def test_a_broken_workspace_says_what_to_fix(demo_engine: Engine) -> None:
    metrics.delete_metric(demo_engine, code="payments")  # plans still charge it
    at = page("timeline")
    assert not at.exception, at.exception
    assert "unknown metric 'payments'" in at.error[0].value
    assert not at.dataframe


def test_chart_data_is_json_safe(demo_engine: Engine) -> None:
    at = page("timeline")
    (chart,) = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "line"]


def test_one_far_future_event_does_not_stretch_the_default_periods(demo_engine: Engine) -> None:
    """Issue 8 #2: an event dated 2099 made the timeline open on 24 mostly empty periods."""
    from metering import ingest
    ingest.import_file(demo_engine, b"event_name,customer_id,timestamp\nsms.sent,cus_unibee,2099-01-01T00:00:00Z\n",
                       name="typo.csv")
    at = page("timeline")
    assert not at.exception, at.exception
    assert at.number_input(key="timeline:periods").value == 3
    assert table(at)["period"].tolist() == [f"{y}-{m:02d}" for y, m in demo_months()]
