"""The workbench's HTTP API: plain Starlette routes under /api/v1, served next to the Streamlit
app (`app.py` passes `api_routes()` to `st.App`) and testable on their own.

Endpoints (the OpenAPI document at /api/v1/openapi.json is the reference):

* `POST /api/v1/events` – one event object, or `{"events": [...]}` with up to 1,000 of them
  (contract §1 rules). Answers `{"accepted", "duplicates", "rejected", "errors": [{"index",
  "field", "reason"}]}`. A batch is stored in one transaction: whole or not at all; a bad event
  in a batch is reported and the good ones are stored (like a file import). A single event that
  breaks a rule is a 422. Idempotent: an event whose `idempotency_key` (or, without one, its
  content hash) is already stored counts as a duplicate.
* `GET /api/v1/metrics`, `GET /api/v1/metrics/{code}`, `GET /api/v1/usage?metric=&customer_id=
  &from=&to=` (the engine's aggregate over [from, to) with its groups), `GET /api/v1/health`.
* Errors are JSON `{"error": <code>, "detail": <what was wrong>}`: 401 without the workspace key
  (`Authorization: Bearer <key>`), 404, 405, 413 for bodies over `MAX_BODY_BYTES`, 422 for
  bodies or parameters that cannot be used. Bad input never causes a 500.

Per process the API keeps one engine (`store.make_engine()`, i.e. DATABASE_URL), reads usage
from the process's shared frame cache (the one the app's pages use), and the id of the day's import record (API events are filed
under one import per UTC day, "API 2026-10-03", so the Events page can show and delete them
without one record per request; its counts are updated in the same transaction as the events).

The write path, tuned for throughput (bench/api.py):
* Ordinary bodies are decoded by msgspec into untracked structs and checked by a fast path
  that yields exactly what `ingest.parse_records` yields (tests compare them on generated
  events); anything unusual is decoded again exactly and goes through `parse_records`.
* SQLite: one kept writer connection behind a lock; a batch is one INSERT … SELECT FROM
  json_each(?) plus the counts (the import record, the store's event count), one
  transaction. PostgreSQL: one INSERT … unnest(…) and the same counts.
* At most INGEST_CONCURRENCY requests are worked on at once; `ApiFirstMiddleware` routes
  /api/v1 past Streamlit's middleware; `NoDelayMiddleware` fixes 40 ms delayed-ACK stalls.
No request does work proportional to the store size, except usage queries, which read the
incrementally refreshed columnar frame (new rows only, via store.store_version).
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Engine
from anyio import CapacityLimiter, to_thread
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, Router

from metering import apikeys, ingest, store
from metering.aggregation import aggregate
from metering.frame import shared_frames
from metering.metrics import get_metric, list_metrics
from metering.models import CODE_RE, EVENT_NAME_RE, MetricPublic

PREFIX = "/api/v1"
MAX_BODY_BYTES = 1 << 20  # 1 MiB
MAX_BATCH = 1_000
INGEST_CONCURRENCY = 2
# The served app's GIL switch interval (Python's default is 5 ms). An SQLite write hands the
# GIL back and forth about five times (BEGIN, INSERT, UPDATE, COMMIT); each time, while another
# request validates in Python, taking it back can wait a whole interval: +20 ms per batch
# (measured: a 1,000-event write took ~37 ms next to a validating thread at 5 ms, ~24 ms at
# 0.5 ms). 1 ms also keeps the pages' script threads responsive while the API is busy.
SWITCH_INTERVAL_S = 0.001
API_VERSION = "1.0.0"
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An answer other than success: status, a short code and a sentence for a person."""

    def __init__(self, status: int, error: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "detail": self.detail, **self.extra}, self.status, headers=self.headers)


# --------------------------------------------------------------------------- validation fast path

_ISO_FAST = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|([+-])(\d{2}):(\d{2}))?)?"
)
_EPOCH_FAST = re.compile(r"-?\d{1,12}(?:\.\d{1,6})?")
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
# msgspec decodes a body ~3x faster than json.loads (decoders below, with the event struct)
# and encodes canonical properties ~10x faster than json.dumps. Floats come back as marked
# literal text (like ingest.loads_exact); integers as ints, whose text is their literal,
# except "-0": bodies that may hold one take the exact path.
_ENCODER = msgspec.json.Encoder(order="sorted")
_OPEN_QUOTED = ('"' + ingest._OPEN).encode()
_CLOSE_QUOTED = (ingest._CLOSE + '"').encode()
_MINUS_ZERO = re.compile(rb"-0(?![0-9.eE])")  # starts with a literal: re scans for it quickly
_FIELDS = frozenset(ingest.EVENT_FIELDS)
_NAME_FULLMATCH = EVENT_NAME_RE.fullmatch
# Escapes that yield text no database takes: NUL, and UTF-16 surrogates (fine in pairs, which
# json.loads joins; a lone one cannot be encoded as UTF-8). Only bodies holding one are searched.
_RISKY_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def _may_hold_minus_zero(body: bytes) -> bool:
    """True when the body may hold the JSON number -0 (after ':', '[' or ','), which msgspec
    would read as 0. "-0" inside text (dates, identifiers) mostly follows something else."""
    for match in _MINUS_ZERO.finditer(body):
        i = match.start() - 1
        while i >= 0 and body[i] in b" \t\r\n":
            i -= 1
        if i < 0 or body[i] in b":[,":
            return True
    return False


