"""The live-quota journey in a real browser (Debian's Chromium, Playwright, the real server):
make a plan with a hard quota and alert thresholds in the Plans form, send events through the
API until one is refused, then see the alerts on the Alerts page and 0 remaining in the
Timeline's live state. The Developers page's quota section and the pages are photographed at
1440 and 1024 px wide (test-artifacts/e2e/quota_*.png), and nothing may overflow sideways.

Every number asserted comes from the engine on the server's own database
(`metering.quotas.entitlement.check`, `metering.quotas.alerts.list_alerts`)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.e2e.conftest import CHROMIUM, EXPECT_TIMEOUT_MS

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)
try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("the playwright package is not installed", allow_module_level=True)

from sqlalchemy.engine import Engine

from metering import metrics, plan_store
from metering.quotas import alerts, entitlement
from tests.e2e.test_journeys import metric_value, nav, open_app, settle, table_rows
from tests.server import Server

CUSTOMER = "cus_e2e"
LIMIT = 3
WIDTHS = (1440, 1024)


def no_sideways_overflow(page: Page) -> None:
    """The page's main area fits the window: nothing sticks out to the right."""
    wide = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMain\"]') || document.body;"
        " return [m.scrollWidth, m.clientWidth]; }")
    assert wide[0] <= wide[1] + 1, wide


def photograph(page: Page, shot, name: str, focus=None) -> None:
    """Screenshots at each width (`focus`: a locator scrolled to the top of the picture first)."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 2000})
        settle(page)
        no_sideways_overflow(page)
        if focus is not None:
            focus.evaluate("e => e.scrollIntoView({block: 'start'})")
        shot(page, f"quota_{name}_{width}")
    page.set_viewport_size({"width": 1440, "height": 2000})
    settle(page)


def send_one(server: Server, i: int) -> requests.Response:
    when = (datetime.now(timezone.utc) - timedelta(seconds=30 - i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return requests.post(f"{server.base_url}/api/v1/events", headers=server.headers, timeout=10, json={
        "event_name": "capped.call", "customer_id": CUSTOMER, "timestamp": when, "idempotency_key": f"e2e-{i}"})


def test_hard_quota_refuses_then_alerts_and_the_live_timeline_show_it(page: Page, live_server: Server,
                                                                      store_engine: Engine, shot) -> None:
    metrics.create_metric(store_engine, data={"name": "Capped calls", "code": "capped", "unit": "calls",
                                              "metric_type": "limit_metered", "event_name": "capped.call",
                                              "aggregation": "count"})
    page.set_viewport_size({"width": 1440, "height": 2000})
    open_app(page, live_server)

    # 1. The plan, in the Plans form: a hard quota of 3 calls with alerts at 80 % and 100 %.
    nav(page, "Plans")
    page.get_by_role("button", name="New plan").click()
    settle(page)
    name = page.get_by_role("textbox", name="Name", exact=True)
    name.fill("Hard cap")
    name.press("Enter")  # (not Tab: tabbing through a selectbox picks its first option)
    settle(page)
    page.locator(".st-key-plans-quota-capped").get_by_role("checkbox").check(force=True)
    settle(page)
    quota = page.locator(".st-key-plans-quota-capped")
    for label, value in (("Limit per period (calls)", str(LIMIT)), ("Alert thresholds (% of available)", "80, 100")):
        box = quota.get_by_role("textbox", name=label)
        box.fill(value)
        box.press("Enter")
        settle(page)
    photograph(page, shot, "plan_form")
    page.get_by_role("button", name="Save plan").click()
    expect(page.get_by_text("Saved plan Hard cap")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    saved = plan_store.get_plan(store_engine, code="hard_cap")
    assert saved is not None and (saved.interval, saved.currency) == ("month", "USD")
    assert [str(t) for t in saved.quotas[0].alert_thresholds] == ["80", "100"]
    plan_store.set_subscription(store_engine, customer_id=CUSTOMER, plan_code="hard_cap",
                                start=f"{datetime.now(timezone.utc):%Y-%m-01}")
    deadline = time.monotonic() + 10  # the server sees another process's change within a second
    while requests.get(f"{live_server.base_url}/api/v1/entitlements/{CUSTOMER}/capped", headers=live_server.headers,
                       timeout=10).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)

    # 2. Events through the API until one is refused: exactly LIMIT are accepted.
    answers = [send_one(live_server, i) for i in range(LIMIT + 2)]
    assert [r.status_code for r in answers] == [200] * LIMIT + [422, 422]
    refused = answers[LIMIT].json()
    assert refused["error"] == "quota_exceeded" and refused["errors"][0]["field"] == "quota"
    live = entitlement.check(store_engine, CUSTOMER, "capped")
    assert (live.used, live.remaining, live.has_access) == (LIMIT, 0, False)
    recorded = alerts.list_alerts(store_engine, customer_id=CUSTOMER)
    assert sorted(str(a.threshold) for a in recorded) == ["100", "80"]

    # 3. The Alerts page lists both, with the engine's figures.
    nav(page, "Alerts")
    rows = table_rows(page.locator(".st-key-alerts\\:table, [data-testid='stDataFrame']").first)
    header, body = rows[0], rows[1:]
    at = {name: header.index(name) for name in ("customer_id", "metric", "threshold (%)", "used", "available")}
    shown = sorted((r[at["customer_id"]], r[at["metric"]], r[at["threshold (%)"]], r[at["used"]], r[at["available"]])
                   for r in body)
    assert shown == sorted((a.customer_id, a.metric, str(a.threshold), str(a.used), str(a.available)) for a in recorded)
    photograph(page, shot, "alerts")

    # 4. The Timeline's live state: 0 remaining, no access, next to the simulation.
    nav(page, "Timeline")
    live_box = page.locator(".st-key-timeline-live")
    expect(live_box.get_by_role("heading", name="Live, now")).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    expect(metric_value(live_box, "Remaining")).to_have_text("0")
    expect(metric_value(live_box, "Used")).to_have_text(str(LIMIT))
    expect(metric_value(live_box, "Limit")).to_have_text(str(LIMIT))
    compare = table_rows(live_box.get_by_test_id("stDataFrame").first)
    figures = {row[0]: row[1:] for row in compare[1:]}
    assert figures["used"] == [str(LIMIT), str(LIMIT)]  # the simulation's current period and the live check
    assert figures["remaining"] == ["0", "0"]
    expect(metric_value(live_box, "Has access")).to_have_text("no")
    photograph(page, shot, "timeline_live")

    # 5. The Developers page documents it, with the engine's answer for this customer.
    nav(page, "Developers")
    section = page.get_by_role("heading", name="Quotas and alerts")
    expect(page.get_by_text('"has_access": false')).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
    photograph(page, shot, "developers", focus=section)
