"""Benchmark of the metering engine: prints one JSON line.

    python bench/run.py --events 1000000 [--database-url URL]

Generates N realistic LLM-token events (1,000 customers, one month) with the simulator, then
measures on a fresh store (a temporary SQLite file unless --database-url is given):
  ingest_events_per_s  the CSV file through the real import (parse, validate, hash, insert)
  cold_load_ms         store → frame ready for previews (load, parse properties, build the
                       columns the preview metric reads)
  preview_ms           median of 20 warm aggregations of a sum metric with a filter and a
                       group_by over all N events
  naive_sql_ms         the same aggregation as one SQL query with json_extract over the stored
                       properties (the way Lago queries its Postgres events), median of 3
  invoice_ms           median of 5 warm runs invoicing every customer (1,000) for October
                       under a plan with a base fee, a fixed charge, included credit and a
                       graduated charge on the sum metric (what-if pricing over all N events)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from metering import aggregation, ingest, invoices, store  # noqa: E402
from events import write_events_csv  # noqa: E402
from metering.frame import FrameCache  # noqa: E402
from metering.models import MetricCreate  # noqa: E402
from metering.plans import Plan  # noqa: E402
from metering.workspace import Workspace  # noqa: E402

METRIC = MetricCreate(
    name="LLM Tokens", code="llm_tokens", unit="tokens", event_name="llm.tokens",
    aggregation="sum", value_property="tokens",
    filters={"model": ["gpt-4o", "claude-sonnet"]}, group_by=["region"],
)


PLAN = Plan.model_validate({
    "code": "bench", "name": "Bench", "currency": "USD", "interval": "month", "base_fee": "49",
    "fixed_charges": [{"name": "Seats", "quantity": 5, "unit_price": "12.50"}],
    "charges": [{
        "metric": "llm_tokens", "model": "graduated", "free_units": "10000",
        "tiers": [
            {"up_to": "100000", "unit_price": "0.00002"},
            {"up_to": "1000000", "unit_price": "0.000015", "flat_fee": "1"},
            {"up_to": None, "unit_price": "0.00001"},
        ],
    }],
    "included_credit": "5",
})


def invoice_bench(frame) -> tuple[float, int, Decimal]:
    workspace = Workspace(timezone="UTC", metrics=[METRIC], plans=[PLAN], subscriptions=[])
    times, result = [], []
    for _ in range(6):  # the first run builds nothing new (columns exist); keep it out anyway
        t = time.perf_counter()
        result = invoices.run(frame, workspace, plan_code="bench", month=(2026, 10))
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:]) * 1000, len(result), sum((i.total for i in result), Decimal(0))


def naive_sql(engine) -> tuple[float, dict[str, Decimal]]:
    if store.is_sqlite(engine):
        value, key, model = "json_extract(properties, '$.tokens')", "json_extract(properties, '$.region')", "json_extract(properties, '$.model')"
    else:
        value, key, model = "(properties::jsonb ->> 'tokens')::numeric", "properties::jsonb ->> 'region'", "properties::jsonb ->> 'model'"
    sql = text(
        f"SELECT {key} AS grp, sum({value}) FROM event WHERE event_name = :name"
        f" AND {model} IN ('gpt-4o', 'claude-sonnet') GROUP BY grp"
    )
    times, result = [], {}
    for _ in range(3):
        t = time.perf_counter()
        with engine.connect() as conn:
            result = {r[0]: Decimal(str(r[1])) for r in conn.execute(sql, {"name": "llm.tokens"})}
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="metering-bench-") as tmp:
        df, csv_path = write_events_csv(Path(tmp), events=args.events, seed=args.seed)
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = store.make_engine(url)
        if args.database_url:
            store.delete_all_events(engine)

        t = time.perf_counter()
        result = ingest.import_file(engine, csv_path)
        ingest_s = time.perf_counter() - t
        assert result.accepted == len(df), result.to_json()

        t = time.perf_counter()
        frame = FrameCache().get(engine)
        first = aggregation.aggregate(frame, METRIC)  # builds the columns the preview reads
        cold_ms = (time.perf_counter() - t) * 1000

        times = []
        for _ in range(20):
            t = time.perf_counter()
            warm = aggregation.aggregate(frame, METRIC)
            times.append(time.perf_counter() - t)
        preview_ms = statistics.median(times) * 1000

        naive_ms, naive = naive_sql(engine)
        invoice_ms, invoice_count, invoice_total = invoice_bench(frame)
        assert invoice_count == len(frame.customers.values), invoice_count
        groups = {g.group["region"]: g.value for g in warm.groups}
        assert groups == naive and warm == first, (groups, naive)
        if args.database_url:
            store.delete_all_events(engine)
        engine.dispose()

    print(json.dumps({
        "events": len(df),
        "database": engine.dialect.name,
        "ingest_events_per_s": round(len(df) / ingest_s),
        "cold_load_ms": round(cold_ms),
        "preview_ms": round(preview_ms, 1),
        "naive_sql_ms": round(naive_ms),
        "naive_over_preview": round(naive_ms / preview_ms, 1),
        "preview_value": str(warm.value),
        "invoice_ms": round(invoice_ms, 1),
        "invoices": invoice_count,
        "invoice_total": str(invoice_total),
    }))


if __name__ == "__main__":
    main()
