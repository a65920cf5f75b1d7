"""ClickHouseEvents (metering.engine.clickhouse.reads) on chdb: every method of the Events
protocol against the embedded engine on the same stored events, the value rules in SQL on
nasty values, duplicates before merges, a subquery source, and a real server when
METERING_TEST_CLICKHOUSE_URL is set."""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from metering import ingest
from metering.engine.batch import derive_text
from metering.engine.clickhouse import sql
from metering.engine.clickhouse.connection import ClickHouseError, ChdbClient, connect, param_text
from metering.engine.clickhouse.reads import ClickHouseEvents
from metering.engine.clickhouse.schema import events_source, migrate, table_name
from metering.engine.columns import numbers
from metering.engine.interface import Events, EventQuery
from metering.frame import EventFrame
from metering.models import MetricCreate
from metering.values import JSON_NUMBER_RE

UTC = timezone.utc
SERVER_ENV = "METERING_TEST_CLICKHOUSE_URL"


def copy_events(frame: EventFrame, client: Any, *, rows: np.ndarray | None = None, table: str | None = None) -> None:
    """The frame's stored events (keys, seq, import) inserted into a ClickHouse events table
    (`rows`: only these, e.g. to insert them a second time)."""
    target = table or table_name(client.database)
    for part in frame.iter_tables():
        if rows is not None:
            keep = np.isin(part["seq"].to_numpy(), frame.seq[rows])
            part = part.filter(pa.array(keep))
        if not part.num_rows:
            continue
        imports = part["import_id"].to_numpy()
        client.insert_arrow(target, pa.table({
            "event_name": part["event_name"], "customer_id": part["customer_id"],
            "ts": pa.array(part["ts_us"].to_numpy(), pa.timestamp("us", tz="UTC")),
            "idempotency_key": part["idempotency_key"], "properties": part["properties"],
            "import_id": pa.array(imports, mask=imports < 0, type=pa.int64()),
            "seq": pa.array(part["seq"].to_numpy().astype(np.uint64)),
        }))


def frame_of(events: list[dict[str, Any]]) -> EventFrame:
    lines = "".join(json.dumps(e) + "\n" for e in events)
    parsed = ingest.parse_jsonl(lines)
    assert parsed.errors == [], parsed.errors
    return EventFrame.from_parsed(parsed)


def metric(aggregation: str = "count", path: str | None = None, **fields: Any) -> MetricCreate:
    data: dict[str, Any] = {"name": "M", "code": "m", "unit": "u", "event_name": "api", "aggregation": aggregation, **fields}
    if aggregation == "unique_count":
        data["distinct_by"] = path
    elif path is not None:
        data["value_property"] = path
    return MetricCreate(**data)


def at(day: int, second: int = 0) -> str:
    return (datetime(2026, 10, day, tzinfo=UTC) + timedelta(seconds=second)).isoformat()


EVENTS = [
    {"event_name": "api", "customer_id": "c1", "timestamp": at(1), "properties": {"v": 1.5, "g": "a", "u": {"x": 2}}},
    {"event_name": "api", "customer_id": "c1", "timestamp": at(1, 60), "properties": {"v": "2.50", "g": "b", "u.x": "lit", "u": {"x": 9}}},
    {"event_name": "api", "customer_id": "c2", "timestamp": at(2), "properties": {"v": True, "g": "a"}},
    {"event_name": "api", "customer_id": "c2", "timestamp": at(2), "properties": {"v": "\u3000 7 \u00a0", "g": None}},
    {"event_name": "api", "customer_id": "c2", "timestamp": at(3), "properties": {"v": "1e-19", "g": 1}},
    {"event_name": "api", "customer_id": "c3", "timestamp": at(3, 5), "properties": {"v": {"x": 1}, "g": "1"}},
    {"event_name": "api", "customer_id": "c3", "timestamp": at(4), "properties": {"v": "1" + "0" * 45}},
    {"event_name": "other", "customer_id": "c4", "timestamp": at(5), "idempotency_key": "given-key", "properties": {"v": 3}},
]


