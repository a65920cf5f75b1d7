"""The event store on SQLite and PostgreSQL (the `engine` fixture runs each test on both):
import counts, idempotent re-imports, deletes, the store version, the frame cache catching up,
segments and rows (compaction), columns kept across processes, and batch atomicity (contract §1)."""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import pytest
from sqlmodel import Session

from metering import ingest, store
from metering.aggregation import aggregate, aggregate_by_customer
from metering.engine import frame as frame_module
from metering.engine.frame import EventFrame, FrameCache
from metering.engine.registry import store_for
from metering.engine.store import SMALL_BATCH, EventStore
from metering.models import ImportBatch, MetricCreate

T0_S = 1_791_028_800  # 2026-10-03T12:00:00Z


def jsonl(*events: dict[str, Any]) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def event(customer: str = "c1", at: int = 0, name: str = "api.request", key: str | None = None, **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"event_name": name, "customer_id": customer, "timestamp": T0_S + at, "properties": props}
    if key is not None:
        out["idempotency_key"] = key
    return out


def big_file(n: int, *, customers: int = 7, offset: int = 0, name: str = "api.request") -> bytes:
    """n events (enough to make a segment), values and labels varying with i."""
    return jsonl(*(
        event(f"c{i % customers}", offset + i, name=name, tokens=i % 13, model="ab"[i % 2], region=["eu", "us", "ap"][i % 3], user=f"u{i % 5}")
        for i in range(n)
    ))


def rows_of(n: int, prefix: str = "k", start: int = 0) -> list[store.EventRow]:
    return [("e", "c1", (T0_S + start + i) * 1_000_000, f"{prefix}{start + i}", json.dumps({"i": start + i})) for i in range(n)]


def keys(engine) -> list[str]:
    return [r[4] for r in store.event_rows(engine)]


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


def fresh(engine) -> EventFrame:
    """The store's events read anew (a cache of its own)."""
    return FrameCache().get(engine)


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
        assert store.event_count(engine) == 2

    @pytest.mark.parametrize("n", [5, SMALL_BATCH + 10])  # as rows, and as a segment
    def test_reimport_adds_nothing(self, engine, write_file, n):
        path = write_file("a.jsonl", big_file(n))
        first = ingest.import_file(engine, path)
        assert (first.accepted, first.duplicates, first.rejected) == (n, 0, 0)
        version = store.store_version(engine)
        again = ingest.import_file(engine, path)
        assert (again.accepted, again.duplicates, again.rejected) == (0, n, 0)
        assert store.store_version(engine) == version  # readers see nothing new

    def test_overlapping_file(self, engine):
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        result = ingest.import_file(engine, FILE_B, name="b.jsonl")
        assert (result.accepted, result.duplicates) == (3, 1)
        assert store.event_count(engine) == 8

    def test_duplicates_across_segments_and_rows(self, engine):
        n = SMALL_BATCH + 5
        ingest.import_file(engine, big_file(n), name="seg.jsonl")  # a segment
        small = jsonl(*(event(f"c{i % 7}", i, tokens=i % 13, model="ab"[i % 2], region=["eu", "us", "ap"][i % 3], user=f"u{i % 5}") for i in range(3)))
        result = ingest.import_file(engine, small + jsonl(event("new", 1)), name="rows.jsonl")  # rows
        assert (result.accepted, result.duplicates) == (1, 3)
        result = ingest.import_file(engine, big_file(n + 5), name="again.jsonl")  # a segment vs segment + rows
        assert (result.accepted, result.duplicates) == (5, n)
        assert store.event_count(engine) == n + 6

    def test_csv_and_jsonl_of_the_same_events_are_duplicates(self, engine):
        csv_text = "event_name,customer_id,timestamp,tokens,model\napi.request,c1,2026-10-03T14:00:00+02:00,5,a\n"
        assert ingest.import_file(engine, csv_text.encode(), name="a.csv").accepted == 1
        result = ingest.import_file(engine, jsonl(event("c1", 0, tokens=5, model="a")), name="b.jsonl")
        assert (result.accepted, result.duplicates) == (0, 1)

    def test_unreadable_file_stores_nothing(self, engine):
        with pytest.raises(ingest.UnreadableFile):
            ingest.import_file(engine, b"event_name,timestamp\ne,2026-10-03\n", name="x.csv")
        assert store.store_version(engine).events == 0
        with Session(engine) as session:
            assert session.query(ImportBatch).count() == 0

    def test_import_batch_record(self, engine):
        result = ingest.import_file(engine, FILE_A + b"nope\n", name="a.jsonl")
        with Session(engine) as session:
            batch = session.get(ImportBatch, result.import_id)
            assert batch is not None
            assert (batch.source, batch.accepted, batch.duplicates, batch.rejected) == ("a.jsonl", 5, 0, 1)
            assert batch.finished_at is not None

    def test_event_rows_in_store_order(self, engine):
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        rows = store.event_rows(engine)
        assert [r[2] for r in rows] == ["c1", "c1", "c2", "c2", "c3"]
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)
        assert rows[0][3] == T0_S * 1_000_000
        assert json.loads(rows[0][5]) == {"tokens": 5, "model": "a", "region": "eu", "user": "u1"}


