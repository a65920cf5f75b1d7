"""Render helpers of the Metric editor page (pages/editor.py) and its session state.

Form values live in namespaced session keys that survive page switches (`editor:name`,
`editor:slug` (the code field), `editor:unit`, …); each widget has its own key (`_w:…`), is
seeded from the kept value before it is drawn and copies its value back on change. The key
`editor:code` (see workbench.state) is the code of the metric being edited, None for a new one.

The form and the previews are drawn by one `st.fragment`, so a change reruns only them. All the
numbers come from `metering.preview.editor_preview` (the engine), which the bench times too.
"""

from __future__ import annotations

import re

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from metering import metrics, preview, snippets
from metering.access import Action
from metering.values import decimal_str
from metering.models import NEEDS_VALUE, Aggregation, MetricType, allowed_aggregations
from workbench import auth, charts, state
from workbench.text import md, md_code  # noqa: F401  (other pages import md from here too)

K = "editor:"
FIELDS = ("name", "slug", "description", "unit", "metric_type", "event_name", "aggregation",
          "value_property", "distinct_by", "group_by")
DEFAULT_BASE_URL = "http://localhost:8501"
FRAME_RECHECK_S = 3.0
PLACEHOLDER_KEY = "YOUR_API_KEY"
QUIET_UNTIL_SAVE = ("name", "slug", "unit")
FIELD_LABELS = {
    "name": "Name", "code": "Code", "description": "Description", "unit": "Unit", "metric_type": "Metric type",
    "event_name": "Event name", "aggregation": "Aggregation", "value_property": "Value property",
    "distinct_by": "Distinct by", "filters": "Filters", "group_by": "Labels to group by",
}  # "required" on a blank field waits for a Save

TYPE_GUIDE: dict[str, dict[str, str]] = {
    "limit_metered": {
        "label": "Limit metered", "short": "Quota that resets each period; hard limit",
        "behavior": "Usage resets completely at the start of each billing period",
        "quota": "Hard limit: events past the limit are rejected", "carryover": "No: unused quota is lost",
        "best": "Monthly allowances that reset (\"1,000 API calls per month\")",
    },
    "limit_recurring": {
        "label": "Limit recurring", "short": "Quota with carryover; soft limit",
        "behavior": "Usage resets, unused quota carries over to the next period",
        "quota": "Soft limit: usage past it is accepted and reported as overage",
        "carryover": "Yes: unused quota is kept (count or sum only)",
        "best": "Prepaid credits (\"1,000 SMS credits per month\")",
    },
    "charge_metered": {
        "label": "Charge metered", "short": "Pay per use; resets each period",
        "behavior": "Usage resets each period and is charged at the period's end",
        "quota": "None: every unit is priced by the plan's charge model", "carryover": "No",
        "best": "Pay-per-use services (\"$0.10 per API call\")",
    },
    "charge_recurring": {
        "label": "Charge recurring", "short": "Lifetime usage; never resets",
        "behavior": "Usage accumulates across periods and never resets",
        "quota": "None: the running total is priced every period", "carryover": "Not applicable",
        "best": "Cumulative usage (total data stored)",
    },
}
DECISION_TABLE = pd.DataFrame(
    [("Monthly quota that resets completely", "Limit metered"),
     ("Prepaid credits that accumulate", "Limit recurring"),
     ("Pay-per-use billing", "Charge metered"),
     ("Cumulative / lifetime usage", "Charge recurring")],
    columns=["Need", "Metric type"],
)
AGGREGATION_LABELS = {
    "count": "Count", "sum": "Sum", "max": "Max", "min": "Min", "unique_count": "Unique count", "latest": "Latest",
}
# How a message names things in this form: internal names (value_property, limit_recurring)
# become the labels the form shows; a message that starts with a field's name starts with its label.
FORM_WORDS = {
    **FIELD_LABELS, "event name": "Event name", "value property": "Value property", "distinct by": "Distinct by",
    "slug": "Code", **{t.value: t.value.replace("_", " ").capitalize() for t in MetricType},
    **AGGREGATION_LABELS,
}
TEMPLATE_CARD_PX = 120  # the narrowest a template card gets (PANEL_CSS): narrower screens wrap to a new row
AGGREGATION_HELP = {
    "count": "Count: the number of matching events",
    "sum": "Sum: adds up a numeric property",
    "max": "Max: the largest value of a numeric property",
    "min": "Min: the smallest value of a numeric property",
    "unique_count": "Unique count: distinct values of a property",
    "latest": "Latest: the value of the newest event",
}

