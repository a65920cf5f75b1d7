"""The generated snippets really work: run them against the real server (`streamlit run app.py`)
with curl (bash), the venv's Python and Node, and check that each stored its event and moved the
metric's usage (GET /api/v1/usage) by exactly the example value."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from metering import metrics, plan_store, snippets, store
from metering.models import MetricPublic
from tests.server import Server, server  # noqa: F401  (the real-server fixture)

RUNNERS = {
    "curl": ["bash", "-c"],
    "python": [sys.executable, "-c"],
    "javascript": ["node", "--input-type=module", "-e"],
}


@pytest.fixture(scope="module")
def metric(server: Server) -> MetricPublic:
    """A sum metric with a filter and a group-by, created in the server's own store."""
    engine = store.make_engine(server.database_url)
    try:
        return metrics.create_metric(engine, data={
            "name": "LLM input tokens", "code": "llm_input_tokens", "unit": "tokens", "aggregation": "sum",
            "event_name": "llm.tokens", "value_property": "usage.input_tokens",
            "filters": {"region": ["us-east", "eu-west"], "tier": ["3"]}, "group_by": ["model"],
        })
    finally:
        engine.dispose()


def usage(server: Server, code: str) -> dict:
    response = requests.get(f"{server.base_url}/api/v1/usage", params={"metric": code}, headers=server.headers, timeout=10)
    response.raise_for_status()
    return response.json()


def group_value(result: dict, model: str) -> Decimal:
    return next((Decimal(g["value"]) for g in result["groups"] if g["group"] == {"model": model}), Decimal(0))


def stored_events(server: Server) -> list[tuple]:
    engine = store.make_engine(server.database_url)
    try:
        return [(r[2], r[3], r[5]) for r in store.event_rows(engine)]  # customer, ts, properties in store order
    finally:
        engine.dispose()


def next_second() -> None:
    """Snippets stamp events to the second: start each run in a new second, so two runs with
    the same content are two events and not a duplicate."""
    time.sleep(1.001 - (time.time() % 1))


