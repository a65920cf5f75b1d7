"""Benchmark of the event engine beside DuckDB on the same file: prints one JSON line.

    python bench/run.py --events 1000000 [--database-url URL] [--events-url URL] [--data DIR] [--no-duckdb]

Simulates N realistic LLM-token events (1,000 customers, October 2026) as one CSV file (kept
under --data, default bench/out, for the next run), then measures on a fresh store (a
temporary SQLite file unless --database-url names another; events in the embedded engine unless
--events-url names ClickHouse, e.g. chdb:///tmp/bench-chdb: its events are deleted first and last):

  ingest_events_per_s   the file through `metering import` in a fresh process (the real CLI:
                        parse, validate, hash, deduplicate, store); ingest_rss_mb its peak RSS
  first_preview_ms      a fresh process opens the store and previews the metric once (the
                        metric's columns are derived from the stored files and kept)
  cold_start_ms         a fresh process again, from its start (interpreter and imports
                        included) to the first preview's answer; cold_rss_mb its peak RSS
  preview_ms            median of 20 warm aggregations here: sum + filter + group_by over all N
  invoice_ms            median of 5 warm runs invoicing all 1,000 customers for October under a
                        plan with a base fee, a fixed charge, included credit and a graduated charge
  timeline_ms           median of 3 warm 12-period timelines (a daily plan) for all 1,000 customers
  duckdb_ingest_events_per_s, duckdb_query_ms
                        DuckDB (what a user would pick instead) reading the same CSV into a table,
                        and the same aggregation as SQL, median of 20, in the same run

The preview's groups must equal DuckDB's, exactly, or the run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from events import cached_events_csv  # noqa: E402
from run_metric import DAILY_PLAN, DUCKDB_QUERY, METRIC, PLAN  # noqa: E402

from metering import aggregation, billing, invoices, store  # noqa: E402
from metering.engine import stored_events  # noqa: E402
from metering.workspace import Workspace  # noqa: E402


def probe(step: str, *args: str, env: dict[str, str]) -> tuple[float, dict]:
    """Run bench/probe.py in a fresh process: (wall seconds, its JSON line)."""
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "probe.py"), step, *args],
        env=env, capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"probe {step} failed:\n{done.stderr[-2000:]}")
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def median_ms(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, result


def duckdb_side(csv_path: Path) -> dict:
    import duckdb

    con = duckdb.connect()
    t = time.perf_counter()
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_csv('{csv_path}', header = true)")
    ingest_s = time.perf_counter() - t
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    query_ms, groups = median_ms(lambda: con.execute(DUCKDB_QUERY).fetchall(), 20)
    con.close()
    return {"rows": rows, "ingest_s": ingest_s, "query_ms": query_ms, "groups": {g: Decimal(int(v)) for g, v in groups}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--data", default=str(ROOT / "bench" / "out"), help="where the simulated CSV is kept")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events-url", default=None, help="events in ClickHouse (METERING_EVENTS_URL), e.g. chdb:///dir")
    parser.add_argument("--no-duckdb", action="store_true")
    args = parser.parse_args()

    t = time.perf_counter()
    count, csv_path = cached_events_csv(Path(args.data), events=args.events, seed=args.seed)
    simulate_s = time.perf_counter() - t

    with tempfile.TemporaryDirectory(prefix="metering-bench-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        env = {**os.environ, "DATABASE_URL": url, "METERING_DATA_DIR": str(Path(tmp) / "data")}
        if args.events_url:
            env["METERING_EVENTS_URL"] = args.events_url
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "METERING_DATA_DIR", "METERING_EVENTS_URL") if k in env})
        engine = store.make_engine(url)
        # Emptied in a probe: chdb lets one process at a time open its directory, and the probes
        # below are processes of their own; this one opens the events only after them.
        probe("clear", env=env)

        ingest_wall, imported = probe("import", str(csv_path), env=env)
        assert imported["accepted"] == count, imported
        first_wall, first = probe("preview", env=env)
        cold_wall, cold = probe("preview", env=env)

        events = stored_events(engine)
        assert len(events) == count
        preview_ms, warm = median_ms(lambda: aggregation.aggregate(events, METRIC), 20)
        assert str(warm.value) == cold["value"] == first["value"]  # type: ignore[union-attr]

        workspace = Workspace(timezone="UTC", metrics=[METRIC], plans=[PLAN], subscriptions=[])
        invoices.run(events, workspace, plan_code="bench", month=(2026, 10))  # warm-up
        invoice_ms, billed = median_ms(lambda: invoices.run(events, workspace, plan_code="bench", month=(2026, 10)), 5)
        assert len(billed) == 1000, len(billed)  # type: ignore[arg-type]

        anchor = datetime(2026, 10, 1, tzinfo=timezone.utc)
        schedules = {cid: billing.Schedule(anchor, "day", "UTC") for cid in events.customer_ids()}
        timeline_ms, lines = median_ms(lambda: billing.timeline(events, METRIC, DAILY_PLAN, schedules, periods_count=12), 3)
        assert len(lines) == 1000 and all(len(v) == 12 for v in lines.values())  # type: ignore[union-attr]
        invoice_total = sum((i.total for i in billed), Decimal(0))  # type: ignore[union-attr]
        store.delete_all_events(engine) if args.database_url or args.events_url else None
        engine.dispose()

    out = {
        "events": count,
        "database": "postgresql" if args.database_url and "postgres" in args.database_url else "sqlite",
        "events_engine": (args.events_url.split(":", 1)[0] if args.events_url else "embedded"),
        "ingest_events_per_s": round(count / imported["seconds"]),
        "ingest_rss_mb": round(imported["rss_mb"]),
        "first_preview_ms": round(first_wall * 1000),
        "cold_start_ms": round(cold_wall * 1000),
        "cold_rss_mb": round(cold["rss_mb"]),
        "preview_ms": round(preview_ms, 1),
        "invoice_ms": round(invoice_ms, 1),
        "timeline_ms": round(timeline_ms, 1),
        "preview_value": str(warm.value),  # type: ignore[union-attr]
        "invoice_total": str(invoice_total),
        "simulate_s": round(simulate_s, 1),
    }
    if not args.no_duckdb:
        duck = duckdb_side(csv_path)
        assert duck["rows"] == count
        groups = {g.group["region"]: g.value for g in warm.groups}  # type: ignore[union-attr]
        assert groups == duck["groups"], (groups, duck["groups"])
        out.update({
            "duckdb_ingest_events_per_s": round(count / duck["ingest_s"]),
            "duckdb_query_ms": round(duck["query_ms"], 1),
            "preview_over_duckdb": round(preview_ms / duck["query_ms"], 2),
            "ingest_over_duckdb": round((count / imported["seconds"]) / (count / duck["ingest_s"]), 2),
        })
    print(json.dumps(out))


if __name__ == "__main__":
    main()