PANEL_CSS = """
<style>
.st-key-panel-event   { background: rgba(33,195,84,.07);  border-color: rgba(33,195,84,.55) !important; }
.st-key-panel-agg     { background: rgba(28,131,225,.07); border-color: rgba(28,131,225,.55) !important; }
.st-key-panel-snippet { background: rgba(255,189,69,.10); border-color: rgba(230,160,30,.65) !important; }
.st-key-panel-test    { background: rgba(128,61,245,.05); border-color: rgba(128,61,245,.40) !important; }
[class*="st-key-tplcard-on-"] { background: rgba(28,131,225,.08); border-color: rgba(28,131,225,.8) !important; }
/* Template cards: as many equal columns as fit at TEMPLATE_CARD_PX or more, then the next row
   (seven squeezed columns broke "Requests" letter by letter at 1024 px). */
.st-key-tplcards { display: grid !important; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr));
                   align-items: stretch !important; }
.st-key-tplcards > div { width: auto !important; min-width: 0; }
[class*="st-key-tplcard-"] { padding: 0.75rem !important; height: 100%; }
[class*="st-key-tplcard-"] > div:last-child { margin-top: auto; }  /* the buttons on one line */
.st-key-formula code { white-space: pre-wrap !important; }
</style>
"""


# =========================================================================== session state


def _k(field: str) -> str:
    return K + field


def _w(field: str) -> str:
    return "_w:" + K + field


def blank_form() -> dict[str, Any]:
    return {
        "name": "", "slug": "", "description": "", "unit": "", "metric_type": MetricType.charge_metered.value,
        "event_name": "", "aggregation": Aggregation.count.value, "value_property": "", "distinct_by": "",
        "group_by": [],
    }


def _set_form(values: dict[str, Any], *, filters: dict[str, list[str]], code_auto: bool, template: str | None) -> None:
    ss = st.session_state
    for field in FIELDS:
        ss[_k(field)] = values[field]
    ss[_k("filter_rows")] = [{"property": k, "values": ", ".join(v)} for k, v in filters.items()]
    ss[_k("filters_ver")] = ss.get(_k("filters_ver"), 0) + 1
    ss[_k("code_auto")] = code_auto
    ss[_k("template")] = template
    ss[_k("tried_save")] = False
    ss[_k("when")] = datetime.now(timezone.utc).replace(microsecond=0)
    for key in ("test_outcome", "test_event", "test_seed", "save_now"):
        ss.pop(_k(key), None)


def start_new() -> None:
    """Open the editor on a blank new metric (call before st.switch_page)."""
    st.session_state["editor:code"] = None
    st.session_state.pop(_k("loaded"), None)


def start_edit(code: str) -> None:
    """Open the editor on metric `code` (call before st.switch_page)."""
    st.session_state["editor:code"] = code
    st.session_state.pop(_k("loaded"), None)


def ensure_loaded(engine: Engine) -> None:
    """Fill the form for `editor:code` once; a draft survives page switches until then."""
    ss = st.session_state
    code = ss.get("editor:code")
    if ss.get(_k("loaded"), object()) == (code or ""):
        return
    metric = metrics.get_metric(engine, code=code) if code else None
    if metric is None:
        ss["editor:code"] = None
        _set_form(blank_form(), filters={}, code_auto=True, template=None)
    else:
        values = {f: getattr(metric, f) for f in FIELDS if f != "slug"} | {"slug": metric.code}
        values.update({
            "metric_type": metric.metric_type.value, "aggregation": metric.aggregation.value,
            "description": metric.description or "", "value_property": metric.value_property or "",
            "distinct_by": metric.distinct_by or "", "group_by": list(metric.group_by),
        })
        _set_form(values, filters=dict(metric.filters), code_auto=False, template=None)
    ss[_k("loaded")] = code or ""


