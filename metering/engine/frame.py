"""The columns every embedded read uses: events in memory, built from segments without parsing.

An :class:`EventFrame` is a sequence of parts (each a stored segment, or a batch held in
memory: recent rows of the `event` table, events read from files, examples), laid end to end:
seq (store order), event name and customer as category codes, the timestamp, and the import
each event came from. A property path becomes a :class:`PathColumn` on first use, part by
part: a segment reads the path's shredded column from its Parquet file (or, rarely, derives it
from the JSON text), and keeps what it built in `derived/` memory-mapped files, so a restarted
process reads it back without any work. Numbers are derived the same way on first use.

:class:`FrameCache` keeps one frame per store and catches up with the store cheaply: one row
read says whether anything changed; new segments and new rows are appended; only deletes (and
moving rows into segments) rebuild the frame from the files.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Engine

from metering.engine.batch import EventBatch, derive_text, path_column_name, resolve
from metering.engine.columnar import aggregate as columnar_aggregate
from metering.engine.columnar import periods
from metering.engine.columns import DECIMAL, Categories, Grow, PathColumn, Scaled, numbers, scaled
from metering.engine.keys import key_text
from metering.engine.interface import (
    AggregateResult,
    EventQuery,
    Explanation,
    Instant,
    LimitRow,
    Window,
    WindowUsage,
)
from metering.models import MetricBase

if TYPE_CHECKING:
    import pandas as pd
from metering.engine.segments import SegmentFiles, secure
from metering.engine.store import EventStore, SegmentRow, StoreVersion


@dataclass
class Part:
    """Rows [start, start + rows) of a frame: a stored segment or a batch in memory."""

    start: int
    rows: int
    segment: SegmentRow | None = None
    batch: EventBatch | None = None


class EventFrame:
    """Events as columns: seq (store order), event_name, customer_id, ts_us, import, paths."""

    def __init__(
        self,
        seq: np.ndarray,
        event_names: Categories,
        customers: Categories,
        ts_us: np.ndarray,
        imports: np.ndarray,
        parts: list[Part],
        files: SegmentFiles | None = None,
    ) -> None:
        self.seq = seq
        self.event_names = event_names
        self.customers = customers
        self.ts_us = ts_us
        self.imports = imports  # int32 import id per event, -1 for none
        self.parts = parts
        self.files = files
        self._paths: dict[str, PathColumn] = {}
        self._lock = threading.Lock()
        self._grow: dict[str, Grow] = {}  # the buffers its columns grow in (see columns.Grow)

    def __len__(self) -> int:
        return len(self.ts_us)

    # ------------------------------------------------------------------ construction

    @classmethod
    def empty(cls) -> EventFrame:
        none = Categories.empty()
        return cls(np.zeros(0, np.int64), none, none, np.zeros(0, np.int64), np.zeros(0, np.int32), [])

    @classmethod
    def from_batch(cls, batch: EventBatch) -> EventFrame:
        """Events held in memory (files read for the CLI, examples): seq = 1, 2, … unless given."""
        frame = cls.empty()
        return frame.with_parts([_batch_piece(batch, None)], files=None)

    @classmethod
    def from_store(cls, engine: Engine) -> EventFrame:
        """The store's events now, read from its files (a frame of its own, not the shared one)."""
        return FrameCache().get(engine)

    @classmethod
    def from_parsed(cls, parsed: Any) -> EventFrame:
        """Events read from files, without a store: a repeated idempotency key keeps the first."""
        from metering.engine.keys import first_of_each

        batch = parsed.batch
        keep = first_of_each(batch.k1, batch.k2)
        return cls.from_batch(batch if keep.all() else batch.take(np.flatnonzero(keep)))

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, str, str, int, str]]) -> EventFrame:
        """(seq, event_name, customer_id, ts_us, properties JSON) rows: tests and small inputs."""
        from metering.engine.batch import parse_properties, shred
        from metering.engine.keys import key_ids

        seq = np.array([r[0] for r in rows], dtype=np.int64)
        texts = [r[4] for r in rows]
        keys = pa.array([f"row:{s}" for s in seq.tolist()], type=pa.string())
        k1, k2 = key_ids(keys)
        paths, nulls, complete = shred(parse_properties(texts))
        batch = EventBatch(
            pa.array([r[1] for r in rows], type=pa.string()), pa.array([r[2] for r in rows], type=pa.string()),
            np.array([r[3] for r in rows], dtype=np.int64), keys, pa.array(texts, type=pa.string()),
            k1, k2, paths, nulls, complete, None, seq,
        )
        return cls.from_batch(batch)

    def with_parts(self, pieces: Sequence[_Piece], *, files: SegmentFiles | None) -> EventFrame:
        """A new frame with these pieces appended; path columns built so far are extended."""
        pieces = [p for p in pieces if p.rows]
        if not pieces:
            if files is not None and self.files is None:
                self.files = files
            return self
        start = len(self)
        parts = list(self.parts)
        for piece in pieces:
            parts.append(Part(start, piece.rows, piece.segment, piece.batch))
            start += piece.rows
        if not len(self):  # a first build: one exact concatenation
            frame = EventFrame(
                np.concatenate([p.seq for p in pieces]),
                Categories.concat([p.event_names for p in pieces]),
                Categories.concat([p.customers for p in pieces]),
                np.concatenate([p.ts_us for p in pieces]),
                np.concatenate([p.imports for p in pieces]),
                parts, files or self.files,
            )
            return frame
        # Appending to a frame in use: every column grows in place (O(new rows)); the frame
        # before keeps seeing its own prefix.
        grow = dict(self._grow)
        arrays = {}
        for name in ("seq", "ts_us", "imports"):
            more = np.concatenate([getattr(p, name) for p in pieces])
            arrays[name], grow[name] = Grow.append(getattr(self, name), grow.get(name), more)
        names, customers = self.event_names, self.customers
        for piece in pieces:
            names, customers = names.appended(piece.event_names), customers.appended(piece.customers)
        frame = EventFrame(arrays["seq"], names, customers, arrays["ts_us"], arrays["imports"], parts, files or self.files)
        frame._grow = grow
        new_parts = parts[len(self.parts):]
        for path, column in self._paths.items():
            frame._paths[path] = column.appended([frame._part_path(p, path) for p in new_parts])
        return frame

    def without_batches(self) -> EventFrame:
        """This frame with only its segment parts (rows in memory dropped)."""
        keep = [p for p in self.parts if p.segment is not None]
        if len(keep) == len(self.parts):
            return self
        idx = np.concatenate([np.arange(p.start, p.start + p.rows) for p in keep]) if keep else np.zeros(0, np.int64)
        parts, start = [], 0
        for p in keep:
            parts.append(Part(start, p.rows, p.segment, None))
            start += p.rows
        codes = lambda c: Categories(c.codes[idx], c.values, c._lookup)  # noqa: E731
        frame = EventFrame(self.seq[idx], codes(self.event_names), codes(self.customers), self.ts_us[idx],
                           self.imports[idx], parts, self.files)
        if parts:
            for path in self._paths:
                frame._paths[path] = PathColumn.concat([frame._part_path(p, path) for p in frame.parts])
        return frame

    # ------------------------------------------------------------------ property paths

    def path(self, path: str) -> PathColumn:
        column = self._paths.get(path)
        if column is None:
            with self._lock:
                column = self._paths.get(path)
                if column is None:
                    if not self.parts:
                        column = PathColumn(Categories.empty(), pa.nulls(0, DECIMAL), np.zeros(0, np.int8))
                    else:
                        column = PathColumn.concat([self._part_path(p, path) for p in self.parts])
                    self._paths[path] = column
        return column

    def _part_path(self, part: Part, path: str) -> PathColumn:
        if part.batch is not None:
            return PathColumn(Categories.from_arrow(part.batch.text(path)))
        assert part.segment is not None and self.files is not None
        return _segment_path(self.files, part.segment.name, path, part.rows)

    def batch_of(self, part: Part) -> EventBatch | None:
        return part.batch

    # ------------------------------------------------------------------ facts

    def time_bounds(self, event_name: str | None = None) -> tuple[int, int] | None:
        ts = self.ts_us
        if event_name is not None:
            codes = self.event_names.codes_of([event_name])
            if not len(codes):
                return None
            ts = ts[self.event_names.codes == codes[0]]
        if not len(ts):
            return None
        return int(ts.min()), int(ts.max())

    def customer_ids(self) -> list[str]:
        """Every customer that has at least one event, sorted."""
        codes = self.customers.codes
        if len(codes) and codes.min() < 0:  # never for customers (the id is required); kept safe
            codes = codes[codes >= 0]
        # A count per code: one pass, no sort or hash of the events.
        used = np.flatnonzero(np.bincount(codes, minlength=len(self.customers.values)))
        return sorted(self.customers.values[int(c)] for c in used)

    def first_event_us(self, customer_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Each customer's earliest event time (epoch µs), any event name."""
        codes = self.customers.codes
        never = np.iinfo(np.int64).max
        first = np.full(len(self.customers.values), never, dtype=np.int64)
        np.minimum.at(first, codes[codes >= 0], self.ts_us[codes >= 0])
        wanted = None if customer_ids is None else set(customer_ids)
        return {
            v: int(first[i]) for i, v in enumerate(self.customers.values)
            if first[i] != never and (wanted is None or v in wanted)
        }

    def event_name_counts(self) -> list[tuple[str, int]]:
        """Stored event names with their number of events, most events first."""
        codes = self.event_names.codes
        counts = np.bincount(codes[codes >= 0], minlength=len(self.event_names.values))
        pairs = [(name, int(n)) for name, n in zip(self.event_names.values, counts) if n]
        return sorted(pairs, key=lambda p: (-p[1], p[0]))

    def properties_at(self, rows: np.ndarray) -> list[str]:
        """The properties JSON text of these rows (in the order given)."""
        return self.column_at(rows, "properties")

    def column_at(self, rows: np.ndarray, column: str) -> list[str]:
        """`properties` or `idempotency_key` of these rows (in the order given). Reads a
        segment's column only as far as the last row asked for."""
        out: dict[int, str] = {}
        rows = np.asarray(rows, dtype=np.int64)
        for part in self.parts:
            mine = rows[(rows >= part.start) & (rows < part.start + part.rows)]
            if not len(mine):
                continue
            local = mine - part.start
            if part.batch is not None:
                source = part.batch.properties if column == "properties" else part.batch.key_text()
                texts = source.take(pa.array(local)).to_pylist()
            else:
                assert part.segment is not None and self.files is not None
                texts = self.files.read_rows(part.segment.name, column, local)
                if column == "idempotency_key" and None in texts:
                    cols = self.files.read_columns(part.segment.name)
                    texts = key_text(pa.array(texts, type=pa.string()), cols.k1[local], cols.k2[local]).to_pylist()
            out.update(zip(mine.tolist(), texts))
        return [out[int(r)] for r in rows]

    def sample_properties(self, event_name: str | None = None, n: int = 2000) -> list[str]:
        """Properties JSON of up to n events (of `event_name` when it has any): the first ones
        of each part, so a sample reads a few rows of each file, not all of them."""
        idx = np.zeros(0, dtype=np.int64)
        if event_name:
            codes = self.event_names.codes_of([event_name])
            if len(codes):
                idx = np.flatnonzero(self.event_names.codes == codes[0])[:n]
        if not len(idx) and self.parts:
            per_part = max(1, n // len(self.parts))
            idx = np.concatenate([np.arange(p.start, p.start + min(p.rows, per_part)) for p in self.parts])[:n]
        return self.properties_at(idx)

    # ------------------------------------------------------------------ the Events interface

    def aggregate(self, metric: MetricBase, *, start: Instant = None, end: Instant = None,
                  customer_ids: Sequence[str] | None = None) -> AggregateResult:
        return columnar_aggregate.aggregate(self, metric, start=start, end=end, customer_ids=customer_ids)

    def aggregate_by_customer(self, metric: MetricBase, *, start: Instant = None, end: Instant = None,
                              customer_ids: Sequence[str] | None = None) -> dict[str, AggregateResult]:
        return columnar_aggregate.aggregate_by_customer(self, metric, start=start, end=end, customer_ids=customer_ids)

    def explain(self, metric: MetricBase, *, start: Instant = None, end: Instant = None, k: int = 5) -> Explanation:
        return columnar_aggregate.explain(self, metric, start=start, end=end, k=k)

    def window_usage(self, metric: MetricBase, chain: Sequence[Window], customer_ids: Sequence[str], *,
                     since_ever: bool = False) -> WindowUsage:
        return periods.window_usage(self, metric, chain, customer_ids, since_ever=since_ever)

    def limit_usage(self, metric: MetricBase, chain: Sequence[Window], customer_ids: Sequence[str],
                    limit: Decimal) -> dict[tuple[int, int], LimitRow]:
        return periods.limit_usage(self, metric, chain, customer_ids, limit)

    def daily_usage(self, metric: MetricBase, *, start: Instant = None, end: Instant = None,
                    customer_ids: Sequence[str] | None = None, split_by: str | None = None) -> pd.DataFrame:
        from metering.engine.columnar import series

        return series.daily_usage(self, metric, start=start, end=end, customer_ids=customer_ids, split_by=split_by)

    def count_events(self, query: EventQuery) -> int:
        from metering.engine.columnar import browse

        return browse.count_events(self, query)

    def browse(self, query: EventQuery, *, limit: int, offset: int) -> pd.DataFrame:
        from metering.engine.columnar import browse

        return browse.browse(self, query, limit=limit, offset=offset)

    def iter_tables(self, batch_size: int = 65_536) -> Iterator[pa.Table]:
        """Every event, part by part, as tables of seq, event_name, customer_id, ts_us,
        idempotency_key, properties, import_id (-1: none); memory bounded by one part's texts."""
        for part in self.parts:
            if part.batch is not None:
                keys, props = part.batch.key_text(), part.batch.properties
            else:
                assert part.segment is not None and self.files is not None
                data = self.files.read_data(part.segment.name, ["idempotency_key", "properties"])
                cols = self.files.read_columns(part.segment.name)
                keys, props = key_text(data.column(0), cols.k1, cols.k2), data.column(1).combine_chunks()
            for lo in range(0, part.rows, batch_size):
                hi = min(lo + batch_size, part.rows)
                rows = np.arange(part.start + lo, part.start + hi)
                yield pa.table({
                    "seq": self.seq[rows],
                    "event_name": pa.array([self.event_names.values[c] for c in self.event_names.codes[rows]], pa.string()),
                    "customer_id": pa.array([self.customers.values[c] for c in self.customers.codes[rows]], pa.string()),
                    "ts_us": self.ts_us[rows],
                    "idempotency_key": keys.slice(lo, hi - lo),
                    "properties": props.slice(lo, hi - lo),
                    "import_id": self.imports[rows],
                })

    def find_event(self, key: str) -> dict[str, Any] | None:
        from metering.engine.keys import key_ids

        k1, k2 = key_ids(pa.array([key], type=pa.string()))
        for part in self.parts:
            if part.batch is not None:
                hits = np.flatnonzero(pc.equal(part.batch.key_text(), key).to_numpy(zero_copy_only=False))
            else:
                assert part.segment is not None and self.files is not None
                cols = self.files.read_columns(part.segment.name)
                if not cols.keys.contains(k1, k2)[0]:
                    continue
                hits = np.flatnonzero((cols.k1 == k1[0]) & (cols.k2 == k2[0]))
            if len(hits):
                row = part.start + int(hits[0])
                return {
                    "event_name": self.event_names.values[self.event_names.codes[row]],
                    "customer_id": self.customers.values[self.customers.codes[row]],
                    "ts_us": int(self.ts_us[row]),
                    "idempotency_key": key,
                    "properties": self.properties_at(np.array([row]))[0],
                    "import_id": None if self.imports[row] < 0 else int(self.imports[row]),
                }
        return None

    def part_at(self, row: int) -> Part:
        starts = [p.start for p in self.parts]
        return self.parts[int(np.searchsorted(starts, row, side="right")) - 1]


# --------------------------------------------------------------------------- pieces


@dataclass
class _Piece:
    """A part's always-read columns, before it joins a frame."""

    rows: int
    seq: np.ndarray
    event_names: Categories
    customers: Categories
    ts_us: np.ndarray
    imports: np.ndarray
    segment: SegmentRow | None = None
    batch: EventBatch | None = None


def _batch_piece(batch: EventBatch, imports: np.ndarray | None) -> _Piece:
    n = len(batch)
    seq = batch.seq if batch.seq is not None else np.arange(1, n + 1, dtype=np.int64)
    return _Piece(
        n, seq, Categories.from_arrow(batch.event_name), Categories.from_arrow(batch.customer_id),
        np.asarray(batch.ts_us, dtype=np.int64),
        np.full(n, -1, np.int32) if imports is None else imports.astype(np.int32), None, batch,
    )


def _segment_piece(files: SegmentFiles, segment: SegmentRow) -> _Piece:
    cols = files.read_columns(segment.name)
    seq = cols.seq if cols.seq is not None else segment.seq_base + np.arange(segment.rows, dtype=np.int64)
    imports = np.full(segment.rows, -1 if segment.import_id is None else segment.import_id, dtype=np.int32)
    return _Piece(segment.rows, seq, cols.event_names, cols.customers, cols.ts_us, imports, segment, None)


# --------------------------------------------------------------------------- a path of a segment


def _cache_stem(files: SegmentFiles, name: str, path: str) -> Path:
    digest = hashlib.sha256(path.encode("utf-8")).hexdigest()[:24]
    return files.derived_dir(name) / digest


def _segment_path(files: SegmentFiles, name: str, path: str, rows: int) -> PathColumn:
    """A segment's column for a path: read back if derived before, else derived and kept."""
    stem = _cache_stem(files, name, path)
    text_file = stem.with_suffix(".text.arrow")
    number_file = stem.with_suffix(".num.arrow")
    text = _read_kept(text_file)
    if text is None or len(text) != rows:
        text = Categories.from_arrow(_segment_text(files, name, path, rows)).sorted().to_arrow()
        _keep(text_file, pa.table({"text": text}))
    categories = Categories.from_arrow(text.column("text") if isinstance(text, pa.Table) else text)

    def load_numbers() -> tuple[Scaled | None, pa.Array | None, np.ndarray]:
        kept = _read_kept(number_file)
        if kept is not None and len(kept) == rows:
            status = kept.column("status").chunk(0).to_numpy(zero_copy_only=False)
            if "ints" in kept.column_names:  # exact int64 (memory-mapped), the usual case
                meta = kept.schema.metadata or {}
                ints = kept.column("ints").chunk(0).to_numpy(zero_copy_only=False)
                return Scaled(ints, int(meta[b"scale"]), int(meta[b"max_abs"])), None, status
            return None, kept.column("number").combine_chunks(), status
        number, status = numbers(categories.to_arrow())
        found = scaled(number, status)
        if found is not None:
            table = pa.table({"ints": found.ints, "status": pa.array(status, type=pa.int8())})
            table = table.replace_schema_metadata({"scale": str(found.scale), "max_abs": str(found.max_abs)})
            _keep(number_file, table)
            return found, None, status
        _keep(number_file, pa.table({"number": number, "status": pa.array(status, type=pa.int8())}))
        return None, number, status

    return PathColumn(categories, loader=load_numbers)


def _segment_text(files: SegmentFiles, name: str, path: str, rows: int) -> pa.Array:
    shredded, nulls, complete = files.shredding(name)

    def get(p: tuple[str, ...]) -> pa.Array:
        return files.read_data(name, [path_column_name(p)], dictionary=True).column(0)

    found = resolve(path, shredded, nulls, complete, get, rows)
    if found is None:
        found = derive_text(files.read_data(name, ["properties"]).column(0), path)
    if isinstance(found, pa.ChunkedArray):
        found = found.combine_chunks() if not pa.types.is_dictionary(found.type) else found.unify_dictionaries().combine_chunks()
    return found


def _read_kept(path: Path) -> Any:
    try:
        return pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    except (FileNotFoundError, pa.ArrowInvalid, OSError):
        return None  # not derived yet, or a torn write: derive again


def _keep(path: Path, table: pa.Table) -> None:
    """Write a derived column (a cache: written whole then renamed, so readers see all or none)."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink:
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        secure(tmp)
        os.replace(tmp, path)
    except OSError:  # a full or read-only disk: the column is simply derived again next time
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the cache


@dataclass
class _Cached:
    store: weakref.ref[EventStore]
    version: StoreVersion
    frame: EventFrame
    segments: set[str] = field(default_factory=set)
    last_row_seq: int = 0  # highest seq of `event` table rows in the frame


class FrameCache:
    """One EventFrame per store, refreshed only when the store changed (thread-safe).

    Keyed by the database URL, so the app's pages and the API in one process share one frame;
    in-memory SQLite is keyed per engine (each is its own database)."""

    def __init__(self) -> None:
        self._frames: dict[object, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, engine: Engine) -> EventFrame:
        from metering.engine.registry import store_for

        store = store_for(engine)
        with self._lock:
            key = store_key(engine)
            cached = self._frames.get(key)
            if cached is not None and cached.store() is not store:
                cached = None  # another database that got the same key (a new in-memory engine)
                for k in [k for k, c in self._frames.items() if c.store() is None]:
                    del self._frames[k]  # engines that are gone
            cached = _refresh(store, cached)
            self._frames[key] = cached
            return cached.frame

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()


def store_key(engine: Engine) -> object:
    """Which store an engine reaches: its URL (and, on PostgreSQL, the schema its connections
    use, so two schemas of one server are two stores); an in-memory SQLite engine is its own."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return id(engine)
    key = getattr(engine, "_metering_key", None)
    if key is None:
        key = url.render_as_string(hide_password=False)
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                key += "#" + str(conn.exec_driver_sql("SELECT current_schema()").scalar())
        engine._metering_key = key  # type: ignore[attr-defined]
    return key


def _refresh(store: EventStore, cached: _Cached | None) -> _Cached:
    version = store.version()
    if cached is not None and cached.version == version:
        return cached
    after = 0 if cached is None else cached.last_row_seq
    while True:
        snap = store.snapshot(rows_after=after)  # one consistent read of segments and rows
        full = cached is None or snap.version.generation != cached.version.generation
        moved = not full and snap.version.compactions != cached.version.compactions  # type: ignore[union-attr]
        if (full or moved) and after:
            after = 0  # every row of the table is needed: read again, from the start
            continue
        break
    if full:
        frame, seen = EventFrame.empty(), set()
    else:
        assert cached is not None
        frame, seen = cached.frame, set(cached.segments)
        if moved:
            frame = frame.without_batches()  # those rows are in new segments now
    listed = [s for s in snap.segments if s.name not in seen]
    pieces = [_segment_piece(store.files, s) for s in listed]
    rows = snap.rows
    if len(rows.seq):
        pieces.append(_batch_piece(rows.batch, rows.import_id))
    frame = frame.with_parts(pieces, files=store.files)
    last = int(rows.seq.max()) if len(rows.seq) else after
    return _Cached(weakref.ref(store), snap.version, frame, seen | {s.name for s in listed}, last)


_SHARED = FrameCache()


def shared_frames() -> FrameCache:
    """The process's frame cache: the app's pages and the API read the same frame."""
    return _SHARED
