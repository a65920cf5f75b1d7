"""Writing events to ClickHouse under contract §1, as the embedded store does.

Every write (a file import's block, a simulation, a test event, a `POST /api/v1/events` body)
is one call here, and one call is:

1. **Duplicates inside the write** dropped, the first of each key kept.
2. **Keys already stored** dropped: one query finds which of the write's keys the events table
   holds (the bloom filter index on `idempotency_key` skips granules that cannot hold them).
   Up to `INLINE_KEYS` keys go as an array parameter; more are first put in a small Memory
   table and read with `IN (SELECT …)`, which costs one pass over them instead of a huge SQL
   text (ClickHouse parses long literal arrays slowly).
3. **One INSERT** of what is left, with `insert_deduplication_token` (a hash of its store
   numbers and keys) and block sizes set so ClickHouse writes it as one block, that is one part:
   a part is committed whole or not at all. A retried insert (a timeout on a server) carries
   the same token, and ClickHouse drops the block if the first attempt had landed.

Steps 2–3 run inside one transaction of the SQL store holding its write lock (SQLite:
`BEGIN IMMEDIATE`; PostgreSQL: the embedded store's advisory lock): two writers sharing the
SQL store (the app and a `metering import` beside it) never both insert one key. The same
transaction takes the write's store numbers (`seq`, from `store_state.next_seq`) and adds the
write's counts to its import record, so the record says what the events table got. If that
commit fails after the INSERT landed (the SQL database went away at that instant), the events
are stored but not counted on the record; sending them again counts them as duplicates.

Writers that do not share the SQL store are not serialised: a key two of them insert at the
same instant may be stored twice. The table still answers once per key when the two rows are
identical (same event, same key: ReplacingMergeTree's sorting key, read with FINAL, see
`schema`); a key sent twice with different contents by two such writers is the one case left.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Engine

from metering.engine import keys as keymod
from metering.engine.batch import EventBatch
from metering.engine.batch import derive_text
from metering.engine.clickhouse import paths as pathcols
from metering.engine.clickhouse import schema
from metering.engine.clickhouse.connection import ChdbClient, ClickHouseClient, ClickHouseError, ServerClient
from metering.engine.interface import Stored
from metering.engine.store import EventRow, count_import, placeholders, store_version, write_transaction

INLINE_KEYS = 2_000  # keys checked through an array parameter; more go through a Memory table
NEAR_ROWS = 200_000  # stored rows in a write's time range read back whole (more: the key query)
_DEFAULT_BLOCK = 1_048_449  # ClickHouse's default max_insert_block_size / min_insert_block_size_rows


def _plain(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type) or column.type != pa.string():
        column = column.cast(pa.string())
    return column


def insert_settings(rows: int, token: str) -> dict[str, Any]:
    """Settings that make one INSERT of `rows` rows one block (so one part) and let a retry
    of it be recognised."""
    size = max(rows + 1, _DEFAULT_BLOCK)
    return {
        "insert_deduplication_token": token,
        "max_insert_block_size": size,
        "min_insert_block_size_rows": size,
        "min_insert_block_size_bytes": 0,  # 0: squash by rows only (not cut at 256 MiB)
        # no ReplacingMergeTree pass over the block on insert: a write holds no key twice (the
        # writer dropped repeats), and that pass took 40% of an insert
        "optimize_on_insert": 0,
    }


def insert_once(client: ClickHouseClient, table: str, data: pa.Table, settings: dict[str, Any]) -> None:
    """INSERT `data` with these settings (the client interface has no per-insert settings:
    a server gets them with the request; chdb, one session per process, gets them with SET,
    reset afterwards; only writers insert, and they hold the write lock)."""
    if isinstance(client, ServerClient):
        try:
            client._client.insert_arrow(table, data, settings=settings)  # noqa: SLF001
        except Exception as exc:  # noqa: BLE001 - one error type for callers
            raise ClickHouseError(str(exc)) from exc
        return
    if isinstance(client, ChdbClient):
        for name, value in settings.items():
            client.command(f"SET {name} = {_setting_literal(value)}")
        try:
            client.insert_arrow(table, data)
        finally:
            client.command("SET insert_deduplication_token = ''")
            for name in ("max_insert_block_size", "min_insert_block_size_rows", "min_insert_block_size_bytes"):
                client.command(f"SET {name} = DEFAULT")
        return
    client.insert_arrow(table, data)


def _setting_literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(int(value))


class ReadOnlyEvents(RuntimeError):
    """Events are read from a table this workbench does not write (OpenMeter mode)."""


class ClickHouseWriter:
    """The `EventWriter` of the ClickHouse events table (see the module docstring)."""

    read_only = False

    def __init__(self, client: ClickHouseClient, sql_engine: Engine, *, database: str | None = None) -> None:
        self.client = client
        self.sql = sql_engine
        self.database = database or client.database
        self.table = schema.table_name(self.database)
        self.source = schema.events_source(self.database)
        self.sqlite = sql_engine.dialect.name == "sqlite"
        self._lock = threading.Lock()  # one write at a time in this process (then the SQL lock)
        self._odd_key: bool | None = None

    # ------------------------------------------------------------------ the SQL store's lock

    def _p(self, sql: str) -> str:
        return placeholders(sql, self.sqlite)

    @contextmanager
    def _locked(self) -> Iterator[Any]:
        """A cursor in one SQL-store transaction holding the store's write lock."""
        with self._lock:
            raw = self.sql.raw_connection()
            try:
                with write_transaction(raw, self.sqlite) as cur:
                    yield cur
            finally:
                raw.close()

    def _reserve(self, cur: Any, n: int) -> int:
        """The first of n new store numbers (seq), taken from the SQL store."""
        base = store_version(cur, self.sqlite).next_seq
        cur.execute(self._p("UPDATE store_state SET next_seq = next_seq + ? WHERE id = 1"), (n,))
        return base

    def _count_import(self, cur: Any, import_id: int, accepted: int, duplicates: int, rejected: int, future: int) -> None:
        if count_import(cur, self.sqlite, import_id, accepted, duplicates, rejected, future) != 1:
            raise self.sql.dialect.dbapi.IntegrityError("the import record is gone")  # type: ignore[union-attr]

    # ------------------------------------------------------------------ duplicates

    def stored_keys(self, keys: pa.Array, *, content: np.ndarray | None = None, ts_us: np.ndarray | None = None) -> np.ndarray:
        """Mask of the keys the events table holds already.

        `content` marks content keys the intake made for these events (`h:` + the event's
        time + a hash): such a key can be stored only on a row of that same time (or on a
        row whose own key merely looks like one: `odd_key`), so they are looked for among
        the rows of the write's time range only, which the table's minmax index on `ts`
        narrows to the parts and granules that can hold them. Without it, a check would
        read every stored key, and an import would slow down with every block it adds."""
        n = len(keys)
        found = np.zeros(n, dtype=bool)
        if n == 0:
            return found
        own = np.zeros(n, dtype=bool) if content is None else np.asarray(content, dtype=bool)
        if own.any() and ts_us is not None and self._has_odd_key():
            idx = np.flatnonzero(own)
            stamps = np.asarray(ts_us, dtype=np.int64)[idx]
            lo, hi = int(stamps.min()), int(stamps.max())
            where = (f"(ts BETWEEN fromUnixTimestamp64Micro(toInt64({lo}), 'UTC') AND "
                     f"fromUnixTimestamp64Micro(toInt64({hi}), 'UTC') OR odd_key = 1)")
            wanted = keys.take(pa.array(idx)) if len(idx) < n else keys
            # Few rows in that range (an import of newer events than those stored, or of a
            # range stored sparsely): their keys come back and are matched here.
            near = self.client.query_arrow(
                f"SELECT idempotency_key AS k FROM {self.table} WHERE {where} LIMIT {NEAR_ROWS + 1}")
            if near.num_rows <= NEAR_ROWS:
                found[idx] = pc.is_in(wanted, value_set=_plain(near.column("k"))).to_numpy(zero_copy_only=False)
            else:
                found[idx] = self._held(wanted, where)
        else:
            own[:] = False
        rest = np.flatnonzero(~own)
        if len(rest):
            found[rest] = self._held(keys.take(pa.array(rest)) if len(rest) < n else keys, "1")
        return found

    def _has_odd_key(self) -> bool:
        """Whether the table has `odd_key` (a table made by its owner, whose user may not ALTER
        it, may not: its keys are then checked against every stored row)."""
        if self._odd_key is None:
            self._odd_key = any(c["name"] == "odd_key" for c in schema.columns(self.client, self.database))
        return self._odd_key

    def _held(self, keys: pa.Array, where: str) -> np.ndarray:
        """Mask of these keys found among the rows matching `where`."""
        n = len(keys)
        if n <= INLINE_KEYS:
            found = self.client.query_arrow(
                f"SELECT DISTINCT idempotency_key AS k FROM {self.table} "
                f"WHERE {where} AND idempotency_key IN {{ks:Array(String)}}",
                {"ks": keys.to_pylist()})
        else:
            pending = schema.table_name(self.database, f"pending_keys_{uuid.uuid4().hex}")
            self.client.command(f"CREATE TABLE {pending} (k String) ENGINE = Memory")
            try:
                self.client.insert_arrow(pending, pa.table({"k": keys}))
                found = self.client.query_arrow(
                    f"SELECT DISTINCT idempotency_key AS k FROM {self.table} "
                    f"WHERE {where} AND idempotency_key IN (SELECT k FROM {pending})")
            finally:
                self.client.command(f"DROP TABLE IF EXISTS {pending}")
        if found.num_rows == 0:
            return np.zeros(n, dtype=bool)
        return pc.is_in(keys, value_set=_plain(found.column("k"))).to_numpy(zero_copy_only=False)

    # ------------------------------------------------------------------ writes

    def store(self, batch: EventBatch, *, import_id: int | None, rejected: int = 0,
              future_after_us: int | None = None) -> Stored:
        """Store a batch (one INSERT), without duplicates; count it on its import."""
        keys = _plain(batch.key_text()) if len(batch) else pa.array([], pa.string())
        first = keymod.first_of_each(batch.k1, batch.k2)
        # content keys the intake made (kept as null until written out)
        content = batch.key.is_null().to_numpy(zero_copy_only=False) if len(batch) else np.zeros(0, dtype=bool)
        return self._write(
            _plain(batch.event_name), _plain(batch.customer_id), np.asarray(batch.ts_us, dtype=np.int64), keys,
            _plain(batch.properties), first, batch.text, content=content, import_id=import_id, rejected=rejected,
            future_after_us=future_after_us)

    write_batch = store  # the embedded store's name for a bulk write (store.write_batch)

    @staticmethod
    def prepare(batch: EventBatch) -> None:
        """What `store` needs of a batch that needs no lock: its keys as text (store.block_preparer)."""
        batch.key_text()

    def insert_rows(self, rows: Sequence[EventRow], *, import_id: int | None, rejected: int = 0,
                    future_after_us: int | None = None) -> Stored:
        """Store rows (event_name, customer_id, ts_us, key, properties JSON): the API's path."""
        if rows:
            names, customers, stamps, key_texts, props = (list(c) for c in zip(*rows))
        else:
            names = customers = key_texts = props = []
            stamps = []
        keys = pa.array(key_texts, type=pa.string())
        first = ~_repeated(keys)
        texts = pa.array(props, pa.string())
        return self._write(
            pa.array(names, pa.string()), pa.array(customers, pa.string()), np.asarray(stamps, dtype=np.int64), keys,
            texts, first, lambda path: derive_text(texts, path), import_id=import_id, rejected=rejected,
            future_after_us=future_after_us)

    def _write(self, names: pa.Array, customers: pa.Array, ts_us: np.ndarray, keys: pa.Array, props: pa.Array,
               first: np.ndarray, text_of: Callable[[str], pa.Array], *, content: np.ndarray | None = None,
               import_id: int | None, rejected: int, future_after_us: int | None) -> Stored:
        n = len(ts_us)
        future = 0 if future_after_us is None else int(np.count_nonzero(ts_us > future_after_us))
        with self._locked() as cur:
            candidates = np.flatnonzero(first)
            cand_keys = keys.take(pa.array(candidates, pa.int64())) if len(candidates) < n else keys
            held = self.stored_keys(cand_keys, content=None if content is None else content[candidates],
                                    ts_us=ts_us[candidates]) if len(candidates) else np.zeros(0, dtype=bool)
            fresh = candidates[~held]
            added = len(fresh)
            seq0 = self._reserve(cur, added) if added else 0
            if import_id is not None:  # before the INSERT: a gone record stores nothing
                self._count_import(cur, import_id, added, n - added, rejected, future)
            if added:
                idx = pa.array(fresh, pa.int64())
                # an import of new events keeps every row: no copy of every column then
                pick = (lambda a: a) if added == n else (lambda a: a.take(idx))
                new_keys = pick(keys)
                data = pa.table({
                    "event_name": pick(names),
                    "customer_id": pick(customers),
                    "ts": pa.array(ts_us if added == n else ts_us[fresh], type=pa.timestamp("us", tz="UTC")),
                    "idempotency_key": new_keys,
                    "properties": pick(props),
                    "import_id": pa.array(np.full(added, import_id, dtype=np.int64), pa.int64()) if import_id is not None
                    else pa.nulls(added, pa.int64()),
                    "seq": pa.array(seq0 + np.arange(added, dtype=np.uint64), pa.uint64()),
                })
                # the paths metrics read, as columns (the table's list is read under the lock:
                # a path added by another process since is written too)
                kept = pathcols.stored(self.client, self.database)
                for name, column in pathcols.values(kept.values(), text_of, fresh, n).items():
                    data = data.append_column(name, column)
                self._insert(data, _token(self.database, import_id, seq0, new_keys))
        return Stored(added, future)

    # ------------------------------------------------------------------ path columns

    def keep_paths(self, paths: Sequence[str]) -> None:
        """Give these property paths their columns (see `paths`): added, then every stored row
        written again with them, under the write lock (no import or delete in between)."""
        with self._locked():
            have = pathcols.stored(self.client, self.database)
            wanted = list(dict.fromkeys(paths))
            pathcols.add_columns(self.client, self.database, [p for p in wanted if p not in have])
            # every wanted path with rows lacking it (new ones; one whose backfill was cut off)
            lacking = pathcols.lacking(self.client, self.database, wanted)
            if lacking:
                pathcols.backfill(self.client, self.database, lacking, pathcols.table_columns(self.client, self.database))

    def _insert(self, data: pa.Table, token: str) -> None:
        settings = insert_settings(data.num_rows, token)
        try:
            insert_once(self.client, self.table, data, settings)
        except ClickHouseError:
            if not isinstance(self.client, ServerClient):
                raise
            # Over the network an error may come after the server stored the block (a timeout
            # on the answer): send it again; the token makes ClickHouse drop it if it landed.
            insert_once(self.client, self.table, data, settings)

    # ------------------------------------------------------------------ deletes

    def delete_import(self, import_id: int) -> int:
        """Delete the events one import added, and its record. Returns events deleted."""
        params = {"i": int(import_id)}
        with self._locked() as cur:
            deleted = self._count(f"SELECT count() AS n FROM {self.source} WHERE import_id = {{i:Int64}}", params)
            if deleted:
                self.client.command(f"DELETE FROM {self.table} WHERE import_id = {{i:Int64}}", params)
            cur.execute(self._p("DELETE FROM import_batch WHERE id = ?"), (int(import_id),))
        return deleted

    def delete_event(self, key: str) -> bool:
        """Delete the one event with this key (its import's `accepted` drops by one)."""
        params = {"k": key}
        with self._locked() as cur:
            found = self.client.query_arrow(
                f"SELECT import_id AS i FROM {self.source} WHERE idempotency_key = {{k:String}} LIMIT 1", params).to_pylist()
            if not found:
                return False
            self.client.command(f"DELETE FROM {self.table} WHERE idempotency_key = {{k:String}}", params)
            if found[0]["i"] is not None:
                cur.execute(self._p("UPDATE import_batch SET accepted = accepted - 1 WHERE id = ? AND accepted > 0"),
                            (int(found[0]["i"]),))
        return True

    def delete_all(self) -> None:
        """Every event, and every import record."""
        with self._locked() as cur:
            self.client.command(f"TRUNCATE TABLE {self.table}")
            cur.execute("DELETE FROM import_batch")

    def _count(self, query: str, params: dict[str, Any]) -> int:
        rows = self.client.query_arrow(query, params).to_pylist()
        return int(rows[0]["n"]) if rows else 0


class ReadOnlyWriter:
    """The writer of a table this workbench only reads: every write is refused, saying why."""

    read_only = True

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise ReadOnlyEvents(self.reason)

    store = write_batch = insert_rows = delete_import = delete_event = delete_all = _refuse


def _repeated(keys: pa.Array) -> np.ndarray:
    """Mask of keys seen earlier in the array (the first of each is kept)."""
    if len(keys) < 2:
        return np.zeros(len(keys), dtype=bool)
    import pandas as pd

    return pd.Index(keys.to_numpy(zero_copy_only=False)).duplicated(keep="first")


def _token(database: str, import_id: int | None, seq0: int, keys: pa.Array) -> str:
    """The INSERT's deduplication token: its store numbers, size and first and last keys (a
    retry of the same INSERT has them all; another write never has the same store numbers)."""
    h = hashlib.blake2b(digest_size=16)
    ends = (keys[0].as_py(), keys[len(keys) - 1].as_py()) if len(keys) else ("", "")
    h.update(f"{database}\0{import_id}\0{seq0}\0{len(keys)}\0{ends[0]}\0{ends[1]}".encode())
    return h.hexdigest()
