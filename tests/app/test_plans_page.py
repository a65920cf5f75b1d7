"""The Plans page through the real navigation: the form saves what the engine accepts, shows the
engine's messages beside the fields (and refuses to save), previews prices with the engine's
arithmetic, lists and deletes plans, and edits subscriptions."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from sqlalchemy.engine import Engine

from metering import ingest, metrics, plan_store
from metering.money import format_money
from metering.plans import Charge, plan_errors
from metering.pricing import price_charge
from tests.app.conftest import ROOT, page
from workbench import plans as wp
from workbench.editor import md
from workbench.text import plain

SAMPLES = ROOT / "sample_events"


@pytest.fixture
def workspace(app_engine: Engine) -> Engine:
    """Metrics of every kind the form handles, and October's API requests for the preview."""
    metrics.create_metric(app_engine, data=metrics.TEMPLATES["api_requests"].form())
    metrics.create_metric(app_engine, data=metrics.TEMPLATES["llm_tokens"].form())
    metrics.create_metric(app_engine, data={"name": "SMS Credits", "code": "sms", "unit": "sms",
                                            "metric_type": "limit_recurring", "event_name": "sms.sent",
                                            "aggregation": "count"})
    metrics.create_metric(app_engine, data={"name": "Seats used", "code": "seats_used", "unit": "seats",
                                            "metric_type": "limit_metered", "event_name": "seat.active",
                                            "aggregation": "count"})
    ingest.import_file(app_engine, SAMPLES / "api_requests.csv")
    return app_engine


def new_plan(at, name: str):
    at.button(key="plans:new").click().run()
    assert not at.exception, at.exception
    at.text_input(key="plans:f:name").set_value(name).run()
    return at


def captions_in(at, key: str) -> list[str]:
    """The captions as they read (Markdown escapes of user text removed)."""
    return [plain(c.value) for c in at.container(key).caption]


def test_empty_workspace(app_engine: Engine) -> None:
    at = page("plans")
    assert not at.exception, at.exception
    assert "No plans yet" in at.info[0].value
    at.button(key="plans:new").click().run()
    assert at.text_input(key="plans:f:name").value == ""
    assert "No charge_metered or charge_recurring metric yet" in " ".join(c.value for c in at.caption)


def test_create_a_plan_with_a_standard_charge_and_its_price_preview(workspace: Engine) -> None:
    at = new_plan(page("plans"), "Pro Monthly")
    assert at.text_input(key="plans:f:code").value == "pro_monthly"  # generated from the name
    at.text_input(key="plans:f:base_fee").set_value("49").run()
    at.checkbox(key="plans:f:charges.api_requests.on").check().run()
    assert at.selectbox(key="plans:f:charges.api_requests.model").value == "standard"
    at.text_input(key="plans:f:charges.api_requests.free_units").set_value("1000")
    at.text_input(key="plans:f:charges.api_requests.unit_price").set_value("0.02").run()
    assert not at.exception, at.exception

    # the preview defaults to real usage (the busiest customer's latest month) …
    preview = at.text_input(key="plans:preview:api_requests")
    assert preview.value != ""
    # … and prices whatever is typed, with the engine's arithmetic
    preview.set_value("2500").run()
    block = at.container("plans-preview-api_requests")
    assert [m.value for m in block.markdown] == [f"**2,500 requests → {md(format_money(D('30.00'), 'USD'))}**"]
    result = price_charge(Charge(metric="api_requests", model="standard", free_units=1000, unit_price="0.02"), D(2500))
    assert [c.value for c in block.caption] == ["  \n".join(md(x) for x in result.explain("USD"))]
    assert "1,500 × $0.02 = $30.00" in result.explain("USD")[1]

    at.checkbox(key="plans:f:quotas.sms.on").check().run()
    at.text_input(key="plans:f:quotas.sms.limit").set_value("1000")
    at.text_input(key="plans:f:quotas.sms.overage_unit_price").set_value("0.01").run()
    at.text_input(key="plans:f:included_credit").set_value("5").run()
    at.button(key="plans:save").click().run()
    assert not at.exception, at.exception
    assert "Saved plan Pro Monthly (pro\\_monthly)" in at.success[0].value
    plan = plan_store.get_plan(workspace, code="pro_monthly")
    assert plan.base_fee == D(49) and plan.included_credit == D(5) and plan.interval == "month"
    assert plan.charges[0].model_dump(exclude_none=True) == {
        "metric": "api_requests", "model": "standard", "free_units": D(1000), "unit_price": D("0.02")}
    assert (plan.quotas[0].limit, plan.quotas[0].overage_unit_price, plan.quotas[0].max_carryover) == (D(1000), D("0.01"), None)
    assert plan.charge_for("llm_tokens") is None  # not ticked


