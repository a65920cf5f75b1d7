"""The Backtest page: 2–6 plans priced over months of real usage for a cohort, what it does to
revenue and to each customer, and drafts whose every edit moves the figures at once.

Every figure comes from `metering.backtest` (invoices built as `metering invoice` builds them,
sums, changes, distribution, movers, guardrail, line-by-line reasons, the contract's JSON and
the CSV). This module lays them out; money is shown with `format_money`.

Rules decided here:

- Plans: only plans that can be compared are offered (one currency and interval; by default
  the group with the most subscribers, with a choice of group when plans differ); the first
  three of the group, cheapest base fee first, are picked at first; the first plan picked is
  the baseline. Drafts join their source's group.
- Months: from the month of the earliest event to the month of the latest (subscription
  starts included), in the workspace timezone; by default the last 12 of them that have begun
  (a month after today is never a default).
- Cohort: every customer in the events, the subscribers of a plan, or chosen customers.
- Guardrail: "no customer pays more than +X %" (default 20 %), checked for every plan but the
  baseline.
- The backtest's usage and each plan's invoices are kept for the session (a
  `BacktestCache`), so a draft's edit re-prices that draft alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from metering import backtest
from metering.backtest import analysis, reasons
from metering.backtest.engine import MAX_PLANS
from metering.backtest.months import label, parse
from metering.engine import Events
from metering.money import format_money, format_signed_money
from metering.plans import Plan
from metering.preview import fmt, plural
from metering.workspace import Workspace
from workbench import backtest_charts as charts
from workbench import backtest_drafts as drafts_ui
from workbench import state
from workbench.backtest_letter import PRINT_CSS, letter_html
from workbench.editor import md
from workbench.invoices import choose_group, load_workspace, month_options, ordered_plans

K = "backtest:"
PLANS = K + "plans"
CACHE = K + "cache"
ALL, SUBSCRIBERS, CHOSEN = "All customers in the events", "Subscribers of a plan", "Chosen customers"
DEFAULT_GUARDRAIL = 20
DEFAULT_MONTHS = 12
MOVERS = 10
# A fixed snippet of ours (no user input): the app's own print dialog, from a button in an iframe.
PRINT_BUTTON = (
    "<button onclick='window.parent.print()' style='font-family:sans-serif;font-size:15px;padding:.45rem .9rem;"
    "border:1px solid #c7ccd4;border-radius:.5rem;background:#fff;cursor:pointer'>Print / save as PDF</button>"
)
TABS = ["Revenue", "Customers", "Customer detail", "Customer letter", "Export"]


# =========================================================================== tables (pure)


def money(amount: Decimal, currency: str) -> str:
    return format_money(amount, currency)


def percent_text(value: Decimal | None) -> str:
    if value is None:
        return "—"
    if value < 0:
        return f"−{-value} %"
    return f"{'+' if value > 0 else ''}{value} %"


def default_months(options: Sequence[str], today: tuple[int, int]) -> tuple[str, str]:
    """(from, to) among ``options`` (ascending): the latest month that has begun, and up to
    11 months before it."""
    begun = [m for m in options if parse(m) <= today] or list(options[:1])
    last = begun[-1]
    at = list(options).index(last)
    return options[max(0, at - DEFAULT_MONTHS + 1)], last


def months_table(bt: backtest.Backtest, names: Mapping[str, str]) -> pd.DataFrame:
    """Month by month: each plan's revenue and each other plan's change; then the total."""
    cur, base = bt.currency, bt.baseline
    cols = ["Month", *[names.get(c, c) for c in bt.codes], *[f"{names.get(c, c)} vs {names.get(base, base)}" for c in bt.candidates]]
    rows = []
    for i, month in enumerate(bt.month_labels):
        row = [month, *[money(bt.month_totals[c][i], cur) for c in bt.codes]]
        row += [format_signed_money(bt.month_totals[c][i] - bt.month_totals[base][i], cur) for c in bt.candidates]
        rows.append(row)
    rows.append(["Total", *[money(bt.totals[c], cur) for c in bt.codes],
                 *[format_signed_money(bt.change(c), cur) for c in bt.candidates]])
    return pd.DataFrame(rows, columns=cols)


def months_frame(bt: backtest.Backtest) -> pd.DataFrame:
    rows = [{"month": m, "plan": c, "total": bt.month_totals[c][i], "total_text": money(bt.month_totals[c][i], bt.currency)}
            for c in bt.codes for i, m in enumerate(bt.month_labels)]
    return pd.DataFrame(rows, columns=["month", "plan", "total", "total_text"])


def lines_frame(bt: backtest.Backtest, lines: Sequence[analysis.RevenueLine]) -> pd.DataFrame:
    rows = [{"line": r.line, "kind": analysis.KIND_LABELS[r.kind], "plan": r.plan, "amount": r.amount,
             "amount_text": money(r.amount, bt.currency)} for r in lines]
    return pd.DataFrame(rows, columns=["line", "kind", "plan", "amount", "amount_text"])


def lines_table(bt: backtest.Backtest, lines: Sequence[analysis.RevenueLine], names: Mapping[str, str]) -> pd.DataFrame:
    """One row per line (metric, base fee, fixed charge, overage, credit) and type, a column per
    plan with its revenue over the months ("—" where the plan has no such line)."""
    keys: dict[tuple[str, str], dict[str, Decimal]] = {}
    for r in lines:
        keys.setdefault((r.line, r.kind), {})[r.plan] = r.amount
    ordered = sorted(keys.items(), key=lambda kv: (list(analysis.KIND_LABELS).index(kv[0][1]),))
    cols = ["Line", "Type", *[names.get(c, c) for c in bt.codes]]
    rows = [[line, analysis.KIND_LABELS[kind], *[money(v[c], bt.currency) if c in v else "—" for c in bt.codes]]
            for (line, kind), v in ordered]
    rows.append(["Total", "", *[money(bt.totals[c], bt.currency) for c in bt.codes]])
    return pd.DataFrame(rows, columns=cols)


def customers_table(bt: backtest.Backtest, names: Mapping[str, str]) -> pd.DataFrame:
    """Every customer: its total under each plan, each other plan's change and % change."""
    cur = bt.currency
    cols = ["Customer", *[names.get(c, c) for c in bt.codes]]
    for c in bt.candidates:
        cols += [f"{names.get(c, c)} change", f"{names.get(c, c)} %"]
    rows = []
    for cid in bt.customers:
        row = [cid, *[money(bt.customer_totals[c][cid], cur) for c in bt.codes]]
        for c in bt.candidates:
            change, pct = bt.customer_changes[c][cid]
            row += [format_signed_money(change, cur), percent_text(pct)]
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def movers_table(movers: Sequence[analysis.Mover], currency: str) -> pd.DataFrame:
    rows = [[m.customer_id, money(m.baseline, currency), money(m.total, currency), format_signed_money(m.change, currency),
             percent_text(m.change_percent)] for m in movers]
    return pd.DataFrame(rows, columns=["Customer", "Baseline", "Plan", "Change", "Change %"])


