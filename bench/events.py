"""The benchmarks' events: N realistic LLM-token events (1,000 customers) as CSV.

By default the events span 30 days from 2026-10-01 (one month of invoices); ``months=k``
spreads them over the k calendar months from October 2026 instead (the backtest benchmark).
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metering import simulate  # noqa: E402

START = datetime(2026, 10, 1, tzinfo=timezone.utc)


def span_days(months: int | None) -> int:
    """30 (the default), or the days of `months` calendar months from START."""
    if months is None:
        return 30
    total = START.year * 12 + START.month - 1 + months
    end = datetime(total // 12, total % 12 + 1, 1, tzinfo=timezone.utc)
    return (end - START).days


def write_events_csv(directory: Path, *, events: int, seed: int, months: int | None = None) -> tuple[pd.DataFrame, Path]:
    """Simulate exactly `events` events and write them to directory/events.csv."""
    days = span_days(months)
    spec = simulate.template_spec(
        "llm_tokens", customers=1000, start=START,
        days=days, daily_volume=max(1, -(-events // days)), seed=seed,
    )
    df = simulate.simulate(spec).head(events)
    path = Path(directory) / "events.csv"
    simulate.to_csv(df, path)
    return df, path
