"""Metric editor, driven through the app's navigation: templates, code slugs, field errors, the
aggregation preview on real stored events (exact engine numbers), and Test it (before → after)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from streamlit.testing.v1 import AppTest

from metering import aggregation, ingest, metrics, preview
from metering.frame import FrameCache
from metering.models import MetricCreate
from tests.app.conftest import page
from workbench import editor
from workbench.text import plain

ROOT = Path(__file__).resolve().parents[2]
LLM_CSV = ROOT / "sample_events" / "llm_tokens.csv"


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def field_error(message: str) -> str:
    """A message beside its field, in the form's words (`sum` → `Sum`, `name` → `Name`)."""
    return f":red[:material/error: {editor.md(editor.in_form_words(message, editor.FORM_WORDS))}]"


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def formula(at: AppTest) -> str:
    """The written-out calculation (the code block right after the Event example)."""
    blocks = [c.value for c in at.code if c.language == "text"]
    assert len(blocks) == 1, blocks
    return blocks[0]


def w(field: str) -> str:
    return f"_w:editor:{field}"


def engine_result(app_engine, data: dict) -> aggregation.AggregateResult:
    return aggregation.aggregate(FrameCache().get(app_engine), MetricCreate.model_validate(data))


def test_llm_tokens_template_fills_the_form_and_save_lists_the_metric(app_engine):
    ingest.import_file(app_engine, LLM_CSV)
    at = page("editor")
    assert not at.exception
    at.button(key="editor:tpl:llm_tokens").click().run()
    assert not at.exception
    assert at.text_input(key=w("name")).value == "LLM Tokens"
    assert at.text_input(key=w("slug")).value == "llm_tokens"
    assert at.text_input(key=w("unit")).value == "tokens"
    assert at.text_input(key=w("event_name")).value == "llm.tokens"
    assert at.selectbox(key=w("aggregation")).value == "sum"
    assert at.text_input(key=w("value_property")).value == "tokens"
    assert at.multiselect(key=w("group_by")).value == ["model"]
    assert at.radio(key=w("metric_type")).value == "charge_metered"
    assert at.button(key="editor:tpl:llm_tokens").label == "Selected"

    # every field stays editable
    at.text_area(key=w("description")).input("Tokens used by our LLM features").run()
    at.button(key="editor:save").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Billable metrics"]
    assert any("Saved LLM Tokens" in s.value for s in at.success)

    saved = metrics.get_metric(app_engine, code="llm_tokens")
    assert saved is not None and saved.description == "Tokens used by our LLM features"
    result = aggregation.aggregate(FrameCache().get(app_engine), saved)
    text = " ".join(m.value for m in at.markdown)
    assert "LLM Tokens" in text and "`llm_tokens`" in text
    assert f"**{preview.fmt(result.value)}** tokens" in text
    assert preview.plural(result.events, "event") in text


def test_sum_without_value_property_is_explained_beside_the_field_and_save_is_refused(app_engine):
    at = page("editor")
    at.text_input(key=w("name")).input("Compute seconds").run()
    at.text_input(key=w("unit")).input("s").run()
    at.selectbox(key=w("aggregation")).set_value("sum").run()
    message = metrics.form_errors(app_engine, editor_draft(at))["value_property"]
    assert "sum needs a value property" in message
    assert field_error(message) in captions(at)

    at.button(key="editor:save").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["New billable metric"]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Not saved") and "Value property" in errors[0]
    assert metrics.list_metrics(app_engine) == []


def editor_draft(at: AppTest) -> dict:
    ss = at.session_state
    return {
        "name": ss["editor:name"], "code": ss["editor:slug"], "unit": ss["editor:unit"],
        "metric_type": ss["editor:metric_type"], "event_name": ss["editor:event_name"],
        "aggregation": ss["editor:aggregation"], "value_property": ss["editor:value_property"] or None,
        "distinct_by": ss["editor:distinct_by"] or None, "filters": {}, "group_by": list(ss["editor:group_by"]),
    }


def test_blank_form_waits_for_save_before_saying_required(app_engine):
    at = page("editor")
    assert not any("is required" in c for c in captions(at))
    at.button(key="editor:save").click().run()
    shown = captions(at)
    assert field_error("name is required") in shown and field_error("unit is required") in shown
    assert field_error("code is required") in shown


