"""The Developers page's "Quotas and alerts": the endpoints are listed, the entitlement and alert
snippets shown are exactly `metering.snippets`' for the chosen metric, customer and quantity,
the answer shown is the engine's (`entitlement.check(...).to_json()`, or its 404), and a bad
quantity is named beside the field. (tests/test_snippets_run.py runs these snippets.)"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal as D

from sqlalchemy.engine import Engine

from metering import metrics, plan_store, snippets
from metering.quotas import entitlement
from tests.app.conftest import page
from workbench import developers
from workbench.text import plain

BASE = "http://localhost:8501"  # AppTest has no browser address: the default


def codes(at) -> list[str]:
    return [c.value.strip() for c in at.code]


def shows(at, code_by_language: dict[str, str]) -> bool:
    return all(code.strip() in codes(at) for code in code_by_language.values())


def session_key(at) -> str | None:
    """The key the page created and embeds (an admin's first visit), if any."""
    try:
        return at.session_state["api:key_plain"]
    except KeyError:
        return None


def test_endpoints_and_errors_are_listed(app_engine: Engine) -> None:
    at = page("developers")
    assert not at.exception, at.exception
    paths = [p for d in at.dataframe if "Path" in d.value.columns for p in d.value["Path"]]
    assert "/api/v1/entitlements/{customer_id}/{metric}?quantity=N" in paths and "/api/v1/alerts" in paths
    errors = [e for d in at.dataframe if "error" in d.value.columns for e in d.value["error"]]
    assert "quota_exceeded" in errors
    assert developers.REJECTION_EXAMPLE in codes(at)
    assert json.loads(developers.REJECTION_EXAMPLE)["errors"][0]["field"] == "quota"


def test_without_a_limit_metric_the_examples_use_a_hard_limited_api_requests(app_engine: Engine) -> None:
    at = page("developers")
    assert any("No limit metric yet" in i.value for i in at.info)
    key = session_key(at)
    metric = developers.example_limit_metric()
    expected = snippets.entitlement_snippets(metric, base_url=BASE, api_key=key, customer_id="cus_001", quantity=1)
    assert key is not None and shows(at, expected)
    assert shows(at, snippets.alerts_snippets(base_url=BASE, api_key=key))


def test_snippets_and_the_answer_for_a_subscriber(app_engine: Engine) -> None:
    metrics.create_metric(app_engine, data={"name": "Tokens", "code": "tokens_cap", "unit": "tokens",
                                            "metric_type": "limit_metered", "event_name": "llm.tokens",
                                            "aggregation": "sum", "value_property": "tokens"})
    plan_store.save_plan(app_engine, plan={"code": "capped", "name": "Capped", "currency": "USD",
                                           "quotas": [{"metric": "tokens_cap", "limit": "10000"}]})
    plan_store.set_subscription(app_engine, customer_id="cus_z", plan_code="capped",
                                start=f"{datetime.now(timezone.utc):%Y-%m-01}")
    at = page("developers")
    assert not at.exception, at.exception
    assert at.selectbox(key="developers:quota_metric").value == "tokens_cap"
    assert at.selectbox(key="developers:quota_customer:tokens_cap").value == "cus_z"
    quantity = at.text_input(key="developers:quota_quantity:tokens_cap")
    assert quantity.value == "1250"  # what the example event uses (tokens: 1250)
    key = session_key(at)
    metric = metrics.get_metric(app_engine, code="tokens_cap")
    expected = snippets.entitlement_snippets(metric, base_url=BASE, api_key=key, customer_id="cus_z", quantity=D(1250))
    assert shows(at, expected)
    answer = entitlement.check(app_engine, "cus_z", "tokens_cap", quantity=D(1250)).to_json()
    assert json.dumps(answer, indent=2, ensure_ascii=False) in codes(at)
    assert answer["fits"] is True and answer["remaining"] == "10000"

    quantity.set_value("20000").run()
    answer = entitlement.check(app_engine, "cus_z", "tokens_cap", quantity=D(20000)).to_json()
    assert answer["fits"] is False
    assert json.dumps(answer, indent=2, ensure_ascii=False) in codes(at)
    assert any("quantity=20000" in c for c in codes(at))

    at.text_input(key="developers:quota_quantity:tokens_cap").set_value("-3").run()
    assert not at.exception, at.exception
    assert any("quantity: '-3' is negative" in plain(c.value) for c in at.caption)


def test_a_customer_without_a_quota_shows_the_404(app_engine: Engine) -> None:
    metrics.create_metric(app_engine, data={"name": "Seats", "code": "seats", "unit": "seats",
                                            "metric_type": "limit_recurring", "event_name": "seat.active",
                                            "aggregation": "count"})
    at = page("developers")
    assert at.text_input(key="developers:quota_customer:seats:typed").value == "cus_001"
    shown = [json.loads(c) for c in codes(at) if c.startswith('{\n  "error"')]
    assert shown == [{"error": "not_found", "detail": "customer 'cus_001' has no subscription"}]