def diff_table(diffs: Sequence[reasons.LineDiff], currency: str) -> pd.DataFrame:
    """The two invoices line by line: amounts, difference and why."""
    amount = lambda v: "—" if v is None else money(v, currency)  # noqa: E731
    rows = [[d.description, analysis.KIND_LABELS[d.kind], amount(d.baseline), amount(d.candidate),
             format_signed_money(d.difference, currency) if d.changed else "same", "; ".join(r.text for r in d.reasons)]
            for d in diffs]
    return pd.DataFrame(rows, columns=["Line", "Type", "Baseline", "Plan", "Difference", "Why"])


def customer_months_table(bt: backtest.Backtest, customer: str, names: Mapping[str, str]) -> pd.DataFrame:
    cur = bt.currency
    rows = []
    for i, month in enumerate(bt.month_labels):
        sums = bt.priced[bt.baseline].months[customer][i]
        if not sums.periods:
            continue
        rows.append([month, *[money(bt.customer_month_totals[c][customer][i], cur) for c in bt.codes]])
    rows.append(["Total", *[money(bt.customer_totals[c][customer], cur) for c in bt.codes]])
    return pd.DataFrame(rows, columns=["Month", *[names.get(c, c) for c in bt.codes]])


def contract_json(bt: backtest.Backtest) -> str:
    return json.dumps(bt.to_json(), indent=2, ensure_ascii=False) + "\n"


# =========================================================================== controls


def _now_month(tz: str) -> tuple[int, int]:
    now = datetime.now(UTC).astimezone(ZoneInfo(tz))
    return now.year, now.month