def test_descending_tiers_show_the_message_beside_the_table_and_are_not_saved(workspace: Engine) -> None:
    at = new_plan(page("plans"), "Bad tiers")
    at.checkbox(key="plans:f:charges.llm_tokens.on").check().run()
    at.selectbox(key="plans:f:charges.llm_tokens.model").set_value("graduated").run()
    at.session_state["plans:f:charges.llm_tokens.tiers"] = {"edited_rows": {}, "deleted_rows": [], "added_rows": [
        {"up_to": "100000", "unit_price": "0.00002"}, {"up_to": "50000", "unit_price": "0.00001"},
        {"unit_price": "0.000005"}]}
    at.run()
    assert not at.exception, at.exception
    data = {"code": "bad_tiers", "name": "Bad tiers", "currency": "USD", "charges": [
        {"metric": "llm_tokens", "model": "graduated", "tiers": [
            {"up_to": "100000", "unit_price": "0.00002"}, {"up_to": "50000", "unit_price": "0.00001"},
            {"up_to": None, "unit_price": "0.000005"}]}]}
    ((path, message),) = plan_errors(data)
    assert path == "charges.0.tiers.1.up_to"
    beside = captions_in(at, "plans-tiers-llm_tokens")
    # the engine's message in the form's words: up_to is the table's "Up to" column
    assert beside == [f":red[:material/error: row 2 (Up to): {wp.in_form_words(message, wp.FORM_WORDS)}]"]
    assert "up_to" not in beside[0] and "up\\_to" not in beside[0]
    assert "Price preview: fix the fields above first" in " ".join(captions_in(at, "plans-charge-llm_tokens"))

    at.button(key="plans:save").click().run()
    assert "Not saved. Fix these first" in at.error[0].value
    assert md(wp.in_form_words(message, wp.FORM_WORDS)) in at.error[0].value
    assert plan_store.get_plan(workspace, code="bad_tiers") is None

    # fixed: ascending tiers save, with the open last tier
    at.session_state["plans:f:charges.llm_tokens.tiers"] = {"edited_rows": {}, "deleted_rows": [], "added_rows": [
        {"up_to": "100000", "unit_price": "0.00002"}, {"up_to": "500000", "unit_price": "0.00001"},
        {"unit_price": "0.000005", "flat_fee": "1"}]}
    at.run()
    assert captions_in(at, "plans-tiers-llm_tokens") == []
    at.button(key="plans:save").click().run()
    tiers = plan_store.get_plan(workspace, code="bad_tiers").charges[0].tiers
    assert [(t.up_to, t.unit_price, t.flat_fee) for t in tiers] == [
        (D(100000), D("0.00002"), D(0)), (D(500000), D("0.00001"), D(0)), (None, D("0.000005"), D(1))]


def test_blank_required_fields_wait_for_save_then_show_beside_them(workspace: Engine) -> None:
    at = new_plan(page("plans"), "Starter")
    at.checkbox(key="plans:f:charges.api_requests.on").check().run()
    assert not any(":red[" in c for c in captions_in(at, "plans-charge-api_requests"))  # no message yet
    assert "Price preview: fill in the fields above first." in " ".join(captions_in(at, "plans-charge-api_requests"))
    at.button(key="plans:save").click().run()
    charge_captions = " ".join(captions_in(at, "plans-charge-api_requests"))
    assert "standard needs Unit price" in charge_captions
    assert "Not saved" in at.error[0].value
    assert plan_store.get_plan(workspace, code="starter") is None

    at.text_input(key="plans:f:charges.api_requests.unit_price").set_value("0.o2").run()
    assert "'0.o2' is not a decimal number" in " ".join(captions_in(at, "plans-charge-api_requests"))
    at.text_input(key="plans:f:charges.api_requests.unit_price").set_value("0.02").run()
    at.selectbox(key="plans:f:charges.api_requests.model").set_value("percentage").run()
    at.text_input(key="plans:f:charges.api_requests.rate").set_value("120").run()
    assert "Rate (%) is a percentage: it must be between 0 and 100" in " ".join(captions_in(at, "plans-charge-api_requests"))


