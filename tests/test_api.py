"""The HTTP API (metering.api) through Starlette's TestClient: every endpoint and error code.

Each test gets a fresh SQLite file store and a known key (METERING_API_KEY). The store-level
rules (atomic batches, idempotency, the day's import record) also run on PostgreSQL when
METERING_TEST_POSTGRES_URL names a server (the `engine` fixture of conftest.py).
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from metering import api, apikeys, ingest, metrics, store

KEY = "mtr_test_key_for_the_api_tests_0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


def make_client(engine: Engine) -> TestClient:
    return TestClient(Starlette(routes=api.api_routes(engine)), raise_server_exceptions=False)


@pytest.fixture
def file_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv(apikeys.ENV_VAR, KEY)
    engine = store.make_engine(f"sqlite:///{tmp_path / 'api.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def client(file_engine: Engine) -> Iterator[TestClient]:
    with make_client(file_engine) as c:
        yield c


@pytest.fixture
def any_client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """Over SQLite (in memory) and PostgreSQL (when configured)."""
    monkeypatch.setenv(apikeys.ENV_VAR, KEY)
    with make_client(engine) as c:
        yield c


def event(n: int = 0, **over: object) -> dict:
    base = {
        "event_name": "llm.tokens",
        "customer_id": f"cus_{n % 3}",
        "timestamp": f"2026-10-03T12:{n % 60:02d}:00Z",
        "properties": {"tokens": 100 + n, "model": "gpt-4o" if n % 2 else "gpt-4o-mini"},
    }
    base.update(over)
    return base


def stored(engine: Engine) -> list[tuple]:
    """(event_name, customer_id, ts_us, idempotency_key, properties) in store order."""
    return [row[1:] for row in store.event_rows(engine)]


def post(client: TestClient, body: object, **kwargs: object):
    return client.post("/api/v1/events", content=json.dumps(body), headers={**AUTH, "Content-Type": "application/json"}, **kwargs)


def assert_error(response, status: int, error: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "detail"} and body["detail"]
    if error:
        assert body["error"] == error, body
    return body


# =========================================================================== health, openapi, routing


def test_health_needs_no_key(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert client.head("/api/v1/health").status_code == 200


def test_health_reports_an_unreachable_store(tmp_path, monkeypatch):
    monkeypatch.setenv(apikeys.ENV_VAR, KEY)
    engine = store.make_engine(f"sqlite:///{tmp_path / 'gone.db'}")
    with make_client(engine) as c:
        assert c.get("/api/v1/health").status_code == 200
        engine.dispose()
        (tmp_path / "gone.db").unlink()
        (tmp_path / "gone.db").mkdir()  # a directory: SQLite cannot open it
        response = c.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_openapi_document_is_public_and_lists_every_endpoint(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/api/v1/events", "/api/v1/metrics", "/api/v1/metrics/{code}", "/api/v1/usage", "/api/v1/health", "/api/v1/openapi.json",
        "/api/v1/entitlements/{customer_id}/{metric}", "/api/v1/alerts",
    }
    assert doc["paths"]["/api/v1/events"]["post"]["responses"].keys() >= {"200", "401", "413", "422"}


def test_unknown_paths_and_methods_answer_json(client):
    assert_error(client.get("/api/v1/nothing/here", headers=AUTH), 404, "not_found")
    assert_error(client.get("/api/v1", headers=AUTH), 404, "not_found")
    response = client.get("/api/v1/events", headers=AUTH)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    assert_error(client.delete("/api/v1/metrics", headers=AUTH), 405)
    assert_error(client.put("/api/v1/health"), 405)


# =========================================================================== auth


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {KEY}x"},
    {"Authorization": f"Basic {KEY}"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer " + "x" * 10_000},
    {"X-API-Key": KEY},
])
@pytest.mark.parametrize("method, path", [
    ("POST", "/api/v1/events"), ("GET", "/api/v1/metrics"), ("GET", "/api/v1/metrics/x"), ("GET", "/api/v1/usage?metric=x"),
])
def test_401_without_the_key(client, file_engine, headers, method, path):
    response = client.request(method, path, headers=headers, content=json.dumps(event()) if method == "POST" else None)
    body = assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "key" in body["detail"]
    assert stored(file_engine) == []


def test_the_scheme_is_case_insensitive(client):
    assert client.get("/api/v1/metrics", headers={"Authorization": f"bearer {KEY}"}).status_code == 200


def test_a_new_key_works_beside_the_old_one_and_a_revoked_key_stops_at_once(client, file_engine):
    apikeys.ensure_key(file_engine)  # the start-up key (METERING_API_KEY), as the server's first request makes it
    _info, new = apikeys.create_key(file_engine, "second")
    assert client.get("/api/v1/metrics", headers=AUTH).status_code == 200
    assert client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    apikeys.revoke_key(file_engine, apikeys.identify(file_engine, KEY))
    assert_error(client.get("/api/v1/metrics", headers=AUTH), 401)
    assert client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {new}"}).status_code == 200


def test_a_request_records_the_keys_last_use(client, file_engine):
    assert client.get("/api/v1/metrics", headers=AUTH).status_code == 200
    [info] = apikeys.list_keys(file_engine)
    assert info.last_used_at is not None


def test_unauthenticated_big_bodies_are_refused_before_reading(client):
    response = client.post("/api/v1/events", content=b"x" * (api.MAX_BODY_BYTES + 10))
    assert_error(response, 401)


# =========================================================================== POST /events


def test_single_event_is_stored(client, file_engine):
    response = post(client, event(1))
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": 0, "errors": []}
    [row] = stored(file_engine)
    assert row[:3] == ("llm.tokens", "cus_1", int(datetime(2026, 10, 3, 12, 1, tzinfo=timezone.utc).timestamp()) * 1_000_000)
    assert row[4] == '{"model":"gpt-4o","tokens":101}'
    assert row[3].startswith("h:")  # the content hash


def test_the_same_event_twice_is_a_duplicate(any_client, engine):
    assert post(any_client, event(1)).json()["accepted"] == 1
    assert post(any_client, event(1)).json() == {"accepted": 0, "duplicates": 1, "rejected": 0, "errors": []}
    # Same content written differently (key order, spacing, offset) is the same event.
    same = {"properties": {"model": "gpt-4o", "tokens": 101}, "timestamp": "2026-10-03T14:01:00+02:00",
            "customer_id": "cus_1", "event_name": "llm.tokens"}
    assert post(any_client, same).json()["duplicates"] == 1
    assert len(stored(engine)) == 1


def test_idempotency_key_decides_duplicates(any_client, engine):
    assert post(any_client, event(1, idempotency_key="k-1")).json()["accepted"] == 1
    # Different content, same key: a duplicate, not stored.
    assert post(any_client, event(2, idempotency_key="k-1")).json()["duplicates"] == 1
    assert post(any_client, event(1, idempotency_key="k-2")).json()["accepted"] == 1
    assert [r[3] for r in stored(engine)] == ["k-1", "k-2"]


def test_api_keys_match_file_import_keys(client, file_engine, write_file):
    """An event sent through the API and the same event in a file are one event."""
    events = [event(i) for i in range(5)] + [event(9, timestamp=1_791_028_800.5), event(10, properties={"v": 1.50, "n": None})]
    assert post(client, {"events": events}).json()["accepted"] == 7
    result = ingest.import_file(file_engine, write_file("e.json", json.dumps(events)))
    assert (result.accepted, result.duplicates) == (0, 7)


def test_single_invalid_event_is_a_422_naming_the_field(client, file_engine):
    body = assert_error(post(client, event(1, timestamp="yesterday")), 422, "invalid_event")
    assert body["errors"] == [{"index": 0, "field": "timestamp", "reason": body["errors"][0]["reason"]}]
    assert body["detail"].startswith("timestamp: ")
    body = assert_error(post(client, {**event(1), "amount": 3}), 422, "invalid_event")
    assert body["errors"][0]["field"] == "amount"
    body = assert_error(post(client, {"customer_id": "c", "timestamp": "2026-10-03"}), 422, "invalid_event")
    assert body["errors"][0]["field"] == "event_name"
    assert stored(file_engine) == []


def test_batch_stores_good_events_and_reports_bad_ones_by_index(client, file_engine):
    events = [event(0), event(1, customer_id=""), event(2), {"oops": True}, event(4, event_name="bad name!"), "text", event(6)]
    response = post(client, {"events": events})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 0, 4)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "customer_id"), (3, "oops"), (4, "event_name"), (5, "event")]
    assert [r[1] for r in stored(file_engine)] == ["cus_0", "cus_2", "cus_0"]


def test_batch_counts_duplicates_inside_and_across_batches(any_client, engine):
    batch = [event(1, idempotency_key="a"), event(2, idempotency_key="b"), event(3, idempotency_key="a"), event(4)]
    assert post(any_client, {"events": batch}).json() == {"accepted": 3, "duplicates": 1, "rejected": 0, "errors": []}
    # The first of a repeated key wins, and store order is input order.
    assert [(r[3], r[4]) for r in stored(engine)][:2] == [("a", '{"model":"gpt-4o","tokens":101}'), ("b", '{"model":"gpt-4o-mini","tokens":102}')]
    again = post(any_client, {"events": batch + [event(5)]}).json()
    assert (again["accepted"], again["duplicates"]) == (1, 4)


def test_empty_batch_is_fine(client, file_engine):
    assert post(client, {"events": []}).json() == {"accepted": 0, "duplicates": 0, "rejected": 0, "errors": []}


def test_a_batch_of_1000_is_accepted_and_1001_refused(client, file_engine):
    events = [event(i, customer_id=f"c{i}") for i in range(api.MAX_BATCH)]
    assert post(client, {"events": events}).json()["accepted"] == 1000
    body = assert_error(post(client, {"events": events + [event(5000, customer_id="c5000")]}), 422, "too_many_events")
    assert "1,000" in body["detail"]
    assert len(stored(file_engine)) == 1000


def test_a_batch_is_stored_whole_or_not_at_all(file_engine):
    """A failure in the middle of a batch (a trigger aborts the 6th insert) leaves nothing,
    not even the counts on the import record."""
    with make_client(file_engine) as c:
        assert post(c, event(100)).status_code == 200
        with file_engine.begin() as conn:
            conn.execute(text(
                "CREATE TRIGGER boom BEFORE INSERT ON event WHEN NEW.customer_id = 'boom'"
                " BEGIN SELECT RAISE(ABORT, 'boom'); END"))
        events = [event(i, customer_id=f"ok{i}") for i in range(5)] + [event(5, customer_id="boom")] + [event(6, customer_id="ok6")]
        response = post(c, {"events": events})
        assert response.status_code == 500
        assert response.json()["error"] == "internal_error"
        assert [r[1] for r in stored(file_engine)] == ["cus_1"]
        with file_engine.connect() as conn:
            assert conn.execute(text("SELECT accepted, duplicates, rejected FROM import_batch")).all() == [(1, 0, 0)]
        with file_engine.begin() as conn:
            conn.execute(text("DROP TRIGGER boom"))
        assert post(c, {"events": events}).json()["accepted"] == 7


def test_postgres_batch_is_atomic(postgres_engine, monkeypatch):
    monkeypatch.setenv(apikeys.ENV_VAR, KEY)
    with postgres_engine.begin() as conn:
        conn.execute(text(
            "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN IF NEW.customer_id = 'boom' THEN"
            " RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"))
        conn.execute(text("CREATE TRIGGER boom BEFORE INSERT ON event FOR EACH ROW EXECUTE FUNCTION boom()"))
    with make_client(postgres_engine) as c:
        events = [event(i, customer_id=f"ok{i}") for i in range(5)] + [event(5, customer_id="boom")]
        assert post(c, {"events": events}).status_code == 500
        assert stored(postgres_engine) == []


def test_api_events_are_filed_under_the_days_import(any_client, engine):
    post(any_client, {"events": [event(1), event(2), {"bad": 1}]})
    post(any_client, event(1))
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT source, accepted, duplicates, rejected FROM import_batch")).all()
    assert [tuple(r) for r in rows] == [(f"API {day}", 2, 1, 1)]


def test_a_deleted_import_record_is_recreated(client, file_engine):
    post(client, event(1))
    with file_engine.connect() as conn:
        import_id = conn.execute(text("SELECT id FROM import_batch")).scalar_one()
    store.delete_import(file_engine, import_id)
    assert post(client, event(2)).json()["accepted"] == 1
    assert post(client, event(3)).json()["accepted"] == 1
    with file_engine.connect() as conn:
        assert conn.execute(text("SELECT accepted FROM import_batch")).scalars().all() == [2]


# ---- body limits and malformed bodies


def test_413_when_content_length_is_over_the_limit(client, file_engine):
    big = json.dumps({"events": [event(0, properties={"pad": "x" * 2000, "i": i}) for i in range(600)]})
    assert len(big) > api.MAX_BODY_BYTES
    body = assert_error(post(client, json.loads(big)), 413, "body_too_large")
    assert "1,048,576" in body["detail"]
    assert stored(file_engine) == []


def test_413_when_a_streamed_body_grows_over_the_limit(client, file_engine):
    def chunks():
        yield b'{"events": ['
        for i in range(1000):
            yield json.dumps(event(i, properties={"pad": "y" * 2000})).encode() + b","
        yield b"]}"

    response = client.post("/api/v1/events", content=chunks(), headers=AUTH)  # chunked: no Content-Length
    assert_error(response, 413, "body_too_large")
    assert stored(file_engine) == []


def test_a_body_just_under_the_limit_is_read(client):
    pad = "z" * (api.MAX_BODY_BYTES - 400)
    response = post(client, event(0, properties={"pad": pad}))
    assert response.status_code == 200 and response.json()["accepted"] == 1


@pytest.mark.parametrize("raw, error", [
    (b"", "invalid_json"),
    (b"   \n", "invalid_json"),
    (b"not json", "invalid_json"),
    (b'{"event_name": "a",', "invalid_json"),
    (b"\xff\xfe{}", "invalid_json"),
    (b'{"event_name": NaN}', "invalid_json"),
    (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    (b"[]", "invalid_shape"),
    (b'[{"event_name": "a", "customer_id": "c", "timestamp": "2026-10-03"}]', "invalid_shape"),
    (b"42", "invalid_shape"),
    (b"1.5", "invalid_shape"),
    (b'"text"', "invalid_shape"),
    (b"null", "invalid_shape"),
    (b"true", "invalid_shape"),
    (b'{"events": {}}', "invalid_shape"),
    (b'{"events": null}', "invalid_shape"),
    (b'{"events": [], "extra": 1}', "invalid_shape"),
    (b"{}", "invalid_event"),
    (b'{"event_name": 1, "customer_id": 2, "timestamp": 3}', "invalid_event"),
    (b'{"event_name": "a", "customer_id": "c", "timestamp": "2026-10-03", "properties": []}', "invalid_event"),
    (b'{"event_name": "a", "customer_id": "c", "timestamp": "2026-10-03", "properties": {"x": "\\u0000"}}', "invalid_event"),
    (b'{"event_name": "a", "customer_id": "c\\ud800", "timestamp": "2026-10-03"}', "invalid_event"),
    (b'{"event_name": "a", "customer_id": "c", "timestamp": 1e400}', "invalid_event"),
    (b'{"event_name": "a", "customer_id": "c", "timestamp": "99999-01-01"}', "invalid_event"),
    (b'{"event_name": "a", "customer_id": "c", "timestamp": true}', "invalid_event"),
])
def test_422_for_bodies_that_cannot_be_used(client, file_engine, raw, error):
    response = client.post("/api/v1/events", content=raw, headers=AUTH)
    assert_error(response, 422, error)
    assert stored(file_engine) == []


def test_nul_and_lone_surrogates_are_rejected_per_event(client, file_engine):
    raw = ('{"events": [' + json.dumps(event(1)) + ', {"event_name": "a", "customer_id": "c", "timestamp": "2026-10-03",'
           ' "properties": {"k\\u0000": 1}}, ' + json.dumps(event(2)) + "]}").encode()
    body = client.post("/api/v1/events", content=raw, headers=AUTH).json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["errors"][0]["index"] == 1 and body["errors"][0]["field"] == "properties"
    assert "NUL" in body["errors"][0]["reason"]


def test_numbers_are_kept_exactly(client, file_engine):
    huge = "1" + "0" * 5000
    raw = ('{"event_name": "a", "customer_id": "c", "timestamp": "2026-10-03", "properties": '
           '{"big": ' + huge + ', "f": 0.10, "e": 1E400, "z": -0, "nz": -0.0}}').encode()
    assert client.post("/api/v1/events", content=raw, headers=AUTH).json()["accepted"] == 1
    [row] = stored(file_engine)
    assert row[4] == '{"big":' + huge + ',"e":1E400,"f":0.10,"nz":-0.0,"z":-0}'


def test_utf8_bom_and_unicode_are_fine(client, file_engine):
    raw = "\ufeff".encode() + json.dumps(event(1, customer_id="Zoë 😀", properties={"ключ": "値\u2028"}), ensure_ascii=False).encode()
    assert client.post("/api/v1/events", content=raw, headers=AUTH).json()["accepted"] == 1
    [row] = stored(file_engine)
    assert row[1] == "Zoë 😀" and json.loads(row[4]) == {"ключ": "値\u2028"}


def test_content_type_is_not_required(client):
    response = client.post("/api/v1/events", content=json.dumps(event(3)), headers={**AUTH, "Content-Type": "text/plain"})
    assert response.json()["accepted"] == 1


# =========================================================================== metrics


def make_metric(engine: Engine, **over: object):
    data = {
        "name": "LLM tokens", "code": "llm_tokens", "unit": "tokens", "aggregation": "sum", "event_name": "llm.tokens",
        "value_property": "tokens", "filters": {"region": ["us-east", "eu"]}, "group_by": ["model"],
    }
    data.update(over)
    return metrics.create_metric(engine, data=data)


def test_metrics_list_and_get(client, file_engine):
    assert client.get("/api/v1/metrics", headers=AUTH).json() == {"metrics": []}
    make_metric(file_engine)
    make_metric(file_engine, name="API calls", code="api_calls", aggregation="count", event_name="api.request",
                value_property=None, filters={}, group_by=[])
    listed = client.get("/api/v1/metrics", headers=AUTH).json()["metrics"]
    assert [m["code"] for m in listed] == ["api_calls", "llm_tokens"]
    one = client.get("/api/v1/metrics/llm_tokens", headers=AUTH).json()
    assert one["filters"] == {"region": ["us-east", "eu"]} and one["group_by"] == ["model"]
    assert one["aggregation"] == "sum" and one["value_property"] == "tokens"
    assert one["created_at"].endswith("Z") and "id" not in one
    assert_error(client.get("/api/v1/metrics/nope", headers=AUTH), 404, "not_found")
    assert_error(client.get("/api/v1/metrics/%00%FF", headers=AUTH), 404)


# =========================================================================== usage


def usage(client: TestClient, **params: object):
    return client.get("/api/v1/usage", params=params, headers=AUTH)


def test_usage_aggregates_with_filters_groups_and_window(client, file_engine):
    make_metric(file_engine)
    events = [
        event(0, customer_id="a", properties={"tokens": 10, "model": "m1", "region": "us-east"}, timestamp="2026-10-01T00:00:00Z"),
        event(1, customer_id="a", properties={"tokens": 2.5, "model": "m2", "region": "eu"}, timestamp="2026-10-15T00:00:00Z"),
        event(2, customer_id="b", properties={"tokens": 100, "model": "m1", "region": "asia"}, timestamp="2026-10-15T00:00:00Z"),
        event(3, customer_id="b", properties={"tokens": "x", "region": "eu"}, timestamp="2026-10-20T00:00:00Z"),
        event(4, customer_id="b", properties={"tokens": 1, "model": "m1", "region": "eu"}, timestamp="2026-11-01T00:00:00Z"),
    ]
    assert post(client, {"events": events}).json()["accepted"] == 5
    body = usage(client, metric="llm_tokens").json()
    assert body == {
        "metric": "llm_tokens", "value": "13.5", "events": 4, "skipped": 1,
        "groups": [{"group": {"model": "m1"}, "value": "11"}, {"group": {"model": "m2"}, "value": "2.5"},
                   {"group": {"model": None}, "value": "0"}],
        "from": None, "to": None, "customer_id": None,
    }
    october = usage(client, metric="llm_tokens", **{"from": "2026-10-01", "to": "2026-11-01T00:00:00Z"}).json()
    assert (october["value"], october["events"], october["from"], october["to"]) == ("12.5", 3, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
    only_b = client.get("/api/v1/usage?metric=llm_tokens&customer_id=b&customer_id=nobody", headers=AUTH).json()
    assert (only_b["value"], only_b["events"], only_b["customer_id"]) == ("1", 2, ["b", "nobody"])
    # epoch seconds, and an offset whose '+' arrived unencoded (a space)
    start = int(datetime(2026, 10, 15, tzinfo=timezone.utc).timestamp())
    assert usage(client, metric="llm_tokens", **{"from": str(start)}).json()["value"] == "3.5"
    spaced = client.get("/api/v1/usage?metric=llm_tokens&from=2026-10-15T02:00:00+02:00", headers=AUTH).json()
    assert spaced["from"] == "2026-10-15T00:00:00Z" and spaced["value"] == "3.5"


def test_usage_follows_new_events(client, file_engine):
    make_metric(file_engine, filters={})
    assert usage(client, metric="llm_tokens").json()["value"] == "0"
    post(client, event(1, properties={"tokens": 7, "model": "m"}))
    assert usage(client, metric="llm_tokens").json()["value"] == "7"
    post(client, {"events": [event(2, properties={"tokens": 0.1, "model": "m"}), event(3, properties={"tokens": 0.2, "model": "m"})]})
    assert usage(client, metric="llm_tokens").json()["value"] == "7.3"


@pytest.mark.parametrize("query, needle", [
    ("", "metric is required"),
    ("metric=", "metric is required"),
    ("metric=llm_tokens&from=yesterday", "from"),
    ("metric=llm_tokens&to=2026-13-45", "to"),
    ("metric=llm_tokens&from=", "from is empty"),
    ("metric=llm_tokens&from=2026-10-02&to=2026-10-01", "before"),
    ("metric=llm_tokens&from=2026-10-01&to=2026-10-01", "before"),
    ("metric=llm_tokens&from=1e999", "from"),
    ("metric=llm_tokens&from=%00", "from"),
])
def test_usage_422_says_what_was_wrong(client, file_engine, query, needle):
    make_metric(file_engine)
    body = assert_error(client.get(f"/api/v1/usage?{query}", headers=AUTH), 422, "invalid_parameter")
    assert needle in body["detail"]


def test_usage_404_for_an_unknown_metric(client):
    assert_error(usage(client, metric="nope"), 404, "not_found")


# =========================================================================== never a 500 for bad input


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    JSONISH.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["event_name", "customer_id", "timestamp", "idempotency_key", "properties", "x"]), JSONISH, max_size=6)
    .map(lambda v: json.dumps(v).encode()),
    st.lists(st.dictionaries(st.sampled_from(["event_name", "customer_id", "timestamp", "properties"]), JSONISH), max_size=5)
    .map(lambda v: json.dumps({"events": v}).encode()),
    st.binary(max_size=200),
))
def test_no_body_causes_a_server_error(client, body):
    response = client.post("/api/v1/events", content=body, headers=AUTH)
    assert response.status_code in (200, 422), response.text
    assert set(response.json()) >= ({"accepted", "duplicates", "rejected", "errors"} if response.status_code == 200 else {"error", "detail"})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["metric", "from", "to", "customer_id"]), st.text(max_size=30), max_size=4))
def test_no_usage_query_causes_a_server_error(client, file_engine, params):
    if not metrics.get_metric(file_engine, code="llm_tokens"):
        make_metric(file_engine)
    response = client.get("/api/v1/usage", params=params, headers=AUTH)
    assert response.status_code in (200, 404, 422), response.text


# =========================================================================== the fast path agrees with ingest.parse_records


def _reference(events: list) -> tuple[list[tuple], list[tuple]]:
    parsed = ingest.parse_records(list(enumerate(ingest.loads_exact(json.dumps(events)))))
    return parsed.rows(), [(e.line, e.field, e.reason) for e in parsed.errors]


def _ours_exact(events: list) -> tuple[list[tuple], list[tuple]]:
    good, errors = api.validate_events(ingest.loads_exact(json.dumps(events)), risky=False)  # NUL checks aside
    return [row for _, row in good], [(e["index"], e["field"], e["reason"]) for e in errors]


STAMPS = st.one_of(
    st.datetimes(min_value=datetime(1850, 1, 1), max_value=datetime(2300, 1, 1)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.datetimes(min_value=datetime(1850, 1, 1), max_value=datetime(2300, 1, 1)).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d")),
    st.tuples(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1)), st.integers(-23, 23), st.sampled_from([0, 30, 45, 59]))
    .map(lambda t: t[0].strftime("%Y-%m-%dT%H:%M:%S") + f"{'+' if t[1] >= 0 else '-'}{abs(t[1]):02d}:{t[2]:02d}"),
    st.integers(-10**12, 10**12),
    st.decimals(min_value=-10**10, max_value=10**10, places=3, allow_nan=False).map(float),
    st.sampled_from(["2026-10-03T24:00:00Z", "2026-02-30", "2026-10-03T12:00Z", "2026-10-03T12:00:00.5Z", "2026-10-03T12:00:00.1234567Z",
                     " 2026-10-03", "2026-10-03 12:00:00", "2026-10-03T12:00:00+24:00", "20261003", "2026-W40", "２０２６-10-03",
                     "2026-10-03T12:00:00z", "1700000000", "", "0", "2026-10-03T12:00:60Z", "-2026-10-03"]),
)
NAMES = st.one_of(st.sampled_from(["llm.tokens", "a", "x" * 100, "x" * 101, " padded ", "bad name", "ü", "a\n"]),
                  st.text(alphabet=string.ascii_letters + "_.:-", min_size=1, max_size=12))
TEXTS = st.one_of(st.sampled_from(["cus_1", " cus", "cus ", "\tcus", "c" * 255, "c" * 256, "", " ", "ü", "a\u00a0", "\u2003x", "x\x1f"]),
                  st.text(max_size=12).filter(lambda t: "\x00" not in t))  # NUL: checked apart (risky=True)
PROPS = st.dictionaries(st.text(max_size=6), JSONISH, max_size=4)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(st.fixed_dictionaries(
    {"event_name": NAMES, "customer_id": TEXTS, "timestamp": STAMPS},
    optional={"properties": st.one_of(PROPS, st.none(), st.integers()), "idempotency_key": st.one_of(TEXTS, st.none(), st.integers())},
), max_size=6))
def test_validation_matches_parse_records(events):
    assert _ours_exact(events) == _reference(events)
    for body, single in ((json.dumps({"events": events}).encode(), False), (json.dumps(events[0]).encode() if events else b"{}", True)):
        fast = api.fast_rows(body)
        if fast is not None:  # the msgspec path, when it takes a body, gives the very same rows
            assert fast == (_reference(events[:1] if single else events)[0], single)


def test_fast_path_edge_timestamps_match():
    for stamp in ["1899-12-31T23:59:59Z", "1900-01-01T00:00:00Z", "2200-12-31T23:59:59Z", "2201-01-01T00:00:00Z",
                  "2026-10-03T12:00:00-23:59", "2026-10-03", "2026-10-03T12:00:00", 0, -1, 1791028800, 1791028800.123456, -0.5]:
        events = [event(0, timestamp=stamp)]
        assert _ours_exact(events) == _reference(events), stamp


def test_msgspec_canonical_json_matches_ingest_for_every_character():
    """Escapes are per character, so checking every code point checks every string."""
    step = 4096
    for start in range(0, 0x110000, step):
        chars = "".join(chr(c) for c in range(start, min(start + step, 0x110000)) if not 0xD800 <= c <= 0xDFFF)
        value = {chars: [chars, ingest._mark("1.50")], "k": {"b": chars, "a": None, "c": True}}
        assert api.canonical_json(value) == ingest.canonical_json(value)


def test_content_keys_match_ingest():
    names, customers, stamps, props = ["a", "llm.tokens", "x"], ["c", "Zoë", ""], [0, -5_000_000, 2**52], ["{}", '{"a":1}', '{"é":"\\u0000"}']
    import numpy as np
    import pyarrow as pa

    expected = ingest.content_keys(pa.array(names), pa.array(customers), np.array(stamps), pa.array(props)).to_pylist()
    assert api.content_keys(names, customers, stamps, props) == expected


def test_codes_that_cannot_exist_are_404_on_every_store(any_client):
    """Text PostgreSQL cannot even take as a parameter (NUL) must still be a plain 404."""
    for code in ["%00", "a%00b", "x" * 300, "%F0%9F%98%80", "Upper"]:
        assert_error(any_client.get(f"/api/v1/metrics/{code}", headers=AUTH), 404, "not_found")
        assert_error(any_client.get(f"/api/v1/usage?metric={code}", headers=AUTH), 404, "not_found")
    assert any_client.get("/api/v1/usage?metric=x&customer_id=a%00b", headers=AUTH).status_code == 404


def test_stored_properties_are_the_canonical_text_exactly(any_client, engine):
    """Whatever path a batch takes to the store, the properties text is ingest's canonical JSON."""
    props = {"z": "quote \" backslash \\ tab \t nl \n ctl \x01 del \x7f", "a": ["ü", "😀", "\u2028", None, True, 1.50, -3],
             "m": {"b": 1e-7, "a": "</script>"}}
    events = [event(i, properties=props) for i in range(3)]
    assert post(any_client, {"events": events}).json()["accepted"] == 3
    expected = ingest.canonical_json(ingest.loads_exact(json.dumps(props)))
    assert [r[4] for r in stored(engine)] == [expected] * 3