def test_duplicate_code_is_explained_and_save_refused(app_engine):
    metrics.create_metric(app_engine, data=metrics.TEMPLATES["api_requests"].form())
    at = page("editor")
    at.text_input(key=w("name")).input("API Requests").run()
    assert at.text_input(key=w("slug")).value == "api_requests_2"  # auto code avoids the taken one
    at.text_input(key=w("unit")).input("calls").run()
    at.text_input(key=w("slug")).input("api_requests").run()
    assert field_error("a metric with code 'api_requests' already exists") in captions(at)
    at.button(key="editor:save").click().run()
    assert any("already exists" in e.value for e in at.error)
    assert [m.code for m in metrics.list_metrics(app_engine)] == ["api_requests"]


def test_code_follows_the_name_until_edited(app_engine):
    at = page("editor")
    at.text_input(key=w("name")).input("Café Requests").run()
    assert at.text_input(key=w("slug")).value == "cafe_requests"
    at.text_input(key=w("slug")).input("my_code").run()
    at.text_input(key=w("name")).input("Other name").run()
    assert at.text_input(key=w("slug")).value == "my_code"
    at.text_input(key=w("slug")).input("").run()  # cleared: generated again
    assert at.text_input(key=w("slug")).value == "other_name"
    at.text_input(key=w("slug")).input("Bad Code").run()
    assert any("Code must start with a lower-case letter" in c for c in captions(at))


def test_aggregation_preview_on_stored_events_shows_the_engine_numbers(app_engine):
    ingest.import_file(app_engine, LLM_CSV)
    at = page("editor")
    at.button(key="editor:tpl:llm_tokens").click().run()
    data = metrics.TEMPLATES["llm_tokens"].form()
    result = engine_result(app_engine, data)
    assert result.events > 0
    shown = metric_values(at)
    assert shown == {"Value (tokens)": preview.fmt(result.value), "Events": preview.fmt(result.events),
                     "Skipped": preview.fmt(result.skipped)}
    assert formula(at).endswith(f"= {preview.fmt(result.value)} over {preview.fmt(result.events)} events")
    assert formula(at) == preview.calculate(FrameCache().get(app_engine), MetricCreate.model_validate(data)).formula
    # the group breakdown: exact values per model
    (table,) = [d for d in at.dataframe if "events" in d.value.columns]
    groups = dict(zip(table.value["model"], table.value["value"]))
    assert groups == {g.group["model"]: preview.fmt(g.value) for g in result.groups}

    # a filter (kept form value, as the table would set it) narrows the selection at once
    at.session_state["editor:filter_rows"] = [{"property": "model", "values": "gpt-4o, claude-sonnet"}]
    at.session_state["editor:filters_ver"] = at.session_state["editor:filters_ver"] + 1
    at.run()
    filtered = engine_result(app_engine, data | {"filters": {"model": ["gpt-4o", "claude-sonnet"]}})
    assert metric_values(at)["Value (tokens)"] == preview.fmt(filtered.value)
    assert filtered.value < result.value

    # change the aggregation: max of the same property
    at.selectbox(key=w("aggregation")).set_value("max").run()
    maxed = engine_result(app_engine, data | {"aggregation": "max", "filters": {"model": ["gpt-4o", "claude-sonnet"]}})
    assert formula(at).startswith("max(") and formula(at).endswith(f") = {preview.fmt(maxed.value)} over {preview.fmt(maxed.events)} events")

    # the window selector
    at.radio(key="editor:window").set_value("30d").run()
    assert not at.exception
    assert any("Last 30 days" in c for c in captions(at))


def test_preview_on_example_values_without_stored_events(app_engine):
    at = page("editor")
    at.button(key="editor:tpl:storage_gb").click().run()
    assert formula(at) == "max(12.375, 24.75, 37.125) = 37.125 over 3 events"
    assert any("on example values" in c for c in captions(at))
    event = json.loads(next(c.value for c in at.code if c.language == "json"))
    assert event["event_name"] == "storage.snapshot" and event["properties"] == {"gb": 12.375}
    snippet = {c.language: c.value for c in at.code}
    assert "Bearer YOUR_API_KEY" in snippet["bash"] and "http://localhost:8501/api/v1/events" in snippet["bash"]
    assert "requests.post" in snippet["python"] and "fetch(" in snippet["javascript"]


