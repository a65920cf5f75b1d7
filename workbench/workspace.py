"""The Workspace page: load the demo, export / import the workspace file, timezone, reset.

The work is done by the engine (`metering.demo`, `metering.workspace`, `metering.store`); the
functions here that change the store also drop the app's caches (`state.clear_caches`), so every
page sees the new workspace at once. Uploads go through :func:`read_upload`, a plain function
of the file's bytes.

Rules decided here:

- *Load demo workspace* replaces everything: metrics, plans, subscriptions, timezone and
  events. On an empty workspace it loads at once; otherwise a dialog asks first.
- Import replaces the metrics, plans, subscriptions and timezone by default (events are kept);
  *Merge* keeps them and replaces only the same codes and customers. The whole file is checked
  before anything is written; a bad file changes nothing and shows the path of the bad field.
- Reset deletes metrics, plans, subscriptions, settings (timezone back to UTC) and every
  stored event, after a confirmation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import available_timezones

import streamlit as st
from sqlalchemy.engine import Engine

from metering import demo, metrics, plan_store, store
from metering.engine import read_only_reason
from metering.access import Action
from metering.demo import DemoSummary
from metering.importing import Progress
from metering.preview import fmt, plural
from metering.workspace import Workspace, WorkspaceError, export_workspace, import_document, parse_workspace
from workbench import auth, state
from workbench import peers as peers_ui
from workbench.text import md

KEY = "workspace:"
DEMO_DIALOG = KEY + "confirm_demo"
RESET_DIALOG = KEY + "confirm_reset"
FLASH = KEY + "flash"
REPLACE, MERGE = "Replace", "Merge"
MAX_UPLOAD_BYTES = 20_000_000


@dataclass(frozen=True)
class Counts:
    metrics: int
    plans: int
    subscriptions: int
    events: int
    timezone: str

    @property
    def empty(self) -> bool:
        return not (self.metrics or self.plans or self.subscriptions or self.events)

    def text(self) -> str:
        return (f"{plural(self.metrics, 'metric')}, {plural(self.plans, 'plan')}, "
                f"{plural(self.subscriptions, 'subscription')} and {plural(self.events, 'event')}")


def counts(engine: Engine) -> Counts:
    return Counts(
        metrics=len(metrics.list_metrics(engine)),
        plans=len(plan_store.list_plans(engine)),
        subscriptions=len(plan_store.list_subscriptions(engine)),
        events=store.event_count(engine),
        timezone=plan_store.get_timezone(engine),
    )


# --- actions (no widgets) -------------------------------------------------------------------


def read_upload(data: bytes, name: str = "workspace.json") -> Workspace:
    """A workspace file's bytes → a checked Workspace; WorkspaceError (naming the bad field's
    path, or saying why the file cannot be read) otherwise."""
    return parse_workspace(upload_document(data, name))


def upload_document(data: bytes, name: str = "workspace.json") -> Any:
    """A workspace file's bytes → its JSON document (decimals exact), or WorkspaceError."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise WorkspaceError(f"{name} is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB: is it a workspace file?")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkspaceError(f"{name} is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise WorkspaceError(f"{name} is empty")
    try:
        return json.loads(text, parse_float=str)  # decimals stay exact
    except json.JSONDecodeError as exc:
        raise WorkspaceError(f"{name} is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def import_upload(engine: Engine, data: bytes, *, name: str = "workspace.json", replace: bool = True) -> Workspace:
    """Check the file, then load it into the store (`metering.workspace.import_document`: a
    merge may refer to the store's own metrics and plans)."""
    ws = import_document(engine, upload_document(data, name), merge=not replace)
    state.clear_caches()
    return ws


def export_text(engine: Engine) -> str:
    return json.dumps(export_workspace(engine), indent=2, ensure_ascii=False) + "\n"


def load_demo(engine: Engine, *, on_progress=None) -> DemoSummary:  # noqa: ANN001
    summary = demo.load_demo(engine, on_progress=on_progress)
    state.clear_caches()
    return summary


def reset(engine: Engine) -> None:
    demo.reset(engine)
    state.clear_caches()


def _after_change() -> None:
    """Forget per-page choices that may point at metrics, plans or customers that are gone."""
    for key in list(st.session_state):
        if isinstance(key, str) and key.startswith(("invoices:", "timeline:", "plans:", "usage:")):
            del st.session_state[key]


# --- the page -------------------------------------------------------------------------------


def _load_demo_now(engine: Engine) -> None:
    bar = st.progress(0.0, text="Simulating and storing the demo events…")

    def progress(p: Progress) -> None:
        bar.progress(p.fraction, text=f"Storing events: {fmt(p.done)} of {fmt(p.total)}")

    summary = load_demo(engine, on_progress=progress)
    bar.empty()
    auth.record("workspace.demo", detail=(
        f"{summary.metrics} metrics, {summary.plans} plans, {summary.subscriptions} subscriptions, "
        f"{summary.events:,} events"))
    _after_change()
    st.session_state[FLASH] = (
        f"Loaded the demo workspace: {plural(summary.metrics, 'metric')}, {plural(summary.plans, 'plan')}, "
        f"{plural(summary.subscriptions, 'subscription')} and {plural(summary.events, 'event')} "
        f"({summary.start:%b %d, %Y} – {summary.end:%b %d, %Y %H:%M} UTC, ending now) in {summary.seconds:.1f} s."
    )


def _close(key: str) -> None:
    st.session_state.pop(key, None)


@st.dialog("Replace the workspace with the demo?", on_dismiss=lambda: _close(DEMO_DIALOG))
def confirm_demo(engine: Engine) -> None:
    now = counts(engine)
    st.markdown(f"The workspace holds **{now.text()}**. Loading the demo deletes them all and puts the demo's "
                "metrics, plans, subscriptions and events in their place. Export the workspace first to keep it.")
    left, right = st.columns(2)
    if left.button("Replace with demo", key=KEY + "demo_yes", type="primary", width="stretch",
                   disabled=not auth.can(Action.load_demo)) \
            and auth.allowed(Action.load_demo, audit_action="workspace.demo"):
        _load_demo_now(engine)
        _close(DEMO_DIALOG)
        st.rerun()
    if right.button("Cancel", key=KEY + "demo_no", width="stretch"):
        _close(DEMO_DIALOG)
        st.rerun()


@st.dialog("Reset the workspace?", on_dismiss=lambda: _close(RESET_DIALOG))
def confirm_reset(engine: Engine) -> None:
    now = counts(engine)
    st.markdown(f"This deletes **{now.text()}**, and sets the timezone back to UTC. It cannot be undone.")
    sure = st.checkbox("I understand that everything is deleted", key=KEY + "reset_ack")
    left, right = st.columns(2)
    if left.button("Delete everything", key=KEY + "reset_yes", type="primary", icon=":material/delete_forever:",
                   disabled=not sure or not auth.can(Action.reset_workspace), width="stretch") \
            and auth.allowed(Action.reset_workspace, audit_action="workspace.reset"):
        reset(engine)
        auth.record("workspace.reset", detail=f"deleted {now.text()}")
        _after_change()
        st.session_state[FLASH] = f"Reset: deleted {now.text()}."
        _close(RESET_DIALOG)
        st.rerun()
    if right.button("Cancel", key=KEY + "reset_no", width="stretch"):
        _close(RESET_DIALOG)
        st.rerun()


def _summary(now: Counts) -> None:
    cols = st.columns(5)
    cols[0].metric("Metrics", fmt(now.metrics))
    cols[1].metric("Plans", fmt(now.plans))
    cols[2].metric("Subscriptions", fmt(now.subscriptions))
    cols[3].metric("Events", fmt(now.events))
    cols[4].metric("Timezone", now.timezone)


def demo_note() -> str:
    """Where the demo shows carryover, from the demo's own workspace (no figure typed here)."""
    ws = demo.workspace()
    sub = ws.subscription(demo.UNIBEE)
    plan = ws.plan(sub.plan) if sub else None
    metric = next((m for m in ws.metrics if m.metric_type.value == "limit_recurring"), None)
    quota = plan.quota_for(metric.code) if plan and metric else None
    if quota is None:
        return ""
    return (f"`{demo.UNIBEE}` is on {md(plan.name)}, with {fmt(quota.limit)} {md(metric.name)} a {plan.interval}: "
            "the Timeline page shows its unused credits carrying over.")


def _demo_section(engine: Engine, now: Counts) -> None:
    with st.container(border=True):
        st.subheader("Demo workspace", anchor=False)
        st.markdown(
            "Everything a pricing demo needs, in one click: the quick-template metrics (API Requests, LLM Tokens "
            "by model, Storage GB, Unique Users), Payments and **SMS Credits** (limit recurring, with carryover); "
            "three plans — **Starter**, **Growth**, **Scale** — using standard, graduated, volume, package and "
            "percentage charges, base fees, seats, included credit and SMS quotas; a subscription for every "
            "customer; and simulated usage from "
            f"{demo.span().start:%b %d, %Y} up to now (two whole months and this one so far)."
        )
        st.caption(demo_note())
        may = auth.can(Action.load_demo)
        refused = read_only_reason(engine)  # events read from OpenMeter: the demo's cannot be stored
        if st.button("Load demo workspace", key=KEY + "demo", type="primary", icon=":material/rocket_launch:",
                     disabled=not may or refused is not None,
                     help=md(refused) if refused else None if may else "Loading the demo needs the admin role."):
            if now.empty:
                if not auth.allowed(Action.load_demo, audit_action="workspace.demo"):
                    return
                _load_demo_now(engine)
                st.rerun()
            else:
                st.session_state[DEMO_DIALOG] = True


def _export_section(engine: Engine, now: Counts) -> None:
    with st.container(border=True):
        st.subheader("Export", anchor=False)
        st.caption("The metrics, plans, subscriptions and timezone as one JSON file (events are not included). "
                   "Importing it again gives the same metrics, plans and invoices.")
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        st.download_button("Download workspace JSON", data=export_text(engine), file_name=f"workspace-{stamp}.json",
                           mime="application/json", key=KEY + "export", icon=":material/download:",
                           on_click="ignore", disabled=now.empty)


def _import_section(engine: Engine) -> None:
    with st.container(border=True):
        st.subheader("Import", anchor=False)
        may = auth.can(Action.import_workspace)
        upload = st.file_uploader("Workspace JSON", type=["json"], key=KEY + "upload", disabled=not may,
                                  help='{"timezone", "metrics", "plans", "subscriptions"}: see the contract, §5.'
                                  if may else "Importing a workspace needs the admin role.")
        if upload is None:
            st.caption("Upload a workspace file exported from here or written by hand; nothing changes until you "
                       "press Import.")
            return
        data = upload.getvalue()
        try:
            ws = read_upload(data, upload.name)
        except WorkspaceError as exc:
            st.error(f"**{md(upload.name)}** cannot be imported: {md(exc)}", icon=":material/error:")
            return
        st.success(
            f"**{md(upload.name)}** is a valid workspace: {plural(len(ws.metrics), 'metric')}, "
            f"{plural(len(ws.plans), 'plan')}, {plural(len(ws.subscriptions), 'subscription')}, "
            f"timezone {md(ws.timezone)}.", icon=":material/task:",
        )
        mode = st.radio("Mode", [REPLACE, MERGE], key=KEY + "mode", horizontal=True, captions=[
            "metrics, plans, subscriptions and timezone are replaced; events are kept",
            "kept; the file's codes and customers replace the same ones",
        ])
        if st.button("Import", key=KEY + "import", type="primary", icon=":material/upload:", disabled=not may):
            if import_file(engine, data, name=upload.name, mode=mode):
                st.rerun()


def import_file(engine: Engine, data: bytes, *, name: str, mode: str) -> bool:
    """The Import button's handler: checks the role, imports, records it in the audit log."""
    if not auth.allowed(Action.import_workspace, audit_action="workspace.import", target=name):
        return False
    try:
        ws = import_upload(engine, data, name=name, replace=mode == REPLACE)
    except WorkspaceError as exc:  # the store changed meanwhile in a way the file no longer fits
        st.error(f"Not imported: {md(exc)}", icon=":material/error:")
        return False
    counts_text = (f"{plural(len(ws.metrics), 'metric')}, {plural(len(ws.plans), 'plan')}, "
                   f"{plural(len(ws.subscriptions), 'subscription')}")
    auth.record("workspace.import", target=name, detail=f"{mode.lower()}: {counts_text}, timezone {ws.timezone}")
    _after_change()
    st.session_state[FLASH] = f"Imported {name} ({mode.lower()}): {counts_text}."
    return True


def _imported(message: str) -> None:
    _after_change()
    st.session_state[FLASH] = message


def _timezone_section(engine: Engine, now: Counts) -> None:
    with st.container(border=True):
        st.subheader("Timezone", anchor=False)
        zones = sorted(available_timezones() | {now.timezone})
        st.session_state[KEY + "tz"] = now.timezone  # the stored value, whatever changed it

        def changed() -> None:
            chosen = st.session_state[KEY + "tz"]
            if not auth.allowed(Action.set_timezone, audit_action="workspace.timezone", target=chosen):
                return  # the next run shows the stored timezone again
            plan_store.set_timezone(engine, timezone=chosen)
            state.clear_caches()
            auth.record("workspace.timezone", target=chosen, detail=f"was {now.timezone}")
            st.session_state[FLASH] = f"Timezone set to {chosen}."

        may = auth.can(Action.set_timezone)
        st.selectbox("Workspace timezone", zones, key=KEY + "tz", on_change=changed, disabled=not may,
                     help="Billing periods and bare subscription dates are read in this timezone.")
        st.caption("Periods start at midnight in this timezone; event timestamps without an offset are UTC.")


def _reset_section() -> None:
    with st.container(border=True):
        st.subheader("Reset", anchor=False)
        st.caption("Delete every metric, plan, subscription and event, and start from an empty workspace.")
        st.button("Reset workspace…", key=KEY + "reset", icon=":material/restart_alt:",
                  on_click=lambda: st.session_state.__setitem__(RESET_DIALOG, True),
                  disabled=not auth.can(Action.reset_workspace))


def render(engine: Engine) -> None:
    if flash := st.session_state.pop(FLASH, None):
        st.success(md(flash), icon=":material/check_circle:")
    now = counts(engine)
    _summary(now)
    left, right = st.columns(2)
    with left:
        _demo_section(engine, now)
        _export_section(engine, now)
        _timezone_section(engine, now)
    with right:
        _import_section(engine)
        peers_ui.render_import(engine, after_import=_imported)
        _reset_section()
    if not now.empty:
        row = st.container(horizontal=True)
        row.page_link("pages/plans.py", label="Plans", icon=":material/sell:")
        row.page_link("pages/invoices.py", label="Invoices", icon=":material/receipt_long:")
        row.page_link("pages/timeline.py", label="Timeline", icon=":material/timeline:")
    if st.session_state.get(DEMO_DIALOG):
        confirm_demo(engine)
    elif st.session_state.get(RESET_DIALOG):
        confirm_reset(engine)