@pytest.fixture
def both(chdb_client: Any) -> tuple[EventFrame, ClickHouseEvents]:
    frame = frame_of(EVENTS)
    migrate(chdb_client)
    copy_events(frame, chdb_client)
    return frame, ClickHouseEvents(chdb_client, events_source(chdb_client.database))


# --------------------------------------------------------------------------- the protocol


def test_is_an_events_engine(both):
    assert isinstance(both[1], Events)


@pytest.mark.parametrize("aggregation,path", [
    ("count", None), ("sum", "v"), ("max", "v"), ("min", "v"), ("latest", "v"), ("unique_count", "g"),
    ("sum", "u.x"), ("unique_count", "u.x"), ("sum", "missing"),
])
def test_aggregates_match_the_embedded_engine(both, aggregation, path):
    frame, events = both
    for m in (metric(aggregation, path), metric(aggregation, path, group_by=["g"]),
              metric(aggregation, path, filters={"g": ["a", "1"]}, group_by=["u.x", "g"])):
        for window in ({}, {"start": datetime(2026, 10, 2, tzinfo=UTC)}, {"end": 1_759_363_200_000_000 + 1},
                       {"customer_ids": ["c2", "c3", "nobody"]}, {"customer_ids": []}):
            assert events.aggregate(m, **window) == frame.aggregate(m, **window)
            assert events.aggregate_by_customer(m, **window) == frame.aggregate_by_customer(m, **window)
        assert events.explain(m, k=2) == frame.explain(m, k=2)


def test_skip_reasons_are_named_as_the_embedded_engine_names_them(both):
    _, events = both
    result = events.aggregate(metric("sum", "v"))
    # True, {"x":1} (not numbers); 1e-19 and 10^45 (out of range); the other event has no v
    assert result.skip_reasons == {"v is not a number": 2, "v has more than 18 decimal places or 40 integer digits": 2}
    assert result.value == Decimal("1.5") + Decimal("2.5") + Decimal(7)
    assert result.events == 7


def test_latest_ties_go_to_the_event_stored_last(both):
    _, events = both
    result = events.aggregate(metric("latest", "v", filters={"g": ["a", "1"]}), end=datetime(2026, 10, 3, tzinfo=UTC))
    assert result.value == Decimal(1.5)  # c2's true at the same time is not a number: c1's 1.5 wins
    late = events.aggregate(metric("latest", "v"), end=datetime(2026, 10, 2, 0, 0, 1, tzinfo=UTC))
    assert late.value == Decimal(7)  # two events at 2026-10-02: the one stored last


def test_windows_chains_and_limits_match(both):
    frame, events = both
    chain = [(datetime(2026, 10, d, tzinfo=UTC), datetime(2026, 10, d + 1, tzinfo=UTC)) for d in (2, 3, 4)]
    cids = ["c1", "c2", "c3", "zz", "c2"]
    for m in (metric("count"), metric("sum", "v"), metric("max", "v"), metric("unique_count", "g"), metric("latest", "v")):
        for since_ever in (False, True):
            a, b = events.window_usage(m, chain, cids, since_ever=since_ever), frame.window_usage(m, chain, cids, since_ever=since_ever)
            assert a.values == b.values
            for name in ("events", "skipped", "period_events"):
                assert np.array_equal(getattr(a, name), getattr(b, name)), name
        for limit in ("0", "1", "2.5", "8", "1000"):
            assert events.limit_usage(m, chain, cids, Decimal(limit)) == frame.limit_usage(m, chain, cids, Decimal(limit))
    with pytest.raises(ValueError, match="min"):
        events.limit_usage(metric("min", "v"), chain, cids, Decimal(1))