def test_the_store_version_counts_api_events(any_client, engine):
    """The store's event count (what FrameCache compares to extend its frame instead of
    reloading it) follows API writes, duplicates and rejections included."""
    post(any_client, {"events": [event(1), event(2), event(1), {"bad": 1}]})
    post(any_client, event(3))
    post(any_client, event(3))
    assert store.event_count(engine) == len(store.event_rows(engine)) == 3


def test_usage_extends_the_frame_instead_of_reloading(client, file_engine, monkeypatch):
    from metering.frame import EventFrame

    make_metric(file_engine, filters={})
    post(client, event(1, properties={"tokens": 5, "model": "m"}))
    assert usage(client, metric="llm_tokens").json()["value"] == "5"
    loads = []
    real = EventFrame.from_store.__func__

    def counting(cls, *args, **kwargs):
        loads.append(1)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(EventFrame, "from_store", classmethod(counting))
    post(client, {"events": [event(2, properties={"tokens": 1, "model": "m"}), event(3, properties={"tokens": 1, "model": "m"})]})
    assert usage(client, metric="llm_tokens").json()["value"] == "7"
    assert loads == []  # only the new rows were read


# =========================================================================== issue 8: intake rules and agreement with the document


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/metrics", "/api/v1/metrics/x", "/api/v1/usage",
                                  "/api/v1/health", "/api/v1/openapi.json", "/api/v1", "/api/v1/nothing"])
