"""The Invoices page through the real navigation: totals, lines and explanations equal the engine's
(`invoices.run`, `compare.compare_plans`), downloads are the engine's exports, and the
customer-facing view shows the same invoice."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pyarrow as pa
from sqlalchemy.engine import Engine

from metering import compare, invoices, metrics, plan_store
from metering.frame import EventFrame
from metering.money import format_money, format_signed_money
from metering.workspace import workspace_from_store
from tests.app.conftest import demo_months, page
from workbench import invoices as wi
from workbench.editor import md


FIRST, LAST, CURRENT = demo_months()  # the demo's months; LAST is the last complete one
LAST_TEXT, FIRST_TEXT = f"{LAST[0]}-{LAST[1]:02d}", f"{FIRST[0]}-{FIRST[1]:02d}"


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
    # from the current month back to the first month with events; the default is the last complete one
    assert at.selectbox(key="invoices:month").options == [f"{y}-{m:02d}" for y, m in (CURRENT, LAST, FIRST)]
    assert at.selectbox(key="invoices:month").value == LAST_TEXT
    invs = engine_invoices(demo_engine, month=LAST)
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
    at.selectbox(key="invoices:month").set_value(FIRST_TEXT).run()
    assert values(at)["Total (USD)"] == total_of(engine_invoices(demo_engine, month=FIRST))

    at.selectbox(key="invoices:plan").set_value("starter").run()
    assert not at.exception, at.exception
    what_if = engine_invoices(demo_engine, month=FIRST, plan_code="starter")
    assert {i.plan for i in what_if} == {"starter"}
    assert values(at)["Total (USD)"] == total_of(what_if)

    at.multiselect(key="invoices:customers").set_value(["cus_acme", "cus_unibee"]).run()
    chosen = [i for i in what_if if i.customer_id in ("cus_acme", "cus_unibee")]
    assert values(at)["Invoices"] == "2"
    assert values(at)["Total (USD)"] == total_of(chosen)


def test_custom_window(demo_engine: Engine) -> None:
    at = page("invoices")
    at.radio(key="invoices:mode").set_value(wi.CUSTOM).run()
    # the custom dates start on the last complete month too
    assert at.date_input(key="invoices:from").value == date(*LAST, 1)
    at.date_input(key="invoices:from").set_value(date(*FIRST, 1))
    at.date_input(key="invoices:to").set_value(date(*FIRST, 15)).run()
    assert not at.exception, at.exception
    window = (datetime(*FIRST, 1, tzinfo=UTC), datetime(*FIRST, 16, tzinfo=UTC))
    invs = engine_invoices(demo_engine, window=window)
    assert values(at)["Total (USD)"] == total_of(invs)
    assert summary(at)["period"].tolist()[0] == f"{FIRST_TEXT}-01 – {FIRST_TEXT}-15"

    at.date_input(key="invoices:to").set_value(date(FIRST[0] - 1, 12, 31)).run()
    assert "before the From date" in at.warning[0].value


def test_downloads_are_the_engine_exports(demo_engine: Engine) -> None:
    at = page("invoices")
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Invoice lines (CSV)", "Summary (CSV)", "Report (JSON)", "Comparison (CSV)"]
    invs = engine_invoices(demo_engine, month=LAST)
    sel = wi.Selection(None, LAST, None, None, LAST_TEXT)
    files = {label: (data, name) for label, data, name, _ in wi.downloads(invs, sel)}
    assert files["Invoice lines (CSV)"] == (invoices.to_csv(invs), f"invoices-{LAST_TEXT}-lines.csv")
    assert files["Summary (CSV)"][0] == invoices.to_csv(invs, summary=True)
    assert files["Report (JSON)"][0] == invoices.to_json_text(invs)


def test_plan_comparison_per_customer_and_in_total(demo_engine: Engine) -> None:
    at = page("invoices")
    assert at.multiselect(key="invoices:compare").value == ["starter", "growth", "scale"]
    frame, ws = EventFrame.from_store(demo_engine), workspace_from_store(demo_engine)
    result = compare.compare_plans(frame, ws.metrics, [ws.plan("starter"), ws.plan("growth"), ws.plan("scale")],
                                   subscriptions=ws.subscriptions, month=LAST)
    shown = values(at)
    for code, name in (("starter", "Starter"), ("growth", "Growth"), ("scale", "Scale")):
        assert shown[f"{name} — total (USD)"] == format_money(result.totals[code], "USD")
    (df,) = [d.value for d in at.dataframe if "growth vs starter" in d.value.columns]
    assert df["customer_id"].tolist() == [c.customer_id for c in result.customers] + ["All customers"]
    assert df["scale"].tolist()[:-1] == [format_money(c.totals["scale"], "USD") for c in result.customers]
    assert df["growth vs starter"].tolist()[-1] == format_signed_money(result.differences["growth"], "USD")
    assert df["scale vs starter"].tolist()[0] == format_signed_money(result.customers[0].differences["scale"], "USD")

    at.multiselect(key="invoices:compare").set_value(["growth"]).run()
    assert "Pick at least two plans" in " ".join(i.value for i in at.info)


def test_a_cheaper_plan_in_another_currency_does_not_break_the_default_comparison(demo_engine: Engine) -> None:
    # issue 8: a cheaper EUR plan used to become the baseline and the default comparison an error
    plan_store.save_plan(demo_engine, plan={"code": "euro", "name": "Euro", "currency": "EUR", "base_fee": "40"})
    plan_store.save_plan(demo_engine, plan={"code": "euro_pro", "name": "Euro Pro", "currency": "EUR", "base_fee": "90"})
    at = page("invoices")
    assert not at.exception, at.exception
    assert at.selectbox(key="invoices:compare_group").options == ["USD · every month (3 plans)", "EUR · every month (2 plans)"]
    assert at.multiselect(key="invoices:compare").value == ["starter", "growth", "scale"]
    assert at.multiselect(key="invoices:compare").options == ["Starter (starter)", "Growth (growth)", "Scale (scale)"]
    assert not at.error
    assert "Starter — total (USD)" in values(at)

    at.selectbox(key="invoices:compare_group").set_value("EUR month").run()
    assert not at.exception, at.exception
    assert at.multiselect(key="invoices:compare").value == ["euro", "euro_pro"]
    assert not at.error
    assert {"Euro — total (EUR)", "Euro Pro — total (EUR)"} <= set(values(at))


def test_one_plan_alone_in_its_currency_says_why_it_cannot_be_compared(demo_engine: Engine) -> None:
    plan_store.save_plan(demo_engine, plan={"code": "euro", "name": "Euro", "currency": "EUR", "base_fee": "40"})
    at = page("invoices")
    at.selectbox(key="invoices:compare_group").set_value("EUR month").run()
    assert not at.exception, at.exception
    assert "Only one plan bills in EUR every month" in " ".join(i.value for i in at.info)


def test_customer_facing_invoice(demo_engine: Engine) -> None:
    at = page("invoices")
    at.selectbox(key="invoices:view_customer").set_value("cus_acme")
    at.text_input(key="invoices:seller").set_value("Acme Billing Co").run()
    assert not at.exception, at.exception
    (inv,) = engine_invoices(demo_engine, month=LAST, customer_id="cus_acme")
    (view,) = at.get("html")
    body = view.value
    assert "Acme Billing Co" in body and "cus_acme" in body and "Growth" in body
    assert "Total due" in body and format_money(inv.total, "USD") in body
    assert format_money(inv.subtotal, "USD") in body and f"−{format_money(inv.credit, 'USD')}" in body
    for line in inv.lines:
        assert line.description in body and format_money(line.amount, "USD") in body
    assert "<button" not in body and "explain" not in body  # no internal controls
    # issue 8: quantities are units, never a money volume read as an amount; tier prices are shown
    payments = next(line for line in inv.lines if line.metric == "payments")
    quantities = re.findall(r"<td class='num'>([^<]*)</td><td class='num'>[^<]*</td></tr>", body)
    assert f"{payments.charge.event_count:,} transactions" in quantities
    assert not any(q.endswith(" USD") for q in quantities)
    assert "2.5% of $" in body  # the volume is in the detail line, as money
    assert "graduated: $0.008 each up to 10,000 · $0.006 each up to 100,000 · $0.004 each above 100,000" in body
    assert "volume: $0.000035 each up to 1,000,000" in body and "tier 1 (0–" in body


def test_no_subscriptions_explains_the_empty_result(demo_engine: Engine) -> None:
    for sub in plan_store.list_subscriptions(demo_engine):
        plan_store.delete_subscription(demo_engine, customer_id=sub.customer_id)
    at = page("invoices")
    assert not at.exception, at.exception
    assert "No subscriptions yet" in at.info[0].value
    at.selectbox(key="invoices:plan").set_value("scale").run()
    assert values(at)["Total (USD)"] == total_of(engine_invoices(demo_engine, month=LAST, plan_code="scale"))


def test_a_broken_workspace_says_what_to_fix(demo_engine: Engine) -> None:
    metrics.delete_metric(demo_engine, code="llm_tokens")
    at = page("invoices")
    assert not at.exception, at.exception
    assert "unknown metric 'llm\\_tokens'" in at.error[0].value


def test_one_far_future_event_does_not_take_the_month_list_over(demo_engine: Engine) -> None:
    """Issue 8 #2: an event dated 2099 made 2099-01 the default and listed every month back."""
    from metering import ingest
    ingest.import_file(demo_engine, b"event_name,customer_id,timestamp\napi.request,cus_acme,2099-01-01T00:00:00Z\n",
                       name="typo.csv")
    at = page("invoices")
    assert not at.exception, at.exception
    assert at.selectbox(key="invoices:month").options == [f"{y}-{m:02d}" for y, m in (CURRENT, LAST, FIRST)]
    assert at.selectbox(key="invoices:month").value == LAST_TEXT