def _plan_label(plan: Plan, drafts: Mapping[str, Any]) -> str:
    return f"{plan.name} · draft {plan.code}" if plan.code in drafts else f"{plan.name} ({plan.code})"


def _right(df: pd.DataFrame, skip: int = 1) -> dict[str, Any]:
    return {c: st.column_config.TextColumn(c, alignment="right") for c in list(df.columns)[skip:]}


def _table(df: pd.DataFrame, key: str, *, skip: int = 1, height: int | None = None, **kw: Any) -> None:
    st.dataframe(df, hide_index=True, key=key, width="stretch", column_config=_right(df, skip),
                 height=height or min(35 * (len(df) + 1) + 3, 460), **kw)


def _cohort(frame: Events, ws: Workspace) -> list[str] | None | bool:
    """The chosen customers (None: everyone in the events; False: nothing chosen yet)."""
    kind = st.radio("Cohort", [ALL, SUBSCRIBERS, CHOSEN], key=K + "cohort", horizontal=True)
    if kind == SUBSCRIBERS:
        subscribed = sorted({s.plan for s in ws.subscriptions})
        if not subscribed:
            st.info("No subscriptions yet: subscribe customers on the Plans page.")
            return False
        names = {p.code: p.name for p in ws.plans}
        plan = st.selectbox("Subscribers of", subscribed, key=K + "cohort_plan",
                              format_func=lambda code: f"{names.get(code, code)} ({code})")
        return sorted(s.customer_id for s in ws.subscriptions if s.plan == plan)
    if kind == CHOSEN:
        everyone = sorted(set(frame.customer_ids()) | {s.customer_id for s in ws.subscriptions})
        chosen = st.multiselect("Customers", everyone, key=K + "cohort_customers", placeholder="Pick customers")
        return sorted(chosen) if chosen else False
    st.caption("Every customer found in the events is priced under each plan (a what-if), anchored at its "
               "subscription start when it has one.")
    return None


# =========================================================================== results


def _headline(bt: backtest.Backtest, names: Mapping[str, str], rails: Mapping[str, analysis.Guardrail], elapsed: float) -> None:
    cur, base = bt.currency, bt.baseline
    with st.container(key="backtest-headline"):
        cols = st.columns(len(bt.codes))
        for col, code in zip(cols, bt.codes):
            if code == base:
                col.metric(f"{names[code]} · baseline", money(bt.totals[code], cur), delta="baseline", delta_color="off",
                           delta_arrow="off")
                continue
            change, pct = bt.change(code), bt.change_percent(code)
            arrow = "up" if change > 0 else "down" if change < 0 else "off"  # the text starts with "−", not "-"
            col.metric(names[code], money(bt.totals[code], cur), delta=f"{format_signed_money(change, cur)} ({percent_text(pct)})",
                       delta_color="off", delta_arrow=arrow)
        lines = []
        for code, rail in rails.items():
            threshold = f"+{fmt(rail.max_increase)} %"
            if rail.passed:
                lines.append(f"**{md(names[code])}** passes: no customer pays more than {threshold}.")
            else:
                lines.append(f"**{md(names[code])}** fails: {plural(rail.count, 'customer')} would pay more than "
                             f"{threshold}.")
        text = "Guardrail — " + "  \n".join(lines) if len(lines) == 1 else "Guardrail  \n" + "  \n".join(lines)
        if all(r.passed for r in rails.values()):
            st.success(text, icon=":material/verified:")
        else:
            st.error(text + "  \nThe Customers tab lists who and by how much.", icon=":material/gpp_maybe:")
        per_plan = bt.invoice_count() // len(bt.codes)
        st.caption(f"{plural(len(bt.customers), 'customer')} · {plural(len(bt.months), 'month')} "
                   f"({bt.month_labels[0]} to {bt.month_labels[-1]}) · {plural(per_plan, 'invoice')} per plan · "
                   f"computed in {max(elapsed * 1000, 1):,.0f} ms")


