"""What ClickHouse itself spends storing the benchmark's events in the events table (issue 10).

    python bench/clickhouse_floor.py [--events 100000000] [--layout events|mergetree] [--block-rows N]

ClickHouse (chdb, in this process, as `--events-url chdb://…` runs it) reads the benchmark CSV
with its own parser (`file(…, CSVWithNames)`) and inserts it into a fresh events table in one
`INSERT … SELECT`, doing the least the table needs: the properties as JSON text, a key of the
content-key shape (its hash is ClickHouse's own sipHash64), store numbers. No row checks, no
exact values, no duplicate search, no Python: ClickHouse's own block size (about a million
rows, or `--block-rows`) and its background merges, as under an import.

`--layout events` (default) is the workbench's table (metering.engine.clickhouse.schema:
ReplacingMergeTree, the bloom filter on keys, the time and odd-key indexes); `--layout mergetree`
a plain MergeTree with the same sorting key and nothing else, the least a sorted table costs.

Prints one JSON line. Every import of the contract into this table does all this and more, so
`events_per_s` bounds what `bench/run.py --events-url chdb://…` can reach on this machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from events import cached_events_csv  # noqa: E402

from metering.engine.clickhouse import schema  # noqa: E402
from metering.engine.clickhouse.connection import ChdbClient  # noqa: E402

_COLUMNS = ("event_name String, customer_id String, timestamp String, tokens String, model String, "
            "region String")
_BARE = ("CREATE TABLE {table} (event_name LowCardinality(String), customer_id String, "
         "ts DateTime64(6, 'UTC'), idempotency_key String, properties String, import_id Nullable(Int64), "
         "seq UInt64) ENGINE = MergeTree ORDER BY (event_name, customer_id, ts, idempotency_key)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--data", default=str(ROOT / "bench" / "out"))
    parser.add_argument("--layout", choices=("events", "mergetree"), default="events")
    parser.add_argument("--block-rows", type=int, default=0, help="rows per inserted part (0: ClickHouse's default)")
    args = parser.parse_args()
    count, path = cached_events_csv(Path(args.data), events=args.events, seed=7)

    with tempfile.TemporaryDirectory(prefix="metering-chfloor-") as tmp:
        client = ChdbClient(tmp, "floor")
        table = schema.table_name("floor")
        if args.layout == "events":
            schema.migrate(client, "floor")
        else:
            client.command("CREATE DATABASE IF NOT EXISTS floor")
            client.command(_BARE.format(table=table))
        client.command("SET optimize_on_insert = 0")  # as the workbench's writer inserts
        if args.block_rows:
            for name in ("max_insert_block_size", "min_insert_block_size_rows"):
                client.command(f"SET {name} = {int(args.block_rows)}")
            client.command("SET min_insert_block_size_bytes = 0")
        source = str(path.resolve()).replace("\\", "\\\\").replace("'", "\\'")
        t = time.perf_counter()
        client.command(f"""
INSERT INTO {table} (event_name, customer_id, ts, idempotency_key, properties, import_id, seq)
SELECT event_name, customer_id, ts,
       concat('h:', leftPad(lower(hex(toUInt64(toUnixTimestamp64Micro(ts)) + 4611686018427387904)), 16, '0'),
              leftPad(lower(hex(sipHash64(event_name, customer_id, properties))), 16, '0')),
       properties, 1, rowNumberInAllBlocks() + 1
FROM (SELECT event_name, customer_id, parseDateTime64BestEffort(timestamp, 6, 'UTC') AS ts,
             concat('{{"model":', toJSONString(model), ',"region":', toJSONString(region),
                    ',"tokens":', tokens, '}}') AS properties
      FROM file('{source}', CSVWithNames, '{_COLUMNS}'))""")
        seconds = time.perf_counter() - t
        stored = client.query_arrow(f"SELECT count() AS n FROM {table}").to_pylist()[0]["n"]
        parts = client.query_arrow(
            "SELECT count() AS n FROM system.parts WHERE database = 'floor' AND active").to_pylist()[0]["n"]
    assert stored == count, (stored, count)
    print(json.dumps({
        "events": count,
        "layout": args.layout,
        "block_rows": args.block_rows or "default",
        "seconds": round(seconds, 2),
        "events_per_s": round(count / seconds),
        "active_parts_after": parts,
    }))


if __name__ == "__main__":
    main()