def test_daily_usage_matches(both):
    frame, events = both
    for split_by in (None, "g", "u.x"):
        for m in (metric("sum", "v"), metric("unique_count", "g"), metric("count")):
            a = events.daily_usage(m, split_by=split_by).sort_values(["day", "group"], key=lambda s: s.astype(str)).reset_index(drop=True)
            b = frame.daily_usage(m, split_by=split_by).sort_values(["day", "group"], key=lambda s: s.astype(str)).reset_index(drop=True)
            assert a.to_dict("records") == b.to_dict("records")
    assert len(events.daily_usage(metric("count"), customer_ids=[])) == 0


def test_facts_browse_and_find(both):
    frame, events = both
    assert len(events) == len(frame) == len(EVENTS)
    assert events.time_bounds() == frame.time_bounds()
    assert events.time_bounds("other") == frame.time_bounds("other")
    assert events.time_bounds("nothing") is None
    assert events.customer_ids() == frame.customer_ids()
    assert events.first_event_us() == frame.first_event_us()
    assert events.first_event_us(["c2", "zz"]) == frame.first_event_us(["c2", "zz"])
    assert events.event_name_counts() == frame.event_name_counts() == [("api", 7), ("other", 1)]
    assert len(events.sample_properties("api", 3)) == 3
    assert events.sample_properties("other") == frame.sample_properties("other")
    for q in (EventQuery(), EventQuery(event_name="api", customer_id="c2"), EventQuery(start=date(2026, 10, 2), end=date(2026, 10, 3)),
              EventQuery(import_id=5)):
        assert events.count_events(q) == frame.count_events(q)
        for limit, offset in ((3, 0), (3, 2), (50, 0)):
            a, b = events.browse(q, limit=limit, offset=offset), frame.browse(q, limit=limit, offset=offset)
            assert a.to_dict("records") == b.to_dict("records")
    assert events.find_event("given-key") == frame.find_event("given-key")
    some_key = frame.browse(EventQuery(), limit=1, offset=3)["idempotency_key"][0]
    assert events.find_event(some_key) == frame.find_event(some_key)
    assert events.find_event("no such key") is None


def test_empty_source_answers_zero(chdb_client):
    migrate(chdb_client)
    events = ClickHouseEvents(chdb_client, events_source(chdb_client.database))
    assert len(events) == 0
    assert events.time_bounds() is None
    result = events.aggregate(metric("sum", "v", group_by=["g"]))
    assert (result.value, result.events, result.groups) == (Decimal(0), 0, [])
    assert events.aggregate_by_customer(metric("max", "v")) == {}
    assert events.customer_ids() == [] and events.event_name_counts() == []


# --------------------------------------------------------------------------- duplicates


def test_a_retried_insert_adds_nothing_before_parts_merge(both):
    frame, events = both
    copy_events(frame, events.client)  # the same rows again: a second part, not merged yet
    raw = events.client.query_arrow(f"SELECT count() AS n FROM {table_name(events.client.database)}").column("n")[0].as_py()
    assert raw == 2 * len(EVENTS)
    assert len(events) == len(EVENTS)
    assert events.aggregate(metric("sum", "v")) == frame.aggregate(metric("sum", "v"))
    assert events.find_event("given-key")["customer_id"] == "c4"


def test_a_duplicate_keeps_the_first_stored_row(chdb_client):
    migrate(chdb_client)
    table = table_name(chdb_client.database)
    row = {"event_name": ["api"], "customer_id": ["c1"], "ts": pa.array([1], pa.timestamp("us", tz="UTC")),
           "idempotency_key": ["k"], "properties": ['{"v":1}'], "import_id": pa.array([7], pa.int64())}
    chdb_client.insert_arrow(table, pa.table({**row, "seq": pa.array([5], pa.uint64())}))
    chdb_client.insert_arrow(table, pa.table({**row, "import_id": pa.array([8], pa.int64()), "seq": pa.array([9], pa.uint64())}))
    events = ClickHouseEvents(chdb_client, events_source(chdb_client.database))
    assert events.find_event("k")["import_id"] == 7
    chdb_client.command(f"OPTIMIZE TABLE {table} FINAL")
    assert events.find_event("k")["import_id"] == 7 and len(events) == 1


