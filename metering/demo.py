"""The demo workspace: what a salesperson loads in one click to show the workbench.

Pure Python (no Streamlit). It holds:

- :func:`workspace_document`: a workspace file (contract §5) with the quick-template metrics
  (API Requests, LLM Tokens grouped by model, Storage GB, Unique Users), a Payments metric for
  the percentage model, and **SMS Credits**, a ``limit_recurring`` count of ``sms.sent``; three
  monthly USD plans (Starter, Growth, Scale) that between them use every charge model
  (standard, graduated, volume, package, percentage), a base fee, seats as fixed charges,
  included credit and an SMS quota; and a subscription for every demo customer.
- :func:`usage_frames`: three months of simulated events (``metering.simulate``, vectorised,
  deterministic for a given ``now``) for the usage metrics, about 75,000 events. The history
  ends now: it runs from the first day of the month two months before the current one to
  ``now`` (:func:`span`), so a sales demo never shows a month that has not happened.
- :func:`sms_frame`: the SMS stream over the same span. Customer ``cus_unibee`` sends exactly
  700 SMS in the first month, 900 in the second and 450 over a whole third month (the current
  month holds the part of it up to now), and is on Starter (quota 1,000, no carryover cap), so
  its timeline is UniBee's worked example: available 1,000 → 1,300 → 1,400. With ``now`` =
  :data:`SAMPLE_NOW` (three whole months, October–December 2026) it is
  ``sample_events/sms_credits.csv`` (:func:`sms_csv_text`).
- :func:`load_demo`: replaces the store's metrics, plans, subscriptions, timezone and events
  with the demo (the whole document is validated before anything is deleted).

Run ``python -m metering.demo`` to rewrite ``sample_events/sms_credits.csv``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from metering import importing, simulate, store
from metering.workspace import Workspace, import_workspace, parse_workspace

SEED = 2026
SAMPLE_NOW = datetime(2027, 1, 1, tzinfo=UTC)  # the sample file's "now": October–December 2026, whole
SOURCE = "demo workspace"
SMS_EVENT = "sms.sent"
SMS_FILE = Path(__file__).resolve().parent.parent / "sample_events" / "sms_credits.csv"

# The simulated customers (cus_001 … cus_010 of metering.simulate, renamed) and their plans.
CUSTOMERS: dict[str, str] = {
    "cus_acme": "growth",
    "cus_globex": "scale",
    "cus_hooli": "scale",
    "cus_initech": "starter",
    "cus_soylent": "starter",
    "cus_stark": "growth",
    "cus_tyrell": "growth",
    "cus_umbrella": "scale",
    "cus_wayne": "starter",
    "cus_wonka": "starter",
}
UNIBEE = "cus_unibee"  # UniBee's carryover example; on Starter, sends SMS only

# SMS sent per customer in the span's three months (the third one's whole-month count: the
# current month holds its share up to now). Exact counts.
SMS_COUNTS: dict[str, tuple[int, int, int]] = {
    UNIBEE: (700, 900, 450),
    "cus_wonka": (820, 1450, 640),  # Starter: 180 carried into November, then 270 over
    "cus_wayne": (150, 90, 210),
    "cus_acme": (1100, 1400, 1250),  # Growth: quota 5,000
}

# (simulate template or custom stream, events per day over all customers)
STREAMS: dict[str, int] = {
    "api_requests": 450,
    "llm_tokens": 150,
    "storage_gb": 40,
    "unique_users": 120,
    "payments": 60,
}


@dataclass(frozen=True)
class Span:
    """The demo's history: [start, end) where end is "now" and start the first day (00:00 UTC)
    of the month two months before the month of the last instant before now."""

    start: datetime
    end: datetime
    months: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

    @property
    def days(self) -> int:
        """Days from start to the day of the last instant before end, both included."""
        return ((self.end - timedelta(microseconds=1)).date() - self.start.date()).days + 1

    @property
    def last_day(self) -> datetime:
        return datetime.combine((self.end - timedelta(microseconds=1)).date(), datetime.min.time(), tzinfo=UTC)


def span(now: datetime | None = None) -> Span:
    """The three months of demo history that end at ``now`` (default: the current time)."""
    end = (now or datetime.now(UTC)).astimezone(UTC)
    last = end - timedelta(microseconds=1)
    count = last.year * 12 + last.month - 1
    months = tuple(((count - k) // 12, (count - k) % 12 + 1) for k in (2, 1, 0))
    start = datetime(months[0][0], months[0][1], 1, tzinfo=UTC)
    return Span(start, end, months)  # type: ignore[arg-type]


def _tiers(*rows: tuple[str | None, str] | tuple[str | None, str, str]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        tier: dict[str, Any] = {"up_to": row[0], "unit_price": row[1]}
        if len(row) > 2:
            tier["flat_fee"] = row[2]
        out.append(tier)
    return out


def metric_documents() -> list[dict[str, Any]]:
    return [
        {"name": "API Requests", "code": "api_requests", "description": "Track API calls", "unit": "requests",
         "metric_type": "charge_metered", "event_name": "api.request", "aggregation": "count",
         "group_by": ["endpoint"]},
        {"name": "LLM Tokens", "code": "llm_tokens", "description": "Track token usage", "unit": "tokens",
         "metric_type": "charge_metered", "event_name": "llm.tokens", "aggregation": "sum",
         "value_property": "tokens", "group_by": ["model"]},
        {"name": "Storage GB", "code": "storage_gb", "description": "Peak storage in the period", "unit": "GB",
         "metric_type": "charge_metered", "event_name": "storage.snapshot", "aggregation": "max",
         "value_property": "gb", "group_by": ["bucket"]},
        {"name": "Unique Users", "code": "unique_users", "description": "Monthly active users", "unit": "users",
         "metric_type": "charge_metered", "event_name": "user.active", "aggregation": "unique_count",
         "distinct_by": "user_id"},
        {"name": "Payments", "code": "payments", "description": "Payment volume processed", "unit": "USD",
         "metric_type": "charge_metered", "event_name": "payment.succeeded", "aggregation": "sum",
         "value_property": "amount", "group_by": ["method"]},
        {"name": "SMS Credits", "code": "sms_credits", "description": "Prepaid SMS credits; unused credits carry over",
         "unit": "sms", "metric_type": "limit_recurring", "event_name": SMS_EVENT, "aggregation": "count",
         "group_by": ["country"]},
    ]


def plan_documents() -> list[dict[str, Any]]:
    return [
        {
            "code": "starter", "name": "Starter", "currency": "USD", "interval": "month",
            "base_fee": "49", "included_credit": "10",
            "fixed_charges": [{"name": "Seats", "quantity": "3", "unit_price": "15"}],
            "charges": [
                {"metric": "api_requests", "model": "standard", "free_units": "1000", "unit_price": "0.01"},
                {"metric": "llm_tokens", "model": "package", "package_size": "100000", "package_price": "4"},
                {"metric": "storage_gb", "model": "standard", "free_units": "10", "unit_price": "0.10"},
                {"metric": "unique_users", "model": "graduated",
                 "tiers": _tiers(("50", "0"), ("200", "0.50"), (None, "0.40"))},
                {"metric": "payments", "model": "percentage", "rate": "2.9", "fixed_fee": "0.30"},
            ],
            "quotas": [{"metric": "sms_credits", "limit": "1000", "overage_unit_price": "0.02"}],
        },
        {
            "code": "growth", "name": "Growth", "currency": "USD", "interval": "month",
            "base_fee": "199", "included_credit": "50",
            "fixed_charges": [{"name": "Seats", "quantity": "10", "unit_price": "12"}],
            "charges": [
                {"metric": "api_requests", "model": "graduated",
                 "tiers": _tiers(("10000", "0.008"), ("100000", "0.006"), (None, "0.004"))},
                {"metric": "llm_tokens", "model": "volume",
                 "tiers": _tiers(("1000000", "0.000035"), ("5000000", "0.00003"), (None, "0.000025"))},
                {"metric": "storage_gb", "model": "standard", "free_units": "50", "unit_price": "0.08"},
                {"metric": "unique_users", "model": "volume",
                 "tiers": _tiers(("100", "0", "40"), (None, "0.35"))},
                {"metric": "payments", "model": "percentage", "rate": "2.5", "fixed_fee": "0.25"},
            ],
            "quotas": [{"metric": "sms_credits", "limit": "5000", "max_carryover": "2500",
                        "overage_unit_price": "0.015"}],
        },
        {
            "code": "scale", "name": "Scale", "currency": "USD", "interval": "month",
            "base_fee": "799", "included_credit": "200",
            "fixed_charges": [{"name": "Seats", "quantity": "25", "unit_price": "10"},
                              {"name": "Premium support", "quantity": "1", "unit_price": "250"}],
            "charges": [
                {"metric": "api_requests", "model": "volume",
                 "tiers": _tiers(("50000", "0.005"), (None, "0.003"))},
                {"metric": "llm_tokens", "model": "graduated", "free_units": "500000",
                 "tiers": _tiers(("2000000", "0.00003"), (None, "0.00002"))},
                {"metric": "storage_gb", "model": "package", "package_size": "100", "package_price": "6"},
                {"metric": "unique_users", "model": "standard", "free_units": "100", "unit_price": "0.30"},
                {"metric": "payments", "model": "percentage", "rate": "2.2", "fixed_fee": "0.20"},
            ],
            "quotas": [{"metric": "sms_credits", "limit": "20000", "max_carryover": "10000",
                        "overage_unit_price": "0.01"}],
        },
    ]


def workspace_document(now: datetime | None = None) -> dict[str, Any]:
    """The demo as a workspace file (contract §5); every subscription starts on the first day
    of the demo's history (:func:`span`)."""
    start = f"{span(now).start:%Y-%m-%d}"
    subscriptions = [
        {"customer_id": cid, "plan": plan, "start": start}
        for cid, plan in sorted({**CUSTOMERS, UNIBEE: "starter"}.items())
    ]
    return {"timezone": "UTC", "metrics": metric_documents(), "plans": plan_documents(),
            "subscriptions": subscriptions}


