"""The benchmarks' metric and plan (shared by bench/run.py and its fresh-process probes)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metering.models import MetricCreate  # noqa: E402
from metering.plans import Plan  # noqa: E402

METRIC = MetricCreate(
    name="LLM Tokens", code="llm_tokens", unit="tokens", event_name="llm.tokens",
    aggregation="sum", value_property="tokens",
    filters={"model": ["gpt-4o", "claude-sonnet"]}, group_by=["region"],
)
# The same aggregation in SQL (DuckDB on the CSV file): sum of tokens, model filter, by region.
DUCKDB_QUERY = (
    "SELECT region, sum(tokens) FROM events WHERE event_name = 'llm.tokens'"
    " AND model IN ('gpt-4o', 'claude-sonnet') GROUP BY region"
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
DAILY_PLAN = Plan.model_validate({**PLAN.model_dump(mode="json"), "code": "bench_daily", "interval": "day"})