@pytest.mark.parametrize("embed_key", [True, False], ids=["key-in-code", "key-from-env"])
@pytest.mark.parametrize("language", list(RUNNERS))
def test_snippet_sends_an_event_that_counts(server: Server, metric: MetricPublic, language: str, embed_key: bool):
    if language == "javascript" and shutil.which("node") is None:
        pytest.skip("node is not installed")
    if language == "curl" and shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    code = snippets.snippets(metric, base_url=server.base_url, api_key=server.api_key if embed_key else None)[language]
    example = snippets.example_properties(metric)
    amount = Decimal(str(example["usage"]["input_tokens"]))
    assert example["region"] == "us-east" and example["tier"] == 3 and "model" in example  # every property it reads
    before = usage(server, metric.code)
    count_before = len(stored_events(server))
    env = {k: v for k, v in os.environ.items() if k != "METERING_API_KEY"}
    if not embed_key:
        env["METERING_API_KEY"] = server.api_key
    next_second()
    started = time.time()
    done = subprocess.run([*RUNNERS[language], code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, f"{language} failed:\n{code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    reply = done.stdout.strip().splitlines()[-1]
    answer = ast.literal_eval(reply) if language == "python" else json.loads(reply)  # print(dict) / JSON text
    assert answer == {"accepted": 1, "duplicates": 0, "rejected": 0, "errors": []}, done.stdout

    rows = stored_events(server)
    assert len(rows) == count_before + 1
    customer, ts_us, props = rows[-1]
    assert customer == "cus_001"
    assert abs(ts_us / 1e6 - started) < 5  # stamped with the time the code ran
    assert json.loads(props) == example

    after = usage(server, metric.code)
    assert Decimal(after["value"]) - Decimal(before["value"]) == amount
    assert after["events"] - before["events"] == 1
    model = example["model"]
    assert group_value(after, model) - group_value(before, model) == amount


@pytest.mark.parametrize("language", list(RUNNERS))
def test_the_same_snippet_run_twice_stores_two_events(server: Server, metric: MetricPublic, language: str):
    """Issue 8 #7: without a key, two identical requests in the same second were stored once.
    The editor's snippet sends a fixed example event (same content, same timestamp) every run:
    each run's new idempotency key makes it a new event."""
    if language == "javascript" and shutil.which("node") is None:
        pytest.skip("node is not installed")
    if language == "curl" and shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    event = snippets.example_event(metric, when=datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc))
    code = snippets.snippets(metric, base_url=server.base_url, api_key=server.api_key, event=event)[language]
    before = {key for key, in stored_keys(server)}
    for _ in range(2):
        done = subprocess.run([*RUNNERS[language], code], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        reply = done.stdout.strip().splitlines()[-1]
        answer = ast.literal_eval(reply) if language == "python" else json.loads(reply)
        assert answer["accepted"] == 1 and answer["duplicates"] == 0, answer
    new = {key for key, in stored_keys(server)} - before
    assert len(new) == 2 and all(len(k) == 36 and k.count("-") == 4 for k in new)  # two UUIDs


def stored_keys(server: Server) -> list[tuple]:
    engine = store.make_engine(server.database_url)
    try:
        return [(r[4],) for r in store.event_rows(engine)]
    finally:
        engine.dispose()


def test_wrong_key_snippet_fails_loudly(server: Server, metric: MetricPublic):
    code = snippets.snippets(metric, base_url=server.base_url, api_key="mtr_not_the_key")["python"]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "HTTP 401" in done.stderr


def test_the_page_and_the_api_share_one_server(server: Server):
    page = requests.get(server.base_url + "/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert requests.get(server.base_url + "/_stcore/health", timeout=10).text == "ok"
    # the pages' script (app.py run as __main__: main() and the navigation) runs without an error
    assert requests.get(server.base_url + "/_stcore/script-health-check", timeout=60).text == "ok"
    doc = requests.get(server.base_url + "/api/v1/openapi.json", timeout=10).json()
    assert "/api/v1/events" in doc["paths"]


def test_streamlit_run_finds_the_app_object():
    """`streamlit run app.py` serves `app = st.App(...)` (found by reading the file) with uvicorn."""
    from pathlib import Path

    from streamlit.web.server.app_discovery import discover_asgi_app

    found = discover_asgi_app(Path(__file__).resolve().parents[1] / "app.py")
    assert found.is_asgi_app and found.import_string == "app:app"


# =========================================================================== quotas (contract §8)


@pytest.fixture(scope="module")
def hard_quota(server: Server) -> MetricPublic:
    """A hard quota of 2 calls a month with alerts at 50 % and 100 %, for a few customers
    subscribed since the start of this month."""
    engine = store.make_engine(server.database_url)
    try:
        metric = metrics.create_metric(engine, data={
            "name": "Capped calls", "code": "capped_calls", "unit": "calls", "metric_type": "limit_metered",
            "event_name": "capped.call", "aggregation": "count"})
        plan_store.save_plan(engine, plan={"code": "capped", "name": "Capped", "currency": "USD", "quotas": [
            {"metric": "capped_calls", "limit": "2", "alert_thresholds": ["50", "100"]}]})
        start = f"{datetime.now(timezone.utc):%Y-%m-01}"
        for cid in ("cus_check", *(f"cus_q_{language}" for language in RUNNERS)):
            plan_store.set_subscription(engine, customer_id=cid, plan_code="capped", start=start)
    finally:
        engine.dispose()
    # the server reads a change made by another process within a second (metering.quotas.config)
    deadline = time.monotonic() + 10
    while entitlement_of(server, "cus_check", "capped_calls").status_code != 200:
        assert time.monotonic() < deadline, "the server never saw the quota"
        time.sleep(0.2)
    return metric


def entitlement_of(server: Server, customer: str, code: str, quantity: str | None = None) -> requests.Response:
    return requests.get(snippets.entitlement_url(server.base_url, customer, code), headers=server.headers,
                        params={} if quantity is None else {"quantity": quantity}, timeout=10)


def run(language: str, code: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if language == "javascript" and shutil.which("node") is None:
        pytest.skip("node is not installed")
    if language == "curl" and shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    return subprocess.run([*RUNNERS[language], code], capture_output=True, text=True, timeout=60, env=env)


def answer_of(language: str, done: subprocess.CompletedProcess) -> dict:
    reply = done.stdout.strip().splitlines()[-1]
    return ast.literal_eval(reply) if language == "python" else json.loads(reply)


@pytest.mark.parametrize("quantity", ["1", "3"])
@pytest.mark.parametrize("embed_key", [True, False], ids=["key-in-code", "key-from-env"])
@pytest.mark.parametrize("language", list(RUNNERS))
def test_entitlement_snippet_answers_what_the_api_answers(server: Server, hard_quota: MetricPublic, language: str,
                                                          embed_key: bool, quantity: str):
    code = snippets.entitlement_snippets(hard_quota, base_url=server.base_url, customer_id="cus_check",
                                         api_key=server.api_key if embed_key else None, quantity=quantity)[language]
    env = {k: v for k, v in os.environ.items() if k != "METERING_API_KEY"}
    if not embed_key:
        env["METERING_API_KEY"] = server.api_key
    done = run(language, code, env=env)
    assert done.returncode == 0, f"{language} failed:\n{code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    answer = answer_of(language, done)
    assert answer == entitlement_of(server, "cus_check", "capped_calls", quantity).json()
    assert (answer["limit"], answer["available"], answer["used"], answer["remaining"]) == ("2", "2", "0", "2")
    assert answer["fits"] is (quantity == "1") and answer["has_access"] is True
    if language != "curl":  # cURL prints the answer only
        first = done.stdout.strip().splitlines()[0]
        verdict = "fits" if quantity == "1" else "does not fit"
        assert first == f"{verdict}: {quantity} more, 2 of 2 left until {answer['period']['end']}"


@pytest.mark.parametrize("language", list(RUNNERS))
def test_send_until_refused_then_check_and_list_the_alerts(server: Server, hard_quota: MetricPublic, language: str):
    """The journey of a limit metric through the snippets: the send snippet is accepted twice
    and refused the third time (422, field quota, the reason naming metric, limit and period
    end), nothing more is stored; the entitlement snippet then says no access; the alerts
    snippet lists the 50 % and 100 % alerts, once each."""
    customer = f"cus_q_{language}"
    event = {"event_name": "capped.call", "customer_id": customer,
             "timestamp": (datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=5)).strftime(
                 "%Y-%m-%dT%H:%M:%SZ")}
    send = snippets.snippets(hard_quota, base_url=server.base_url, api_key=server.api_key, event=event)[language]
    for _ in range(2):
        done = run(language, send)
        assert done.returncode == 0, done.stdout + done.stderr
        assert answer_of(language, done)["accepted"] == 1
    count = len(stored_events(server))
    done = run(language, send)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "422" in said and '"field":"quota"' in said.replace(" ", "") and "quota_exceeded" in said, said
    period_end = entitlement_of(server, customer, "capped_calls").json()["period"]["end"]
    assert "'capped_calls'" in said and "hard limit of 2 calls" in said and period_end in said, said
    assert len(stored_events(server)) == count  # refused: not stored

    check = snippets.entitlement_snippets(hard_quota, base_url=server.base_url, api_key=server.api_key,
                                          customer_id=customer)[language]
    done = run(language, check)
    assert done.returncode == 0, done.stderr
    answer = answer_of(language, done)
    assert (answer["used"], answer["remaining"], answer["has_access"], answer["fits"]) == ("2", "0", False, False)
    if language != "curl":
        assert done.stdout.startswith(f"does not fit: 1 more, 0 of 2 left until {period_end}")

    listing = snippets.alerts_snippets(base_url=server.base_url, api_key=server.api_key,
                                       params={"customer_id": customer})[language]
    done = run(language, listing)
    assert done.returncode == 0, done.stderr
    found = answer_of(language, done)["alerts"]
    assert sorted((a["customer_id"], a["metric"], a["threshold"], a["used"]) for a in found) == [
        (customer, "capped_calls", "100", "2"), (customer, "capped_calls", "50", "1")]
    assert all(a["period"]["end"] == period_end for a in found)
    if language != "curl":
        assert done.stdout.startswith("2 alert(s)")
    everyone = snippets.alerts_snippets(base_url=server.base_url, api_key=None)[language]
    done = run(language, everyone, env={**os.environ, "METERING_API_KEY": server.api_key})
    assert done.returncode == 0 and {a["customer_id"] for a in answer_of(language, done)["alerts"]} >= {customer}