def test_fixed_charges_table_and_duplicate_code(workspace: Engine) -> None:
    plan_store.save_plan(workspace, plan={"code": "team", "name": "Team", "currency": "USD"})
    at = new_plan(page("plans"), "Team")
    assert ":red[:material/error: a plan with code 'team' already exists]" in captions_in(at, "plans-editor")
    at.text_input(key="plans:f:code").set_value("team_eu").run()
    at.text_input(key="plans:f:name").set_value("Team EU").run()
    assert at.text_input(key="plans:f:code").value == "team_eu"  # typed: no longer follows the name
    at.selectbox(key="plans:f:currency").set_value("EUR").run()
    at.session_state["plans:f:fixed_charges"] = {"edited_rows": {}, "deleted_rows": [], "added_rows": [
        {"name": "Seats", "quantity": "5", "unit_price": "-1"}]}
    at.run()
    assert "row 1 (Unit price): Unit price must be 0 or more" in " ".join(captions_in(at, "plans-fixed"))
    at.session_state["plans:f:fixed_charges"] = {"edited_rows": {}, "deleted_rows": [], "added_rows": [
        {"name": "Seats", "quantity": "5", "unit_price": "12.50"}, {"name": "Support", "unit_price": "99"}]}
    at.run()
    at.button(key="plans:save").click().run()
    assert not at.exception, at.exception
    plan = plan_store.get_plan(workspace, code="team_eu")
    assert plan.currency == "EUR"
    assert [(f.name, f.quantity, f.unit_price) for f in plan.fixed_charges] == [
        ("Seats", D(5), D("12.50")), ("Support", D(1), D(99))]


def test_limit_metered_quota_has_no_carryover_fields(workspace: Engine) -> None:
    at = new_plan(page("plans"), "Capped")
    at.checkbox(key="plans:f:quotas.seats_used.on").check().run()
    keys = {t.key for t in at.text_input}
    assert "plans:f:quotas.seats_used.limit" in keys
    assert "plans:f:quotas.seats_used.max_carryover" not in keys
    at.text_input(key="plans:f:quotas.seats_used.limit").set_value("10").run()
    at.button(key="plans:save").click().run()
    assert plan_store.get_plan(workspace, code="capped").quotas[0].model_dump(exclude_none=True) == {
        "metric": "seats_used", "limit": D(10)}


def test_edit_an_existing_plan(workspace: Engine) -> None:
    plan_store.save_plan(workspace, plan={
        "code": "growth", "name": "Growth", "currency": "USD", "base_fee": "199",
        "fixed_charges": [{"name": "Seats", "quantity": 10, "unit_price": "12"}],
        "charges": [{"metric": "llm_tokens", "model": "volume", "tiers": [
            {"up_to": 1000000, "unit_price": "0.000035"}, {"up_to": None, "unit_price": "0.00003"}]}],
        "quotas": [{"metric": "sms", "limit": 5000, "max_carryover": 2500}]})
    at = page("plans")
    at.button(key="plans:edit:growth").click().run()
    assert not at.exception, at.exception
    assert at.text_input(key="plans:f:name").value == "Growth"
    assert at.text_input(key="plans:f:code").disabled
    assert at.text_input(key="plans:f:base_fee").value == "199"
    assert at.selectbox(key="plans:f:charges.llm_tokens.model").value == "volume"
    assert at.text_input(key="plans:f:quotas.sms.max_carryover").value == "2500"
    tiers = [d.value for d in at.data_editor if "up_to" in d.value.columns][0]
    assert tiers["up_to"].tolist() == ["1000000", ""]
    at.text_input(key="plans:f:base_fee").set_value("249").run()
    at.session_state["plans:f:charges.llm_tokens.tiers"] = {"edited_rows": {0: {"unit_price": "0.00004"}},
                                                           "deleted_rows": [], "added_rows": []}
    at.run()
    at.button(key="plans:save").click().run()
    assert not at.exception, at.exception
    plan = plan_store.get_plan(workspace, code="growth")
    assert plan.base_fee == D(249) and plan.charges[0].tiers[0].up_to == D(1000000)
    assert [t.unit_price for t in plan.charges[0].tiers] == [D("0.00004"), D("0.00003")]
    assert plan.fixed_charges[0].quantity == D(10)


