"""The one interface every event engine answers, and the shapes of its answers.

Billing, previews, usage, timelines, invoices, the API and the CLI read events only through
:class:`Events`. Two engines implement it: the embedded columnar engine
(`metering.engine.frame.EventFrame`, numpy/pyarrow over memory-mapped segments) and ClickHouse
(`metering.engine.clickhouse`, every answer computed in SQL). An engine answers aggregates, never
rows, except where a method says it returns a bounded number of them.

Times are epoch microseconds (int) or aware datetimes; windows are `[start, end)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from metering.models import MetricBase
from metering.values import decimal_str

if TYPE_CHECKING:  # pandas is imported where a DataFrame is made, not to open the engine
    import pandas as pd

Instant = datetime | int | None
Window = tuple[datetime, datetime]


@dataclass(frozen=True)
class GroupResult:
    group: dict[str, str | None]
    value: Decimal
    events: int
    skipped: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "value": decimal_str(self.value)}


@dataclass(frozen=True)
class AggregateResult:
    """A metric over a window (contract §2): value, events, skipped (with reasons), groups."""

    metric: str
    aggregation: str
    value: Decimal
    events: int
    skipped: int
    skip_reasons: dict[str, int] = field(default_factory=dict)
    groups: list[GroupResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": decimal_str(self.value),
            "events": self.events,
            "skipped": self.skipped,
            "groups": [g.to_json() for g in self.groups],
        }


@dataclass(frozen=True)
class WindowUsage:
    """A metric per (customer, window) of a contiguous chain of windows, in one pass.

    Arrays are indexed [customer position, window]. `values[c][w]` is the aggregate of the
    events assigned to window w (None: no value there). With `since_ever`, events before the
    chain's start are assigned to window 0, and a unique_count value counts only in the window
    where the customer first used it, so running totals come out by adding windows up.
    `period_events` counts only events inside each window's own [start, end)."""

    values: list[list[Decimal | None]]
    events: np.ndarray
    skipped: np.ndarray
    period_events: np.ndarray


@dataclass(frozen=True)
class LimitRow:
    """A hard quota (limit_metered) over one customer's window: events taken in time order,
    then store order; an event that would break the limit is rejected (contract §3)."""

    usage: Decimal
    events: int
    skipped: int
    rejected: int


@dataclass(frozen=True)
class Explanation:
    """What the editor writes out for a metric over a window (bounded: k values at most)."""

    result: AggregateResult
    first_values: list[Decimal]  # sum/max/min: the first k numeric values in store order
    more_values: bool
    first_distinct: list[str]  # unique_count: the first k distinct values in store order
    latest_ts: int | None  # latest: the winning event's time and customer
    latest_customer: str | None


@dataclass(frozen=True)
class EventQuery:
    """A filter of the stored-events browser (dates are UTC days, `end` included)."""

    event_name: str | None = None
    customer_id: str | None = None
    start: date | None = None
    end: date | None = None
    import_id: int | None = None


@runtime_checkable
class Events(Protocol):
    """The events an engine holds, and every question billing and the app ask of them."""

    def __len__(self) -> int: ...

    # ---- what is there
    def time_bounds(self, event_name: str | None = None) -> tuple[int, int] | None: ...
    def customer_ids(self) -> list[str]: ...
    def first_event_us(self, customer_ids: Sequence[str] | None = None) -> dict[str, int]: ...
    def event_name_counts(self) -> list[tuple[str, int]]: ...
    def sample_properties(self, event_name: str | None = None, n: int = 2000) -> list[str]: ...

    # ---- contract §2
    def aggregate(self, metric: MetricBase, *, start: Instant = None, end: Instant = None,
                  customer_ids: Sequence[str] | None = None) -> AggregateResult: ...
    def aggregate_by_customer(self, metric: MetricBase, *, start: Instant = None, end: Instant = None,
                              customer_ids: Sequence[str] | None = None) -> dict[str, AggregateResult]: ...
    def explain(self, metric: MetricBase, *, start: Instant = None, end: Instant = None, k: int = 5) -> Explanation: ...

    # ---- contract §3
    def window_usage(self, metric: MetricBase, chain: Sequence[Window], customer_ids: Sequence[str], *,
                     since_ever: bool = False) -> WindowUsage: ...
    def limit_usage(self, metric: MetricBase, chain: Sequence[Window], customer_ids: Sequence[str],
                    limit: Decimal) -> dict[tuple[int, int], LimitRow]: ...

    # ---- the app
    def daily_usage(self, metric: MetricBase, *, start: Instant = None, end: Instant = None,
                    customer_ids: Sequence[str] | None = None, split_by: str | None = None) -> pd.DataFrame: ...
    def count_events(self, query: EventQuery) -> int: ...
    def browse(self, query: EventQuery, *, limit: int, offset: int) -> pd.DataFrame: ...
    def find_event(self, key: str) -> dict[str, Any] | None:
        """The one event with this idempotency key: event_name, customer_id, ts_us,
        idempotency_key, properties (JSON text), import_id (None: none); None if there is none."""
        ...


@dataclass(frozen=True)
class Stored:
    """What a write added: events, and of those, how many are dated after a given instant."""

    added: int
    future: int = 0


class EventWriter(Protocol):
    """Where events are written (the embedded store, or ClickHouse). Every write obeys contract
    §1: duplicates (a key already stored, or repeated in the write) are skipped and counted,
    a write counts on its import record (import_batch, in the SQL store) as it lands, and a
    batch is stored whole or not at all as far as the engine allows."""

    def store(self, batch: Any, *, import_id: int | None, rejected: int = 0,
              future_after_us: int | None = None) -> Stored: ...
    def insert_rows(self, rows: Sequence[tuple[str, str, int, str, str]], *, import_id: int | None,
                    rejected: int = 0, future_after_us: int | None = None) -> Stored: ...
    def delete_import(self, import_id: int) -> int: ...
    def delete_event(self, key: str) -> bool: ...
    def delete_all(self) -> None: ...
