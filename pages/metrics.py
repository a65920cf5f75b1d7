"""Billable metrics: the list (with each metric's usage over the stored events), edit and delete."""

from __future__ import annotations

import streamlit as st

from metering import aggregation, metrics, plan_store, preview
from metering.access import Action
from metering.models import MetricPublic
from workbench import auth, editor, state
from workbench.text import md, md_code

auth.gate()  # again here: a page file run on its own (a deep link) must not skip sign-in

DELETE_KEY = "metrics:delete"
COLUMNS = [2.2, 2.0, 1.4, 1.8, 0.9, 1.4, 0.45, 0.45]
LIST_CSS = "<style>.st-key-metrics-list hr { margin: 0.1rem 0 !important; }</style>"
TYPE_LABELS = {k: v["label"] for k, v in editor.TYPE_GUIDE.items()}


def _cancel_delete() -> None:
    st.session_state.pop(DELETE_KEY, None)


@st.dialog("Delete metric", on_dismiss=_cancel_delete)
def confirm_delete(code: str) -> None:
    engine = state.engine()
    metric = metrics.get_metric(engine, code=code)
    if metric is None:
        st.info(f"The metric {md(code)} no longer exists.")
        if st.button("Close", key="metrics:delete_close"):
            _cancel_delete()
            st.rerun()
        return
    frame = state.frame()
    events = preview.events_named(frame, metric.event_name)
    siblings = [m.code for m in metrics.list_metrics(engine) if m.event_name == metric.event_name and m.code != code]
    plans = plan_store.plans_using_metric(engine, code=code)

    st.markdown(f"Delete **{md(metric.name)}** ({md_code(code)})? This cannot be undone.")
    st.markdown("**What depends on it**")
    lines = [
        f"- Stored events named {md_code(metric.event_name)}: **{preview.fmt(events)}**"
        + (" — they stay stored (delete them on the Events page)." if events else "."),
    ]
    if siblings:
        lines.append(f"- Other metrics reading the same events: {', '.join(md_code(s) for s in siblings)}.")
    if plans:
        lines.append(f"- Plans that use it: {', '.join(md_code(p) for p in plans)} — their charges or quotas "
                     "on this metric are removed from those plans.")
    else:
        lines.append("- No plan uses it.")
    st.markdown("\n".join(lines))
    confirmed = True
    if plans:
        confirmed = st.checkbox(f"I understand that {len(plans)} plan(s) use this metric", key="metrics:delete_ack")
    left, right = st.columns(2)
    if left.button("Delete metric", key="metrics:delete_yes", type="primary", icon=":material/delete:",
                   disabled=not confirmed or not auth.can(Action.edit_metrics), width="stretch") \
            and auth.allowed(Action.edit_metrics, audit_action="metric.delete", target=code):
        plan_store.remove_metric_from_plans(engine, code=code)
        metrics.delete_metric(engine, code=code)
        auth.record("metric.delete", target=code, detail=f"{metric.name}; removed from plans: {', '.join(plans) or 'none'}")
        if state_editing_this(code):
            editor.start_new()
        st.session_state["metrics:flash"] = f"Deleted {metric.name} ({code})."
        _cancel_delete()
        st.rerun()
    if right.button("Cancel", key="metrics:delete_no", width="stretch"):
        _cancel_delete()
        st.rerun()


def state_editing_this(code: str) -> bool:
    return st.session_state.get("editor:code") == code


def _ask_delete(code: str) -> None:
    st.session_state[DELETE_KEY] = code
    st.session_state.pop("metrics:delete_ack", None)


def _row(metric: MetricPublic, result: aggregation.AggregateResult) -> None:
    cols = st.columns(COLUMNS, vertical_alignment="center")
    cols[0].markdown(f"**{md(metric.name)}**  \n{md_code(metric.code)}")
    path = aggregation.value_path(metric)
    cols[1].markdown(md(metric.aggregation.value) + (f" of {md_code(path)}" if path else "")
                     + f"  \n:gray[event {md_code(metric.event_name)}]")
    cols[2].markdown(TYPE_LABELS[metric.metric_type.value])
    value = f"**{preview.fmt(result.value)}** {md(metric.unit)}"
    detail = f"{preview.plural(result.events, 'event')}" + (f", {preview.fmt(result.skipped)} skipped" if result.skipped else "")
    cols[3].markdown(f"{value}  \n:gray[{detail}]")
    cols[4].markdown(md(metric.unit))
    cols[5].markdown(f"{metric.updated_at:%Y-%m-%d %H:%M}")
    if cols[6].button("", key=f"metrics:edit:{metric.code}", icon=":material/edit:", help=f"Edit {md(metric.name)}"):
        editor.start_edit(metric.code)
        st.switch_page("pages/editor.py")
    cols[7].button("", key=f"metrics:del:{metric.code}", icon=":material/delete:", help=f"Delete {md(metric.name)}",
                   on_click=_ask_delete, args=(metric.code,), disabled=not auth.can(Action.edit_metrics))


engine = state.engine()
st.title("Billable metrics")
st.caption("What you bill for: each metric reads one event stream and aggregates it. Values are over all stored events.")
if flash := st.session_state.pop("metrics:flash", None):
    st.success(md(flash), icon=":material/check_circle:")

search_col, new_col = st.columns([4, 1], vertical_alignment="bottom")
search = search_col.text_input("Search", key="metrics:search", placeholder="Search by name, code or event name",
                               label_visibility="collapsed")
if new_col.button("New metric", key="metrics:new", type="primary", icon=":material/add:", width="stretch"):
    editor.start_new()
    st.switch_page("pages/editor.py")

rows = metrics.list_metrics(engine, search=search or None)
if not rows:
    if search:
        st.info(f"No metric matches “{md(search)}”.")
    else:
        st.info("No metrics yet. Create one from a quick template with **New metric**.", icon=":material/straighten:")
else:
    frame = state.frame()
    results = {m.code: aggregation.aggregate(frame, m) for m in rows}
    total_events = len(frame)
    st.caption(f"{preview.plural(len(rows), 'metric')} · {preview.plural(total_events, 'stored event')}")
    st.html(LIST_CSS)
    with st.container(border=True, key="metrics-list"):
        header = st.columns(COLUMNS)
        for col, title in zip(header, ["Metric & code", "Aggregation", "Metric type", "Usage (all time)", "Unit",
                                       "Last updated (UTC)", "", ""]):
            col.markdown(f"**{title}**" if title else "")
        for metric in rows:
            st.divider()
            _row(metric, results[metric.code])

if code := st.session_state.get(DELETE_KEY):
    confirm_delete(code)