def _revenue(bt: backtest.Backtest, names: Mapping[str, str]) -> None:
    cur = bt.currency
    plans = [names[c] for c in bt.codes]
    frame = months_frame(bt)
    frame["plan"] = frame["plan"].map(names)
    st.markdown(f"**Revenue per month** ({cur})")
    st.altair_chart(charts.revenue_by_month_chart(frame, currency=cur, plans=plans), key=K + "chart_months", width="stretch")
    _table(months_table(bt, names), K + "months_table")
    lines = analysis.revenue_by_line(bt)
    st.markdown(f"**Revenue by metric and line type** ({cur}, over the months; the credit applied is negative)")
    lf = lines_frame(bt, lines)
    lf["plan"] = lf["plan"].map(names)
    st.altair_chart(charts.revenue_by_line_chart(lf, currency=cur, plans=plans), key=K + "chart_lines", width="stretch")
    _table(lines_table(bt, lines, names), K + "lines_table", skip=2)


def _customers(bt: backtest.Backtest, names: Mapping[str, str], rails: Mapping[str, analysis.Guardrail]) -> None:
    cur = bt.currency
    if len(bt.candidates) > 1:
        focus = st.segmented_control("Plan against the baseline", bt.candidates, key=K + "focus",
                                     format_func=lambda c: names[c], default=bt.candidates[0])
        focus = focus or bt.candidates[0]
    else:
        focus = bt.candidates[0]
    dist = analysis.distribution(bt, focus)
    rail = rails[focus]
    with st.container(key="backtest-distribution", horizontal=True):
        for title, value in (("Median change", percent_text(dist.median)), ("95th percentile", percent_text(dist.p95)),
                             ("Pay more", fmt(dist.up)), ("Pay less", fmt(dist.down)),
                             ("Unchanged", fmt(dist.unchanged)), (f"Past +{fmt(rail.max_increase)} %", fmt(rail.count))):
            st.metric(title, value, border=True, width="content")
    if dist.no_baseline:
        st.caption(f"{plural(len(dist.no_baseline), 'customer')} pay nothing under the baseline: no % change, left out "
                   "of the median, percentile and histogram (an increase from nothing is past every guardrail).")
    st.markdown(f"**Distribution of the change per customer** — {md(names[focus])} against {md(names[bt.baseline])}")
    bins = pd.DataFrame([{"lo": b.lo, "hi": b.hi, "count": b.count} for b in dist.bins], columns=["lo", "hi", "count"])
    if len(bins):
        st.altair_chart(charts.change_histogram_chart(bins, guardrail=float(rail.max_increase)), key=K + "chart_hist",
                        width="stretch")
    up, down = analysis.movers(bt, focus, MOVERS)
    st.markdown(f"**Pay most more** (top {MOVERS})")
    if up:
        _table(movers_table(up, cur), K + "movers_up")
    else:
        st.caption("No customer pays more.")
    st.markdown(f"**Pay most less** (top {MOVERS})")
    if down:
        _table(movers_table(down, cur), K + "movers_down")
    else:
        st.caption("No customer pays less.")
    if rail.flagged:
        with st.expander(f"{plural(rail.count, 'customer')} past the guardrail (+{fmt(rail.max_increase)} %)",
                         icon=":material/gpp_maybe:"):
            _table(movers_table(rail.flagged, cur), K + "flagged")
    st.markdown("**Every customer**")
    _table(customers_table(bt, names), K + "customers_table")


