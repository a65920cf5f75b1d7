"""The Timeline page: one metric under one plan for one customer, period by period.

Every figure comes from `metering.billing.timeline` (usage by metric type, available quota,
carryover, rejected events, overage and the amount billed): this module picks the inputs and
lays the periods out as a chart and a table.

Rules decided here:

- Metrics listed are those some plan charges or limits; the first shown is the first
  limit_recurring one (carryover is what a timeline explains best), else the first by name.
- Plans listed are those with a charge or a quota on the metric; the default is the one with
  the most subscribers (ties: the cheaper base fee, then the name).
- Customers are every customer with events, priced under the chosen plan (a what-if for those
  subscribed elsewhere), each anchored at its subscription start or, without one, at the
  workspace's default anchor. The default customer is the first subscriber of the plan (by
  customer id) with usage in the periods shown, else the first customer with usage.
- The default number of periods runs from the anchor to the current period (the one holding
  now), never to a later event's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from metering import billing, invoices, periods
from metering.billing import TimelinePeriod
from metering.engine.interface import Events
from metering.models import MetricBase, MetricType
from metering.money import format_money
from metering.plans import Plan
from metering.preview import fmt
from metering.workspace import Workspace
from workbench import charts, downloads, state, timeline_live
from workbench.text import md, md_code
from workbench.invoices import load_workspace, local, ordered_plans, period_label

KEY = "timeline:"
MAX_PERIODS = 120
DEFAULT_MAX_PERIODS = 24
COLUMNS = ["period", "start", "end", "usage", "available", "carryover", "rejected", "overage", "amount"]

TYPE_RULES = {
    "limit_recurring": (
        "**Limit recurring** (soft quota with carryover): available = limit + the previous period's carryover; "
        "carryover = max(available − used, 0){cap}; usage past the available quota is accepted and reported as "
        "overage{price}."
    ),
    "limit_metered": (
        "**Limit metered** (hard quota): usage resets every period; events are taken in time order and one that "
        "would take usage past the limit is rejected and not counted. Unused quota is lost."
    ),
    "charge_metered": "**Charge metered**: usage resets every period and is priced by the plan's charge.",
    "charge_recurring": (
        "**Charge recurring**: usage never resets — each period prices the running total of every event before "
        "the period's end."
    ),
}


def plans_of(ws: Workspace, code: str) -> list[Plan]:
    return [p for p in ws.plans if p.charge_for(code) is not None or p.quota_for(code) is not None]


def metric_options(ws: Workspace) -> list[MetricBase]:
    """Metrics some plan prices or limits; the first limit_recurring first, then by name."""
    used = [m for m in sorted(ws.metrics, key=lambda m: (m.name.lower(), m.code)) if plans_of(ws, m.code)]
    recurring = [m for m in used if m.metric_type == MetricType.limit_recurring]
    if recurring:
        used.remove(recurring[0])
        used.insert(0, recurring[0])
    return used


def default_plan(ws: Workspace, plans: list[Plan]) -> Plan:
    counts = {p.code: 0 for p in plans}
    for sub in ws.subscriptions:
        if sub.plan in counts:
            counts[sub.plan] += 1
    return sorted(plans, key=lambda p: (-counts[p.code], p.base_fee, p.name.lower(), p.code))[0]


def default_periods(frame: Events, schedule: billing.Schedule | None, *, now: datetime | None = None) -> int:
    """Periods from the anchor up to the current one (the one holding now), at least 1 and at
    most DEFAULT_MAX_PERIODS: events dated later (a 2099 typo, planned usage) do not stretch it."""
    if schedule is None or frame.time_bounds() is None:
        return 3
    now = now or datetime.now(timezone.utc)
    if now < schedule.anchor:
        return 1
    k = periods.period_index(schedule.anchor, schedule.interval, now, tz=schedule.tz)
    return max(1, min(k + 1, DEFAULT_MAX_PERIODS))


@dataclass
class Result:
    schedules: dict[str, billing.Schedule]
    rows: dict[str, list[TimelinePeriod]]


def compute(frame: Events, ws: Workspace, metric: MetricBase, plan: Plan, count: int) -> Result:
    """billing.timeline for every customer with events, under ``plan``."""
    billed = invoices.assignments(frame, plans=ws.plans, subscriptions=ws.subscriptions, tz=ws.timezone,
                                  plan_code=plan.code)
    schedules = {a.customer_id: s for a in billed if (s := a.schedule(ws.timezone)) is not None}
    if not schedules:
        return Result({}, {})
    return Result(schedules, billing.timeline(frame, metric, plan, schedules, periods_count=count))


def total_usage(rows: list[TimelinePeriod]) -> Decimal:
    return sum((r.usage for r in rows), Decimal(0))


def default_customer(ws: Workspace, plan: Plan, rows: dict[str, list[TimelinePeriod]]) -> str | None:
    """The first subscriber of the plan (by customer id) with usage in the periods; else the
    first customer with usage; else the first customer."""
    if not rows:
        return None
    subscribed = {s.customer_id for s in ws.subscriptions if s.plan == plan.code}
    ranked = sorted(rows, key=lambda c: (c not in subscribed, not any(r.usage for r in rows[c]), c))
    return ranked[0]


def _value(v: Decimal | None) -> str:
    return "—" if v is None else fmt(v)


def timeline_table(rows: list[TimelinePeriod], currency: str, tz: str) -> pd.DataFrame:
    """One row per period with exact figures as text; columns that do not apply to the metric
    type (every value null) are left out."""
    records = []
    for r in rows:
        records.append({
            "period": period_label(r.start, r.end, tz),
            "start": f"{local(r.start, tz):%Y-%m-%d %H:%M}",
            "end": f"{local(r.end, tz):%Y-%m-%d %H:%M}",
            "usage": _value(r.usage),
            "available": _value(r.available),
            "carryover": _value(r.carryover),
            "rejected": "—" if r.rejected is None else f"{r.rejected:,}",
            "overage": _value(r.overage),
            "amount": "—" if r.amount is None else format_money(r.amount, currency),
        })
    df = pd.DataFrame(records, columns=COLUMNS)
    keep = ["period", "start", "end", "usage"]
    for col, attr in (("available", "available"), ("carryover", "carryover"), ("rejected", "rejected"),
                      ("overage", "overage"), ("amount", "amount")):
        if any(getattr(r, attr) is not None for r in rows):
            keep.append(col)
    return df[keep]


def chart_frame(rows: list[TimelinePeriod], currency: str, tz: str) -> pd.DataFrame:
    return pd.DataFrame({
        "period": [period_label(r.start, r.end, tz) for r in rows],
        "usage": [r.usage for r in rows],
        "usage_text": [fmt(r.usage) for r in rows],
        "available": [r.available for r in rows],
        "available_text": [_value(r.available) for r in rows],
        "amount_text": ["—" if r.amount is None else format_money(r.amount, currency) for r in rows],
    })


def customers_table(ws: Workspace, plan: Plan, rows: dict[str, list[TimelinePeriod]]) -> pd.DataFrame:
    """Every customer under the plan over the periods shown: usage, overage, rejected, amount."""
    subs = {s.customer_id: s.plan for s in ws.subscriptions}
    records = []
    for cid in sorted(rows, key=lambda c: (-total_usage(rows[c]), c)):
        periods_ = rows[cid]
        amounts = [p.amount for p in periods_ if p.amount is not None]
        overages = [p.overage for p in periods_ if p.overage is not None]
        rejected = [p.rejected for p in periods_ if p.rejected is not None]
        records.append({
            "customer_id": cid,
            "subscribed to": subs.get(cid, "—"),
            "usage (sum of periods)": fmt(total_usage(periods_)),
            "overage": fmt(sum(overages, Decimal(0))) if overages else "—",
            "rejected": f"{sum(rejected):,}" if rejected else "—",
            "amount": format_money(sum(amounts, Decimal(0)), plan.currency) if amounts else "—",
        })
    return pd.DataFrame(records)


def _file_safe(text: str) -> str:
    """A customer id as part of a file name: letters, digits, - and _ only."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in text)[:60] or "customer"


