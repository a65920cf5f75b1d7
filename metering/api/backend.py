"""What the routes share in one process: the store, the frame cache, the write path."""

from __future__ import annotations


import contextlib
import os
import threading
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from anyio import CapacityLimiter

from metering import apikeys, store
from metering.aggregation import aggregate
from metering.engine import events_problem, read_only_reason, stored_events, uses_clickhouse
from metering.frame import shared_frames
from metering.models import MetricPublic
from metering.quotas.ledger import Gate, ledger_for
from metering.api.limits import (
    INGEST_CONCURRENCY,
)
from metering.api.errors import ApiError, _log
from metering.api.intake import (
    _RISKY_ESCAPE,
    _events_of,
    _exact_decode,
    cloudevent_rows,
    fast_rows,
    refuse_future,
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

    def ingest(self, body: bytes, cloudevents: str | None = None) -> tuple[int, dict[str, Any]]:
        """Store a body of events; `cloudevents` ("single" / "batch") when it is CloudEvents JSON."""
        self._events_ready()
        refused = read_only_reason(self.engine)
        if refused:  # events are read from OpenMeter's table: they are sent there, not here
            raise ApiError(409, "read_only", refused)
        rows: list[store.EventRow] | None = None
        indexes: list[int] | None = None  # None: rows are the request's events 0, 1, …
        errors: list[dict[str, Any]] = []
        if cloudevents is not None:  # mapped to events, then validated like them
            received = datetime.now(timezone.utc).isoformat()
            rows, errors, single = cloudevent_rows(body, batch=cloudevents == "batch", received=received)
            risky = False
            if errors:  # each CloudEvent is a row or one error: the rows' places in the request
                bad = {e["index"] for e in errors}
                indexes = [i for i in range(len(rows) + len(bad)) if i not in bad]
        else:
            risky = b"\\u" in body and _RISKY_ESCAPE.search(body) is not None
        if rows is None and not risky:
            fast = fast_rows(body)
            if fast is not None:
                rows, single = fast
        if rows is None:  # anything unusual: the exact decoder, and parse_records for odd events
            events, single = _events_of(_exact_decode(body))
            good, errors = validate_events(events, risky=risky)
            rows = [row for _, row in good]
            indexes = [i for i, _ in good]
        positions = indexes if indexes is not None else list(range(len(rows)))
        rows, errors = refuse_future(rows, indexes, errors)
        # Hard limits (contract §8): checked and inserted under the store's quota lock, so
        # parallel requests cannot together pass a limit; a no-op when no quota is subscribed.
        with ledger_for(self.engine).admission() as gate:
            rows, errors = self._screen(gate, rows, positions, errors)
            added = self._store(rows, rejected=len(errors)) if (rows or errors) else 0
            gate.stored(rows, added)
        result = {"accepted": added, "duplicates": len(rows) - added, "rejected": len(errors), "errors": errors}
        if single and errors:
            first = errors[0]
            if first["field"] == "quota":
                raise ApiError(422, "quota_exceeded", first["reason"], **result)
            raise ApiError(422, "invalid_event", f"{first['field']}: {first['reason']}", errors=errors)
        return 200, result

    @staticmethod
    def _screen(gate: Gate, rows: list[store.EventRow], positions: list[int],
                errors: list[dict[str, Any]]) -> tuple[list[store.EventRow], list[dict[str, Any]]]:
        """The rows a hard limit lets through; the refused ones join `errors` (field "quota")
        at their index in the request."""
        if not gate.active or not rows:
            return rows, errors
        taken = {e["index"] for e in errors}
        kept_positions = [p for p in positions if p not in taken]  # refuse_future kept these
        kept, refused = gate.screen(rows)
        if not refused:
            return rows, errors
        errors = errors + [{"index": kept_positions[i], "field": "quota", "reason": reason} for i, reason in refused]
        return kept, sorted(errors, key=lambda e: e["index"])

    def _import_id(self, *, fresh: bool = False) -> int:
        day = int(time.time() // 86_400)
        with self._import_lock:
            if fresh or self._import is None or self._import[0] != day:
                label = datetime.fromtimestamp(day * 86_400, timezone.utc).strftime("%Y-%m-%d")
                self._import = (day, store.new_import(self.engine, f"API {label}", finished=True))
            return self._import[1]

    def _store(self, rows: list[store.EventRow], *, rejected: int) -> int:
        """Insert the rows and count them on the day's import record, in one transaction."""
        engine = self.engine
        events = store.events(engine)
        for attempt in range(2):
            import_id = self._import_id(fresh=attempt > 0)
            try:
                return events.insert_rows(rows, import_id=import_id, rejected=rejected).added
            except engine.dialect.dbapi.IntegrityError:  # type: ignore[union-attr]
                # The day's import record was deleted (Events page, "delete all"): file the
                # events under a new one, once. Any other integrity error is a real failure.
                if attempt or self._import_exists(import_id):
                    raise
        raise AssertionError("unreachable")

    def _import_exists(self, import_id: int) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT 1 FROM import_batch WHERE id = :i"), {"i": import_id}).first() is not None

    # ---- reads

    def usage(self, metric: MetricPublic, start: int | None, end: int | None, customers: list[str] | None) -> dict[str, Any]:
        engine = self.engine
        self._events_ready()
        # The embedded frame is extended in place, one request at a time; ClickHouse answers
        # concurrent requests itself.
        with self.frame_lock if not uses_clickhouse() else contextlib.nullcontext():
            frame = stored_events(engine)  # the frame cache's view, or ClickHouse when configured
            result = aggregate(frame, metric, start=start, end=end, customer_ids=customers)
        return result.to_json()

    def _events_ready(self) -> None:
        """A 503 saying what is wrong when the events engine cannot be used (METERING_EVENTS_URL)."""
        problem = events_problem()
        if problem:
            raise ApiError(503, "events_unavailable", problem)

    def health(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True


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