def test_snippets_use_the_api_key_from_the_developers_page(app_engine):
    at = page("editor")
    at.session_state["api:key_plain"] = "mk_live_abc"
    at.button(key="editor:tpl:api_requests").click().run()
    curl = next(c.value for c in at.code if c.language == "bash")
    assert "Bearer mk_live_abc" in curl


def test_send_test_event_moves_the_value_from_before_to_after(app_engine):
    ingest.import_file(app_engine, LLM_CSV)
    at = page("editor")
    at.button(key="editor:tpl:llm_tokens").click().run()
    data = metrics.TEMPLATES["llm_tokens"].form()
    before = engine_result(app_engine, data)
    event = json.loads(at.text_area(key=w("test_event")).value)
    assert event["event_name"] == "llm.tokens" and event["properties"]["tokens"] == 1250
    event["properties"]["tokens"] = 4321
    at.text_area(key=w("test_event")).input(json.dumps(event)).run()
    at.button(key="editor:test_send").click().run()
    assert not at.exception
    after = engine_result(app_engine, data)
    assert after.value == before.value + 4321 and after.events == before.events + 1
    (success,) = at.success
    assert editor.md(preview.compare(before, after, unit="tokens")) in success.value
    assert f"{preview.fmt(before.value)} → {preview.fmt(after.value)} tokens (+4,321)" in success.value
    assert "Stored 1 event" in success.value
    assert metric_values(at)["Value (tokens)"] == preview.fmt(after.value)

    at.button(key="editor:test_send").click().run()  # the same event again: a duplicate
    assert "Already stored" in at.success[0].value
    assert engine_result(app_engine, data).value == after.value


def test_bad_test_event_json_is_explained_beside_the_field(app_engine):
    at = page("editor")
    at.button(key="editor:tpl:llm_tokens").click().run()
    at.text_area(key=w("test_event")).input('{"event_name": "llm.tokens", ').run()
    at.button(key="editor:test_send").click().run()
    assert not at.exception
    assert any(c.startswith(":red[:material/error: not valid JSON") for c in captions(at))
    assert FrameCache().get(app_engine).__len__() == 0


def test_edit_an_existing_metric_and_the_draft_survives_page_switches(app_engine):
    metrics.create_metric(app_engine, data=metrics.TEMPLATES["worker_duration"].form())
    at = page("metrics")
    at.button(key="metrics:edit:worker_duration").click().run()
    assert [t.value for t in at.title] == ["Edit metric · Worker Duration"]
    assert at.text_input(key=w("slug")).value == "worker_duration"
    assert at.text_input(key=w("value_property")).value == "duration_ms"
    at.text_input(key=w("unit")).input("seconds").run()

    at.switch_page("pages/metrics.py").run()
    at.switch_page("pages/editor.py").run()
    assert at.text_input(key=w("unit")).value == "seconds"  # kept across the page switch

    at.button(key="editor:save").click().run()
    assert not at.exception
    assert metrics.get_metric(app_engine, code="worker_duration").unit == "seconds"


def test_apply_table_edits_follows_streamlits_order():
    rows = [{"property": "model", "values": "a"}, {"property": "region", "values": "x"}]
    edits = {"edited_rows": {"0": {"values": "a, b"}}, "deleted_rows": [1], "added_rows": [{"property": "plan"}]}
    assert editor.apply_table_edits(rows, edits) == [
        {"property": "model", "values": "a, b"}, {"property": "plan", "values": ""},
    ]
    assert editor.filters_of([{"property": "model", "values": "a, b"}, {"property": "", "values": ""},
                              {"property": "model", "values": "c"}]) == {"model": ["a", "b", "c"]}


# =========================================================================== issue 8


def test_a_saved_metrics_code_is_fixed_in_the_editor(app_engine):
    """#1: the code field is disabled once saved; a changed code is refused beside the field."""
    metrics.create_metric(app_engine, data=metrics.TEMPLATES["api_requests"].form())
    at = page("metrics")
    at.button(key="metrics:edit:api_requests").click().run()
    assert at.text_input(key=w("slug")).disabled
    assert "Fixed once saved: plans and the API refer to it." in captions(at)
    at.session_state["editor:slug"] = "api_calls"  # as if typed: the engine refuses it all the same
    at.run()
    assert field_error(metrics.CODE_FIXED) in captions(at)
    at.button(key="editor:save").click().run()
    assert any("cannot change once saved" in e.value for e in at.error)
    assert [m.code for m in metrics.list_metrics(app_engine)] == ["api_requests"]


