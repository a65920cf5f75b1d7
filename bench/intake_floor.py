"""What an import must at least spend, beside DuckDB's plain load of the same file (issue 9).

    python bench/intake_floor.py [--events 10000000]

Prints one JSON line: DuckDB's in-memory load of the benchmark CSV (`duckdb_load_s`, what
bench/run.py compares ingest with) and the budget that "ingest at least half of DuckDB's"
leaves (`budget_s`, twice that, wall clock), beside three steps every import of the contract
needs, each timed alone on the same file with the libraries the engine uses:

  parse_s          pyarrow's multi-threaded CSV reader, every column as text (no checks yet)
  content_key_s    the content key of every event (contract §1: a hash of name, customer and
                   canonical properties), with the SipHash-2-4 the stored keys already use
                   (pandas' C implementation): changing it would change every stored key
  durable_write_s  the events written as one zstd Parquet file and fsynced (the store keeps
                   them on disk before an import says they are stored)

`floor_two_cores_s` is the least wall time these three steps could take on this machine's two
cores: the parser already uses both; hashing and writing could at best be split over them.
When it is above `budget_s`, no import keeping these steps can reach half of DuckDB's rate
here, whatever else it does (it also checks rows, parses timestamps, writes the properties'
canonical JSON, searches duplicates and commits).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from events import cached_events_csv  # noqa: E402

from metering.engine import keys  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--data", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args()
    _, path = cached_events_csv(Path(args.data), events=args.events, seed=7)

    import duckdb

    con = duckdb.connect()
    t = time.perf_counter()
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_csv('{path}', header = true)")
    duck = time.perf_counter() - t
    con.close()

    t = time.perf_counter()
    header = path.open().readline().strip().split(",")
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header}))
    parse = time.perf_counter() - t

    props = pc.binary_join_element_wise(
        '{"model":"', table["model"], '","region":"', table["region"], '","tokens":', table["tokens"], "}", "")
    content = pc.binary_join_element_wise(table["event_name"], table["customer_id"], props, "\x1f").combine_chunks()
    t = time.perf_counter()
    keys.content_digest(content)
    digest = time.perf_counter() - t

    out = table.select(["event_name", "customer_id", "timestamp"]).append_column("properties", props)
    with tempfile.TemporaryDirectory(prefix="metering-floor-") as tmp:
        target = Path(tmp) / "events.parquet"
        t = time.perf_counter()
        pq.write_table(out, target, compression="zstd")
        fd = os.open(target, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        write = time.perf_counter() - t

    floor = parse + (digest + write) / 2
    print(json.dumps({
        "events": table.num_rows,
        "duckdb_load_s": round(duck, 2),
        "budget_s": round(2 * duck, 2),
        "parse_s": round(parse, 2),
        "content_key_s": round(digest, 2),
        "durable_write_s": round(write, 2),
        "floor_two_cores_s": round(floor, 2),
        "floor_over_budget": round(floor / (2 * duck), 2),
    }))


if __name__ == "__main__":
    main()