@st.fragment
def _detail(bt: backtest.Backtest, names: Mapping[str, str]) -> None:
    cur = bt.currency
    up, down = analysis.movers(bt, bt.candidates[0], 1)
    default = (up or down or [None])[0]
    customers = list(bt.customers)
    c = st.columns([1.6, 1, 1.4, 0.8])
    index = customers.index(default.customer_id) if default is not None else 0
    cid = c[0].selectbox("Customer", customers, index=index, key=K + "detail_customer")
    months = [i for i, _ in enumerate(bt.months) if bt.priced[bt.baseline].months[cid][i].periods]
    if not months:
        st.info("This customer has no billing period in these months.")
        return
    mi = c[1].selectbox("Month", months, index=len(months) - 1, key=K + "detail_month",
                        format_func=lambda i: bt.month_labels[i])
    code = c[2].selectbox("Plan against the baseline", bt.candidates, key=K + "detail_plan",
                          format_func=lambda x: names[x])
    cells = bt.invoices_of(bt.baseline, cid)[mi]
    period = 0
    if len(cells) > 1:
        period = c[3].selectbox("Period", list(range(len(cells))), key=K + "detail_period",
                                format_func=lambda j: f"{cells[j].start:%b %d}")
    st.markdown(f"**{md(cid)} month by month**")
    _table(customer_months_table(bt, cid, names), K + "detail_months")
    diffs = reasons.customer_diffs(bt, cid, code, mi, period)
    base_inv, cand_inv = cells[period], bt.invoices_of(code, cid)[mi][period]
    st.markdown(f"**Invoices side by side** — {md(bt.month_labels[mi])}: {md(names[bt.baseline])} "
                f"{money(base_inv.total, cur)} → {md(names[code])} {money(cand_inv.total, cur)} "
                f"({format_signed_money(cand_inv.total - base_inv.total, cur)})")
    df = diff_table(diffs, cur)
    st.dataframe(df, hide_index=True, key=K + "diff", width="stretch", height=min(35 * (len(df) + 1) + 3, 520),
                 column_config={**{c: st.column_config.TextColumn(c, alignment="right")
                                   for c in ("Baseline", "Plan", "Difference")},
                                "Why": st.column_config.TextColumn("Why", width="large")})
    changed = [d for d in diffs if d.changed]
    if changed:
        with st.expander("The arithmetic of each line that differs"):
            for d in changed:
                st.markdown(f"**{md(d.description)}** ({analysis.KIND_LABELS[d.kind]})")
                left, right = st.columns(2)
                left.caption(f"{md(names[bt.baseline])}  \n" + "  \n".join(md(x) for x in d.baseline_detail or ["no such line"]))
                right.caption(f"{md(names[code])}  \n" + "  \n".join(md(x) for x in d.candidate_detail or ["no such line"]))


@st.fragment
def _letter(bt: backtest.Backtest, names: Mapping[str, str], ws: Workspace) -> None:
    st.html(PRINT_CSS)
    c = st.columns([1.4, 1.4, 1.2], vertical_alignment="bottom")
    cid = c[0].selectbox("Customer", list(bt.customers), key=K + "letter_customer")
    seller = c[1].text_input("Your company (letterhead)", value="Your company", key=K + "seller")
    with c[2]:
        st.iframe(PRINT_BUTTON, height=46)
    sub = ws.subscription(cid)
    st.html(letter_html(bt, cid, names, seller=seller, current=sub.plan if sub else None))
    st.caption("Printing shows only the letter (no sidebar or controls). In the print dialog choose "
               "“Save as PDF”.")


def downloads(bt: backtest.Backtest) -> list[tuple[str, str, str, str]]:
    """(label, data, file name, mime) of the exports."""
    stem = f"backtest-{bt.month_labels[0]}_to_{bt.month_labels[-1]}-{'-'.join(bt.codes)}"
    return [
        ("Backtest (CSV)", bt.to_csv(), f"{stem}.csv", "text/csv"),
        ("Backtest (JSON)", contract_json(bt), f"{stem}.json", "application/json"),
    ]


def _export(bt: backtest.Backtest) -> None:
    st.caption("CSV: one row per customer × month × plan (subtotal, credit, total, the baseline's total, the change), "
               "spreadsheet-safe. JSON: the document `metering backtest` prints for the same plans, months and cohort.")
    row = st.container(horizontal=True)
    for i, (title, data, name, mime) in enumerate(downloads(bt)):
        row.download_button(title, data=data, file_name=name, mime=mime, key=f"{K}dl{i}", icon=":material/download:",
                            on_click="ignore")


# =========================================================================== the page


