"""Benchmark of backtests with live drafts: prints one JSON line.

    python bench/backtest.py [--events 1000000] [--months 12] [--edits 10]

N LLM-token events from bench/events.py's generator spread over 12 months (1,000 customers),
read as `metering backtest --events` reads them, then three monthly plans (a graduated
baseline with a base fee, seats and credit; a volume plan; a standard plan with free units)
backtested over the 12 months for every customer:
  cold_ms            the first backtest: usage of both metrics measured once for all months,
                     36,000 invoices built, plus the figures the page shows (JSON totals,
                     distribution, movers, guardrail, revenue by line)
  draft_update_ms    median over --edits changes of a draft's unit price (a copy of the third
                     plan): the backtest again with that draft instead of the plan, plus the
                     same figures; what the page does after each edit (target ≤ 1,000 ms)
  draft_update_p90_ms
  draft_update_cpu_ms the same edits' median CPU time of this process (what the wall time is on
                     an idle machine; the 2 cores are often shared, see load_average)
  reprice_all_ms     every plan changed at once (usage reused, 3 × 12,000 invoices built)
The draft figures are checked: the draft's totals equal a fresh backtest's without cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from events import write_events_csv  # noqa: E402

from metering import backtest, cli  # noqa: E402
from metering.backtest import analysis, drafts  # noqa: E402
from metering.workspace import parse_workspace  # noqa: E402

WORKSPACE = {
    "timezone": "UTC",
    "metrics": [
        {"name": "LLM Tokens", "code": "llm_tokens", "unit": "tokens", "event_name": "llm.tokens",
         "aggregation": "sum", "value_property": "tokens", "group_by": ["model"]},
        {"name": "LLM Requests", "code": "llm_requests", "unit": "requests", "event_name": "llm.tokens",
         "aggregation": "count"},
    ],
    "plans": [
        {"code": "current", "name": "Current", "currency": "USD", "base_fee": "49", "included_credit": "5",
         "fixed_charges": [{"name": "Seats", "quantity": "5", "unit_price": "12.50"}],
         "charges": [
             {"metric": "llm_tokens", "model": "graduated", "free_units": "10000", "tiers": [
                 {"up_to": "100000", "unit_price": "0.00002"},
                 {"up_to": "1000000", "unit_price": "0.000015", "flat_fee": "1"},
                 {"up_to": None, "unit_price": "0.00001"}]},
             {"metric": "llm_requests", "model": "package", "package_size": "100", "package_price": "0.05"}]},
        {"code": "volume", "name": "Volume", "currency": "USD", "base_fee": "79",
         "charges": [
             {"metric": "llm_tokens", "model": "volume", "tiers": [
                 {"up_to": "500000", "unit_price": "0.000018"}, {"up_to": None, "unit_price": "0.000012"}]},
             {"metric": "llm_requests", "model": "standard", "free_units": "1000", "unit_price": "0.0004"}]},
        {"code": "simple", "name": "Simple", "currency": "USD", "base_fee": "99",
         "charges": [
             {"metric": "llm_tokens", "model": "standard", "free_units": "250000", "unit_price": "0.000016"},
             {"metric": "llm_requests", "model": "standard", "unit_price": "0.0003"}]},
    ],
}


def figures(bt: backtest.Backtest) -> None:
    """What the page computes from a backtest on every run."""
    bt.to_json()
    analysis.revenue_by_line(bt)
    for code in bt.candidates:
        analysis.distribution(bt, code)
        analysis.movers(bt, code)
        analysis.guardrail(bt, code, Decimal(20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    ws = parse_workspace(WORKSPACE)
    with tempfile.TemporaryDirectory(prefix="metering-bench-") as tmp:
        df, path = write_events_csv(Path(tmp), events=args.events, seed=args.seed, months=args.months)
        t = time.perf_counter()
        frame = cli.read_event_files([str(path)])
        read_s = time.perf_counter() - t
    months = backtest.month_range("2026-10", backtest.label(_month_after("2026-10", args.months - 1)))
    plans = list(ws.plans)
    cache = backtest.BacktestCache()

    t = time.perf_counter()
    bt = backtest.run(frame, ws, plans, months, cache=cache)
    figures(bt)
    cold_ms = (time.perf_counter() - t) * 1000
    invoices = bt.invoice_count()

    draft_data = drafts.duplicate(plans[2], [p.code for p in plans])
    types = {m.code: m.metric_type.value for m in ws.metrics}
    times, cpu, last = [], [], None
    for i in range(args.edits):
        draft_data["charges"][0]["unit_price"] = f"0.0000{16 + i}"
        t, c = time.perf_counter(), time.process_time()
        draft = drafts.draft_plan(draft_data, types, [p.code for p in plans])
        last = backtest.run(frame, ws, [plans[0], plans[1], draft], months, cache=cache)
        figures(last)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    fresh = backtest.run(frame, ws, [plans[0], plans[1], draft], months)
    assert last is not None and last.totals == fresh.totals and last.to_json() == fresh.to_json()

    changed = [p.model_copy(update={"base_fee": p.base_fee + 1}) for p in plans]
    t = time.perf_counter()
    figures(backtest.run(frame, ws, changed, months, cache=cache))
    reprice_ms = (time.perf_counter() - t) * 1000

    print(json.dumps({
        "events": len(df),
        "customers": len(bt.customers),
        "months": len(months),
        "plans": len(plans),
        "invoices": invoices,
        "read_events_s": round(read_s, 1),
        "cold_ms": round(cold_ms),
        "draft_update_ms": round(statistics.median(times), 1),
        "draft_update_p90_ms": round(sorted(times)[max(0, int(len(times) * 0.9) - 1)], 1),
        "draft_update_cpu_ms": round(statistics.median(cpu), 1),
        "load_average": round(os.getloadavg()[0], 2),
        "reprice_all_ms": round(reprice_ms),
        "baseline_total": str(bt.totals[plans[0].code]),
    }))


def _month_after(first: str, n: int) -> tuple[int, int]:
    year, month = backtest.parse(first)
    total = year * 12 + month - 1 + n
    return total // 12, total % 12 + 1


if __name__ == "__main__":
    main()
