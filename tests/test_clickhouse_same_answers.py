"""The same answers from ClickHouse (on chdb) as from the embedded engine (issue 10, point 4).

Hypothesis generates nasty events (tests/test_properties.py's strategies: numbers in and out of
range, numeric strings with Unicode white space, booleans, objects, arrays, literal dotted keys
beside nested ones, ties in time, repeated events) and metrics with filters and groups; the
events are stored in the embedded engine, then the very same stored events (keys, seq, import)
are copied into a ClickHouse events table, some of them twice (a retried insert: FINAL must
collapse them before any merge). Then `aggregate`, `aggregate_by_customer`, `explain`, invoices
(metering.invoices over a workspace with a plan and subscriptions) and timelines
(metering.billing.timeline: all four metric types, the limit_metered walk, carryover) must be
identical; daily usage too.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metering import billing, ingest, invoices
from metering.engine.clickhouse import paths as chpaths
from metering.engine.clickhouse.connection import ChdbClient
from metering.engine.clickhouse.reads import ClickHouseEvents
from metering.engine.clickhouse.schema import events_source, migrate, table_name
from metering.frame import EventFrame
from metering.models import MetricCreate
from metering.workspace import parse_workspace
from tests.test_clickhouse_reads import copy_events
from tests.test_properties import BASE, metrics, raw_events, records_of, windows

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
           HealthCheck.function_scoped_fixture]
SAME = settings(max_examples=30, deadline=None, suppress_health_check=_HEALTH)


@pytest.fixture(scope="module")
def ch(chdb_dir: str) -> Any:
    client = ChdbClient(chdb_dir, database="same_answers")
    client.command("DROP DATABASE IF EXISTS same_answers")
    migrate(client)
    yield client
    client.command("DROP DATABASE IF EXISTS same_answers")


def keep_paths(ch: Any, wanted: Any) -> None:
    """What the writer's keep_paths does (tests hold no SQL store lock)."""
    have = chpaths.stored(ch, ch.database)
    chpaths.add_columns(ch, ch.database, [p for p in dict.fromkeys(wanted) if p not in have])
    chpaths.backfill(ch, ch.database, chpaths.lacking(ch, ch.database, list(wanted)), chpaths.table_columns(ch, ch.database))


def stored(ch: Any, raw: list[Any], twice: list[int], columns: bool = False) -> tuple[EventFrame, ClickHouseEvents]:
    """The events stored by the embedded engine, and the same stored events in ClickHouse.
    With `columns`, reads give the paths they read columns (`paths`) as the app does; rows
    inserted afterwards (`again`) lack them, so answers mix both kinds of rows."""
    parsed = ingest.parse_records(records_of(raw))
    assert parsed.errors == []
    frame = EventFrame.from_parsed(parsed)
    ch.command(f"TRUNCATE TABLE {table_name(ch.database)}")
    copy_events(frame, ch)
    if twice and not columns:  # a retried insert of some of the same rows, before any merge
        again(ch, frame, twice)
    keep = (lambda wanted: keep_paths(ch, wanted)) if columns else None
    return frame, ClickHouseEvents(ch, events_source(ch.database), database=ch.database if columns else None, keep=keep)


def again(ch: Any, frame: EventFrame, twice: list[int]) -> None:
    copy_events(frame, ch, rows=np.array(sorted({i % len(frame) for i in twice})))


def window_args(window: dict[str, Any]) -> dict[str, Any]:
    return {"start": window["start"], "end": window["end"], "customer_ids": window["customers"]}


@SAME
@given(raw=raw_events(json_text=False), twice=st.lists(st.integers(0, 50), max_size=4), columns=st.booleans(),
       cases=st.data())
def test_aggregates_are_the_same(ch, raw, twice, columns, cases):
    frame, events = stored(ch, raw, twice, columns)
    assert len(events) == len(frame)
    ts_values = [int(t) for t in frame.ts_us]
    for i in range(cases.draw(st.integers(1, 3))):
        metric = cases.draw(metrics())
        window = cases.draw(windows(ts_values))
        if columns and i == 0 and twice:
            events.aggregate(metric)  # the metric's paths get columns
            again(ch, frame, twice)  # rows written again without them: the newer copies read the JSON
        assert events.aggregate(metric, **window_args(window)) == frame.aggregate(metric, **window_args(window))
        assert (events.aggregate_by_customer(metric, **window_args(window))
                == frame.aggregate_by_customer(metric, **window_args(window)))
        assert (events.explain(metric, start=window["start"], end=window["end"], k=3)
                == frame.explain(metric, start=window["start"], end=window["end"], k=3))
        split_by = cases.draw(st.sampled_from([None, "g", "u.x"]))
        assert daily(events, metric, window, split_by) == daily(frame, metric, window, split_by)


def daily(engine: Any, metric: MetricCreate, window: dict[str, Any], split_by: str | None) -> list[dict[str, Any]]:
    rows = engine.daily_usage(metric, split_by=split_by, **window_args(window)).to_dict("records")
    for r in rows:  # pandas may hold a missing label as NaN (usage_series reads both as null)
        r["group"] = r["group"] if isinstance(r["group"], str) else None
    return sorted(rows, key=lambda r: (r["day"], r["group"] is None, r["group"] or ""))


TYPES = {
    "count": ["charge_metered", "charge_recurring", "limit_metered", "limit_recurring"],
    "sum": ["charge_metered", "charge_recurring", "limit_metered", "limit_recurring"],
    "max": ["charge_metered", "charge_recurring", "limit_metered"],
    "min": ["charge_metered", "charge_recurring"],
    "unique_count": ["charge_metered", "charge_recurring", "limit_metered"],
    "latest": ["charge_metered", "charge_recurring", "limit_metered"],
}
LIMITS = ["0", "1", "2", "2.5", "3", "7.25", "100", "1E+45"]


