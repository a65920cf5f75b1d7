"""The app's parts of contract §9 through the real navigation: the Developers page's export with
its compatibility table and copyable payloads, the Workspace page's import of Lago / OpenMeter
definitions (preview, refusal, import), the Events page's export of stored events."""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine

from metering import metrics, peers, plan_store, store
from metering.peers import cloudevents, lago
from metering.peers.stored import stored_event_batches
from metering.workspace import parse_workspace, workspace_from_store
from tests.app.conftest import page
from tests.test_peers_roundtrip import EXACT
from workbench import peers as pw
from workbench.text import plain


def export_section(at):  # noqa: ANN001, ANN201
    return at.segmented_control(key=pw.KEY + "target")


def tables(at):  # noqa: ANN001, ANN201
    """(does not translate, translates) tables of the export part, as they read (st.table cells
    are Markdown, so the page escapes their text)."""
    (lost,) = [t.value for t in at.table if "Why not" in t.value.columns]
    (done,) = [t.value for t in at.table if "Becomes" in t.value.columns]
    return lost.map(plain), done.map(plain)


def test_developers_shows_the_lago_export_with_its_compatibility_table(demo_engine: Engine) -> None:
    at = page("developers")
    assert not at.exception, at.exception
    assert export_section(at).value == "lago"
    expected = peers.export(workspace_from_store(demo_engine), "lago")
    lost, done = tables(at)
    assert list(lost["Workbench item"]) == [u.item for u in expected.unsupported]
    assert list(lost["Why not"]) == [u.reason for u in expected.unsupported]
    assert any("refreshes every period" in why for why in lost["Why not"])
    assert list(done["Workbench item"]) == [t.item for t in expected.translated]
    assert list(done["Becomes"]) == [t.becomes for t in expected.translated]
    metric_values = {m.label: m.value for m in at.metric}
    assert metric_values["Payloads"] == str(len(expected.resources))
    assert metric_values["Do not translate"] == str(len(expected.unsupported))
    bodies = [c.value for c in at.code if c.language == "json" and c.value.startswith("{") and "billable_metric" in c.value]
    assert json.loads(bodies[0]) == expected.resources[0].payload  # copyable, exactly the payload


def test_developers_export_follows_target_and_plan(demo_engine: Engine) -> None:
    at = page("developers")
    export_section(at).set_value("stripe").run()
    assert not at.exception, at.exception
    lost, _ = tables(at)
    assert any("no percentage model" in why for why in lost["Why not"])
    at.selectbox(key=pw.KEY + "plan").set_value("starter").run()
    expected = peers.export(workspace_from_store(demo_engine), "stripe", plan="starter")
    assert {m.label: m.value for m in at.metric}["Payloads"] == str(len(expected.resources))
    lost, done = tables(at)
    assert all("growth" not in item for item in [*lost["Workbench item"], *done["Workbench item"]])


def test_developers_export_on_an_empty_workspace_says_so(app_engine: Engine) -> None:
    at = page("developers")
    assert not at.exception, at.exception
    assert any("No metrics or plans yet" in i.value for i in at.info)


def test_pure_helpers_follow_the_engine(demo_engine: Engine) -> None:
    export = pw.build_export(demo_engine, "openmeter", None)
    assert json.loads(pw.export_text(export)) == export.to_json()
    groups = pw.payload_groups(export)
    assert list(groups) == ["meter", "feature", "plan"]
    assert sum(len(v) for v in groups.values()) == len(export.resources)


# ------------------------------------------------------------------------------ Workspace page


def lago_export_bytes() -> bytes:
    return json.dumps(peers.export(parse_workspace(EXACT), "lago").to_json()).encode()


def test_workspace_imports_lago_definitions_after_a_preview(app_engine: Engine) -> None:
    at = page("workspace")
    at.file_uploader(key=pw.IMPORT_KEY + "upload:lago").set_value(("lago.json", lago_export_bytes(),
                                                                    "application/json")).run()
    assert not at.exception, at.exception
    assert any("Valid Lago definitions: 5 metrics" in s.value for s in at.success)
    assert metrics.list_metrics(app_engine) == []  # nothing changes before Import
    at.button(key=pw.IMPORT_KEY + "import").click().run()
    assert not at.exception, at.exception
    assert sorted(m.code for m in metrics.list_metrics(app_engine)) == sorted(m["code"] for m in EXACT["metrics"])
    assert sorted(p.code for p in plan_store.list_plans(app_engine)) == ["basic", "pro"]
    assert any("Imported Lago definitions (replace): 5 metrics, 2 plans" in plain(s.value) for s in at.success)


def test_workspace_refuses_definitions_it_cannot_reproduce(app_engine: Engine) -> None:
    metrics.create_metric(app_engine, data={"name": "Mine", "code": "mine", "unit": "x", "aggregation": "count"})
    at = page("workspace")
    at.segmented_control(key=pw.IMPORT_KEY + "source").set_value("openmeter").run()
    bad = json.dumps([{"slug": "avg", "aggregation": "AVG", "eventType": "x"}]).encode()
    at.file_uploader(key=pw.IMPORT_KEY + "upload:openmeter").set_value(("om.json", bad, "application/json")).run()
    assert not at.exception, at.exception
    assert any("om.json: [0].aggregation: 'AVG' has no workbench equivalent" in e.value.replace("\\", "")
               for e in at.error)
    assert [m.code for m in metrics.list_metrics(app_engine)] == ["mine"]


# ------------------------------------------------------------------------------ Events page


def test_events_page_offers_the_export_of_stored_events(demo_engine: Engine) -> None:
    at = page("events")
    assert not at.exception, at.exception
    count = store.event_count(demo_engine)
    assert at.selectbox(key=pw.EVENTS_KEY + "format").value == "cloudevents"
    labels = [b.proto.label for b in at.get("download_button")]
    assert f"Download {count:,} events" in labels


def test_the_events_file_is_the_streamed_converters_output(sqlite_engine: Engine, write_file) -> None:  # noqa: ANN001
    from metering import ingest

    ingest.import_file(sqlite_engine, write_file("e.csv", "event_name,customer_id,timestamp,n\n"
                                                          + "".join(f"a,c{i},2026-10-0{1 + i % 9},{i}.0\n"
                                                                    for i in range(12))))
    for fmt, convert in (("cloudevents", lambda b: "".join(cloudevents.cloudevents(b))),
                         ("lago", lambda b: "".join(lago.lago_events(b)))):
        data = pw.events_export_file(sqlite_engine, fmt, batch_size=5).decode()
        assert data == convert(stored_event_batches(sqlite_engine, 100))
        assert len(data.splitlines()) == 12
