"""Every stored event, a bounded table at a time, from ClickHouse: for the exports
(`metering events export`, the Events page's download), which stream the whole store.

Pages follow the table's sorting key (event name, customer, time, key) with keyset paging:
each page asks for the rows after the last one it got, written as comparisons on the key
columns that the primary index can use, and reads in the table's order up to the page size.
So each page costs about its own rows, and memory holds one page, whatever the store's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metering.engine.clickhouse.connection import ClickHouseClient
from metering.engine.clickhouse.sql import lit

_COLUMNS = ("seq", "event_name", "customer_id", "ts_us", "idempotency_key", "properties", "import_id")


def _after(last: dict[str, Any]) -> str:
    """Rows after `last` in (event_name, customer_id, ts, idempotency_key) order, spelled out
    as ORs of ANDs (the index analyses those; a tuple comparison it may not)."""
    e, c, k = lit(last["event_name"]), lit(last["customer_id"]), lit(last["idempotency_key"])
    t = f"fromUnixTimestamp64Micro(toInt64({int(last['ts_us'])}), 'UTC')"
    return (f"(event_name > {e} OR (event_name = {e} AND (customer_id > {c} OR (customer_id = {c} AND"
            f" (ts > {t} OR (ts = {t} AND idempotency_key > {k}))))))")


def tables(client: ClickHouseClient, source: str, batch_size: int = 65_536) -> Iterator[pa.Table]:
    """Every event of `source` as tables of seq, event_name, customer_id, ts_us,
    idempotency_key, properties, import_id (-1: none), `batch_size` rows at most each."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    last: dict[str, Any] | None = None
    while True:
        where = f" WHERE {_after(last)}" if last is not None else ""
        page = client.query_arrow(
            "SELECT seq AS s, toString(event_name) AS e, customer_id AS c, toUnixTimestamp64Micro(ts) AS t,"
            f" idempotency_key AS k, properties AS p, import_id AS i FROM {source}{where}"
            f" ORDER BY event_name, customer_id, ts, idempotency_key LIMIT {int(batch_size)}")
        if page.num_rows == 0:
            return
        yield pa.table({
            "seq": page.column("s").to_numpy().astype(np.int64),
            "event_name": page.column("e").cast(pa.string()),
            "customer_id": page.column("c").cast(pa.string()),
            "ts_us": page.column("t").to_numpy().astype(np.int64),
            "idempotency_key": page.column("k").cast(pa.string()),
            "properties": page.column("p").cast(pa.string()),
            "import_id": pc.fill_null(page.column("i").cast(pa.int64()), -1).to_numpy().astype(np.int64),
        })
        if page.num_rows < batch_size:
            return
        tail = page.slice(page.num_rows - 1).to_pylist()[0]
        last = {"event_name": tail["e"], "customer_id": tail["c"], "ts_us": tail["t"], "idempotency_key": tail["k"]}


def event_tables(batch_size: int = 65_536) -> Iterator[pa.Table]:
    """The configured ClickHouse events (METERING_EVENTS_URL), as `tables` gives them."""
    from metering.engine.clickhouse.settings import current
    from metering.engine.clickhouse.wiring import place_for

    setting = current()
    if setting is None:
        raise RuntimeError("METERING_EVENTS_URL does not name ClickHouse")
    place = place_for(setting)
    yield from tables(place.client, place.source, batch_size)
