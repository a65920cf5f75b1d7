"""Hostile text in the live-quota parts (Timeline's live state, Alerts page, Developers' quota
section, the plan list's alert line): a limit metric, plan, customer and webhook URL made of
Markdown images, bold text and HTML never reach a Markdown context unescaped."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy.engine import Engine

from metering import metrics, plan_store
from metering.api.backend import Backend
from metering.quotas import alerts
from tests import hostile
from tests.app.conftest import page
from tests.app.test_hostile_text import visit

HOOK = f"https://hooks.example/![w](http://{hostile.TRAP_HOST}/w.png)**b**"


def test_live_quota_pages_show_hostile_text_literally(app_engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    metrics.create_metric(app_engine, data={"name": hostile.NAME, "code": "hostile_cap", "unit": hostile.UNIT,
                                            "metric_type": "limit_metered", "event_name": "cap.event",
                                            "aggregation": "count"})
    plan_store.save_plan(app_engine, plan={"code": "hostile_plan", "name": hostile.PLAN, "currency": "USD",
                                           "quotas": [{"metric": "hostile_cap", "limit": "2",
                                                       "alert_thresholds": ["50"]}]})
    plan_store.set_subscription(app_engine, customer_id=hostile.CUSTOMER, plan_code="hostile_plan",
                                start=f"{now:%Y-%m-01}")
    status, answer = Backend(app_engine).ingest(json.dumps({"event_name": "cap.event", "customer_id": hostile.CUSTOMER,
                                                            "timestamp": f"{now - timedelta(seconds=5):%Y-%m-%dT%H:%M:%SZ}"}).encode())
    assert status == 200 and answer["accepted"] == 1
    assert len(alerts.list_alerts(app_engine)) == 1
    alerts.set_webhook(app_engine, url=HOOK, secret="s" * 32)

    shown = " ".join(visit(page("timeline")))
    assert hostile.CUSTOMER in shown
    visit(page("alerts"))
    shown = " ".join(visit(page("developers")))
    assert hostile.CUSTOMER in shown or "hostile_cap" in shown
    visit(page("plans"))
