"""The store: one engine factory, table creation, and the entry points for stored events.

`DATABASE_URL` picks the database (SQLite file by default, in the project's `data/` folder, WAL
mode; PostgreSQL works as well). Metrics, plans, subscriptions, keys and imports are tables;
events live in the embedded event store (metering.engine.store: columnar segments next to the
database, recent rows in the `event` table), or in ClickHouse when `METERING_EVENTS_URL` names
one (metering.engine.clickhouse). The functions below are the ways in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from metering import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from metering import plan_store  # noqa: F401
from metering import apikeys
from metering import audit  # noqa: F401
from metering.quotas import tables as _quota_tables  # noqa: F401  (alerts, webhook)
from metering.engine import tables
from metering.engine.batch import EventBatch
from metering.engine.registry import store_for
from metering.engine.interface import EventWriter
from metering.engine.store import EventRow, StoreVersion
from metering.models import ImportBatch

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_DIR / "data"

__all__ = ["EventRow", "StoreVersion"]


def data_dir() -> Path:
    path = Path(os.environ.get("METERING_DATA_DIR", DEFAULT_DATA_DIR))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # the mode applies when it is created here
    return path


def private_file(path: str | os.PathLike[str]) -> Path:
    """Make `path` a file only its owner can read and write (0600): created empty if missing,
    tightened if it exists. For every file the app keeps data in (the SQLite database and its
    -wal / -shm files, anything else written under data/)."""
    path = Path(path)
    # Never open a file that exists: closing any descriptor of a file drops every POSIX lock this
    # process holds on it, and SQLite's locks are POSIX locks (an open engine would lose them).
    if not path.exists():
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:  # created meanwhile: tightened below like any other
            pass
    os.chmod(path, 0o600)
    return path


def _private_sqlite(url: str) -> None:
    """Before SQLite opens the file: the database 0600, and so its -wal and -shm files, which
    SQLite creates with the database's permissions (tightened here too when they exist)."""

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.chmod(extra, 0o600)
    # The event engine's columnar files live beside it (`metering.db.events/`): tightened too.
    segments = path.with_name(path.name + ".events")
    if segments.is_dir():
        os.chmod(segments, 0o700)
        for root, dirs, files in os.walk(segments):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o700)
            for name in files:
                os.chmod(os.path.join(root, name), 0o600)


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else DATABASE_URL, else data/metering.db (SQLite)."""
    url = url or os.environ.get("DATABASE_URL") or f"sqlite:///{data_dir() / 'metering.db'}"
    # Plain postgresql:// URLs (what psql and most hosts print) go through psycopg 3.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str | None = None) -> Engine:
    """Create an engine for `url` (see `database_url`) and make sure the tables exist."""
    url = database_url(url)
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        if not in_memory:
            _private_sqlite(url)
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if in_memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)

        @sa_event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            if not in_memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    SQLModel.metadata.create_all(engine)
    tables.migrate(engine)
    apikeys.upgrade_schema(engine)  # stores made before keys had names
    init_state(engine)
    return engine


def init_state(engine: Engine) -> None:
    """Create the store_state row on first start, counting the events that are there once."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO store_state (id, events, generation, next_seq, compactions)"
            " SELECT 1, (SELECT count(*) FROM event), 0, (SELECT coalesce(max(id), 0) + 1 FROM event), 0"
            " WHERE NOT EXISTS (SELECT 1 FROM store_state WHERE id = 1)"
        ))


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def events(engine: Engine) -> EventWriter:
    """Where the store's events are written (metering.engine.event_writer)."""
    from metering.engine import event_writer

    return event_writer(engine)


def block_preparer(engine: Engine) -> Callable[[EventBatch], None] | None:
    """What the events writer does to a parsed block before the block's turn to be stored,
    on the thread that parsed it (ingest.iter_events(prepare=…)): the ClickHouse writer writes
    content keys out as text there, off the thread that stores blocks one after another."""
    return getattr(events(engine), "prepare", None)


def new_import(engine: Engine, source: str, *, finished: bool = False) -> int:
    """A new import record. Its counts grow with each batch it stores (in that batch's
    transaction); `finished` stamps it done now (an API day's record: each request is whole)."""
    with Session(engine) as session:
        batch = ImportBatch(source=source[:500], finished_at=datetime.now(timezone.utc) if finished else None)
        session.add(batch)
        session.commit()
        assert batch.id is not None
        return batch.id


def finish_import(engine: Engine, import_id: int) -> None:
    """Stamp an import done (one without finished_at was interrupted, or is still running)."""
    with Session(engine) as session:
        batch = session.get(ImportBatch, import_id)
        if batch is not None:
            batch.finished_at = datetime.now(timezone.utc)
            session.add(batch)
            session.commit()


def insert_events(engine: Engine, rows: Sequence[EventRow], *, import_id: int | None, batch_size: int = 1_000) -> int:
    """Insert event rows (event_name, customer_id, ts_us, key, properties) the way the events
    API does, `batch_size` rows per transaction, skipping keys already stored. Returns rows added."""
    added = 0
    target = events(engine)
    for start in range(0, len(rows), batch_size):
        added += target.insert_rows(rows[start : start + batch_size], import_id=import_id).added
    return added


def write_batch(engine: Engine, batch: EventBatch, *, import_id: int | None) -> int:
    """Store a batch of events (one transaction, whole or not at all). Returns events added."""
    return events(engine).write_batch(batch, import_id=import_id).added  # type: ignore[attr-defined]


def event_tables(engine: Engine, batch_size: int = 65_536) -> Iterator[pa.Table]:
    """Every stored event as tables (seq, event_name, customer_id, ts_us, idempotency_key,
    properties, import_id), a bounded batch at a time: for exports."""
    from metering.engine import uses_clickhouse

    if uses_clickhouse():
        from metering.engine.clickhouse.export import event_tables as clickhouse_tables

        yield from clickhouse_tables(batch_size)
        return
    from metering.engine.frame import FrameCache

    yield from FrameCache().get(engine).iter_tables(batch_size)


def event_rows(engine: Engine) -> list[tuple[int, str, str, int, str, str]]:
    """Every stored event as (seq, event_name, customer_id, ts_us, idempotency_key,
    properties), in store order: for small stores and tests."""
    rows = []
    for table in event_tables(engine):
        rows.extend(zip(*(table.column(c).to_pylist() for c in
                          ("seq", "event_name", "customer_id", "ts_us", "idempotency_key", "properties"))))
    return sorted(rows)


def event_count(engine: Engine) -> int:
    from metering.engine import stored_events, uses_clickhouse

    if uses_clickhouse():
        return len(stored_events(engine))
    return store_for(engine).version().events


def store_version(engine: Engine) -> StoreVersion:
    return store_for(engine).version()


def delete_import(engine: Engine, import_id: int) -> int:
    """Delete the events one import added (and the import record). Returns events deleted."""
    return events(engine).delete_import(import_id)


def delete_event(engine: Engine, idempotency_key: str) -> bool:
    """Delete the one event with this idempotency key. Returns whether there was one. Its
    import's `accepted` count drops by one in the same transaction."""
    return events(engine).delete_event(idempotency_key)


def delete_all_events(engine: Engine) -> None:
    events(engine).delete_all()