def editing() -> str | None:
    return st.session_state.get("editor:code")


def filters_of(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Filter table rows → {property: [allowed values]} (values comma-separated; a row with a
    property and no values is kept so the form explains it)."""
    out: dict[str, list[str]] = {}
    for row in rows:
        key = str(row.get("property") or "").strip()
        raw = row.get("values")
        values = [v.strip() for v in str(raw if raw is not None else "").split(",") if v.strip()]
        if not key and not values:
            continue
        out.setdefault(key, [])
        out[key].extend(v for v in values if v not in out[key])
    return out


def draft() -> dict[str, Any]:
    """The form's values in the shape metrics.form_errors / create_metric take."""
    ss = st.session_state
    return {
        "name": ss[_k("name")], "code": ss[_k("slug")].strip(), "description": ss[_k("description")] or None,
        "unit": ss[_k("unit")], "metric_type": ss[_k("metric_type")], "event_name": ss[_k("event_name")],
        "aggregation": ss[_k("aggregation")], "value_property": ss[_k("value_property")] or None,
        "distinct_by": ss[_k("distinct_by")] or None, "filters": filters_of(ss[_k("filter_rows")]),
        "group_by": list(ss[_k("group_by")]),
    }


def _auto_code(engine: Engine, name: str) -> str:
    return metrics.unique_code(engine, name) if name.strip() else ""


def apply_template(engine: Engine, key: str) -> None:
    """Fill the form from a quick template; every field stays editable. Editing an existing
    metric keeps its code."""
    template = metrics.TEMPLATES[key]
    values = template.form()
    current = editing()
    values = {
        **values, "slug": current or _auto_code(engine, values["name"]), "description": values["description"] or "",
        "value_property": values["value_property"] or "", "distinct_by": values["distinct_by"] or "",
    }
    _set_form({f: values[f] for f in FIELDS}, filters=values["filters"], code_auto=current is None, template=key)


# =========================================================================== small helpers


_SNAKE = re.compile(r"(?<!['\w])[a-z]+(?:_[a-z]+)+(?![\w'])")


def in_form_words(message: str, labels: dict[str, str]) -> str:
    """A message as the form would say it: `base_fee must be 0 or more` → `Base fee must be 0
    or more`, `a limit_recurring metric …` → `a Limit recurring metric …`. Quoted values
    ('api_requests') are left as they are."""
    text = _SNAKE.sub(lambda m: labels.get(m.group(0), m.group(0)), message)
    for words in (2, 1):  # a leading field name: "event name must …", "name is required"
        head = " ".join(text.split(" ")[:words])
        if head in labels and text.startswith(head + " "):
            return labels[head] + text[len(head):]
    return text


def field_error(message: str | None) -> None:
    if message:
        st.caption(f":red[:material/error: {md(message)}]")


def base_url() -> str:
    """The app's own address (scheme, host, port and base path) for the snippets."""
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no browser context (tests, bare mode)
        url = None
    if not url:
        return DEFAULT_BASE_URL
    parts = urlsplit(url)
    path = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"{parts.scheme}://{parts.netloc}" + (f"/{path}" if path else "")


def api_key() -> str:
    return st.session_state.get("api:key_plain") or PLACEHOLDER_KEY


def _bind(widget: Callable[..., Any], field: str, label: str, *, after: Callable[[], None] | None = None, **kwargs: Any) -> Any:
    """Draw a widget for a kept form value: seeded from it, copying back on change."""
    st.session_state[_w(field)] = st.session_state[_k(field)]

    def changed() -> None:
        st.session_state[_k(field)] = st.session_state[_w(field)]
        if after is not None:
            after()

    return widget(label, key=_w(field), on_change=changed, **kwargs)


def _visible_errors(errors: dict[str, str]) -> dict[str, str]:
    """Errors shown beside their fields: a blank required field waits for the first Save, and
    an event name that is only wrong because the code is missing is not repeated."""
    ss = st.session_state
    shown = {("slug" if k == "code" else k): in_form_words(v, FORM_WORDS) for k, v in errors.items()}
    if not ss.get(_k("tried_save")):
        for field in QUIET_UNTIL_SAVE:
            if field in shown and not str(ss[_k(field)]).strip():
                shown.pop(field)
    if "event_name" in shown and not ss[_k("event_name")].strip() and not ss[_k("slug")].strip():
        shown.pop("event_name")  # it defaults to the code, which is missing: said beside the code
    return shown


# =========================================================================== templates


def templates_row(engine: Engine) -> None:
    """The quick templates as selectable cards; choosing one fills the form."""
    st.markdown("##### Quick templates")
    chosen = st.session_state.get(_k("template"))
    row = st.container(horizontal=True, wrap=True, gap="small", key="tplcards")
    for key, t in metrics.TEMPLATES.items():
        on = key == chosen
        with row.container(border=True, key=f"tplcard-{'on-' if on else ''}{key}"):
            st.markdown(f"**{md(t.name)}**")
            agg = t.aggregation or "any"
            st.caption(f"{md(t.purpose)}  \n{md(agg)} · {md(t.unit or 'custom')}")
            st.button(
                "Selected" if on else "Use", key=f"editor:tpl:{key}", width="stretch",
                type="primary" if on else "secondary",
                on_click=apply_template, args=(engine, key),
            )


# =========================================================================== the form


def _basic_information(engine: Engine, errors: dict[str, str]) -> None:
    ss = st.session_state
    st.markdown("##### Basic information")

    def name_changed() -> None:
        if ss[_k("code_auto")]:
            ss[_k("slug")] = _auto_code(engine, ss[_k("name")])

    def code_changed() -> None:
        typed = ss[_k("slug")].strip()
        auto = _auto_code(engine, ss[_k("name")])
        if not typed and editing() is None:
            ss[_k("slug")], ss[_k("code_auto")] = auto, True
        else:
            ss[_k("slug")], ss[_k("code_auto")] = typed, typed == auto and editing() is None

    left, right = st.columns(2)
    with left:
        _bind(st.text_input, "name", "Name *", after=name_changed, placeholder="e.g. API Requests",
              help="Human-readable name, shown on invoices.")
        field_error(errors.get("name"))
    with right:
        saved = editing() is not None
        _bind(st.text_input, "slug", "Code *", after=code_changed, placeholder="e.g. api_requests", disabled=saved,
              help="Unique identifier: a-z, 0-9 and _. Generated from the name until you edit it; fixed once the "
                   "metric is saved (plans, quotas, API calls and exported files name the metric by it).")
        field_error(errors.get("slug"))
        if saved:
            st.caption("Fixed once saved: plans and the API refer to it.")
        elif not errors.get("slug") and ss[_k("slug")]:
            st.caption(("Generated from the name · " if ss[_k("code_auto")] else "") + ":green[:material/check: available]")
    _bind(st.text_area, "description", "Description", height=68, placeholder="What this metric measures (optional)")
    _bind(st.text_input, "unit", "Unit *", placeholder="requests, tokens, GB, ms…",
          help="Unit of measure, shown next to usage and on invoices.")
    field_error(errors.get("unit"))

    types = [t.value for t in MetricType]

    def type_changed() -> None:  # keep the aggregation one the new type takes
        allowed = [a.value for a in allowed_aggregations(ss[_k("metric_type")])]
        if ss[_k("aggregation")] not in allowed:
            ss[_k("aggregation")] = allowed[0]

    _bind(st.radio, "metric_type", "Metric type *", after=type_changed, options=types, horizontal=True,
          format_func=lambda v: TYPE_GUIDE[v]["label"], captions=[TYPE_GUIDE[t]["short"] for t in types])
    field_error(errors.get("metric_type"))
    guide = TYPE_GUIDE[ss[_k("metric_type")]]
    st.caption(
        f"**{guide['label']}** — {md(guide['behavior'])}. Quota: {md(guide['quota'])}. "
        f"Carryover: {md(guide['carryover'])}. Best for: {md(guide['best'])}."
    )
    with st.expander("Which type? Quick decision guide", icon=":material/help:"):
        st.table(DECISION_TABLE.set_index("Need"))


def _suggest(field: str, label: str, options: list[str]) -> None:
    """Pills that put a seen path into a text field."""
    if not options:
        return

    def picked() -> None:
        value = st.session_state.get(_w(field + "_pick"))
        if value:
            st.session_state[_k(field)] = value
        st.session_state[_w(field + "_pick")] = None

    st.pills(label, options, key=_w(field + "_pick"), on_change=picked, label_visibility="visible",
             format_func=md)  # property paths from the events: pill labels are Markdown


def _event_and_aggregation(engine: Engine, frame: Any, errors: dict[str, str]) -> None:
    ss = st.session_state
    st.markdown("##### Event & aggregation")
    names = preview.event_name_counts(frame)
    left, right = st.columns(2)
    with left:
        _bind(st.text_input, "event_name", "Event name", placeholder=ss[_k("slug")] or "defaults to the code",
              help="Which events feed the metric. Empty: the code. Several metrics may read one event stream.")
        field_error(errors.get("event_name"))
        if names:
            shown = " · ".join(f"{md(n)} ({preview.fmt(c)})" for n, c in names[:6])
            st.caption(f"Stored event names: {shown}")
        else:
            st.caption("No events stored yet: import a file on the Events page, or use Test it.")
    with right:
        # Only what the metric type takes (a limit recurring metric counts or sums).
        allowed = [a.value for a in allowed_aggregations(ss[_k("metric_type")])]
        if ss[_k("aggregation")] not in allowed:
            ss[_k("aggregation")] = allowed[0]
        _bind(st.selectbox, "aggregation", "Aggregation *", options=allowed, format_func=AGGREGATION_LABELS.get)
        st.caption(md(AGGREGATION_HELP[ss[_k("aggregation")]]))
        field_error(errors.get("aggregation"))

    event_name = ss[_k("event_name")].strip() or ss[_k("slug")].strip()
    seen = preview.seen_paths(frame, event_name) if len(frame) else []
    agg = Aggregation(ss[_k("aggregation")])
    if agg in NEEDS_VALUE:
        _bind(st.text_input, "value_property", "Value property *", placeholder="e.g. tokens or usage.input_tokens",
              help="Dot path of the numeric property to read. Required for sum, max, min and latest.")
        field_error(errors.get("value_property"))
        _suggest("value_property", "Numeric paths seen in stored events", [s.path for s in seen if s.numeric][:10])
    if agg == Aggregation.unique_count:
        _bind(st.text_input, "distinct_by", "Distinct by *", placeholder="e.g. user_id",
              help="Dot path whose distinct values are counted.")
        field_error(errors.get("distinct_by"))
        _suggest("distinct_by", "Paths seen in stored events", [s.path for s in seen][:10])

    _filters_table(errors)
    paths = [s.path for s in seen]
    current = list(ss[_k("group_by")])
    _bind(st.multiselect, "group_by", "Labels to group by", options=list(dict.fromkeys(current + paths)),
          accept_new_options=True, placeholder="e.g. region, model",
          help="Split usage by these properties in previews and reports (events without one go to the group null).")
    field_error(errors.get("group_by"))


def apply_table_edits(rows: list[dict[str, Any]], edits: dict[str, Any]) -> list[dict[str, Any]]:
    """A data editor's edit state applied to its base rows, in Streamlit's order: cell edits,
    then deletions (positions in the base), then added rows."""
    out = [dict(r) for r in rows]
    for position, change in (edits.get("edited_rows") or {}).items():
        if int(position) < len(out):
            out[int(position)].update(change)
    deleted = {int(i) for i in edits.get("deleted_rows") or []}
    out = [r for i, r in enumerate(out) if i not in deleted]
    out.extend(dict(r) for r in edits.get("added_rows") or [])
    return [{"property": str(r.get("property") or ""), "values": str(r.get("values") or "")} for r in out]


def _filters_table(errors: dict[str, str]) -> None:
    ss = st.session_state
    widget = f"_w:editor:filters:{ss[_k('filters_ver')]}"
    if widget not in ss:  # first draw (or back from another page): start from the kept rows
        ss[_k("filters_base")] = [dict(r) for r in ss[_k("filter_rows")]]

    def edited() -> None:  # runs before the fragment, so the preview sees the edit at once
        ss[_k("filter_rows")] = apply_table_edits(ss[_k("filters_base")], ss.get(widget) or {})

    base = pd.DataFrame(ss[_k("filters_base")], columns=["property", "values"]).astype(object)
    st.data_editor(
        base, key=widget, num_rows="dynamic", hide_index=True, width="stretch", on_change=edited,
        column_config={
            "property": st.column_config.TextColumn("Filter property", help="Dot path, e.g. model"),
            "values": st.column_config.TextColumn("Allowed values (comma-separated)", help="e.g. gpt-4o, claude-sonnet"),
        },
    )
    st.caption("Filters: an event counts only if, for every filter, its property's text is one of the values.")
    field_error(errors.get("filters"))


def _save_row(engine: Engine, all_errors: dict[str, str]) -> None:
    ss = st.session_state

    def request_save() -> None:
        ss[_k("tried_save")] = True
        ss[_k("save_now")] = True

    row = st.container(horizontal=True)
    label = "Save changes" if editing() else "Create metric"
    may = auth.can(Action.edit_metrics)
    row.button(label, key="editor:save", type="primary", icon=":material/save:", on_click=request_save, disabled=not may,
               help=None if may else "Saving metrics needs the editor role.")
    if row.button("Cancel", key="editor:cancel"):
        ss.pop(_k("loaded"), None)
        st.switch_page("pages/metrics.py")
    if not ss.pop(_k("save_now"), False):
        return
    if all_errors:
        # Required fields first: a blank form is missing those, whatever else follows from them.
        required = ("name", "code", "unit", "metric_type", "aggregation")
        ordered = sorted(all_errors.items(), key=lambda kv: kv[0] not in required)
        reasons = "\n".join(f"- **{FIELD_LABELS.get(f, md(f))}**: {md(in_form_words(m, FORM_WORDS))}" for f, m in ordered)
        st.error(f"Not saved. Fix these first:\n{reasons}", icon=":material/block:")
        return
    data = draft()
    action = "metric.update" if editing() else "metric.create"
    if not auth.allowed(Action.edit_metrics, audit_action=action, target=editing() or data["code"]):
        return
    try:
        if editing():
            saved = metrics.update_metric(engine, code=editing(), data=data)
        else:
            saved = metrics.create_metric(engine, data=data)
    except metrics.InvalidMetric as exc:  # a race: the code was taken meanwhile
        st.error("Not saved: " + "; ".join(f"{FIELD_LABELS.get(k, k)}: {md(in_form_words(v, FORM_WORDS))}"
                                           for k, v in exc.errors.items()), icon=":material/block:")
        return
    auth.record(action, target=saved.code, detail=f"{saved.name}: {saved.aggregation.value} of {saved.event_name}")
    ss["metrics:flash"] = f"Saved {saved.name} ({saved.code})."
    ss["editor:code"] = None
    ss.pop(_k("loaded"), None)
    st.switch_page("pages/metrics.py")


# =========================================================================== the previews


def _panel_header(label: str, color: str, icon: str, note: str | None = None) -> None:
    st.badge(label, color=color, icon=icon)
    if note:
        st.caption(note)


def _event_panel(result: preview.EditorPreview) -> None:
    with st.container(border=True, key="panel-event"):
        _panel_header("Event example", "green", ":material/data_object:",
                      "The event this metric reads, live from the form: send it to POST /api/v1/events "
                      "or put these fields in an import file.")
        st.code(result.event_json, language="json", wrap_lines=True)


def _aggregation_panel(result: preview.EditorPreview) -> None:
    calc = result.calculation
    assert calc is not None and result.metric is not None
    with st.container(border=True, key="panel-agg"):
        _panel_header("Aggregation preview", "blue", ":material/functions:")
        st.radio("Window", list(preview.WINDOWS), key=_k("window"), horizontal=True,
                 format_func=preview.WINDOWS.get, label_visibility="collapsed")
        st.caption(md(calc.note))
        with st.container(key="formula"):
            st.code(calc.formula, language="text", wrap_lines=True)
        unit = result.metric.unit
        cols = st.columns([2, 1.2, 1])
        cols[0].metric(f"Value ({md(unit)})", calc.value_text)
        cols[1].metric("Events", preview.fmt(calc.events))
        cols[2].metric("Skipped", preview.fmt(calc.skipped))
        if calc.skipped_text:
            st.warning(md(calc.skipped_text), icon=":material/report:")
        if calc.groups:
            table = preview.group_table(calc)
            st.markdown(f"**By {md(', '.join(result.metric.group_by))}**"
                        + (f" · top {len(calc.groups)} of {len(calc.groups) + calc.more_groups}" if calc.more_groups else ""))
            st.altair_chart(charts.group_bars(table, title=unit or "value"), width="stretch")
            st.dataframe(
                table.drop(columns=["group", "value_number"]), hide_index=True, width="stretch",
                column_config={
                    "events": st.column_config.NumberColumn("events", format="localized"),
                    "skipped": st.column_config.NumberColumn("skipped", format="localized"),
                },
            )


def _snippet_panel(result: preview.EditorPreview) -> None:
    with st.container(border=True, key="panel-snippet"):
        key_note = "your API key" if api_key() != PLACEHOLDER_KEY else "a placeholder key: create one on the Developers page"
        _panel_header("Quick snippet", "yellow", ":material/terminal:",
                      f"Sends the example event to {md_code(base_url() + '/api/v1/events')} with {key_note}.")
        tabs = dict(zip(("curl", "python", "javascript"), st.tabs(["cURL", "Python", "JavaScript"])))
        checks = result.entitlement_snippets  # limit metrics only: may the customer use this much?
        metric, event = result.metric, result.event or {}
        for language, tab in tabs.items():
            highlight = "bash" if language == "curl" else language
            if checks and metric is not None:
                units = decimal_str(snippets.event_quantity(metric, event))
                tab.caption(f"1 · Check the quota first: may {md(event.get('customer_id', ''))} use "
                            f"{md_code(units)} more {md(metric.unit)} now? It answers the entitlement "
                            "(limit, used, remaining, `fits`); 404 when the customer's plan has no quota on the metric.")
                tab.code(checks[language], language=highlight, wrap_lines=True)
                tab.caption("2 · Send the event" + (": past the hard limit it is refused (`field: quota`)."
                                                    if metric.metric_type == MetricType.limit_metered
                                                    else ": a soft limit never refuses, usage past it is overage."))
            tab.code(result.snippets[language], language=highlight, wrap_lines=True)


def _test_panel(engine: Engine, result: preview.EditorPreview) -> None:
    ss = st.session_state
    metric = result.metric
    assert metric is not None
    seed = preview.event_example_json(metric, now=ss[_k("when")])
    if ss.get(_k("test_event")) in (None, ss.get(_k("test_seed"))):
        ss[_k("test_event")] = seed  # follow the form until the person edits the JSON
    ss[_k("test_seed")] = seed

    def send() -> None:
        if not auth.allowed(Action.send_test_events, audit_action="events.test", target=metric.event_name):
            return
        text = ss.get(_w("test_event"), ss[_k("test_event")])
        outcome = preview.send_test_event(engine, metric, text, get_frame=state.frame,
                                          window_key=ss.get(_k("window"), "all"))
        if outcome.error is None:
            auth.record("events.test", target=metric.event_name,
                        detail="stored 1 event" if outcome.accepted else "already stored (duplicate)")
        ss[_k("test_outcome")] = outcome
        recheck_store()
        if outcome.error is None:
            ss[_k("when")] = datetime.now(timezone.utc).replace(microsecond=0)  # next example: a new event

    def reset() -> None:
        ss[_k("test_event")] = ss[_k("test_seed")]
        ss.pop(_k("test_outcome"), None)

    with st.container(border=True, key="panel-test"):
        _panel_header("Test it", "violet", ":material/science:",
                      "Edit the event and send it: it is stored for real (source \"test event\") and the "
                      "preview shows the metric before → after.")
        _bind(st.text_area, "test_event", "Test event (JSON)", height=220)
        outcome: preview.TestOutcome | None = ss.get(_k("test_outcome"))
        if outcome is not None and outcome.error:
            if outcome.field_errors:  # every field's problem at once
                for name, reason in outcome.field_errors.items():
                    field_error(f"{name}: {reason}")
            else:
                field_error(outcome.error)
        row = st.container(horizontal=True)
        row.button("Send test event", key="editor:test_send", type="primary", icon=":material/send:", on_click=send,
                   disabled=not auth.can(Action.send_test_events))
        row.button("Reset to example", key="editor:test_reset", on_click=reset)
        if outcome is not None and outcome.error is None:
            stored = "Stored 1 event." if outcome.accepted else "Already stored (same idempotency key): nothing added."
            change = preview.compare(outcome.before, outcome.after, unit=metric.unit)  # type: ignore[arg-type]
            st.success(f"{stored} Before → after: {md(change)}", icon=":material/compare_arrows:")
            for reason in outcome.not_counted:
                st.info(f"This event adds nothing to the value: {md(reason)}.", icon=":material/info:")


def _previews(engine: Engine, result: preview.EditorPreview) -> None:
    if result.metric is None:
        with st.container(border=True, key="panel-agg"):
            _panel_header("Preview", "blue", ":material/functions:")
            lines = "\n".join(f"- {md(in_form_words(m, FORM_WORDS))}" for m in result.preview_errors.values())
            st.info(f"The preview needs a valid definition:\n{lines}", icon=":material/info:")
        return
    _event_panel(result)
    _aggregation_panel(result)
    _snippet_panel(result)
    _test_panel(engine, result)


# =========================================================================== the fragment


def compute_preview(engine: Engine, frame: Any, data: dict[str, Any]) -> preview.EditorPreview:
    """What the fragment computes on every change (the bench times this same call)."""
    ss = st.session_state
    return preview.editor_preview(
        engine, frame, data, current_code=editing(), window_key=ss.get(_k("window"), "all"),
        # The end of this minute: a window "until now" that stays the same for a minute (so
        # calculations are reused) and already holds an event just sent.
        now=datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1),
        example_time=ss[_k("when")], base_url=base_url(), api_key=api_key(),
    )


