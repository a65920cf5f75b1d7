"""Segment files: where the embedded store keeps events as columns (Arrow IPC and Parquet).

A segment is an immutable set of events written once and listed in `event_segment`:

* `<name>.events.arrow`: Arrow IPC, uncompressed, read memory-mapped (zero copy): event_name
  and customer_id (dictionary-encoded), ts_us, the two key numbers (k1, k2), the same key
  numbers sorted (for duplicate searches), and, when the segment keeps its own order, seq.
* `<name>.data.parquet`: Parquet (zstd, dictionary pages): the idempotency key text, the
  properties as canonical JSON, and one column per shredded property path. Read a column at a
  time (a metric's paths), never whole.
* derived columns (`derived/<name>/<path>.arrow`): what a path became for this segment (text
  codes, numbers, status), written on first use and read memory-mapped after that. They are a
  cache: deleting them costs one derivation.

Why these libraries: Arrow IPC is the one format read back without decoding (the columns of
a restarted process are the file's pages), Parquet stores the cold text compactly with column
projection; both are pyarrow's, which the engine computes with anyway. No format of our own.

Where the files live: next to a SQLite store (`metering.db` → `metering.db.events/`), in a
temporary folder for an in-memory store, and for PostgreSQL in the database itself
(`event_segment_blob`, so every server sees the same events) with a local cache folder.
Files are written, fsynced and renamed into place before their segment row commits; files
without a row (a writer that crashed) are removed once they are an hour old.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import text
from sqlalchemy.engine import Engine

from metering.engine.batch import EventBatch, Path as PropPath, path_column_name, path_of_column
from metering.engine.columns import Categories
from metering.engine.keys import SortedKeys

ORPHAN_AGE_S = 3600.0  # files without a segment row are removed after this long
_SCHEMA_VERSION = "1"


def secure(path: Path) -> None:
    """Owner-only access (store files hold customers' usage)."""
    try:
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
    except OSError:
        pass


@dataclass(frozen=True)
class Written:
    """What writing a segment's files produced (its row is not committed yet)."""

    name: str
    rows: int
    min_ts: int
    max_ts: int
    own_seq: bool


@dataclass
class SegmentColumns:
    """The always-read columns of a segment (memory-mapped)."""

    event_names: Categories
    customers: Categories
    ts_us: np.ndarray
    seq: np.ndarray | None
    keys: SortedKeys
    k1: np.ndarray
    k2: np.ndarray


class SegmentFiles:
    """The folder (and, for PostgreSQL, the blob table) of one store's segments."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.blobs = engine.dialect.name != "sqlite"
        url = engine.url
        database = url.database if url.get_backend_name() == "sqlite" else None
        if self.blobs:
            base = Path(os.environ.get("METERING_DATA_DIR", Path(__file__).resolve().parents[2] / "data"))
            from metering.engine.frame import store_key

            digest = hashlib.sha256(str(store_key(engine)).encode()).hexdigest()[:16]
            self.root = base / "cache" / digest
        elif database in (None, "", ":memory:"):
            self.root = Path(tempfile.mkdtemp(prefix="metering-events-"))
            weakref.finalize(self, shutil.rmtree, str(self.root), True)
        else:
            self.root = Path(database + ".events")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        secure(self.root)
        (self.root / "derived").mkdir(mode=0o700, exist_ok=True)
        self._fetch_lock = threading.Lock()

    # ---- writing

    def write(
        self, batch: EventBatch, *, seq: np.ndarray | None = None, sorted_keys: tuple[np.ndarray, np.ndarray] | None = None
    ) -> Written:
        """Write a batch as a new segment's files (fsynced, in place, not yet listed).
        `sorted_keys`: the batch's key numbers sorted by (k1, k2), when the caller has them."""
        name = uuid.uuid4().hex
        if sorted_keys is None:
            k_order = np.lexsort((batch.k2, batch.k1))
            sorted_keys = (batch.k1[k_order], batch.k2[k_order])
        columns = {
            "event_name": Categories.from_arrow(batch.event_name).sorted().to_arrow(),
            "customer_id": Categories.from_arrow(batch.customer_id).sorted().to_arrow(),
            "ts_us": pa.array(batch.ts_us, type=pa.int64()),
            "k1": pa.array(batch.k1, type=pa.uint64()),
            "k2": pa.array(batch.k2, type=pa.uint64()),
            "sorted_k1": pa.array(sorted_keys[0], type=pa.uint64()),
            "sorted_k2": pa.array(sorted_keys[1], type=pa.uint64()),
        }
        if seq is not None:
            columns["seq"] = pa.array(seq, type=pa.int64())
        events = pa.table(columns)
        data_columns = {"idempotency_key": batch.key, "properties": batch.properties}
        for path, column in batch.paths.items():
            data_columns[path_column_name(path)] = column
        metadata = {
            "metering.version": _SCHEMA_VERSION,
            "metering.complete": "1" if batch.complete else "0",
            "metering.null_paths": json.dumps([list(p) for p in sorted(batch.null_paths)]),
        }
        data = pa.table(data_columns).replace_schema_metadata(metadata)
        self._write_ipc(self.events_path(name, fetch=False), events)
        self._write_parquet(self.data_path(name, fetch=False), data)
        _fsync_dir(self.root)
        n = len(batch)
        return Written(
            name, n,
            int(batch.ts_us.min()) if n else 0, int(batch.ts_us.max()) if n else 0,
            seq is not None,
        )

    @staticmethod
    def _write_ipc(path: Path, table: pa.Table) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        with pa.OSFile(str(tmp), "wb") as sink:
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        _fsync(tmp)
        secure(tmp)
        os.replace(tmp, path)

    @staticmethod
    def _write_parquet(path: Path, table: pa.Table) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        pq.write_table(table, str(tmp), compression="zstd", row_group_size=1 << 20)
        _fsync(tmp)
        secure(tmp)
        os.replace(tmp, path)

    # ---- reading

    def events_path(self, name: str, *, fetch: bool = True) -> Path:
        path = self.root / f"{name}.events.arrow"
        if fetch and self.blobs and not path.exists():
            self._fetch(name, "events", path)
        return path

    def data_path(self, name: str, *, fetch: bool = True) -> Path:
        path = self.root / f"{name}.data.parquet"
        if fetch and self.blobs and not path.exists():
            self._fetch(name, "data", path)
        return path

    def _fetch(self, name: str, kind: str, path: Path) -> None:
        with self._fetch_lock:
            if path.exists():
                return
            with self.engine.connect() as conn:
                row = conn.execute(
                    text("SELECT data FROM event_segment_blob WHERE segment = :s AND kind = :k"), {"s": name, "k": kind}
                ).first()
            if row is None:
                raise FileNotFoundError(f"segment {name} ({kind}) is not in the database")
            tmp = path.with_suffix(path.suffix + f".{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_bytes(bytes(row[0]))
            secure(tmp)
            os.replace(tmp, path)

    def read_columns(self, name: str) -> SegmentColumns:
        table = pa.ipc.open_file(pa.memory_map(str(self.events_path(name)))).read_all()

        def column(col: str) -> pa.Array:
            c = table.column(col)
            return c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()

        seq = column("seq").to_numpy() if "seq" in table.column_names else None
        return SegmentColumns(
            Categories.from_arrow(column("event_name")),
            Categories.from_arrow(column("customer_id")),
            column("ts_us").to_numpy(),
            seq,
            SortedKeys(column("sorted_k1").to_numpy(), column("sorted_k2").to_numpy()),
            column("k1").to_numpy(),
            column("k2").to_numpy(),
        )

    def read_keys(self, name: str) -> SortedKeys:
        reader = pa.ipc.open_file(pa.memory_map(str(self.events_path(name))))
        table = reader.read_all()
        return SortedKeys(table.column("sorted_k1").chunk(0).to_numpy(), table.column("sorted_k2").chunk(0).to_numpy())

    def data_schema(self, name: str) -> pa.Schema:
        return pq.read_schema(str(self.data_path(name)))

    def shredding(self, name: str) -> tuple[set[PropPath], frozenset[PropPath], bool]:
        """(shredded paths, paths with JSON nulls, complete) of a segment's data file."""
        schema = self.data_schema(name)
        meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
        paths = {p for p in (path_of_column(f) for f in schema.names) if p is not None}
        nulls = frozenset(tuple(p) for p in json.loads(meta.get("metering.null_paths", "[]")))
        return paths, nulls, meta.get("metering.complete", "0") == "1"

    def read_data(self, name: str, columns: list[str], *, dictionary: bool = False) -> pa.Table:
        return pq.read_table(
            str(self.data_path(name)), columns=columns,
            read_dictionary=columns if dictionary else None, memory_map=True,
        )

    def read_rows(self, name: str, column: str, rows: np.ndarray) -> list:
        """One column's values at these rows, reading the file only up to the last of them."""
        if not len(rows):
            return []
        stop = int(rows.max()) + 1
        parts, seen = [], 0
        for batch in pq.ParquetFile(str(self.data_path(name))).iter_batches(batch_size=min(stop, 65_536), columns=[column]):
            parts.append(batch.column(0))
            seen += batch.num_rows
            if seen >= stop:
                break
        values = pa.concat_arrays(parts)
        return values.take(pa.array(rows)).to_pylist()

    def derived_dir(self, name: str) -> Path:
        path = self.root / "derived" / name
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    # ---- removing

    def remove(self, names: Iterable[str]) -> None:
        """Delete segments' local files (after their rows are gone; readers that mapped them
        keep their pages until they let go)."""
        for name in names:
            for path in (self.events_path(name, fetch=False), self.data_path(name, fetch=False)):
                path.unlink(missing_ok=True)
            shutil.rmtree(self.root / "derived" / name, ignore_errors=True)

    def remove_orphans(self, listed: set[str], *, older_than: float = ORPHAN_AGE_S) -> int:
        """Remove files of segments that never got their row (a crashed writer), once old."""
        now = time.time()
        removed = 0
        for path in self.root.iterdir():
            if not path.is_file():
                continue
            name = path.name.split(".", 1)[0]
            if name in listed:
                continue
            try:
                if now - path.stat().st_mtime > older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        derived = self.root / "derived"
        for path in derived.iterdir():
            try:
                if path.name not in listed:
                    if now - path.stat().st_mtime > older_than:
                        shutil.rmtree(path, ignore_errors=True)
                    continue
                for tmp in path.glob("*.tmp"):  # a derived column whose writer was killed
                    if now - tmp.stat().st_mtime > older_than:
                        tmp.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
        return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync(path)
    except OSError:  # some file systems cannot fsync a directory
        pass
