"""CloudEvents in (events API, file import) and stored events out (CloudEvents JSON Lines, Lago
event payloads): mapping, per-event errors with index or line, exact numbers, round trips."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from metering import api, apikeys, ingest, store
from metering.api.openapi import openapi_document
from metering.peers import cloudevents
from metering.peers.cloudevents import CloudEventError, cloudevent_lines, to_event
from metering.peers.lago import lago_event_lines
from metering.peers.stored import stored_event_batches
from tests.peer_schemas import CLOUDEVENT, LAGO_EVENT

KEY = "mtr_test_key_for_the_cloudevents_tests_012345"
AUTH = {"Authorization": f"Bearer {KEY}"}
CE = {"specversion": "1.0", "id": "evt-1", "source": "checkout", "type": "llm.tokens", "subject": "cus_1",
      "time": "2026-10-03T12:00:00.25Z", "datacontenttype": "application/json",
      "data": {"tokens": 1250, "model": "gpt-4o"}}


def rows(engine: Engine) -> list[tuple]:
    return [row[1:] for row in store.event_rows(engine)]


# ------------------------------------------------------------------------------ mapping


def test_a_cloudevent_maps_to_an_event() -> None:
    assert to_event(CE) == {"event_name": "llm.tokens", "customer_id": "cus_1", "timestamp": "2026-10-03T12:00:00.25Z",
                            "idempotency_key": "evt-1", "properties": {"tokens": 1250, "model": "gpt-4o"}}
    minimal = {k: CE[k] for k in ("specversion", "id", "source", "type", "subject")}
    assert to_event(minimal, default_time="2026-10-03T00:00:00+00:00")["timestamp"] == "2026-10-03T00:00:00+00:00"
    assert to_event({**minimal, "time": None, "data": None, "dataschema": None}, default_time="T")["properties"] == {}


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"specversion": "0.3"}, "specversion", '"1.0"'),
    ({"specversion": None}, "specversion", '"1.0"'),
    ({"id": ""}, "id", "id is required"),
    ({"source": None}, "source", "source is required"),
    ({"type": 7}, "type", "must be a string"),
    ({"subject": " "}, "subject", "subject is required (it is the customer)"),
    ({"time": 1791028800}, "time", "RFC 3339"),
    ({"time": "1791028800"}, "time", "RFC 3339"),
    ({"datacontenttype": "text/plain"}, "datacontenttype", "application/json"),
    ({"data": [1, 2]}, "data", "JSON object"),
    ({"data_base64": "AAEC"}, "data_base64", "binary data"),
    ({"traceparent": "00-abc"}, "traceparent", "extension attribute"),
])
def test_cloudevent_errors_name_the_attribute(change: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(CloudEventError) as exc:
        to_event({**CE, **change}, default_time="2026-10-03")
    assert exc.value.field == field and words in exc.value.reason


def test_without_time_a_file_event_is_an_error() -> None:
    event = {k: v for k, v in CE.items() if k != "time"}
    with pytest.raises(CloudEventError, match="time is required in a file"):
        to_event(event)


def test_validation_errors_are_renamed_to_cloudevents_words() -> None:
    assert cloudevents.rename("customer_id", "customer_id is 300 characters; at most 255") == \
        ("subject", "subject is 300 characters; at most 255")
    assert cloudevents.rename("timestamp", "'x' is not an ISO 8601 time") == ("time", "'x' is not an ISO 8601 time")
    assert cloudevents.rename("quota", "over the limit") == ("quota", "over the limit")


# ------------------------------------------------------------------------------ files


def test_json_lines_of_cloudevents_with_line_numbers(write_file) -> None:  # noqa: ANN001
    lines = [
        json.dumps(CE),
        json.dumps({**CE, "id": "evt-2", "type": "llm tokens"}),
        "",
        json.dumps({**CE, "id": "evt-3", "subject": None}),
        json.dumps({"event_name": "llm.tokens", "customer_id": "c9", "timestamp": "2026-10-03"}),  # our own form too
        json.dumps({**CE, "id": "evt-4", "time": "yesterday"}),
        json.dumps({**CE, "id": "evt-5", "subject": "x" * 300}),
    ]
    parsed = ingest.read_events(write_file("ce.jsonl", "\n".join(lines) + "\n"))
    assert [(e.line, e.field) for e in parsed.errors] == [(2, "type"), (4, "subject"), (6, "time"), (7, "subject")]
    assert "subject is 300 characters" in parsed.errors[-1].reason
    assert parsed.rows()[0] == ("llm.tokens", "cus_1", 1791028800250000, "evt-1", '{"model":"gpt-4o","tokens":1250}')
    assert parsed.lines == [1, 5]


def test_a_json_array_of_cloudevents_numbers_each_by_its_line(write_file) -> None:  # noqa: ANN001
    body = "[\n" + json.dumps(CE) + ",\n" + json.dumps({**CE, "id": "evt-2", "specversion": "2.0"}) + ",\n" \
        + json.dumps({**CE, "id": "evt-3", "data": {"amount": 1.50}}).replace("1.5", "1.50") + "\n]\n"
    parsed = ingest.read_events(write_file("ce.json", body))
    assert [(e.line, e.field) for e in parsed.errors] == [(3, "specversion")]
    assert parsed.properties[-1] == '{"amount":1.50}'  # the number literal is kept exactly


def test_importing_cloudevents_twice_adds_nothing(sqlite_engine: Engine, write_file) -> None:  # noqa: ANN001
    path = write_file("ce.jsonl", json.dumps(CE) + "\n" + json.dumps({**CE, "id": "evt-2"}) + "\n")
    assert ingest.import_file(sqlite_engine, path).accepted == 2
    again = ingest.import_file(sqlite_engine, path)
    assert (again.accepted, again.duplicates) == (0, 2)


# ------------------------------------------------------------------------------ API


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Engine]]:
    monkeypatch.setenv(apikeys.ENV_VAR, KEY)
    engine = store.make_engine(f"sqlite:///{tmp_path / 'ce.db'}")
    with TestClient(Starlette(routes=api.api_routes(engine)), raise_server_exceptions=False) as c:
        yield c, engine
    engine.dispose()


def send(c: TestClient, body: Any, content_type: str) -> Any:
    text_ = body if isinstance(body, str) else json.dumps(body)
    return c.post("/api/v1/events", content=text_, headers={**AUTH, "Content-Type": content_type})


def test_api_takes_one_cloudevent(client: tuple[TestClient, Engine]) -> None:
    c, engine = client
    r = send(c, CE, "application/cloudevents+json")
    assert r.status_code == 200 and r.json() == {"accepted": 1, "duplicates": 0, "rejected": 0, "errors": []}
    r = send(c, CE, "application/cloudevents+json; charset=utf-8")
    assert r.json()["duplicates"] == 1  # the id is the idempotency key
    assert rows(engine) == [("llm.tokens", "cus_1", 1791028800250000, "evt-1", '{"model":"gpt-4o","tokens":1250}')]


def test_api_rejects_a_bad_single_cloudevent_with_422(client: tuple[TestClient, Engine]) -> None:
    c, engine = client
    r = send(c, {**CE, "subject": ""}, "application/cloudevents+json")
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_event" and body["errors"] == [
        {"index": 0, "field": "subject", "reason": "subject is required (it is the customer)"}]
    assert rows(engine) == []


def test_api_batch_keeps_good_events_and_reports_bad_ones_by_index(client: tuple[TestClient, Engine]) -> None:
    c, engine = client
    no_time = {k: v for k, v in CE.items() if k != "time"} | {"id": "evt-4"}
    batch = [CE, {**CE, "id": "evt-2", "type": "bad type"}, "not an object", no_time,
             {**CE, "id": "evt-5", "time": "2026-13-40T00:00:00Z"}, {**CE, "id": "evt-6", "data": {"n": 1.50}}]
    r = send(c, json.dumps(batch).replace('"n": 1.5', '"n": 1.50'), "application/cloudevents-batch+json")
    assert r.status_code == 200
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (3, 3)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "type"), (2, "event"), (4, "time")]
    stored = rows(engine)
    assert [s[3] for s in stored] == ["evt-1", "evt-4", "evt-6"]
    assert stored[2][4] == '{"n":1.50}'
    assert stored[1][2] > 1791028800250000  # no time: the time of receipt


@pytest.mark.parametrize(("body", "content_type", "words"), [
    ([CE], "application/cloudevents+json", "one CloudEvent object"),
    (CE, "application/cloudevents-batch+json", "JSON array of CloudEvents"),
    ([CE] * 1001, "application/cloudevents-batch+json", "at most 1,000"),
])
def test_api_wrong_cloudevents_shapes_get_422(client: tuple[TestClient, Engine], body: Any, content_type: str,
                                               words: str) -> None:
    c, _ = client
    r = send(c, body, content_type)
    assert r.status_code == 422 and words in r.json()["detail"]


def test_plain_json_is_still_the_workbench_format(client: tuple[TestClient, Engine]) -> None:
    c, _ = client
    r = send(c, CE, "application/json")  # a CloudEvent sent as our own format: unknown fields
    assert r.status_code == 422 and r.json()["errors"][0]["field"] in ("data", "datacontenttype", "id")


def test_openapi_documents_both_cloudevents_media_types() -> None:
    body = openapi_document()["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/cloudevents+json", "application/cloudevents-batch+json"} == set(body)
    schema = openapi_document()["components"]["schemas"]["CloudEvent"]
    assert schema["required"] == ["specversion", "id", "source", "type", "subject"]


# ------------------------------------------------------------------------------ out

STORED = [
    ("llm.tokens", "cus_1", 1791028800250000, "evt-1", '{"model":"gpt-4o","tokens":1250}'),
    ("pay", "cus_2", 1791028800000000, "h:1", '{"amount":1.50,"ok":true,"tags":["a",{"b":1}],"usage":{"in":3,"out":{"x":-0}},"z":null}'),
    ("old", "cus_3", -1, "k", "{}"),
]


def test_cloudevents_out_keep_the_stored_properties_text() -> None:
    lines = cloudevent_lines(STORED, source="test").splitlines()
    first = json.loads(lines[0])
    assert first == {"specversion": "1.0", "id": "evt-1", "source": "test", "type": "llm.tokens", "subject": "cus_1",
                     "time": "2026-10-03T12:00:00.250000Z", "datacontenttype": "application/json",
                     "data": {"model": "gpt-4o", "tokens": 1250}}
    assert lines[1].endswith(',"data":' + STORED[1][4] + "}")  # 1.50 and -0 as stored
    assert json.loads(lines[2])["time"] == "1969-12-31T23:59:59.999999Z"
    for line in lines:
        jsonschema.validate(json.loads(line), CLOUDEVENT)


def test_lago_events_out_flatten_to_strings_and_numbers() -> None:
    lines = lago_event_lines(STORED).splitlines()
    assert json.loads(lines[0]) == {"event": {"transaction_id": "evt-1", "external_subscription_id": "cus_1",
                                              "code": "llm.tokens", "timestamp": 1791028800.25,
                                              "properties": {"model": "gpt-4o", "tokens": 1250}}}
    assert '"timestamp":1791028800.25,' in lines[0]
    second = json.loads(lines[1])["event"]["properties"]
    assert second == {"amount": 1.5, "ok": "true", "tags": '["a",{"b":1}]', "usage.in": 3, "usage.out.x": 0}
    assert '"amount":1.50' in lines[1] and '"usage.out.x":-0' in lines[1]  # exact literals, nested → dotted keys
    assert '"timestamp":-0.000001' in lines[2]
    for line in lines:
        jsonschema.validate(json.loads(line), LAGO_EVENT)


def test_stored_event_batches_stream_in_id_order(sqlite_engine: Engine, write_file) -> None:  # noqa: ANN001
    body = "\n".join(json.dumps({**CE, "id": f"e{i}", "time": f"2026-10-0{1 + i % 9}T00:00:00Z"}) for i in range(25))
    ingest.import_file(sqlite_engine, write_file("ce.jsonl", body))
    batches = stored_event_batches(sqlite_engine, 10)
    assert iter(batches) is batches  # a generator: one batch at a time
    sizes = [len(b) for b in batches]
    assert sizes == [10, 10, 5]
    assert [r[3] for b in stored_event_batches(sqlite_engine, 7) for r in b] == [f"e{i}" for i in range(25)]
    with pytest.raises(ValueError):
        next(stored_event_batches(sqlite_engine, 0))


def test_stored_events_round_trip_through_cloudevents(engine: Engine, tmp_path: Path) -> None:
    """Export the store as CloudEvents, import into another store: the same rows (PostgreSQL too)."""
    source = tmp_path / "in.csv"
    source.write_text("event_name,customer_id,timestamp,tokens,model\n"
                      "llm.tokens,c1,2026-10-03T12:00:00.123456Z,12.50,a\nllm.tokens,c2,2026-10-04,007,b\n")
    ingest.import_file(engine, source)
    out = tmp_path / "out.jsonl"
    out.write_text("".join(cloudevents.cloudevents(stored_event_batches(engine, 1))))
    other = store.make_engine("sqlite://")
    assert ingest.import_file(other, out).accepted == 2
    assert rows(other) == rows(engine)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(
    st.from_regex(r"[a-z][a-z0-9_.:-]{0,20}", fullmatch=True),
    st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and "\x00" not in s and s),
    st.integers(-2_000_000_000_000_000, 4_000_000_000_000_000),
    st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and "\x00" not in s and s),
    st.dictionaries(st.text(max_size=8).filter(lambda s: "\x00" not in s),
                    st.one_of(st.integers(-10**30, 10**30), st.text(max_size=10).filter(lambda s: "\x00" not in s),
                              st.booleans(), st.none()), max_size=4),
), min_size=1, max_size=10, unique_by=lambda r: r[3]))
def test_cloudevents_out_read_back_as_the_same_rows(events: list[tuple[Any, ...]]) -> None:
    stored = [(n, c, t, k, ingest.canonical_json(ingest._plain(p))) for n, c, t, k, p in events]
    stored = [r for r in stored if all(ch.encode("utf-8", "surrogatepass") == ch.encode("utf-8", "ignore")
                                       for ch in r[1] + r[3] + r[4])]
    parsed = ingest.parse_jsonl(cloudevent_lines(stored))
    assert not parsed.errors, parsed.errors
    assert parsed.rows() == stored


def _reference_flat(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Lago's properties, one event at a time: the obviously-correct form of the rule."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(_reference_flat(value, f"{prefix}{key}."))
        elif value is None:
            continue
        elif isinstance(value, bool):
            out[f"{prefix}{key}"] = "true" if value else "false"
        elif isinstance(value, list):
            out[f"{prefix}{key}"] = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        else:
            out[f"{prefix}{key}"] = value
    return out


_leaf = st.one_of(st.integers(-10**20, 10**20), st.booleans(), st.none(),
                  st.sampled_from(["{", "[x]", "true", "null", "a\"b", "ü", "\n"]), st.text(max_size=6))
_props = st.recursive(_leaf, lambda inner: st.one_of(st.lists(inner, max_size=2),
                                                     st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                      max_leaves=8)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.dictionaries(st.text(min_size=1, max_size=5), _props, max_size=4),
                          st.integers(-10**15, 10**16)), min_size=1, max_size=8))
def test_lago_lines_match_the_one_event_at_a_time_rule(cases: list[tuple[dict[str, Any], int]]) -> None:
    rows = [("ev", "cus", ts, f"k{i}", ingest.canonical_json(ingest._plain(p))) for i, (p, ts) in enumerate(cases)]
    lines = lago_event_lines(rows).split("\n")[:-1]  # JSON Lines end at \n only (U+0085 may be in a value)
    assert len(lines) == len(rows)
    for (props, ts), line in zip(cases, lines):
        event = json.loads(line)["event"]
        assert event["properties"] == _reference_flat(props)
        exact = json.loads(line, parse_float=Decimal, parse_int=Decimal)["event"]["timestamp"]
        assert exact == Decimal(ts).scaleb(-6)  # epoch seconds, exactly