def recheck_store() -> None:
    """Make the next `current_frame` ask the store for new events (page entry, a test event)."""
    st.session_state[_k("frame_at")] = 0.0


def current_frame() -> Any:
    """The shared frame (`state.frame()`), re-checked against the store at page entry, after a
    test event, and at most every FRAME_RECHECK_S seconds while the form changes: the check is
    a count over the event table, too slow to run on every keystroke with a million events."""
    ss = st.session_state
    now = time.monotonic()
    if _k("frame") not in ss or now - ss.get(_k("frame_at"), 0.0) > FRAME_RECHECK_S:
        ss[_k("frame")] = state.frame()
        ss[_k("frame_at")] = now
    return ss[_k("frame")]


@st.fragment
def editor_body() -> None:
    """Form (left) and previews (right); a change reruns only this fragment."""
    engine = state.engine()
    frame = current_frame()
    st.session_state.setdefault(_k("window"), "all")
    result = compute_preview(engine, frame, draft())
    shown = _visible_errors(result.errors)
    form, side = st.columns([1.1, 1], gap="large")
    with form:
        _basic_information(engine, shown)
        _event_and_aggregation(engine, frame, shown)
        st.divider()
        _save_row(engine, result.errors)
    with side:
        _previews(engine, result)


def inject_css() -> None:
    st.html(PANEL_CSS)
