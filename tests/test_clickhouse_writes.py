"""Writes to the ClickHouse events table (chdb) keep contract §1 as the embedded store does.

Imports twice, API bodies sent again, repeats inside one write, deletes, the import records'
counts, one part per write, a retried INSERT dropped by its token, a gone import record, and a
property test: any sequence of writes leaves ClickHouse and the embedded store holding the
same events with the same counts (the embedded store is the reference).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session, select

from metering import ingest, metrics, store
from metering.aggregation import aggregate
from metering.api.backend import Backend
from metering.engine import event_writer, stored_events
from metering.engine.clickhouse import writer as writer_mod
from metering.engine.clickhouse.connection import ChdbClient
from metering.engine.clickhouse.writer import ClickHouseWriter, insert_once, insert_settings
from metering.engine.frame import FrameCache
from metering.engine.registry import store_for
from metering.models import ImportBatch
from tests.clickhouse_env import events_url, place, raw_count, sql_engine  # noqa: F401 (fixtures)


def csv_text(n: int, *, bad: bool = True, start: int = 0) -> str:
    lines = ["event_name,customer_id,timestamp,tokens,model"]
    lines += [f"llm.tokens,cus_{i % 4},2026-10-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,{i}.25,m{i % 3}" for i in range(start, start + n)]
    if bad:
        lines.append("llm.tokens,cus_1,not-a-time,1,m1")
    return "\n".join(lines) + "\n"


def imports(engine) -> list[tuple[int, int, int, int]]:
    with Session(engine) as s:
        return [(b.accepted, b.duplicates, b.rejected, b.future) for b in s.exec(select(ImportBatch).order_by(ImportBatch.id))]


def tokens_metric():
    return metrics.validate_metric({"name": "LLM tokens", "code": "llm_tokens", "unit": "tokens", "metric_type": "charge_metered",
                                    "event_name": "llm.tokens", "aggregation": "sum", "value_property": "tokens"})


def test_events_go_to_clickhouse_when_configured(events_url, sql_engine):
    assert isinstance(event_writer(sql_engine), ClickHouseWriter)
    assert type(stored_events(sql_engine)).__name__ == "ClickHouseEvents"
    assert event_writer(sql_engine) is event_writer(sql_engine)  # one writer per SQL store in the process


def test_importing_a_file_twice_adds_nothing_also_before_merges(events_url, sql_engine, tmp_path):
    path = tmp_path / "usage.csv"
    path.write_text(csv_text(60))
    first = ingest.import_file(sql_engine, path)
    assert (first.accepted, first.duplicates, first.rejected) == (60, 0, 1)
    assert first.errors[0].line == 62 and first.errors[0].field == "timestamp"
    assert raw_count(events_url) == 60
    before = aggregate(stored_events(sql_engine), tokens_metric())
    # the metric's path got its columns: the 60 rows were written again with them, and merged
    assert raw_count(events_url) == 60
    second = ingest.import_file(sql_engine, path)
    assert (second.accepted, second.duplicates, second.rejected) == (0, 60, 1)
    assert len(stored_events(sql_engine)) == 60 == store.event_count(sql_engine)
    assert raw_count(events_url) == 60  # nothing was inserted twice: no merge needed to hide it
    assert aggregate(stored_events(sql_engine), tokens_metric()) == before
    assert before.value == sum(Decimal(f"{i}.25") for i in range(60))
    assert imports(sql_engine) == [(60, 0, 1, 0), (0, 60, 1, 0)]


def test_a_large_write_checks_its_keys_through_a_table_and_leaves_none(events_url, sql_engine, tmp_path):
    n = writer_mod.INLINE_KEYS + 700
    path = tmp_path / "big.csv"
    body = csv_text(n, bad=False)
    path.write_text(body + body.split("\n", 1)[1])  # every row twice in the one file
    first = ingest.import_file(sql_engine, path)
    assert (first.accepted, first.duplicates) == (n, n)
    again = ingest.import_file(sql_engine, path)
    assert (again.accepted, again.duplicates) == (0, 2 * n)
    assert raw_count(events_url) == n
    p = place(events_url)
    left = p.client.query_arrow("SELECT count() AS n FROM system.tables WHERE database = {d:String} AND name LIKE 'pending_keys_%'",
                                {"d": p.setting.database}).to_pylist()[0]["n"]
    assert left == 0


def test_api_bodies_sent_again_are_duplicates(events_url, sql_engine):
    backend = Backend(sql_engine)
    body = json.dumps({"events": [
        {"event_name": "llm.tokens", "customer_id": "a", "timestamp": "2026-10-03T12:00:00Z", "properties": {"tokens": 5}},
        {"event_name": "llm.tokens", "customer_id": "b", "timestamp": "2026-10-03T12:00:00Z", "idempotency_key": "k-1",
         "properties": {"tokens": 7}},
        {"event_name": "llm.tokens", "customer_id": "b", "timestamp": "2026-10-03T13:00:00Z", "idempotency_key": "k-1",
         "properties": {"tokens": 9}},
        {"event_name": "llm.tokens", "customer_id": "", "timestamp": "2026-10-03T12:00:00Z"},
    ]}).encode()
    status, first = backend.ingest(body)
    assert status == 200 and (first["accepted"], first["duplicates"], first["rejected"]) == (2, 1, 1)
    _, second = backend.ingest(body)
    assert (second["accepted"], second["duplicates"], second["rejected"]) == (0, 3, 1)
    assert len(stored_events(sql_engine)) == 2 and raw_count(events_url) == 2
    assert json.loads(stored_events(sql_engine).find_event("k-1")["properties"]) == {"tokens": 7}  # the first one
    assert imports(sql_engine) == [(2, 4, 2, 0)]  # the day's API record counts both requests


def test_repeats_inside_one_write_keep_the_first(events_url, sql_engine):
    writer = event_writer(sql_engine)
    rows = [("e", "c1", 1_000_000, "dup", '{"v":1}'), ("e", "c2", 2_000_000, "dup", '{"v":2}'),
            ("e", "c1", 3_000_000, "other", "{}"), ("e", "c1", 3_000_000, "other", "{}")]
    assert writer.insert_rows(rows, import_id=None).added == 2
    found = stored_events(sql_engine).find_event("dup")
    assert (found["customer_id"], found["properties"], found["import_id"]) == ("c1", '{"v":1}', None)
    # the batch path (file imports): the content keys of identical lines are one key
    lines = "\n".join(json.dumps({"event_name": "f", "customer_id": "x", "timestamp": "2026-01-01T00:00:00Z",
                                  "properties": {"n": i % 2}}) for i in range(6))
    parsed = ingest.read_events(lines.encode(), name="e.jsonl")
    assert writer.store(parsed.batch, import_id=None).added == 2
    assert len(stored_events(sql_engine)) == 4 == raw_count(events_url)


def test_seq_follows_store_order_across_writes(events_url, sql_engine):
    writer = event_writer(sql_engine)
    writer.insert_rows([("e", "c", 5, "a", "{}"), ("e", "c", 5, "b", "{}")], import_id=None)
    writer.insert_rows([("e", "c", 5, "c", "{}")], import_id=None)
    p = place(events_url)
    seqs = p.client.query_arrow(f"SELECT idempotency_key AS k, seq FROM {p.source} ORDER BY seq").to_pylist()
    assert [r["k"] for r in seqs] == ["a", "b", "c"]
    assert len({r["seq"] for r in seqs}) == 3


def test_deleting_an_import_an_event_and_everything(events_url, sql_engine, tmp_path):
    (tmp_path / "a.csv").write_text(csv_text(10, bad=False))
    (tmp_path / "b.csv").write_text(csv_text(5, bad=False, start=100))
    a = ingest.import_file(sql_engine, tmp_path / "a.csv")
    b = ingest.import_file(sql_engine, tmp_path / "b.csv")
    events = stored_events(sql_engine)
    assert len(events) == 15
    assert store.delete_import(sql_engine, a.import_id) == 10
    assert len(events) == 5 and imports(sql_engine) == [(5, 0, 0, 0)]
    key = events.browse(ingest_query(), limit=1, offset=0)["idempotency_key"].iloc[0]
    assert store.delete_event(sql_engine, key) is True
    assert store.delete_event(sql_engine, key) is False
    assert len(events) == 4 and events.find_event(key) is None
    assert imports(sql_engine) == [(4, 0, 0, 0)]  # the event's import counts one fewer
    # deleted keys may come again: a re-import stores what was deleted, and only that
    again = ingest.import_file(sql_engine, tmp_path / "b.csv")
    assert (again.accepted, again.duplicates) == (1, 4)
    store.delete_all_events(sql_engine)
    assert len(events) == 0 and imports(sql_engine) == []
    assert b.import_id is not None


def ingest_query():
    from metering.engine.interface import EventQuery

    return EventQuery()


def test_a_gone_import_record_stores_nothing(events_url, sql_engine):
    import_id = store.new_import(sql_engine, "gone")
    with sql_engine.begin() as conn:
        conn.execute(text("DELETE FROM import_batch WHERE id = :i"), {"i": import_id})
    with pytest.raises(sql_engine.dialect.dbapi.IntegrityError):
        event_writer(sql_engine).insert_rows([("e", "c", 1, "k", "{}")], import_id=import_id)
    assert raw_count(events_url) == 0


def test_an_api_write_after_delete_all_files_under_a_new_record(events_url, sql_engine):
    backend = Backend(sql_engine)
    one = json.dumps({"event_name": "e", "customer_id": "c", "timestamp": "2026-10-03T12:00:00Z"}).encode()
    backend.ingest(one)
    store.delete_all_events(sql_engine)  # the day's import record is gone with it
    _, result = backend.ingest(one)
    assert result["accepted"] == 1 and imports(sql_engine) == [(1, 0, 0, 0)]


def _parts(client: ChdbClient) -> int:
    return int(client.query_arrow(
        "SELECT count() AS n FROM system.parts WHERE database = {d:String} AND table = 'events' AND active",
        {"d": client.database}).to_pylist()[0]["n"])


def test_one_write_is_one_part(events_url, sql_engine, monkeypatch):
    """A write is one INSERT written as one block, so one part (committed whole or not at all),
    even where ClickHouse would cut it: here its block sizes are made tiny to show it."""
    p = place(events_url)
    client = p.client
    rows = [("e", f"c{i % 9}", i, f"k{i}", "{}") for i in range(3_000)]
    small = ("max_block_size", "max_insert_block_size", "min_insert_block_size_rows")
    try:
        for name in small:
            client.command(f"SET {name} = 100")
        client.insert_arrow(f"`{client.database}`.`events`", pa.table({
            "event_name": ["x"] * 3_000, "customer_id": ["c"] * 3_000,
            "ts": pa.array(range(3_000), pa.timestamp("us", tz="UTC")), "idempotency_key": [f"x{i}" for i in range(3_000)],
            "properties": ["{}"] * 3_000, "import_id": pa.nulls(3_000, pa.int64()), "seq": pa.array(range(3_000), pa.uint64())}))
        cut = _parts(client)
        assert cut > 1  # what a plain INSERT of these rows becomes with such block sizes
        client.command(f"TRUNCATE TABLE `{client.database}`.`events`")
        monkeypatch.setattr(writer_mod, "_DEFAULT_BLOCK", 100)
        for name in small:
            client.command(f"SET {name} = 100")
        assert event_writer(sql_engine).insert_rows(rows, import_id=None).added == 3_000
        assert _parts(client) == 1
    finally:
        for name in small:
            client.command(f"SET {name} = DEFAULT")


def test_a_retried_insert_is_dropped_by_its_token(events_url, sql_engine):
    p = place(events_url)
    table = f"`{p.setting.database}`.`events`"
    data = pa.table({"event_name": ["e", "e"], "customer_id": ["a", "b"],
                     "ts": pa.array([1, 2], pa.timestamp("us", tz="UTC")), "idempotency_key": ["r1", "r2"],
                     "properties": ["{}", "{}"], "import_id": pa.nulls(2, pa.int64()), "seq": pa.array([1, 2], pa.uint64())})
    insert_once(p.client, table, data, insert_settings(2, "token-1"))
    insert_once(p.client, table, data, insert_settings(2, "token-1"))  # the same block again: dropped
    assert raw_count(events_url) == 2
    insert_once(p.client, table, data, insert_settings(2, "token-2"))  # another token: stored (FINAL hides it)
    assert raw_count(events_url) == 4 and len(stored_events(sql_engine)) == 2


# --------------------------------------------------------------------------- the embedded store as reference

KEYS = st.sampled_from(["k1", "k2", "k3", "k4", None])
ROW = st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["c1", "c2"]), st.integers(-2, 2), KEYS, st.integers(0, 2))
WRITE = st.tuples(st.sampled_from(["rows", "batch"]), st.lists(ROW, max_size=6), st.booleans())


def _event_rows(rows):
    out = []
    for name, customer, t, key, v in rows:
        ts = 1_790_000_000_000_000 + t * 1_000_000
        props = json.dumps({"v": v}, separators=(",", ":"))
        out.append((name, customer, ts, key, props))
    return out


def _apply(writer, engine, kind, rows, with_import):
    import_id = store.new_import(engine, "w") if with_import else None
    if kind == "rows":
        parsed = ingest.read_events("\n".join(json.dumps(
            {"event_name": n, "customer_id": c, "timestamp": ts // 1_000_000, "properties": json.loads(p),
             **({"idempotency_key": k} if k else {})}) for n, c, ts, k, p in rows).encode(), name="w.jsonl") if rows else None
        got = [] if parsed is None else list(zip(parsed.batch.event_name.to_pylist(), parsed.batch.customer_id.to_pylist(),
                                                 parsed.batch.ts_us.tolist(), parsed.batch.key_text().to_pylist(),
                                                 parsed.batch.properties.to_pylist()))
        return writer.insert_rows(got, import_id=import_id).added
    lines = "\n".join(json.dumps({"event_name": n, "customer_id": c, "timestamp": ts // 1_000_000, "properties": json.loads(p),
                                  **({"idempotency_key": k} if k else {})}) for n, c, ts, k, p in rows)
    parsed = ingest.read_events(lines.encode(), name="w.jsonl") if rows else ingest.ParsedEvents()
    return writer.store(parsed.batch, import_id=import_id).added


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(writes=st.lists(WRITE, min_size=1, max_size=4), drop=st.lists(KEYS, max_size=2))
def test_any_writes_leave_what_the_embedded_store_leaves(events_url, tmp_path, writes, drop):
    reference_engine = store.make_engine("sqlite://")
    ch_engine = store.make_engine("sqlite://")
    ch = event_writer(ch_engine)
    ch.delete_all()
    try:
        embedded = store_for(reference_engine)
        added = []
        for kind, rows, with_import in writes:
            rows = _event_rows(rows)
            added.append((_apply(embedded, reference_engine, kind, rows, with_import),
                          _apply(ch, ch_engine, kind, rows, with_import)))
        assert [a for a, _ in added] == [b for _, b in added]
        for key in drop:
            if key is not None:
                assert embedded.delete_event(key) == ch.delete_event(key)
        ref = FrameCache().get(reference_engine)  # the embedded engine's own view
        got = stored_events(ch_engine)
        assert len(ref) == len(got)
        ref_rows = sorted((r[1], r[2], r[3], r[4], r[5]) for t in ref.iter_tables() for r in zip(*(t.column(c).to_pylist() for c in (
            "seq", "event_name", "customer_id", "ts_us", "idempotency_key", "properties"))))
        keys = [r[3] for r in ref_rows]
        got_rows = sorted((f["event_name"], f["customer_id"], f["ts_us"], f["idempotency_key"], f["properties"])
                          for f in (got.find_event(k) for k in keys) if f is not None)
        assert ref_rows == got_rows
        assert imports(reference_engine) == imports(ch_engine)
    finally:
        reference_engine.dispose()
        ch_engine.dispose()


@pytest.mark.postgres
def test_writes_with_the_sql_store_on_postgresql(events_url, postgres_engine, tmp_path):
    """The lock (an advisory lock), the store numbers and the import counts on PostgreSQL."""
    path = tmp_path / "usage.csv"
    path.write_text(csv_text(30))
    first = ingest.import_file(postgres_engine, path)
    again = ingest.import_file(postgres_engine, path)
    assert (first.accepted, again.accepted, again.duplicates) == (30, 0, 30)
    assert imports(postgres_engine) == [(30, 0, 1, 0), (0, 30, 1, 0)]
    writer = event_writer(postgres_engine)
    assert writer.insert_rows([("e", "c", 1, "k", "{}"), ("e", "c", 2, "k", "{}")], import_id=None).added == 1
    assert store.delete_event(postgres_engine, "k") and store.delete_import(postgres_engine, first.import_id) == 30
    assert len(stored_events(postgres_engine)) == 0 == raw_count(events_url)


def test_writers_at_once_never_store_a_key_twice(events_url, sql_engine):
    """The app's sessions, API requests and an import write at once: the SQL store's lock
    makes each write see the ones before it, so a key is stored once."""
    from concurrent.futures import ThreadPoolExecutor

    rows = [("e", f"c{i % 5}", i, f"key-{i}", "{}") for i in range(300)]
    writer = event_writer(sql_engine)
    with ThreadPoolExecutor(4) as pool:
        added = list(pool.map(lambda part: writer.insert_rows(rows[part::2] + rows[::3], import_id=None).added, [0, 1, 0, 1]))
    assert sum(added) == 300 and raw_count(events_url) == 300 == len(stored_events(sql_engine))


def test_an_import_in_blocks_counts_each_block_on_its_record(events_url, sql_engine):
    """The simulator's and the demo's path (importing.store_in_chunks): each block one write."""
    from metering import importing

    parsed = ingest.read_events(csv_text(50).encode(), name="s.csv")
    seen: list[int] = []
    result = importing.store_in_chunks(sql_engine, parsed, source="simulation", chunk_size=7,
                                       on_progress=lambda p: seen.append(p.done) if p.stage == "storing" else None)
    assert (result.accepted, result.duplicates, result.rejected) == (50, 0, 1)
    assert seen == [7, 14, 21, 28, 35, 42, 49, 50]
    assert imports(sql_engine) == [(50, 0, 1, 0)] and raw_count(events_url) == 50
    p = place(events_url)
    parts = p.client.query_arrow("SELECT count() AS n FROM system.parts WHERE database = {d:String} AND table = 'events' AND active",
                                 {"d": p.setting.database}).to_pylist()[0]["n"]
    assert parts <= 8  # one part per block at most (merges may have joined some)


def test_a_client_key_shaped_like_a_content_key_still_counts_as_stored(events_url, sql_engine, tmp_path):
    """Content keys are looked for among the rows of their own time only; a client's key of
    the same shape on a row of another time is found too (`odd_key`)."""
    path = tmp_path / "three.csv"
    path.write_text(csv_text(3, bad=False))
    key = ingest.read_events(path).batch.key_text()[1].as_py()
    assert key.startswith("h:")
    event_writer(sql_engine).insert_rows([("llm.tokens", "cus_9", 1_700_000_000_000_000, key, "{}")], import_id=None)
    result = ingest.import_file(sql_engine, path)
    assert (result.accepted, result.duplicates) == (2, 1)
    again = ingest.import_file(sql_engine, path)
    assert (again.accepted, again.duplicates) == (0, 3)
    assert len(stored_events(sql_engine)) == 3


@pytest.mark.parametrize("near_rows", [0, writer_mod.NEAR_ROWS])
def test_content_keys_are_found_whether_their_range_is_read_back_or_queried(events_url, sql_engine, tmp_path, monkeypatch,
                                                                               near_rows):
    """A write's content keys are matched against the stored rows of their time range: read
    back when there are few (NEAR_ROWS), through the key query when there are more."""
    monkeypatch.setattr(writer_mod, "NEAR_ROWS", near_rows)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(csv_text(40, bad=False))
    second.write_text(csv_text(60, bad=False, start=20))  # 20 of the same events, 40 new ones
    assert ingest.import_file(sql_engine, first).accepted == 40
    result = ingest.import_file(sql_engine, second)
    assert (result.accepted, result.duplicates) == (40, 20)
    assert len(stored_events(sql_engine)) == 80 and raw_count(events_url) == 80


def test_a_table_without_odd_key_checks_every_stored_key(events_url, sql_engine, tmp_path):
    """A table made by its owner without `odd_key` (whose user may not ALTER it): content keys
    are checked against every stored row, and duplicates are still found."""
    p = place(events_url)
    p.client.command(f"ALTER TABLE `{p.setting.database}`.`events` DROP INDEX idx_odd_key")
    p.client.command(f"ALTER TABLE `{p.setting.database}`.`events` DROP COLUMN odd_key")
    writer = event_writer(sql_engine)
    writer._odd_key = None  # noqa: SLF001 (as a fresh process would find the table)
    path = tmp_path / "a.csv"
    path.write_text(csv_text(30, bad=False))
    assert ingest.import_file(sql_engine, path).accepted == 30
    again = ingest.import_file(sql_engine, path)
    assert (again.accepted, again.duplicates) == (0, 30)
    assert writer._odd_key is False  # noqa: SLF001
