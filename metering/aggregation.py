"""Aggregation of a metric over a window of events (contract §2), on any event engine.

The engine computes (`Events.aggregate`: the embedded columnar engine in
metering.engine.columnar.aggregate, or ClickHouse in SQL); this module is the one name callers
use, with the result shapes and the skip reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from metering.engine.columnar.aggregate import SKIP_REASONS, value_path
from metering.engine.interface import AggregateResult, Events, GroupResult
from metering.models import Aggregation, MetricBase

__all__ = [
    "ADDITIVE", "AggregateResult", "GroupResult", "SKIP_REASONS", "aggregate", "aggregate_by_customer", "value_path",
]

# Aggregations whose total over all events is the sum of their group values.
ADDITIVE = (Aggregation.count, Aggregation.sum)


def aggregate(
    events: Events,
    metric: MetricBase,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    customer_ids: Sequence[str] | None = None,
) -> AggregateResult:
    """The metric's value over [start, end), with its groups and skipped events."""
    return events.aggregate(metric, start=start, end=end, customer_ids=customer_ids)


def aggregate_by_customer(
    events: Events,
    metric: MetricBase,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    customer_ids: Sequence[str] | None = None,
) -> dict[str, AggregateResult]:
    """One result per customer with matching events (customers without any are left out)."""
    return events.aggregate_by_customer(metric, start=start, end=end, customer_ids=customer_ids)
