"""The benchmarks' events: N realistic LLM-token events (1,000 customers, October 2026) as CSV.

Up to 2M events are simulated in one go; more are simulated a day at a time (the same
spread over 30 days) and appended, so 100M events never sit in memory at once. With
``months=k`` (the backtest benchmark) the events are spread over the k calendar months from
October 2026 instead of 30 days (simulated in one go); the default output is unchanged.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metering import simulate  # noqa: E402

START = datetime(2026, 10, 1, tzinfo=timezone.utc)
DAYS = 30
ONE_GO = 2_000_000


def span_days(months: int | None) -> int:
    """30 (the default), or the days of `months` calendar months from START."""
    if months is None:
        return DAYS
    total = START.year * 12 + START.month - 1 + months
    end = datetime(total // 12, total % 12 + 1, 1, tzinfo=timezone.utc)
    return (end - START).days


def write_events_csv(directory: Path, *, events: int, seed: int, months: int | None = None) -> tuple[pd.DataFrame, Path]:
    """Simulate exactly `events` events and write them to directory/events.csv. Returns the
    events as a DataFrame (≤ 2M events; otherwise only the last day's, to keep memory flat)."""
    path = Path(directory) / "events.csv"
    if events <= ONE_GO or months is not None:
        days = span_days(months)
        spec = simulate.template_spec(
            "llm_tokens", customers=1000, start=START, days=days, daily_volume=max(1, -(-events // days)), seed=seed,
        )
        df = simulate.simulate(spec).head(events)
        simulate.to_csv(df, path)
        return df, path
    per_day = [events // DAYS + (1 if d < events % DAYS else 0) for d in range(DAYS)]
    part = Path(directory) / "day.csv"
    df = pd.DataFrame()
    with open(path, "wb") as out:
        for day, volume in enumerate(per_day):
            spec = simulate.template_spec(
                "llm_tokens", customers=1000, start=START + timedelta(days=day), days=1, daily_volume=volume,
                seed=seed * 1000 + day,
            )
            df = simulate.simulate(spec).head(volume)
            simulate.to_csv(df, part)
            with open(part, "rb") as chunk:
                header = chunk.readline()
                if day == 0:
                    out.write(header)
                while block := chunk.read(64 << 20):
                    out.write(block)
    part.unlink()
    return df, path


def cached_events_csv(directory: Path, *, events: int, seed: int) -> tuple[int, Path]:
    """The CSV for (events, seed) under `directory`, simulated once and kept (the 100M file
    takes minutes to write)."""
    target = Path(directory) / f"llm-{events}-{seed}"
    path = target / "events.csv"
    if not path.exists():
        target.mkdir(parents=True, exist_ok=True)
        write_events_csv(target, events=events, seed=seed)
    return events, path