# --------------------------------------------------------------------------- a subquery source


def test_a_subquery_source_reads_like_the_table(chdb_client):
    """A CloudEvents-shaped table (OpenMeter's) read through a subquery naming our columns."""
    db = chdb_client.database
    chdb_client.command(
        f"CREATE TABLE `{db}`.om_events (namespace String, id String, type LowCardinality(String), source String, "
        f"subject String, time DateTime, data String, ingested_at DateTime DEFAULT now()) "
        f"ENGINE = MergeTree ORDER BY (namespace, type, subject, toStartOfHour(time))")
    chdb_client.command(
        f"INSERT INTO `{db}`.om_events (namespace, id, type, source, subject, time, data) VALUES "
        "('default', 'e1', 'api', 's', 'c1', '2026-10-01 00:00:00', '{\"v\": 1.25, \"g\": \"a\"}'), "
        "('default', 'e2', 'api', 's', 'c1', '2026-10-01 00:00:01', '{\"v\": \"2\", \"g\": \"b\"}'), "
        "('default', 'e3', 'api', 's', 'c2', '2026-10-02 00:00:00', '{\"v\": 0.1}'), "
        "('other', 'e4', 'api', 's', 'c2', '2026-10-02 00:00:00', '{\"v\": 100}')")
    source = (f"(SELECT type AS event_name, subject AS customer_id, toDateTime64(time, 6, 'UTC') AS ts, id AS idempotency_key, "
              f"data AS properties, CAST(NULL AS Nullable(Int64)) AS import_id, toUInt64(rowNumberInBlock()) AS seq "
              f"FROM `{db}`.om_events WHERE namespace = 'default')")
    events = ClickHouseEvents(chdb_client, source)
    assert len(events) == 3
    result = events.aggregate(metric("sum", "v", group_by=["g"]))
    assert result.value == Decimal("3.35")
    assert [(g.group["g"], g.value) for g in result.groups] == [("a", Decimal("1.25")), ("b", Decimal(2)), (None, Decimal("0.1"))]
    assert events.find_event("e2")["customer_id"] == "c1"


# --------------------------------------------------------------------------- value rules


NASTY = [
    '{"v":1.50,"w":{"z":-1e3,"a":"x/y\\"n1\\"","q":[1,2.0,{"k":true}]},"s":"12","x.y":null,"x":{"y":5}}',
    '{"v":" 12.5\u3000","w":[],"s":{},"x.y":"lit","x":{"y":"nested"},"n":123456789012345678901234567890.123}',
    '{"v":"0e50","w":{"c":{"d":[1.0,"x\\\\","\u2028","\\u001f"]}},"s":"+.5e1","x.y":{"z":1.5},"n":"-0"}',
    '{"v":-0,"s":"1.0000000000000000000000","n":"9999999999999999999999999999999999999999.5","w":"\\\\u2028"}',
    '{"v":"1e-19","s":"\\t4\\n","n":"٣","w":false}',
    'not json at all',
]


def test_text_forms_and_numbers_are_the_embedded_engine_s(chdb_client):
    docs = [ingest.canonical_json(ingest.loads_exact(d)) if d.startswith("{") else d for d in NASTY]
    docs += [d.replace(":", ": ").replace(",", " , ") for d in docs]  # not canonical (OpenMeter's data)
    paths = sql.Paths(["v", "w", "s", "x.y", "x", "n", "w.c", "w.z", "w.q", "w.c.d", "missing"])
    rows = f"SELECT arrayJoin({sql.lit_array(docs)}) AS properties, rowNumberInAllBlocks() AS r"
    for path in paths.paths:
        query = sql.select_layers(sql.select_layers(rows, paths.layers()), paths.number_layers(path))
        got = chdb_client.query_arrow(f"SELECT {paths.name(path)} AS t, st, val FROM ({query}) ORDER BY r")
        want = derive_text(pa.array(docs[:len(NASTY)]), path).to_pylist()
        assert got.column("t").to_pylist()[:len(NASTY)] == want, path
        value, status = numbers(pa.array(want, pa.string()))
        assert got.column("st").to_pylist()[:len(NASTY)] == status.tolist(), path
        assert got.column("val").to_pylist()[:len(NASTY)] == value.to_pylist(), path
        # spaces between tokens change no string, number or boolean (objects: canonical JSON of ours only)
        spaced = got.column("t").to_pylist()[len(NASTY):]
        assert [a for a, w in zip(spaced, want) if w is None or w[:1] not in "{["] == [w for w in want if w is None or w[:1] not in "{["], path


