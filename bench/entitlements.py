"""Latency of GET /api/v1/entitlements/{customer}/{metric} with 1M stored events: prints one JSON line.

    python bench/entitlements.py [--events 1000000] [--customers 1000] [--requests 2000]

A SQLite store gets N simulated events (bench-sized api_requests and llm_tokens streams over the
last 60 days, 1,000 customers), a limit_metered metric (count of api.request) and a
limit_recurring one (sum of llm.tokens' tokens) with quotas on a plan every customer is
subscribed to. The real server (`streamlit run app.py`, tests/server.py) is started on it and
one client asks, over HTTP with keep-alive:

  cold_p50_ms / cold_p95_ms   every customer's first check of each metric (the ledger computes
                              the period from the 1M events: `limit_usage` / `window_usage`)
  p50_ms / p95_ms             --requests checks of random customers and metrics afterwards, the
                              usual case: the used amount is kept in memory (target p50 ≤ 20 ms)
  after_events_p50_ms         the same while another client sends an event every 10 ms through
                              the API for those customers (the ledger advances in memory)

The answers are checked against a computation from scratch for a sample of customers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import running_server  # noqa: E402

TARGET_P50_MS = 20.0


def populate(tmp: Path, events: int, customers: int) -> str:
    os.environ["METERING_DATA_DIR"] = str(tmp)
    from metering import importing, metrics, plan_store, store
    from metering.simulate import simulate, template_spec

    url = f"sqlite:///{tmp / 'server.db'}"
    engine = store.make_engine(url)
    days = 60
    start = (datetime.now(timezone.utc) - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    half = events // 2
    frames = [
        simulate(template_spec("api_requests", customers=customers, start=start, days=days, daily_volume=half // days, seed=1)),
        simulate(template_spec("llm_tokens", customers=customers, start=start, days=days,
                               daily_volume=(events - half) // days, seed=2)),
    ]
    now = datetime.now(timezone.utc).isoformat()
    frames = [f[f["timestamp"] < now] for f in frames]  # nothing after the server's clock
    importing.import_frames(engine, frames, source="bench")
    metrics.create_metric(engine, data={"name": "API calls", "code": "api_calls", "unit": "requests",
                                        "metric_type": "limit_metered", "event_name": "api.request", "aggregation": "count"})
    metrics.create_metric(engine, data={"name": "Credits", "code": "credits", "unit": "tokens", "metric_type": "limit_recurring",
                                        "event_name": "llm.tokens", "aggregation": "sum", "value_property": "tokens"})
    plan_store.save_plan(engine, plan={"code": "pro", "name": "Pro", "currency": "USD", "quotas": [
        {"metric": "api_calls", "limit": "100000000", "alert_thresholds": ["80", "100"]},
        {"metric": "credits", "limit": "5000000", "max_carryover": "1000000"}]})
    for cid in _customers(engine):
        plan_store.set_subscription(engine, customer_id=cid, plan_code="pro")
    engine.dispose()
    return url


def _customers(engine) -> list[str]:
    from metering.engine import stored_events

    return stored_events(engine).customer_ids()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-entitlements-") as folder:
        tmp = Path(folder)
        began = time.perf_counter()
        url = populate(tmp, args.events, args.customers)
        populate_s = time.perf_counter() - began
        from metering import store

        engine = store.make_engine(url)
        customers = _customers(engine)
        stored = store.event_count(engine)
        with running_server(tmp, database_url=url) as server:
            session = requests.Session()
            headers = server.headers

            def ask(cid: str, metric: str) -> tuple[float, dict]:
                t0 = time.perf_counter()
                response = session.get(f"{server.base_url}/api/v1/entitlements/{cid}/{metric}", headers=headers, timeout=60)
                elapsed = (time.perf_counter() - t0) * 1000
                assert response.status_code == 200, response.text
                return elapsed, response.json()

            cold = [ask(cid, metric)[0] for cid in customers for metric in ("api_calls", "credits")]
            rng = random.Random(7)
            warm = [ask(rng.choice(customers), rng.choice(("api_calls", "credits")))[0] for _ in range(args.requests)]

            stop = threading.Event()
            sent = [0]

            def sender() -> None:
                other = requests.Session()
                while not stop.is_set():
                    cid = rng.choice(customers)
                    body = {"event_name": "api.request", "customer_id": cid, "timestamp": datetime.now(timezone.utc).isoformat(),
                            "idempotency_key": f"bench-{sent[0]}"}
                    assert other.post(f"{server.base_url}/api/v1/events", json=body, headers=headers, timeout=60).status_code == 200
                    sent[0] += 1
                    time.sleep(0.01)

            thread = threading.Thread(target=sender, daemon=True)
            thread.start()
            during = [ask(rng.choice(customers), "api_calls")[0] for _ in range(args.requests // 2)]
            stop.set()
            thread.join()

            # checked: what the server answers is what a computation from scratch gives
            from metering.quotas import entitlement as ent_mod
            from metering.quotas.ledger import Ledger

            mismatches = 0
            for cid in rng.sample(customers, 20):
                for metric in ("api_calls", "credits"):
                    _, served = ask(cid, metric)
                    fresh = Ledger(engine)
                    ent_mod.ledger_for = lambda _e, fresh=fresh: fresh  # type: ignore[assignment]
                    mismatches += ent_mod.check(engine, cid, metric).to_json() != served
        line = {
            "bench": "entitlements",
            "stored_events": stored,
            "customers": len(customers),
            "populate_s": round(populate_s, 1),
            "cold_p50_ms": _pct(cold, 0.5),
            "cold_p95_ms": _pct(cold, 0.95),
            "p50_ms": _pct(warm, 0.5),
            "p95_ms": _pct(warm, 0.95),
            "mean_ms": round(statistics.fmean(warm), 2),
            "after_events_p50_ms": _pct(during, 0.5),
            "after_events_p95_ms": _pct(during, 0.95),
            "events_sent_meanwhile": sent[0],
            "mismatches": mismatches,
            "target_met": _pct(warm, 0.5) <= TARGET_P50_MS and mismatches == 0,
        }
        print(json.dumps(line))
        engine.dispose()
        return 0 if line["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
