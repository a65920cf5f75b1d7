"""The SQL side of the embedded event store: the segment list, and segment bytes on PostgreSQL.

Stored events live in two places (see metering.engine.store): recent small writes as rows of
the `event` table, and everything else in immutable columnar segments. A segment is listed
here, in the same transaction that makes it count; until its row commits, its files are
ignored (and later removed). On PostgreSQL the files' bytes are kept in
`event_segment_blob` too, so every server on the database reads the same events.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from metering.models import utcnow

_ID = BigInteger().with_variant(Integer, "sqlite")


class EventSegment(SQLModel, table=True):
    __tablename__ = "event_segment"
    id: int | None = Field(default=None, sa_column=Column(_ID, primary_key=True, autoincrement=True))
    name: str = Field(max_length=64, unique=True)  # file stem of the segment's files
    import_id: int | None = Field(default=None, index=True)
    rows: int = 0
    # Store order of the rows: seq_base + row, unless the segment keeps a seq column of its own
    # (rows moved from the `event` table, or a segment rewritten without a deleted event).
    seq_base: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    own_seq: bool = False
    min_ts: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    max_ts: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    created_at: datetime = Field(default_factory=utcnow)


class EventSegmentBlob(SQLModel, table=True):
    """A segment file's bytes (PostgreSQL stores only); cached on local disk when read."""

    __tablename__ = "event_segment_blob"
    segment: str = Field(max_length=64, primary_key=True)
    kind: str = Field(max_length=16, primary_key=True)  # "events" or "data"
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


# Columns added to tables made by earlier versions (create_all adds tables, not columns).
_ADDED_COLUMNS = {
    "store_state": [("next_seq", "BIGINT NOT NULL DEFAULT 1"), ("compactions", "BIGINT NOT NULL DEFAULT 0")],
    "event": [("seq", "BIGINT")],
    "import_batch": [("finished_at", "TIMESTAMP"), ("future", "INTEGER NOT NULL DEFAULT 0")],
}


def migrate(engine: Engine) -> None:
    """Bring a store made by an earlier version up to date (idempotent, cheap when current)."""
    inspector = inspect(engine)
    missing = {
        table: [(name, ddl) for name, ddl in columns if name not in {c["name"] for c in inspector.get_columns(table)}]
        for table, columns in _ADDED_COLUMNS.items()
        if inspector.has_table(table)
    }
    if not any(missing.values()):
        return
    with engine.begin() as conn:
        for table, columns in missing.items():
            for name, ddl in columns:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
        if any(name == "seq" for name, _ in missing.get("event", [])):
            # Rows stored before keep their order: their id is their place.
            conn.execute(text("UPDATE event SET seq = id WHERE seq IS NULL"))
            conn.execute(text("UPDATE store_state SET next_seq = (SELECT coalesce(max(id), 0) + 1 FROM event) WHERE id = 1"))
        if any(name == "finished_at" for name, _ in missing.get("import_batch", [])):
            conn.execute(text("UPDATE import_batch SET finished_at = created_at"))
