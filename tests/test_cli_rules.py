"""Issue 8: the CLI rules settled in the README, `invoice --period` on day/week plans that start
mid-month, and `metering workspace export|import` (contract §6), through `cli.main` and, for a
few cases, the installed command."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from metering import cli, metrics, plan_store, store
from metering.workspace import export_workspace
from tests.test_cli_billing import WORKSPACE, fails, fails_in_process, ok


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("METERING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/store.db")
    return str(tmp_path)


def write(tmp: str, name: str, content: Any) -> str:
    path = Path(tmp) / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def fails_here(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """cli.main on this test's store: exit 2, nothing on stdout, one line on stderr."""
    assert cli.main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def run_ok(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    assert cli.main(args) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


EVENTS = "event_name,customer_id,timestamp\napi.request,acme,2026-10-16T10:00:00Z\napi.request,acme,2026-10-20T10:00:00Z\n"


# --- rules settled in the README --------------------------------------------------------------


@pytest.mark.parametrize("start, end", [("2026-10-02", "2026-10-01"), ("2026-10-01", "2026-10-01")])
def test_aggregate_with_to_not_after_from_exits_2(tmp, capsys, monkeypatch, start, end):
    ws, ev = write(tmp, "ws.json", WORKSPACE), write(tmp, "ev.csv", EVENTS)
    line = fails_in_process(["aggregate", "--workspace", ws, "--events", ev, "--metric", "api", "--from", start, "--to", end],
                            capsys, monkeypatch, tmp)
    assert line == "metering: error: --to must be later than --from"


@pytest.mark.parametrize("content", ["", "  \n"])
def test_an_empty_json_events_file_is_unreadable(tmp, capsys, monkeypatch, content):
    ws, ev = write(tmp, "ws.json", WORKSPACE), write(tmp, "empty.json", content)
    line = fails_in_process(["aggregate", "--workspace", ws, "--events", ev, "--metric", "api",
                             "--from", "2026-10-01", "--to", "2026-11-01"], capsys, monkeypatch, tmp)
    assert "empty.json" in line and "empty" in line
    line = fails_here(["import", ev], capsys)
    assert "is empty" in line
    assert store.event_count(store.make_engine()) == 0


def test_an_empty_json_lines_file_is_no_events_and_an_empty_array_is_too(tmp, capsys):
    # The contrast that makes the rule: an empty JSON Lines file and [] are valid, with no event.
    for name, content in (("none.jsonl", ""), ("none.json", "[]")):
        assert run_ok(["import", write(tmp, name, content)], capsys)["accepted"] == 0


def test_timeline_on_a_metric_the_plan_does_not_price_exits_2(tmp, capsys, monkeypatch):
    ws, ev = write(tmp, "ws.json", WORKSPACE), write(tmp, "ev.csv", EVENTS)
    line = fails_in_process(["timeline", "--workspace", ws, "--events", ev, "--plan", "payg", "--metric", "storage",
                             "--periods", "2"], capsys, monkeypatch, tmp)
    assert line == "metering: error: plan 'payg' has no charge or quota on metric 'storage'"


@pytest.mark.parametrize("start", [1791028800, 1791028800.5, "1791028800"])
def test_a_subscription_start_given_as_epoch_seconds_exits_2(tmp, capsys, monkeypatch, start):
    doc = copy.deepcopy(WORKSPACE)
    doc["subscriptions"][0]["start"] = start
    ws, ev = write(tmp, "ws.json", doc), write(tmp, "ev.csv", EVENTS)
    line = fails_in_process(["invoice", "--workspace", ws, "--events", ev, "--period", "2026-10"], capsys, monkeypatch, tmp)
    assert line.startswith("metering: error: subscriptions[0].start: ") and "epoch seconds" in line


# --- invoice --period on plans that start mid-month ---------------------------------------------


@pytest.mark.parametrize("interval, end", [("week", "2026-10-22T00:00:00Z"), ("day", "2026-10-16T00:00:00Z"),
                                           ("month", "2026-11-15T00:00:00Z")])
def test_period_of_the_start_month_is_period_0_for_any_interval(tmp, capsys, interval, end):
    doc = copy.deepcopy(WORKSPACE)
    doc["plans"][1]["interval"] = interval
    doc["subscriptions"] = [{"customer_id": "acme", "plan": "payg", "start": "2026-10-15"}]
    ws = write(tmp, "ws.json", doc)
    ev = write(tmp, "ev.csv", "event_name,customer_id,timestamp\napi.request,acme,2026-10-15T10:00:00Z\n")
    report = run_ok(["invoice", "--workspace", ws, "--events", ev, "--period", "2026-10"], capsys)
    [invoice] = report["invoices"]
    assert invoice["period"] == {"start": "2026-10-15T00:00:00Z", "end": end}
    assert invoice["lines"][0]["units"] == "1"
    timeline = run_ok(["timeline", "--workspace", ws, "--events", ev, "--plan", "payg", "--metric", "api", "--periods", "1"], capsys)
    assert timeline["timelines"][0]["periods"][0]["start"] == invoice["period"]["start"]
    # no period of the subscription starts in September: no invoice, never a period before the start
    assert run_ok(["invoice", "--workspace", ws, "--events", ev, "--period", "2026-09"], capsys)["invoices"] == []


# --- metering workspace export / import -----------------------------------------------------------


def test_workspace_import_then_export_round_trips_and_leaves_out_unset_fields(tmp, capsys):
    ws = write(tmp, "ws.json", WORKSPACE)
    assert run_ok(["workspace", "import", ws], capsys) == {"metrics": 4, "plans": 2, "subscriptions": 1}
    exported = run_ok(["workspace", "export"], capsys)
    assert [m["code"] for m in exported["metrics"]] == ["api", "seats", "sms", "storage"]
    assert all("description" not in m and "distinct_by" not in m for m in exported["metrics"])
    assert "value_property" not in exported["metrics"][0] and exported["metrics"][2]["value_property"] == "n"
    assert exported == export_workspace(store.make_engine())
    # the export imports again to the same document
    again = write(tmp, "again.json", exported)
    run_ok(["workspace", "import", again], capsys)
    assert run_ok(["workspace", "export"], capsys) == exported


def test_workspace_import_replaces_and_merge_adds_and_updates(tmp, capsys):
    run_ok(["workspace", "import", write(tmp, "ws.json", WORKSPACE)], capsys)
    engine = store.make_engine()
    plan_store.set_timezone(engine, timezone="Europe/Berlin")
    merge = {
        "metrics": [{"name": "Emails", "code": "emails", "unit": "emails"}],
        "plans": [{"code": "payg", "name": "PAYG v2", "currency": "USD",
                   "charges": [{"metric": "api", "model": "standard", "unit_price": "0.2"},
                               {"metric": "emails", "model": "standard", "unit_price": "0.001"}]}],
        "subscriptions": [{"customer_id": "bob", "plan": "pro", "start": "2026-11-01"}],  # plan from the store
    }
    assert run_ok(["workspace", "import", "--merge", write(tmp, "merge.json", merge)], capsys) == {
        "metrics": 1, "plans": 1, "subscriptions": 1}
    after = export_workspace(engine)
    assert after["timezone"] == "Europe/Berlin"  # the file gives none: kept
    assert [m["code"] for m in after["metrics"]] == ["api", "emails", "seats", "sms", "storage"]
    assert {p["code"]: p["name"] for p in after["plans"]} == {"payg": "PAYG v2", "pro": "Pro"}
    assert [s["customer_id"] for s in after["subscriptions"]] == ["acme", "bob"]
    # replace: only the file's content is left (events untouched)
    run_ok(["workspace", "import", write(tmp, "only.json", {"metrics": merge["metrics"]})], capsys)
    after = export_workspace(engine)
    assert (after["timezone"], [m["code"] for m in after["metrics"]], after["plans"], after["subscriptions"]) == (
        "UTC", ["emails"], [], [])


@pytest.mark.parametrize("doc, merge, message", [
    ({"plans": [{"code": "x", "name": "X", "currency": "USD", "charges": [{"metric": "nope", "model": "standard",
                                                                          "unit_price": "1"}]}]}, False,
     "plans[0].charges[0].metric: unknown metric 'nope'"),
    ({"subscriptions": [{"customer_id": "c", "plan": "pro", "start": "2026-10-01"}]}, False,
     "subscriptions[0].plan: plan 'pro' is not in the workspace"),
    ({"metrics": [{"name": "API calls", "code": "api", "unit": "calls", "metric_type": "limit_metered"}]}, True,
     "merging would leave the store's workspace invalid: plans[0].charges[0].metric: 'api' is a limit_metered metric"),
    ({"timezone": "Mars/Olympus"}, True, "timezone: 'Mars/Olympus' is not an IANA time zone name"),
    ("{not json", False, "is not valid JSON"),
    ("", True, "is empty"),
])
def test_an_invalid_workspace_document_changes_nothing(tmp, capsys, monkeypatch, doc, merge, message):
    run_ok(["workspace", "import", write(tmp, "ws.json", WORKSPACE)], capsys)
    before = export_workspace(store.make_engine())
    args = ["workspace", "import", write(tmp, "bad.json", doc)] + (["--merge"] if merge else [])
    line = fails_here(args, capsys)
    assert message in line, line
    assert export_workspace(store.make_engine()) == before


def test_workspace_commands_through_the_installed_command(tmp_path: Path):
    files = {"tmp": str(tmp_path)}
    ws = write(str(tmp_path), "ws.json", WORKSPACE)
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    assert ok(["workspace", "import", ws], files, env=env) == {"metrics": 4, "plans": 2, "subscriptions": 1}
    assert [p["code"] for p in ok(["workspace", "export"], files, env=env)["plans"]] == ["payg", "pro"]
    assert "the following arguments are required" in fails(["workspace"], files)
    assert "cannot read workspace" in fails(["workspace", "import", str(tmp_path / "missing.json")], files)


def test_a_saved_metric_keeps_its_code(tmp, capsys):
    """Issue 8 #1: renaming a code would orphan the plans that price it; the code is fixed."""
    run_ok(["workspace", "import", write(tmp, "ws.json", WORKSPACE)], capsys)
    engine = store.make_engine()
    api = metrics.get_metric(engine, code="api")
    assert api is not None
    data = {**api.model_dump(exclude={"id", "created_at", "updated_at"}), "code": "api_calls"}
    with pytest.raises(metrics.InvalidMetric) as info:
        metrics.update_metric(engine, code="api", data=data)
    assert "cannot change once saved" in info.value.errors["code"]
    assert metrics.form_errors(engine, data, current_code="api")["code"] == metrics.CODE_FIXED
    # everything else may change, and the workspace stays billable and exportable
    metrics.update_metric(engine, code="api", data={**data, "code": "api", "name": "API requests"})
    run_ok(["invoice", "--period", "2026-10", "--events", write(tmp, "ev.csv", EVENTS)], capsys)
    assert run_ok(["workspace", "export"], capsys)["metrics"][0]["name"] == "API requests"
