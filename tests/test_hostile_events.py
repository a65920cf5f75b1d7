"""Events no intake should let break a read: whatever is stored, every read answers (a value
that cannot be read is skipped with a reason), and intake refuses what nothing could read
back (nesting past MAX_NESTING) with the row's line, keeping the good rows (issue 8, 10-13)."""

from __future__ import annotations

import json

import numpy as np

from metering import aggregation, ingest, store, usage_series
from metering.engine.frame import FrameCache
from metering.engine.interface import EventQuery
from metering.engine.registry import store_for
from metering.ingest import MAX_NESTING
from metering.models import MetricCreate

T0 = 1_791_028_800_000_000


def metric(**kw) -> MetricCreate:
    base = {"name": "M", "code": "m", "unit": "u", "event_name": "e"}
    return MetricCreate(**{**base, **kw})


def deep(levels: int) -> str:
    return '{"v":' * levels + "1" + "}" * levels


def test_whatever_rows_hold_every_read_answers(tmp_path):
    """Rows put into the store directly (as an earlier version or another tool could have):
    a 5,000-digit integer, nesting far past any limit, text that is not JSON at all."""
    engine = store.make_engine(f"sqlite:///{tmp_path / 's.db'}")
    rows = [
        ("e", "c1", T0, "k1", json.dumps({"v": 5})),
        ("e", "c1", T0 + 1, "k2", '{"v":' + "9" * 5000 + "}"),
        ("e", "c2", T0 + 2, "k3", deep(2000)),
        ("e", "c2", T0 + 3, "k4", "{not json"),
        ("e", "c3", T0 + 4, "k5", json.dumps({"v": "7"})),
    ]
    store.insert_events(engine, rows, import_id=None)
    for moved in (False, True):  # as rows, then after they move into a segment
        if moved:
            store_for(engine).compact()
        frame = FrameCache().get(engine)
        result = aggregation.aggregate(frame, metric(aggregation="sum", value_property="v", group_by=["v"]))
        assert (result.value, result.events, result.skipped) == (12, 5, 3)
        assert result.skip_reasons == {"v has more than 18 decimal places or 40 integer digits": 1, "v is missing": 2}
        assert len(frame.browse(EventQuery(), limit=10, offset=0)) == 5
        assert len(usage_series.daily_usage(frame, metric(aggregation="max", value_property="v"))) == 1
        assert aggregation.aggregate(frame, metric(aggregation="unique_count", distinct_by="v")).value == 3
    engine.dispose()


def test_nesting_past_the_limit_is_that_rows_error_and_the_others_are_stored(sqlite_engine):
    good = {"event_name": "e", "customer_id": "c1", "timestamp": "2026-10-03T12:00:00Z", "properties": {"v": 1}}
    too_deep = {**good, "customer_id": "c2", "properties": json.loads(deep(MAX_NESTING + 1))}
    just_fits = {**good, "customer_id": "c3", "properties": json.loads(deep(MAX_NESTING))}
    lines = [json.dumps(good), json.dumps(too_deep), '{"event_name":"e","customer_id":"c4","timestamp":1,"properties":' + deep(5000) + "}", json.dumps(just_fits)]
    result = ingest.import_file(sqlite_engine, ("\n".join(lines) + "\n").encode(), name="x.jsonl")
    assert (result.accepted, result.rejected) == (2, 2)
    assert [(e.line, e.field) for e in result.errors] == [(2, "properties"), (3, "properties")]
    assert all("deep" in e.reason for e in result.errors)
    frame = FrameCache().get(sqlite_engine)
    assert aggregation.aggregate(frame, metric(aggregation="count")).events == 2
    assert aggregation.aggregate(frame, metric(aggregation="count", group_by=["v"])).groups  # an object as a label


def test_a_deep_row_in_a_json_array_file_is_that_rows_error(sqlite_engine):
    good = json.dumps({"event_name": "e", "customer_id": "c1", "timestamp": 1791028800})
    text = "[\n" + good + ",\n" + '{"event_name":"e","customer_id":"c2","timestamp":1,"properties":' + deep(3000) + "},\n" + good.replace("c1", "c3") + "\n]"
    result = ingest.import_file(sqlite_engine, text.encode(), name="x.json")
    assert (result.accepted, result.rejected) == (2, 1)
    assert [(e.line, e.field) for e in result.errors] == [(3, "properties")]
    assert np.array_equal(np.sort(np.array([r[3] for r in store.event_rows(sqlite_engine)])), [1791028800_000000] * 2)
