"""The editor's preview written out: formulas on stored events (engine numbers), example
fallback, skipped events, groups, the lenient preview metric, and the test-event round trip."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from metering import aggregation, ingest, metrics, preview
from metering.frame import EventFrame, FrameCache
from metering.models import MetricCreate

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def frame_of(events: list[dict]) -> EventFrame:
    return EventFrame.from_parsed(ingest.parse_records(list(enumerate(events, start=1))))


def ev(props: dict, *, customer: str = "c1", ts: str = "2026-10-01T00:00:00Z", name: str = "llm.tokens") -> dict:
    return {"event_name": name, "customer_id": customer, "timestamp": ts, "properties": props}


def metric(**kw) -> MetricCreate:
    base = {"name": "LLM Tokens", "code": "llm_tokens", "unit": "tokens", "event_name": "llm.tokens",
            "aggregation": "sum", "value_property": "tokens"}
    return MetricCreate.model_validate(base | kw)


def test_fmt_exact_with_thousands_separators():
    assert preview.fmt(48210) == "48,210"
    assert preview.fmt(Decimal("1234567.500")) == "1,234,567.5"
    assert preview.fmt(Decimal("0.1") + Decimal("0.2")) == "0.3"
    assert preview.fmt(Decimal("1E+3")) == "1,000"
    assert preview.fmt(Decimal("-2500.25")) == "-2,500.25"


def test_sum_writes_first_values_then_ellipsis_and_engine_total():
    values = [12, 30, 7, 1000, 5, 8, "0.1", "0.2"]
    frame = frame_of([ev({"tokens": v}, ts=f"2026-10-01T00:00:{i:02d}Z") for i, v in enumerate(values)])
    m = metric()
    calc = preview.calculate(frame, m, now=NOW)
    expected = aggregation.aggregate(frame, m)
    assert calc.source == "events"
    assert calc.value == expected.value == Decimal("1062.3")
    assert calc.formula == "12 + 30 + 7 + 1,000 + 5 + … = 1,062.3 over 8 events"
    assert calc.events == 8 and calc.skipped == 0 and calc.skipped_text is None


def test_short_sum_has_no_ellipsis():
    frame = frame_of([ev({"tokens": "0.1"}), ev({"tokens": "0.2"}, customer="c2")])
    assert preview.calculate(frame, metric(), now=NOW).formula == "0.1 + 0.2 = 0.3 over 2 events"


def test_count_max_min_unique_latest_formulas():
    events = [
        ev({"gb": 10, "user_id": "u1"}, customer="c1", ts="2026-10-01T00:00:00Z", name="x"),
        ev({"gb": 30, "user_id": "u2"}, customer="c2", ts="2026-10-31T23:59:00Z", name="x"),
        ev({"gb": 20, "user_id": "u1"}, customer="c3", ts="2026-10-15T12:00:00Z", name="x"),
    ]
    frame = frame_of(events)
    common = {"name": "X", "code": "x", "unit": "u", "event_name": "x"}
    count = MetricCreate.model_validate(common | {"aggregation": "count"})
    assert preview.calculate(frame, count, now=NOW).formula == "3 events"
    mx = MetricCreate.model_validate(common | {"aggregation": "max", "value_property": "gb"})
    assert preview.calculate(frame, mx, now=NOW).formula == "max(10, 30, 20) = 30 over 3 events"
    mn = MetricCreate.model_validate(common | {"aggregation": "min", "value_property": "gb"})
    assert preview.calculate(frame, mn, now=NOW).formula == "min(10, 30, 20) = 10 over 3 events"
    uq = MetricCreate.model_validate(common | {"aggregation": "unique_count", "distinct_by": "user_id"})
    assert preview.calculate(frame, uq, now=NOW).formula == "2 distinct user_id values among 3 events: u1, u2"
    latest = MetricCreate.model_validate(common | {"aggregation": "latest", "value_property": "gb"})
    calc = preview.calculate(frame, latest, now=NOW)
    assert calc.formula == "latest (2026-10-31 23:59 UTC, c2) = 30 among 3 events"
    assert calc.value == aggregation.aggregate(frame, latest).value


def test_unique_count_lists_first_values_and_ellipsis():
    frame = frame_of([ev({"user_id": f"user_{i % 7}"}, ts=f"2026-10-01T00:{i:02d}:00Z", name="u") for i in range(20)])
    m = MetricCreate.model_validate({"name": "U", "code": "u", "unit": "users", "event_name": "u",
                                     "aggregation": "unique_count", "distinct_by": "user_id"})
    calc = preview.calculate(frame, m, now=NOW)
    assert calc.formula == "7 distinct user_id values among 20 events: user_0, user_1, user_2, user_3, user_4, …"


def test_skipped_events_and_reasons_come_from_the_engine():
    frame = frame_of([ev({"tokens": 5}), ev({"model": "a"}, customer="c2"), ev({"tokens": "lots"}, customer="c3"),
                      ev({}, customer="c4")])
    calc = preview.calculate(frame, metric(), now=NOW)
    result = aggregation.aggregate(frame, metric())
    assert calc.skipped == result.skipped == 3
    assert calc.skipped_text == "3 of 4 events skipped: tokens is missing (2); tokens is not a number (1)"
    assert calc.formula == "5 = 5 over 4 events"


def test_all_values_skipped():
    frame = frame_of([ev({"model": "a"})])
    assert preview.calculate(frame, metric(), now=NOW).formula == "no numeric tokens value among 1 event = 0"


def test_groups_are_top_by_value_with_null_group():
    frame = frame_of([
        ev({"tokens": 5, "model": "a"}), ev({"tokens": 50, "model": "b"}, customer="c2"),
        ev({"tokens": 7}, customer="c3"), ev({"tokens": 1, "model": "c"}, customer="c4"),
    ])
    m = metric(group_by=["model"])
    calc = preview.calculate(frame, m, now=NOW, top=2)
    assert [(g.label, g.value) for g in calc.groups] == [("model=b", Decimal(50)), ("model=null", Decimal(7))]
    assert calc.more_groups == 2
    table = preview.group_table(calc)
    assert list(table["model"]) == ["b", "null"] and list(table["value"]) == ["50", "7"]


def test_filters_narrow_the_selection():
    frame = frame_of([ev({"tokens": 5, "model": "a"}), ev({"tokens": 50, "model": "b"}, customer="c2")])
    calc = preview.calculate(frame, metric(filters={"model": ["b"]}), now=NOW)
    assert calc.formula == "50 = 50 over 1 event"


def test_example_values_when_the_store_has_none_and_engine_computes_them():
    m = metric(group_by=["model"])
    calc = preview.calculate(EventFrame.empty(), m, now=NOW)
    assert calc.source == "example"
    example = preview.example_frame(m, now=NOW)
    assert calc.value == aggregation.aggregate(example, m).value
    assert calc.formula == f"1,250 + 2,500 + 3,750 = {preview.fmt(calc.value)} over 3 events"
    assert [(g.label, g.value) for g in calc.groups] == [("model=gpt-4o", Decimal(3750)), ("model=gpt-4o_2", Decimal(3750))]
    assert "no stored llm.tokens event" in calc.note


def test_example_values_keep_filters_matching():
    m = metric(filters={"region": ["eu-west"]}, group_by=["region"])
    calc = preview.calculate(EventFrame.empty(), m, now=NOW)
    assert calc.events == 3 and [g.label for g in calc.groups] == ["region=eu-west"]


def test_window_last_30_days_falls_back_to_examples_when_empty():
    frame = frame_of([ev({"tokens": 5}, ts="2026-01-01T00:00:00Z"), ev({"tokens": 7}, customer="c2", ts="2026-10-20T00:00:00Z")])
    recent = preview.calculate(frame, metric(), window_key="30d", now=NOW)
    assert recent.source == "events" and recent.formula == "7 = 7 over 1 event"
    later = preview.calculate(frame, metric(), window_key="30d", now=NOW + timedelta(days=365))
    assert later.source == "example"
    assert preview.calculate(frame, metric(), window_key="all", now=NOW).value == 12


def test_preview_metric_is_lenient_about_fields_the_calculation_does_not_read():
    m, errors = preview.preview_metric({"name": "", "code": "", "unit": "", "aggregation": "sum",
                                        "value_property": "tokens", "event_name": "llm.tokens"})
    assert errors == {} and m is not None and m.event_name == "llm.tokens"
    m, errors = preview.preview_metric({"name": "X", "code": "x", "unit": "u", "aggregation": "sum"})
    assert m is None and "value_property" in errors
    # a type / aggregation mismatch still previews the aggregation
    m, errors = preview.preview_metric({"name": "X", "code": "x", "unit": "u", "aggregation": "max",
                                        "value_property": "gb", "metric_type": "limit_recurring"})
    assert m is not None and m.aggregation.value == "max"


def test_editor_preview_bundles_errors_event_calculation_and_snippets(sqlite_engine):
    metrics.create_metric(sqlite_engine, data=metrics.TEMPLATES["llm_tokens"].form())
    data = metrics.TEMPLATES["llm_tokens"].form()
    out = preview.editor_preview(sqlite_engine, EventFrame.empty(), data, now=NOW,
                                 base_url="http://h:1", api_key="k_123")
    assert out.errors == {"code": "a metric with code 'llm_tokens' already exists"}
    assert out.event == json.loads(out.event_json)
    assert out.event["event_name"] == "llm.tokens" and out.event["properties"]["tokens"] == 1250
    assert "Bearer k_123" in out.snippets["curl"] and "http://h:1/api/v1/events" in out.snippets["python"]
    assert preview.editor_preview(sqlite_engine, EventFrame.empty(), data, current_code="llm_tokens", now=NOW).errors == {}


def test_calculation_on_a_sample_file_matches_the_engine(sqlite_engine):
    ingest.import_file(sqlite_engine, ROOT / "sample_events" / "llm_tokens.csv")
    frame = FrameCache().get(sqlite_engine)
    m = metric(group_by=["model"])
    calc = preview.calculate(frame, m, now=NOW)
    result = aggregation.aggregate(frame, m)
    assert (calc.value, calc.events, calc.skipped) == (result.value, result.events, result.skipped)
    assert calc.formula.endswith(f"= {preview.fmt(result.value)} over {preview.fmt(result.events)} events")
    assert {g.label: g.value for g in calc.groups} == {preview.group_label(g.group): g.value for g in result.groups}
    assert preview.events_named(frame, "llm.tokens") == result.events
    paths = {p.path: p for p in preview.seen_paths(frame, "llm.tokens")}
    assert paths["tokens"].numeric and not paths["model"].numeric


def test_send_test_event_before_after_duplicate_and_errors(sqlite_engine):
    ingest.import_file(sqlite_engine, ROOT / "sample_events" / "llm_tokens.csv")
    cache = FrameCache()
    m = metric()
    text = preview.event_example_json(m, now=NOW)
    out = preview.send_test_event(sqlite_engine, m, text, get_frame=lambda: cache.get(sqlite_engine))
    assert out.error is None and out.accepted == 1
    assert out.after.value - out.before.value == 1250 and out.after.events == out.before.events + 1
    assert out.summary == (f"{preview.fmt(out.before.value)} → {preview.fmt(out.after.value)} (+1,250) · "
                           f"events {preview.fmt(out.before.events)} → {preview.fmt(out.after.events)}")
    again = preview.send_test_event(sqlite_engine, m, text, get_frame=lambda: cache.get(sqlite_engine))
    assert again.accepted == 0 and again.duplicates == 1 and "(no change)" in again.summary

    bad = preview.send_test_event(sqlite_engine, m, '{"event_name": "llm.tokens",', get_frame=lambda: cache.get(sqlite_engine))
    assert bad.error.startswith("not valid JSON")
    missing = preview.send_test_event(sqlite_engine, m, '{"event_name": "llm.tokens"}', get_frame=lambda: cache.get(sqlite_engine))
    # Every field's problem at once (issue 8: "Test it" showed only the first one).
    assert missing.error == "customer_id: customer_id is required; timestamp: timestamp is required"
    assert missing.field_errors == {"customer_id": "customer_id is required", "timestamp": "timestamp is required"}
    many = preview.send_test_event(
        sqlite_engine, m, '{"event_name": "llm tokens", "customer_id": 7, "timestamp": "soon", "props": {}}',
        get_frame=lambda: cache.get(sqlite_engine))
    assert set(many.field_errors) == {"props", "event_name", "customer_id", "timestamp"}
    assert "unknown field 'props'" in many.field_errors["props"]


def test_why_not_counted_uses_the_engine_rules():
    m = metric(filters={"model": ["gpt-4o"]})
    parsed, _, _ = preview.parse_test_event(json.dumps(ev({"tokens": 3, "model": "other"})))
    assert preview.why_not_counted(m, parsed) == ["filter model: the event's model is 'other'; allowed: gpt-4o"]
    parsed, _, _ = preview.parse_test_event(json.dumps(ev({"tokens": "many", "model": "gpt-4o"})))
    assert preview.why_not_counted(m, parsed) == ["it is counted as an event but skipped: tokens is not a number"]
    parsed, _, _ = preview.parse_test_event(json.dumps(ev({"tokens": 3, "model": "gpt-4o"}, name="other")))
    assert preview.why_not_counted(m, parsed) == ["its event_name is 'other'; this metric reads 'llm.tokens'"]
    parsed, _, _ = preview.parse_test_event(json.dumps(ev({"tokens": 3, "model": "gpt-4o"})))
    assert preview.why_not_counted(m, parsed) == []


@pytest.mark.parametrize("key", [k for k in metrics.TEMPLATES if k != "custom"])
def test_every_template_previews_on_examples(key):
    m = MetricCreate.model_validate(metrics.TEMPLATES[key].form())
    calc = preview.calculate(EventFrame.empty(), m, now=NOW)
    assert calc.source == "example" and calc.events == 3 and calc.skipped == 0
    assert calc.value == aggregation.aggregate(preview.example_frame(m, now=NOW), m).value
