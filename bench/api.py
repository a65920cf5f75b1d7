"""API throughput: single-event requests/s and batched events/s against the real server.

Starts `streamlit run app.py` on a free 127.0.0.1 port over a fresh SQLite store (or uses
--url/--key for a server already running), then for --seconds each:

* single: --clients threads, each with its own keep-alive session, POST one new event per request;
* batched: the same threads POST {"events": [...]} with --batch new events per request.

Bodies are prepared before the clock starts, so the client measures the server, not JSON
encoding. Prints one JSON line: requests/s, events/s, latency percentiles, errors, and whether
the stored count matches what the server acknowledged. Targets on a 2-core machine: ≥ 500
single requests/s and ≥ 50,000 batched events/s.

    .venv/bin/python bench/api.py [--clients 8] [--seconds 10] [--batch 1000] [--quota]

With --quota, every event sent feeds a hard limit (a limit_metered sum of the tokens, on a plan
all 50 customers are subscribed to, high enough that nothing is refused): each request then
goes through the live-quota check (README, Live quotas) — the worst case for the write path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server import running_server  # noqa: E402

TARGET_RPS = 500
TARGET_EPS = 50_000


def _event(run: str, thread: int, n: int) -> str:
    return (
        f'{{"event_name":"llm.tokens","customer_id":"cus_{n % 50:03d}","timestamp":"2026-10-03T12:{n % 60:02d}:{thread:02d}Z",'
        f'"idempotency_key":"{run}-{thread}-{n}","properties":{{"tokens":{n % 997 + 1},"model":"gpt-4o","region":"us-east"}}}}'
    )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_phase(url: str, key: str, *, clients: int, seconds: float, batch: int | None, run: str, budget: int) -> dict:
    """`budget` bodies per thread are prepared; a thread stops early if it uses them all."""
    bodies: list[list[bytes]] = []
    for t in range(clients):
        if batch is None:
            bodies.append([_event(run, t, n).encode() for n in range(budget)])
        else:
            bodies.append([
                ('{"events":[' + ",".join(_event(run, t, b * batch + i) for i in range(batch)) + "]}").encode()
                for b in range(budget)
            ])
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    lock = threading.Lock()
    totals = {"requests": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "errors": 0, "status_5xx": 0, "exhausted": 0}
    latencies: list[float] = []
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(t: int) -> None:
        session = requests.Session()
        mine = {k: 0 for k in totals}
        lat: list[float] = []
        start_gate.wait()
        for body in bodies[t]:
            if time.perf_counter() >= stop_at[0]:
                break
            began = time.perf_counter()
            try:
                response = session.post(f"{url}/api/v1/events", data=body, headers=headers, timeout=30)
            except requests.RequestException:
                mine["errors"] += 1
                continue
            lat.append(time.perf_counter() - began)
            mine["requests"] += 1
            if response.status_code >= 500:
                mine["status_5xx"] += 1
            if response.status_code != 200:
                mine["errors"] += 1
                continue
            data = response.json()
            for k in ("accepted", "duplicates", "rejected"):
                mine[k] += data[k]
        else:
            mine["exhausted"] += 1
        session.close()
        with lock:
            for k, v in mine.items():
                totals[k] += v
            latencies.extend(lat)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start_gate.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return {
        **totals,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(totals["requests"] / elapsed, 1),
        "events_per_s": round((totals["accepted"] + totals["duplicates"]) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
    }


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError):
        return None


def subscribe_quota(database_url: str) -> None:
    """A hard limit on the bench's events for all its customers; the server picks the change up
    within a second (its pricing setup is reloaded after another process's change)."""
    from metering import metrics, plan_store, store

    engine = store.make_engine(database_url)
    try:
        metrics.create_metric(engine, data={"name": "Token cap", "code": "token_cap", "unit": "tokens",
                                            "metric_type": "limit_metered", "event_name": "llm.tokens",
                                            "aggregation": "sum", "value_property": "tokens"})
        plan_store.save_plan(engine, plan={"code": "capped", "name": "Capped", "currency": "USD",
                                           "quotas": [{"metric": "token_cap", "limit": "1000000000000"}]})
        for n in range(50):
            plan_store.set_subscription(engine, customer_id=f"cus_{n:03d}", plan_code="capped")
    finally:
        engine.dispose()
    time.sleep(1.5)


def stored_events(database_url: str) -> int:
    from metering import store

    engine = store.make_engine(database_url)
    try:
        return store.event_count(engine)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--url", help="a running server (default: start one on a temporary store)")
    parser.add_argument("--key", help="its API key (with --url)")
    parser.add_argument("--quota", action="store_true", help="subscribe every customer to a hard limit on the events sent")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        server_pid: int | None = None
        if args.url:
            url, key, database_url = args.url.rstrip("/"), args.key or "", None
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-api-")))
            server = stack.enter_context(running_server(tmp))
            url, key, database_url, server_pid = server.base_url, server.api_key, server.database_url, server.pid
        if args.quota:
            if database_url is None:
                parser.error("--quota needs the bench's own server (no --url)")
            subscribe_quota(database_url)
        run = f"{time.time_ns():x}"
        load_before = loadavg()
        # warm-up: first request opens the store, first batch loads code paths
        warm = run_phase(url, key, clients=2, seconds=1.0, batch=None, run=run + "w", budget=200)
        cpu0 = process_cpu_seconds(server_pid)
        single = run_phase(url, key, clients=args.clients, seconds=args.seconds, batch=None, run=run + "s",
                           budget=int(args.seconds * 3000 / args.clients) + 100)
        cpu1 = process_cpu_seconds(server_pid)
        batched = run_phase(url, key, clients=args.clients, seconds=args.seconds, batch=args.batch, run=run + "b",
                            budget=int(args.seconds * 150_000 / args.batch / args.clients) + 4)
        cpu2 = process_cpu_seconds(server_pid)
        acknowledged = warm["accepted"] + single["accepted"] + batched["accepted"]
        stored = stored_events(database_url) if database_url else None
        line = {
            "bench": "api",
            "clients": args.clients,
            "seconds": args.seconds,
            "batch": args.batch,
            "single_requests_per_s": single["requests_per_s"],
            "single_p50_ms": single["p50_ms"],
            "single_p99_ms": single["p99_ms"],
            "batched_events_per_s": batched["events_per_s"],
            "batched_requests_per_s": batched["requests_per_s"],
            "batched_p50_ms": batched["p50_ms"],
            "batched_p99_ms": batched["p99_ms"],
            "errors": single["errors"] + batched["errors"],
            "status_5xx": single["status_5xx"] + batched["status_5xx"],
            "prepared_bodies_ran_out": single["exhausted"] + batched["exhausted"] > 0,
            "quota": args.quota,
            "targets_met": single["requests_per_s"] >= TARGET_RPS and batched["events_per_s"] >= TARGET_EPS,
        }
        # The server's own CPU cost, less sensitive than rates to other load on the machine.
        if cpu0 is not None and cpu1 is not None and cpu2 is not None:
            line["server_cpu_ms_per_single_request"] = round((cpu1 - cpu0) * 1000 / max(single["requests"], 1), 3)
            line["server_cpu_us_per_batched_event"] = round((cpu2 - cpu1) * 1e6 / max(batched["accepted"] + batched["duplicates"], 1), 2)
        line["loadavg_1m_before"] = load_before
        line["cpus"] = os.cpu_count()
        line["acknowledged_events"] = acknowledged
        if stored is not None:  # every acknowledged event is stored, once
            line["stored_events"] = stored
            line["stored_matches"] = stored == acknowledged
        print(json.dumps(line))
        return 0 if line["targets_met"] and not line["status_5xx"] else 1


if __name__ == "__main__":
    sys.exit(main())