def _rule(metric: MetricBase, plan: Plan) -> str:
    kind = metric.metric_type.value
    text = TYPE_RULES[kind]
    if kind == MetricType.limit_recurring.value:
        quota = plan.quota_for(metric.code)
        cap = "" if quota is None or quota.max_carryover is None else f", capped at {fmt(quota.max_carryover)}"
        price = ("" if quota is None or quota.overage_unit_price is None
                 else f", billed at {format_money(quota.overage_unit_price, plan.currency, exact=True)} each")
        text = text.format(cap=cap, price=price)
    return text


def _terms(metric: MetricBase, plan: Plan) -> None:
    quota, charge = plan.quota_for(metric.code), plan.charge_for(metric.code)
    cols = st.columns(4)
    if quota is not None:
        cols[0].metric(f"Limit ({md(metric.unit)})", fmt(quota.limit))
        if metric.metric_type == MetricType.limit_recurring:
            cols[1].metric("Max carryover", "no cap" if quota.max_carryover is None else fmt(quota.max_carryover))
            cols[2].metric("Overage price", "not billed" if quota.overage_unit_price is None
                           else format_money(quota.overage_unit_price, plan.currency, exact=True))
    elif charge is not None:
        cols[0].metric("Charge model", charge.model)
        cols[1].metric(f"Free units ({md(metric.unit)})", fmt(charge.free_units))