def test_any_other_method_is_a_json_405_or_404_never_a_500(method, path):
    """Wired as the served app is (st.App's Starlette app, whose middleware sends /api/v1 to a
    bare Router): Starlette's own 405 is an exception there, which nothing handled (a 500)."""
    engine = store.make_engine("sqlite://")
    app = Starlette(middleware=api.middleware(api.api_routes(engine)))
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.request(method, path, headers=AUTH)
    if path in ("/api/v1", "/api/v1/nothing"):
        assert_error(response, 404, "not_found")
    else:
        assert_error(response, 405, "method_not_allowed")
        assert method not in response.headers["allow"]


@pytest.mark.parametrize("value", ["-99999999999", "99999999999", "9999-01-01T00:00:00Z", "1850-01-01"])
def test_usage_times_outside_the_supported_range_are_422(client, file_engine, value):
    metrics.create_metric(file_engine, data={"name": "Calls", "code": "calls", "unit": "calls"})
    body = assert_error(client.get("/api/v1/usage", params={"metric": "calls", "from": value}, headers=AUTH), 422,
                        "invalid_parameter")
    assert "supported times" in body["detail"]


def test_empty_or_overlong_parameters_are_invalid_in_the_document_and_refused_by_the_server(client):
    doc = client.get("/api/v1/openapi.json").json()
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/usage"]["get"]["parameters"]}
    assert params["metric"]["minLength"] == 1 and params["from"]["minLength"] == 1 and params["to"]["minLength"] == 1
    assert params["customer_id"]["items"] == {"type": "string", "minLength": 1, "maxLength": 255}
    assert_error(client.get("/api/v1/usage?metric=", headers=AUTH), 422, "invalid_parameter")
    assert_error(client.get("/api/v1/usage?metric=x&from=", headers=AUTH), 422, "invalid_parameter")
    assert_error(client.get("/api/v1/usage?metric=x&customer_id=", headers=AUTH), 422, "invalid_parameter")
    assert_error(client.get("/api/v1/usage", params={"metric": "x", "customer_id": "c" * 256}, headers=AUTH), 422)


