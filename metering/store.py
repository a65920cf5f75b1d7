"""The store: one engine factory, table creation, and the bulk write path for events.

`DATABASE_URL` picks the database (SQLite file by default, in the project's `data/` folder, WAL
mode; PostgreSQL works as well). Events are written through the DBAPI connection in batches
(`executemany` on SQLite, `COPY` on PostgreSQL), one transaction per batch, never as ORM objects.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from metering import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from metering import plan_store  # noqa: F401
from metering import apikeys
from metering import audit  # noqa: F401
from metering.models import ImportBatch

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_DIR / "data"
BATCH_SIZE = 50_000  # rows per transaction: a crash keeps whole batches only

EventRow = tuple[str, str, int, str, str]  # event_name, customer_id, ts_us, key, properties


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
    from sqlalchemy.engine import make_url

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
    apikeys.upgrade_schema(engine)  # stores made before keys had names
    init_state(engine)
    return engine


def init_state(engine: Engine) -> None:
    """Create the store_state row on first start, counting the events that are there once."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO store_state (id, events, generation)"
            " SELECT 1, (SELECT count(*) FROM event), 0"
            " WHERE NOT EXISTS (SELECT 1 FROM store_state WHERE id = 1)"
        ))


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def new_import(engine: Engine, source: str) -> int:
    with Session(engine) as session:
        batch = ImportBatch(source=source[:500])
        session.add(batch)
        session.commit()
        assert batch.id is not None
        return batch.id


def finish_import(engine: Engine, import_id: int, *, accepted: int, duplicates: int, rejected: int) -> None:
    with Session(engine) as session:
        batch = session.get(ImportBatch, import_id)
        if batch is not None:
            batch.accepted, batch.duplicates, batch.rejected = accepted, duplicates, rejected
            session.add(batch)
            session.commit()


def _chunks(rows: Sequence[EventRow], size: int) -> Iterator[Sequence[EventRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def insert_events(
    engine: Engine, rows: Sequence[EventRow], *, import_id: int | None, batch_size: int = BATCH_SIZE
) -> int:
    """Insert rows, skipping those whose idempotency key is already stored. Returns rows added.

    Each chunk of `batch_size` rows is one transaction, so an interrupted import leaves whole
    chunks behind, never half of one.
    """
    added = 0
    for chunk in _chunks(rows, batch_size):
        if is_sqlite(engine):
            added += _insert_sqlite(engine, chunk, import_id)
        else:
            added += _insert_postgres(engine, chunk, import_id)
    return added


@contextmanager
def _raw_transaction(engine: Engine) -> Iterator[Any]:
    """A DBAPI cursor in one transaction: committed on success, rolled back on any error."""
    raw = engine.raw_connection()
    try:
        yield raw.cursor()
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


def _insert_sqlite(engine: Engine, rows: Sequence[EventRow], import_id: int | None) -> int:
    with _raw_transaction(engine) as cur:
        cur.executemany(
            "INSERT INTO event (event_name, customer_id, ts_us, idempotency_key, properties, import_id)"
            f" VALUES (?, ?, ?, ?, ?, {int(import_id) if import_id is not None else 'NULL'})"
            " ON CONFLICT (idempotency_key) DO NOTHING",
            rows,
        )
        added = int(cur.rowcount)
        cur.execute("UPDATE store_state SET events = events + ? WHERE id = 1", (added,))
    return added


def _insert_postgres(engine: Engine, rows: Sequence[EventRow], import_id: int | None) -> int:
    with _raw_transaction(engine) as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS event_load (event_name text, customer_id text,"
            " ts_us bigint, idempotency_key text, properties text, ord bigint) ON COMMIT DELETE ROWS"
        )
        with cur.copy(
            "COPY event_load (event_name, customer_id, ts_us, idempotency_key, properties, ord) FROM STDIN"
        ) as copy:
            for i, row in enumerate(rows):
                copy.write_row((*row, i))
        # DISTINCT ON keeps the first of repeated keys inside one batch; ON CONFLICT skips stored ones.
        cur.execute(
            "INSERT INTO event (event_name, customer_id, ts_us, idempotency_key, properties, import_id)"
            " SELECT event_name, customer_id, ts_us, idempotency_key, properties, %s FROM ("
            "  SELECT DISTINCT ON (idempotency_key) * FROM event_load ORDER BY idempotency_key, ord"
            " ) d ORDER BY ord ON CONFLICT (idempotency_key) DO NOTHING",
            (import_id,),
        )
        added = int(cur.rowcount)
        cur.execute("UPDATE store_state SET events = events + %s WHERE id = 1", (added,))
    return added


@dataclass(frozen=True)
class StoreVersion:
    """What changed in the event table: inserts raise max_id and count; deletes bump generation."""

    count: int
    max_id: int
    generation: int = 0


def store_version(engine: Engine) -> StoreVersion:
    query = text(
        "SELECT events, generation, (SELECT coalesce(max(id), 0) FROM event) FROM store_state WHERE id = 1"
    )
    with engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    if row is None:  # tables made without make_engine (e.g. by a migration or a test fixture)
        init_state(engine)
        with engine.connect() as conn:
            row = conn.execute(query).one()
    count, generation, max_id = row
    return StoreVersion(int(count), int(max_id), int(generation))


def fetch_events(engine: Engine, *, after_id: int = 0) -> list[tuple[int, str, str, int, str]]:
    """Rows (id, event_name, customer_id, ts_us, properties) with id > after_id, in id order."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        param = "?" if is_sqlite(engine) else "%s"
        cur.execute(
            "SELECT id, event_name, customer_id, ts_us, properties FROM event"
            f" WHERE id > {param} ORDER BY id",
            (after_id,),
        )
        return cur.fetchall()
    finally:
        raw.close()


def delete_import(engine: Engine, import_id: int) -> int:
    """Delete the events one import added (and the import record). Returns events deleted."""
    with engine.begin() as conn:
        deleted = conn.execute(text("DELETE FROM event WHERE import_id = :i"), {"i": import_id}).rowcount
        conn.execute(text("UPDATE store_state SET events = events - :n, generation = generation + 1 WHERE id = 1"), {"n": deleted})
        conn.execute(text("DELETE FROM import_batch WHERE id = :i"), {"i": import_id})
    return int(deleted)


def delete_all_events(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM event"))
        conn.execute(text("DELETE FROM import_batch"))
        conn.execute(text("UPDATE store_state SET events = 0, generation = generation + 1 WHERE id = 1"))
