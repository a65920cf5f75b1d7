"""`metering export`, `metering import-definitions` and `metering events export` (contract §9),
run as the installed command: JSON on stdout, one line on stderr and exit 2 for bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from metering import ingest, store
from metering.workspace import import_workspace, parse_workspace
from tests.peer_cases import KITCHEN
from tests.test_peers_roundtrip import EXACT

METERING = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "metering")


def run(*args: str, db: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run([METERING, *args], capture_output=True, text=True, env=env, input=stdin, timeout=120)


@pytest.fixture
def tmp(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "ws.json").write_text(json.dumps(KITCHEN))
    (tmp_path / "exact.json").write_text(json.dumps(EXACT))
    return {"dir": tmp_path, "ws": tmp_path / "ws.json", "exact": tmp_path / "exact.json", "db": tmp_path / "m.db"}


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def fails(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 2, result.stdout
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("metering: error: "), result.stderr
    assert words in result.stderr, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("target", ["lago", "openmeter", "stripe", "orb"])
def test_export_prints_the_contract_document(tmp: dict[str, Path], target: str) -> None:
    doc = ok(run("export", "--workspace", str(tmp["ws"]), "--to", target, db=tmp["db"]))
    assert set(doc) == {"target", "resources", "unsupported"} and doc["target"] == target
    assert doc["resources"] and doc["unsupported"]


def test_export_one_plan_and_from_the_store(tmp: dict[str, Path]) -> None:
    doc = ok(run("export", "--workspace", str(tmp["exact"]), "--to", "lago", "--plan", "basic", db=tmp["db"]))
    assert [r["kind"] for r in doc["resources"]] == ["billable_metric", "billable_metric", "plan"]
    import_workspace(store.make_engine(f"sqlite:///{tmp['db']}"), parse_workspace(EXACT))
    from_store = ok(run("export", "--to", "lago", "--plan", "basic", db=tmp["db"]))
    assert from_store == doc


def test_export_bad_calls_exit_2(tmp: dict[str, Path]) -> None:
    fails(run("export", "--workspace", str(tmp["ws"]), "--to", "lago", "--plan", "nope", db=tmp["db"]),
          "plan 'nope' is not in the workspace")
    fails(run("export", "--workspace", str(tmp["ws"]), "--to", "chargebee", db=tmp["db"]), "invalid choice")
    fails(run("export", "--workspace", str(tmp["dir"] / "missing.json"), "--to", "orb", db=tmp["db"]), "cannot read")


@pytest.mark.parametrize("target", ["lago", "openmeter"])
def test_import_definitions_prints_a_workspace_that_bills_the_same(tmp: dict[str, Path], target: str) -> None:
    exported = tmp["dir"] / f"{target}.json"
    exported.write_text(run("export", "--workspace", str(tmp["exact"]), "--to", target, db=tmp["db"]).stdout)
    doc = ok(run("import-definitions", "--from", target, str(exported), db=tmp["db"]))
    assert set(doc) == {"timezone", "metrics", "plans", "subscriptions"}
    assert sorted(m["code"] for m in doc["metrics"]) == sorted(m["code"] for m in EXACT["metrics"])
    (tmp["dir"] / "back.json").write_text(json.dumps(doc))
    events = tmp["dir"] / "events.jsonl"
    events.write_text("".join(json.dumps({"event_name": "api_calls", "customer_id": f"c{i % 3}",
                                          "timestamp": f"2026-10-{1 + i % 28:02d}T10:00:00Z",
                                          "properties": {"model": "a"}}) + "\n" for i in range(400)))
    original = ok(run("invoice", "--workspace", str(tmp["exact"]), "--events", str(events), "--plan", "pro",
                      "--period", "2026-10", db=tmp["db"]))
    imported = ok(run("invoice", "--workspace", str(tmp["dir"] / "back.json"), "--events", str(events), "--plan",
                      "pro", "--period", "2026-10", db=tmp["db"]))
    assert original == imported and original["total"] != "0"


def test_import_definitions_apply_loads_the_store(tmp: dict[str, Path]) -> None:
    exported = tmp["dir"] / "om.json"
    exported.write_text(run("export", "--workspace", str(tmp["exact"]), "--to", "openmeter", db=tmp["db"]).stdout)
    counts = ok(run("import-definitions", "--from", "openmeter", str(exported), "--apply", db=tmp["db"]))
    assert counts == {"metrics": 5, "plans": 2, "subscriptions": 0}
    assert ok(run("export", "--to", "openmeter", db=tmp["db"])) == json.loads(exported.read_text())


def test_import_definitions_bad_files_exit_2(tmp: dict[str, Path]) -> None:
    bad = tmp["dir"] / "bad.json"
    bad.write_text('[{"billable_metric": {"code": "x", "name": "X", "aggregation_type": "custom_agg"}}]')
    fails(run("import-definitions", "--from", "lago", str(bad), db=tmp["db"]),
          "bad.json: [0].billable_metric.aggregation_type: 'custom_agg' has no workbench equivalent")
    fails(run("import-definitions", "--from", "stripe", str(bad), db=tmp["db"]), "invalid choice")
    fails(run("import-definitions", "--from", "lago", str(tmp["dir"] / "none.json"), db=tmp["db"]), "cannot read")
    fails(run("import-definitions", "--from", "lago", str(bad), "--merge", db=tmp["db"]), "custom_agg")


def test_events_export_streams_both_formats(tmp: dict[str, Path]) -> None:
    engine = store.make_engine(f"sqlite:///{tmp['db']}")
    src = tmp["dir"] / "in.csv"
    src.write_text("event_name,customer_id,timestamp,tokens\n" + "".join(
        f"llm.tokens,c{i % 4},2026-10-0{1 + i % 9}T00:00:0{i % 10}Z,{i}.50\n" for i in range(23)))
    ingest.import_file(engine, src)
    ce = run("events", "export", "--format", "cloudevents", "--source", "svc", "--batch-size", "5", db=tmp["db"])
    assert ce.returncode == 0, ce.stderr
    lines = ce.stdout.splitlines()
    assert len(lines) == 23 and all(json.loads(line)["source"] == "svc" for line in lines)
    assert '"data":{"tokens":0.50}' in lines[0]
    lago = run("events", "export", "--format", "lago", db=tmp["db"])
    assert [json.loads(line)["event"]["code"] for line in lago.stdout.splitlines()] == ["llm.tokens"] * 23
    fails(run("events", "export", "--format", "csv", db=tmp["db"]), "invalid choice")
    fails(run("events", "export", "--format", "lago", "--batch-size", "0", db=tmp["db"]), "at least 1")
    fails(run("events", db=tmp["db"]), "required")
