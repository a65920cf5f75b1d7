"""The Alerts page through the real navigation: the alerts recorded by events sent through the
API's own ingest (`metering.api.backend.Backend.ingest`, the path of POST /api/v1/events) are
listed with exact figures and exported as safe CSV; admins set the webhook with each field's
problem beside it; viewers and editors see the form disabled and, forced on, the handler refuses."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from metering import audit, metrics, plan_store
from metering.api.backend import Backend
from metering.quotas import alerts
from metering.quotas.tables import AlertWebhook
from tests.app.conftest import page
from tests.app.test_roles import ADMIN, EDITOR, VIEWER, app_as
from workbench import alerts as wa
from workbench import auth
from workbench.text import plain


def hard_quota(engine: Engine, limit: str = "5", thresholds: list[str] | None = None) -> datetime:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    metrics.create_metric(engine, data={"name": "Capped calls", "code": "capped", "unit": "calls",
                                        "metric_type": "limit_metered", "event_name": "api.request",
                                        "aggregation": "count"})
    plan_store.save_plan(engine, plan={"code": "hard", "name": "Hard", "currency": "USD", "quotas": [
        {"metric": "capped", "limit": limit, "alert_thresholds": thresholds or ["80", "100"]}]})
    plan_store.set_subscription(engine, customer_id="cus_a", plan_code="hard", start=f"{now:%Y-%m-01}")
    return now


def stored_webhook(engine: Engine) -> alerts.Webhook | None:
    """The webhook row as stored now (get_webhook caches for a second per engine)."""
    with Session(engine) as session:
        row = session.get(AlertWebhook, 1)
        return None if row is None else alerts.Webhook(row.url, row.secret)


def send(engine: Engine, customer: str, n: int) -> dict:
    now = datetime.now(timezone.utc)
    events = [{"event_name": "api.request", "customer_id": customer,
               "timestamp": (now - timedelta(seconds=n - i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "idempotency_key": f"{customer}-{now.timestamp()}-{i}"} for i in range(n)]
    status, answer = Backend(engine).ingest(json.dumps({"events": events}).encode())
    assert status == 200, answer
    return answer


def test_empty_store_says_how_alerts_appear(app_engine: Engine) -> None:
    at = page("alerts")
    assert not at.exception, at.exception
    assert "No alerts recorded yet" in at.info[0].value
    (download,) = at.get("download_button")
    assert download.proto.disabled  # nothing to export yet


def test_alerts_are_listed_exactly_and_exported(app_engine: Engine) -> None:
    hard_quota(app_engine, limit="5", thresholds=["80", "100"])
    assert send(app_engine, "cus_a", 4)["accepted"] == 4  # 4 of 5: the 80 % alert
    answer = send(app_engine, "cus_a", 3)  # the 5th: 100 %; then 2 refused
    assert (answer["accepted"], answer["rejected"]) == (1, 2)
    assert {e["field"] for e in answer["errors"]} == {"quota"}
    recorded = alerts.list_alerts(app_engine)
    assert [(a.customer_id, a.threshold) for a in recorded] == [("cus_a", 100), ("cus_a", 80)]  # newest first

    at = page("alerts")
    assert not at.exception, at.exception
    (df,) = [d.value for d in at.dataframe]
    assert df["customer_id"].tolist() == ["cus_a", "cus_a"]
    assert df["threshold (%)"].tolist() == ["100", "80"]
    assert df["used"].tolist() == [str(a.used) for a in recorded] == ["5", "4"]
    assert df["available"].tolist() == ["5", "5"]
    assert df["delivery"].tolist() == ["none", "none"]  # no webhook set
    assert df["period start"].tolist() == [wa._when(recorded[0].period_start, "UTC")] * 2
    assert "2 alerts, newest first" in " ".join(c.value for c in at.caption)

    text = wa.downloads.csv_text(df)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["customer_id"], r["metric"], r["threshold (%)"], r["used"]) for r in rows] == [
        ("cus_a", "capped", "100", "5"), ("cus_a", "capped", "80", "4")]

    send(app_engine, "cus_a", 3)  # refused: no new alert in this period
    at.selectbox(key="alerts:metric").set_value("capped").run()
    assert len(at.dataframe[0].value) == 2


def test_safe_csv_for_a_hostile_customer_id(app_engine: Engine) -> None:
    hard_quota(app_engine, limit="1", thresholds=["100"])
    plan_store.set_subscription(app_engine, customer_id="=HYPERLINK(\"x\")", plan_code="hard",
                                start=f"{datetime.now(timezone.utc):%Y-%m-01}")
    send(app_engine, "=HYPERLINK(\"x\")", 1)
    at = page("alerts")
    (df,) = [d.value for d in at.dataframe]
    assert df["customer_id"].tolist() == ["=HYPERLINK(\"x\")"]  # shown as it is, plain text
    rows = list(csv.DictReader(io.StringIO(wa.downloads.csv_text(df))))
    assert not rows[0]["customer_id"].startswith("=")  # neutralized for spreadsheets


def test_admin_sets_the_webhook_with_messages_beside_the_fields(app_engine: Engine) -> None:
    at = page("alerts")  # without sign-in the local user is admin
    assert at.text_input(key=wa.SECRET_KEY).value.startswith("whsec_")  # a generated secret is offered
    at.text_input(key=wa.URL_KEY).set_value("ftp://nowhere")
    at.text_input(key=wa.SECRET_KEY).set_value("short")
    at.button(key="FormSubmitter:alerts:form-Save webhook").click().run()
    assert not at.exception, at.exception
    shown = [plain(c.value) for c in at.caption]
    assert any(alerts.webhook_problem("ftp://nowhere", "x" * 40) in c for c in shown), shown
    assert any(alerts.webhook_problem("https://a.example", "short") in c for c in shown), shown
    assert stored_webhook(app_engine) is None

    at.text_input(key=wa.URL_KEY).set_value("https://hooks.example/usage")
    at.text_input(key=wa.SECRET_KEY).set_value("s" * 32)
    at.button(key="FormSubmitter:alerts:form-Save webhook").click().run()
    assert not at.exception, at.exception
    assert stored_webhook(app_engine) == alerts.Webhook("https://hooks.example/usage", "s" * 32)
    assert any("Saved the webhook" in s.value for s in at.success)
    assert any("https://hooks.example/usage" in m.value and "…ssss" in m.value for m in at.markdown)
    assert [(e.action, e.target) for e in audit.entries(app_engine) if e.action.startswith("webhook")] == [
        ("webhook.set", "hooks.example")]

    at.button(key="alerts:remove").click().run()
    assert stored_webhook(app_engine) is None
    assert any("Removed the webhook" in s.value for s in at.success)


@pytest.mark.parametrize("person", [VIEWER, EDITOR], ids=["viewer", "editor"])
def test_viewer_and_editor_read_alerts_but_cannot_change_the_webhook(app_engine: Engine, person: dict,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    hard_quota(app_engine, limit="2", thresholds=["50"])
    send(app_engine, "cus_a", 1)
    alerts.set_webhook(app_engine, url="https://hooks.example/secret-token", secret="t" * 32)
    at = app_as(person, page="alerts")
    assert [d.value["customer_id"].tolist() for d in at.dataframe] == [["cus_a"]]  # may read
    assert at.text_input(key=wa.URL_KEY).disabled and at.text_input(key=wa.SECRET_KEY).disabled
    assert at.text_input(key=wa.URL_KEY).value == "" and at.text_input(key=wa.SECRET_KEY).value == ""
    assert at.button(key="alerts:remove").disabled
    page_text = " ".join(m.value for m in at.markdown)
    assert "secret-token" not in page_text and "tttt" not in page_text  # only the host
    assert "hooks.example" in page_text
    assert any("needs the admin role" in c.value for c in at.caption)

    # the controls forced on (a forged client or a UI bug): the handlers still refuse on the server
    monkeypatch.setattr(auth, "can", lambda action: True)
    at.run()
    at.text_input(key=wa.URL_KEY).set_value("https://evil.example/x")
    at.text_input(key=wa.SECRET_KEY).set_value("e" * 32)
    at.button(key="FormSubmitter:alerts:form-Save webhook").click().run()
    role = "viewer" if person is VIEWER else "editor"
    assert any(f"Your role is {role}" in e.value for e in at.error)
    at.button(key="alerts:remove").click().run()
    assert stored_webhook(app_engine) == alerts.Webhook("https://hooks.example/secret-token", "t" * 32)
    denied = [(e.action, e.outcome) for e in audit.entries(app_engine) if e.outcome == "denied"]
    assert ("webhook.set", "denied") in denied and ("webhook.clear", "denied") in denied


def test_admin_signed_in_sees_the_form(app_engine: Engine) -> None:
    at = app_as(ADMIN, page="alerts")
    assert not at.text_input(key=wa.URL_KEY).disabled
