"""Per-day usage (metering.usage_series): every day's value is the aggregation over that day's
window alone, checked against aggregation.aggregate for each aggregation type."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from metering import aggregation, ingest, usage_series
from metering.frame import EventFrame
from metering.models import MetricCreate

SAMPLES = Path(__file__).resolve().parents[1] / "sample_events"
OCT1 = datetime(2026, 10, 1, tzinfo=UTC)


def frame_of(*names: str) -> EventFrame:
    parsed = ingest.ParsedEvents()
    for name in names:
        parsed.extend(ingest.read_events(SAMPLES / name))
    return EventFrame.from_parsed(parsed)


def metric(**fields) -> MetricCreate:
    base = {"name": "m", "code": "m", "unit": "u"}
    base.update(fields)
    return MetricCreate(**base)


METRICS = {
    "count": metric(event_name="api.request", aggregation="count", group_by=["endpoint"]),
    "count_filtered": metric(event_name="api.request", aggregation="count", filters={"method": ["GET", "POST"]}, group_by=["region"]),
    "sum": metric(event_name="llm.tokens", aggregation="sum", value_property="tokens", group_by=["model"]),
    "sum_decimal": metric(event_name="worker.run", aggregation="sum", value_property="duration_ms", group_by=["worker"]),
    "max": metric(event_name="storage.snapshot", aggregation="max", value_property="gb", group_by=["bucket"]),
    "min": metric(event_name="storage.snapshot", aggregation="min", value_property="gb", group_by=["region"]),
    "unique_count": metric(event_name="user.active", aggregation="unique_count", distinct_by="user_id", group_by=["plan"]),
    "latest": metric(event_name="storage.snapshot", aggregation="latest", value_property="gb", group_by=["bucket"]),
}


@pytest.fixture(scope="module")
def frame() -> EventFrame:
    return frame_of("api_requests.csv", "llm_tokens.csv", "worker_duration.csv", "storage_gb.csv", "unique_users.csv")


def day_window(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


@pytest.mark.parametrize("key", list(METRICS))
def test_each_day_equals_aggregate_over_that_day(frame, key):
    m = METRICS[key]
    end = datetime(2026, 11, 1, tzinfo=UTC)
    daily = usage_series.daily_usage(frame, m, start=OCT1, end=end)
    assert list(daily.columns) == ["day", "value", "events", "skipped"]
    assert list(daily["day"]) == [date(2026, 10, 1) + timedelta(days=i) for i in range(31)]
    for row in daily.itertuples():
        ref = aggregation.aggregate(frame, m, start=day_window(row.day)[0], end=day_window(row.day)[1])
        assert (row.value, row.events, row.skipped) == (ref.value, ref.events, ref.skipped), row.day
    total = aggregation.aggregate(frame, m, start=OCT1, end=end)
    assert daily["events"].sum() == total.events
    if usage_series.is_additive(m):
        assert sum(daily["value"], Decimal(0)) == total.value


@pytest.mark.parametrize("key", list(METRICS))
def test_split_by_first_label_equals_aggregate_groups(frame, key):
    m = METRICS[key]
    label = m.group_by[0]
    daily = usage_series.daily_usage(frame, m, start=OCT1, end=datetime(2026, 10, 8, tzinfo=UTC), split_by=label)
    assert list(daily.columns) == ["day", "group", "value", "events", "skipped"]
    for day, rows in daily.groupby("day"):
        ref = aggregation.aggregate(frame, m, start=day_window(day)[0], end=day_window(day)[1])
        expected = {(g.group[label] if g.group[label] is not None else usage_series.NULL_GROUP): (g.value, g.events) for g in ref.groups}
        got = {r.group: (r.value, r.events) for r in rows.itertuples() if r.events}
        assert got == expected, day
        assert rows.loc[rows["events"] == 0, "value"].tolist() == [Decimal(0)] * int((rows["events"] == 0).sum())


def test_customers_filter(frame):
    m = METRICS["sum"]
    some = ["cus_001", "cus_003"]
    daily = usage_series.daily_usage(frame, m, start=OCT1, end=datetime(2026, 11, 1, tzinfo=UTC), customer_ids=some)
    total = aggregation.aggregate(frame, m, start=OCT1, end=datetime(2026, 11, 1, tzinfo=UTC), customer_ids=some)
    assert sum(daily["value"], Decimal(0)) == total.value
    assert daily["events"].sum() == total.events


def test_days_without_events_are_zero_and_open_window_uses_event_days(frame):
    m = METRICS["sum"]
    daily = usage_series.daily_usage(frame, m, start=datetime(2026, 9, 29, tzinfo=UTC), end=datetime(2026, 10, 3, tzinfo=UTC))
    assert list(daily["day"]) == [date(2026, 9, 29), date(2026, 9, 30), date(2026, 10, 1), date(2026, 10, 2)]
    assert list(daily["value"][:2]) == [Decimal(0), Decimal(0)] and list(daily["events"][:2]) == [0, 0]
    open_window = usage_series.daily_usage(frame, m)
    assert open_window["day"].iloc[0] == date(2026, 10, 1) and open_window["day"].iloc[-1] == date(2026, 10, 31)
    no_fill = usage_series.daily_usage(frame, m, start=datetime(2026, 9, 29, tzinfo=UTC), end=datetime(2026, 10, 3, tzinfo=UTC), fill=False)
    assert list(no_fill["day"]) == [date(2026, 10, 1), date(2026, 10, 2)]


def test_no_events():
    m = METRICS["count"]
    empty = EventFrame.empty()
    assert usage_series.daily_usage(empty, m).empty
    zeros = usage_series.daily_usage(empty, m, start=OCT1, end=datetime(2026, 10, 3, tzinfo=UTC))
    assert list(zeros["value"]) == [Decimal(0), Decimal(0)] and list(zeros["events"]) == [0, 0]
    assert usage_series.daily_usage(empty, m, start=OCT1, end=OCT1).empty
    split = usage_series.daily_usage(empty, m, start=OCT1, end=datetime(2026, 10, 3, tzinfo=UTC), split_by="endpoint")
    assert split.empty and list(split.columns) == ["day", "group", "value", "events", "skipped"]


def rows_frame(events: list[tuple[str, int, str]]) -> EventFrame:
    return EventFrame.from_rows([(i + 1, "e", cust, ts, props) for i, (cust, ts, props) in enumerate(events)])


def test_latest_ties_missing_values_and_null_group():
    day = 1_790_985_600_000_000  # 2026-10-03T00:00:00Z
    hour = 3_600_000_000
    f = rows_frame([
        ("c1", day + hour, '{"v":5,"g":"a"}'),
        ("c1", day + hour, '{"v":7,"g":"a"}'),  # same time, stored later: wins
        ("c1", day + 2 * hour, '{"g":"a"}'),  # missing value: skipped, not latest
        ("c2", day + 86_400_000_000, '{"v":"x"}'),  # next day, not a number, no group
        ("c2", day + 86_400_000_000 + hour, '{"v":"1.5"}'),
    ])
    m = metric(event_name="e", aggregation="latest", value_property="v", group_by=["g"])
    daily = usage_series.daily_usage(f, m)
    assert [(r.day, r.value, r.events, r.skipped) for r in daily.itertuples()] == [
        (date(2026, 10, 3), Decimal(7), 3, 1),
        (date(2026, 10, 4), Decimal("1.5"), 2, 1),
    ]
    split = usage_series.daily_usage(f, m, split_by="g")
    assert [(r.day, r.group, r.value, r.events) for r in split.itertuples()] == [
        (date(2026, 10, 3), "a", Decimal(7), 3),
        (date(2026, 10, 3), "null", Decimal(0), 0),
        (date(2026, 10, 4), "a", Decimal(0), 0),
        (date(2026, 10, 4), "null", Decimal("1.5"), 2),
    ]


def test_sum_is_exact():
    f = rows_frame([("c", 1_790_985_600_000_000 + i, f'{{"v":{v}}}') for i, v in enumerate(["0.1", "0.2", "0.000000001"])])
    daily = usage_series.daily_usage(f, metric(event_name="e", aggregation="sum", value_property="v"))
    assert daily["value"].tolist() == [Decimal("0.300000001")]


def test_window_of_month():
    assert usage_series.window_of_month(1_790_985_600_000_000) == (OCT1, datetime(2026, 11, 1, tzinfo=UTC))
    dec = int((datetime(2026, 12, 31, 23, 59, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000
    assert usage_series.window_of_month(dec) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
