"""Live quotas through the HTTP API (contract §8): hard limits on POST /api/v1/events (batch and
single event, every aggregation's rule, soft limits and file imports never refused), parallel
clients at the boundary over real HTTP, the entitlement and alert endpoints, alerts recorded
once per period, and the signed webhook retried after a failure."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import uvicorn
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from metering import api, apikeys, ingest, metrics, plan_store, store
from metering.engine import stored_events
from metering.quotas import alerts as alert_mod
from metering.quotas.entitlement import check
from metering.quotas.ledger import Ledger

KEY = "mtr_test_key_for_the_quota_tests_0123456789"
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

METRICS = [
    {"name": "API calls", "code": "api_calls", "unit": "requests", "metric_type": "limit_metered",
     "event_name": "api.request", "aggregation": "count"},
    {"name": "Tokens cap", "code": "tokens_cap", "unit": "tokens", "metric_type": "limit_metered",
     "event_name": "llm.tokens", "aggregation": "sum", "value_property": "tokens"},
    {"name": "Seats", "code": "seats", "unit": "users", "metric_type": "limit_metered",
     "event_name": "user.active", "aggregation": "unique_count", "distinct_by": "user_id"},
    {"name": "Storage", "code": "storage", "unit": "GB", "metric_type": "limit_metered",
     "event_name": "storage.snapshot", "aggregation": "max", "value_property": "gb"},
    {"name": "Latest size", "code": "latest_size", "unit": "GB", "metric_type": "limit_metered",
     "event_name": "size.report", "aggregation": "latest", "value_property": "gb"},
    {"name": "Credits", "code": "credits", "unit": "credits", "metric_type": "limit_recurring",
     "event_name": "credit.used", "aggregation": "sum", "value_property": "amount"},
    {"name": "Emails", "code": "emails", "unit": "emails", "metric_type": "charge_metered",
     "event_name": "email.sent", "aggregation": "count"},
]
PLAN = {
    "code": "basic", "name": "Basic", "currency": "USD",
    "charges": [{"metric": "emails", "model": "standard", "unit_price": "0.01"}],
    "quotas": [
        {"metric": "api_calls", "limit": "5", "alert_thresholds": ["60", "100"]},
        {"metric": "tokens_cap", "limit": "100"},
        {"metric": "seats", "limit": "2"},
        {"metric": "storage", "limit": "50"},
        {"metric": "latest_size", "limit": "10"},
        {"metric": "credits", "limit": "10", "overage_unit_price": "1"},
    ],
}


def _now_text(seconds_ago: float = 1.0) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).isoformat()


def ev(name: str, customer: str = "c1", key: str | None = None, **props: object) -> dict:
    out = {"event_name": name, "customer_id": customer, "timestamp": _now_text(), "properties": props}
    if key is not None:
        out["idempotency_key"] = key
    return out


def setup_workspace(engine: Engine, plan: dict | None = None) -> None:
    for m in METRICS:
        metrics.create_metric(engine, data=m)
    plan_store.save_plan(engine, plan=plan or PLAN)
    for cid in ("c1", "c2"):
        plan_store.set_subscription(engine, customer_id=cid, plan_code="basic")


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv(apikeys.ENV_VAR, KEY)
    engine = store.make_engine(f"sqlite:///{tmp_path / 'quota.db'}")
    setup_workspace(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(Starlette(routes=api.api_routes(engine)), raise_server_exceptions=False) as c:
        yield c


def post(client: TestClient, body: object):
    return client.post("/api/v1/events", content=json.dumps(body), headers=AUTH)


def batch(client: TestClient, events: list[dict]) -> dict:
    response = post(client, {"events": events})
    assert response.status_code == 200, response.text
    return response.json()


def entitlement(client: TestClient, cid: str, metric: str, quantity: str | None = None) -> dict:
    url = f"/api/v1/entitlements/{cid}/{metric}" + (f"?quantity={quantity}" if quantity is not None else "")
    response = client.get(url, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def from_store(engine: Engine, cid: str, metric: str) -> dict:
    """The entitlement computed from scratch (a new ledger: nothing kept in memory)."""
    from metering.quotas import entitlement as ent_mod

    fresh = Ledger(engine)
    original = ent_mod.ledger_for
    ent_mod.ledger_for = lambda _e: fresh  # type: ignore[assignment]
    try:
        return check(engine, cid, metric).to_json()
    finally:
        ent_mod.ledger_for = original  # type: ignore[assignment]


# --- hard limits ----------------------------------------------------------------------------


def test_count_limit_rejects_past_the_limit_and_leaves_the_rest_of_the_batch(client, engine):
    events = [ev("api.request", key=f"a{i}") for i in range(7)]
    events.insert(3, ev("email.sent", key="mail"))  # another metric: unaffected
    events.append(ev("api.request", "c2", key="other"))  # another customer: its own quota
    events.append(ev("api.request", "nobody", key="free"))  # no subscription: no quota
    result = batch(client, events)
    assert result["accepted"] == 5 + 1 + 1 + 1
    assert result["rejected"] == 2
    assert [e["index"] for e in result["errors"]] == [6, 7]
    for err in result["errors"]:
        assert err["field"] == "quota"
        assert "'api_calls'" in err["reason"] and "limit of 5" in err["reason"]
        end = entitlement(client, "c1", "api_calls")["period"]["end"]
        assert end in err["reason"]
    stored_keys = {r[4] for r in store.event_rows(engine)}
    assert {"a5", "a6"}.isdisjoint(stored_keys) and {"a0", "a4", "mail", "other", "free"} <= stored_keys
    assert entitlement(client, "c1", "api_calls") | {} == from_store(engine, "c1", "api_calls")


def test_a_single_event_over_the_limit_is_a_422_with_the_batch_body(client):
    batch(client, [ev("api.request", key=f"s{i}") for i in range(5)])
    response = post(client, ev("api.request", key="s5"))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "quota_exceeded" and "api_calls" in body["detail"]
    assert body["accepted"] == 0 and body["rejected"] == 1 and body["duplicates"] == 0
    assert body["errors"][0]["index"] == 0 and body["errors"][0]["field"] == "quota"
    # a retry of an event that was stored is a duplicate, never a quota error
    again = post(client, ev("api.request", key="s0"))
    assert again.status_code == 200 and again.json() == {"accepted": 0, "duplicates": 1, "rejected": 0, "errors": []}


def test_sum_rule_used_plus_value_negative_and_skipped_values(client, engine):
    result = batch(client, [
        ev("llm.tokens", key="t1", tokens=60),
        ev("llm.tokens", key="t2", tokens=50),   # 110 > 100: refused
        ev("llm.tokens", key="t3", tokens=40),   # 100: fits exactly
        ev("llm.tokens", key="t4", tokens="abc"),  # not a number: skipped, never refused
        ev("llm.tokens", key="t5", tokens=-10),  # negative: always fits
        ev("llm.tokens", key="t6", tokens=10),   # 90 + 10 = 100 fits
        ev("llm.tokens", key="t7", tokens=0.5),  # 100.5: refused
    ])
    assert [e["index"] for e in result["errors"]] == [1, 6]
    got = entitlement(client, "c1", "tokens_cap", "0")
    assert got["used"] == "100" and got["remaining"] == "0" and got["has_access"] is False and got["fits"] is True
    assert got == from_store(engine, "c1", "tokens_cap") | {"fits": True}


def test_unique_count_known_values_pass_new_ones_need_room(client, engine):
    result = batch(client, [
        ev("user.active", key="u1", user_id="ana"),
        ev("user.active", key="u2", user_id="bo"),
        ev("user.active", key="u3", user_id="ana"),   # known: passes at the limit
        ev("user.active", key="u4", user_id="cy"),    # a third distinct value: refused
        ev("user.active", key="u5"),                  # no user_id: skipped, passes
    ])
    assert [e["index"] for e in result["errors"]] == [3]
    assert "user_id 'cy'" in result["errors"][0]["reason"]
    assert post(client, ev("user.active", key="u6", user_id="bo")).status_code == 200
    assert post(client, ev("user.active", key="u7", user_id="dee")).status_code == 422
    assert entitlement(client, "c1", "seats")["used"] == "2" == from_store(engine, "c1", "seats")["used"]


@pytest.mark.parametrize("metric,name", [("storage", "storage.snapshot"), ("latest_size", "size.report")])
def test_max_and_latest_refuse_values_over_the_limit(client, engine, metric, name):
    limit = 50 if metric == "storage" else 10
    result = batch(client, [ev(name, key="m1", gb=limit - 1), ev(name, key="m2", gb=limit + 1), ev(name, key="m3", gb=limit)])
    assert [e["index"] for e in result["errors"]] == [1]
    got = entitlement(client, "c1", metric)
    assert got["used"] == str(limit)
    assert got == from_store(engine, "c1", metric)
    assert entitlement(client, "c1", metric, str(limit))["fits"] is True
    assert entitlement(client, "c1", metric, str(limit + 1))["fits"] is False


def test_soft_limit_never_rejects_and_reports_overage(client, engine):
    result = batch(client, [ev("credit.used", key=f"c{i}", amount=4) for i in range(5)])
    assert result == {"accepted": 5, "duplicates": 0, "rejected": 0, "errors": []}
    got = entitlement(client, "c1", "credits", "1000")
    assert (got["used"], got["available"], got["overage"], got["remaining"]) == ("20", "10", "10", "0")
    assert got["has_access"] is True and got["fits"] is True and got["carryover"] == "0"


def test_file_imports_are_never_rejected_for_quota(client, engine):
    lines = "\n".join(json.dumps(ev("api.request", key=f"f{i}")) for i in range(9))
    result = ingest.import_file(engine, lines.encode(), name="history.jsonl")
    assert result.accepted == 9 and result.rejected == 0
    # the ledger follows the store: usage is what the Timeline counts (5 of the 9), nothing fits
    got = entitlement(client, "c1", "api_calls")
    assert got["used"] == "5" and got["has_access"] is False
    assert post(client, ev("api.request", key="late")).status_code == 422


def test_a_plan_change_applies_to_the_next_request(client, engine):
    batch(client, [ev("api.request", key=f"p{i}") for i in range(5)])
    assert post(client, ev("api.request", key="p5")).status_code == 422
    bigger = json.loads(json.dumps(PLAN))
    bigger["quotas"][0]["limit"] = "6"
    plan_store.save_plan(engine, plan=bigger)
    assert post(client, ev("api.request", key="p6")).status_code == 200
    assert post(client, ev("api.request", key="p7")).status_code == 422


def test_cloudevents_refused_by_a_limit_keep_their_index(client):
    def ce(i: int) -> dict:
        return {"specversion": "1.0", "id": f"ce{i}", "source": "test", "type": "api.request", "subject": "c1",
                "time": _now_text()}
    items = [ce(0), {"specversion": "1.0", "id": "bad"}] + [ce(i) for i in range(2, 9)]
    response = client.post("/api/v1/events", content=json.dumps(items),
                           headers={**AUTH, "Content-Type": "application/cloudevents-batch+json"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 5
    assert [(e["index"], e["field"]) for e in result["errors"] if e["field"] == "quota"] == [(6, "quota"), (7, "quota"), (8, "quota")]
    assert any(e["index"] == 1 and e["field"] != "quota" for e in result["errors"])


# --- the entitlement endpoint ---------------------------------------------------------------


def test_entitlement_endpoint_errors(client):
    missing = client.get("/api/v1/entitlements/c9/api_calls", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert "no subscription" in missing.json()["detail"]
    charge = client.get("/api/v1/entitlements/c1/emails", headers=AUTH)
    assert charge.status_code == 404 and "charge_metered" in charge.json()["detail"]
    for bad in ("abc", "-1", "1e3", "", "0x10"):
        response = client.get(f"/api/v1/entitlements/c1/api_calls?quantity={bad}", headers=AUTH)
        assert response.status_code == 422, bad
        assert "quantity" in response.json()["detail"]
    assert client.get("/api/v1/entitlements/c1/api_calls").status_code == 401
    assert client.get("/api/v1/entitlements/c1/api_calls?quantiy=2", headers=AUTH).status_code == 422
    fresh = entitlement(client, "c1", "api_calls", "5")
    assert set(fresh) == {"customer_id", "metric", "plan", "metric_type", "period", "limit", "carryover", "available",
                          "used", "remaining", "overage", "has_access", "fits"}
    assert (fresh["used"], fresh["remaining"], fresh["fits"], fresh["carryover"], fresh["overage"]) == ("0", "5", True, None, None)
    assert entitlement(client, "c1", "api_calls", "5.5")["fits"] is False


def test_customer_ids_with_slashes_reach_the_entitlement(client, engine):
    plan_store.set_subscription(engine, customer_id="org/1 team", plan_code="basic")
    response = client.get("/api/v1/entitlements/org%2F1%20team/api_calls", headers=AUTH)
    assert response.status_code == 200 and response.json()["customer_id"] == "org/1 team"


# --- concurrency over real HTTP -------------------------------------------------------------


@pytest.fixture
def live_url(engine: Engine) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=api.api_routes(engine)), log_level="error"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _hammer(url: str, bodies: list[list[bytes]]) -> list[int]:
    statuses: list[int] = []
    lock = threading.Lock()
    gate = threading.Barrier(len(bodies))

    def run(mine: list[bytes]) -> None:
        session = requests.Session()
        gate.wait()
        for body in mine:
            status = session.post(f"{url}/api/v1/events", data=body, headers=AUTH, timeout=30).status_code
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=run, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def test_parallel_clients_never_pass_a_count_limit_together(live_url, engine):
    plan = json.loads(json.dumps(PLAN))
    plan["quotas"][0]["limit"] = "40"
    plan_store.save_plan(engine, plan=plan)
    bodies = [[json.dumps(ev("api.request", key=f"t{t}-{n}")).encode() for n in range(8)] for t in range(10)]
    statuses = _hammer(live_url, bodies)
    assert sorted(set(statuses)) == [200, 422]
    assert statuses.count(200) == 40 and statuses.count(422) == 40
    assert stored_events(engine).aggregate(metrics.get_metric(engine, code="api_calls")).value == 40
    assert from_store(engine, "c1", "api_calls")["used"] == "40"


def test_parallel_clients_never_pass_a_sum_limit_together(live_url, engine):
    bodies = [[json.dumps({"events": [ev("llm.tokens", key=f"s{t}-{n}-{i}", tokens=5) for i in range(2)]}).encode()
               for n in range(3)] for t in range(8)]  # 48 events of 5 tokens; the limit is 100
    _hammer(live_url, bodies)
    tokens = metrics.get_metric(engine, code="tokens_cap")
    assert stored_events(engine).aggregate(tokens).value == Decimal(100)
    assert from_store(engine, "c1", "tokens_cap")["used"] == "100"


def test_many_threads_in_one_process_never_pass_a_limit_together(engine):
    """The write path itself (no HTTP concurrency limit in front): 16 threads at once."""
    backend = api.Backend(engine)
    bodies = [[json.dumps(ev("api.request", key=f"x{t}-{n}")).encode() for n in range(6)] for t in range(16)]
    outcomes: list[int] = []
    gate = threading.Barrier(len(bodies))

    def run(mine: list[bytes]) -> None:
        gate.wait()
        for body in mine:
            try:
                outcomes.append(backend.ingest(body)[1]["accepted"])
            except api.ApiError as exc:
                assert exc.error == "quota_exceeded"
                outcomes.append(0)

    threads = [threading.Thread(target=run, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(outcomes) == 5 and len(outcomes) == 96
    assert stored_events(engine).aggregate(metrics.get_metric(engine, code="api_calls")).value == 5


# --- alerts and the webhook -----------------------------------------------------------------


def test_alerts_are_recorded_once_per_threshold_and_period(client):
    batch(client, [ev("api.request", key=f"a{i}") for i in range(2)])
    assert client.get("/api/v1/alerts", headers=AUTH).json() == {"alerts": []}
    batch(client, [ev("api.request", key="a2")])  # 3 of 5 = 60 %
    listed = client.get("/api/v1/alerts", headers=AUTH).json()["alerts"]
    assert [(a["threshold"], a["used"], a["customer_id"], a["metric"]) for a in listed] == [("60", "3", "c1", "api_calls")]
    batch(client, [ev("api.request", key=f"b{i}") for i in range(5)])  # 5 of 5, then refused
    post(client, ev("api.request", key="c0"))
    listed = client.get("/api/v1/alerts?customer_id=c1&metric=api_calls", headers=AUTH).json()["alerts"]
    assert [a["threshold"] for a in listed] == ["100", "60"]
    assert all(a["delivery"] == "none" and a["period"]["end"] > a["period"]["start"] for a in listed)
    assert client.get("/api/v1/alerts?customer_id=c2", headers=AUTH).json() == {"alerts": []}
    assert client.get("/api/v1/alerts?metric=seats", headers=AUTH).json() == {"alerts": []}
    assert client.get("/api/v1/alerts?limit=0", headers=AUTH).status_code == 422
    assert client.get("/api/v1/alerts?customer=c1", headers=AUTH).status_code == 422
    assert client.get("/api/v1/alerts").status_code == 401


class _Receiver(BaseHTTPRequestHandler):
    """Answers 500 to the first POST, then 200; keeps every body and signature."""

    received: list[tuple[bytes, str | None]] = []
    fail_first = 1
    delay_s = 0.0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.delay_s:
            time.sleep(self.delay_s)
        type(self).received.append((body, self.headers.get(alert_mod.SIGNATURE_HEADER)))
        failing = len(type(self).received) <= type(self).fail_first
        self.send_response(500 if failing else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "fail_first": 1, "delay_s": 0.0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(alert_mod, "RETRY_BASE_S", 0.05)
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_webhook_is_signed_and_retried_after_a_500(client, engine, receiver):
    url, handler = receiver
    secret = alert_mod.new_secret()
    alert_mod.set_webhook(engine, url=url, secret=secret)
    batch(client, [ev("api.request", key=f"w{i}") for i in range(3)])  # 60 %
    _wait(lambda: alert_mod.list_alerts(engine)[0].delivery == "delivered")
    assert len(handler.received) == 2  # the 500, then the retry
    for body, signature in handler.received:
        assert alert_mod.verify(secret, body, signature)
        assert not alert_mod.verify("whsec_another_secret_0123456789", body, signature)
        assert not alert_mod.verify(secret, body + b" ", signature)
    payload = json.loads(handler.received[1][0])
    assert payload["type"] == "quota.threshold_reached" and payload["threshold"] == "60" and payload["customer_id"] == "c1"
    alert = alert_mod.list_alerts(engine)[0]
    assert alert.attempts == 2 and alert.last_error is None and alert.delivered_at is not None
    assert payload["id"] == alert.id


def test_webhook_never_holds_up_ingest(client, engine, receiver):
    url, handler = receiver
    handler.delay_s = 1.5
    handler.fail_first = 0
    alert_mod.set_webhook(engine, url=url, secret=alert_mod.new_secret())
    began = time.monotonic()
    batch(client, [ev("api.request", key=f"n{i}") for i in range(5)])  # 60 % and 100 %
    assert time.monotonic() - began < 1.0
    _wait(lambda: len(handler.received) == 2)
    _wait(lambda: all(a.delivery == "delivered" for a in alert_mod.list_alerts(engine)))


def test_webhook_setting_is_checked():
    assert alert_mod.webhook_problem("ftp://x", "s" * 20) is not None
    assert alert_mod.webhook_problem("https://example.com/hook", "short") is not None
    assert alert_mod.webhook_problem("https://example.com/hook", alert_mod.new_secret()) is None
