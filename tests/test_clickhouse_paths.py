"""Property paths as columns of the ClickHouse events table (metering.engine.clickhouse.paths).

A metric's first read gives its paths columns and writes the stored rows again with them;
later writes (file imports and API bodies) fill them; reads take those rows from the columns
and the rest from the JSON text, with the embedded engine's answers either way.
"""

from __future__ import annotations

import json
from decimal import Decimal

from metering import ingest, store
from metering.aggregation import aggregate
from metering.engine import event_writer, stored_events
from metering.engine.clickhouse import paths
from metering.engine.frame import EventFrame
from metering.models import MetricCreate
from tests.clickhouse_env import events_url, place, raw_count, sql_engine  # noqa: F401 (fixtures)

METRIC = MetricCreate(name="T", code="t", unit="u", event_name="llm.tokens", aggregation="sum", value_property="tokens",
                      filters={"model": ["m0", "m1"]}, group_by=["region.name"])


def lines(n: int, start: int = 0) -> str:
    rows = []
    for i in range(start, start + n):
        props = {"tokens": [f"{i}.25", i, "x", True, None][i % 5], "model": f"m{i % 3}",
                 **({"region.name": "dotted"} if i % 7 == 0 else {"region": {"name": f"r{i % 2}"}})}
        rows.append(json.dumps({"event_name": "llm.tokens", "customer_id": f"c{i % 4}",
                                "timestamp": f"2026-10-{1 + i % 28:02d}T{i % 24:02d}:00:00Z", "properties": props}))
    return "\n".join(rows) + "\n"


def counts(url: str) -> tuple[int, int]:
    """(rows FINAL reads, of which carry the metric's path columns)."""
    p = place(url)
    has = " AND ".join(f"`{paths.columns_of(x).has}` = 1" for x in ("tokens", "model", "region.name"))
    row = p.client.query_arrow(f"SELECT count() AS n, countIf({has}) AS c FROM {p.source}").to_pylist()[0]
    return int(row["n"]), int(row["c"])


def reference(text: str):
    return aggregate(EventFrame.from_parsed(ingest.parse_jsonl(text)), METRIC)


def test_a_metrics_paths_get_columns_and_later_writes_fill_them(events_url, sql_engine, tmp_path):
    first = tmp_path / "a.jsonl"
    first.write_text(lines(70))
    ingest.import_file(sql_engine, first)
    p = place(events_url)
    assert paths.stored(p.client, p.setting.database) == {}
    answer = aggregate(stored_events(sql_engine), METRIC)  # gives the paths columns
    assert answer == reference(lines(70)) and answer.skipped > 0 and len(answer.groups) == 3
    assert set(paths.stored(p.client, p.setting.database)) == {"tokens", "model", "region.name"}
    assert counts(events_url) == (70, 70) and raw_count(events_url) == 70  # written again, then merged
    codec = p.client.query_arrow(
        "SELECT compression_codec AS c FROM system.columns WHERE database = {db:String} AND name = {n:String}",
        {"db": p.setting.database, "n": paths.columns_of("tokens").integer}).to_pylist()
    assert "T64" in codec[0]["c"]  # small integers stored in the bits they use (sums read less)

    second = tmp_path / "b.jsonl"
    second.write_text(lines(30, start=70))
    ingest.import_file(sql_engine, second)  # a file import fills the columns
    event_writer(sql_engine).insert_rows(  # and so does the API's path
        [("llm.tokens", "c9", 1_790_000_000_000_000, "api-1", json.dumps({"tokens": "2.5", "model": "m1"}))],
        import_id=None)
    assert counts(events_url) == (101, 101)
    expected = reference(lines(100) + json.dumps({"event_name": "llm.tokens", "customer_id": "c9",
                                                  "timestamp": "2026-09-21T14:13:20Z", "idempotency_key": "api-1",
                                                  "properties": {"tokens": "2.5", "model": "m1"}}) + "\n")
    assert aggregate(stored_events(sql_engine), METRIC) == expected
    assert expected.value == sum(Decimal(f"{i}.25") if i % 5 == 0 else Decimal(i) for i in range(100)
                                 if i % 5 in (0, 1) and i % 3 in (0, 1)) + Decimal("2.5")