def render(engine: Engine) -> None:
    ss = st.session_state
    ws = load_workspace(engine)
    if ws is None:
        return
    if flash := ss.pop(drafts_ui.FLASH, None):
        st.success(md(flash), icon=":material/check_circle:")
    stored = ordered_plans(ws.plans)
    if len(stored) < 2 and not drafts_ui.sources():
        st.info("A backtest compares at least two plans: create them on the Plans page, or load the demo on the "
                "Workspace page.", icon=":material/sell:")
        if stored:
            _drafts(engine, ws, stored, {})
        return
    frame = state.frame()
    metric_types = {m.code: m.metric_type.value for m in ws.metrics}
    draft_state = drafts_ui.current(metric_types, [p.code for p in stored])
    draft_sources = {code: Plan.model_validate(src) for code, src in drafts_ui.sources().items()}
    valid = {code: Plan.model_validate(data) for code, (data, errors) in draft_state.items() if not errors}
    by_code = {p.code: p for p in stored} | valid

    with st.container(key="backtest-controls"):
        group = choose_group([*stored, *draft_sources.values()], ws.subscriptions, PLANS, K + "group", count=3,
                             label="Plans in")
        labels = {p.code: _plan_label(p, draft_sources) for p in group.plans}
        chosen = st.multiselect("Plans (the first is the baseline)", list(labels), key=PLANS,
                                format_func=labels.get, max_selections=MAX_PLANS)
        months = list(reversed(month_options(frame, ws)))
        first, last = default_months(months, _now_month(ws.timezone))
        c = st.columns([1, 1, 1.4])
        start = c[0].selectbox("From", months, index=months.index(first), key=K + "from")
        end = c[1].selectbox("To", months, index=months.index(last), key=K + "to")
        threshold = c[2].number_input("Guardrail: max increase per customer (%)", min_value=0, max_value=100_000,
                                      value=DEFAULT_GUARDRAIL, step=5, key=K + "guardrail",
                                      help="A customer whose bill rises more than this is flagged; a plan passes when "
                                           "no customer is.")
        cohort = _cohort(frame, ws)

    broken = [c for c in chosen if c in draft_state and draft_state[c][1]]
    if broken:
        st.warning(f"Draft {', '.join(f'`{c}`' for c in broken)} has fields to fix (marked in red below): it is left "
                   "out until then.", icon=":material/edit_off:")
    plans = [by_code[c] for c in chosen if c in by_code]
    if len(plans) < 2:
        st.info("Pick at least two plans: the baseline first, then the plans to compare with it.",
                icon=":material/compare_arrows:")
        _drafts(engine, ws, stored, draft_state)
        return
    if cohort is False:
        st.info("Pick the customers to price.", icon=":material/group:")
        _drafts(engine, ws, stored, draft_state)
        return
    try:
        began = time.perf_counter()
        months_range = backtest.month_range(start, end)
        cache = ss.setdefault(CACHE, backtest.BacktestCache())
        bt = backtest.run(frame, ws, plans, months_range, customer_ids=cohort, cache=cache)
        elapsed = time.perf_counter() - began
    except backtest.BacktestError as exc:
        st.error(md(exc), icon=":material/block:")
        _drafts(engine, ws, stored, draft_state)
        return
    if not bt.customers:
        st.info(f"No customer has a billing period from {label(months_range[0])} to {label(months_range[-1])}.",
                icon=":material/event_busy:")
        _drafts(engine, ws, stored, draft_state)
        return
    names = {p.code: p.name for p in bt.plans}
    rails = {code: analysis.guardrail(bt, code, Decimal(int(threshold))) for code in bt.candidates}
    _headline(bt, names, rails, elapsed)
    _drafts(engine, ws, stored, draft_state)  # under the totals, so an edit and its effect are on one screen
    # lazy tabs: only the open tab's content runs (the page reruns on every draft edit)
    tabs = st.tabs(TABS, key=K + "tab", on_change="rerun")
    draw = [lambda: _revenue(bt, names), lambda: _customers(bt, names, rails), lambda: _detail(bt, names),
            lambda: _letter(bt, names, ws), lambda: _export(bt)]
    for tab, body in zip(tabs, draw):
        if tab.open is not False:
            with tab:
                body()


def _drafts(engine: Engine, ws: Workspace, stored: list[Plan], draft_state: Mapping[str, Any]) -> None:
    def on_duplicate(code: str, source: str) -> None:
        # the new draft joins the comparison, in its source's group, after its source
        data = drafts_ui.sources()[code]
        group = f"{data['currency']} {data.get('interval', 'month')}"
        chosen = list(st.session_state.get(PLANS) or [])
        if st.session_state.get(K + "group", group) != group:
            st.session_state[K + "group"] = group
            chosen = []
        if source not in chosen:
            chosen = [source, *chosen][:MAX_PLANS - 1]
        if len(chosen) < MAX_PLANS:
            chosen.append(code)
        st.session_state[PLANS] = chosen
        st.session_state[drafts_ui.FLASH] = f"Created the draft {code}: change its prices below, the figures follow."

    drafts_ui.panel(engine, stored, draft_state, {m.code: m for m in ws.metrics}, plans_key=PLANS,
                    on_duplicate=on_duplicate)
