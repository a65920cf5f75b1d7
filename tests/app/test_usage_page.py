"""The Usage page through the real navigation: every figure equals the engine's."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from metering import aggregation, ingest, metrics, usage_series
from metering.frame import EventFrame
from tests.app.conftest import ROOT, page
from workbench import usage as us

SAMPLES = ROOT / "sample_events"
OCT = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))


def table(at, *columns: str):
    matches = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(matches) == 1, [list(d.value.columns) for d in at.dataframe]
    return matches[0]


def metric_values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def charts_of(at) -> list[tuple[dict, list[dict]]]:
    """(vega-lite spec, data rows) of each chart; the data travel as Arrow IPC next to the spec."""
    out = []
    for chart in at.get("vega_lite_chart"):
        (dataset,) = chart.proto.datasets
        rows = pa.ipc.open_stream(dataset.data.data).read_all().to_pylist()
        out.append((json.loads(chart.proto.spec), rows))
    return out


@pytest.fixture
def llm(app_engine):
    ingest.import_file(app_engine, SAMPLES / "llm_tokens.csv")
    ingest.import_file(app_engine, SAMPLES / "storage_gb.csv")
    ingest.import_file(app_engine, SAMPLES / "unique_users.csv")
    tokens = metrics.create_metric(app_engine, data=metrics.TEMPLATES["llm_tokens"].form())
    storage = metrics.create_metric(app_engine, data={**metrics.TEMPLATES["storage_gb"].form(), "group_by": ["bucket"]})
    users = metrics.create_metric(app_engine, data=metrics.TEMPLATES["unique_users"].form())
    return app_engine, EventFrame.from_store(app_engine), {"tokens": tokens, "storage": storage, "users": users}


def test_no_metrics_points_to_the_editor(app_engine):
    at = page("usage")
    assert not at.exception
    assert "No metrics yet" in at.info[0].value


def test_default_window_is_the_latest_events_month_and_figures_match_the_engine(llm):
    engine, frame, ms = llm
    at = page("usage")
    assert not at.exception, at.exception
    m = ms["tokens"]
    assert at.selectbox(key="usage:metric").value == m.code
    assert at.date_input(key=f"usage:from:{m.code}").value == date(2026, 10, 1)
    assert at.date_input(key=f"usage:to:{m.code}").value == date(2026, 10, 31)
    total = aggregation.aggregate(frame, m, start=OCT[0], end=OCT[1])
    values = metric_values(at)
    assert values[f"{m.name} ({m.unit})"] == f"{us.fmt(total.value)} tokens"
    assert values["Events"] == f"{total.events:,}" and values["Skipped"] == "0"

    groups = table(at, "model", "share")
    assert total.skipped == 0 and "skipped" not in groups.columns  # shown only when some were skipped
    assert groups.to_dict("records") == [
        {"model": g.group["model"], "value": us.fmt(g.value), "events": g.events,
         "share": us.share(g.value, total.value)} for g in total.groups
    ]

    by_customer = aggregation.aggregate_by_customer(frame, m, start=OCT[0], end=OCT[1])
    ranked = sorted(by_customer.items(), key=lambda kv: (-kv[1].value, kv[0]))[: us.TOP_DEFAULT]
    top = table(at, "customer_id", "value (tokens)")
    assert top["customer_id"].tolist() == [c for c, _ in ranked]
    assert top["value (tokens)"].tolist() == [us.fmt(r.value) for _, r in ranked]

    (daily_spec, daily_data), (top_spec, top_data) = charts_of(at)
    daily = usage_series.daily_usage(frame, m, start=OCT[0], end=OCT[1])
    assert daily_spec["mark"]["type"] == "bar" and daily_spec["encoding"]["y"]["field"] == "value"
    assert [r["value_text"] for r in daily_data] == [str(v) for v in daily["value"]]
    assert len(daily_data) == 31
    assert [r["customer_id"] for r in top_data] == [c for c, _ in ranked]
    assert top_spec["encoding"]["y"]["sort"] == [c for c, _ in ranked]


def test_window_customers_and_split(llm):
    engine, frame, ms = llm
    m = ms["tokens"]
    at = page("usage")
    at.date_input(key=f"usage:from:{m.code}").set_value(date(2026, 10, 5))
    at.date_input(key=f"usage:to:{m.code}").set_value(date(2026, 10, 11)).run()
    at.multiselect(key="usage:customers").set_value(["cus_001", "cus_023"]).run()
    assert not at.exception, at.exception
    start, end = datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 10, 12, tzinfo=UTC)
    total = aggregation.aggregate(frame, m, start=start, end=end, customer_ids=["cus_001", "cus_023"])
    assert metric_values(at)[f"{m.name} ({m.unit})"] == f"{us.fmt(total.value)} tokens"
    assert metric_values(at)["Events"] == f"{total.events:,}"
    assert table(at, "customer_id", "value (tokens)")["customer_id"].tolist() == ["cus_023", "cus_001"]

    at.checkbox(key="usage:split").check().run()
    assert not at.exception, at.exception
    daily_spec, data = charts_of(at)[0]
    assert daily_spec["encoding"]["color"]["field"] == "group"
    split = usage_series.daily_usage(frame, m, start=start, end=end, customer_ids=["cus_001", "cus_023"], split_by="model")
    assert [(r["group"], r["value_text"]) for r in data] == [(g, str(v)) for g, v in zip(split["group"], split["value"])]


def test_non_additive_metric_and_other_metrics(llm):
    engine, frame, ms = llm
    at = page("usage")
    for key in ("storage", "users"):
        m = ms[key]
        at.selectbox(key="usage:metric").set_value(m.code).run()
        assert not at.exception, at.exception
        total = aggregation.aggregate(frame, m, start=OCT[0], end=OCT[1])
        assert metric_values(at)[f"{m.name} ({m.unit})"] == f"{us.fmt(total.value)} {m.unit}"
        assert any(f"the {m.aggregation.value} over that day alone" in c.value for c in at.caption)
    at.selectbox(key="usage:metric").set_value(ms["storage"].code).run()
    at.checkbox(key="usage:split").check().run()
    assert charts_of(at)[0][0]["mark"]["type"] == "line"
    assert "share" not in table(at, "bucket").columns  # maxima do not add up to shares


def test_empty_window_shows_zero(llm):
    engine, frame, ms = llm
    m = ms["tokens"]
    at = page("usage")
    at.date_input(key=f"usage:from:{m.code}").set_value(date(2027, 1, 1))
    at.date_input(key=f"usage:to:{m.code}").set_value(date(2027, 1, 31)).run()
    assert not at.exception, at.exception
    assert metric_values(at)[f"{m.name} ({m.unit})"] == "0 tokens"
    assert "usage is 0" in at.info[0].value
    at.date_input(key=f"usage:to:{m.code}").set_value(date(2026, 12, 1)).run()
    assert "before the From date" in at.warning[0].value


def test_metric_without_events_defaults_to_this_month_to_date(app_engine):
    ingest.import_file(app_engine, SAMPLES / "api_requests.json")
    m = metrics.create_metric(app_engine, data={"name": "Other", "code": "other", "unit": "x", "event_name": "other.event", "aggregation": "count"})
    at = page("usage")
    assert not at.exception, at.exception
    today = datetime.now(UTC).date()
    assert at.date_input(key=f"usage:from:{m.code}").value == today.replace(day=1)
    assert at.date_input(key=f"usage:to:{m.code}").value == today
    assert metric_values(at)["Other (x)"] == "0 x"


def test_one_far_future_event_does_not_move_the_default_window(llm):
    """Issue 8 #2: one event dated 2099 made Usage open on January 2099."""
    engine, _, ms = llm
    ingest.import_file(engine, b"event_name,customer_id,timestamp,tokens\nllm.tokens,c1,2099-01-01T00:00:00Z,5\n", name="typo.csv")
    at = page("usage")
    m = ms["tokens"]
    assert at.date_input(key=f"usage:from:{m.code}").value == date(2026, 10, 1)  # the sample's month, before now
    assert at.date_input(key=f"usage:to:{m.code}").value == date(2026, 10, 31)