def test_plan_list_and_delete_with_subscribers(workspace: Engine) -> None:
    plan_store.save_plan(workspace, plan={"code": "basic", "name": "Basic", "currency": "USD", "base_fee": "9"})
    plan_store.save_plan(workspace, plan={"code": "pro", "name": "Pro", "currency": "USD", "base_fee": "49"})
    plan_store.set_subscription(workspace, customer_id="cus_001", plan_code="basic", start="2026-10-01")
    at = page("plans")
    listing = " ".join(m.value for m in at.container("plans-list").markdown)
    assert "**Basic**" in listing and format_money(D(9), "USD").replace("$", "\\$") in listing
    at.button(key="plans:del:basic").click().run()
    assert at.button(key="plans:delete_yes").disabled  # a subscriber depends on it: confirm first
    at.checkbox(key="plans:delete_ack").check().run()
    at.button(key="plans:delete_yes").click().run()
    assert not at.exception, at.exception
    assert plan_store.get_plan(workspace, code="basic") is None
    assert plan_store.list_subscriptions(workspace) == []
    assert "Deleted plan Basic" in at.success[0].value

    at.button(key="plans:del:pro").click().run()
    at.button(key="plans:delete_no").click().run()
    assert plan_store.get_plan(workspace, code="pro") is not None


def test_subscriptions_table_saves_and_refuses_bad_rows(workspace: Engine) -> None:
    plan_store.save_plan(workspace, plan={"code": "basic", "name": "Basic", "currency": "USD"})
    plan_store.set_subscription(workspace, customer_id="cus_001", plan_code="basic")
    at = page("plans")
    (table,) = [d.value for d in at.data_editor if "customer_id" in d.value.columns]
    assert table.to_dict("records") == [{"customer_id": "cus_001", "plan": "basic", "start": ""}]
    assert any("with events but no subscription" in c.value for c in at.caption)

    at.session_state[wp.SUBS_TABLE] = {"edited_rows": {}, "deleted_rows": [], "added_rows": [
        {"customer_id": "cus_002", "plan": "basic", "start": "2026-13-01"}]}
    at.run()
    at.button(key="plans:subs_save").click().run()
    assert "row 2 (start)" in at.error[0].value
    assert [s.customer_id for s in plan_store.list_subscriptions(workspace)] == ["cus_001"]

    at.session_state[wp.SUBS_TABLE] = {"edited_rows": {}, "deleted_rows": [0], "added_rows": [
        {"customer_id": "cus_002", "plan": "basic", "start": "2026-10-15"}]}
    at.run()
    at.button(key="plans:subs_save").click().run()
    assert not at.exception, at.exception
    subs = plan_store.list_subscriptions(workspace)
    assert [(s.customer_id, s.plan, s.start) for s in subs] == [("cus_002", "basic", "2026-10-15")]


def test_form_helpers_map_engine_paths_to_widgets() -> None:
    draft = wp.blank_draft()
    draft.update({"name": "X", "code": "x", "fixed_charges": [{"name": "", "quantity": "", "unit_price": ""},
                                                               {"name": "Seats", "quantity": "2", "unit_price": "oops"}]})
    draft["charges"]["api"] = {**wp.blank_charge(), "on": True, "model": "volume",
                               "tiers": [{"up_to": "", "unit_price": "1", "flat_fee": ""},
                                         {"up_to": "", "unit_price": "2", "flat_fee": ""}]}
    metric_list = [metrics.validate_metric({"name": "API", "code": "api", "unit": "x", "aggregation": "count"})]
    data, origin = wp.plan_data(draft, metric_list)
    assert data["fixed_charges"] == [{"name": "Seats", "unit_price": "oops", "quantity": "2"}]
    errors = wp.form_errors(data, origin, {"api": "charge_metered"})
    assert errors["fixed_charges"].startswith("row 2 (Unit price): Unit price 'oops' is not a decimal number")
    assert errors["charges.api.tiers"].startswith("row 1 (Up to): only the last tier may have an open Up to")