def test_aggregation_offers_only_what_the_type_takes_with_short_labels(app_engine):
    at = page("editor")
    agg = at.selectbox(key=w("aggregation"))
    assert agg.options == ["Count", "Sum", "Max", "Min", "Unique count", "Latest"]
    agg.set_value("max").run()
    at.radio(key=w("metric_type")).set_value("limit_recurring").run()
    assert at.selectbox(key=w("aggregation")).options == ["Count", "Sum"]
    assert at.selectbox(key=w("aggregation")).value == "count"  # max is not offered: back to count
    assert "Count: the number of matching events" in [plain(c) for c in captions(at)]
    at.radio(key=w("metric_type")).set_value("limit_metered").run()
    assert "Min" not in at.selectbox(key=w("aggregation")).options
    assert not any("needs count or sum" in c or "cannot be used" in c for c in captions(at))


def test_blank_save_reports_the_required_fields_first_and_never_the_event_name(app_engine):
    at = page("editor")
    at.button(key="editor:save").click().run()
    (error,) = at.error
    lines = error.value.splitlines()[1:]
    assert [line.split("**")[1] for line in lines] == ["Name", "Code", "Unit"]
    assert "Event name" not in error.value
    assert not any("event name" in c.lower() and "error" in c for c in captions(at))


def test_messages_name_fields_as_the_form_labels_them(app_engine):
    at = page("editor")
    at.text_input(key=w("name")).input("N" * 201).run()
    shown = captions(at)
    assert ":red[:material/error: Name must be at most 200 characters]" in shown
    assert not any("String should" in c for c in shown)
    at.radio(key=w("metric_type")).set_value("limit_recurring").run()
    at.button(key="editor:save").click().run()
    assert not any("limit_recurring" in e.value or "String should" in e.value for e in at.error)


def test_test_it_shows_every_fields_error_at_once(app_engine):
    at = page("editor")
    at.button(key="editor:tpl:llm_tokens").click().run()
    at.text_area(key=w("test_event")).input(
        '{"event_name": "llm tokens", "customer_id": 42, "timestamp": "someday", "tokenz": 5}').run()
    at.button(key="editor:test_send").click().run()
    shown = [c for c in captions(at) if c.startswith(":red[")]
    for name in ("event_name", "customer_id", "timestamp", "tokenz"):
        assert any(plain(c).startswith(f":red[:material/error: {name}: ") for c in shown), (name, shown)
    assert len(FrameCache().get(app_engine)) == 0


def test_an_invalid_code_never_shows_a_stale_event_name(app_engine):
    at = page("editor")
    at.text_input(key=w("name")).input("API Requests").run()
    at.text_input(key=w("unit")).input("calls").run()
    example = json.loads(next(c.value for c in at.code if c.language == "json"))
    assert example["event_name"] == "api_requests"
    at.text_input(key=w("slug")).input("Bad Code").run()
    assert not any(c.language == "json" for c in at.code)  # no example event with the old name
    assert any("The preview needs a valid definition" in i.value and "Code must start" in i.value for i in at.info)
    at.text_input(key=w("event_name")).input("api.request").run()  # its own event name: previewed again
    assert json.loads(next(c.value for c in at.code if c.language == "json"))["event_name"] == "api.request"


def test_last_30_days_ends_now(app_engine, write_file):
    """#3: events dated after now are not "in the last 30 days"."""
    now = datetime.now(timezone.utc)
    rows = [f"llm.tokens,c1,{(now - timedelta(days=d)).strftime('%Y-%m-%dT%H:%M:%SZ')},10" for d in (1, 2)]
    rows += [f"llm.tokens,c1,{(now + timedelta(days=d)).strftime('%Y-%m-%dT%H:%M:%SZ')},1000" for d in (3, 20)]
    ingest.import_file(app_engine, write_file("t.csv", "event_name,customer_id,timestamp,tokens\n" + "\n".join(rows) + "\n"))
    at = page("editor")
    at.button(key="editor:tpl:llm_tokens").click().run()
    assert metric_values(at)["Value (tokens)"] == "2,020"
    at.radio(key="editor:window").set_value("30d").run()
    assert metric_values(at)["Value (tokens)"] == "20" and metric_values(at)["Events"] == "2"
    assert any("until now" in c for c in captions(at))
