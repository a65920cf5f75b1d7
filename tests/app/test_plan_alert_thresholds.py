"""Alert thresholds on a plan's quota in the Plans form: typed as "80, 100", saved as the engine's
exact list, shown again when the plan is edited, listed in the plan list, and a bad entry gets
the engine's own sentence (`metering.plans.alert_threshold_problem`) beside the field, in the
form's words, and is not saved."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from sqlalchemy.engine import Engine

from metering import metrics, plan_store
from metering.plans import alert_threshold_problem
from tests.app.conftest import page
from workbench import plans as wp
from workbench.text import plain


@pytest.fixture
def workspace(app_engine: Engine) -> Engine:
    metrics.create_metric(app_engine, data={"name": "SMS Credits", "code": "sms", "unit": "sms",
                                            "metric_type": "limit_recurring", "event_name": "sms.sent",
                                            "aggregation": "count"})
    metrics.create_metric(app_engine, data={"name": "Seats used", "code": "seats_used", "unit": "seats",
                                            "metric_type": "limit_metered", "event_name": "seat.active",
                                            "aggregation": "count"})
    return app_engine


def new_plan(name: str):
    at = page("plans")
    at.button(key="plans:new").click().run()
    at.text_input(key="plans:f:name").set_value(name).run()
    return at


def field_captions(at, key: str) -> list[str]:
    return [plain(c.value) for c in at.container(key).caption]


@pytest.mark.parametrize("typed, expected", [
    ("80, 100", ["80", "100"]), ("80 %; 100%", ["80", "100"]), (" 50 ,", ["50"]), ("", None), ("  ", None),
    ("abc", ["abc"]),
])
def test_parse_thresholds(typed: str, expected: list[str] | None) -> None:
    assert wp.parse_thresholds(typed) == expected


def test_thresholds_are_saved_shown_and_listed(workspace: Engine) -> None:
    at = new_plan("Capped")
    at.checkbox(key="plans:f:quotas.seats_used.on").check().run()
    at.text_input(key="plans:f:quotas.seats_used.limit").set_value("10")
    at.text_input(key="plans:f:quotas.seats_used.alert_thresholds").set_value("100, 80 %").run()
    assert not at.exception, at.exception
    at.button(key="plans:save").click().run()
    assert not at.exception, at.exception
    quota = plan_store.get_plan(workspace, code="capped").quotas[0]
    assert quota.alert_thresholds == [D(80), D(100)]  # the engine keeps them sorted

    listed = " ".join(plain(m.value) for m in at.container("plans-list").markdown)
    assert "hard limit 10 seats a month · alerts at 80 %, 100 %" in listed

    at.button(key="plans:edit:capped").click().run()
    assert at.text_input(key="plans:f:quotas.seats_used.alert_thresholds").value == "80, 100"


@pytest.mark.parametrize("typed", ["80, 80", "0", "abc", "1001", ", ".join(str(i) for i in range(1, 12))])
def test_a_bad_threshold_gets_the_engines_sentence_beside_the_field(workspace: Engine, typed: str) -> None:
    at = new_plan("Soft")
    at.checkbox(key="plans:f:quotas.sms.on").check().run()
    at.text_input(key="plans:f:quotas.sms.limit").set_value("1000")
    at.text_input(key="plans:f:quotas.sms.alert_thresholds").set_value(typed).run()
    assert not at.exception, at.exception
    problem = alert_threshold_problem(wp.parse_thresholds(typed))
    assert problem is not None
    shown = field_captions(at, "plans-quota-sms")
    assert any(problem in c for c in shown), shown  # the engine's own sentence, beside the field
    at.button(key="plans:save").click().run()
    assert plan_store.get_plan(workspace, code="soft") is None  # refused: nothing saved


def test_soft_quota_thresholds_and_clearing_them(workspace: Engine) -> None:
    plan_store.save_plan(workspace, plan={"code": "soft", "name": "Soft", "currency": "USD",
                                          "quotas": [{"metric": "sms", "limit": "1000", "alert_thresholds": ["50", "90"]}]})
    at = page("plans")
    at.button(key="plans:edit:soft").click().run()
    assert at.text_input(key="plans:f:quotas.sms.alert_thresholds").value == "50, 90"
    at.text_input(key="plans:f:quotas.sms.alert_thresholds").set_value("").run()
    at.button(key="plans:save").click().run()
    assert not at.exception, at.exception
    assert plan_store.get_plan(workspace, code="soft").quotas[0].alert_thresholds is None