def _fast_timestamp(stamp: Any) -> int | None:
    """Epoch microseconds for the common timestamp forms, else None (the slow path decides)."""
    kind = type(stamp)
    if kind is int:  # epoch seconds as an integer (msgspec decoding)
        return stamp * 1_000_000 if -ingest.MAX_EPOCH_S < stamp < ingest.MAX_EPOCH_S else None
    if kind is not str:
        return None
    n = len(stamp)
    # The usual shapes: 2026-10-03, 2026-10-03T12:00:00, …Z, …+02:00; parsed by the C parser.
    if n in (10, 19, 20, 25) and stamp[4] == "-" and stamp[7] == "-" and (
        n == 10 or (stamp[10] == "T" and stamp[13] == ":" and stamp[16] == ":"
                    and (n == 19 or (n == 20 and stamp[19] == "Z") or (n == 25 and stamp[19] in "+-" and stamp[22] == ":")))
    ):
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        if not 1900 <= moment.year <= 2200:  # pandas' nanosecond range ends in 2262; keep well inside it
            return None
        return (moment - (_EPOCH if moment.tzinfo is None else _EPOCH_UTC)) // _MICROSECOND
    if ingest.is_number(stamp):
        literal = ingest.number_text(stamp)
        if not _EPOCH_FAST.fullmatch(literal):
            return None
        seconds = Decimal(literal)
        if not -ingest.MAX_EPOCH_S < seconds < ingest.MAX_EPOCH_S:
            return None
        return int((seconds * 1_000_000).to_integral_value(rounding=ROUND_FLOOR))
    m = _ISO_FAST.fullmatch(stamp)
    if m is None:
        return None
    year = int(m[1])
    if not 1900 <= year <= 2200:
        return None
    try:
        moment = datetime(year, int(m[2]), int(m[3]), int(m[4] or 0), int(m[5] or 0), int(m[6] or 0),
                          int((m[7] or "0").ljust(6, "0")))
    except ValueError:
        return None
    offset_minutes = 0
    if m[9]:
        hours, minutes = int(m[10]), int(m[11])
        if hours > 23 or minutes > 59:
            return None
        offset_minutes = (hours * 60 + minutes) * (1 if m[9] == "+" else -1)
    return (moment - _EPOCH) // _MICROSECOND - offset_minutes * 60_000_000


def canonical_json(properties: dict[str, Any]) -> str | None:
    """`ingest.canonical_json` via msgspec's encoder (same bytes, a test checks every character's
    escape), or None when msgspec cannot encode it (integers past its range)."""
    try:
        raw = _ENCODER.encode(properties)
    except (msgspec.EncodeError, OverflowError, ValueError, TypeError):
        return None
    if _OPEN_QUOTED in raw:
        raw = raw.replace(_OPEN_QUOTED, b"").replace(_CLOSE_QUOTED, b"")
    return raw.decode("utf-8")


def _fast_record(obj: Any) -> tuple[str, str, int, str, str] | None:
    """(name, customer, ts_us, key or "", canonical properties) for an ordinary valid event,
    else None. Only forms whose outcome is certain are taken; everything else is left to
    `ingest.parse_records` (which also writes the reasons for rejections). Text that starts
    and ends with a visible ASCII character needs no trimming and is no marked number."""
    if type(obj) is not dict or not obj.keys() <= _FIELDS:
        return None
    name = obj.get("event_name")
    customer = obj.get("customer_id")
    if type(name) is not str or type(customer) is not str or not _NAME_FULLMATCH(name):
        return None
    if not (0 < len(customer) <= 255 and "!" <= customer[0] <= "~" and "!" <= customer[-1] <= "~"):
        return None
    key = obj.get("idempotency_key")
    if key is None:
        key = ""
    elif type(key) is not str or (key and not (len(key) <= 255 and "!" <= key[0] <= "~" and "!" <= key[-1] <= "~")):
        return None
    props = obj.get("properties")
    if props is None:
        canonical = "{}"
    elif type(props) is dict:
        canonical = canonical_json(props)  # type: ignore[assignment]
        if canonical is None:
            return None
    else:
        return None
    ts = _fast_timestamp(obj.get("timestamp"))
    if ts is None:
        return None
    return name, customer, ts, key, canonical


