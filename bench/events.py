"""The benchmarks' events: N realistic LLM-token events (1,000 customers, October 2026) as CSV."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metering import simulate  # noqa: E402


def write_events_csv(directory: Path, *, events: int, seed: int) -> tuple[pd.DataFrame, Path]:
    """Simulate exactly `events` events and write them to directory/events.csv."""
    spec = simulate.template_spec(
        "llm_tokens", customers=1000, start=datetime(2026, 10, 1, tzinfo=timezone.utc),
        days=30, daily_volume=max(1, -(-events // 30)), seed=seed,
    )
    df = simulate.simulate(spec).head(events)
    path = Path(directory) / "events.csv"
    simulate.to_csv(df, path)
    return df, path