def test_parameters_survive_any_text(chdb_client):
    texts = ["a\\b", "q'x", "tab\there", "nl\nx\r", "\\n", "é😀", "\0z", "[", "',"]
    for text in texts:
        assert chdb_client.query_arrow("SELECT {p:String} AS p", {"p": text}).column("p")[0].as_py() == text
    got = chdb_client.query_arrow("SELECT {p:Array(String)} AS p", {"p": texts}).column("p")[0].as_py()
    assert got == texts
    assert param_text(None) == "\\N" and param_text(True) == "1"


def test_urls_and_errors(chdb_dir):
    client = connect(f"chdb://{chdb_dir}?database=from_url")
    assert isinstance(client, ChdbClient) and client.database == "from_url"
    with pytest.raises(ClickHouseError, match="one embedded ClickHouse per process"):
        ChdbClient(chdb_dir + "-other")
    with pytest.raises(ClickHouseError, match="not a ClickHouse URL"):
        connect("postgresql://x/y")
    with pytest.raises(ClickHouseError):
        client.command("SELECT no_such_function()")


# --------------------------------------------------------------------------- a real server


@pytest.fixture
def server_client() -> Any:
    url = os.environ.get(SERVER_ENV, "").strip()
    if not url:
        pytest.skip(f"{SERVER_ENV} not set (e.g. clickhouse://default:@127.0.0.1:8123/metering_test)")
    try:
        client = connect(url)
        client.command("SELECT 1")
    except ClickHouseError as exc:
        pytest.skip(f"ClickHouse at {SERVER_ENV} cannot be reached: {exc}")
    client.database = f"{client.database}_reads"
    client.command(f"DROP DATABASE IF EXISTS `{client.database}`")
    migrate(client)
    yield client
    client.command(f"DROP DATABASE IF EXISTS `{client.database}`")


def test_server_answers_like_the_embedded_engine(server_client):
    frame = frame_of(EVENTS)
    copy_events(frame, server_client)
    events = ClickHouseEvents(server_client, events_source(server_client.database))
    for m in (metric("sum", "v", group_by=["g"]), metric("unique_count", "g"), metric("latest", "v")):
        assert events.aggregate(m) == frame.aggregate(m)
    chain = [(datetime(2026, 10, d, tzinfo=UTC), datetime(2026, 10, d + 1, tzinfo=UTC)) for d in (1, 2, 3)]
    assert events.limit_usage(metric("sum", "v"), chain, ["c1", "c2"], Decimal(3)) == frame.limit_usage(
        metric("sum", "v"), chain, ["c1", "c2"], Decimal(3))


def test_any_text_in_names_ids_keys_and_filters(chdb_client):
    """Quotes, backslashes, SQL, newlines and non-ASCII in customer ids, keys, filter values
    and group labels reach ClickHouse as values, never as SQL."""
    nasty = ["o'brien", "back\\slash", "x'); DROP TABLE t; --", "line\nbreak", "日本\u2028", "{p:String}"]
    events = [{"event_name": "api", "customer_id": c, "timestamp": at(1, i), "idempotency_key": f"k{c}",
               "properties": {"g": c, "v": i}} for i, c in enumerate(nasty)]
    frame = frame_of(events)
    migrate(chdb_client)
    copy_events(frame, chdb_client)
    found = ClickHouseEvents(chdb_client, events_source(chdb_client.database))
    m = metric("sum", "v", group_by=["g"], filters={"g": nasty[:4]})
    assert found.aggregate(m) == frame.aggregate(m)
    assert found.aggregate_by_customer(m, customer_ids=nasty[1:]) == frame.aggregate_by_customer(m, customer_ids=nasty[1:])
    chain = [(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC))]
    assert found.window_usage(m, chain, nasty).values == frame.window_usage(m, chain, nasty).values
    assert found.customer_ids() == frame.customer_ids()
    assert found.count_events(EventQuery(customer_id=nasty[2])) == 1
    assert found.find_event(f"k{nasty[0]}")["customer_id"] == nasty[0]