def content_keys(names: Sequence[str], customers: Sequence[str], ts_us: Sequence[int], properties: Sequence[str]) -> list[str]:
    """`ingest.content_keys` for plain lists: the same SipHash of the same joined text."""
    if not names:
        return []
    joined = np.array([f"{n}\x1f{c}\x1f{p}" for n, c, p in zip(names, customers, properties)], dtype=object)
    digests = pd.util.hash_array(joined, categorize=False).tolist()
    offset = ingest._TS_OFFSET
    return [f"h:{t + offset:016x}{d:016x}" for t, d in zip(ts_us, digests)]


def _bad_text(value: Any) -> str | None:
    """Why a decoded JSON value holds text no store accepts (NUL, lone surrogate), else None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "contains a NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "contains an unpaired UTF-16 surrogate (\\ud800–\\udfff)"
    return None


def _with_keys(records: list[tuple[int, tuple[str, str, int, str, str]]]) -> list[tuple[int, store.EventRow]]:
    """Fill in the content-hash key of records that came without an idempotency key."""
    missing = [r for _, r in records if not r[3]]
    keys = iter(content_keys([r[0] for r in missing], [r[1] for r in missing], [r[2] for r in missing], [r[4] for r in missing]))
    return [(i, (name, customer, ts, key or next(keys), props)) for i, (name, customer, ts, key, props) in records]


_NULL_RAW = msgspec.Raw(b"null")


class _Event(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An event as the fast decoder reads it. Not tracked by the garbage collector (it cannot
    be part of a cycle): 1,000 of them per batch would otherwise trigger collections that
    scan the whole process (Streamlit's objects too), ~25% of a batch's CPU time."""

    event_name: str
    customer_id: str
    timestamp: Any
    idempotency_key: str | None = None
    properties: msgspec.Raw = _NULL_RAW  # canonicalised one event at a time


class _Batch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    events: list[_Event]


_BATCH_DECODER = msgspec.json.Decoder(_Batch, float_hook=ingest._mark)
_EVENT_DECODER = msgspec.json.Decoder(_Event, float_hook=ingest._mark)
_PROPERTIES_DECODER = msgspec.json.Decoder(dict[str, Any], float_hook=ingest._mark)


def fast_rows(body: bytes) -> tuple[list[store.EventRow], bool] | None:
    """(rows, single) for a body of ordinary valid events (msgspec, typed), else None: then
    the exact path decodes it again and explains every problem. Raises ApiError for a batch
    over MAX_BATCH, as the exact path would."""
    if _may_hold_minus_zero(body):
        return None
    try:
        events = _BATCH_DECODER.decode(body).events
        single = False
    except Exception:  # noqa: BLE001 - not a batch of ordinary events
        try:
            events = [_EVENT_DECODER.decode(body)]
            single = True
        except Exception:  # noqa: BLE001 - nor one ordinary event
            return None
    if len(events) > MAX_BATCH:
        raise ApiError(422, "too_many_events", f"a batch holds at most {MAX_BATCH:,} events; this one has {len(events):,}: split it")
    rows: list[Any] = []
    missing: list[int] = []
    decode_properties = _PROPERTIES_DECODER.decode
    seen_stamps: dict[str, int] = {}  # events of a batch often share their time
    for ev in events:
        name, customer, key = ev.event_name, ev.customer_id, ev.idempotency_key
        if not _NAME_FULLMATCH(name) or not (0 < len(customer) <= 255 and "!" <= customer[0] <= "~" and "!" <= customer[-1] <= "~"):
            return None
        if key is None or key == "":
            key = ""
            missing.append(len(rows))
        elif not (len(key) <= 255 and "!" <= key[0] <= "~" and "!" <= key[-1] <= "~"):
            return None
        raw = ev.properties
        if raw == _NULL_RAW:
            canonical: str | None = "{}"
        else:
            try:
                canonical = canonical_json(decode_properties(raw))
            except Exception:  # noqa: BLE001 - not an object, or numbers msgspec cannot hold
                return None
            if canonical is None:
                return None
        stamp = ev.timestamp
        ts = seen_stamps.get(stamp) if type(stamp) is str else None
        if ts is None:
            ts = _fast_timestamp(stamp)
            if ts is None:
                return None
            if type(stamp) is str:
                seen_stamps[stamp] = ts
        rows.append((name, customer, ts, key, canonical))
    if missing:
        keys = content_keys([rows[i][0] for i in missing], [rows[i][1] for i in missing],
                            [rows[i][2] for i in missing], [rows[i][4] for i in missing])
        for i, computed in zip(missing, keys):
            name, customer, ts, _, props = rows[i]
            rows[i] = (name, customer, ts, computed, props)
    return rows, single


