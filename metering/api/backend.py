"""What the routes share in one process: the store, the frame cache, the write path."""

from __future__ import annotations


import os
import sqlite3
import threading
import time
from datetime import datetime, timezone
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.engine import Engine
from anyio import CapacityLimiter

from metering import apikeys, store
from metering.aggregation import aggregate
from metering.frame import shared_frames
from metering.models import MetricPublic
from metering.api.limits import (
    INGEST_CONCURRENCY,
)
from metering.api.errors import ApiError, _log
from metering.api.intake import (
    _RISKY_ESCAPE,
    _events_of,
    _exact_decode,
    fast_rows,
    validate_events,
)


class Backend:
    """What the routes share in one process: the engine, the frame cache, the day's import."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._engine = engine
        self._init_lock = threading.Lock()
        self._ready = False
        self.frames = shared_frames()  # the same frames the app's pages read
        self.frame_lock = threading.Lock()
        # SQLite takes one writer at a time: writes queue on this lock (not in SQLite's busy
        # loop, which sleeps in steps of milliseconds) and share one connection, kept open.
        self._write_lock = threading.Lock()
        self._writer: Any = None
        self._import: tuple[int, int] | None = None  # (UTC day number, import id)
        self._import_lock = threading.Lock()
        self._limiter: CapacityLimiter | None = None

    def ingest_limiter(self) -> CapacityLimiter:
        """How many event requests are worked on at once (in the event loop's thread pool).
        Validation holds the GIL and SQLite takes one writer: two at a time keep one thread
        validating while the other writes; more only make them wait on each other for the
        GIL (measured: 8 at once gave ~35% fewer events/s than 2). The rest wait their turn
        in the event loop, costing nothing."""
        if self._limiter is None:
            self._limiter = CapacityLimiter(INGEST_CONCURRENCY)
        return self._limiter

    @property
    def ready(self) -> bool:
        return self._ready

    def start(self) -> Engine:
        """Create the engine (and tables) and the workspace key if there is none yet."""
        if self._ready:
            return self._engine  # type: ignore[return-value]
        with self._init_lock:
            if not self._ready:
                if self._engine is None:
                    self._engine = store.make_engine()
                try:
                    created = apikeys.ensure_key(self._engine)
                except apikeys.WeakKey as exc:
                    _log(f"no API key: {exc}")
                else:
                    if created:
                        _log(f"created the API key \"default\" (shown once; manage keys on the Developers page): {created}")
                self._ready = True
        return self._engine  # type: ignore[return-value]

    @property
    def engine(self) -> Engine:
        return self.start()

    # ---- events

    def ingest(self, body: bytes) -> tuple[int, dict[str, Any]]:
        risky = b"\\u" in body and _RISKY_ESCAPE.search(body) is not None
        rows: list[store.EventRow] | None = None
        errors: list[dict[str, Any]] = []
        if not risky:
            fast = fast_rows(body)
            if fast is not None:
                rows, single = fast
        if rows is None:  # anything unusual: the exact decoder, and parse_records for odd events
            events, single = _events_of(_exact_decode(body))
            good, errors = validate_events(events, risky=risky)
            rows = [row for _, row in good]
        added = self._store(rows, rejected=len(errors)) if (rows or errors) else 0
        result = {"accepted": added, "duplicates": len(rows) - added, "rejected": len(errors), "errors": errors}
        if single and errors:
            first = errors[0]
            raise ApiError(422, "invalid_event", f"{first['field']}: {first['reason']}", errors=errors)
        return 200, result

    def _import_id(self, *, fresh: bool = False) -> int:
        day = int(time.time() // 86_400)
        with self._import_lock:
            if fresh or self._import is None or self._import[0] != day:
                label = datetime.fromtimestamp(day * 86_400, timezone.utc).strftime("%Y-%m-%d")
                self._import = (day, store.new_import(self.engine, f"API {label}"))
            return self._import[1]

    def _store(self, rows: list[store.EventRow], *, rejected: int) -> int:
        """Insert the rows and count them on the day's import record, in one transaction."""
        engine = self.engine
        sqlite = store.is_sqlite(engine)
        for attempt in range(2):
            import_id = self._import_id(fresh=attempt > 0)
            try:
                if sqlite:
                    with self._write_lock:
                        if self._writer is None:
                            self._writer = engine.raw_connection()
                            self._writer.cursor().execute("PRAGMA cache_size = -32768")  # 32 MiB: index pages stay in memory
                        try:
                            return _write_sqlite(self._writer, rows, import_id, rejected)
                        except engine.dialect.dbapi.IntegrityError:  # type: ignore[union-attr]
                            raise
                        except Exception:  # the connection may be unusable: open a new one next time
                            self._drop_writer()
                            raise
                return _write_postgres(engine, rows, import_id, rejected)
            except engine.dialect.dbapi.IntegrityError:  # type: ignore[union-attr]
                # The day's import record was deleted (Events page, "delete all"): file the
                # events under a new one, once. Any other integrity error is a real failure.
                if attempt or self._import_exists(import_id):
                    raise
        raise AssertionError("unreachable")

    def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.invalidate()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass

    def _import_exists(self, import_id: int) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT 1 FROM import_batch WHERE id = :i"), {"i": import_id}).first() is not None

    # ---- reads

    def usage(self, metric: MetricPublic, start: int | None, end: int | None, customers: list[str] | None) -> dict[str, Any]:
        engine = self.engine
        with self.frame_lock:
            frame = self.frames.get(engine)
            result = aggregate(frame, metric, start=start, end=end, customer_ids=customers)
        return result.to_json()

    def health(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True


_ROWS_ENCODER = msgspec.json.Encoder()
# One statement for the whole batch: SQLite reads the rows from one JSON array in C. Besides
# sparing a Python call per row, this matters with threads: `executemany` releases and retakes
# the GIL around every row, and each retake can wait for the interpreter's switch interval
# while other requests validate, so 1,000 rows could wait seconds; here it is released once.
_INSERT_SQLITE = (
    "INSERT INTO event (event_name, customer_id, ts_us, idempotency_key, properties, import_id)"
    " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),"
    " json_extract(value, '$[3]'), json_extract(value, '$[4]'), ? FROM json_each(?) WHERE true ORDER BY key"
    " ON CONFLICT (idempotency_key) DO NOTHING"
)


def _write_sqlite(raw: Any, rows: list[store.EventRow], import_id: int, rejected: int) -> int:
    """Insert and count in one transaction on `raw` (a DBAPI connection kept by the backend)."""
    try:
        cur = raw.cursor()
        added = 0
        if rows:
            cur.execute(_INSERT_SQLITE, (import_id, _ROWS_ENCODER.encode(rows).decode("utf-8")))
            added = int(cur.rowcount)
        cur.execute(
            "UPDATE import_batch SET accepted = accepted + ?, duplicates = duplicates + ?,"
            " rejected = rejected + ? WHERE id = ?",
            (added, len(rows) - added, rejected, import_id),
        )
        if cur.rowcount != 1:
            raise sqlite3.IntegrityError("the import record is gone")
        if added:  # the store's event count (store.store_version), kept like store.insert_events does
            cur.execute("UPDATE store_state SET events = events + ? WHERE id = 1", (added,))
        cur.close()
        raw.commit()
        return added
    except BaseException:
        raw.rollback()
        raise


def _write_postgres(engine: Engine, rows: list[store.EventRow], import_id: int, rejected: int) -> int:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        added = 0
        if rows:
            names, customers, stamps, keys, props = (list(col) for col in zip(*rows))
            # One statement; WITH ORDINALITY keeps the input order (ids, and the first of
            # repeated keys wins), ON CONFLICT skips keys already stored or repeated in the batch.
            cur.execute(
                "INSERT INTO event (event_name, customer_id, ts_us, idempotency_key, properties, import_id)"
                " SELECT n, c, t, k, p, %s FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[])"
                " WITH ORDINALITY AS u(n, c, t, k, p, o) ORDER BY o"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                (import_id, names, customers, stamps, keys, props),
            )
            added = int(cur.rowcount)
        cur.execute(
            "UPDATE import_batch SET accepted = accepted + %s, duplicates = duplicates + %s,"
            " rejected = rejected + %s WHERE id = %s",
            (added, len(rows) - added, rejected, import_id),
        )
        if cur.rowcount != 1:
            raise engine.dialect.dbapi.IntegrityError("the import record is gone")  # type: ignore[union-attr]
        if added:
            cur.execute("UPDATE store_state SET events = events + %s WHERE id = 1", (added,))
        raw.commit()
        return added
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()



_default_backends: dict[str, Backend] = {}  # by the raw DATABASE_URL value
_default_urls: dict[str, Backend] = {}  # by the normalised URL
_default_lock = threading.Lock()


def default_backend() -> Backend:
    """The process's backend for the store DATABASE_URL names (one per URL, looked up by the
    variable's raw value so a request costs no path work)."""
    raw = os.environ.get("DATABASE_URL", "")
    backend = _default_backends.get(raw)
    if backend is None:
        with _default_lock:
            backend = _default_backends.get(raw)
            if backend is None:
                url = store.database_url()
                backend = _default_urls.get(url) or Backend()
                _default_urls[url] = backend
                _default_backends[raw] = backend
    return backend