def test_integer_columns_an_earlier_version_added_get_the_t64_codec(events_url, sql_engine, tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(lines(40))
    ingest.import_file(sql_engine, path)
    before = aggregate(stored_events(sql_engine), METRIC)
    p = place(events_url)
    column = paths.columns_of("tokens").integer

    def codec() -> str:
        return p.client.query_arrow(
            "SELECT compression_codec AS c FROM system.columns WHERE database = {db:String} AND name = {n:String}",
            {"db": p.setting.database, "n": column}).to_pylist()[0]["c"]

    p.client.command(f"ALTER TABLE {p.setting.database}.events MODIFY COLUMN `{column}` CODEC(LZ4)")  # as before
    assert "T64" not in codec()
    paths.upgrade(p.client, p.setting.database)  # what opening the events does
    assert "T64" in codec()
    p.client.command(f"OPTIMIZE TABLE {p.setting.database}.events FINAL")
    assert aggregate(stored_events(sql_engine), METRIC) == before


def test_rows_without_the_columns_are_read_from_the_json(events_url, sql_engine, tmp_path):
    """Rows a writer stored without the columns (one that did not know the path yet) answer
    the same, read through the JSON rules, beside rows that have them."""
    path = tmp_path / "a.jsonl"
    path.write_text(lines(40))
    ingest.import_file(sql_engine, path)
    aggregate(stored_events(sql_engine), METRIC)
    p = place(events_url)
    table = f"`{p.setting.database}`.`events`"
    # a later copy of ten rows without the columns: FINAL reads the copy
    p.client.command(f"INSERT INTO {table} (event_name, customer_id, ts, idempotency_key, properties, import_id, seq) "
                     f"SELECT event_name, customer_id, ts, idempotency_key, properties, import_id, seq FROM {p.source} "
                     f"ORDER BY seq LIMIT 10")
    assert counts(events_url) == (40, 30)
    assert aggregate(stored_events(sql_engine), METRIC) == reference(lines(40))


def test_deleting_an_import_after_the_columns_were_added_deletes_every_copy(events_url, sql_engine, tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(lines(20))
    result = ingest.import_file(sql_engine, path)
    aggregate(stored_events(sql_engine), METRIC)
    assert raw_count(events_url) == 20
    assert store.delete_import(sql_engine, result.import_id) == 20
    assert raw_count(events_url) == 0 and aggregate(stored_events(sql_engine), METRIC).events == 0


def test_a_source_that_cannot_be_altered_reads_the_json(events_url, sql_engine, tmp_path):
    """Giving a path its columns may be refused (a user without ALTER rights): the read
    answers from the JSON text instead of failing."""
    from metering.engine.clickhouse.connection import ClickHouseError
    from metering.engine.clickhouse.reads import ClickHouseEvents

    path = tmp_path / "a.jsonl"
    path.write_text(lines(30))
    ingest.import_file(sql_engine, path)
    p = place(events_url)

    def refuse(paths_: object) -> None:
        raise ClickHouseError("Not enough privileges: ALTER ADD COLUMN")

    events = ClickHouseEvents(p.client, p.source, database=p.setting.database, keep=refuse)
    assert aggregate(events, METRIC) == reference(lines(30))
    assert paths.stored(p.client, p.setting.database) == {}


def test_sums_of_integers_add_int64s_and_stay_exact(events_url, sql_engine, tmp_path):
    """A path whose numbers are all Int64 integers is summed from its Int64 column (as
    Int128): exact at the edges of Int64; one fraction, or one integer beyond Int64, sends the
    sum back to Decimal256, with the same answer as the embedded engine either way."""
    sum_metric = MetricCreate(name="S", code="s", unit="u", event_name="api", aggregation="sum", value_property="v")
    values = [2**63 - 1, 2**63 - 1, -(2**63), "12", "1.0", True, None, 7]

    def jsonl(vals: list, start: int = 0) -> str:
        return "".join(json.dumps({"event_name": "api", "customer_id": f"c{i % 2}",
                                   "timestamp": f"2026-10-01T00:{(start + i) // 60:02d}:{(start + i) % 60:02d}Z",
                                   "properties": {"v": v}}) + "\n" for i, v in enumerate(vals))

    path = tmp_path / "a.jsonl"
    path.write_text(jsonl(values))
    ingest.import_file(sql_engine, path)
    expected = aggregate(EventFrame.from_parsed(ingest.parse_jsonl(jsonl(values))), sum_metric)
    assert aggregate(stored_events(sql_engine), sum_metric) == expected
    assert expected.value == 2 * (2**63 - 1) - 2**63 + 12 + 1 + 7 and expected.skipped == 2
    p = place(events_url)
    cols = paths.columns_of("v")
    assert paths.all_integers(p.client, p.setting.database, cols)
    by_customer = stored_events(sql_engine).aggregate_by_customer(sum_metric)
    assert by_customer == EventFrame.from_parsed(ingest.parse_jsonl(jsonl(values))).aggregate_by_customer(sum_metric)

    more = values + ["0.5", 2**63]
    path.write_text(jsonl(more[len(values):], start=len(values)))
    ingest.import_file(sql_engine, path)
    assert not paths.all_integers(p.client, p.setting.database, cols)
    expected = aggregate(EventFrame.from_parsed(ingest.parse_jsonl(jsonl(more))), sum_metric)
    assert aggregate(stored_events(sql_engine), sum_metric) == expected
    assert expected.value == 2 * (2**63 - 1) - 2**63 + 12 + 1 + 7 + Decimal("0.5") + 2**63


def test_path_columns_of_an_earlier_layout_are_filled_again(events_url, sql_engine, tmp_path):
    """A table whose path columns were laid out by an earlier version (no Int64 columns, flag
    `_h`) answers exactly: its rows lack this layout's flag, so they are filled again."""
    path = tmp_path / "a.jsonl"
    path.write_text(lines(30))
    ingest.import_file(sql_engine, path)
    p = place(events_url)
    table = f"`{p.setting.database}`.`events`"
    for name in ("tokens", "model", "region.name"):
        base = paths.columns_of(name).base
        note = f"COMMENT 'path:{name}'"
        for suffix, ddl in (("t", "LowCardinality(Nullable(String))"), ("n", "Nullable(Decimal256(18))"),
                            ("s", "UInt8 DEFAULT 1"), ("h", "UInt8 DEFAULT 0")):
            p.client.command(f"ALTER TABLE {table} ADD COLUMN `{base}_{suffix}` {ddl} {note}")
        p.client.command(f"ALTER TABLE {table} UPDATE `{base}_h` = 1, `{base}_s` = 1 WHERE 1 SETTINGS mutations_sync = 2")
    assert paths.stored(p.client, p.setting.database) == {}
    assert aggregate(stored_events(sql_engine), METRIC) == reference(lines(30))
    assert set(paths.stored(p.client, p.setting.database)) == {"tokens", "model", "region.name"}