class TestValuesTheDatabaseMustHold:
    def test_length_limits_are_characters_not_bytes(self, engine):
        data = jsonl(
            {"event_name": "e" * 100, "customer_id": "é" * 255, "timestamp": T0_S, "idempotency_key": "ü" * 255, "properties": {"k": "日本" * 500}},
            {"event_name": "e", "customer_id": "🚀" * 255, "timestamp": T0_S},
        )
        result = ingest.import_file(engine, data, name="x.jsonl")
        assert (result.accepted, result.rejected) == (2, 0)
        rows = store.event_rows(engine)
        assert [r[2] for r in rows] == ["é" * 255, "🚀" * 255]
        assert json.loads(rows[0][5]) == {"k": "日本" * 500}

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
        assert store.event_count(engine) == len(store.event_rows(engine))

    def test_nul_character_inside_properties_is_stored(self, engine):
        data = jsonl({"event_name": "e", "customer_id": "c", "timestamp": T0_S, "properties": {"v": "a\u0000b"}})
        assert ingest.import_file(engine, data, name="x.jsonl").accepted == 1
        assert json.loads(store.event_rows(engine)[0][5]) == {"v": "a\u0000b"}


# =========================================================================== deletes


class TestDelete:
    @pytest.mark.parametrize("n", [5, SMALL_BATCH + 10])
    def test_delete_removes_only_that_import(self, engine, n):
        a = ingest.import_file(engine, big_file(n), name="a.jsonl")
        b = ingest.import_file(engine, FILE_B, name="b.jsonl")
        assert store.delete_import(engine, a.import_id) == n
        assert store.event_count(engine) == len(store.event_rows(engine)) == b.accepted
        with Session(engine) as session:
            assert session.get(ImportBatch, a.import_id) is None
            assert session.get(ImportBatch, b.import_id) is not None
        again = ingest.import_file(engine, big_file(n), name="a.jsonl")  # its keys are free again
        assert (again.accepted, again.duplicates) == (n, 0)

    def test_delete_unknown_import(self, engine):
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        assert store.delete_import(engine, 999_999) == 0
        assert store.event_count(engine) == 5

    def test_delete_one_event_from_rows_and_from_a_segment(self, engine):
        ingest.import_file(engine, FILE_A, name="a.jsonl")  # rows
        ingest.import_file(engine, big_file(SMALL_BATCH + 3, offset=100), name="seg.jsonl")  # a segment
        rows = store.event_rows(engine)
        in_rows, in_segment = rows[1][4], rows[-7][4]
        cache = FrameCache()
        before = cache.get(engine)
        assert store.delete_event(engine, in_rows) is True
        assert store.delete_event(engine, in_segment) is True
        assert store.delete_event(engine, in_segment) is False
        assert store.delete_event(engine, "no such key") is False
        left = store.event_rows(engine)
        assert [r for r in rows if r[4] not in (in_rows, in_segment)] == left  # the rest keep their order
        after = cache.get(engine)
        assert len(after) == len(before) - 2 == store.event_count(engine)
        assert summary(after) == summary(fresh(engine))

    def test_delete_all(self, engine):
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        ingest.import_file(engine, big_file(SMALL_BATCH), name="b.jsonl")
        store.delete_all_events(engine)
        assert store.event_count(engine) == 0 and store.event_rows(engine) == []
        assert len(fresh(engine)) == 0


