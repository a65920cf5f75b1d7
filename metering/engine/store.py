"""The embedded event store: columnar segments for bulk events, table rows for recent ones.

Writes come in two sizes, and each takes the path that suits it:

* **Batches** (file imports, simulations: thousands to millions of events) become a segment
  (metering.engine.segments): files written and fsynced outside any lock, then listed in
  `event_segment` in one short transaction. A crash before that commit leaves files nobody
  reads; a crash after it leaves the whole batch. Either way a batch counts whole or not at all.
* **Rows** (the events API, test events: one to a thousand at a time) are inserted into the
  `event` table in one transaction, as before. Once it holds `BUFFER_LIMIT` rows they are moved
  into a segment (compaction), so the table stays small and readers parse little JSON.

Idempotency: every event has two key numbers (metering.engine.keys). A write looks its keys up
in every segment's sorted key column and in the `event` table, under a store-wide write lock
(SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction-level advisory lock), so two writers —
the app and a `metering import` beside it — never both store one key. Each write also takes the
next numbers of `store_state.next_seq`: store order, which `latest` and hard limits read for
ties, and which readers use to see what is new without looking at any event (one row read).

Deletes (an import, one event, everything) bump `store_state.generation`; readers then reload
from the segment files, which costs no JSON parsing (metering.engine.frame).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
import contextlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
from sqlalchemy.engine import Engine

from metering.engine import keys as keymod
from metering.engine import tables  # noqa: F401  (registers the segment tables)
from metering.engine.batch import EventBatch, parse_properties, shred
from metering.engine.interface import Stored
from metering.engine.keys import SortedKeys
from metering.engine.segments import SegmentFiles, Written

BUFFER_LIMIT = 100_000  # rows the `event` table holds before they move into a segment
SMALL_BATCH = 1_000  # batches smaller than this are stored as rows (see EventStore.store)
_PG_LOCK = 7_270_014  # pg_advisory_xact_lock key of the store's write lock
EventRow = tuple[str, str, int, str, str]  # event_name, customer_id, ts_us, key, properties
_ROWS = msgspec.json.Encoder()
_NO_LOCK = contextlib.nullcontext()


@dataclass(frozen=True)
class StoreVersion:
    """What a reader needs to know to catch up: inserts raise next_seq; compactions move rows
    from the table into a segment; deletes bump generation."""

    events: int
    generation: int
    next_seq: int
    compactions: int


def placeholders(sql: str, sqlite: bool) -> str:
    """`?` parameters as the driver wants them (psycopg: `%s`)."""
    return sql if sqlite else sql.replace("?", "%s")


@contextmanager
def write_transaction(raw: Any, sqlite: bool) -> Iterator[Any]:
    """A cursor on `raw` in one transaction holding the store's write lock (SQLite `BEGIN
    IMMEDIATE`; PostgreSQL a transaction-level advisory lock), committed on success and
    rolled back on any error. Every writer of events takes it, whichever engine holds them."""
    try:
        cur = raw.cursor()
        if sqlite:
            cur.execute("BEGIN IMMEDIATE")
        else:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))
        yield cur
        raw.commit()
    except BaseException:
        raw.rollback()
        raise


def store_version(cur: Any, sqlite: bool) -> StoreVersion:
    """The `store_state` row (made when missing: tables made without store.make_engine)."""
    cur.execute("SELECT events, generation, next_seq, compactions FROM store_state WHERE id = 1")
    row = cur.fetchone()
    if row is None:
        cur.execute(placeholders(
            "INSERT INTO store_state (id, events, generation, next_seq, compactions) VALUES (1, 0, 0, 1, 0)", sqlite))
        return StoreVersion(0, 0, 1, 0)
    return StoreVersion(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def count_import(cur: Any, sqlite: bool, import_id: int, accepted: int, duplicates: int, rejected: int,
                 future: int) -> int:
    """Add a batch's counts to its import record; the number of records changed (0: it is gone)."""
    cur.execute(placeholders(
        "UPDATE import_batch SET accepted = accepted + ?, duplicates = duplicates + ?,"
        " rejected = rejected + ?, future = future + ? WHERE id = ?", sqlite),
        (accepted, duplicates, rejected, future, import_id))
    return cur.rowcount


@dataclass(frozen=True)
class SegmentRow:
    name: str
    import_id: int | None
    rows: int
    seq_base: int
    own_seq: bool
    min_ts: int
    max_ts: int
    id: int


@dataclass(frozen=True)
class BufferRows:
    """Rows of the `event` table, oldest first."""

    seq: np.ndarray
    import_id: np.ndarray  # -1 where none
    batch: EventBatch


@dataclass(frozen=True)
class Snapshot:
    version: StoreVersion
    segments: list[SegmentRow]
    rows: BufferRows


class EventStore:
    """One store's events (segments + the `event` table), shared by every user in a process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.files = SegmentFiles(engine)
        self._keys: dict[str, SortedKeys] = {}
        self._keys_lock = threading.Lock()
        self._writer: Any = None  # SQLite: one kept connection for row writes (the API's path)
        self._writer_lock = threading.Lock()
        self._compacting = threading.Lock()
        self._unchecked = 0  # rows inserted here since the table's size was last looked at
        # One transaction at a time on SQLite within this process: writes queue here rather than
        # in SQLite's busy loop; an in-memory database has a single connection, so reads too.
        self._tx_lock = threading.RLock()
        url = engine.url
        self._one_connection = self.sqlite and url.database in (None, "", ":memory:")
        try:  # files a crashed writer left behind (old enough that no writer is still on them)
            self.tidy()
        except Exception:  # noqa: BLE001 - tables not made yet (a fixture), or a read-only disk
            pass

    # ------------------------------------------------------------------ transactions

    def _p(self, sql: str) -> str:
        return placeholders(sql, self.sqlite)

    @contextmanager
    def _locked(self, raw: Any = None) -> Iterator[Any]:
        """A cursor in one transaction holding the store's write lock; commits on success."""
        with self._tx_lock if self.sqlite else _NO_LOCK:
            own = raw is None
            raw = raw if raw is not None else self.engine.raw_connection()
            try:
                with write_transaction(raw, self.sqlite) as cur:
                    yield cur
            finally:
                if own:
                    raw.close()

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        with self._tx_lock if self._one_connection else _NO_LOCK:
            raw = self.engine.raw_connection()
            try:
                yield raw.cursor()
                raw.commit()
            finally:
                raw.close()

    # ------------------------------------------------------------------ state

    def version(self) -> StoreVersion:
        with self._reading() as cur:
            return self._version(cur)

    def _version(self, cur: Any) -> StoreVersion:
        return store_version(cur, self.sqlite)

    def segments(self, cur: Any = None) -> list[SegmentRow]:
        """The listed segments, oldest first."""
        if cur is None:
            with self._reading() as c:
                return self.segments(c)
        cur.execute(
            "SELECT name, import_id, rows, seq_base, own_seq, min_ts, max_ts, id FROM event_segment ORDER BY id"
        )
        return [
            SegmentRow(r[0], None if r[1] is None else int(r[1]), int(r[2]), int(r[3]), bool(r[4]), int(r[5]), int(r[6]), int(r[7]))
            for r in cur.fetchall()
        ]

    def buffer_rows(self, *, from_seq: int = 0, limit: int | None = None, keys: bool = True) -> BufferRows:
        """Rows of the `event` table with seq ≥ from_seq, as a batch (properties shredded; the
        key numbers only with `keys`: readers do not need them)."""
        with self._reading() as cur:
            return self._buffer_rows(cur, from_seq=from_seq, limit=limit, keys=keys)

    def _buffer_rows(self, cur: Any, *, from_seq: int = 0, limit: int | None = None, keys: bool = True) -> BufferRows:
        sql = ("SELECT seq, event_name, customer_id, ts_us, idempotency_key, properties, import_id"
               " FROM event WHERE seq >= ? ORDER BY seq") + (f" LIMIT {int(limit)}" if limit else "")
        cur.execute(self._p(sql), (from_seq,))
        rows = cur.fetchall()
        seq = np.array([r[0] for r in rows], dtype=np.int64)
        imports = np.array([-1 if r[6] is None else r[6] for r in rows], dtype=np.int64)
        names = pa.array([r[1] for r in rows], type=pa.string())
        customers = pa.array([r[2] for r in rows], type=pa.string())
        ts = np.array([r[3] for r in rows], dtype=np.int64)
        key_texts = pa.array([r[4] for r in rows], type=pa.string())
        props_texts = [r[5] for r in rows]
        k1, k2 = keymod.key_ids(key_texts) if keys else (np.zeros(len(rows), np.uint64), np.zeros(len(rows), np.uint64))
        paths, nulls, complete = shred(parse_properties(props_texts))
        batch = EventBatch(
            names, customers, ts, key_texts, pa.array(props_texts, type=pa.string()), k1, k2,
            paths, nulls, complete, None, seq,
        )
        return BufferRows(seq, imports, batch)

    def snapshot(self, *, rows_after: int = 0) -> Snapshot:
        """The version, the segment list and the table's rows with seq > rows_after, read in
        one transaction (one snapshot of the store, also on PostgreSQL)."""
        with self._tx_lock if self._one_connection else _NO_LOCK:
            raw = self.engine.raw_connection()
            try:
                cur = raw.cursor()
                if self.sqlite:
                    cur.execute("BEGIN")  # WAL: every read below sees the same snapshot
                else:
                    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                version = self._version(cur)
                segments = self.segments(cur)
                rows = self._buffer_rows(cur, from_seq=rows_after + 1, keys=False)
                raw.commit()
                return Snapshot(version, segments, rows)
            finally:
                raw.close()

    def buffered(self) -> int:
        with self._reading() as cur:
            cur.execute("SELECT count(*) FROM event")
            return int(cur.fetchone()[0])

    # ------------------------------------------------------------------ duplicates

    def _segment_keys(self, names: Sequence[str], *, complete: bool = False) -> list[SortedKeys]:
        """The segments' sorted keys (read once, kept); with `complete` (names is the whole
        listing) the keys of segments no longer listed are dropped."""
        with self._keys_lock:
            for name in names:
                if name not in self._keys:
                    self._keys[name] = self.files.read_keys(name)
            if complete:
                for gone in set(self._keys) - set(names):
                    del self._keys[gone]
            return [self._keys[n] for n in names]

    def _known(self, k1: np.ndarray, k2: np.ndarray, segments: Sequence[SegmentRow], order: np.ndarray | None = None,
               ts: np.ndarray | None = None, complete: bool = False) -> np.ndarray:
        """Mask of identities stored in any of these segments (searched with sorted needles;
        `order` sorts them by (k1, k2) when the caller has it already).

        With the events' times `ts`: a content key is its timestamp and content hash, so it can
        only be in a segment whose time range holds its time; each segment is searched only
        for those (and for keys a client chose). A file of new history then searches almost
        nothing, instead of every stored segment for every key."""
        found = np.zeros(len(k1), dtype=bool)
        if not segments and complete:
            self._segment_keys([], complete=True)
        if not len(k1) or not segments:
            return found
        order = np.lexsort((k2, k1)) if order is None else order
        s1, s2 = k1[order], k2[order]
        st = None
        client = None
        if ts is not None:
            st = np.asarray(ts, dtype=np.int64)[order]
            client = s2 != (st + keymod.TS_OFFSET).astype(np.uint64)
        hit = np.zeros(len(k1), dtype=bool)
        for segment, keys in zip(segments, self._segment_keys([s.name for s in segments], complete=complete)):
            if st is None:
                hit |= keys.contains(s1, s2)
                continue
            rows = np.flatnonzero(client | ((st >= segment.min_ts) & (st <= segment.max_ts)))
            if len(rows) == len(s1):
                hit |= keys.contains(s1, s2)
            elif len(rows):
                hit[rows] |= keys.contains(s1[rows], s2[rows])  # still sorted: a subsequence
        found[order] = hit
        return found

    def _buffer_keys(self, cur: Any) -> SortedKeys:
        cur.execute("SELECT idempotency_key FROM event")
        texts = pa.array([r[0] for r in cur.fetchall()], type=pa.string())
        return SortedKeys.build(*keymod.key_ids(texts))

    # ------------------------------------------------------------------ batch writes

    def store(
        self, batch: EventBatch, *, import_id: int | None, rejected: int = 0, future_after_us: int | None = None
    ) -> Stored:
        """Store a batch the way its size suits: a small one as rows of the `event` table (no
        segment for a test event), a large one as a segment. Same rules either way."""
        if len(batch) >= SMALL_BATCH:
            return self.write_batch(batch, import_id=import_id, rejected=rejected, future_after_us=future_after_us)
        rows = list(zip(batch.event_name.to_pylist(), batch.customer_id.to_pylist(), batch.ts_us.tolist(),
                        batch.key_text().to_pylist(), batch.properties.to_pylist()))
        return self.insert_rows(rows, import_id=import_id, rejected=rejected, future_after_us=future_after_us)

    def write_batch(
        self, batch: EventBatch, *, import_id: int | None, rejected: int = 0, future_after_us: int | None = None
    ) -> Stored:
        """Store a batch as one segment, without its duplicates, and count it on its import
        (accepted, duplicates, `rejected` rows of its source, future) in the same transaction.
        Returns what was added, and how many of the batch's events (duplicates included: the
        file holds them) are dated after `future_after_us`."""
        if not len(batch):
            if import_id is not None and rejected:
                with self._locked() as cur:
                    self._count_import(cur, import_id, 0, 0, rejected, 0)
            return Stored(0, 0)
        # One sort of the key numbers serves three purposes: repeats inside the batch (the first
        # wins), the search of every segment, and the sorted keys the new segment stores.
        order = np.lexsort((batch.k2, batch.k1))
        keep = keymod.first_in_order(batch.k1, batch.k2, order)
        first = self.segments()
        checked = {s.name for s in first}
        keep &= ~self._known(batch.k1, batch.k2, first, order, ts=batch.ts_us, complete=True)
        while True:
            candidate = batch.take(np.flatnonzero(keep)) if not keep.all() else batch
            kept_order = order[keep[order]]  # still sorted by (k1, k2)
            sorted_keys = (batch.k1[kept_order], batch.k2[kept_order])
            written = self.files.write(candidate, sorted_keys=sorted_keys) if len(candidate) else None
            with self._locked() as cur:
                listed = self.segments(cur)
                newer = [s for s in listed if s.name not in checked]
                late = (self._known(candidate.k1, candidate.k2, newer, ts=candidate.ts_us) if newer
                        else np.zeros(len(candidate), bool))
                late |= self._buffer_keys(cur).contains(candidate.k1, candidate.k2) if len(candidate) else late
                if late.any():
                    # Another writer stored some of these keys meanwhile: write again without them.
                    kept_idx = np.flatnonzero(keep)
                    keep[kept_idx[late]] = False
                    checked.update(s.name for s in newer)
                    if written is not None:
                        self.files.remove([written.name])
                    continue
                added = 0 if written is None else written.rows
                future = 0 if future_after_us is None else int(np.count_nonzero(batch.ts_us > future_after_us))
                if written is not None:
                    self._list_segment(cur, written, import_id=import_id)
                if import_id is not None:
                    self._count_import(cur, import_id, added, len(batch) - added, rejected, future)
            return Stored(added, future)

    def _count_import(self, cur: Any, import_id: int, accepted: int, duplicates: int, rejected: int, future: int) -> None:
        count_import(cur, self.sqlite, import_id, accepted, duplicates, rejected, future)

    def _list_segment(self, cur: Any, written: Written, *, import_id: int | None, seq_base: int | None = None) -> None:
        state = self._version(cur)
        base = state.next_seq if seq_base is None else seq_base
        cur.execute(self._p(
            "INSERT INTO event_segment (name, import_id, rows, seq_base, own_seq, min_ts, max_ts, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            (written.name, import_id, written.rows, base, written.own_seq, written.min_ts, written.max_ts,
             datetime.now(timezone.utc).replace(tzinfo=None)),
        )
        self._publish(cur, written.name)
        if seq_base is None:
            cur.execute(self._p("UPDATE store_state SET events = events + ?, next_seq = next_seq + ? WHERE id = 1"),
                        (written.rows, written.rows))

    def _publish(self, cur: Any, name: str) -> None:
        if not self.files.blobs:
            return
        for kind, path in (("events", self.files.events_path(name, fetch=False)), ("data", self.files.data_path(name, fetch=False))):
            cur.execute("INSERT INTO event_segment_blob (segment, kind, data) VALUES (%s, %s, %s)", (name, kind, path.read_bytes()))

    # ------------------------------------------------------------------ row writes

    def insert_rows(
        self, rows: Sequence[EventRow], *, import_id: int | None, rejected: int = 0, future_after_us: int | None = None
    ) -> Stored:
        """Insert rows into the `event` table (one transaction with the import's counts).
        Returns the rows added; keys stored before (or repeated in `rows`) are duplicates."""
        if self.sqlite:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = self.engine.raw_connection()
                    self._writer.cursor().execute("PRAGMA cache_size = -32768")  # 32 MiB: index pages stay in memory
                try:
                    stored = self._insert_rows(self._writer, rows, import_id, rejected, future_after_us)
                except self.engine.dialect.dbapi.IntegrityError:  # type: ignore[union-attr]
                    raise
                except Exception:  # the connection may be unusable: open a new one next time
                    self._drop_writer()
                    raise
        else:
            stored = self._insert_rows(None, rows, import_id, rejected, future_after_us)
        self._unchecked += stored.added
        if self._unchecked >= BUFFER_LIMIT // 10:
            self._unchecked = 0
            if self.buffered() >= BUFFER_LIMIT and not self._compacting.locked():
                # in the background: the request that filled the table is not held up
                threading.Thread(target=self.compact, name="metering-compact", daemon=True).start()
        return stored

    def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.invalidate()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass

    def _insert_rows(
        self, raw: Any, rows: Sequence[EventRow], import_id: int | None, rejected: int, future_after_us: int | None
    ) -> Stored:
        k1 = k2 = np.zeros(0, np.uint64)
        if rows:
            k1, k2 = keymod.key_ids(pa.array([r[3] for r in rows], type=pa.string()))
        with self._locked(raw) as cur:
            added = future = 0
            if rows:
                known = self._known(k1, k2, self.segments(cur), ts=np.array([r[2] for r in rows], dtype=np.int64),
                                    complete=True)
                fresh = [r for r, old in zip(rows, known.tolist()) if not old] if known.any() else list(rows)
                seq0 = self._version(cur).next_seq
                if fresh:
                    added = self._insert_fresh(cur, fresh, import_id, seq0)
                if future_after_us is not None:
                    future = sum(1 for r in rows if r[2] > future_after_us)
                if added:  # seqs seq0 … seq0 + len(fresh) − 1 may be taken (gaps are fine)
                    cur.execute(self._p("UPDATE store_state SET events = events + ?, next_seq = next_seq + ? WHERE id = 1"),
                                (added, len(fresh)))
            if import_id is not None:
                self._count_import(cur, import_id, added, len(rows) - added, rejected, future)
                if cur.rowcount != 1:
                    raise self.engine.dialect.dbapi.IntegrityError("the import record is gone")  # type: ignore[union-attr]
            return Stored(added, future)

    def _insert_fresh(self, cur: Any, rows: Sequence[EventRow], import_id: int | None, seq0: int) -> int:
        if self.sqlite:
            # One statement for the whole batch: SQLite reads the rows from one JSON array in C
            # (executemany would release and retake the GIL around every row).
            cur.execute(
                "INSERT INTO event (event_name, customer_id, ts_us, idempotency_key, properties, import_id, seq)"
                " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),"
                " json_extract(value, '$[3]'), json_extract(value, '$[4]'), ?, ? + key FROM json_each(?)"
                " WHERE true ORDER BY key ON CONFLICT (idempotency_key) DO NOTHING",
                (import_id, seq0, _ROWS.encode(list(rows)).decode("utf-8")),
            )
            return int(cur.rowcount)
        names, customers, stamps, keys_, props = (list(col) for col in zip(*rows))
        # WITH ORDINALITY keeps the input order (the first of repeated keys wins).
        cur.execute(
            "INSERT INTO event (event_name, customer_id, ts_us, idempotency_key, properties, import_id, seq)"
            " SELECT n, c, t, k, p, %s, %s + o - 1 FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[])"
            " WITH ORDINALITY AS u(n, c, t, k, p, o) ORDER BY o ON CONFLICT (idempotency_key) DO NOTHING",
            (import_id, seq0, names, customers, stamps, keys_, props),
        )
        return int(cur.rowcount)

    # ------------------------------------------------------------------ compaction

    def compact(self, *, chunk: int = BUFFER_LIMIT) -> int:
        """Move every row of the `event` table into segments (one per import, per chunk), each
        move one transaction. Rows keep their store order (the segment keeps their seq)."""
        moved = 0
        with self._compacting:
            while True:
                buf = self.buffer_rows(limit=chunk)
                if not len(buf.seq):
                    return moved
                top = int(buf.seq[-1])
                written: list[tuple[Written, int | None, int]] = []
                for imp in np.unique(buf.import_id):
                    idx = np.flatnonzero(buf.import_id == imp)
                    w = self.files.write(buf.batch.take(idx), seq=buf.seq[idx])
                    written.append((w, None if imp < 0 else int(imp), len(idx)))
                with self._locked() as cur:
                    cur.execute(self._p("SELECT count(*) FROM event WHERE seq <= ?"), (top,))
                    unchanged = int(cur.fetchone()[0]) == len(buf.seq)
                    if unchanged:
                        for w, imp, _ in written:
                            self._list_segment(cur, w, import_id=imp, seq_base=0)
                        cur.execute(self._p("DELETE FROM event WHERE seq <= ?"), (top,))
                        cur.execute("UPDATE store_state SET compactions = compactions + 1 WHERE id = 1")
                if not unchanged:  # a delete came in between: move what is there now
                    self.files.remove(w.name for w, _, _ in written)
                    continue
                moved += len(buf.seq)

    # ------------------------------------------------------------------ deletes

    def delete_import(self, import_id: int) -> int:
        """Delete the events one import added, and its record. Returns events deleted."""
        with self._locked() as cur:
            cur.execute(self._p("SELECT name, rows FROM event_segment WHERE import_id = ?"), (import_id,))
            segs = cur.fetchall()
            cur.execute(self._p("DELETE FROM event WHERE import_id = ?"), (import_id,))
            deleted = int(cur.rowcount) + sum(int(r[1]) for r in segs)
            self._unlist(cur, [r[0] for r in segs])
            cur.execute(self._p("DELETE FROM import_batch WHERE id = ?"), (import_id,))
            cur.execute(self._p("UPDATE store_state SET events = events - ?, generation = generation + 1 WHERE id = 1"), (deleted,))
        self.files.remove(r[0] for r in segs)
        return deleted

    def _uncount(self, cur: Any, import_id: int | None) -> None:
        """One event fewer on its import's record (a single event was deleted)."""
        if import_id is not None:
            cur.execute(self._p("UPDATE import_batch SET accepted = accepted - 1 WHERE id = ? AND accepted > 0"), (import_id,))

    def _unlist(self, cur: Any, names: Sequence[str]) -> None:
        for name in names:
            cur.execute(self._p("DELETE FROM event_segment WHERE name = ?"), (name,))
            if self.files.blobs:
                cur.execute("DELETE FROM event_segment_blob WHERE segment = %s", (name,))

    def delete_all(self) -> None:
        with self._locked() as cur:
            names = [s.name for s in self.segments(cur)]
            cur.execute("DELETE FROM event")
            cur.execute("DELETE FROM event_segment")
            if self.files.blobs:
                cur.execute("DELETE FROM event_segment_blob")
            cur.execute("DELETE FROM import_batch")
            cur.execute("UPDATE store_state SET events = 0, generation = generation + 1 WHERE id = 1")
        self.files.remove(names)

    def delete_event(self, key: str) -> bool:
        """Delete the one event with this idempotency key. Returns whether there was one.

        In the `event` table it is one row; in a segment, the segment is written again without
        it (the others keep their store order) and swapped in, in one transaction."""
        k1, k2 = keymod.key_ids(pa.array([key], type=pa.string()))
        while True:
            with self._locked() as cur:
                cur.execute(self._p("SELECT import_id FROM event WHERE idempotency_key = ?"), (key,))
                row = cur.fetchone()
                if row is not None:
                    cur.execute(self._p("DELETE FROM event WHERE idempotency_key = ?"), (key,))
                    cur.execute("UPDATE store_state SET events = events - 1, generation = generation + 1 WHERE id = 1")
                    self._uncount(cur, row[0])
                    return True
                listed = self.segments(cur)
            holder = next((s for s in listed if self._known(k1, k2, [s])[0]), None)
            if holder is None:
                return False
            cols = self.files.read_columns(holder.name)
            row = int(np.flatnonzero((cols.k1 == k1[0]) & (cols.k2 == k2[0]))[0])
            keep = np.delete(np.arange(holder.rows), row)
            seq = cols.seq if cols.seq is not None else holder.seq_base + np.arange(holder.rows, dtype=np.int64)
            rest = self.read_batch(holder).take(keep)
            written = self.files.write(rest, seq=seq[keep]) if len(rest) else None
            with self._locked() as cur:
                if not any(s.name == holder.name for s in self.segments(cur)):
                    if written is not None:
                        self.files.remove([written.name])
                    continue  # changed meanwhile: look again
                self._unlist(cur, [holder.name])
                if written is not None:
                    self._list_segment(cur, written, import_id=holder.import_id, seq_base=0)
                cur.execute("UPDATE store_state SET events = events - 1, generation = generation + 1 WHERE id = 1")
                self._uncount(cur, holder.import_id)
            self.files.remove([holder.name])
            return True

    def read_batch(self, segment: SegmentRow) -> EventBatch:
        """A segment's events as a batch (every column: for rewriting it)."""
        cols = self.files.read_columns(segment.name)
        paths, nulls, complete = self.files.shredding(segment.name)
        from metering.engine.batch import path_column_name

        names = ["idempotency_key", "properties", *(path_column_name(p) for p in paths)]
        data = self.files.read_data(segment.name, names)
        return EventBatch(
            pa.array(cols.event_names.to_arrow().cast(pa.string())),
            pa.array(cols.customers.to_arrow().cast(pa.string())),
            cols.ts_us, data.column("idempotency_key").combine_chunks(), data.column("properties").combine_chunks(),
            cols.k1, cols.k2,
            {p: data.column(path_column_name(p)).combine_chunks() for p in paths}, nulls, complete,
        )

    # ------------------------------------------------------------------ housekeeping

    def tidy(self) -> int:
        """Remove files of segments that were never listed (a crashed writer). Returns files removed."""
        return self.files.remove_orphans({s.name for s in self.segments()})

