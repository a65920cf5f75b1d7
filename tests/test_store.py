"""The store on SQLite and PostgreSQL (the `engine` fixture runs each test on both): import
counts, idempotent re-imports, deleting an import, the store version, the frame cache, and
per-batch atomicity of bulk inserts (contract §1)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import Session

from metering import frame as frame_module
from metering import ingest, store
from metering.aggregation import aggregate, aggregate_by_customer
from metering.frame import EventFrame, FrameCache
from metering.models import ImportBatch, MetricCreate

T0_S = 1_791_028_800  # 2026-10-03T12:00:00Z


def jsonl(*events: dict[str, Any]) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def event(customer: str = "c1", at: int = 0, name: str = "api.request", key: str | None = None, **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"event_name": name, "customer_id": customer, "timestamp": T0_S + at, "properties": props}
    if key is not None:
        out["idempotency_key"] = key
    return out


def rows_of(n: int, prefix: str = "k", start: int = 0) -> list[store.EventRow]:
    return [("e", "c1", (T0_S + start + i) * 1_000_000, f"{prefix}{start + i}", json.dumps({"i": start + i})) for i in range(n)]


def stored_keys(engine) -> list[str]:
    with engine.connect() as conn:
        from sqlalchemy import text

        return [r[0] for r in conn.execute(text("SELECT idempotency_key FROM event ORDER BY id"))]


def assert_version_matches_table(engine) -> None:
    """store_version (kept cheaply by the store) agrees with the event table itself."""
    from sqlalchemy import text

    with engine.connect() as conn:
        count, max_id = conn.execute(text("SELECT count(*), coalesce(max(id), 0) FROM event")).one()
    version = store.store_version(engine)
    assert (version.count, version.max_id) == (count, max_id)


def metrics() -> list[MetricCreate]:
    base = {"name": "M", "code": "m", "unit": "u", "event_name": "api.request"}
    return [
        MetricCreate(**base, aggregation="count", group_by=["model"]),
        MetricCreate(**base, aggregation="sum", value_property="tokens", group_by=["model", "region"]),
        MetricCreate(**base, aggregation="max", value_property="tokens", filters={"region": ["eu"]}),
        MetricCreate(**base, aggregation="min", value_property="tokens"),
        MetricCreate(**base, aggregation="unique_count", distinct_by="user", group_by=["region"]),
        MetricCreate(**base, aggregation="latest", value_property="tokens", group_by=["model"]),
    ]


def summary(frame: EventFrame) -> list[Any]:
    out: list[Any] = []
    for m in metrics():
        r = aggregate(frame, m)
        out.append((m.aggregation.value, r.value, r.events, r.skipped, r.skip_reasons, [(g.group, g.value, g.events, g.skipped) for g in r.groups]))
        per = aggregate_by_customer(frame, m)
        out.append(sorted((c, x.value, x.events, x.skipped, [(g.group, g.value) for g in x.groups]) for c, x in per.items()))
    return out


FILE_A = jsonl(
    event("c1", 0, tokens=5, model="a", region="eu", user="u1"),
    event("c1", 1, tokens="7.5", model="b", region="us", user="u2"),
    event("c2", 2, tokens="n/a", model="a", region="eu", user="u1"),
    event("c2", 3, tokens=1, user="u3"),
    event("c3", 4, name="other", tokens=1000),
)
FILE_B = jsonl(
    event("c1", 0, tokens=5, model="a", region="eu", user="u1"),  # duplicate of FILE_A line 1
    event("c1", 5, tokens=100, model="c", region="ap", user="u9"),  # new category values
    event("c4", 6, tokens="-2", model="a", region="eu"),  # new customer
    event("c2", 3, tokens=50, model="b", region="us", user="u2"),  # ties with c2's event at 3 (latest)
)


# =========================================================================== imports


class TestImport:
    def test_counts(self, engine):
        data = jsonl(event("c1", 0, key="a"), event("c2", 1), event("c2", 1), event("c1", 2, key="a")) + b"{broken\n" + jsonl(
            {"event_name": "bad name", "customer_id": "c", "timestamp": T0_S}
        )
        result = ingest.import_file(engine, data, name="x.jsonl")
        assert (result.accepted, result.duplicates, result.rejected) == (2, 2, 2)
        assert [(e.line, e.field) for e in result.errors] == [(5, "event"), (6, "event_name")]
        assert store.store_version(engine).count == 2

    def test_reimport_adds_nothing(self, engine, write_file):
        path = write_file("a.jsonl", FILE_A)
        first = ingest.import_file(engine, path)
        assert (first.accepted, first.duplicates, first.rejected) == (5, 0, 0)
        version = store.store_version(engine)
        again = ingest.import_file(engine, path)
        assert (again.accepted, again.duplicates, again.rejected) == (0, 5, 0)
        assert store.store_version(engine) == version

    def test_overlapping_file(self, engine):
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        result = ingest.import_file(engine, FILE_B, name="b.jsonl")
        assert (result.accepted, result.duplicates) == (3, 1)
        assert store.store_version(engine).count == 8

    def test_csv_and_jsonl_of_the_same_events_are_duplicates(self, engine):
        csv_text = "event_name,customer_id,timestamp,tokens,model\napi.request,c1,2026-10-03T14:00:00+02:00,5,a\n"
        assert ingest.import_file(engine, csv_text.encode(), name="a.csv").accepted == 1
        result = ingest.import_file(engine, jsonl(event("c1", 0, tokens=5, model="a")), name="b.jsonl")
        assert (result.accepted, result.duplicates) == (0, 1)

    def test_unreadable_file_stores_nothing(self, engine):
        with pytest.raises(ingest.UnreadableFile):
            ingest.import_file(engine, b"event_name,timestamp\ne,2026-10-03\n", name="x.csv")
        assert store.store_version(engine) == store.StoreVersion(0, 0)

    def test_import_batch_record(self, engine):
        result = ingest.import_file(engine, FILE_A + b"nope\n", name="a.jsonl")
        with Session(engine) as session:
            batch = session.get(ImportBatch, result.import_id)
            assert batch is not None
            assert (batch.source, batch.accepted, batch.duplicates, batch.rejected) == ("a.jsonl", 5, 0, 1)

    def test_fetch_events_in_id_order_after_id(self, engine):
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        rows = store.fetch_events(engine)
        assert [r[2] for r in rows] == ["c1", "c1", "c2", "c2", "c3"]
        ids = [r[0] for r in rows]
        assert ids == sorted(ids)
        assert [r[0] for r in store.fetch_events(engine, after_id=ids[2])] == ids[3:]
        assert rows[0][3] == T0_S * 1_000_000
        assert json.loads(rows[0][4]) == {"tokens": 5, "model": "a", "region": "eu", "user": "u1"}


class TestValuesTheDatabaseMustHold:
    def test_length_limits_are_characters_not_bytes(self, engine):
        data = jsonl(
            {"event_name": "e" * 100, "customer_id": "é" * 255, "timestamp": T0_S, "idempotency_key": "ü" * 255, "properties": {"k": "日本" * 500}},
            {"event_name": "e", "customer_id": "🚀" * 255, "timestamp": T0_S},
        )
        result = ingest.import_file(engine, data, name="x.jsonl")
        assert (result.accepted, result.rejected) == (2, 0)
        rows = store.fetch_events(engine)
        assert [r[2] for r in rows] == ["é" * 255, "🚀" * 255]
        assert json.loads(rows[0][4]) == {"k": "日本" * 500}

    def test_nul_character_in_text_fields_is_a_bad_row_not_a_crash(self, engine):
        # PostgreSQL text cannot hold NUL: such rows are rejected on every database alike.
        for field in ("customer_id", "idempotency_key"):
            bad = {"event_name": "e", "customer_id": f"c-{field}", "timestamp": T0_S}
            bad[field] = "a\u0000b"
            data = jsonl({"event_name": "e", "customer_id": f"ok-{field}", "timestamp": T0_S}, bad)
            result = ingest.import_file(engine, data, name=f"{field}.jsonl")
            assert result.accepted >= 1
            assert result.accepted + result.duplicates + result.rejected == 2
            assert all(e.field == field and e.line == 2 for e in result.errors)
        assert_version_matches_table(engine)

    def test_nul_character_inside_properties_is_stored(self, engine):
        data = jsonl({"event_name": "e", "customer_id": "c", "timestamp": T0_S, "properties": {"v": "a\u0000b"}})
        assert ingest.import_file(engine, data, name="x.jsonl").accepted == 1
        assert json.loads(store.fetch_events(engine)[0][4]) == {"v": "a\u0000b"}


class TestDeleteImport:
    def test_delete_removes_only_that_import(self, engine):
        a = ingest.import_file(engine, FILE_A, name="a.jsonl")
        b = ingest.import_file(engine, FILE_B, name="b.jsonl")
        assert store.delete_import(engine, a.import_id) == 5
        remaining = store.fetch_events(engine)
        assert len(remaining) == 3
        with Session(engine) as session:
            assert session.get(ImportBatch, a.import_id) is None
            assert session.get(ImportBatch, b.import_id) is not None
        # what was a duplicate of A is not restored; re-importing A brings A back
        assert_version_matches_table(engine)
        again = ingest.import_file(engine, FILE_A, name="a.jsonl")
        assert (again.accepted, again.duplicates) == (5, 0)
        assert store.store_version(engine).count == 8
        assert_version_matches_table(engine)

    def test_delete_unknown_import(self, engine):
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        assert store.delete_import(engine, 999_999) == 0
        assert store.store_version(engine).count == 5


class TestDeleteEvent:
    """Issue 8: one event (say a far-future typo) can be deleted without deleting its import."""

    def test_delete_one_event_keeps_counts_right_and_reloads_frames(self, engine):
        a = ingest.import_file(engine, FILE_A, name="a.jsonl")
        cache = FrameCache()
        assert len(cache.get(engine)) == 5
        key = stored_keys(engine)[2]
        before = store.store_version(engine)
        assert store.delete_event(engine, key) is True
        after = store.store_version(engine)
        assert after.count == 4 and after.generation == before.generation + 1
        assert key not in stored_keys(engine) and len(stored_keys(engine)) == 4
        assert_version_matches_table(engine)
        with Session(engine) as session:
            batch = session.get(ImportBatch, a.import_id)
            assert batch is not None and batch.accepted == 4  # the delete dialog's count stays true
        frame = cache.get(engine)
        assert len(frame) == 4 and summary(frame) == summary(EventFrame.from_store(engine))
        # the rest of the import still deletes together
        assert store.delete_import(engine, a.import_id) == 4

    def test_an_unknown_key_deletes_nothing(self, engine):
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        before = store.store_version(engine)
        assert store.delete_event(engine, "no-such-key") is False
        assert store.store_version(engine) == before


class TestStoreVersion:
    def test_empty(self, engine):
        assert store.store_version(engine) == store.StoreVersion(0, 0)

    def test_grows_and_shrinks(self, engine):
        a = ingest.import_file(engine, FILE_A, name="a.jsonl")
        v1 = store.store_version(engine)
        assert v1.count == 5 and v1.max_id == max(r[0] for r in store.fetch_events(engine))
        ingest.import_file(engine, FILE_B, name="b.jsonl")
        v2 = store.store_version(engine)
        assert v2.count == 8 and v2.max_id > v1.max_id
        store.delete_import(engine, a.import_id)
        v3 = store.store_version(engine)
        assert v3.count == 3 and v3.max_id == v2.max_id
        assert v3 != v2


# =========================================================================== frame cache


class TestFrameCache:
    def test_two_engines_on_one_database_share_one_frame(self, tmp_path):
        # The app's pages and the API each make an engine: the events are held once.
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        first, second = store.make_engine(url), store.make_engine(url)
        ingest.import_file(first, FILE_A, name="a.jsonl")
        cache = FrameCache()
        assert cache.get(first) is cache.get(second)
        first.dispose()
        second.dispose()

    def test_in_memory_databases_are_kept_apart(self):
        one, other = store.make_engine("sqlite://"), store.make_engine("sqlite://")
        ingest.import_file(one, FILE_A, name="a.jsonl")
        cache = FrameCache()
        assert len(cache.get(one)) == 5 and len(cache.get(other)) == 0

    def test_unchanged_store_returns_the_same_frame(self, engine):
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        cache = FrameCache()
        assert cache.get(engine) is cache.get(engine)

    def test_appends_after_a_second_import_and_reloads_after_a_delete(self, engine, monkeypatch):
        loads: list[int] = []
        real_from_store = EventFrame.from_store.__func__  # type: ignore[attr-defined]

        def counting_from_store(cls, eng):
            loads.append(1)
            return real_from_store(cls, eng)

        monkeypatch.setattr(frame_module.EventFrame, "from_store", classmethod(counting_from_store))

        a = ingest.import_file(engine, FILE_A, name="a.jsonl")
        cache = FrameCache()
        first = cache.get(engine)
        assert len(first) == 5 and len(loads) == 1
        summary(first)  # builds the path columns, so the append has to extend them

        ingest.import_file(engine, FILE_B, name="b.jsonl")
        second = cache.get(engine)
        assert len(loads) == 1, "new rows must be appended, not reloaded"
        assert len(second) == 8
        assert summary(second) == summary(EventFrame.from_store(engine))
        loads.clear()

        store.delete_import(engine, a.import_id)
        third = cache.get(engine)
        assert len(loads) == 1, "a delete must reload"
        assert len(third) == 3
        assert summary(third) == summary(real_from_store(EventFrame, engine))

    def test_delete_then_bigger_import_reloads(self, engine):
        small = ingest.import_file(engine, jsonl(event("c1", 0, tokens=1)), name="small.jsonl")
        cache = FrameCache()
        assert len(cache.get(engine)) == 1
        store.delete_import(engine, small.import_id)
        ingest.import_file(engine, FILE_A, name="a.jsonl")  # count and max_id both grew
        frame = cache.get(engine)
        assert len(frame) == 5
        assert summary(frame) == summary(EventFrame.from_store(engine))

    def test_delete_latest_import_then_import_more_without_looking(self, engine):
        ingest.import_file(engine, jsonl(*(event(f"a{i}", i, tokens=1) for i in range(3))), name="a.jsonl")
        b = ingest.import_file(engine, jsonl(*(event(f"b{i}", i, tokens=10) for i in range(2))), name="b.jsonl")
        cache = FrameCache()
        assert len(cache.get(engine)) == 5
        store.delete_import(engine, b.import_id)
        ingest.import_file(engine, jsonl(*(event(f"c{i}", i, tokens=100) for i in range(3))), name="c.jsonl")
        frame = cache.get(engine)
        assert sorted(frame.customers.values[c] for c in frame.customers.codes) == ["a0", "a1", "a2", "c0", "c1", "c2"]
        assert summary(frame) == summary(EventFrame.from_store(engine))

    def test_delete_then_import_of_the_same_size_reloads(self, engine):
        a = ingest.import_file(engine, jsonl(*(event(f"a{i}", i, tokens=1) for i in range(2))), name="a.jsonl")
        cache = FrameCache()
        assert len(cache.get(engine)) == 2
        store.delete_import(engine, a.import_id)
        ingest.import_file(engine, jsonl(*(event(f"b{i}", i, tokens=2) for i in range(2))), name="b.jsonl")
        frame = cache.get(engine)  # same count as before, higher max id
        assert sorted(frame.customers.values[c] for c in frame.customers.codes) == ["b0", "b1"]
        assert summary(frame) == summary(EventFrame.from_store(engine))

    def test_appended_latest_ties_follow_store_order(self, engine):
        ingest.import_file(engine, jsonl(event("c1", 10, tokens=1, n=1)), name="a.jsonl")
        cache = FrameCache()
        m = MetricCreate(name="M", code="m", unit="u", event_name="api.request", aggregation="latest", value_property="tokens")
        assert aggregate(cache.get(engine), m).value == 1
        ingest.import_file(engine, jsonl(event("c1", 10, tokens=2, n=2)), name="b.jsonl")
        assert aggregate(cache.get(engine), m).value == 2

    def test_appended_frame_with_empty_start(self, engine):
        cache = FrameCache()
        assert len(cache.get(engine)) == 0
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        frame = cache.get(engine)
        assert summary(frame) == summary(EventFrame.from_store(engine))


# =========================================================================== batches


class Crash(Exception):
    pass


class TestBatchAtomicity:
    def test_insert_events_counts_and_skips_stored_keys(self, engine):
        rows = rows_of(25)
        assert store.insert_events(engine, rows, import_id=None, batch_size=10) == 25
        assert store.insert_events(engine, rows + rows_of(5, start=25), import_id=None, batch_size=10) == 5
        assert stored_keys(engine) == [f"k{i}" for i in range(30)]

    def test_repeated_keys_inside_and_across_batches_first_wins(self, engine):
        rows = rows_of(12)
        repeated = [("e", "c9", 1, "k3", '{"late":1}'), ("e", "c9", 1, "k11", '{"late":2}'), ("e", "c9", 1, "k3", '{"late":3}')]
        # batch 1: k0..k9; batch 2: k10, k11, k3 (stored), k11 (same batch), k3
        added = store.insert_events(engine, rows + repeated, import_id=None, batch_size=10)
        assert added == 12
        assert stored_keys(engine) == [f"k{i}" for i in range(12)]
        assert all("late" not in r[4] for r in store.fetch_events(engine))

    def test_failing_row_in_second_batch_keeps_whole_earlier_batches_only(self, engine):
        rows = rows_of(30)
        rows[15] = ("e", "c1", None, "k15", "{}")  # type: ignore[assignment]  # NOT NULL violation
        with pytest.raises(Exception):
            store.insert_events(engine, rows, import_id=None, batch_size=10)
        assert stored_keys(engine) == [f"k{i}" for i in range(10)]
        assert_version_matches_table(engine)
        # the store is usable afterwards and the retry adds exactly what was missing
        fixed = rows_of(30)
        assert store.insert_events(engine, fixed, import_id=None, batch_size=10) == 20
        assert stored_keys(engine) == [f"k{i}" for i in range(30)]

    def test_crash_before_commit_of_second_batch(self, engine, monkeypatch):
        real_raw_connection = engine.raw_connection
        commits: list[int] = []

        class CrashOnSecondCommit:
            def __init__(self, raw: Any) -> None:
                self._raw = raw

            def __getattr__(self, name: str) -> Any:
                return getattr(self._raw, name)

            def commit(self) -> None:
                commits.append(1)
                if len(commits) == 2:
                    raise Crash("simulated crash after the second batch was written, before its commit")
                self._raw.commit()

        monkeypatch.setattr(engine, "raw_connection", lambda: CrashOnSecondCommit(real_raw_connection()))
        with pytest.raises(Crash):
            store.insert_events(engine, rows_of(30), import_id=None, batch_size=10)
        monkeypatch.undo()
        assert len(commits) == 2  # the third batch was never attempted
        assert stored_keys(engine) == [f"k{i}" for i in range(10)]
        assert_version_matches_table(engine)
        assert store.insert_events(engine, rows_of(30), import_id=None, batch_size=10) == 20
        assert_version_matches_table(engine)

    def test_keyboard_interrupt_mid_batch(self, engine, monkeypatch):
        """An interrupt (BaseException) in the middle of writing a batch rolls that batch back."""
        real_raw_connection = engine.raw_connection
        calls: list[int] = []

        class InterruptingCursor:
            def __init__(self, cur: Any) -> None:
                self._cur = cur

            def __getattr__(self, name: str) -> Any:
                return getattr(self._cur, name)

            def _maybe_interrupt(self) -> None:
                if len(calls) == 2:
                    raise KeyboardInterrupt

            def executemany(self, *args: Any, **kw: Any) -> Any:
                result = self._cur.executemany(*args, **kw)
                self._maybe_interrupt()  # rows written, not committed
                return result

            def execute(self, sql: Any, *args: Any, **kw: Any) -> Any:
                result = self._cur.execute(sql, *args, **kw)
                if str(sql).lstrip().upper().startswith("INSERT INTO EVENT "):
                    self._maybe_interrupt()
                return result

        class Conn:
            def __init__(self, raw: Any) -> None:
                self._raw = raw
                calls.append(1)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._raw, name)

            def cursor(self, *args: Any, **kw: Any) -> Any:
                return InterruptingCursor(self._raw.cursor(*args, **kw))

        monkeypatch.setattr(engine, "raw_connection", lambda: Conn(real_raw_connection()))
        with pytest.raises(KeyboardInterrupt):
            store.insert_events(engine, rows_of(30), import_id=None, batch_size=10)
        monkeypatch.undo()
        assert stored_keys(engine) == [f"k{i}" for i in range(10)]
        assert_version_matches_table(engine)

    def test_import_file_uses_store_batches(self, engine, monkeypatch):
        monkeypatch.setattr(store, "BATCH_SIZE", 2)
        original = store.insert_events

        def small_batches(eng, rows, *, import_id, batch_size=2):
            return original(eng, rows, import_id=import_id, batch_size=2)

        monkeypatch.setattr(store, "insert_events", small_batches)
        result = ingest.import_file(engine, FILE_A + FILE_B, name="ab.jsonl")
        assert (result.accepted, result.duplicates) == (8, 1)
