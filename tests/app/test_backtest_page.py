"""The Backtest page through the real navigation: every figure equals the engine's backtest
(`metering.backtest`) on the store's events; drafts re-price at once, are validated as the
plan form validates, can be saved or discarded; plans in another currency never break the
default; exports and the customer letter are the engine's numbers."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal as D

from sqlalchemy.engine import Engine

from metering import demo, backtest, plan_store
from metering.backtest import analysis, reasons
from metering.frame import EventFrame
from metering.money import format_money, format_signed_money
from metering.plans import Plan
from metering.workspace import workspace_from_store
from tests.app.conftest import page
from workbench import backtest as wb

PLANS = "backtest:plans"


def engine_backtest(engine: Engine, codes: list[str], first: str, last: str, **kw) -> backtest.Backtest:
    return backtest.run_codes(EventFrame.from_store(engine), workspace_from_store(engine), codes, first, last, **kw)


# The demo's three months of history end now (its last month is the current one).
FIRST, LAST = (f"{y:04d}-{m:02d}" for y, m in (demo.span().months[0], demo.span().months[-1]))


def values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def deltas(at) -> dict[str, str]:
    return {m.label: m.delta for m in at.metric}


def opened(engine: Engine, first: str | None = None, last: str | None = None):
    at = page("backtest")
    at.selectbox(key="backtest:from").set_value(first or FIRST)
    at.selectbox(key="backtest:to").set_value(last or LAST).run()
    assert not at.exception, at.exception
    return at


def test_fewer_than_two_plans_says_what_to_do(app_engine: Engine) -> None:
    at = page("backtest")
    assert not at.exception, at.exception
    assert "at least two plans" in at.info[0].value


def test_totals_changes_and_guardrail_equal_the_engine(demo_engine: Engine) -> None:
    at = opened(demo_engine)
    assert at.multiselect(key=PLANS).value == ["starter", "growth", "scale"]
    bt = engine_backtest(demo_engine, ["starter", "growth", "scale"], FIRST, LAST)
    shown = values(at)
    assert shown["Starter · baseline"] == format_money(bt.totals["starter"], "USD")
    assert shown["Growth"] == format_money(bt.totals["growth"], "USD")
    assert shown["Scale"] == format_money(bt.totals["scale"], "USD")
    assert deltas(at)["Growth"] == f"{format_signed_money(bt.change('growth'), 'USD')} ({wb.percent_text(bt.change_percent('growth'))})"
    rail = analysis.guardrail(bt, "growth", D(20))
    assert f"**Growth** fails: {rail.count} customers would pay more than +20 %" in at.error[0].value
    assert f"{len(bt.customers)} customers · 3 months ({FIRST} to {LAST})" in " ".join(c.value for c in at.caption)
    # the revenue tab's month table is the engine's month totals
    (months,) = [d.value for d in at.dataframe if list(d.value.columns[:1]) == ["Month"]]
    assert months["Starter"].tolist() == [format_money(v, "USD") for v in bt.month_totals["starter"]] + [
        format_money(bt.totals["starter"], "USD")]

    at.number_input(key="backtest:guardrail").set_value(1000).run()
    generous = analysis.guardrail(bt, "growth", D(1000))
    assert generous.passed is (not analysis.guardrail(bt, "growth", D(1000)).flagged)
    text = " ".join(e.value for e in at.error) + " ".join(s.value for s in at.success)
    assert "**Growth** passes" in text


def test_customers_tab_distribution_movers_and_every_customer(demo_engine: Engine) -> None:
    at = opened(demo_engine)
    at.session_state["backtest:tab"] = "Customers"
    at.run()
    assert not at.exception, at.exception
    bt = engine_backtest(demo_engine, ["starter", "growth", "scale"], FIRST, LAST)
    dist = analysis.distribution(bt, "growth")
    shown = values(at)
    assert shown["Median change"] == wb.percent_text(dist.median)
    assert shown["95th percentile"] == wb.percent_text(dist.p95)
    assert (shown["Pay more"], shown["Pay less"], shown["Unchanged"]) == (str(dist.up), str(dist.down), str(dist.unchanged))
    up, down = analysis.movers(bt, "growth", wb.MOVERS)
    tables = [d.value for d in at.dataframe]
    movers = [t for t in tables if list(t.columns) == ["Customer", "Baseline", "Plan", "Change", "Change %"]]
    assert movers[0]["Customer"].tolist() == [m.customer_id for m in up]
    assert movers[1]["Customer"].tolist() == [m.customer_id for m in down]
    everyone = [t for t in tables if "Growth change" in t.columns][0]
    assert everyone["Customer"].tolist() == list(bt.customers)
    # the other plan against the baseline
    at.segmented_control(key="backtest:focus").set_value("scale").run()
    assert values(at)["Median change"] == wb.percent_text(analysis.distribution(bt, "scale").median)


def test_customer_detail_shows_each_lines_difference_and_reason(demo_engine: Engine) -> None:
    at = opened(demo_engine)
    at.session_state["backtest:tab"] = "Customer detail"
    at.run()
    at.selectbox(key="backtest:detail_customer").set_value("cus_acme")
    at.selectbox(key="backtest:detail_plan").set_value("scale").run()
    assert not at.exception, at.exception
    bt = engine_backtest(demo_engine, ["starter", "growth", "scale"], FIRST, LAST)
    month = at.selectbox(key="backtest:detail_month").value
    diffs = reasons.customer_diffs(bt, "cus_acme", "scale", month)
    (table,) = [d.value for d in at.dataframe if "Why" in d.value.columns]
    assert table["Line"].tolist() == [d.description for d in diffs]
    assert table["Why"].tolist() == ["; ".join(r.text for r in d.reasons) for d in diffs]
    base_fee = table[table["Line"] == "Base fee"].iloc[0]
    assert (base_fee["Baseline"], base_fee["Plan"], base_fee["Why"]) == ("$49.00", "$799.00", "base fee $49.00 → $799.00")


def test_a_draft_moves_the_totals_without_saving_then_is_saved(demo_engine: Engine) -> None:
    at = opened(demo_engine)
    at.selectbox(key="backtest:dup_source").set_value("growth")
    at.button(key="backtest:duplicate").click().run()
    assert not at.exception, at.exception
    assert at.multiselect(key=PLANS).value == ["starter", "growth", "scale", "growth_draft"]
    assert values(at)["Growth (draft)"] == values(at)["Growth"]
    assert plan_store.get_plan(demo_engine, code="growth_draft") is None

    at.text_input(key="backtest:d:growth_draft:base_fee").set_value("99").run()
    assert not at.exception, at.exception
    ws = workspace_from_store(demo_engine)
    draft = ws.plan("growth").model_copy(update={"code": "growth_draft", "name": "Growth (draft)", "base_fee": D(99)})
    want = backtest.run(EventFrame.from_store(demo_engine), ws, [ws.plan("starter"), ws.plan("growth"), ws.plan("scale"), draft],
                        backtest.month_range(FIRST, LAST))
    assert values(at)["Growth (draft)"] == format_money(want.totals["growth_draft"], "USD")
    assert want.totals["growth_draft"] == want.totals["growth"] - 100 * len(want.customers) * 3

    # a bad price is explained beside its field and the draft leaves the backtest until fixed
    at.text_input(key="backtest:d:growth_draft:charges.2.unit_price").set_value("-1").run()
    assert not at.exception, at.exception
    assert "Growth (draft)" not in values(at)
    assert any("unit\\_price must be 0 or more" in c.value for c in at.caption), [c.value for c in at.caption]  # beside the field (Markdown-escaped)
    assert "has fields to fix" in at.warning[0].value
    at.button(key="backtest:save:growth_draft").click().run()
    assert plan_store.get_plan(demo_engine, code="growth_draft") is None

    at.text_input(key="backtest:d:growth_draft:charges.2.unit_price").set_value("0.05").run()
    at.button(key="backtest:save:growth_draft").click().run()
    assert not at.exception, at.exception
    saved = plan_store.get_plan(demo_engine, code="growth_draft")
    assert saved is not None and saved.base_fee == D(99) and saved.charge_for("storage_gb").unit_price == D("0.05")
    assert "Saved the draft as plan Growth (draft)" in at.success[0].value
    assert "growth_draft" in at.multiselect(key=PLANS).value  # still compared, now as a stored plan


def test_a_draft_can_change_a_tier_and_be_discarded(demo_engine: Engine) -> None:
    at = opened(demo_engine)
    at.selectbox(key="backtest:dup_source").set_value("starter")
    at.button(key="backtest:duplicate").click().run()
    before = values(at)["Starter (draft)"]
    assert before == values(at)["Starter · baseline"]
    # unique users, graduated: the second tier's price 0.50 → 2.00
    at.session_state["backtest:d:starter_draft:charges.3.tiers"] = {
        "edited_rows": {1: {"unit_price": "2.00"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception, at.exception
    ws = workspace_from_store(demo_engine)
    plan = ws.plan("starter")
    data = plan.model_dump(mode="json")
    data["code"], data["name"] = "starter_draft", "Starter (draft)"
    data["charges"][3]["tiers"][1]["unit_price"] = "2.00"
    want = backtest.run(EventFrame.from_store(demo_engine), ws, [plan, ws.plan("growth"), ws.plan("scale"),
                                                                  Plan.model_validate(data)], backtest.month_range(FIRST, LAST))
    assert values(at)["Starter (draft)"] == format_money(want.totals["starter_draft"], "USD") != before
    at.button(key="backtest:discard:starter_draft").click().run()
    assert not at.exception, at.exception
    assert "starter_draft" not in at.multiselect(key=PLANS).value
    assert "Starter (draft)" not in values(at)


def test_a_cheaper_plan_in_another_currency_is_never_the_default(demo_engine: Engine) -> None:
    plan_store.save_plan(demo_engine, plan={"code": "euro", "name": "Euro", "currency": "EUR", "base_fee": "1"})
    plan_store.save_plan(demo_engine, plan={"code": "euro_plus", "name": "Euro Plus", "currency": "EUR", "base_fee": "2"})
    at = opened(demo_engine)
    assert at.multiselect(key=PLANS).value == ["starter", "growth", "scale"]
    assert not at.error or all("Guardrail" in e.value for e in at.error)
    at.selectbox(key="backtest:group").set_value("EUR month").run()
    assert not at.exception, at.exception
    assert at.multiselect(key=PLANS).value == ["euro", "euro_plus"]
    assert values(at)["Euro · baseline"] == format_money(
        engine_backtest(demo_engine, ["euro", "euro_plus"], FIRST, LAST).totals["euro"], "EUR")


def test_cohorts_subscribers_of_a_plan_and_chosen_customers(demo_engine: Engine) -> None:
    at = opened(demo_engine)
    at.radio(key="backtest:cohort").set_value(wb.SUBSCRIBERS).run()
    at.selectbox(key="backtest:cohort_plan").set_value("growth").run()
    assert not at.exception, at.exception
    ws = workspace_from_store(demo_engine)
    growth = sorted(s.customer_id for s in ws.subscriptions if s.plan == "growth")
    bt = engine_backtest(demo_engine, ["starter", "growth", "scale"], FIRST, LAST, customer_ids=growth)
    assert values(at)["Scale"] == format_money(bt.totals["scale"], "USD")
    assert f"{len(growth)} customers" in " ".join(c.value for c in at.caption)

    at.radio(key="backtest:cohort").set_value(wb.CHOSEN).run()
    assert "Pick the customers" in at.info[0].value
    at.multiselect(key="backtest:cohort_customers").set_value(["cus_wonka"]).run()
    bt = engine_backtest(demo_engine, ["starter", "growth", "scale"], FIRST, LAST, customer_ids=["cus_wonka"])
    assert values(at)["Growth"] == format_money(bt.totals["growth"], "USD")


def test_bad_month_range_is_explained(demo_engine: Engine) -> None:
    at = opened(demo_engine, LAST, FIRST)
    assert f"--to {FIRST} is before --from {LAST}" in at.error[0].value


def test_exports_are_the_engines_csv_and_json(demo_engine: Engine) -> None:
    at = opened(demo_engine)
    at.session_state["backtest:tab"] = "Export"
    at.run()
    assert not at.exception, at.exception
    assert [b.label for b in at.get("download_button")] == ["Backtest (CSV)", "Backtest (JSON)"]
    bt = engine_backtest(demo_engine, ["starter", "growth", "scale"], FIRST, LAST)
    files = {label: (data, name) for label, data, name, _ in wb.downloads(bt)}
    data, name = files["Backtest (CSV)"]
    assert name == f"backtest-{FIRST}_to_{LAST}-starter-growth-scale.csv"
    rows = list(csv.DictReader(io.StringIO(data)))
    assert len(rows) == len(bt.customers) * 3 * 3
    assert json.loads(files["Backtest (JSON)"][0]) == bt.to_json()


def test_customer_letter_is_the_customers_bill_under_each_plan(demo_engine: Engine) -> None:
    at = opened(demo_engine)
    at.session_state["backtest:tab"] = "Customer letter"
    at.run()
    at.selectbox(key="backtest:letter_customer").set_value("cus_acme")
    at.text_input(key="backtest:seller").set_value("Acme Billing Co").run()
    assert not at.exception, at.exception
    bt = engine_backtest(demo_engine, ["starter", "growth", "scale"], FIRST, LAST)
    (letter,) = [h.value for h in at.get("html") if "bt-letter'" in h.value]
    assert "Acme Billing Co" in letter and "cus_acme" in letter and "(your plan)" in letter
    for code in bt.codes:
        assert format_money(bt.customer_totals[code]["cus_acme"], "USD") in letter
        for value in bt.customer_month_totals[code]["cus_acme"]:
            assert format_money(value, "USD") in letter
    assert any("@media print" in h.value for h in at.get("html"))


def test_plans_without_events_say_there_is_nobody_to_price(app_engine: Engine) -> None:
    for code in ("a", "b"):
        plan_store.save_plan(app_engine, plan={"code": code, "name": code.upper(), "currency": "USD", "base_fee": "5"})
    at = page("backtest")
    assert not at.exception, at.exception
    assert at.multiselect(key=PLANS).value == ["a", "b"]
    assert "No customer has a billing period" in at.info[0].value


def test_draft_form_helpers_map_fields_to_plan_data_and_messages_to_fields() -> None:
    from workbench import backtest_drafts as bd

    source = {"code": "p_draft", "name": "P (draft)", "currency": "USD", "interval": "month", "base_fee": "10",
              "included_credit": "0", "fixed_charges": [{"name": "Seats", "quantity": "2", "unit_price": "5"}],
              "charges": [{"metric": "api", "model": "standard", "free_units": "0", "unit_price": "0.01"}],
              "quotas": [{"metric": "sms", "limit": "100", "overage_unit_price": "0.02"}]}
    edits = {"base_fee": "", "charges.0.model": "graduated",
             "charges.0.tiers": [{"up_to": "1000", "unit_price": "0.02", "flat_fee": ""},
                                 {"up_to": "", "unit_price": "0.01", "flat_fee": "3"}, {"up_to": "", "unit_price": "", "flat_fee": ""}],
             "quotas.0.overage_unit_price": "", "fixed_charges.0.quantity": "4"}
    data = bd.plan_data(source, edits.get)
    assert "base_fee" not in data  # blank: the engine's default (0)
    assert data["fixed_charges"] == [{"name": "Seats", "unit_price": "5", "quantity": "4"}]
    assert data["charges"] == [{"metric": "api", "model": "graduated", "free_units": "0", "tiers": [
        {"up_to": "1000", "unit_price": "0.02"}, {"up_to": None, "unit_price": "0.01", "flat_fee": "3"}]}]
    assert data["quotas"] == [{"metric": "sms", "limit": "100"}]
    assert Plan.model_validate(data).charges[0].tiers[1].flat_fee == D(3)
    # back to standard: the unit price typed before comes back, the tiers are dropped
    again = bd.plan_data(source, {"charges.0.model": "standard"}.get)
    assert again["charges"] == [{"metric": "api", "model": "standard", "free_units": "0", "unit_price": "0.01"}]
    shown = bd.widget_errors([("code", "a plan with code 'p' already exists"), ("name", "name is required"),
                              ("charges.0.tiers.1.up_to", "must be greater than 0"), ("charges.0.unit_price", "bad")])
    assert shown == {"": "a plan with code 'p' already exists", "name": "name is required",
                     "charges.0.tiers": "row 2 (up to): must be greater than 0", "charges.0.unit_price": "bad"}
