"""The Invoices page: invoices per customer for a period, plan comparison, a customer-facing view.

Every figure comes from the engine: `invoices.run` (who is billed under what, for which period,
and every line's arithmetic), `compare.compare_plans` (the same usage under several plans) and
`invoices.to_csv` / `invoices.report` for the downloads. This module only lays them out; money is
shown with `metering.money.format_money`, units with `preview.fmt` (exact, thousands separators).

Rules decided here:

- "Each customer's subscription" bills every subscribed customer under its plan; choosing a plan
  is a what-if that bills every customer found in the events under that plan.
- Month: the first billing period of each customer that starts in that month (the CLI's
  `--period`); the list runs from the month of the earliest event (or subscription start) to
  the current month, in the workspace timezone, latest first, and starts at the last complete
  month. Later months (planned usage) are billed with Custom dates.
- Custom dates: UTC calendar days, the To day included: the window [From 00:00 UTC,
  To + 1 day 00:00 UTC) is billed as one period for everyone (the CLI's `--from`/`--to`).
- Totals are summed per currency (plans may bill in different currencies); the revenue chart
  shows the first invoice's currency.
- Plan comparison offers only plans that can be compared (one currency and interval): by
  default the group with the most subscribers; a choice of group appears when plans differ.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from metering import compare, invoices
from metering.billing import Window
from metering.engine.columns import from_us
from metering.engine.interface import Events
from metering.invoices import Invoice, InvoiceLine
from metering.money import currencies, format_money, format_signed_money
from metering.periods import parse_subscription_start
from metering.plans import Plan
from metering.preview import fmt, plural
from metering.pricing import describe_price
from metering.workspace import Workspace, WorkspaceError, workspace_from_store
from workbench import charts, state
from workbench.downloads import csv_button
from workbench.text import md

KEY = "invoices:"
SUBSCRIPTIONS = "__subscriptions__"
MONTH, CUSTOM = "Month", "Custom dates"
MAX_EXPANDERS = 60
KIND_LABELS = {"base_fee": "base fee", "fixed_charge": "fixed charge", "usage": "usage", "overage": "overage"}
DEFAULT_SELLER = "Your company"


# =========================================================================== shared helpers


def money(amount: Decimal, currency: str) -> str:
    return format_money(amount, currency)


def ordered_plans(plans: Sequence[Plan]) -> list[Plan]:
    """Plans as the pages list them: cheapest base fee first, then by name."""
    return sorted(plans, key=lambda p: (p.base_fee, p.name.lower(), p.code))


def load_workspace(engine: Engine) -> Workspace | None:
    """The store's metrics, plans and subscriptions, or None (with the problem shown)."""
    try:
        return workspace_from_store(engine)
    except WorkspaceError as exc:
        st.error(
            f"The workspace cannot be billed as it is: {md(exc)}. Fix it on the Plans or Billable metrics page.",
            icon=":material/error:",
        )
        return None


def local(instant: datetime, tz: str) -> datetime:
    return instant.astimezone(ZoneInfo(tz))


