"""Read-only events over an OpenMeter events table (made in chdb in OpenMeter's own shape).

The mapping (type → event name, subject → customer, time, id → key, data → properties, one
namespace) answers as the embedded engine does over the same events written as workbench
events; every write is refused with one clear message (engine, CLI exit 2, API 409, the
Events page); a missing table or one of another shape is one line.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from metering import api, apikeys, cli, ingest, metrics, store
from metering.aggregation import aggregate
from metering.engine import event_writer, events_problem, read_only_reason, stored_events
from metering.engine.clickhouse import settings, wiring
from metering.engine.clickhouse.connection import ChdbClient
from metering.engine.clickhouse.writer import ReadOnlyEvents
from metering.engine.frame import EventFrame
from metering.engine.interface import EventQuery
from tests.clickhouse_env import drop_database, sql_engine  # noqa: F401 (fixture)

# OpenMeter's events table (openmeter/streaming/clickhouse: createEventsTable).
OM_DDL = """
CREATE TABLE IF NOT EXISTS `{db}`.`om_events` (
  namespace String, id String, type LowCardinality(String), subject String, source String,
  time DateTime, data String, ingested_at DateTime, stored_at DateTime, store_row_id String
) ENGINE = MergeTree PARTITION BY toYYYYMM(time) ORDER BY (namespace, type, subject, toStartOfHour(time))
"""
T0 = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp())


def cloudevents() -> list[dict]:
    """OpenMeter rows: two namespaces, nested data, numbers as text, booleans, a data that is
    not an object, and times a second apart (OpenMeter keeps seconds)."""
    rows = []
    for i in range(240):
        data: object = {"tokens": i % 17 + 0.5 if i % 5 else str(i), "model": ["a", "b", "c"][i % 3],
                        "usage": {"input": i % 7}, "flag": i % 4 == 0}
        if i % 37 == 0:
            data = "not an object"
        rows.append({"namespace": "default" if i % 6 else "other", "id": f"evt-{i:04d}", "type": ["llm.tokens", "api.request"][i % 2],
                     "subject": f"customer-{i % 5}", "source": "svc", "time": T0 + i * 3_571, "data": json.dumps(data),
                     "stored_at": T0 + i * 3_571 + 2})
    return rows


@pytest.fixture
def om(chdb_dir: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    database = f"om_{uuid.uuid4().hex[:12]}"
    client = ChdbClient(chdb_dir, database)
    client.command(f"CREATE DATABASE `{database}`")
    client.command(OM_DDL.format(db=database))
    rows = cloudevents()
    values = ", ".join(
        "({}, {}, {}, {}, {}, toDateTime({}, 'UTC'), {}, toDateTime({}, 'UTC'), toDateTime({}, 'UTC'), '')".format(
            *(_lit(r[k]) for k in ("namespace", "id", "type", "subject", "source")), r["time"], _lit(r["data"]), r["time"], r["stored_at"])
        for r in rows)
    client.command(f"INSERT INTO `{database}`.`om_events` VALUES {values}")
    url = f"openmeter+chdb://{chdb_dir}?database={database}&namespace=default"
    monkeypatch.setenv(settings.ENV, url)
    yield {"url": url, "rows": rows, "client": client, "database": database}
    setting = settings.parse(url)
    assert setting is not None
    wiring.forget(setting)
    drop_database(chdb_dir, database)


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def reference(rows: list[dict]) -> EventFrame:
    """The same events as workbench events, read by the embedded engine."""
    lines = []
    for r in rows:
        if r["namespace"] != "default":
            continue
        data = json.loads(r["data"])
        lines.append(json.dumps({"event_name": r["type"], "customer_id": r["subject"], "timestamp": r["time"],
                                 "idempotency_key": r["id"], "properties": data if isinstance(data, dict) else {}}))
    return EventFrame.from_parsed(ingest.read_events("\n".join(lines).encode(), name="om.jsonl"))


METRICS = [
    {"aggregation": "count", "event_name": "api.request"},
    {"aggregation": "sum", "value_property": "tokens"},
    {"aggregation": "max", "value_property": "usage.input", "group_by": ["model"]},
    {"aggregation": "unique_count", "distinct_by": "model", "filters": {"flag": ["true"]}},
    {"aggregation": "latest", "value_property": "tokens"},
    {"aggregation": "sum", "value_property": "flag"},  # booleans are not numbers: all skipped
]


def metric(spec: dict):
    return metrics.validate_metric({"name": "M", "code": "m", "unit": "u", "metric_type": "charge_metered",
                                    "event_name": "llm.tokens", **spec})


@pytest.mark.parametrize("spec", METRICS, ids=lambda s: s["aggregation"] + ":" + s.get("value_property", s.get("event_name", "")))
def test_openmeter_events_answer_as_the_same_workbench_events(om, sql_engine, spec):
    events, ref = stored_events(sql_engine), reference(om["rows"])
    m = metric(spec)
    assert aggregate(events, m) == aggregate(ref, m)
    window = {"start": T0 + 86_400 * 2, "end": T0 + 86_400 * 6}
    window = {k: v * 1_000_000 for k, v in window.items()}
    assert aggregate(events, m, **window, customer_ids=["customer-1", "customer-3"]) == \
        aggregate(ref, m, **window, customer_ids=["customer-1", "customer-3"])


def test_openmeter_columns_map_onto_events(om, sql_engine):
    events = stored_events(sql_engine)
    default = [r for r in om["rows"] if r["namespace"] == "default"]
    assert len(events) == len(default)  # one namespace only
    assert sorted(events.customer_ids()) == sorted({r["subject"] for r in default})
    assert dict(events.event_name_counts()) == {t: sum(r["type"] == t for r in default) for t in ("llm.tokens", "api.request")}
    row = default[3]
    found = events.find_event(row["id"])
    assert found == {"event_name": row["type"], "customer_id": row["subject"], "ts_us": row["time"] * 1_000_000,
                     "idempotency_key": row["id"], "properties": row["data"], "import_id": None}
    assert events.find_event(next(r["id"] for r in om["rows"] if r["namespace"] == "other")) is None
    odd = next(r for r in default if not r["data"].startswith("{"))
    assert events.find_event(odd["id"])["properties"] == "{}"
    assert events.count_events(EventQuery(customer_id="customer-2")) == sum(r["subject"] == "customer-2" for r in default)
    page = events.browse(EventQuery(event_name="api.request"), limit=5, offset=0)
    newest = sorted((r for r in default if r["type"] == "api.request"), key=lambda r: r["time"], reverse=True)[:5]
    assert page["idempotency_key"].tolist() == [r["id"] for r in newest]
    exported = [t for t in store.event_tables(sql_engine, 17)]
    assert sum(t.num_rows for t in exported) == len(default) and max(t.num_rows for t in exported) == 17
    assert sorted(k for t in exported for k in t.column("idempotency_key").to_pylist()) == sorted(r["id"] for r in default)


def test_every_write_is_refused_saying_why(om, sql_engine, tmp_path, capsys, monkeypatch):
    reason = read_only_reason(sql_engine)
    assert reason and "OpenMeter" in reason and om["database"] in reason
    writer = event_writer(sql_engine)
    batch = ingest.read_events(b'{"event_name":"e","customer_id":"c","timestamp":1}', name="a.jsonl").batch
    for call in (lambda: writer.insert_rows([("e", "c", 1, "k", "{}")], import_id=None),
                 lambda: writer.store(batch, import_id=None),
                 lambda: writer.delete_import(1), lambda: writer.delete_event("evt-0001"), writer.delete_all):
        with pytest.raises(ReadOnlyEvents, match="OpenMeter"):
            call()
    count = f"SELECT count() AS n FROM `{om['database']}`.`om_events`"
    before = om["client"].query_arrow(count).to_pylist()
    # the CLI: one line, exit 2, nothing imported (not even an import record)
    path = tmp_path / "e.csv"
    path.write_text("event_name,customer_id,timestamp\ne,c,2026-10-01\n")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert cli.main(["import", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "OpenMeter" in err
    with store.make_engine().connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM import_batch").scalar() == 0
    # the API: 409 with the reason
    key = "mtr_openmeter_read_only_key_0123456789abc"
    monkeypatch.setenv(apikeys.ENV_VAR, key)
    with TestClient(Starlette(routes=api.api_routes(sql_engine)), raise_server_exceptions=False) as client:
        response = client.post("/api/v1/events", content=b'{"event_name":"e","customer_id":"c","timestamp":1}',
                               headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert response.status_code == 409 and response.json()["error"] == "read_only"
    assert "OpenMeter" in response.json()["detail"]
    assert om["client"].query_arrow(count).to_pylist() == before


def test_a_missing_or_foreign_table_is_one_line(chdb_dir, monkeypatch, sql_engine):
    database = f"om_{uuid.uuid4().hex[:12]}"
    client = ChdbClient(chdb_dir, database)
    client.command(f"CREATE DATABASE `{database}`")
    try:
        url = f"openmeter+chdb://{chdb_dir}?database={database}"
        monkeypatch.setenv(settings.ENV, url)
        problem = events_problem()
        assert problem and "no table" in problem and f"{database}.om_events" in problem and "\n" not in problem
        client.command(f"CREATE TABLE `{database}`.`om_events` (id String, time DateTime) ENGINE = MergeTree ORDER BY id")
        problem = events_problem()
        assert problem and "not an OpenMeter events table" in problem and "type" in problem
        assert cli.main(["aggregate", "--metric", "m", "--from", "2026-01-01", "--to", "2026-02-01",
                         "--workspace", str(_workspace(chdb_dir))]) == 2
    finally:
        drop_database(chdb_dir, database)


def _workspace(where: str) -> Path:
    path = Path(where).parent / f"ws-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps({"metrics": [{"name": "M", "code": "m", "unit": "u", "metric_type": "charge_metered",
                                             "aggregation": "count", "event_name": "e"}]}))
    return path


def test_the_events_page_says_events_are_read_only(om, tmp_path, monkeypatch):
    from tests.app.conftest import _use_store, page

    gen = _use_store(tmp_path / "app.db", tmp_path, monkeypatch)
    next(gen)
    try:
        at = page("events")
        assert not at.exception, at.exception
        notes = [i.value for i in at.info]
        assert any("OpenMeter" in n for n in notes), notes
        assert not at.file_uploader  # nothing to upload into
        browsed = " ".join(m.value for m in at.markdown)
        assert f"of {sum(r['namespace'] == 'default' for r in om['rows'])}" in browsed
    finally:
        next(gen, None)


def test_the_demo_cannot_be_loaded_over_openmeter_events(om, tmp_path, monkeypatch):
    from tests.app.conftest import _use_store, page

    gen = _use_store(tmp_path / "app.db", tmp_path, monkeypatch)
    next(gen)
    try:
        at = page("workspace")
        assert not at.exception, at.exception
        button = at.button(key="workspace:demo")
        assert button.disabled and "OpenMeter" in (button.help or "")
    finally:
        next(gen, None)