class TestDeleteEvent:
    """Issue 8: one event (say a far-future typo) can be deleted without deleting its import."""

    def test_delete_one_event_keeps_counts_right_and_reloads_frames(self, engine):
        a = ingest.import_file(engine, FILE_A, name="a.jsonl")
        cache = FrameCache()
        assert len(cache.get(engine)) == 5
        key = keys(engine)[2]
        before = store.store_version(engine)
        assert store.delete_event(engine, key) is True
        after = store.store_version(engine)
        assert after.events == 4 and after.generation == before.generation + 1
        assert key not in keys(engine) and len(keys(engine)) == 4
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
        assert store.store_version(engine).events == 0

    def test_grows_and_shrinks(self, engine):
        a = ingest.import_file(engine, FILE_A, name="a.jsonl")
        v1 = store.store_version(engine)
        assert v1.events == 5
        ingest.import_file(engine, FILE_B, name="b.jsonl")
        v2 = store.store_version(engine)
        assert v2.events == 8 and v2.next_seq > v1.next_seq
        store.delete_import(engine, a.import_id)
        v3 = store.store_version(engine)
        assert v3.events == 3 and v3.generation > v2.generation


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

    @pytest.mark.parametrize("n", [5, SMALL_BATCH + 10])
    def test_appends_after_a_second_import_and_reloads_after_a_delete(self, engine, monkeypatch, n):
        read: list[str] = []
        real_piece = frame_module._segment_piece
        monkeypatch.setattr(frame_module, "_segment_piece", lambda files, seg: read.append(seg.name) or real_piece(files, seg))
        a = ingest.import_file(engine, big_file(n), name="a.jsonl")
        cache = FrameCache()
        first = cache.get(engine)
        assert len(first) == n
        summary(first)  # builds the path columns, so the append has to extend them
        segments_read = len(read)

        ingest.import_file(engine, big_file(SMALL_BATCH + 2, offset=10_000), name="b.jsonl")
        second = cache.get(engine)
        assert len(read) == segments_read + 1, "only the new segment is read"
        assert len(second) == n + SMALL_BATCH + 2
        assert summary(second) == summary(fresh(engine))

        store.delete_import(engine, a.import_id)
        third = cache.get(engine)
        assert len(third) == SMALL_BATCH + 2
        assert summary(third) == summary(fresh(engine))

    def test_delete_then_import_of_the_same_size_reloads(self, engine):
        a = ingest.import_file(engine, jsonl(*(event(f"a{i}", i, tokens=1) for i in range(2))), name="a.jsonl")
        cache = FrameCache()
        assert len(cache.get(engine)) == 2
        store.delete_import(engine, a.import_id)
        ingest.import_file(engine, jsonl(*(event(f"b{i}", i, tokens=2) for i in range(2))), name="b.jsonl")
        frame = cache.get(engine)
        assert frame.customer_ids() == ["b0", "b1"]
        assert summary(frame) == summary(fresh(engine))

    def test_appended_latest_ties_follow_store_order(self, engine):
        ingest.import_file(engine, jsonl(event("c1", 10, tokens=1, n=1)), name="a.jsonl")
        cache = FrameCache()
        m = MetricCreate(name="M", code="m", unit="u", event_name="api.request", aggregation="latest", value_property="tokens")
        assert aggregate(cache.get(engine), m).value == 1
        ingest.import_file(engine, jsonl(event("c1", 10, tokens=2, n=2)), name="b.jsonl")
        assert aggregate(cache.get(engine), m).value == 2
        ingest.import_file(engine, big_file(SMALL_BATCH, offset=-10_000) + jsonl(event("c1", 10, tokens=3, n=3)), name="c.jsonl")  # a segment
        assert aggregate(cache.get(engine), m).value == 3
        store_for(engine).compact()  # the rows move into a segment: the order stays
        assert aggregate(cache.get(engine), m).value == 3
        assert aggregate(fresh(engine), m).value == 3

    def test_appends_grow_in_place_and_earlier_frames_keep_their_answers(self, engine):
        ingest.import_file(engine, big_file(SMALL_BATCH + 5), name="a.jsonl")
        cache = FrameCache()
        first = cache.get(engine)
        answers = summary(first)  # builds its path columns (and numbers)
        frames = [first]
        for i in range(6):  # the API's way: a few events at a time, the app reading between
            extra = [event(f"n{i}", 50_000 + i * 10 + j, tokens=j, model="ab"[j % 2], region="eu", user=f"u{j}") for j in range(3)]
            ingest.import_file(engine, jsonl(*extra), name=f"x{i}.jsonl")
            frames.append(cache.get(engine))
            summary(frames[-1])
        assert summary(first) == answers  # a reader holding the first frame sees no change
        assert [len(f) for f in frames] == [SMALL_BATCH + 5 + 3 * i for i in range(7)]
        assert summary(frames[-1]) == summary(fresh(engine))
        assert summary(frames[3]) != summary(frames[-1]) and len(frames[3]) == SMALL_BATCH + 14

    def test_appended_frame_with_empty_start(self, engine):
        cache = FrameCache()
        assert len(cache.get(engine)) == 0
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        assert summary(cache.get(engine)) == summary(fresh(engine))