def test_the_current_month_ends_today(app_engine):
    now = datetime.now(UTC)
    ingest.import_file(app_engine, f"event_name,customer_id,timestamp\napi.request,c1,{now:%Y-%m-%dT%H:%M:%SZ}\n"
                                   f"api.request,c1,{now.year + 1}-01-01\n".encode(), name="now.csv")
    m = metrics.create_metric(app_engine, data=metrics.TEMPLATES["api_requests"].form())
    at = page("usage")
    assert at.date_input(key=f"usage:from:{m.code}").value == now.date().replace(day=1)
    assert at.date_input(key=f"usage:to:{m.code}").value == now.date()
    assert metric_values(at)["Events"] == "1"  # the event of next year is not "this month"


def test_fmt_and_share():

    assert us.fmt(Decimal("1234567.50")) == "1,234,567.5"
    assert us.fmt(Decimal("-1000")) == "-1,000"
    assert us.fmt(Decimal("0.000000001")) == "0.000000001"
    assert us.share(Decimal(1), Decimal(4)) == "25.0 %"
    assert us.share(Decimal(1), Decimal(0)) == "–"


def test_skipped_events_are_counted_with_their_reason(app_engine):
    csv = (
        "event_name,customer_id,timestamp,tokens,model\n"
        "llm.tokens,c1,2026-10-02T10:00:00Z,100,a\n"
        "llm.tokens,c1,2026-10-02T11:00:00Z,lots,a\n"
        "llm.tokens,c2,2026-10-03T10:00:00Z,,b\n"
        "llm.tokens,c2,2026-10-03T11:00:00Z,2.5,b\n"
    )
    ingest.import_file(app_engine, csv.encode(), name="skips.csv")
    m = metrics.create_metric(app_engine, data=metrics.TEMPLATES["llm_tokens"].form())
    at = page("usage")
    assert not at.exception, at.exception
    total = aggregation.aggregate(EventFrame.from_store(app_engine), m, start=OCT[0], end=OCT[1])
    assert (total.value, total.events, total.skipped) == (Decimal("102.5"), 4, 2)
    values = metric_values(at)
    assert values[f"{m.name} ({m.unit})"] == "102.5 tokens" and values["Events"] == "4" and values["Skipped"] == "2"
    captions = " ".join(c.value for c in at.caption)
    for reason, n in total.skip_reasons.items():
        assert f"Skipped {n:,} event(s): {reason}" in captions
    groups = table(at, "model", "skipped")
    assert groups[["model", "value", "events", "skipped"]].values.tolist() == [["a", "100", 2, 1], ["b", "2.5", 2, 1]]