def workspace(now: datetime | None = None) -> Workspace:
    return parse_workspace(workspace_document(now))


# --- events ---------------------------------------------------------------------------------


def _payments_spec(daily_volume: int, history: Span) -> simulate.SimulationSpec:
    return simulate.SimulationSpec(
        event_name="payment.succeeded",
        customers=len(CUSTOMERS),
        start=history.start,
        days=history.days,
        daily_volume=daily_volume,
        shape="growth",
        seed=SEED,
        timestamp_precision="s",
        properties=(
            simulate.PropertySpec("amount", kind="decimal", dist="lognormal", mean=80, sigma=0.9,
                                  decimals=2, low=1, high=5000),
            simulate.PropertySpec("method", kind="choice", values=("card", "ach", "wallet"),
                                  weights=(0.7, 0.18, 0.12)),
        ),
    )


def _spec(stream: str, daily_volume: int, history: Span) -> simulate.SimulationSpec:
    if stream == "payments":
        return _payments_spec(daily_volume, history)
    return simulate.template_spec(stream, customers=len(CUSTOMERS), start=history.start, days=history.days,
                                  daily_volume=daily_volume, seed=SEED, timestamp_precision="s")


def _until(df: pd.DataFrame, end: datetime) -> pd.DataFrame:
    """The events before ``end`` (the simulator fills whole days; today's rest is the future)."""
    return df[pd.to_datetime(df["timestamp"], utc=True, format="ISO8601") < end].reset_index(drop=True)


