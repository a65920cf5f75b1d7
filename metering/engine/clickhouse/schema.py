"""The ClickHouse events table, and how reads see it.

One row per stored event, as the embedded store keeps them: the contract §1 idempotency key
(the client's, or the content key `h:…` of metering.engine.keys), the properties as JSON
text, the import it came from (NULL: the API) and `seq`, the store order (first stored wins
among duplicates; `latest` breaks ties on it).

Why these choices:

* `ReplacingMergeTree(keep_first)` ordered by (event_name, customer_id, ts, idempotency_key):
  a metric reads one event name, a customer's usage one range of it, and a window one range
  of that (the primary index skips the rest). The key ends with the idempotency key, so a
  batch inserted twice (a retry after a timeout, two writers racing on the same events) has
  the same sorting key twice and is collapsed; `keep_first` (= max − seq) makes the row that
  is kept the first stored one, as in the embedded store.
* Reads use `FINAL` (:func:`events_source`): the collapse is applied at read time too, so
  answers are exact before ClickHouse merges parts. Since 23.x FINAL merges only the ranges
  of parts that overlap, so on a merged table it costs little; deduplicating by key at read
  time instead (GROUP BY idempotency_key over every row) would cost a hash table of all keys
  on every preview. The writer drops keys already stored before it inserts, so a key with
  two different contents never reaches the table from one writer.
* No PARTITION BY: events may be dated 1900–2199, and an insert spanning more partitions than
  `max_partitions_per_insert_block` (100) would be refused; the sorting key already narrows
  reads by event name, customer and time.
* Property paths a metric reads get columns of their own, added when first read
  (metering.engine.clickhouse.paths): the table above is where they start.
* A bloom filter index on the idempotency key: the writer's "is this key stored?" checks
  read a few granules instead of the whole key column. For content keys (which carry their
  event's time) the check reads only the rows of the write's time range: a minmax index on
  `ts` per granule, and `odd_key` (with its own minmax index) marking the rare rows whose key
  looks like a content key without being their own.
"""

from __future__ import annotations

from metering.engine.clickhouse.connection import ClickHouseClient, ClickHouseError

EVENTS_TABLE = "events"

# Columns a source must expose for reads (ClickHouseEvents), in this order.
SOURCE_COLUMNS = ("event_name", "customer_id", "ts", "idempotency_key", "properties", "import_id", "seq")


def ident(name: str) -> str:
    """A ClickHouse identifier, quoted."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def table_name(database: str, table: str = EVENTS_TABLE) -> str:
    return f"{ident(database)}.{ident(table)}"


def events_ddl(database: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {table_name(database)} (
  event_name LowCardinality(String),
  customer_id String,
  ts DateTime64(6, 'UTC'),
  idempotency_key String,
  properties String,
  import_id Nullable(Int64),
  seq UInt64,
  keep_first UInt64 MATERIALIZED 18446744073709551615 - seq,
  INDEX idx_idempotency_key idempotency_key TYPE bloom_filter(0.001) GRANULARITY 4,
  INDEX idx_import_id import_id TYPE minmax GRANULARITY 4
) ENGINE = ReplacingMergeTree(keep_first)
ORDER BY (event_name, customer_id, ts, idempotency_key)
"""


# A row whose key looks like a content key (`h:` + 16 hex digits of its time + 16 of a hash)
# but does not carry the row's own time: a client's key of that shape. The writer's check of
# content keys reads only the rows of their time range, and these (metering.engine.keys).
ODD_KEY = (
    "match(idempotency_key, '^h:[0-9a-f]{32}$') AND substring(idempotency_key, 3, 16) != "
    "leftPad(lower(hex(toUInt64(toUnixTimestamp64Micro(ts) + 4611686018427387904))), 16, '0')"
)

# Columns and indexes added after the first version (CREATE TABLE IF NOT EXISTS keeps an old
# table as it was): (kind, name, DDL fragment). An added MATERIALIZED column is computed on
# read for parts written before it; an added index skips nothing in those parts.
_ADDED: list[tuple[str, str, str]] = [
    ("column", "odd_key", f"UInt8 MATERIALIZED {ODD_KEY}"),
    ("index", "idx_ts", "ts TYPE minmax GRANULARITY 1"),
    ("index", "idx_odd_key", "odd_key TYPE minmax GRANULARITY 1"),
]


def migrate(client: ClickHouseClient, database: str | None = None) -> None:
    """Create the database and the events table if missing, and add what later versions added
    (idempotent)."""
    db = database or client.database
    client.command(f"CREATE DATABASE IF NOT EXISTS {ident(db)}")
    client.command(events_ddl(db))
    for kind, name, ddl in _ADDED:
        what = "COLUMN" if kind == "column" else "INDEX"
        try:
            client.command(f"ALTER TABLE {table_name(db)} ADD {what} IF NOT EXISTS {ident(name)} {ddl}")
        except ClickHouseError:
            pass  # no ALTER right on a table its owner made: the writer then checks every stored key


def columns(client: ClickHouseClient, database: str, table: str = EVENTS_TABLE) -> list[dict[str, str]]:
    """The table's columns in order: name, comment, compression_codec ('' for the default) and
    default_kind ('' / DEFAULT / MATERIALIZED / ALIAS / EPHEMERAL); none when there is no such
    table."""
    return client.query_arrow(
        "SELECT name, comment, compression_codec, default_kind FROM system.columns "
        "WHERE database = {db:String} AND table = {t:String} ORDER BY position",
        {"db": database, "t": table}).to_pylist()


def events_source(database: str) -> str:
    """The table expression reads use for the events table: deduplicated by FINAL (see above)."""
    return f"{table_name(database)} FINAL"
