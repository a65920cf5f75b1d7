"""The Invoices page through the real navigation: totals, lines and explanations equal the engine's
(`invoices.run`, `compare.compare_plans`), downloads are the engine's exports, and the
customer-facing view shows the same invoice."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pyarrow as pa
from sqlalchemy.engine import Engine

from metering import compare, invoices, metrics, plan_store
from metering.frame import EventFrame
from metering.money import format_money
from metering.workspace import workspace_from_store
from tests.app.conftest import page
from workbench import invoices as wi
from workbench.editor import md


def engine_invoices(engine: Engine, **kwargs) -> list[invoices.Invoice]:
    return invoices.run(EventFrame.from_store(engine), workspace_from_store(engine), **kwargs)


def charts_of(at) -> list[tuple[dict, list[dict]]]:
    out = []
    for chart in at.get("vega_lite_chart"):
        (dataset,) = chart.proto.datasets
        out.append((json.loads(chart.proto.spec), pa.ipc.open_stream(dataset.data.data).read_all().to_pylist()))
    return out


def values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def summary(at):
    (df,) = [d.value for d in at.dataframe if {"customer_id", "subtotal", "credit", "total"} <= set(d.value.columns)]
    return df


def total_of(invs: list[invoices.Invoice]) -> str:
    return format_money(sum((i.total for i in invs), D(0)), "USD")


def test_no_plans_points_to_plans_and_demo(app_engine: Engine) -> None:
    at = page("invoices")
    assert not at.exception, at.exception
    assert "No plans yet" in at.info[0].value


def test_subscriptions_latest_month_total_and_lines_equal_the_engine(demo_engine: Engine) -> None:
    at = page("invoices")
    assert not at.exception, at.exception
    assert at.selectbox(key="invoices:plan").value == wi.SUBSCRIPTIONS
    assert at.selectbox(key="invoices:month").options == ["2026-12", "2026-11", "2026-10"]
    assert at.selectbox(key="invoices:month").value == "2026-12"
    invs = engine_invoices(demo_engine, month=(2026, 12))
    shown = values(at)
    assert shown["Invoices"] == str(len(invs)) == "11"
    assert shown["Total (USD)"] == total_of(invs)
    assert shown["Total (USD)"] == format_money(D(invoices.report(invs)["total"]), "USD")
    assert shown["Included credit used (USD)"] == format_money(sum((i.credit for i in invs), D(0)), "USD")
    df = summary(at)
    assert df["customer_id"].tolist() == [i.customer_id for i in invs]
    assert df["total"].tolist() == [format_money(i.total, "USD") for i in invs]
    assert df["credit"].tolist() == [format_money(i.credit, "USD") for i in invs]

    # one expander per invoice; each line explains its arithmetic with the engine's own words
    assert len(at.expander) == len(invs)
    first, inv = at.expander[0], invs[0]
    assert format_money(inv.total, "USD") in first.label
    captions = [c.value for c in first.caption]
    for line in inv.lines:
        assert "  \n".join(md(x) for x in line.explain("USD")) in "\n".join(captions) or any(
            c.startswith("  \n".join(md(x) for x in line.explain("USD"))) for c in captions)
    markdown = " ".join(m.value for m in first.markdown)
    for text in inv.explain():
        assert md(text) in markdown

    # the revenue chart sums the lines by description
    revenue, currency = wi.revenue_by_line(invs)
    assert currency == "USD"
    sums: dict[str, D] = {}
    for i in invs:
        for line in i.lines:
            sums[line.description] = sums.get(line.description, D(0)) + line.amount
    assert dict(zip(revenue["line"], revenue["amount"])) == sums
    (rows,) = [rows for spec, rows in charts_of(at) if spec["encoding"]["y"]["field"] == "line"]
    assert {r["line"]: r["amount_text"] for r in rows} == {k: format_money(v, "USD") for k, v in sums.items()}


def test_an_earlier_month_a_what_if_plan_and_a_customer_filter(demo_engine: Engine) -> None:
    at = page("invoices")
    at.selectbox(key="invoices:month").set_value("2026-10").run()
    assert values(at)["Total (USD)"] == total_of(engine_invoices(demo_engine, month=(2026, 10)))

    at.selectbox(key="invoices:plan").set_value("starter").run()
    assert not at.exception, at.exception
    what_if = engine_invoices(demo_engine, month=(2026, 10), plan_code="starter")
    assert {i.plan for i in what_if} == {"starter"}
    assert values(at)["Total (USD)"] == total_of(what_if)

    at.multiselect(key="invoices:customers").set_value(["cus_acme", "cus_unibee"]).run()
    chosen = [i for i in what_if if i.customer_id in ("cus_acme", "cus_unibee")]
    assert values(at)["Invoices"] == "2"
    assert values(at)["Total (USD)"] == total_of(chosen)


def test_custom_window(demo_engine: Engine) -> None:
    at = page("invoices")
    at.radio(key="invoices:mode").set_value(wi.CUSTOM).run()
    at.date_input(key="invoices:from").set_value(date(2026, 11, 1))
    at.date_input(key="invoices:to").set_value(date(2026, 11, 15)).run()
    assert not at.exception, at.exception
    window = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
    invs = engine_invoices(demo_engine, window=window)
    assert values(at)["Total (USD)"] == total_of(invs)
    assert summary(at)["period"].tolist()[0] == "2026-11-01 – 2026-11-15"

    at.date_input(key="invoices:to").set_value(date(2026, 10, 1)).run()
    assert "before the From date" in at.warning[0].value


def test_downloads_are_the_engine_exports(demo_engine: Engine) -> None:
    at = page("invoices")
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Invoice lines (CSV)", "Summary (CSV)", "Report (JSON)", "Comparison (CSV)"]
    invs = engine_invoices(demo_engine, month=(2026, 12))
    sel = wi.Selection(None, (2026, 12), None, None, "2026-12")
    files = {label: (data, name) for label, data, name, _ in wi.downloads(invs, sel)}
    assert files["Invoice lines (CSV)"] == (invoices.to_csv(invs), "invoices-2026-12-lines.csv")
    assert files["Summary (CSV)"][0] == invoices.to_csv(invs, summary=True)
    assert files["Report (JSON)"][0] == invoices.to_json_text(invs)


def test_plan_comparison_per_customer_and_in_total(demo_engine: Engine) -> None:
    at = page("invoices")
    assert at.multiselect(key="invoices:compare").value == ["starter", "growth", "scale"]
    frame, ws = EventFrame.from_store(demo_engine), workspace_from_store(demo_engine)
    result = compare.compare_plans(frame, ws.metrics, [ws.plan("starter"), ws.plan("growth"), ws.plan("scale")],
                                   subscriptions=ws.subscriptions, month=(2026, 12))
    shown = values(at)
    for code, name in (("starter", "Starter"), ("growth", "Growth"), ("scale", "Scale")):
        assert shown[f"{name} — total (USD)"] == format_money(result.totals[code], "USD")
    (df,) = [d.value for d in at.dataframe if "growth vs starter" in d.value.columns]
    assert df["customer_id"].tolist() == [c.customer_id for c in result.customers] + ["All customers"]
    assert df["scale"].tolist()[:-1] == [format_money(c.totals["scale"], "USD") for c in result.customers]
    assert df["growth vs starter"].tolist()[-1] == wi.signed_money(result.differences["growth"], "USD")
    assert df["scale vs starter"].tolist()[0] == wi.signed_money(result.customers[0].differences["scale"], "USD")

    at.multiselect(key="invoices:compare").set_value(["growth"]).run()
    assert "Pick at least two plans" in " ".join(i.value for i in at.info)


def test_plans_in_different_currencies_cannot_be_compared(demo_engine: Engine) -> None:
    plan_store.save_plan(demo_engine, plan={"code": "euro", "name": "Euro", "currency": "EUR", "base_fee": "40"})
    at = page("invoices")
    at.multiselect(key="invoices:compare").set_value(["starter", "euro"]).run()
    assert not at.exception, at.exception
    assert "plans must share a currency" in at.error[0].value


def test_customer_facing_invoice(demo_engine: Engine) -> None:
    at = page("invoices")
    at.selectbox(key="invoices:view_customer").set_value("cus_acme")
    at.text_input(key="invoices:seller").set_value("Acme Billing Co").run()
    assert not at.exception, at.exception
    (inv,) = engine_invoices(demo_engine, month=(2026, 12), customer_id="cus_acme")
    (view,) = at.get("html")
    body = view.value
    assert "Acme Billing Co" in body and "cus_acme" in body and "Growth" in body
    assert "Total due" in body and format_money(inv.total, "USD") in body
    assert format_money(inv.subtotal, "USD") in body and f"−{format_money(inv.credit, 'USD')}" in body
    for line in inv.lines:
        assert line.description in body and format_money(line.amount, "USD") in body
    assert "<button" not in body and "explain" not in body  # no internal controls


def test_no_subscriptions_explains_the_empty_result(demo_engine: Engine) -> None:
    for sub in plan_store.list_subscriptions(demo_engine):
        plan_store.delete_subscription(demo_engine, customer_id=sub.customer_id)
    at = page("invoices")
    assert not at.exception, at.exception
    assert "No subscriptions yet" in at.info[0].value
    at.selectbox(key="invoices:plan").set_value("scale").run()
    assert values(at)["Total (USD)"] == total_of(engine_invoices(demo_engine, month=(2026, 12), plan_code="scale"))


def test_a_broken_workspace_says_what_to_fix(demo_engine: Engine) -> None:
    metrics.delete_metric(demo_engine, code="llm_tokens")
    at = page("invoices")
    assert not at.exception, at.exception
    assert "unknown metric 'llm\\_tokens'" in at.error[0].value
