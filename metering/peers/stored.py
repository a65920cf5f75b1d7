"""The stored events, batch by batch: the one place the peer exports read the event store.

Kept to one small function on purpose: when event storage moves (issue 9: columnar storage;
issue 10: ClickHouse) only this function changes; the converters (`cloudevents.cloudevent_lines`,
`lago.lago_event_lines`) take plain row tuples.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine

Row = tuple[str, str, int, str, str]  # event_name, customer_id, ts_us, idempotency_key, properties JSON text

_PAGE = text(
    "SELECT id, event_name, customer_id, ts_us, idempotency_key, properties FROM event"
    " WHERE id > :after ORDER BY id LIMIT :n"
)


def stored_event_batches(engine: Engine, batch_size: int = 10_000) -> Iterator[list[Row]]:
    """Every stored event in the order stored (id order), `batch_size` rows at a time.

    Keyset pages (id > last id seen), each its own short query: memory holds one batch, and
    no transaction stays open between batches."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    after = 0
    while True:
        with engine.connect() as conn:
            page = conn.execute(_PAGE, {"after": after, "n": batch_size}).all()
        if not page:
            return
        after = int(page[-1][0])
        yield [(r[1], r[2], int(r[3]), r[4], r[5]) for r in page]
        if len(page) < batch_size:
            return