def validate_events(events: Sequence[Any], *, risky: bool = True) -> tuple[list[tuple[int, store.EventRow]], list[dict[str, Any]]]:
    """Validate decoded events (from `ingest.loads_exact`). Returns the good ones as (index, row)
    in input order, and one error `{"index", "field", "reason"}` per rejected event."""
    good: dict[int, store.EventRow] = {}
    errors: list[dict[str, Any]] = []
    fast: list[tuple[int, tuple[str, str, int, str, str]]] = []
    slow: list[tuple[int, Any]] = []
    for index, obj in enumerate(events):
        if risky and (reason := _bad_text(obj)) is not None:
            field = next((k for k, v in obj.items() if _bad_text(v) or _bad_text(k)), "event") if isinstance(obj, dict) else "event"
            errors.append({"index": index, "field": field, "reason": reason})
            continue
        record = _fast_record(obj)
        if record is None:
            slow.append((index, obj))
        else:
            fast.append((index, record))
    good.update(_with_keys(fast))
    if slow:
        for index, row, error in _slow_validate(slow):
            if error is not None:
                errors.append({"index": index, "field": error[0], "reason": error[1]})
            else:
                good[index] = row  # type: ignore[assignment]
    errors.sort(key=lambda e: e["index"])
    return sorted(good.items()), errors


def _slow_validate(records: list[tuple[int, Any]]) -> list[tuple[int, store.EventRow | None, tuple[str, str] | None]]:
    try:
        parsed = ingest.parse_records(records)
    except Exception:  # noqa: BLE001 - an input the parser did not foresee: look at each alone
        if len(records) == 1:
            return [(records[0][0], None, ("event", "this event could not be read"))]
        out = []
        for record in records:
            out.extend(_slow_validate([record]))
        return out
    out: list[tuple[int, store.EventRow | None, tuple[str, str] | None]] = []
    for line, row in zip(parsed.lines, parsed.rows()):
        out.append((int(line), row, None))
    for err in parsed.errors:
        out.append((int(err.line), None, (err.field, err.reason)))
    return out


# --------------------------------------------------------------------------- backend


def _log(message: str) -> None:
    print(f"metering.api: {message}", file=sys.stderr, flush=True)


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
                        _log(f"created the workspace API key (shown once; rotate it on the Developers page): {created}")
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


def _exact_decode(body: bytes) -> Any:
    """The body decoded with number literals kept exactly (raises ApiError 422)."""
    try:
        text_ = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(422, "invalid_json", f"the body is not UTF-8 text (byte {exc.start})") from None
    if not text_.strip():
        raise ApiError(422, "invalid_json", 'the body is empty: send one event object or {"events": [...]}')
    try:
        return ingest.loads_exact(text_)
    except ValueError as exc:  # json.JSONDecodeError and NaN/Infinity
        raise ApiError(422, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(422, "invalid_json", "the body nests arrays or objects too deeply") from None


def _events_of(data: Any) -> tuple[list[Any], bool]:
    """The events of a decoded body and whether it was a single event (raises ApiError 422)."""
    if isinstance(data, dict) and "events" in data:
        extra = sorted(k for k in data if k != "events")
        if extra:
            raise ApiError(422, "invalid_shape", f"unknown field '{extra[0][:40]}' next to events: a batch is {{\"events\": [...]}} only")
        events = data["events"]
        if not isinstance(events, list):
            raise ApiError(422, "invalid_shape", "events must be an array of event objects")
        if len(events) > MAX_BATCH:
            raise ApiError(422, "too_many_events", f"a batch holds at most {MAX_BATCH:,} events; this one has {len(events):,}: split it")
        return events, False
    if isinstance(data, dict):
        return [data], True
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(data), "a number")
    if isinstance(data, str) and ingest.is_number(data):
        kind = "a number"
    raise ApiError(422, "invalid_shape", f'expected a JSON object (one event, or {{"events": [...]}} for a batch), got {kind}')


# --------------------------------------------------------------------------- query parameters


