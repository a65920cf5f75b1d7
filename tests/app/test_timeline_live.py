"""The Timeline's live part ("Live, now"): every figure equals `metering.quotas.entitlement.check`
for the customer's subscribed plan and the period holding now, next to the simulation's current
period; Refresh picks up new events; customers without a quota and charge metrics say so."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from sqlalchemy.engine import Engine

from metering import ingest, metrics, plan_store
from metering.preview import fmt
from metering.quotas import entitlement
from tests.app.conftest import page

LIVE = "timeline:live:"


def live_tables(at) -> tuple["pd.DataFrame", "pd.DataFrame"]:  # noqa: F821
    compare = [d.value for d in at.dataframe if list(d.value.columns) == ["figure", "simulation", "live, now"]]
    everyone = [d.value for d in at.dataframe if "has access" in d.value.columns]
    assert len(compare) == 1 and len(everyone) == 1, [list(d.value.columns) for d in at.dataframe]
    return compare[0], everyone[0]


def metric_values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def expected_row(answer: dict) -> dict[str, str]:
    def n(text):
        return "—" if text is None else fmt(D(text))
    return {f: n(answer[f]) for f in ("limit", "carryover", "available", "used", "remaining", "overage")} | {
        "has access": "yes" if answer["has_access"] else "no", "plan": answer["plan"]}


def test_demo_live_soft_quota_equals_the_entitlement_check(demo_engine: Engine) -> None:
    at = page("timeline")
    assert not at.exception, at.exception
    assert at.selectbox(key="timeline:customer:sms_credits:starter").value == "cus_unibee"
    answer = entitlement.check(demo_engine, "cus_unibee", "sms_credits").to_json()
    assert answer["carryover"] == "400" and answer["available"] == "1400"  # UniBee's example, month 3
    shown = metric_values(at)
    assert shown["Limit"] == fmt(D(answer["limit"]))
    assert shown["Carryover"] == "400" and shown["Available"] == "1,400"
    assert shown["Used"] == fmt(D(answer["used"])) and shown["Remaining"] == fmt(D(answer["remaining"]))
    assert shown["Overage"] == fmt(D(answer["overage"])) and shown["Has access"] == "yes"

    compare, everyone = live_tables(at)
    by = dict(zip(compare["figure"], zip(compare["simulation"], compare["live, now"])))
    # the simulation's current period (the Timeline's last row) and the live check agree here
    assert by["available"] == ("1,400", "1,400")
    assert by["used"][0] == by["used"][1] == fmt(D(answer["used"]))
    assert by["plan"] == ("starter", "starter")

    subscribers = sorted(s.customer_id for s in plan_store.list_subscriptions(demo_engine))  # every plan limits SMS
    assert everyone["customer_id"].tolist() == subscribers
    for row in everyone.to_dict("records"):
        want = expected_row(entitlement.check(demo_engine, row["customer_id"], "sms_credits").to_json())
        assert {k: row[k] for k in want} == want, row["customer_id"]
    captions = " ".join(c.value for c in at.caption)
    assert "GET /api/v1/entitlements/{customer_id}/sms_credits" in captions
    assert at.button(key=LIVE + "refresh") and at.toggle(key=LIVE + "auto").value is False


def _capped(engine: Engine, limit: str = "3") -> datetime:
    """A hard quota (limit_metered count) for cus_a, subscribed since the start of this month; returns now."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    metrics.create_metric(engine, data={"name": "Capped calls", "code": "capped", "unit": "calls",
                                        "metric_type": "limit_metered", "event_name": "api.request",
                                        "aggregation": "count"})
    plan_store.save_plan(engine, plan={"code": "hard", "name": "Hard", "currency": "USD",
                                       "quotas": [{"metric": "capped", "limit": limit}]})
    plan_store.set_subscription(engine, customer_id="cus_a", plan_code="hard", start=f"{now:%Y-%m-01}")
    return now