# --------------------------------------------------------------------------- issue 8


def test_the_plan_list_shows_each_charges_price_in_one_line(workspace: Engine) -> None:
    plan_store.save_plan(workspace, plan={
        "code": "growth", "name": "Growth", "currency": "USD", "base_fee": "199",
        "charges": [{"metric": "api_requests", "model": "graduated", "tiers": [
                        {"up_to": "10000", "unit_price": "0.008"}, {"up_to": None, "unit_price": "0.004"}]},
                    {"metric": "llm_tokens", "model": "package", "package_size": "100000", "package_price": "4"}],
        "quotas": [{"metric": "sms", "limit": "5000", "max_carryover": "2500", "overage_unit_price": "0.015"},
                   {"metric": "seats_used", "limit": "3"}]})
    at = page("plans")
    listing = " ".join(m.value for m in at.container("plans-list").markdown)
    expected = [
        "API Requests · graduated: $0.008 each up to 10,000 · $0.004 each above 10,000",
        "LLM Tokens · $4.00 per 100,000 tokens",
        "SMS Credits · 5,000 sms a month, unused carries over (at most 2,500) · overage $0.015 each",
        "Seats used · hard limit 3 seats a month",
    ]
    assert wp.charges_summary(plan_store.get_plan(workspace, code="growth"), metrics.list_metrics(workspace)) == expected
    for line in expected:
        assert md(line) in listing


def test_plan_messages_use_the_forms_labels(workspace: Engine) -> None:
    at = new_plan(page("plans"), "Neg")
    at.text_input(key="plans:f:base_fee").set_value("-1").run()
    shown = " ".join(captions_in(at, "plans-editor"))
    assert "Base fee must be 0 or more" in shown and "base\\_fee" not in shown


def test_a_blank_subscription_start_is_the_day_of_the_customers_first_event(workspace: Engine) -> None:
    """Issue 8 #6: a blank start billed the months before the customer existed."""
    from metering import invoices
    from metering.frame import EventFrame
    from metering.workspace import workspace_from_store
    plan_store.save_plan(workspace, plan={"code": "basic", "name": "Basic", "currency": "USD", "base_fee": "199"})
    ingest.import_file(workspace, b"event_name,customer_id,timestamp\napi.request,late,2026-11-25T10:32:00Z\n", name="late.csv")
    at = page("plans")
    at.session_state[wp.SUBS_TABLE] = {"edited_rows": {}, "deleted_rows": [], "added_rows": [
        {"customer_id": "late", "plan": "basic", "start": ""}, {"customer_id": "nobody", "plan": "basic", "start": ""}]}
    at.run()
    at.button(key="plans:subs_save").click().run()
    assert "row 2 (start): 'nobody' has no events yet" in plain(at.error[0].value)
    assert plan_store.list_subscriptions(workspace) == []

    at.session_state[wp.SUBS_TABLE] = {"edited_rows": {}, "deleted_rows": [], "added_rows": [
        {"customer_id": "late", "plan": "basic", "start": ""}]}
    at.run()
    at.button(key="plans:subs_save").click().run()
    assert not at.exception, at.exception
    assert [(s.customer_id, s.start) for s in plan_store.list_subscriptions(workspace)] == [("late", "2026-11-25")]
    frame, ws = EventFrame.from_store(workspace), workspace_from_store(workspace)
    assert invoices.run(frame, ws, month=(2026, 10)) == []  # no $199.00 for October
    assert [i.customer_id for i in invoices.run(frame, ws, month=(2026, 11))] == ["late"]


def test_first_event_days_are_read_in_the_workspace_timezone() -> None:
    at_2330_utc = 1_796_081_400_000_000  # 2026-11-30T23:30:00Z
    assert wp.first_event_days({"c": at_2330_utc}, "UTC") == {"c": "2026-11-30"}
    assert wp.first_event_days({"c": at_2330_utc}, "Europe/Berlin") == {"c": "2026-12-01"}