def parse_time_param(name: str, raw: str) -> int:
    """A `from`/`to` value (ISO 8601, no offset = UTC, or epoch seconds) → epoch microseconds."""
    value = raw.strip()
    # An unencoded '+' in a query string arrives as a space: "…T14:00:00 02:00".
    value = re.sub(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$", r"\1+\2", value)
    if not value:
        raise ApiError(422, "invalid_parameter", f"{name} is empty: give an ISO 8601 time or Unix epoch seconds")
    if re.fullmatch(r"-?\d{1,12}(?:\.\d{1,6})?", value):
        stamp: Any = ingest._mark(value)  # epoch seconds, read as the number they are
    else:
        stamp = value
    fast = _fast_timestamp(stamp)
    if fast is not None:
        return fast
    try:
        values, reasons = ingest.parse_timestamps([value])
        ok = not (reasons.get(0) if isinstance(reasons, dict) else reasons[0])
    except Exception:  # noqa: BLE001 - text the parser cannot take at all
        ok = False
    if not ok:
        raise ApiError(422, "invalid_parameter", f"{name}: '{raw[:60]}' is not an ISO 8601 time (2026-10-03T12:00:00Z) or Unix epoch seconds")
    return int(values[0])


def _iso(us: int | None) -> str | None:
    if us is None:
        return None
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + pd.Timedelta(microseconds=us).to_pytimedelta()
    return moment.isoformat().replace("+00:00", "Z")


def _metric_or_none(engine: Engine, code: str) -> MetricPublic | None:
    """The metric with this code; a text that cannot be a code (NUL, any length) is not looked up."""
    return get_metric(engine, code=code) if CODE_RE.fullmatch(code) else None


def _metric_json(metric: MetricPublic) -> dict[str, Any]:
    data = metric.model_dump(mode="json", exclude={"id"})
    for name in ("created_at", "updated_at"):
        value = getattr(metric, name)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            data[name] = value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return data


# --------------------------------------------------------------------------- routes

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


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if declared > MAX_BODY_BYTES:
            raise _too_large(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(None)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int | None) -> ApiError:
    got = f" (this one has {size:,} bytes)" if size is not None else ""
    return ApiError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES:,} bytes{got}: send at most {MAX_BATCH:,} events per request and split larger batches")


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def api_routes(engine: Engine | None = None) -> list[BaseRoute]:
    """The API's routes. Without an engine they use the process's default backend (created on
    first use, for DATABASE_URL); with one (tests), a backend of their own over it."""
    own = Backend(engine) if engine is not None else None

    def backend() -> Backend:
        return own if own is not None else default_backend()

    async def ready() -> Backend:
        b = backend()
        if not b.ready:
            await run_in_threadpool(b.start)
        return b

    async def authorize(request: Request) -> Backend:
        b = await ready()
        key = _presented_key(request)
        if key is None:
            ok = False
        elif apikeys.needs_lookup(b.engine):
            ok = await run_in_threadpool(apikeys.verify, b.engine, key)
        else:
            ok = apikeys.verify(b.engine, key)
        if not ok:
            reason = "missing API key: send Authorization: Bearer <key>" if key is None else "invalid API key"
            raise ApiError(401, "unauthorized", reason, headers={"WWW-Authenticate": 'Bearer realm="metering"'})
        return b

    async def post_events(request: Request) -> Response:
        b = await authorize(request)
        body = await _read_body(request)
        status, payload = await to_thread.run_sync(b.ingest, body, limiter=b.ingest_limiter())
        return JSONResponse(payload, status)

    async def get_metrics(request: Request) -> Response:
        b = await authorize(request)
        metrics = await run_in_threadpool(list_metrics, b.engine)
        return JSONResponse({"metrics": [_metric_json(m) for m in metrics]})

    async def get_metric_by_code(request: Request) -> Response:
        b = await authorize(request)
        code = request.path_params["code"]
        metric = await run_in_threadpool(_metric_or_none, b.engine, code)
        if metric is None:
            raise ApiError(404, "not_found", f"no metric with code '{code[:80]}'")
        return JSONResponse(_metric_json(metric))

    async def get_usage(request: Request) -> Response:
        b = await authorize(request)
        params = request.query_params
        code = params.get("metric", "").strip()
        problems = []
        if not code:
            problems.append("metric is required (a metric code, see GET /api/v1/metrics)")
        times: dict[str, int | None] = {"from": None, "to": None}
        for name in ("from", "to"):
            raw = params.get(name)
            if raw is not None:
                try:
                    times[name] = parse_time_param(name, raw)
                except ApiError as exc:
                    problems.append(exc.detail)
        if times["from"] is not None and times["to"] is not None and times["from"] >= times["to"]:
            problems.append("from must be before to (the window is [from, to))")
        customers = [c.strip() for c in params.getlist("customer_id") if c.strip()] or None
        if problems:
            raise ApiError(422, "invalid_parameter", "; ".join(problems))
        metric = await run_in_threadpool(_metric_or_none, b.engine, code)
        if metric is None:
            raise ApiError(404, "not_found", f"no metric with code '{code[:80]}'")
        result = await run_in_threadpool(b.usage, metric, times["from"], times["to"], customers)
        result["from"], result["to"] = _iso(times["from"]), _iso(times["to"])
        result["customer_id"] = customers
        return JSONResponse(result)

    async def get_health(request: Request) -> Response:
        try:
            b = await ready()
            await run_in_threadpool(b.health)
        except Exception as exc:  # noqa: BLE001 - report, never crash
            return JSONResponse({"status": "unavailable", "detail": f"the store cannot be reached: {type(exc).__name__}"}, 503)
        return JSONResponse({"status": "ok", "version": API_VERSION})

    async def get_openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    def route(path: str, handlers: dict[str, Callable[[Request], Any]]) -> Route:
        allowed = sorted(set(handlers) | ({"HEAD"} if "GET" in handlers else set()))

        async def endpoint(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            handler = handlers.get(method)
            try:
                if handler is None:
                    raise ApiError(405, "method_not_allowed", f"{request.method} is not allowed here; use {', '.join(allowed)}",
                                   headers={"Allow": ", ".join(allowed)})
                return await handler(request)
            except ApiError as exc:
                return exc.response()
            except Exception as exc:  # noqa: BLE001 - a bug: answer JSON, log the cause
                _log(f"{request.method} {request.url.path} failed: {type(exc).__name__}: {exc}")
                return JSONResponse({"error": "internal_error", "detail": "the server failed to answer this request"}, 500)

        return Route(path, endpoint, methods=_METHODS, name=f"api:{path}")

    async def not_found(request: Request) -> Response:
        return ApiError(404, "not_found", f"no API endpoint at {request.url.path[:120]}; see {PREFIX}/openapi.json").response()

    return [
        route(f"{PREFIX}/events", {"POST": post_events}),
        route(f"{PREFIX}/metrics", {"GET": get_metrics}),
        route(f"{PREFIX}/metrics/{{code}}", {"GET": get_metric_by_code}),
        route(f"{PREFIX}/usage", {"GET": get_usage}),
        route(f"{PREFIX}/health", {"GET": get_health}),
        route(f"{PREFIX}/openapi.json", {"GET": get_openapi}),
        Route(PREFIX, not_found, methods=_METHODS),
        Route(f"{PREFIX}/{{rest:path}}", not_found, methods=_METHODS),
    ]


class NoDelayMiddleware:
    """Turn off Nagle's algorithm on each connection (ASGI middleware, for `st.App(middleware=)`).

    Streamlit 1.67 binds its listening socket with `socket.socket(family)` (protocol 0), so
    asyncio's usual TCP_NODELAY (only set when the protocol is IPPROTO_TCP) is never applied.
    uvicorn writes a response's head and body separately; on a kept-alive connection the body
    then waits for the client's delayed ACK: ~40 ms per request, 25 requests/s per client.
    The connection's transport is reachable from uvicorn's `receive` (a bound method of its
    request cycle); anything unexpected leaves the connection as it is.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            try:
                transport = getattr(getattr(receive, "__self__", None), "transport", None)
                sock = transport.get_extra_info("socket") if transport is not None else None
                if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
        await self.app(scope, receive, send)


class ApiFirstMiddleware:
    """Send /api/v1 requests straight to the API's routes (ASGI middleware, outermost).

    Registered with `st.App(routes=...)` the routes would work too, but every request would
    first pass Streamlit's own middleware (path security for its static files, its session
    cookie, gzip) and router: about a third of a small request's time, for nothing the API
    uses. Everything else goes on to Streamlit unchanged."""

    def __init__(self, app: Any, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.api = Router(routes=list(routes))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            if path == PREFIX or path.startswith(PREFIX + "/"):
                await self.api(scope, receive, send)
                return
        await self.app(scope, receive, send)


def middleware(routes: Sequence[BaseRoute] | None = None) -> list[Middleware]:
    """Middleware for `st.App`: TCP_NODELAY on every connection and, given the API's routes,
    the short way to them for /api/v1 requests."""
    stack = [Middleware(NoDelayMiddleware)]
    if routes is not None:
        stack.append(Middleware(ApiFirstMiddleware, routes=routes))
    return stack


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    """Start-up for `st.App(..., lifespan=lifespan)`: open the store, create the key if needed,
    and shorten the interpreter's thread switch interval (see SWITCH_INTERVAL_S)."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        await run_in_threadpool(default_backend().start)
    except Exception as exc:  # noqa: BLE001 - the UI still starts; /api/v1/health reports it
        _log(f"could not open the store: {type(exc).__name__}: {exc}")
    yield