def _events(engine: Engine, customer: str, times: list[datetime]) -> None:
    rows = "".join(f"api.request,{customer},{t:%Y-%m-%dT%H:%M:%SZ}\n" for t in times)
    ingest.import_file(engine, ("event_name,customer_id,timestamp\n" + rows).encode(), name="calls.csv")


def test_hard_quota_used_up_shows_no_access_and_refresh_follows_new_events(app_engine: Engine) -> None:
    now = _capped(app_engine, limit="3")
    start = now.replace(day=1, hour=0, minute=0, second=0)
    _events(app_engine, "cus_a", [max(start, now - timedelta(minutes=i + 1)) + timedelta(seconds=i) for i in range(2)])
    _events(app_engine, "cus_b", [now - timedelta(seconds=5)])  # no subscription: nothing live
    at = page("timeline")
    at.selectbox(key="timeline:metric").set_value("capped").run()
    at.selectbox(key="timeline:customer:capped:hard").set_value("cus_a").run()
    assert not at.exception, at.exception
    shown = metric_values(at)
    assert shown["Limit"] == "3" and shown["Used"] == "2" and shown["Remaining"] == "1"
    assert shown["Has access"] == "yes" and "Carryover" not in shown  # a hard limit carries nothing

    _events(app_engine, "cus_a", [now - timedelta(seconds=s) for s in (1, 2, 3)])  # history is never refused
    at.button(key=LIVE + "refresh").click().run()
    assert not at.exception, at.exception
    answer = entitlement.check(app_engine, "cus_a", "capped").to_json()
    assert answer["used"] == "3" and answer["remaining"] == "0" and answer["has_access"] is False
    shown = metric_values(at)
    assert shown["Used"] == "3" and shown["Remaining"] == "0" and shown["Has access"] == "no"
    compare, everyone = live_tables(at)
    assert everyone.to_dict("records") == [
        {"customer_id": "cus_a", "plan": "hard", "period start": f"{start:%Y-%m-%d %H:%M}",
         "period end": everyone["period end"][0], "limit": "3", "available": "3", "used": "3",
         "remaining": "0", "has access": "no"}]  # no carryover or overage columns for a hard limit
    by = dict(zip(compare["figure"], compare["simulation"]))
    assert by["used"] == "3"  # the simulation takes events in time order and rejects the extra two
    assert by["rejected (simulated)"] == "2"

    at.selectbox(key="timeline:customer:capped:hard").set_value("cus_b").run()
    assert not at.exception, at.exception
    infos = [i.value.replace("\\", "") for i in at.info]  # Markdown escapes (cus\_b) aside
    assert any("cus_b has no subscription whose plan has a quota on `capped`" in i for i in infos), infos


def test_charge_metric_has_no_live_quota(demo_engine: Engine) -> None:
    at = page("timeline")
    at.selectbox(key="timeline:metric").set_value("api_requests").run()
    assert not at.exception, at.exception
    assert any("no quota to check live" in c.value for c in at.caption)
    assert not any("has access" in d.value.columns for d in at.dataframe)


def test_at_most_max_customers_are_listed_and_the_note_says_so(demo_engine: Engine, monkeypatch) -> None:
    from workbench import timeline_live

    monkeypatch.setattr(timeline_live, "MAX_CUSTOMERS", 3)
    at = page("timeline")
    assert not at.exception, at.exception
    _, everyone = live_tables(at)
    subscribers = sorted(s.customer_id for s in plan_store.list_subscriptions(demo_engine))
    assert len(subscribers) > 3 and everyone["customer_id"].tolist() == subscribers[:3]
    assert any("The first 3 by customer id." in c.value for c in at.caption)
    assert any(f"({len(subscribers):,})" in m.value for m in at.markdown)


def test_auto_refresh_turns_on_without_an_error(demo_engine: Engine) -> None:
    at = page("timeline")
    at.toggle(key=LIVE + "auto").set_value(True).run()
    assert not at.exception, at.exception
    assert at.toggle(key=LIVE + "auto").value is True
    assert metric_values(at)["Available"] == "1,400"  # the live part still drawn