def _renamed(df: pd.DataFrame) -> pd.DataFrame:
    names = sorted(CUSTOMERS)
    width = max(3, len(str(len(names))))
    mapping = {f"cus_{i:0{width}d}": name for i, name in enumerate(names, start=1)}
    out = df.copy()
    out["customer_id"] = out["customer_id"].map(mapping)
    return out


def usage_frames(now: datetime | None = None) -> list[pd.DataFrame]:
    """Simulated events of the usage metrics, one frame per stream, over :func:`span`."""
    history = span(now)
    return [_until(_renamed(simulate.simulate(_spec(stream, volume, history))), history.end)
            for stream, volume in STREAMS.items()]


def sms_counts(now: datetime | None = None) -> dict[str, tuple[int, int, int]]:
    """SMS per customer in each month of :func:`span`: :data:`SMS_COUNTS`, the current month's
    cut to the share of it that has passed (whole months keep their counts)."""
    history = span(now)
    year, month = history.months[2]
    first = datetime(year, month, 1, tzinfo=UTC)
    whole = (datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC) - first).total_seconds()
    passed = min((history.end - first).total_seconds(), whole)
    return {cid: (a, b, int(c * passed // whole)) for cid, (a, b, c) in SMS_COUNTS.items()}


def sms_frame(now: datetime | None = None) -> pd.DataFrame:
    """The ``sms.sent`` stream: exactly :func:`sms_counts` events per customer and month, at
    distinct whole seconds spread over each month up to now, sorted by time; property
    ``country``."""
    history = span(now)
    counts = sms_counts(history.end)
    rng = np.random.default_rng(np.random.SeedSequence([SEED, 7]))
    countries = np.array(["US", "GB", "DE", "FR", "BR", "IN"], dtype=object)
    weights = np.array([0.45, 0.15, 0.12, 0.1, 0.1, 0.08])
    parts = []
    for cid in sorted(counts):
        for (year, month), count in zip(history.months, counts[cid]):
            first = datetime(year, month, 1, tzinfo=UTC)
            nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
            seconds = int((min(nxt, history.end) - first).total_seconds())  # whole seconds before now
            offsets = np.sort(rng.choice(seconds, size=min(count, seconds), replace=False))
            stamps = pd.to_datetime(int(first.timestamp()) + offsets, unit="s", utc=True)
            parts.append(pd.DataFrame({
                "event_name": SMS_EVENT,
                "customer_id": cid,
                "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "country": rng.choice(countries, size=len(offsets), p=weights),
            }))
    df = pd.concat(parts, ignore_index=True)
    order = np.lexsort((df["customer_id"].to_numpy(), df["timestamp"].to_numpy()))
    return df.iloc[order].reset_index(drop=True).astype(str)


def sms_csv_text() -> str:
    """``sample_events/sms_credits.csv`` as text: :func:`sms_frame` of three whole months,
    October–December 2026 (:data:`SAMPLE_NOW`)."""
    with tempfile.TemporaryDirectory(prefix="metering-demo-") as tmp:
        path = Path(tmp) / "sms_credits.csv"
        simulate.to_csv(sms_frame(SAMPLE_NOW), path)
        return path.read_text(encoding="utf-8")


def write_sms_csv(path: str | Path = SMS_FILE) -> Path:
    path = Path(path)
    path.write_text(sms_csv_text(), encoding="utf-8")
    return path


# --- loading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSummary:
    metrics: int
    plans: int
    subscriptions: int
    events: int
    duplicates: int
    rejected: int
    seconds: float
    start: datetime | None = None  # the history's first instant
    end: datetime | None = None  # and its end ("now" when it was loaded), excluded


def reset(engine: Engine) -> None:
    """Delete every metric, plan, subscription, setting and event of the store."""
    import_workspace(engine, {"timezone": "UTC"}, replace=True)
    store.delete_all_events(engine)


def load_demo(engine: Engine, *, on_progress: importing.ProgressCallback | None = None,
              now: datetime | None = None) -> DemoSummary:
    """Replace the store's whole workspace (metrics, plans, subscriptions, timezone and
    events) with the demo, its history ending at ``now`` (default: the current time)."""
    began = time.perf_counter()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    ws = workspace(now)  # validated before anything is deleted
    frames = [*usage_frames(now), sms_frame(now)]
    parsed = importing.parse_frames(frames)
    store.delete_all_events(engine)
    import_workspace(engine, ws, replace=True)
    result = importing.store_in_chunks(engine, parsed, source=SOURCE, chunk_size=25_000, on_progress=on_progress)
    return DemoSummary(
        metrics=len(ws.metrics), plans=len(ws.plans), subscriptions=len(ws.subscriptions),
        events=result.accepted, duplicates=result.duplicates, rejected=result.rejected,
        seconds=time.perf_counter() - began, start=span(now).start, end=now,
    )


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SMS_FILE
    print(f"wrote {write_sms_csv(target)} ({len(sms_frame(SAMPLE_NOW))} events)")