# --------------------------------------------------------------------------- OpenAPI


def _error_response(description: str, example: tuple[str, str] | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Error"}}
    if example:
        content["example"] = {"error": example[0], "detail": example[1]}
    return {"description": description, "content": {"application/json": content}}


_WS_CHARS = r"\s\x1c-\x1f\x85"
_WS = f"[{_WS_CHARS}]"


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every endpoint, as the code above answers them."""
    nullable_str = {"type": ["string", "null"]}
    event = {
        "type": "object",
        "description": "A usage event (contract §1). Unknown fields are rejected: custom values go under properties.",
        "required": ["event_name", "customer_id", "timestamp"],
        "additionalProperties": False,
        "properties": {
            # Text fields are trimmed of white space first; the patterns say so (1–100 / 1–255 / 0–255
            # characters after trimming, where white space is Python's \s plus \x1c-\x1f and \x85).
            "event_name": {"type": "string", "pattern": rf"^{_WS}*[A-Za-z0-9_.:\-]{{1,100}}{_WS}*$", "example": "llm.tokens"},
            "customer_id": {"type": "string", "pattern": rf"^{_WS}*[^{_WS_CHARS}](?:[\s\S]{{0,253}}[^{_WS_CHARS}])?{_WS}*$", "example": "cus_001"},
            "timestamp": {
                "description": "ISO 8601 (no offset = UTC; a bare date is midnight UTC) or Unix epoch seconds.",
                "oneOf": [{"type": "string", "example": "2026-10-03T12:00:00Z"}, {"type": "number", "example": 1791028800}],
            },
            "idempotency_key": {"type": ["string", "null"], "pattern": rf"^{_WS}*(?:[^{_WS_CHARS}](?:[\s\S]{{0,253}}[^{_WS_CHARS}])?)?{_WS}*$",
                                "description": "At most 255 characters, unique per workspace; without it the key is a hash of the event's content."},
            "properties": {"type": ["object", "null"], "additionalProperties": True, "example": {"tokens": 1250, "model": "gpt-4o"},
                           "description": "JSON object, nested allowed; null or absent = {}"},
        },
    }
    auth_error = _error_response("No API key, or not the workspace's key", ("unauthorized", "invalid API key"))
    bad_params = _error_response("Parameters that cannot be used", ("invalid_parameter", "metric is required"))
    not_found = _error_response("No such metric", ("not_found", "no metric with code 'x'"))
    metric = {
        "type": "object",
        "required": ["code", "name", "unit", "metric_type", "event_name", "aggregation", "filters", "group_by", "created_at", "updated_at"],
        "properties": {
            "code": {"type": "string"},
            "name": {"type": "string"},
            "description": nullable_str,
            "unit": {"type": "string"},
            "metric_type": {"type": "string", "enum": ["limit_metered", "limit_recurring", "charge_metered", "charge_recurring"]},
            "event_name": {"type": "string"},
            "aggregation": {"type": "string", "enum": ["count", "sum", "max", "min", "unique_count", "latest"]},
            "value_property": nullable_str,
            "distinct_by": nullable_str,
            "filters": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            "group_by": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pricing workbench API",
            "version": API_VERSION,
            "description": (
                "Send usage events and read metrics and usage. Every endpoint except health and this document "
                "needs the workspace API key: `Authorization: Bearer <key>` (Developers page). Errors are JSON "
                '`{"error": <code>, "detail": <sentence>}`.'
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The workspace API key (mtr_…)"}},
            "schemas": {
                "Event": event,
                "EventBatch": {
                    "type": "object",
                    "required": ["events"],
                    "additionalProperties": False,
                    "properties": {"events": {"type": "array", "maxItems": MAX_BATCH, "items": {}}},
                    "description": f"Up to {MAX_BATCH:,} events, stored in one transaction. Each item is checked like an Event; "
                                   "bad items are reported in errors and the others are stored.",
                },
                "IngestResult": {
                    "type": "object",
                    "required": ["accepted", "duplicates", "rejected", "errors"],
                    "additionalProperties": False,
                    "properties": {
                        "accepted": {"type": "integer", "minimum": 0, "description": "events stored now"},
                        "duplicates": {"type": "integer", "minimum": 0, "description": "events whose key was already stored (skipped)"},
                        "rejected": {"type": "integer", "minimum": 0, "description": "events that break a rule (see errors)"},
                        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/EventError"}},
                    },
                },
                "EventError": {
                    "type": "object",
                    "required": ["index", "field", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "index": {"type": "integer", "minimum": 0, "description": "position in events (0 for a single event)"},
                        "field": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {
                        "error": {"type": "string", "description": "a short code: unauthorized, not_found, method_not_allowed, "
                                  "body_too_large, invalid_json, invalid_shape, too_many_events, invalid_event, invalid_parameter"},
                        "detail": {"type": "string", "description": "what was wrong, for a person"},
                        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/EventError"},
                                   "description": "for invalid_event: the event's problems"},
                    },
                },
                "Metric": metric,
                "Usage": {
                    "type": "object",
                    "required": ["metric", "value", "events", "skipped", "groups", "from", "to", "customer_id"],
                    "properties": {
                        "metric": {"type": "string"},
                        "value": {"type": "string", "description": "exact decimal, as a string", "example": "52.5"},
                        "events": {"type": "integer", "minimum": 0, "description": "matching events, skipped ones included"},
                        "skipped": {"type": "integer", "minimum": 0, "description": "events left out of the value (missing or not numeric)"},
                        "groups": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["group", "value"],
                                "properties": {
                                    "group": {"type": "object", "additionalProperties": nullable_str},
                                    "value": {"type": "string"},
                                },
                            },
                        },
                        "from": {"type": ["string", "null"], "description": "the window's start (UTC), null = from the first event"},
                        "to": {"type": ["string", "null"], "description": "the window's end, excluded (UTC), null = no end"},
                        "customer_id": {"type": ["array", "null"], "items": {"type": "string"}},
                    },
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            f"{PREFIX}/events": {
                "post": {
                    "operationId": "sendEvents",
                    "summary": f"Send one event, or a batch of up to {MAX_BATCH:,}",
                    "description": f"Body limit {MAX_BODY_BYTES:,} bytes. Idempotent: a repeated key counts as a duplicate.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"oneOf": [
                            {"$ref": "#/components/schemas/Event"}, {"$ref": "#/components/schemas/EventBatch"},
                        ]}}},
                    },
                    "responses": {
                        "200": {"description": "Stored (counts and the rejected events of a batch)",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResult"}}}},
                        "400": _error_response("A Content-Length header that is not a number", ("bad_request", "Content-Length is not a number")),
                        "401": auth_error,
                        "413": _error_response(f"Body over {MAX_BODY_BYTES:,} bytes", ("body_too_large", "the body is over 1,048,576 bytes")),
                        "422": _error_response("Not JSON, not an event or a batch, more than 1,000 events, or a single event that breaks a rule",
                                               ("invalid_event", "timestamp: timestamp is required")),
                    },
                }
            },
            f"{PREFIX}/metrics": {
                "get": {
                    "operationId": "listMetrics",
                    "summary": "Every billable metric",
                    "responses": {
                        "200": {"description": "The metrics, by name",
                                "content": {"application/json": {"schema": {
                                    "type": "object", "required": ["metrics"],
                                    "properties": {"metrics": {"type": "array", "items": {"$ref": "#/components/schemas/Metric"}}},
                                }}}},
                        "401": auth_error,
                    },
                }
            },
            f"{PREFIX}/metrics/{{code}}": {
                "get": {
                    "operationId": "getMetric",
                    "summary": "One billable metric",
                    "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "The metric", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Metric"}}}},
                        "401": auth_error,
                        "404": not_found,
                    },
                }
            },
            f"{PREFIX}/usage": {
                "get": {
                    "operationId": "getUsage",
                    "summary": "A metric's aggregate over [from, to), with its groups",
                    "parameters": [
                        {"name": "metric", "in": "query", "required": True, "schema": {"type": "string"}, "description": "metric code"},
                        {"name": "customer_id", "in": "query", "required": False, "style": "form", "explode": True,
                         "schema": {"type": "array", "items": {"type": "string"}}, "description": "repeat for several customers; none = all"},
                        {"name": "from", "in": "query", "required": False, "schema": {"type": "string"},
                         "description": "ISO 8601 (no offset = UTC) or epoch seconds; included"},
                        {"name": "to", "in": "query", "required": False, "schema": {"type": "string"},
                         "description": "ISO 8601 (no offset = UTC) or epoch seconds; excluded"},
                    ],
                    "responses": {
                        "200": {"description": "The usage", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Usage"}}}},
                        "401": auth_error,
                        "404": not_found,
                        "422": bad_params,
                    },
                }
            },
            f"{PREFIX}/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness and store check (no key needed)",
                    "security": [],
                    "responses": {
                        "200": {"description": "Up", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["status"],
                            "properties": {"status": {"const": "ok"}, "version": {"type": "string"}}}}}},
                        "503": {"description": "The store cannot be reached", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["status", "detail"],
                            "properties": {"status": {"const": "unavailable"}, "detail": {"type": "string"}}}}}},
                    },
                }
            },
            f"{PREFIX}/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document (no key needed)",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
        },
    }