# =========================================================================== segments and rows


class TestSegmentsAndRows:
    def test_small_batches_are_rows_large_ones_segments(self, engine):
        events = store_for(engine)
        ingest.import_file(engine, FILE_A, name="a.jsonl")
        assert events.buffered() == 5 and events.segments() == []
        ingest.import_file(engine, big_file(SMALL_BATCH), name="b.jsonl")
        assert events.buffered() == 5 and len(events.segments()) == 1

    def test_compaction_moves_rows_without_changing_an_answer(self, engine):
        events = store_for(engine)
        for i in range(3):
            store.insert_events(engine, rows_of(40, start=i * 40), import_id=None)
        ingest.import_file(engine, FILE_A + FILE_B, name="ab.jsonl")
        cache = FrameCache()
        before = cache.get(engine)
        answers = summary(before)
        order = store.event_rows(engine)
        moved = events.compact(chunk=50)
        assert moved == 128 and events.buffered() == 0
        assert len(events.segments()) >= 3  # per chunk and per import
        after = cache.get(engine)
        assert summary(after) == answers == summary(fresh(engine))
        assert store.event_rows(engine) == order
        again = ingest.import_file(engine, FILE_A, name="a.jsonl")  # keys in segments now
        assert again.duplicates == 5

    def test_path_columns_are_kept_and_read_back_by_a_new_process(self, engine, monkeypatch):
        ingest.import_file(engine, big_file(SMALL_BATCH + 1), name="a.jsonl")
        first = summary(fresh(engine))  # derives tokens, model, region, user for the segment
        derived = list(store_for(engine).files.root.glob("derived/*/*.arrow"))
        assert len(derived) >= 5  # text + numbers of tokens; text of model, region, user

        def no_derivation(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a kept column was derived again")

        monkeypatch.setattr(frame_module, "_segment_text", no_derivation)
        monkeypatch.setattr(frame_module, "numbers", no_derivation)
        assert summary(fresh(engine)) == first

    def test_a_torn_kept_column_is_derived_again(self, engine):
        ingest.import_file(engine, big_file(SMALL_BATCH + 1), name="a.jsonl")
        first = summary(fresh(engine))
        for path in store_for(engine).files.root.glob("derived/*/*.arrow"):
            path.write_bytes(path.read_bytes()[:100])  # a crash mid-write, or a bad disk
        assert summary(fresh(engine)) == first

    def test_files_of_an_unlisted_segment_are_ignored_then_removed(self, engine, monkeypatch):
        events = store_for(engine)
        ingest.import_file(engine, FILE_A, name="a.jsonl")

        def crash(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("crash before the segment row commits")

        monkeypatch.setattr(EventStore, "_list_segment", crash)
        with pytest.raises(RuntimeError):
            ingest.import_file(engine, big_file(SMALL_BATCH + 4), name="b.jsonl")
        monkeypatch.undo()
        assert store.event_count(engine) == 5 == len(fresh(engine))  # exactly the committed events
        orphans = [p for p in events.files.root.iterdir() if p.is_file()]
        assert orphans, "the crashed batch left its files"
        assert events.files.remove_orphans({s.name for s in events.segments()}, older_than=0) == len(orphans)
        retry = ingest.import_file(engine, big_file(SMALL_BATCH + 4), name="b.jsonl")
        assert retry.accepted == SMALL_BATCH + 4

    def test_concurrent_writers_store_each_key_once(self, engine, tmp_path):
        if engine.dialect.name == "sqlite":  # threads need connections of their own: a file
            engine = store.make_engine(f"sqlite:///{tmp_path / 'threads.db'}")
        payloads = [big_file(SMALL_BATCH + 50 * i, offset=0) for i in range(4)]  # overlapping prefixes
        results: list[Any] = []

        def work(data: bytes) -> None:
            results.append(ingest.import_file(engine, data, name="x.jsonl"))

        threads = [threading.Thread(target=work, args=(p,)) for p in payloads]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        distinct = SMALL_BATCH + 150
        assert store.event_count(engine) == distinct == len(store.event_rows(engine))
        assert sum(r.accepted for r in results) == distinct
        assert len({r[4] for r in store.event_rows(engine)}) == distinct


# =========================================================================== PostgreSQL


@pytest.mark.postgres
def test_postgres_keeps_segment_bytes_in_the_database(postgres_engine, tmp_path, monkeypatch):
    """A second server (another local cache folder) reads the same events from the database."""
    monkeypatch.setenv("METERING_DATA_DIR", str(tmp_path / "server-a"))
    ingest.import_file(postgres_engine, big_file(SMALL_BATCH + 3), name="a.jsonl")
    answers = summary(fresh(postgres_engine))
    with postgres_engine.connect() as conn:
        blobs = conn.exec_driver_sql("SELECT count(*) FROM event_segment_blob").scalar()
    assert blobs == 2  # the events file and the data file
    monkeypatch.setenv("METERING_DATA_DIR", str(tmp_path / "server-b"))
    other = EventStore(postgres_engine)  # what another machine opens: an empty cache folder
    assert not any(p.is_file() for p in other.files.root.iterdir())
    assert summary(frame_module._refresh(other, None).frame) == answers
    assert any(p.is_file() for p in other.files.root.iterdir())  # fetched once, kept


# =========================================================================== earlier stores


def test_a_store_made_by_the_previous_version_opens_and_keeps_its_events(tmp_path):
    """Events stored as rows by the previous version (no seq column, no segments) are read,
    kept in order, and move into segments."""
    import sqlite3

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE import_batch (id INTEGER PRIMARY KEY, source VARCHAR(500) NOT NULL, created_at DATETIME NOT NULL,"
        " accepted INTEGER NOT NULL, duplicates INTEGER NOT NULL, rejected INTEGER NOT NULL);"
        "CREATE TABLE event (id INTEGER PRIMARY KEY AUTOINCREMENT, event_name VARCHAR(100) NOT NULL, customer_id VARCHAR(255) NOT NULL,"
        " ts_us BIGINT NOT NULL, idempotency_key VARCHAR(255) NOT NULL UNIQUE, properties TEXT NOT NULL, import_id INTEGER);"
        "CREATE TABLE store_state (id INTEGER PRIMARY KEY, events INTEGER NOT NULL, generation INTEGER NOT NULL);"
        "INSERT INTO store_state VALUES (1, 3, 0);"
        "INSERT INTO import_batch VALUES (1, 'old.csv', '2026-10-01 00:00:00', 3, 0, 0);"
    )
    con.executemany("INSERT INTO event (event_name, customer_id, ts_us, idempotency_key, properties, import_id) VALUES (?, ?, ?, ?, ?, 1)",
                    [("api.request", "c1", T0_S * 1_000_000, f"k{i}", json.dumps({"tokens": i})) for i in range(3)])
    con.commit()
    con.close()
    engine = store.make_engine(f"sqlite:///{path}")
    m = MetricCreate(name="M", code="m", unit="u", event_name="api.request", aggregation="latest", value_property="tokens")
    assert aggregate(fresh(engine), m).value == 2  # ties go to the one stored last
    assert store_for(engine).compact() == 3
    assert aggregate(fresh(engine), m).value == 2
    assert [r[4] for r in store.event_rows(engine)] == ["k0", "k1", "k2"]
    assert ingest.import_file(engine, jsonl(event("c1", 0, key="k1")), name="x.jsonl").duplicates == 1
    engine.dispose()


def test_store_files_are_owner_only(tmp_path):
    engine = store.make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    ingest.import_file(engine, big_file(SMALL_BATCH), name="a.jsonl")
    summary(fresh(engine))
    root = store_for(engine).files.root
    assert (tmp_path / "m.db").stat().st_mode & 0o777 == 0o600
    assert root.stat().st_mode & 0o777 == 0o700
    for path in root.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o600, path
    engine.dispose()


def test_events_of_a_numpy_int_window(engine):
    ingest.import_file(engine, FILE_A, name="a.jsonl")
    m = metrics()[0]
    assert aggregate(fresh(engine), m, start=np.int64(T0_S * 1_000_000), end=(T0_S + 2) * 1_000_000).events == 2


def test_a_content_key_is_found_in_whichever_segment_holds_its_time(engine, monkeypatch):
    # Segments are searched for a content key only when their time range holds its time: the
    # same events in another order and other blocks must still all be duplicates, and a key a
    # client chose is searched everywhere.
    monkeypatch.setattr(ingest, "CHUNK_BYTES", 120_000)  # several segments (≥ 1,000 events each) per file
    events = [event(f"c{i % 5}", i * 7 % 3000, tokens=i % 13) for i in range(3000)]
    events += [event("c9", 5000 + i, key=f"client-{i}") for i in range(1200)]
    first = ingest.import_file(engine, jsonl(*events), name="a.jsonl")
    assert first.accepted == len(events)
    assert len(store_for(engine).segments()) >= 3
    import random

    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    again = ingest.import_file(engine, jsonl(*shuffled), name="b.jsonl")
    assert (again.accepted, again.duplicates) == (0, len(events))
    # client keys on other events and times: still duplicates; one API event of a stored one too
    moved = [event("c8", 9000 + i, key=f"client-{i}") for i in range(0, 1200, 7)]
    assert ingest.import_file(engine, jsonl(*moved), name="c.jsonl").accepted == 0
    one = ingest.import_file(engine, jsonl(events[1]), name="one.jsonl")  # a small batch: the rows path
    assert (one.accepted, one.duplicates) == (0, 1)


def test_a_large_csv_with_empty_cells_is_stored_and_read(engine):
    # Empty cells are missing values; a file large enough to become a segment must store them
    # (a null inside a Parquet dictionary once made such an import fail) and read them back.
    lines = ["event_name,customer_id,timestamp,endpoint,n,gb"]
    lines += [f"api.request,acme,2026-10-{1 + i % 28:02d}T08:{i // 60 % 60:02d}:{i % 60:02d}Z,/v{i % 2},," for i in range(2500)]
    lines += ["sms,acme,2026-10-04T00:00:00Z,,700,", "sms,acme,2026-10-06T00:00:00Z,,900,", "gb,acme,2026-10-05T00:00:00Z,,,-0"]
    result = ingest.import_file(engine, ("\n".join(lines) + "\n").encode(), name="sparse.csv")
    assert (result.accepted, result.rejected) == (2503, 0)
    assert len(store_for(engine).segments()) == 1
    sms = MetricCreate(name="SMS", code="sms", unit="sms", event_name="sms", aggregation="sum", value_property="n")
    got = aggregate(fresh(engine), sms)
    assert (got.value, got.events, got.skipped) == (1600, 2, 0)
    by_endpoint = MetricCreate(name="Calls", code="calls", unit="calls", event_name="api.request",
                               aggregation="count", group_by=["endpoint", "n"])
    groups = {tuple(g.group.values()): g.value for g in aggregate(fresh(engine), by_endpoint).groups}
    assert groups == {("/v0", None): 1250, ("/v1", None): 1250}
    props = {json.dumps(json.loads(r[5]), sort_keys=True) for r in store.event_rows(engine) if r[1] in ("sms", "gb")}
    assert props == {'{"n": 700}', '{"n": 900}', '{"gb": 0}'} or props == {'{"n": 700}', '{"n": 900}', '{"gb": -0}'}