def render(engine: Engine) -> None:
    ws = load_workspace(engine)
    if ws is None:
        return
    options = metric_options(ws)
    if not options:
        st.info("No plan charges or limits a metric yet: create a plan on the Plans page, or load the demo on "
                "the Workspace page.", icon=":material/timeline:")
        return
    frame = state.frame()
    by_code = {m.code: m for m in options}
    top = st.columns([2, 2, 1])
    code = top[0].selectbox("Metric", list(by_code), key=KEY + "metric",
                            format_func=lambda c: f"{by_code[c].name} ({c}) · {by_code[c].metric_type.value}")
    metric = by_code[code]
    plans = ordered_plans(plans_of(ws, code))
    plan_by = {p.code: p for p in plans}
    first = default_plan(ws, plans)
    plan_code = top[1].selectbox("Plan", list(plan_by), index=list(plan_by).index(first.code),
                                 key=f"{KEY}plan:{code}", format_func=lambda c: f"{plan_by[c].name} ({c})")
    plan = plan_by[plan_code]
    billed = invoices.assignments(frame, plans=ws.plans, subscriptions=ws.subscriptions, tz=ws.timezone,
                                  plan_code=plan.code)
    anchor_schedule = next((s for a in billed if (s := a.schedule(ws.timezone)) is not None), None)
    count = int(top[2].number_input("Periods", min_value=1, max_value=MAX_PERIODS,
                                    value=default_periods(frame, anchor_schedule), step=1, key=KEY + "periods"))
    if not billed:
        st.info("No events yet: import some on the Events page (for instance `sample_events/sms_credits.csv`), "
                "or load the demo on the Workspace page.", icon=":material/upload_file:")
        return
    try:
        result = compute(frame, ws, metric, plan, count)
    except ValueError as exc:
        st.error(md(exc), icon=":material/block:")
        return
    customers = sorted(result.rows)
    default = default_customer(ws, plan, result.rows)
    cid = st.selectbox("Customer", customers, index=customers.index(default) if default in customers else 0,
                       key=f"{KEY}customer:{code}:{plan.code}")
    rows = result.rows[cid]
    sub = ws.subscription(cid)
    schedule = result.schedules[cid]
    anchor = f"{local(schedule.anchor, ws.timezone):%Y-%m-%d %H:%M} ({ws.timezone})"
    if sub is None:
        where = f"{md(cid)} has no subscription: periods start at the workspace's default anchor, {anchor}."
    elif sub.plan != plan.code:
        where = (f"{md(cid)} is subscribed to {md_code(sub.plan)}: this is a what-if under {md_code(plan.code)}, "
                 f"periods anchored at its subscription start, {anchor}.")
    else:
        where = f"{md(cid)} is subscribed to this plan; periods are anchored at its subscription start, {anchor}."
    st.caption(f"{_rule(metric, plan)}  \n{where}")
    _terms(metric, plan)

    st.altair_chart(charts.timeline_chart(chart_frame(rows, plan.currency, ws.timezone), unit=metric.unit),
                    key=KEY + "chart", width="stretch")
    table = timeline_table(rows, plan.currency, ws.timezone)
    st.dataframe(
        table, hide_index=True, key=KEY + "table", width="stretch",
        column_config={c: st.column_config.TextColumn(c, alignment="right")
                       for c in table.columns if c not in ("period", "start", "end")},
    )
    st.caption(f"Usage in {md(metric.unit)}; start and end in {ws.timezone}, end exclusive. "
               + ("Usage is the running total since the first event. " if metric.metric_type == MetricType.charge_recurring else "")
               + ("Amount: overage × the overage price. " if metric.metric_type == MetricType.limit_recurring else ""))
    downloads.csv_button("Periods (CSV)", table, file_name=f"timeline-{metric.code}-{plan.code}-{_file_safe(cid)}.csv",
                         key=KEY + "csv:periods")
    timeline_live.render(engine, ws, metric, cid, rows, plan.code)  # the live quota next to the simulation
    with st.expander(f"All {len(result.rows):,} customers under {md(plan.name)}, over these {count} period(s)"):
        everyone = customers_table(ws, plan, result.rows)
        downloads.csv_button("Customers (CSV)", everyone, file_name=f"timeline-{metric.code}-{plan.code}-customers.csv",
                             key=KEY + "csv:customers")
        st.dataframe(everyone, hide_index=True, width="stretch", key=KEY + "customers")
