"""The Events page through the real navigation: uploads (summary, rejected rows, unreadable
files), the simulator (preview, insert), the stored-events browser and deleting an import.
Also the page's pure helpers (upload handling, simulation plans, the paged SQL browser)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlalchemy import text

from metering import aggregation, ingest, metrics, simulate, store
from metering.frame import EventFrame
from tests.app.conftest import ROOT, page
from workbench import events as ev
from workbench.editor import md  # noqa: F401
from workbench.text import plain

SAMPLES = ROOT / "sample_events"


def sample(name: str) -> tuple[str, bytes, str]:
    return (name, (SAMPLES / name).read_bytes(), "text/csv")


def upload(at, *files: tuple[str, bytes, str]):
    at.file_uploader[0].set_value(list(files))
    at.run()
    at.button(key="events:import").click().run()
    assert not at.exception, at.exception
    return at


def event_count(engine) -> int:
    return store.event_count(engine)


def imports_of(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT id, source, accepted, duplicates, rejected FROM import_batch ORDER BY id")).all()


TABLES = {  # st.dataframe without selection has no key in AppTest: find tables by their columns
    "summary": {"File", "Status"},
    "rejected": {"file", "line", "field", "reason"},
    "events": {"timestamp", "idempotency_key"},
    "imports": {"source", "created_at"},
    "head": {"timestamp", "tokens"},
}


def dataframe(at, name: str) -> pd.DataFrame:
    matches = [d.value for d in at.dataframe if TABLES[name] <= set(d.value.columns)]
    assert len(matches) == 1, f"{len(matches)} tables with {TABLES[name]}: {[list(d.value.columns) for d in at.dataframe]}"
    return matches[0]


# --------------------------------------------------------------------------- uploads


def test_upload_llm_tokens_summary_matches_ingest(app_engine):
    at = page("events")
    assert not at.exception
    assert at.file_uploader[0].accept_multiple_files
    upload(at, sample("llm_tokens.csv"))
    expected = ingest.import_file(store.make_engine("sqlite://"), SAMPLES / "llm_tokens.csv")
    summary = dataframe(at, "summary")
    assert summary.to_dict("records") == [{
        "File": "llm_tokens.csv", "Accepted": expected.accepted, "Duplicates": expected.duplicates,
        "Rejected": expected.rejected, "In the future": 0, "Status": "imported",
    }]
    assert event_count(app_engine) == expected.accepted
    assert [tuple(r)[1:] for r in imports_of(app_engine)] == [("llm_tokens.csv", expected.accepted, 0, 0)]
    assert f"{expected.accepted:,} accepted" in at.success[0].value
    # the state after the handler ran: outcomes in session state, uploader emptied for the next round
    (state,) = at.session_state["events:upload_results"]
    assert (state["accepted"], state["duplicates"], state["rejected"]) == (expected.accepted, 0, 0)
    assert at.file_uploader[0].value == []
    # the browser shows the stored events, newest first
    assert f"of {expected.accepted:,}, newest first" in " ".join(m.value for m in at.markdown)


def test_upload_bad_rows_shows_rejected_rows_with_lines_and_reasons(app_engine):
    at = upload(page("events"), sample("bad_rows.csv"))
    expected = ingest.read_events(SAMPLES / "bad_rows.csv")
    summary = dataframe(at, "summary").iloc[0]
    assert (summary["Accepted"], summary["Duplicates"], summary["Rejected"]) == (24, 1, 6)
    rejected = dataframe(at, "rejected")
    assert rejected.to_dict("records") == [
        {"file": "bad_rows.csv", "line": e.line, "field": e.field, "reason": e.reason} for e in expected.errors
    ]
    assert list(rejected["line"]) == [5, 10, 14, 20, 24, 29]
    assert "'yesterday' is not an ISO 8601 time" in rejected.loc[1, "reason"]
    (button,) = [b for b in at.get("download_button") if "rejected" in b.proto.label]  # the Stored tab has its own
    assert button.proto.label == "Download rejected rows (CSV)"
    # what the button downloads: the same rows as CSV
    csv = ev.rejected_csv([ev.FileOutcome(**d) for d in at.session_state["events:upload_results"]]).decode()
    assert csv.splitlines()[0] == "file,line,field,reason"
    assert csv.splitlines()[1].startswith("bad_rows.csv,5,customer_id,")


def test_several_files_at_once_and_a_second_upload_is_duplicates(app_engine):
    at = upload(page("events"), sample("llm_tokens.csv"), sample("api_requests.jsonl"), sample("api_requests.json"))
    summary = dataframe(at, "summary")
    assert list(summary["File"]) == ["llm_tokens.csv", "api_requests.jsonl", "api_requests.json"]
    assert list(summary["Accepted"]) == [1860, 2790, 50]
    assert list(summary["Duplicates"]) == [0, 0, 0]
    upload(at, sample("llm_tokens.jsonl"))
    summary = dataframe(at, "summary")
    assert summary.iloc[0].to_dict() == {"File": "llm_tokens.jsonl", "Accepted": 0, "Duplicates": 1860, "Rejected": 0, "In the future": 0, "Status": "imported"}
    assert len(imports_of(app_engine)) == 4


@pytest.mark.parametrize("name,data,reason", [
    ("garbage.csv", b"\xff\xfe\x00\x01\x02garbage", "not UTF-8"),
    ("columns.csv", b"event_name,timestamp\napi.request,2026-10-01T00:00:00Z\n", "missing required column customer_id"),
    ("broken.json", b'[{"event_name": "a"', "not valid JSON"),
])
def test_unreadable_file_gives_one_clear_error_and_stores_nothing(app_engine, name, data, reason):
    at = upload(page("events"), (name, data, "application/octet-stream"))
    assert len(at.error) == 1
    shown = plain(at.error[0].value)
    assert name in shown and reason in shown and "Nothing from this file was stored" in shown
    assert not at.success
    assert event_count(app_engine) == 0
    assert imports_of(app_engine) == []
    assert dataframe(at, "summary").iloc[0]["Status"] == "unreadable: nothing stored"


def test_unreadable_file_next_to_a_good_one(app_engine):
    at = upload(page("events"), ("bad.csv", b"\x00\x01", "text/csv"), sample("bad_rows.csv"))
    assert len(at.error) == 1 and "bad.csv" in at.error[0].value
    assert event_count(app_engine) == 24
    assert [r[1] for r in imports_of(app_engine)] == ["bad_rows.csv"]


def test_import_uploads_helper_reports_progress(app_engine):
    seen = []
    outcomes = ev.import_uploads(
        app_engine, [("llm_tokens.csv", (SAMPLES / "llm_tokens.csv").read_bytes()), ("x.csv", b"\xff")],
        on_progress=lambda name, p: seen.append((name, p.stage)),
    )
    assert [o.accepted for o in outcomes] == [1860, 0]
    assert outcomes[1].unreadable and "not UTF-8" in outcomes[1].unreadable
    assert seen[0] == ("llm_tokens.csv", "parsed") and seen[-1] == ("llm_tokens.csv", "done")
    assert all(name == "llm_tokens.csv" for name, _ in seen)


# --------------------------------------------------------------------------- simulator


def test_simulate_template_preview_insert_then_browse(app_engine):
    at = page("events")
    assert at.radio(key="events:sim:source").value == "Quick template"  # no metrics yet
    at.selectbox(key="events:sim:template").set_value("llm_tokens").run()
    at.number_input(key="events:sim:customers").set_value(5)
    at.date_input(key="events:sim:start").set_value(date(2026, 10, 1))
    at.number_input(key="events:sim:days").set_value(4)
    assert at.selectbox(key="events:sim:shape:llm_tokens").value == "growth"  # the template's shape
    at.number_input(key="events:sim:volume:llm_tokens").set_value(50)
    at.number_input(key="events:sim:seed").set_value(7).run()
    assert not at.exception, at.exception
    at.button(key="events:sim:preview").click().run()
    assert not at.exception, at.exception
    head = dataframe(at, "head")
    spec = simulate.template_spec("llm_tokens", customers=5, start=datetime(2026, 10, 1, tzinfo=UTC), days=4, daily_volume=50, seed=7)
    expected = simulate.simulate(spec)
    assert len(head) == ev.PREVIEW_ROWS
    assert head["timestamp"].tolist() == expected["timestamp"].head(ev.PREVIEW_ROWS).tolist()
    assert head["tokens"].tolist() == expected["tokens"].head(ev.PREVIEW_ROWS).tolist()
    (chart,) = at.get("vega_lite_chart")
    chart_data = json.loads(chart.proto.spec)
    assert chart_data["mark"]["type"] == "bar"
    preview = at.session_state["events:sim_preview"]
    assert preview["total"] == 200 and preview["daily"]["events"].sum() == 200
    assert event_count(app_engine) == 0  # preview stores nothing

    at.button(key="events:sim:insert").click().run()
    assert not at.exception, at.exception
    assert "Inserted 200 events" in at.success[0].value
    assert event_count(app_engine) == 200
    ((_, source, accepted, duplicates, rejected),) = imports_of(app_engine)
    assert source.startswith("simulation: llm.tokens") and (accepted, duplicates, rejected) == (200, 0, 0)
    rows = dataframe(at, "events")
    assert list(rows.columns) == ["timestamp", "event_name", "customer_id", "properties", "idempotency_key", "import_id"]
    assert len(rows) == 25 and set(rows["event_name"]) == {"llm.tokens"}
    newest = expected.iloc[-1]
    assert rows.iloc[0]["customer_id"] == newest["customer_id"]
    assert rows.iloc[0]["timestamp"].startswith(newest["timestamp"][:19].replace("T", " "))
    assert json.loads(rows.iloc[0]["properties"])["tokens"] == int(newest["tokens"])
    assert "Page 1 of 8" in " ".join(m.value for m in at.markdown)


def test_simulate_from_metrics_emits_what_they_read(app_engine):
    metrics.create_metric(app_engine, data={
        "name": "Premium tokens", "code": "premium_tokens", "unit": "tokens", "event_name": "llm.tokens",
        "aggregation": "sum", "value_property": "usage.total", "filters": {"tier": ["premium", "3"]}, "group_by": ["model"],
    })
    metrics.create_metric(app_engine, data={
        "name": "Seats", "code": "seats", "unit": "users", "event_name": "seat.active",
        "aggregation": "unique_count", "distinct_by": "user_id",
    })
    at = page("events")
    assert at.radio(key="events:sim:source").value == "Metrics"
    at.multiselect(key="events:sim:metrics").set_value(["premium_tokens", "seats"]).run()
    assert not at.exception, at.exception
    at.number_input(key="events:sim:customers").set_value(4)
    at.date_input(key="events:sim:start").set_value(date(2026, 10, 1))
    at.number_input(key="events:sim:days").set_value(3)
    at.number_input(key="events:sim:volume:custom").set_value(20).run()
    # the filter's allowed values, with a weight, and a value outside the filter
    at.text_input(key="events:sim:p:llm.tokens:tier:choices").set_value("premium:3, 3, basic").run()
    at.button(key="events:sim:insert").click().run()
    assert not at.exception, at.exception
    assert event_count(app_engine) == 120
    frame = EventFrame.from_store(app_engine)
    premium = metrics.get_metric(app_engine, code="premium_tokens")
    everything = aggregation.aggregate(frame, premium.model_copy(update={"filters": {}}))
    filtered = aggregation.aggregate(frame, premium)
    assert everything.events == 60 and everything.skipped == 0 and everything.value > 0
    assert 0 < filtered.events < 60 and filtered.skipped == 0
    assert {g.group["model"] for g in filtered.groups} <= {"gpt-4o", "claude-sonnet", "llama3.1", "llama3.2"}
    seats = aggregation.aggregate(frame, metrics.get_metric(app_engine, code="seats"))
    assert seats.events == 60 and seats.skipped == 0 and seats.value > 0


def test_simulator_shows_input_errors(app_engine):
    at = page("events")
    at.radio(key="events:sim:source").set_value("Event name").run()
    at.text_input(key="events:sim:event_name").set_value("bad name").run()
    assert any("bad name" in w.value for w in at.warning)
    assert at.button(key="events:sim:insert").disabled
    at.text_input(key="events:sim:event_name").set_value("ping").run()
    at.text_input(key="events:sim:labels").set_value("region").run()
    at.text_input(key="events:sim:p:ping:region:choices").set_value("eu:-1").run()
    assert any("region" in w.value and "weight" in w.value for w in at.warning)
    at.text_input(key="events:sim:p:ping:region:choices").set_value("eu:2, us:1").run()
    assert not at.warning
    assert not at.button(key="events:sim:insert").disabled


# --------------------------------------------------------------------------- browser & imports


def test_browser_filters_and_pages(app_engine):
    ingest.import_file(app_engine, SAMPLES / "llm_tokens.csv")
    ingest.import_file(app_engine, SAMPLES / "api_requests.csv")
    at = page("events")
    assert not at.exception, at.exception
    nav = lambda: " ".join(m.value for m in at.markdown)  # noqa: E731
    assert "Page 1 of 186 · events 1–25 of 4,650" in nav()
    first = dataframe(at, "events")
    at.button(key="events:next").click().run()
    assert "Page 2 of 186 · events 26–50" in nav()
    second = dataframe(at, "events")
    assert set(first["idempotency_key"]).isdisjoint(second["idempotency_key"])
    newest_first = sorted(store.event_rows(app_engine), key=lambda r: (r[3], r[0]), reverse=True)  # ts, then store order
    expected = [r[4] for r in newest_first[25:50]]
    assert second["idempotency_key"].tolist() == expected

    at.selectbox(key="events:f_event").set_value("llm.tokens").run()
    at.text_input(key="events:f_customer").set_value("cus_003").run()
    at.date_input(key="events:f_dates").set_value((date(2026, 10, 10), date(2026, 10, 12))).run()
    rows = dataframe(at, "events")
    parsed = ingest.read_events(SAMPLES / "llm_tokens.csv")
    lo = int(datetime(2026, 10, 10, tzinfo=UTC).timestamp() * 1_000_000)
    hi = int(datetime(2026, 10, 13, tzinfo=UTC).timestamp() * 1_000_000)
    want = sorted((t for c, t in zip(parsed.customer_id, parsed.ts_us) if c == "cus_003" and lo <= t < hi), reverse=True)
    assert len(want) > 25
    assert f"Page 1 of 2 · events 1–25 of {len(want)}," in nav()
    assert rows["timestamp"].tolist() == ev.format_ts(pd.Series(want[:25])).tolist()
    at.button(key="events:next").click().run()
    rows = dataframe(at, "events")
    assert rows["timestamp"].tolist() == ev.format_ts(pd.Series(want[25:])).tolist()
    assert at.button(key="events:next").disabled
    at.selectbox(key="events:f_event").set_value("api.request").run()  # new filters: back to page 1
    assert "Page 1 of" in nav()
    assert set(rows["customer_id"]) == {"cus_003"}


def test_delete_an_import_through_the_dialog(app_engine):
    at = upload(page("events"), sample("llm_tokens.csv"), sample("api_requests.csv"))
    ids = {source: i for i, source, *_ in imports_of(app_engine)}
    at.selectbox(key="events:delete_choice").set_value(ids["llm_tokens.csv"]).run()
    at.button(key="events:delete").click().run()
    assert not at.exception, at.exception
    assert at.session_state["events:confirm_delete"] == ids["llm_tokens.csv"]
    assert any("1,860 events" in m.value for m in at.markdown)
    at.button(key="events:delete_cancel").click().run()
    assert "events:confirm_delete" not in at.session_state
    assert event_count(app_engine) == 1860 + 2790

    at.button(key="events:delete").click().run()
    at.button(key="events:delete_confirm").click().run()
    assert not at.exception, at.exception
    assert "Deleted 1,860 events of import" in at.success[-1].value
    assert event_count(app_engine) == 2790
    assert [r[1] for r in imports_of(app_engine)] == ["api_requests.csv"]
    assert set(dataframe(at, "imports")["source"]) == {"api_requests.csv"}
    assert "of 2,790, newest first" in " ".join(m.value for m in at.markdown)


# --------------------------------------------------------------------------- pure helpers


def test_parse_choices():
    assert ev.parse_choices("a, b ,c") == (("a", "b", "c"), None)
    assert ev.parse_choices("gpt-4o:3, claude:1, llama") == (("gpt-4o", "claude", "llama"), (3.0, 1.0, 1.0))
    assert ev.parse_choices("us:east, eu:west") == (("us:east", "eu:west"), None)
    values, weights = ev.parse_choices("user_{001..120}")
    assert values[0] == "user_001" and values[-1] == "user_120" and len(values) == 120 and weights is None
    assert ev.parse_choices("n{8..10}:2")[0] == ("n8", "n9", "n10")
    for bad in ("", " , ", "a, a", "x:-1", "r{5..1}"):
        with pytest.raises(ValueError):
            ev.parse_choices(bad)


def test_plans_for_metrics_cover_every_property_a_metric_reads(app_engine):
    m1 = metrics.create_metric(app_engine, data=metrics.TEMPLATES["llm_tokens"].form())
    m2 = metrics.create_metric(app_engine, data={
        "name": "EU calls", "code": "eu_calls", "unit": "requests", "event_name": "api.request",
        "aggregation": "count", "filters": {"region": ["eu-west"]}, "group_by": ["endpoint", "customer.tier"],
    })
    m3 = metrics.create_metric(app_engine, data={
        "name": "Peak GB", "code": "peak_gb", "unit": "GB", "event_name": "disk.usage",
        "aggregation": "max", "value_property": "gb",
    })
    streams = {s.event_name: s for s in ev.plans_for_metrics([m1, m2, m3])}
    assert set(streams) == {"llm.tokens", "api.request", "disk.usage"}
    llm = {p.name: p for p in streams["llm.tokens"].properties}
    assert llm["tokens"].numeric and llm["tokens"].dist == "lognormal" and "value of llm_tokens" in llm["tokens"].role
    assert llm["model"].kind == "choice" and "gpt-4o" in llm["model"].choices
    api = {p.name: p for p in streams["api.request"].properties}
    assert api["region"].choices == "eu-west" and "filter" in api["region"].role
    assert api["customer.tier"].kind == "choice"
    assert streams["disk.usage"].properties[0].name == "gb" and streams["disk.usage"].properties[0].numeric
    specs = ev.build_specs(list(streams.values()), ev.Settings(3, date(2026, 10, 1), 2, 10, "steady", 1))
    frames = [simulate.simulate(s) for s in specs]
    assert all(len(f) == 20 for f in frames)
    api_frame = frames[[s.event_name for s in specs].index("api.request")]
    assert set(api_frame["region"]) == {"eu-west"}


def test_build_specs_limits_and_messages():
    stream = ev.plan_for_event("ping", "ms", "region")
    with pytest.raises(ValueError, match="more than the app simulates"):
        ev.build_specs([stream], ev.Settings(1, date(2026, 10, 1), 366, ev.MAX_SIMULATED_EVENTS, "steady", 0))
    with pytest.raises(ValueError, match="choose at least one"):
        ev.build_specs([], ev.Settings(1, date(2026, 10, 1), 1, 1, "steady", 0))
    broken = ev.StreamPlan("ping", [ev.PropertyPlan("ms", "number", kind="int", dist="uniform", low=5, high=1)])
    with pytest.raises(ValueError, match="ping · ms: low > high"):
        ev.build_specs([broken], ev.Settings(1, date(2026, 10, 1), 1, 1, "steady", 0))


def test_query_events_pages_with_sql(app_engine):
    ingest.import_file(app_engine, SAMPLES / "api_requests.json")
    q = ev.EventQuery()
    assert ev.count_events(app_engine, q) == 50
    pages = [ev.query_events(app_engine, q, limit=20, offset=o) for o in (0, 20, 40)]
    assert [len(p) for p in pages] == [20, 20, 10]
    keys = [k for p in pages for k in p["idempotency_key"]]
    assert len(set(keys)) == 50
    ts = [t for p in pages for t in p["ts_us"]]
    assert ts == sorted(ts, reverse=True)
    one = ev.EventQuery(customer_id=pages[0].iloc[0]["customer_id"], start=date(2026, 10, 1), end=date(2026, 10, 31))
    assert 0 < ev.count_events(app_engine, one) < 50


def test_format_ts():
    out = ev.format_ts(pd.Series([1_790_985_600_000_000, 1_790_985_600_123_000, 1_790_985_600_000_001]))
    assert out.tolist() == ["2026-10-03 00:00:00 UTC", "2026-10-03 00:00:00.123 UTC", "2026-10-03 00:00:00.000001 UTC"]


def test_browser_queries_on_each_database(engine):
    """The paged SQL, the import list and delete run the same on SQLite and PostgreSQL."""
    first = ingest.import_file(engine, SAMPLES / "api_requests.json")
    second = ingest.import_file(engine, SAMPLES / "llm_tokens.csv")
    assert ev.stored_event_names(engine) == ["api.request", "llm.tokens"]
    assert ev.stored_days(engine) == (date(2026, 10, 1), date(2026, 10, 31))
    q = ev.EventQuery(event_name="llm.tokens", customer_id="cus_003", start=date(2026, 10, 10), end=date(2026, 10, 12))
    total = ev.count_events(engine, q)
    page_rows = ev.query_events(engine, q, limit=10, offset=10)
    assert 10 < total and len(page_rows) == min(10, total - 10)
    assert set(page_rows["customer_id"]) == {"cus_003"}
    imports = ev.list_imports(engine)
    assert imports["id"].tolist() == [second.import_id, first.import_id]
    assert imports["accepted"].tolist() == [1860, 50]
    assert imports["created_at"].str.endswith(" UTC").all()
    assert store.delete_import(engine, second.import_id) == 1860
    assert ev.count_events(engine, ev.EventQuery()) == 50


def test_import_a_file_by_its_path_on_the_server(app_engine, tmp_path):
    at = page("events")
    at.text_input(key="events:server_path").set_value(str(tmp_path / "nope.csv")).run()
    assert any("no file at" in e.value for e in at.error)
    assert at.button(key="events:import_path").disabled
    at.text_input(key="events:server_path").set_value(str(tmp_path)).run()
    assert any("is a folder" in e.value for e in at.error)
    at.text_input(key="events:server_path").set_value(str(SAMPLES / "llm_tokens.csv")).run()
    assert not at.error
    at.button(key="events:import_path").click().run()
    assert not at.exception, at.exception
    expected = ingest.import_file(store.make_engine("sqlite://"), SAMPLES / "llm_tokens.csv")
    assert dataframe(at, "summary").to_dict("records") == [{
        "File": "llm_tokens.csv", "Accepted": expected.accepted, "Duplicates": 0, "Rejected": 0, "In the future": 0, "Status": "imported",
    }]
    assert event_count(app_engine) == expected.accepted


# --------------------------------------------------------------------------- issue 8


def test_an_upload_whose_every_row_is_rejected_is_not_a_success(app_engine):
    data = b"event_name,customer_id,timestamp\nbad name,c1,2026-10-01\napi.request,,2026-10-01\n"
    at = upload(page("events"), ("all_bad.csv", data, "text/csv"))
    assert not at.success
    assert any("Nothing imported from **all\\_bad.csv**: all 2 rows were rejected" in e.value for e in at.error)
    assert dataframe(at, "summary").iloc[0]["Status"] == "every row rejected: nothing stored"
    assert len(dataframe(at, "rejected")) == 2 and event_count(app_engine) == 0


def test_some_rejected_rows_give_a_warning_not_an_all_clear(app_engine):
    at = upload(page("events"), sample("bad_rows.csv"))
    assert not at.success
    assert any("6 rejected" in w.value and "listed below" in w.value for w in at.warning)


def test_a_workspace_file_uploaded_as_events_points_to_the_workspace_page(app_engine):
    doc = json.dumps({"timezone": "UTC", "metrics": [], "plans": [], "subscriptions": []}).encode()
    at = upload(page("events"), ("workspace-20261125.json", doc, "application/json"))
    (error,) = at.error
    assert "this is a workspace file" in error.value and "import it on the Workspace page" in error.value
    assert event_count(app_engine) == 0 and imports_of(app_engine) == []


def test_future_events_are_counted_in_the_import_result(app_engine):
    data = b"event_name,customer_id,timestamp\napi.request,c1,2026-10-01\napi.request,c1,2099-01-01\napi.request,c2,2150-01-01\n"
    at = upload(page("events"), ("plan.csv", data, "text/csv"))
    assert dataframe(at, "summary").iloc[0]["In the future"] == 2
    assert any("2 of the imported events are dated after now" in w.value for w in at.warning)
    assert at.success  # nothing was rejected


def test_one_event_is_deleted_from_the_browser(app_engine):
    data = b"event_name,customer_id,timestamp\napi.request,c1,2026-10-01\napi.request,c1,2099-01-01T00:00:00Z\n"
    ingest.import_file(app_engine, data, name="typo.csv")
    at = page("events")
    typo = dataframe(at, "events").iloc[0]  # newest first: the 2099 event
    assert typo["timestamp"] == "2099-01-01 00:00:00 UTC"
    at.selectbox(key="events:event_choice").set_value(typo["idempotency_key"]).run()
    at.button(key="events:delete_event").click().run()
    assert not at.exception, at.exception
    assert any('"timestamp": "2099-01-01T00:00:00Z"' in c.value for c in at.code)
    at.button(key="events:delete_event_confirm").click().run()
    assert not at.exception, at.exception
    assert any("Deleted the event api.request of c1 at 2099-01-01T00:00:00Z" in plain(s.value) for s in at.success)
    assert event_count(app_engine) == 1
    assert [(r[2], r[1]) for r in imports_of(app_engine)] == [(1, "typo.csv")]  # the import's count follows
    assert dataframe(at, "events")["timestamp"].tolist() == ["2026-10-01 00:00:00 UTC"]
    assert "events:confirm_delete_event" not in at.session_state