@st.composite
def workspaces(draw: st.DrawFn) -> tuple[dict[str, Any], MetricCreate]:
    """A workspace with one metric (any type its aggregation allows), a daily or weekly plan
    pricing it (a charge, or a quota), and subscriptions anchored at, around or without a start."""
    metric = draw(metrics())
    kind = draw(st.sampled_from(TYPES[metric.aggregation.value]))
    fields = metric.model_dump(mode="json", exclude_none=True)
    fields["metric_type"] = kind
    plan: dict[str, Any] = {"code": "p", "name": "P", "currency": draw(st.sampled_from(["USD", "JPY"])),
                            "interval": draw(st.sampled_from(["day", "day", "week"])),
                            "base_fee": "1", "included_credit": draw(st.sampled_from(["0", "0.5"]))}
    if kind.startswith("charge"):
        model = draw(st.sampled_from(["standard", "graduated", "package", "percentage"]))
        charge: dict[str, Any] = {"metric": "m", "model": model, "free_units": draw(st.sampled_from(["0", "1"]))}
        if model == "standard":
            charge["unit_price"] = "0.333"
        elif model == "graduated":
            charge["tiers"] = [{"up_to": "2", "unit_price": "1"}, {"up_to": None, "unit_price": "0.5", "flat_fee": "2"}]
        elif model == "package":
            charge |= {"package_size": "2", "package_price": "3"}
        else:
            charge |= {"rate": "10", "fixed_fee": "0.01"}
        plan["charges"] = [charge]
    else:
        quota: dict[str, Any] = {"metric": "m", "limit": draw(st.sampled_from(LIMITS))}
        if kind == "limit_recurring":
            quota["overage_unit_price"] = "0.5"
            if draw(st.booleans()):
                quota["max_carryover"] = draw(st.sampled_from(["0", "1", "5"]))
        plan["quotas"] = [quota]
    starts = st.sampled_from([None, BASE, BASE + timedelta(hours=7), BASE - timedelta(days=2), BASE + timedelta(days=1, minutes=30)])
    subscriptions = []
    for cid in draw(st.lists(st.sampled_from(["c1", "c2", "c3", "nobody"]), min_size=1, max_size=3, unique=True)):
        start = draw(starts)
        subscriptions.append({"customer_id": cid, "plan": "p", **({"start": start.isoformat()} if start else {})})
    ws = {"timezone": draw(st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"])), "metrics": [fields],
          "plans": [plan], "subscriptions": subscriptions}
    return ws, MetricCreate(**fields)


def invoice_json(found: list[Any]) -> list[dict[str, Any]]:
    return [inv.to_json() for inv in found]


@SAME
@given(raw=raw_events(json_text=False), twice=st.lists(st.integers(0, 50), max_size=3), drawn=workspaces(),
       periods=st.integers(1, 4))
def test_invoices_and_timelines_are_the_same(ch, raw, twice, drawn, periods):
    frame, events = stored(ch, raw, twice, columns=bool(len(twice) % 2))
    data, metric = drawn
    ws = parse_workspace(data)
    for month in ((2025, 12), (2026, 1)):
        assert invoice_json(invoices.run(events, ws, month=month)) == invoice_json(invoices.run(frame, ws, month=month))
    window = (BASE, BASE + timedelta(days=2, hours=5))
    assert invoice_json(invoices.run(events, ws, window=window)) == invoice_json(invoices.run(frame, ws, window=window))
    billed = invoices.assignments(frame, plans=ws.plans, subscriptions=ws.subscriptions, tz=ws.timezone)
    assert [(a.customer_id, a.anchor) for a in billed] == [
        (a.customer_id, a.anchor) for a in invoices.assignments(events, plans=ws.plans, subscriptions=ws.subscriptions, tz=ws.timezone)]
    schedules = {a.customer_id: a.schedule(ws.timezone) for a in billed if a.anchor is not None}
    if schedules:
        plan = ws.plans[0]
        got = billing.timeline_json("m", billing.timeline(events, metric, plan, schedules, periods_count=periods))
        want = billing.timeline_json("m", billing.timeline(frame, metric, plan, schedules, periods_count=periods))
        assert got == want


def test_limits_with_decimal_sums_walk_the_same(ch):
    """The limit_metered sum walk past its first rejection (arrayFold) on values of every
    scale, negative ones included, against the embedded walk."""
    rng = np.random.default_rng(7)
    values = [Decimal("0.5"), 1, Decimal("2.25"), -1, Decimal("0.000000001"), 3, Decimal("1E+2"), "4", True, Decimal("1E-19")]
    raw = []
    for i in range(300):
        props = {"v": values[int(rng.integers(len(values)))]}
        raw.append(("api.request", f"c{int(rng.integers(3)) + 1}", int(BASE.timestamp()) + int(rng.integers(0, 3 * 86_400)),
                    0, None, props))
    frame, events = stored(ch, raw, [1, 2, 3])
    metric = MetricCreate(name="M", code="m", unit="u", event_name="api.request", aggregation="sum",
                          value_property="v", metric_type="limit_metered")
    chain = [(BASE + timedelta(days=d), BASE + timedelta(days=d + 1)) for d in range(3)]
    for limit in ("0", "5", "7.5", "12.000000001", "40", "-2", "1E+60"):
        assert events.limit_usage(metric, chain, ["c1", "c2", "c3", "c9"], Decimal(limit)) == frame.limit_usage(
            metric, chain, ["c1", "c2", "c3", "c9"], Decimal(limit))
