"""The Timeline's live part: what the quota is *now*, next to the simulation.

The simulation above it prices stored history under the chosen plan (a what-if when the customer
is subscribed elsewhere). This part asks `metering.quotas.entitlement.check` — the same answer as
`GET /api/v1/entitlements/{customer_id}/{metric}` and the rule the events API enforces — for the
customer's *subscribed* plan and the period holding now. It is an `st.fragment`: "Refresh" (or the
auto-refresh toggle) reruns only this part, so events arriving through the API show up without
recomputing the simulation.

Rules decided here:

- Only limit metrics have an entitlement; for charge metrics the part says so and stops.
- The customers listed are the subscribers of a plan with a quota on the metric (the ones the
  API can refuse), by customer id, at most MAX_CUSTOMERS (the note says when more exist).
- The simulation's column is its period holding now, if the periods shown reach it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from metering import plan_store
from metering.billing import TimelinePeriod
from metering.models import MetricBase, MetricType
from metering.preview import fmt
from metering.quotas import entitlement
from metering.workspace import Workspace
from workbench import downloads
from workbench.invoices import local
from workbench.text import md, md_code

KEY = "timeline:live:"
MAX_CUSTOMERS = 200  # a first check per customer reads its events once; keep a refresh quick
AUTO_SECONDS = 10
FIGURES = ["limit", "carryover", "available", "used", "remaining", "overage"]
COLUMNS = ["customer_id", "plan", "period start", "period end", *FIGURES, "has access"]


def subscribers(engine: Engine, metric_code: str) -> list[str]:
    """Customers whose subscribed plan has a quota on the metric, by id (read from the store at
    each refresh, so a subscription made since the page was drawn shows up)."""
    limited = {p.code for p in plan_store.list_plans(engine) if p.quota_for(metric_code) is not None}
    return sorted(s.customer_id for s in plan_store.list_subscriptions(engine) if s.plan in limited)


def live_answer(engine: Engine, customer_id: str, metric_code: str, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The entitlement as the API answers it (contract §8 JSON), or None when the customer has
    no subscription with a quota on the metric (the API's 404)."""
    try:
        return entitlement.check(engine, customer_id, metric_code, now=now).to_json()
    except entitlement.NoQuota:
        return None


def _number(text: str | None) -> str:
    return "—" if text is None else fmt(Decimal(text))


def _when(text: str, tz: str) -> str:
    return f"{local(datetime.fromisoformat(text.replace('Z', '+00:00')), tz):%Y-%m-%d %H:%M}"


def live_table(answers: dict[str, dict[str, Any]], tz: str) -> pd.DataFrame:
    """One row per customer: the entitlement's figures as exact text (— where they do not
    apply), period bounds in the workspace timezone."""
    records = []
    for cid, a in answers.items():
        records.append({
            "customer_id": cid, "plan": a["plan"],
            "period start": _when(a["period"]["start"], tz), "period end": _when(a["period"]["end"], tz),
            **{f: _number(a[f]) for f in FIGURES},
            "has access": "yes" if a["has_access"] else "no",
        })
    frame = pd.DataFrame(records, columns=COLUMNS)
    # carryover and overage exist for soft limits only: leave them out when no row has them
    return frame[[c for c in COLUMNS if c not in ("carryover", "overage") or (frame[c] != "—").any()]]


def current_row(rows: list[TimelinePeriod], now: datetime) -> TimelinePeriod | None:
    return next((r for r in rows if r.start <= now < r.end), None)


def comparison(sim: TimelinePeriod | None, plan_code: str, live: dict[str, Any] | None, tz: str) -> pd.DataFrame:
    """Figure by figure: the simulation's current period under the chosen plan, and the live
    entitlement under the subscribed plan."""
    def sim_value(name: str) -> str:
        if sim is None:
            return "—"
        value = {"limit": None, "available": sim.available, "used": sim.usage, "carryover": sim.carryover,
                 "overage": sim.overage,
                 "remaining": None if sim.available is None else max(sim.available - sim.usage, Decimal(0))}[name]
        return "—" if value is None else fmt(value)

    rows = [{"figure": "plan", "simulation": plan_code if sim else "—", "live, now": live["plan"] if live else "—"},
            {"figure": "period start", "simulation": f"{local(sim.start, tz):%Y-%m-%d %H:%M}" if sim else "—",
             "live, now": _when(live["period"]["start"], tz) if live else "—"},
            {"figure": "period end", "simulation": f"{local(sim.end, tz):%Y-%m-%d %H:%M}" if sim else "—",
             "live, now": _when(live["period"]["end"], tz) if live else "—"}]
    for name in ("available", "used", "remaining", "carryover", "overage"):
        rows.append({"figure": name, "simulation": sim_value(name), "live, now": _number(live[name]) if live else "—"})
    rows.append({"figure": "rejected (simulated)", "simulation": "—" if sim is None or sim.rejected is None
                 else f"{sim.rejected:,}", "live, now": "refused by the API, not stored"
                 if live and live["metric_type"] == MetricType.limit_metered.value else "—"})
    return pd.DataFrame(rows, columns=["figure", "simulation", "live, now"])


