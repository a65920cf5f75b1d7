"""Imports with progress (metering.importing): the same results as ingest, read and stored a
block at a time; unreadable files store nothing; an interrupted import keeps whole blocks,
with counts that are right and a record that says it did not finish."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from metering import importing, ingest, simulate, store
from metering.importing import Progress
from metering.ingest import UnreadableFile

SAMPLES = Path(__file__).resolve().parents[1] / "sample_events"


def event_count(engine) -> int:
    return store.event_count(engine)


def stored(engine) -> list[tuple]:
    """(event_name, customer_id, ts_us, idempotency_key, properties) in store order."""
    return [row[1:] for row in store.event_rows(engine)]


def batches(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT source, accepted, duplicates, rejected FROM import_batch ORDER BY id")).all()


@pytest.mark.parametrize("name", ["llm_tokens.csv", "bad_rows.csv", "api_requests.json", "llm_tokens_nested.jsonl"])
def test_same_result_and_rows_as_store_parsed(engine, name):
    data = (SAMPLES / name).read_bytes()
    reference = store.make_engine("sqlite://")
    expected = ingest.store_parsed(reference, ingest.read_events(data, name=name), source=name)
    got = importing.import_bytes(engine, data, name=name, chunk_bytes=4096)  # many blocks
    assert got.to_json() == expected.to_json()
    assert stored(engine) == stored(reference)
    assert batches(engine) == batches(reference) == [(name, got.accepted, got.duplicates, got.rejected)]


def test_bad_rows_sample_counts(engine):
    result = importing.import_bytes(engine, (SAMPLES / "bad_rows.csv").read_bytes(), name="bad_rows.csv")
    assert (result.accepted, result.duplicates, result.rejected) == (24, 1, 6)
    assert [(e.line, e.field) for e in result.errors] == [
        (5, "customer_id"), (10, "timestamp"), (14, "event_name"), (20, "event_name"), (24, "properties"), (29, "event_name"),
    ]


def test_progress_is_reported_per_block(engine):
    seen: list[Progress] = []
    data = (SAMPLES / "llm_tokens.csv").read_bytes()
    total = len(ingest.read_events(data, name="x.csv"))
    result = importing.import_bytes(engine, data, name="llm_tokens.csv", chunk_bytes=20_000, on_progress=seen.append)
    assert result.accepted == total
    assert seen[0] == Progress("parsed", 0, len(data), "bytes")
    storing = [p.done for p in seen if p.stage == "storing"]
    assert len(storing) == -(-len(data) // 20_000) or len(storing) > 5  # one report per block
    assert storing == sorted(storing) and storing[-1] == len(data)
    assert seen[-1] == Progress("done", len(data), len(data), "bytes")
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_second_import_is_all_duplicates(engine):
    data = (SAMPLES / "llm_tokens.csv").read_bytes()
    first = importing.import_bytes(engine, data, name="a.csv")
    second = importing.import_bytes(engine, (SAMPLES / "llm_tokens.jsonl").read_bytes(), name="a.jsonl")
    assert (second.accepted, second.duplicates) == (0, first.accepted)
    assert event_count(engine) == first.accepted


@pytest.mark.parametrize("name,data", [
    ("binary.csv", b"\xff\xfe\x00\x01garbage"),
    ("missing.csv", b"event_name,timestamp\napi.request,2026-10-01T00:00:00Z\n"),
    ("broken.json", b'[{"event_name": "a"'),
    ("empty.csv", b""),
])
def test_unreadable_file_stores_nothing(engine, name, data):
    calls: list[Progress] = []
    with pytest.raises(UnreadableFile):
        importing.import_bytes(engine, data, name=name, on_progress=calls.append)
    assert calls == []
    assert event_count(engine) == 0
    assert batches(engine) == []


def test_interrupted_import_keeps_whole_chunks(engine, monkeypatch):
    parsed = ingest.read_events((SAMPLES / "llm_tokens.csv").read_bytes(), name="x.csv")
    events = store.events(engine)
    real = type(events).store
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(events), "store", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        importing.store_in_chunks(engine, parsed, source="x.csv", chunk_size=400)
    assert event_count(engine) == 800
    assert batches(engine) == [("x.csv", 800, 0, 0)]  # counted with each batch: right after a crash
    with engine.connect() as conn:
        import_id, finished = conn.execute(text("SELECT id, finished_at FROM import_batch")).one()
    assert finished is None  # shown as not finished
    assert store.delete_import(engine, import_id) == 800
    assert event_count(engine) == 0


def test_chunk_size_must_be_positive():
    engine = store.make_engine("sqlite://")
    with pytest.raises(ValueError):
        importing.store_in_chunks(engine, ingest.ParsedEvents(), source="x", chunk_size=0)


def test_empty_parse_makes_an_empty_import(engine):
    seen: list[Progress] = []
    result = importing.import_bytes(engine, b"event_name,customer_id,timestamp\n", name="h.csv", on_progress=seen.append)
    assert (result.accepted, result.duplicates, result.rejected) == (0, 0, 0)
    assert [p.stage for p in seen] == ["parsed", "storing", "done"]
    assert seen[-1].fraction == 1.0


def test_simulated_frames_store_what_their_csv_file_would(engine, tmp_path):
    spec = simulate.template_spec("llm_tokens", customers=7, days=3, daily_volume=40, seed=5)
    nested = simulate.SimulationSpec(
        event_name="llm.nested", customers=3, start=datetime(2026, 10, 1, tzinfo=UTC), days=2, daily_volume=10,
        properties=(simulate.PropertySpec("usage.input_tokens", kind="int", dist="uniform", low=1, high=9),
                    simulate.PropertySpec("model", kind="choice", values=("a", "b"))),
    )
    frames = [simulate.simulate(spec), simulate.simulate(nested)]
    seen: list[Progress] = []
    result = importing.import_frames(engine, frames, source="simulation: test", on_progress=seen.append)
    assert (result.accepted, result.duplicates, result.rejected) == (spec.total_events + nested.total_events, 0, 0)
    assert batches(engine) == [("simulation: test", result.accepted, 0, 0)]
    assert seen[-1] == Progress("done", result.accepted, result.accepted)

    reference = store.make_engine("sqlite://")
    for i, df in enumerate(frames):
        path = tmp_path / f"f{i}.csv"
        simulate.to_csv(df, path)
        ingest.import_file(reference, path)
    assert stored(engine) == stored(reference)
    nested_props = [json.loads(r[4]) for r in stored(engine) if r[0] == "llm.nested"]
    assert all(1 <= p["usage"]["input_tokens"] <= 9 for p in nested_props)

    again = importing.import_frames(engine, frames, source="simulation: again")
    assert (again.accepted, again.duplicates) == (0, result.accepted)


# Cells that stress block cuts: quoted values holding line breaks and commas, lines longer
# than a block, blank rows (Unicode whitespace too), bad timestamps.
_cell = st.one_of(st.just('"x\ny"'), st.sampled_from(["a", "", " ", "\u00a0", '"p,q"', "b" * 90, '""', '"\n\n"']))
_row = st.one_of(
    st.tuples(st.sampled_from(["e", "e.x", "", " ", "bad name"]), st.sampled_from(["c1", "c2", "", "\u2003"]),
              st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-02T03:04:05.5Z", "nope", ""]), _cell)
    .map(lambda r: ",".join(r)),
    st.sampled_from(["", " , , , ", "\u00a0,\u00a0,\u00a0,\u00a0"]),
)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(_row, max_size=25), chunk=st.sampled_from([7, 40, 97, 4096]))
@example(rows=['e,c1,2026-01-01T00:00:00Z,"x\ny"'] * 3, chunk=40)
def test_block_by_block_reads_equal_one_read_for_any_cut(rows, chunk):
    """However a CSV file is cut into blocks (quoted line breaks, lines longer than a block,
    blank rows), the events, duplicates and row errors (with their lines) are those of reading
    it whole."""
    data = ("event_name,customer_id,timestamp,note\n" + "\n".join(rows) + "\n").encode()
    try:
        whole = ingest.read_events(data, name="f.csv")
    except UnreadableFile as exc:
        with pytest.raises(UnreadableFile) as again:
            list(ingest.iter_events(data, name="f.csv", chunk_bytes=chunk))
        assert str(again.value) == str(exc)
        return
    blocks = list(ingest.iter_events(data, name="f.csv", chunk_bytes=chunk))
    got_errors = sorted((e.line, e.field, e.reason) for b in blocks for e in b.errors)
    assert got_errors == sorted((e.line, e.field, e.reason) for e in whole.errors)
    assert [r for b in blocks for r in b.rows()] == whole.rows()
    assert [n for b in blocks for n in b.lines] == whole.lines


def test_the_writers_prepare_runs_on_every_csv_block():
    """`prepare` (store.block_preparer: the ClickHouse writer's key texts) sees each parsed
    CSV block before the block is handed on."""
    data = (SAMPLES / "llm_tokens.csv").read_bytes()
    seen: list[int] = []
    blocks = list(ingest.iter_events(data, name="llm_tokens.csv", chunk_bytes=20_000,
                                     prepare=lambda batch: seen.append(len(batch))))
    assert len(blocks) > 3 and sorted(seen) == sorted(len(b.batch) for b in blocks)  # on parsing threads