def test_event_fields_are_kept_exactly_as_sent(client, file_engine):
    metrics.create_metric(file_engine, data={"name": "Calls", "code": "calls", "unit": "calls", "event_name": "e"})
    body = post(client, {"events": [
        event(event_name="e", customer_id="c1", idempotency_key="k1"),
        event(event_name="e", customer_id=" c1", idempotency_key=" k1 "),
        event(event_name=" e", customer_id="c1"),
    ]}).json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 1)
    assert body["errors"][0]["index"] == 2 and body["errors"][0]["field"] == "event_name"
    assert sorted((r[1], r[3]) for r in stored(file_engine)) == [(" c1", " k1 "), ("c1", "k1")]
    usage = client.get("/api/v1/usage", params={"metric": "calls", "customer_id": " c1"}, headers=AUTH).json()
    assert usage["events"] == 1 and usage["customer_id"] == [" c1"]


def _iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(datetime.now(timezone.utc).timestamp() + seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_events_more_than_five_minutes_ahead_are_refused(client, file_engine):
    # a single event: 422 with the reason; nothing stored
    body = assert_error(post(client, event(timestamp="2099-01-01T00:00:00Z")), 422, "invalid_event")
    assert body["errors"][0]["field"] == "timestamp" and "5 minutes" in body["errors"][0]["reason"]
    assert stored(file_engine) == []
    # a batch: the far-future ones are reported by index, the others stored (fast and exact paths)
    for extra in ({}, {"properties": {"n": -0}}):  # "-0" forces the exact path
        batch = [event(1, **extra), event(2, timestamp=_iso_in(600), **extra), event(3, timestamp=_iso_in(120), **extra),
                 event(4, timestamp=int(datetime.now(timezone.utc).timestamp()) + 86_400, **extra)]
        result = post(client, {"events": batch}).json()
        assert [e["index"] for e in result["errors"]] == [1, 3], result
        assert result["rejected"] == 2 and result["accepted"] + result["duplicates"] == 2


@pytest.mark.parametrize("stamp", ["9999-01-01T00:00:00Z", "1899-12-31T23:59:59Z", 253402300799, -2208988801])
def test_timestamps_outside_the_supported_range_are_refused_with_the_reason(client, file_engine, stamp):
    body = assert_error(post(client, event(timestamp=stamp)), 422, "invalid_event")
    assert body["errors"][0]["field"] == "timestamp"
    assert "1900-01-01 to 2199-12-31" in body["errors"][0]["reason"]
    assert stored(file_engine) == []
