"""The stored events, batch by batch: the one place the peer exports read the event store.

Through the event engine (`store.event_tables`): each part of the store a bounded table at a
time, so memory holds one batch, whatever the store's size. The converters
(`cloudevents.cloudevent_lines`, `lago.lago_event_lines`) take plain row tuples.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.engine import Engine

from metering import store

Row = tuple[str, str, int, str, str]  # event_name, customer_id, ts_us, idempotency_key, properties JSON text
_COLUMNS = ("event_name", "customer_id", "ts_us", "idempotency_key", "properties")


def stored_event_batches(engine: Engine, batch_size: int = 10_000) -> Iterator[list[Row]]:
    """Every stored event, `batch_size` rows at a time (store order within each part)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    for table in store.event_tables(engine, batch_size):
        columns = [table.column(c).to_pylist() for c in _COLUMNS]
        yield list(zip(*columns))
