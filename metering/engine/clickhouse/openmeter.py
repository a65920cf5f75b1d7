"""Read-only events from an existing OpenMeter events table in ClickHouse.

OpenMeter (Kafka → ClickHouse) keeps CloudEvents in one MergeTree table, `om_events` by
default, in the database `openmeter`:

    namespace String, id String, type LowCardinality(String), subject String, source String,
    time DateTime, data String, ingested_at DateTime, stored_at DateTime[, store_row_id String]
    PARTITION BY toYYYYMM(time) ORDER BY (namespace, type, subject, toStartOfHour(time))

`source_sql` maps one namespace of it onto the columns `ClickHouseEvents` reads, as a subquery
(ClickHouse pushes the reads' conditions on event name, customer and time into it, so its
sorting key and partitions still narrow every read):

    type → event_name, subject → customer_id, time → ts, id → idempotency_key,
    data → properties (a `data` that is not a JSON object reads as `{}`: no properties),
    no import (NULL), and store order = `stored_at`, then a hash of (id, source) for rows
    stored in the same second (deterministic; OpenMeter keeps no finer order).

Rows are read as the table has them: OpenMeter deduplicates at ingest (by id and source), and
its own meters count the table's rows, so the workbench counts the same ones. Nothing is ever
written: imports, the events API and deletes are refused with `ReadOnlyEvents`.
"""

from __future__ import annotations

from metering.engine.clickhouse.connection import ClickHouseClient
from metering.engine.clickhouse.schema import columns, table_name
from metering.engine.clickhouse.settings import EventsSetting, EventsUrlError
from metering.engine.clickhouse.sql import lit
from metering.engine.clickhouse.writer import ReadOnlyWriter

# Columns the mapping reads (OpenMeter's table has these since its first ClickHouse version).
NEEDED = ("namespace", "id", "type", "subject", "source", "time", "data", "stored_at")


def source_sql(setting: EventsSetting) -> str:
    """The subquery exposing one OpenMeter namespace as the columns reads use."""
    table = table_name(setting.database, setting.table)
    return (
        "(SELECT toLowCardinality(toString(type)) AS event_name, toString(subject) AS customer_id,"
        " toDateTime64(time, 6, 'UTC') AS ts, toString(id) AS idempotency_key,"
        " if(startsWith(trimLeft(data), '{'), data, '{}') AS properties,"
        " CAST(NULL AS Nullable(Int64)) AS import_id,"
        " bitShiftLeft(toUInt64(toUnixTimestamp(stored_at)), 32) + (cityHash64(id, source) % 4294967296) AS seq"
        f" FROM {table} WHERE namespace = {lit(setting.namespace)})"
    )


def check_table(client: ClickHouseClient, setting: EventsSetting) -> None:
    """Refuse, in one line, a table that is missing or not in OpenMeter's shape."""
    rows = columns(client, setting.database, setting.table)
    where = f"{setting.database}.{setting.table}"
    if not rows:
        raise EventsUrlError(f"events URL {setting.shown()!r}: there is no table {where} to read OpenMeter events from")
    missing = [c for c in NEEDED if c not in {r["name"] for r in rows}]
    if missing:
        raise EventsUrlError(f"events URL {setting.shown()!r}: {where} is not an OpenMeter events table "
                             f"(no column {', '.join(missing)})")


def read_only_reason(setting: EventsSetting) -> str:
    return (f"Events are read from the OpenMeter table {setting.database}.{setting.table} "
            f"(namespace {setting.namespace!r}) and are not written here: send events to OpenMeter, "
            "or unset METERING_EVENTS_URL to store them in the workbench.")


def read_only_writer(setting: EventsSetting) -> ReadOnlyWriter:
    return ReadOnlyWriter(read_only_reason(setting))