def _metrics_row(answer: dict[str, Any], metric: MetricBase) -> None:
    recurring = answer["metric_type"] == MetricType.limit_recurring.value
    shown = ["limit", *(["carryover"] if recurring else []), "available", "used", "remaining",
             *(["overage"] if recurring else [])]
    cols = st.columns(len(shown) + 1)
    for col, name in zip(cols, shown):  # short labels (the unit is in the caption): they fit at 1024 px
        col.metric(name.capitalize(), _number(answer[name]))
    cols[-1].metric("Has access", "yes" if answer["has_access"] else "no")
    st.caption(f"In {md(metric.unit)}. " + ("Soft limit: usage past the available quota is accepted as overage."
                                            if recurring else "Hard limit: the API refuses an event that would "
                                            "take usage past the limit."))


def _live(engine: Engine, ws: Workspace, metric: MetricBase, cid: str, sim_rows: list[TimelinePeriod],
          sim_plan: str) -> None:
    now = datetime.now(timezone.utc)
    with st.container(border=True, key="timeline-live"):
        head = st.columns([4, 1], vertical_alignment="center")
        head[0].subheader("Live, now", anchor=False)
        head[1].button("Refresh", key=KEY + "refresh", icon=":material/refresh:", width="stretch")
        st.caption(f"Checked at {local(now, ws.timezone):%Y-%m-%d %H:%M:%S} ({ws.timezone}). What the events API "
                   "enforces right now for the customer's subscribed plan and the period holding now — the same "
                   f"answer as {md_code('GET /api/v1/entitlements/{customer_id}/' + metric.code)}. The simulation "
                   "above replays stored history under the chosen plan.")
        answer = live_answer(engine, cid, metric.code, now=now)
        if answer is None:
            st.info(f"{md(cid)} has no subscription whose plan has a quota on {md_code(metric.code)}: the API refuses "
                    "none of its events and the entitlement check answers 404.", icon=":material/info:")
        else:
            st.markdown(f"**{md(cid)}** on {md_code(answer['plan'])}, period {_when(answer['period']['start'], ws.timezone)}"
                        f" → {_when(answer['period']['end'], ws.timezone)}")
            _metrics_row(answer, metric)
        sim = current_row(sim_rows, now)
        st.dataframe(comparison(sim, sim_plan, answer, ws.timezone), hide_index=True, width="stretch",
                     key=KEY + "compare")
        if sim is None:
            st.caption("The simulation's periods do not reach the current one: raise Periods to compare.")
        everyone = subscribers(engine, metric.code)
        shown = everyone[:MAX_CUSTOMERS]
        answers = {c: a for c in shown if (a := (answer if c == cid else live_answer(engine, c, metric.code, now=now)))}
        table = live_table(answers, ws.timezone)
        st.markdown(f"**Every subscriber with a quota on {md_code(metric.code)}** ({len(everyone):,})")
        if len(everyone) > len(shown):
            st.caption(f"The first {MAX_CUSTOMERS:,} by customer id.")
        st.dataframe(table, hide_index=True, width="stretch", key=KEY + "table",
                     column_config={c: st.column_config.TextColumn(c, alignment="right") for c in FIGURES})
        downloads.csv_button("Live quotas (CSV)", table, file_name=f"live-{metric.code}.csv", key=KEY + "csv")


def render(engine: Engine, ws: Workspace, metric: MetricBase, cid: str, sim_rows: list[TimelinePeriod],
           sim_plan: str) -> None:
    """The live part, refreshed on its own (button, or every AUTO_SECONDS when the toggle is on)."""
    if metric.metric_type not in (MetricType.limit_metered, MetricType.limit_recurring):
        st.caption(f"Live quotas: {md_code(metric.code)} is a {metric.metric_type.value} metric, with no quota to check "
                   "live (only limit metrics have one).")
        return
    auto = st.toggle(f"Refresh the live state every {AUTO_SECONDS} s", key=KEY + "auto")
    st.fragment(_live, run_every=AUTO_SECONDS if auto else None)(engine, ws, metric, cid, sim_rows, sim_plan)
