"""The Workspace page through the real navigation: the demo in one click, export, import (a bad file
names the path of the bad field and changes nothing), timezone, reset."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from sqlalchemy.engine import Engine

from metering import billing, demo, ingest, invoices, metrics, plan_store, store
from metering.frame import EventFrame
from metering.preview import fmt
from metering.workspace import WorkspaceError, export_workspace, import_workspace, workspace_from_store
from tests.app.conftest import ROOT, page
from workbench import workspace as ww
from workbench.text import plain

GOOD = {
    "timezone": "Europe/Berlin",
    "metrics": [{"name": "API calls", "code": "api", "unit": "calls", "event_name": "api.request", "aggregation": "count"}],
    "plans": [{"code": "pro", "name": "Pro", "currency": "EUR", "base_fee": "49",
               "charges": [{"metric": "api", "model": "standard", "unit_price": "0.01"}]}],
    "subscriptions": [{"customer_id": "cus_001", "plan": "pro", "start": "2026-10-01"}],
}
BAD_TIERS = {
    "metrics": GOOD["metrics"],
    "plans": [{"code": "pro", "name": "Pro", "currency": "USD", "charges": [
        {"metric": "api", "model": "graduated", "tiers": [
            {"up_to": 1000, "unit_price": "0.02"}, {"up_to": 500, "unit_price": "0.01"}, {"up_to": None, "unit_price": "0.005"}]}]}],
}


def values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def upload(at, name: str, data: bytes):
    at.file_uploader(key="workspace:upload").set_value((name, data, "application/json")).run()
    assert not at.exception, at.exception
    return at


def test_load_demo_in_one_click_on_an_empty_workspace(app_engine: Engine) -> None:
    at = page("workspace")
    assert not at.exception, at.exception
    assert values(at) == {"Metrics": "0", "Plans": "0", "Subscriptions": "0", "Events": "0", "Timezone": "UTC"}
    at.button(key="workspace:demo").click().run(timeout=90)
    assert not at.exception, at.exception
    events = store.event_count(app_engine)
    assert values(at) == {"Metrics": "6", "Plans": "3", "Subscriptions": "11", "Events": fmt(events), "Timezone": "UTC"}
    assert f"{fmt(events)} events" in plain(at.success[0].value)
    assert 50_000 <= events <= 100_000
    history = demo.span()
    bounds = EventFrame.from_store(app_engine).time_bounds()
    assert bounds is not None and bounds[1] < history.end.timestamp() * 1_000_000  # the history ends now

    # the timeline the demo is for: cus_unibee under its plan shows 1000 → 1300 → 1400
    frame, ws = EventFrame.from_store(app_engine), workspace_from_store(app_engine)
    billed = invoices.assignments(frame, plans=ws.plans, subscriptions=ws.subscriptions,
                                  plan_code=ws.subscription("cus_unibee").plan, customer_id="cus_unibee")
    rows = billing.timeline(frame, ws.metric("sms_credits"), billed[0].plan, {"cus_unibee": billed[0].schedule("UTC")},
                            periods_count=3)["cus_unibee"]
    assert [r.available for r in rows] == [D(1000), D(1300), D(1400)]
    at.switch_page("pages/timeline.py").run()
    assert not at.exception, at.exception
    (table,) = [d.value for d in at.dataframe if "period" in d.value.columns]
    assert table["available"].tolist() == ["1,000", "1,300", "1,400"]


def test_demo_over_an_existing_workspace_asks_first(app_engine: Engine) -> None:
    metrics.create_metric(app_engine, data={"name": "Mine", "code": "mine", "unit": "x", "aggregation": "count"})
    at = page("workspace")
    at.button(key="workspace:demo").click().run()
    assert any("**1 metric, 0 plans, 0 subscriptions and 0 events**" in m.value for m in at.markdown)
    at.button(key="workspace:demo_no").click().run()
    assert metrics.get_metric(app_engine, code="mine") is not None
    at.button(key="workspace:demo").click().run()
    at.button(key="workspace:demo_yes").click().run(timeout=90)
    assert not at.exception, at.exception
    assert metrics.get_metric(app_engine, code="mine") is None
    assert values(at)["Plans"] == "3"


def test_export_is_the_engine_export(app_engine: Engine) -> None:
    at = page("workspace")
    (button,) = [b for b in at.get("download_button") if b.label == "Download workspace JSON"]
    assert button.disabled  # nothing to export yet
    demo_doc = demo.workspace_document()
    import_workspace(app_engine, demo_doc)
    at.run()
    (button,) = [b for b in at.get("download_button") if b.label == "Download workspace JSON"]
    assert not button.disabled
    text = ww.export_text(app_engine)
    assert json.loads(text) == export_workspace(app_engine)
    assert [m["code"] for m in json.loads(text)["metrics"]] == sorted(m["code"] for m in demo_doc["metrics"])


def test_a_bad_workspace_file_names_the_path_and_changes_nothing(app_engine: Engine) -> None:
    metrics.create_metric(app_engine, data={"name": "Mine", "code": "mine", "unit": "x", "aggregation": "count"})
    with pytest.raises(WorkspaceError) as caught:
        ww.read_upload(json.dumps(BAD_TIERS).encode(), "bad.json")
    message = str(caught.value)
    assert message.startswith("plans[0].charges[0].tiers[1].up_to: tiers must be in ascending order of up_to")

    at = upload(page("workspace"), "bad.json", json.dumps(BAD_TIERS).encode())
    assert plain(at.error[0].value) == f"**bad.json** cannot be imported: {message}"
    assert not [b for b in at.button if b.key == "workspace:import"]  # nothing to import
    assert [m.code for m in metrics.list_metrics(app_engine)] == ["mine"]

    at = upload(page("workspace"), "broken.json", b'{"metrics": [')
    assert "broken.json is not valid JSON: line 1" in plain(at.error[0].value)
    at = upload(page("workspace"), "latin1.json", "{\"timezone\": \"Zürich\"}".encode("latin-1"))
    assert "latin1.json is not UTF-8 text" in plain(at.error[0].value)
    at = upload(page("workspace"), "tz.json", b'{"timezone": "Mars/Base"}')
    assert "timezone: 'Mars/Base' is not an IANA time zone name" in plain(at.error[0].value)


def test_import_replaces_or_merges(app_engine: Engine) -> None:
    metrics.create_metric(app_engine, data={"name": "Mine", "code": "mine", "unit": "x", "aggregation": "count"})
    ingest.import_file(app_engine, ROOT / "sample_events" / "api_requests.json")
    at = upload(page("workspace"), "good.json", json.dumps(GOOD).encode())
    assert "is a valid workspace: 1 metric, 1 plan, 1 subscription, timezone Europe/Berlin" in plain(at.success[0].value)
    assert at.radio(key="workspace:mode").value == ww.REPLACE
    at.radio(key="workspace:mode").set_value(ww.MERGE).run()
    at.button(key="workspace:import").click().run()
    assert not at.exception, at.exception
    assert sorted(m.code for m in metrics.list_metrics(app_engine)) == ["api", "mine"]
    assert "Imported good.json (merge)" in plain(at.success[0].value)

    at = upload(page("workspace"), "good.json", json.dumps(GOOD).encode())
    at.button(key="workspace:import").click().run()
    assert [m.code for m in metrics.list_metrics(app_engine)] == ["api"]
    assert plan_store.get_timezone(app_engine) == "Europe/Berlin"
    assert values(at)["Timezone"] == "Europe/Berlin"
    assert values(at)["Events"] == fmt(store.event_count(app_engine)) != "0"  # events are kept
    plan = workspace_from_store(app_engine).plan("pro")
    assert (plan.base_fee, plan.currency, plan.charges[0].unit_price) == (D(49), "EUR", D("0.01"))


def test_timezone_setting(app_engine: Engine) -> None:
    at = page("workspace")
    at.selectbox(key="workspace:tz").set_value("America/New_York").run()
    assert not at.exception, at.exception
    assert plan_store.get_timezone(app_engine) == "America/New_York"
    assert values(at)["Timezone"] == "America/New_York"
    assert "Timezone set to America/New_York" in plain(at.success[0].value)


def test_reset_asks_then_deletes_everything(app_engine: Engine) -> None:
    import_workspace(app_engine, GOOD)
    ingest.import_file(app_engine, ROOT / "sample_events" / "api_requests.json")
    events = store.event_count(app_engine)
    at = page("workspace")
    at.button(key="workspace:reset").click().run()
    assert at.button(key="workspace:reset_yes").disabled
    at.button(key="workspace:reset_no").click().run()
    assert store.event_count(app_engine) > 0
    at.button(key="workspace:reset").click().run()
    at.checkbox(key="workspace:reset_ack").check().run()
    at.button(key="workspace:reset_yes").click().run()
    assert not at.exception, at.exception
    assert values(at) == {"Metrics": "0", "Plans": "0", "Subscriptions": "0", "Events": "0", "Timezone": "UTC"}
    assert f"Reset: deleted 1 metric, 1 plan, 1 subscription and {events} events." in plain(at.success[0].value)
