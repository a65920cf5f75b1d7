"""The stored events, batch by batch: the one place the peer exports read the event store.

Kept to one small function on purpose: when event storage moves (issue 9: columnar storage;
issue 10: ClickHouse) only this function changes; the converters (`cloudevents.cloudevent_lines`,
`lago.lago_event_lines`) take plain row tuples.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.engine import Engine

from metering import store

Row = tuple[str, str, int, str, str]  # event_name, customer_id, ts_us, idempotency_key, properties JSON text

_PAGE = ("SELECT event_name, customer_id, ts_us, idempotency_key, properties, id FROM event"
         " WHERE id > {p} ORDER BY id LIMIT {p}")


def stored_event_batches(engine: Engine, batch_size: int = 10_000) -> Iterator[list[Row]]:
    """Every stored event in the order stored (id order), `batch_size` rows at a time.

    Keyset pages (id > last id seen), each its own short query on a plain DB-API cursor (as
    `store.fetch_events` reads): memory holds one batch, and no transaction stays open between
    batches."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    query = _PAGE.format(p="?" if store.is_sqlite(engine) else "%s")
    after = 0
    while True:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(query, (after, batch_size))
            page = cur.fetchall()
        finally:
            raw.close()
        if not page:
            return
        after = int(page[-1][5])
        yield [row[:5] for row in page]
        if len(page) < batch_size:
            return