def period_label(start: datetime, end: datetime, tz: str) -> str:
    """`2026-10` for a whole calendar month; else `2026-10-15 – 2026-11-14` (last day included)
    when the bounds are midnights; else both instants."""
    lo, hi = local(start, tz), local(end, tz)
    midnight = lambda d: (d.hour, d.minute, d.second, d.microsecond) == (0, 0, 0, 0)  # noqa: E731
    if midnight(lo) and midnight(hi):
        nxt = (lo.year + lo.month // 12, lo.month % 12 + 1)
        if lo.day == 1 and hi.day == 1 and (hi.year, hi.month) == nxt:
            return f"{lo:%Y-%m}"
        last = (hi - timedelta(days=1)).date()
        return f"{lo:%Y-%m-%d}" if last == lo.date() else f"{lo:%Y-%m-%d} – {last:%Y-%m-%d}"
    return f"{lo:%Y-%m-%d %H:%M} – {hi:%Y-%m-%d %H:%M}"


def month_options(frame: Events, ws: Workspace, *, now: datetime | None = None) -> list[str]:
    """YYYY-MM from the month of the earliest event (or subscription start) to the current
    month, in the workspace timezone, latest first. Months after the current one are not
    listed — one event dated 2099 must not fill the list — (bill planned usage with Custom
    dates); just the current month when there is nothing earlier."""
    now = now or datetime.now(UTC)
    instants: list[datetime] = [now]
    bounds = frame.time_bounds()
    if bounds is not None:
        instants.append(from_us(bounds[0]))
    for sub in ws.subscriptions:
        if sub.start:
            try:
                instants.append(parse_subscription_start(sub.start, tz=ws.timezone))
            except ValueError:
                pass
    first, last = local(min(instants), ws.timezone), local(now, ws.timezone)
    out = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out[::-1]


def default_month(months: list[str]) -> str:
    """The last complete month (invoices are billed in arrears): the one before the current
    month when listed, else the current month."""
    return months[1] if len(months) > 1 else months[0]


def utc_window(first: date, last: date) -> Window:
    """[first 00:00 UTC, last + 1 day 00:00 UTC)."""
    end = last + timedelta(days=1)
    return datetime(first.year, first.month, first.day, tzinfo=UTC), datetime(end.year, end.month, end.day, tzinfo=UTC)


@dataclass(frozen=True)
class Selection:
    plan_code: str | None  # None: each customer's subscription
    month: tuple[int, int] | None
    window: Window | None
    customers: tuple[str, ...] | None  # None: everyone billed
    label: str  # the period as chosen, for captions and file names


def compute(frame: Events, ws: Workspace, sel: Selection) -> list[Invoice]:
    """The invoices of a selection (the engine's `invoices.run`, then the chosen customers)."""
    result = invoices.run(frame, ws, plan_code=sel.plan_code, month=sel.month, window=sel.window)
    if sel.customers:
        wanted = set(sel.customers)
        result = [i for i in result if i.customer_id in wanted]
    return result


def totals_by_currency(invs: Sequence[Invoice]) -> dict[str, tuple[Decimal, Decimal]]:
    """currency → (sum of totals, sum of credit), in order of first appearance."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for inv in invs:
        total, credit = out.get(inv.currency, (Decimal(0), Decimal(0)))
        out[inv.currency] = (total + inv.total, credit + inv.credit)
    return out


def summary_table(invs: Sequence[Invoice], ws: Workspace) -> pd.DataFrame:
    names = {p.code: p.name for p in ws.plans}
    rows = [
        {
            "customer_id": inv.customer_id,
            "plan": names.get(inv.plan, inv.plan),
            "period": period_label(inv.start, inv.end, ws.timezone),
            "subtotal": money(inv.subtotal, inv.currency),
            "credit": money(inv.credit, inv.currency),
            "total": money(inv.total, inv.currency),
        }
        for inv in invs
    ]
    return pd.DataFrame(rows, columns=["customer_id", "plan", "period", "subtotal", "credit", "total"])


def revenue_by_line(invs: Sequence[Invoice]) -> tuple[pd.DataFrame, str | None]:
    """Revenue per line description (a metric's name, "Base fee", a fixed charge, an overage)
    over the invoices in the first invoice's currency; before credit."""
    if not invs:
        return pd.DataFrame(columns=["line", "kind", "amount", "amount_text"]), None
    currency = invs[0].currency
    sums: dict[str, tuple[str, Decimal]] = {}
    for inv in invs:
        if inv.currency != currency:
            continue
        for line in inv.lines:
            kind, amount = sums.get(line.description, (KIND_LABELS[line.kind], Decimal(0)))
            sums[line.description] = (kind, amount + line.amount)
    rows = [
        {"line": name, "kind": kind, "amount": amount, "amount_text": money(amount, currency)}
        for name, (kind, amount) in sums.items()
    ]
    return pd.DataFrame(rows, columns=["line", "kind", "amount", "amount_text"]), currency


def units_text(line: InvoiceLine, unit: str | None) -> str:
    text = fmt(line.units)
    return f"{text} {unit}" if unit and line.kind in ("usage", "overage") else text


def lines_table(inv: Invoice, units: dict[str, str]) -> pd.DataFrame:
    rows = [
        {"description": line.description, "units": units_text(line, units.get(line.metric or "")),
         "amount": money(line.amount, inv.currency)}
        for line in inv.lines
    ]
    return pd.DataFrame(rows, columns=["description", "units", "amount"])


def groups_text(line: InvoiceLine) -> str:
    parts = []
    for group, value in line.groups:
        label = ", ".join("null" if v is None else str(v) for v in group.values())
        parts.append(f"{label} {fmt(value)}")
    return " · ".join(parts)


def downloads(invs: Sequence[Invoice], sel: Selection) -> list[tuple[str, str, str, str]]:
    """(label, data, file name, mime) of the downloads: lines CSV, summary CSV, JSON report."""
    stem = "invoices-" + sel.label.replace(" ", "").replace("–", "_to_")
    return [
        ("Invoice lines (CSV)", invoices.to_csv(invs), f"{stem}-lines.csv", "text/csv"),
        ("Summary (CSV)", invoices.to_csv(invs, summary=True), f"{stem}-summary.csv", "text/csv"),
        ("Report (JSON)", invoices.to_json_text(invs, window=sel.window), f"{stem}.json", "application/json"),
    ]


# --- comparison -----------------------------------------------------------------------------


def comparison_table(comparison: compare.Comparison) -> pd.DataFrame:
    """One row per customer, then a row "All customers": the total under each plan (money)
    and the difference of each other plan against the baseline (signed money)."""
    cur, base = comparison.currency, comparison.baseline
    diff_cols = [f"{code} vs {base}" for code in comparison.plans[1:]]
    rows = []
    for c in comparison.customers:
        row: dict[str, Any] = {"customer_id": c.customer_id}
        row.update({code: money(c.totals[code], cur) for code in comparison.plans})
        row.update({col: format_signed_money(c.differences[code], cur) for col, code in zip(diff_cols, comparison.plans[1:])})
        rows.append(row)
    total: dict[str, Any] = {"customer_id": "All customers"}
    total.update({code: money(comparison.totals[code], cur) for code in comparison.plans})
    total.update({col: format_signed_money(comparison.differences[code], cur) for col, code in zip(diff_cols, comparison.plans[1:])})
    rows.append(total)
    return pd.DataFrame(rows, columns=["customer_id", *comparison.plans, *diff_cols])


def comparison_long(comparison: compare.Comparison) -> pd.DataFrame:
    cur = comparison.currency
    rows = [
        {"customer_id": c.customer_id, "plan": code, "total": c.totals[code],
         "total_text": money(c.totals[code], cur), "difference_text": format_signed_money(c.differences[code], cur)}
        for c in comparison.customers for code in comparison.plans
    ]
    return pd.DataFrame(rows, columns=["customer_id", "plan", "total", "total_text", "difference_text"])


# --- the customer-facing invoice ------------------------------------------------------------

INVOICE_CSS = """
<style>
.wb-invoice { max-width: 820px; margin: 0.5rem auto; padding: 2.2rem 2.6rem; background: #fff; color: #1f2933;
  border: 1px solid #d9dee5; border-radius: 6px; font-family: "Source Sans Pro", "Helvetica Neue", Arial, sans-serif;
  box-shadow: 0 1px 6px rgba(16, 24, 40, .06); }
.wb-invoice .head { display: flex; justify-content: space-between; align-items: flex-start;
  border-bottom: 3px solid #1c83e1; padding-bottom: 1rem; margin-bottom: 1.4rem; }
.wb-invoice .seller { font-size: 1.45rem; font-weight: 700; letter-spacing: .01em; }
.wb-invoice .doc { text-align: right; }
.wb-invoice .doc .title { font-size: 1.6rem; font-weight: 300; letter-spacing: .25em; color: #1c83e1; }
.wb-invoice .meta { display: flex; gap: 3rem; margin-bottom: 1.6rem; font-size: .95rem; }
.wb-invoice .meta .label { color: #6b7785; font-size: .75rem; text-transform: uppercase; letter-spacing: .08em; }
.wb-invoice table { width: 100%; border-collapse: collapse; font-size: .95rem; }
.wb-invoice th { text-align: left; color: #6b7785; font-size: .75rem; text-transform: uppercase; letter-spacing: .08em;
  border-bottom: 1px solid #d9dee5; padding: .45rem .3rem; }
.wb-invoice td { padding: .55rem .3rem; border-bottom: 1px solid #eef1f4; vertical-align: top; }
.wb-invoice .num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.wb-invoice .sub { color: #6b7785; font-size: .8rem; }
.wb-invoice .totals { margin-left: auto; width: 46%; margin-top: 1rem; }
.wb-invoice .totals td { border: none; padding: .3rem .3rem; }
.wb-invoice .totals .due td { border-top: 2px solid #1f2933; font-weight: 700; font-size: 1.15rem; padding-top: .6rem; }
.wb-invoice .foot { margin-top: 2rem; color: #6b7785; font-size: .8rem; }
</style>
"""


def _is_money_unit(unit: str | None) -> bool:
    """A metric whose unit is a currency code measures money (a payment volume)."""
    return bool(unit) and unit.strip().upper() in currencies()


def invoice_quantity(line: InvoiceLine, plan: Plan | None, unit: str | None) -> str:
    """The Quantity column of a customer invoice: units with their unit name. A percentage
    charge's units are a money volume (`10,806.3 USD` beside `$313.38` read as an amount), so
    its quantity is the transactions it counted; the volume goes in the detail line."""
    charge = plan.charge_for(line.metric) if plan is not None and line.metric else None
    if line.kind == "usage" and charge is not None and charge.model == "percentage" and line.charge is not None:
        return plural(line.charge.event_count, "transaction")
    if line.kind == "usage" and _is_money_unit(unit):
        return fmt(line.units)
    return units_text(line, unit)


def usage_detail(line: InvoiceLine, plan: Plan | None, currency: str, unit: str | None) -> str:
    """A short, customer-facing note on a usage line: its price (tier prices included), then
    how the tiers applied to this period's units."""
    charge = plan.charge_for(line.metric) if plan is not None and line.metric else None
    if charge is None or line.charge is None:
        return ""
    if charge.model == "percentage":
        volume = format_money(line.units, unit.strip().upper(), exact=True) if _is_money_unit(unit) else \
            f"{fmt(line.units)} {unit or 'units'}"
        text = f"{fmt(charge.rate or 0)}% of {volume}"
        if charge.fixed_fee:
            text += f" + {format_money(charge.fixed_fee, currency, exact=True)} × {plural(line.charge.event_count, 'transaction')}"
        return text
    parts = [describe_price(charge, currency, unit or "units")]
    if charge.model in ("graduated", "volume"):
        parts += [text for text in line.charge.explain(currency) if text.startswith("tier ")]
    return " · ".join(parts)


def customer_invoice_html(inv: Invoice, ws: Workspace, *, seller: str) -> str:
    """A clean invoice a salesperson can show: letterhead, bill-to, lines, subtotal, credit, total."""
    e = html.escape
    plan = next((p for p in ws.plans if p.code == inv.plan), None)
    units = {m.code: m.unit for m in ws.metrics}
    cur = inv.currency
    period = period_label(inv.start, inv.end, ws.timezone)
    lo = local(inv.start, ws.timezone)
    hi = local(inv.end, ws.timezone) - timedelta(microseconds=1)
    span = f"{lo:%b} {lo.day}, {lo.year} – {hi:%b} {hi.day}, {hi.year}"
    body = []
    for line in inv.lines:
        detail = ""
        if line.kind == "fixed_charge" and line.unit_price is not None:
            detail = f"{fmt(line.units)} × {format_money(line.unit_price, cur, exact=True)}"
        elif line.kind == "usage" and line.charge is not None:
            detail = usage_detail(line, plan, cur, units.get(line.metric or ""))
        elif line.kind == "overage" and line.unit_price is not None:
            detail = f"{format_money(line.unit_price, cur, exact=True)} each beyond the included credits"
        quantity = "" if line.kind == "base_fee" else invoice_quantity(line, plan, units.get(line.metric or ""))
        body.append(
            f"<tr><td>{e(line.description)}" + (f"<div class='sub'>{e(detail)}</div>" if detail else "")
            + f"</td><td class='num'>{e(quantity)}</td><td class='num'>{e(money(line.amount, cur))}</td></tr>"
        )
    totals = [f"<tr><td>Subtotal</td><td class='num'>{e(money(inv.subtotal, cur))}</td></tr>"]
    if inv.credit:
        totals.append(f"<tr><td>Included credit</td><td class='num'>−{e(money(inv.credit, cur))}</td></tr>")
    totals.append(f"<tr class='due'><td>Total due</td><td class='num'>{e(money(inv.total, cur))}</td></tr>")
    return (
        INVOICE_CSS
        + "<div class='wb-invoice'>"
        + f"<div class='head'><div class='seller'>{e(seller or DEFAULT_SELLER)}</div>"
        + f"<div class='doc'><div class='title'>INVOICE</div><div class='sub'>Billing period {e(period)}</div></div></div>"
        + "<div class='meta'>"
        + f"<div><div class='label'>Bill to</div><div>{e(inv.customer_id)}</div></div>"
        + f"<div><div class='label'>Plan</div><div>{e(plan.name if plan else inv.plan)}</div></div>"
        + f"<div><div class='label'>Service period</div><div>{e(span)}</div></div>"
        + f"<div><div class='label'>Currency</div><div>{e(cur)}</div></div>"
        + "</div>"
        + "<table><thead><tr><th>Description</th><th class='num'>Quantity</th><th class='num'>Amount</th></tr></thead>"
        + "<tbody>" + "".join(body) + "</tbody></table>"
        + "<table class='totals'>" + "".join(totals) + "</table>"
        + f"<div class='foot'>Amounts in {e(cur)}. Usage is metered from the events recorded in the service period.</div>"
        + "</div>"
    )


# =========================================================================== the page


def _choose(frame: Events, ws: Workspace) -> Selection | None:
    names = {p.code: p.name for p in ordered_plans(ws.plans)}
    options = [SUBSCRIPTIONS, *names]
    cols = st.columns([2.2, 1.3, 2.4])
    plan = cols[0].selectbox(
        "Price under", options, key=KEY + "plan",
        format_func=lambda c: "Each customer's subscription" if c == SUBSCRIPTIONS else f"{names[c]} ({c}) — what-if, every customer",
        help="A plan prices every customer found in the events under it (a what-if); "
             "subscriptions price each subscribed customer under its own plan.",
    )
    mode = cols[1].radio("Period", [MONTH, CUSTOM], key=KEY + "mode", horizontal=True)
    month = window = None
    months = month_options(frame, ws)
    if mode == MONTH:
        chosen = cols[2].selectbox(
            "Month", months, key=KEY + "month", index=months.index(default_month(months)),
            help="Each customer's first billing period that starts in this month (workspace timezone "
                 f"{ws.timezone}). Starts at the last complete month.",
        )
        month = invoices.parse_month(chosen)
        label = chosen
    else:
        latest = invoices.parse_month(default_month(months))
        first_default = date(*latest, 1)
        nxt = date(latest[0] + latest[1] // 12, latest[1] % 12 + 1, 1)
        left, right = cols[2].columns(2)
        first = left.date_input("From (UTC)", value=first_default, key=KEY + "from")
        last = right.date_input("To (UTC)", value=nxt - timedelta(days=1), key=KEY + "to",
                                help="Inclusive: the window ends at the end of this day (UTC).")
        if first is None or last is None:
            st.warning("Pick both dates.")
            return None
        if last < first:
            st.warning("The To date is before the From date.")
            return None
        window = utc_window(first, last)
        label = f"{first:%Y-%m-%d} – {last:%Y-%m-%d}"
    everyone = sorted(set(frame.customer_ids()) | {s.customer_id for s in ws.subscriptions})
    customers = st.multiselect("Customers", everyone, default=[], key=KEY + "customers", placeholder="All customers")
    return Selection(None if plan == SUBSCRIPTIONS else plan, month, window, tuple(customers) or None, label)


def _empty_reason(ws: Workspace, sel: Selection) -> str:
    if sel.plan_code is None and not ws.subscriptions:
        return ("No subscriptions yet. Subscribe customers to plans on the Plans page, or pick a plan under "
                "**Price under** to price every customer as a what-if.")
    if sel.month is not None:
        return (f"No customer has a billing period starting in {sel.label} (periods follow each subscription's "
                "start; a period before the start is never billed).")
    return "No customer to bill in this window."


def _overview(invs: list[Invoice], ws: Workspace, sel: Selection) -> None:
    totals = totals_by_currency(invs)
    cols = st.columns(2 + len(totals))
    cols[0].metric("Invoices", f"{len(invs):,}")
    for i, (cur, (total, _credit)) in enumerate(totals.items()):
        cols[1 + i].metric(f"Total ({cur})", money(total, cur))
    cur0, (_t, credit0) = next(iter(totals.items()))
    cols[-1].metric(f"Included credit used ({cur0})", money(credit0, cur0))

    row = st.container(horizontal=True)
    for label, data, name, mime in downloads(invs, sel):
        row.download_button(label, data=data, file_name=name, mime=mime, key=KEY + "dl:" + label,
                            icon=":material/download:", on_click="ignore")

    left, right = st.columns([1.25, 1])
    with left:
        st.markdown("**Invoices**")
        st.dataframe(
            summary_table(invs, ws), hide_index=True, key=KEY + "summary", width="stretch",
            height=min(35 * (len(invs) + 1) + 3, 600),
            column_config={c: st.column_config.TextColumn(c, alignment="right") for c in ("subtotal", "credit", "total")},
        )
    with right:
        revenue, currency = revenue_by_line(invs)
        st.markdown(f"**Revenue by metric** ({currency}, before credit)")
        st.altair_chart(charts.revenue_chart(revenue, currency=currency or ""), key=KEY + "revenue", width="stretch")

    st.markdown("**Each invoice, line by line**")
    units = {m.code: m.unit for m in ws.metrics}
    names = {p.code: p.name for p in ws.plans}
    for inv in invs[:MAX_EXPANDERS]:
        title = (f"{inv.customer_id} · {names.get(inv.plan, inv.plan)} · {period_label(inv.start, inv.end, ws.timezone)}"
                 f" · total {money(inv.total, inv.currency)}")
        with st.expander(md(title)):
            st.dataframe(lines_table(inv, units), hide_index=True, width="stretch",
                         column_config={c: st.column_config.TextColumn(c, alignment="right") for c in ("units", "amount")})
            for line in inv.lines:
                st.markdown(f"**{md(line.description)}** — {md(money(line.amount, inv.currency))}")
                explained = [md(x) for x in line.explain(inv.currency)]
                if line.groups:
                    explained.append(f"by {md(', '.join(line.groups[0][0]))}: {md(groups_text(line))}")
                st.caption("  \n".join(explained))
            st.markdown("**Totals**  \n" + "  \n".join(md(x) for x in inv.explain()))
    if len(invs) > MAX_EXPANDERS:
        st.caption(f"The first {MAX_EXPANDERS} of {len(invs):,} invoices are listed; every one is in the downloads.")


def _comparison(frame: Events, ws: Workspace, sel: Selection) -> None:
    st.caption("The same usage, the same period, priced under each plan: per customer and in total. "
               "The first plan is the baseline; a positive difference means the plan costs the customer more.")
    if len(ws.plans) < 2:
        st.info("Create at least two plans on the Plans page to compare them.")
        return
    group = choose_group(ordered_plans(ws.plans), ws.subscriptions, KEY + "compare", KEY + "compare_group")
    names = {p.code: p.name for p in group.plans}
    if len(names) < 2:
        st.info(f"Only one plan bills in {group.currency} every {group.interval}: plans can be compared only "
                "with plans of the same currency and interval. Pick other plans above, or create one.")
        return
    chosen = st.multiselect(
        "Plans to compare (baseline first)", list(names), key=KEY + "compare", format_func=lambda c: f"{names[c]} ({c})",
    )
    if len(chosen) < 2:
        st.info("Pick at least two plans.")
        return
    plans = [ws.plan(code) for code in chosen]
    try:
        comparison = compare.compare_plans(
            frame, ws.metrics, plans, subscriptions=ws.subscriptions, tz=ws.timezone,
            month=sel.month, window=sel.window, customer_ids=list(sel.customers) if sel.customers else None,
        )
    except (compare.ComparisonError, invoices.InvoiceError) as exc:
        st.error(md(exc), icon=":material/block:")
        return
    if not comparison.customers:
        st.info(f"No customer has a billing period in {sel.label} under every chosen plan.")
        return
    cur, base = comparison.currency, comparison.baseline
    cols = st.columns(len(comparison.plans))
    for col, code in zip(cols, comparison.plans):
        diff = comparison.differences[code]
        delta = f"{'-' if diff < 0 else '+'}{money(abs(diff), cur)} vs {md(names[base])}"
        col.metric(f"{md(names[code])} — total ({cur})", money(comparison.totals[code], cur),
                   delta=None if code == base else delta, delta_color="off")
    table = comparison_table(comparison)
    csv_button("Comparison (CSV)", table, file_name=f"compare-{'-'.join(comparison.plans)}.csv",
                         key=KEY + "csv:compare")
    st.dataframe(
        table, hide_index=True, key=KEY + "compare_table", width="stretch", height=min(35 * (len(table) + 1) + 3, 600),
        column_config={c: st.column_config.TextColumn(c, alignment="right") for c in table.columns if c != "customer_id"},
    )
    st.altair_chart(charts.plan_comparison_chart(comparison_long(comparison), currency=cur, plans=comparison.plans),
                    key=KEY + "compare_chart", width="stretch")
    st.caption(f"{len(comparison.customers):,} customer(s) priced under {len(plans)} plans for {sel.label}.")


def group_key(group: compare.PlanGroup) -> str:
    return f"{group.currency} {group.interval}"


def choose_group(
    plans: Sequence[Plan], subscriptions: Sequence[Any], plans_key: str, group_widget: str, *, count: int = 4,
    label: str = "Compare plans in",
) -> compare.PlanGroup:
    """The plans that can be compared (one currency and interval; the group with the most
    subscribers by default), with a choice of group when the plans differ. The multiselect at
    ``plans_key`` starts (and restarts, when the group changes) with the group's first
    ``count`` plans; codes no longer in the group are dropped from it."""
    groups = compare.compatible_groups(plans, subscriptions)
    by_key = {group_key(g): g for g in groups}

    def reset() -> None:
        picked = by_key.get(st.session_state.get(group_widget), groups[0])
        st.session_state[plans_key] = [p.code for p in picked.plans[:count]]

    if len(groups) > 1:
        if st.session_state.get(group_widget) not in by_key:
            st.session_state.pop(group_widget, None)
            st.session_state.pop(plans_key, None)
        st.selectbox(label, list(by_key), key=group_widget, on_change=reset, format_func=lambda k: by_key[k].label,
                     help="Plans bill in different currencies or intervals: totals can only be compared "
                          "within one currency and one interval.")
    group = by_key.get(st.session_state.get(group_widget), groups[0])
    codes = [p.code for p in group.plans]
    current = st.session_state.get(plans_key)
    if current is None:
        st.session_state[plans_key] = codes[:count]
    elif any(c not in codes for c in current):
        st.session_state[plans_key] = [c for c in current if c in codes]
    return group


def _customer_view(invs: list[Invoice], ws: Workspace) -> None:
    by_customer = {inv.customer_id: inv for inv in invs}
    cols = st.columns([1.4, 1.4, 2])
    cid = cols[0].selectbox("Customer", list(by_customer), key=KEY + "view_customer")
    seller = cols[1].text_input("Your company (letterhead)", value=DEFAULT_SELLER, key=KEY + "seller")
    if cid is None:
        return
    st.html(customer_invoice_html(by_customer[cid], ws, seller=seller))


def render(engine: Engine) -> None:
    ws = load_workspace(engine)
    if ws is None:
        return
    if not ws.plans:
        st.info("No plans yet: create one on the Plans page, or load the demo on the Workspace page.",
                icon=":material/sell:")
        return
    frame = state.frame()
    sel = _choose(frame, ws)
    if sel is None:
        return
    try:
        invs = compute(frame, ws, sel)
    except invoices.InvoiceError as exc:
        st.error(md(exc), icon=":material/block:")
        return
    tabs = st.tabs(["Invoices", "Compare plans", "Customer view"])
    with tabs[0]:
        if invs:
            _overview(invs, ws, sel)
        else:
            st.info(_empty_reason(ws, sel), icon=":material/receipt_long:")
    with tabs[1]:
        _comparison(frame, ws, sel)
    with tabs[2]:
        if invs:
            _customer_view(invs, ws)
        else:
            st.info(_empty_reason(ws, sel), icon=":material/receipt_long:")