def test_thousands_of_customers_are_one_parameter(both):
    """Customer lists go as an Array parameter: 20,000 long ids (~1.2 MB) pass ClickHouse's
    256 KiB query size limit, and answer as the embedded engine does."""
    frame, events = both
    many = [f"customer-{i:06d}-" + "x" * 40 for i in range(20_000)] + ["c2", "c3"]
    m = metric("sum", "v")
    assert events.aggregate(m, customer_ids=many) == frame.aggregate(m, customer_ids=many)
    chain = [(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 8, tzinfo=UTC))]
    got, want = events.window_usage(m, chain, many), frame.window_usage(m, chain, many)
    assert got.values == want.values and np.array_equal(got.events, want.events)


class ReadonlyClient:
    """A client whose user may not change settings (ClickHouse's readonly = 1)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.database, self.calls = inner, inner.database, 0

    def query_arrow(self, query: str, params: Any = None) -> pa.Table:
        self.calls += 1
        if " SETTINGS " in query:
            raise ClickHouseError("Code: 164. DB::Exception: Cannot modify 'query_plan_merge_expressions' setting in readonly mode. (READONLY)")
        return self.inner.query_arrow(query, params)


def test_a_readonly_user_gets_the_same_answers(both):
    frame, events = both
    readonly = ClickHouseEvents(ReadonlyClient(events.client), events.source)
    m = metric("sum", "v", group_by=["g"])
    assert readonly.aggregate(m) == frame.aggregate(m)
    assert readonly.aggregate_by_customer(m) == frame.aggregate_by_customer(m)
    calls = readonly.client.calls
    readonly.aggregate(m)
    assert readonly.client.calls == calls + 1  # settings are not tried again


NUMERIC_EDGES = ["0e50", "1E+41", "1e+39", "  +.5e1 ", "0" * 43 + "1", "1" * 41, "1" * 40 + ".5", "1.0000000000000000000000",
                 "12e-19", "100e-20", "0e-30", "1e999999999999", "0e-99999999999", "-0.0", "5.", ".5", "1_000", "\u0663",
                 "1e", "e5", "+", "-", ".", "1..2", "0x10", "\u2003-7.25\u3000", "\x1c5", "5\x1c", "1.5E-18", "1.5E-19"]


def test_numbers_in_strings_decide_as_the_embedded_engine(chdb_client):
    docs = [json.dumps({"v": text}, ensure_ascii=False) for text in NUMERIC_EDGES]
    # and the same texts as JSON numbers, where they are JSON numbers
    docs += [ingest.canonical_json(ingest.loads_exact('{"v":%s}' % t.strip())) for t in NUMERIC_EDGES
             if JSON_NUMBER_RE.match(t.strip())]
    paths = sql.Paths(["v"])
    rows = f"SELECT arrayJoin({sql.lit_array(docs)}) AS properties, rowNumberInAllBlocks() AS r"
    query = sql.select_layers(sql.select_layers(rows, paths.layers()), paths.number_layers("v"))
    got = chdb_client.query_arrow(f"SELECT t0, st, val FROM ({query}) ORDER BY r")
    want_text = derive_text(pa.array(docs), "v")
    value, status = numbers(want_text)
    assert got.column("t0").to_pylist() == want_text.to_pylist()
    assert got.column("st").to_pylist() == status.tolist()
    assert got.column("val").to_pylist() == value.to_pylist()
