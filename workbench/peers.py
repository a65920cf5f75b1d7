"""The app's side of contract §9: export to Lago / OpenMeter / Stripe / Orb (Developers page),
import Lago / OpenMeter definitions (Workspace page), stored events as CloudEvents or Lago
events (Events page).

Pure helpers (no Streamlit calls) come first so tests can call them; `render_*` draw the parts.
The work is the engine's (`metering.peers`); nothing here computes a translation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from metering import peers, plan_store, store
from metering.peers import cloudevents, lago
from metering.peers.common import Export
from metering.peers.stored import stored_event_batches
from metering.preview import plural
from metering.workspace import Workspace, WorkspaceError, import_workspace, parse_workspace, workspace_from_store
from workbench import state
from workbench.text import md, md_code

KEY = "developers:export:"
IMPORT_KEY = "workspace:peers:"
EVENTS_KEY = "events:export:"
TARGET_LABELS = {"lago": "Lago", "openmeter": "OpenMeter", "stripe": "Stripe", "orb": "Orb"}
SOURCE_LABELS = {"lago": "Lago", "openmeter": "OpenMeter"}
ALL_PLANS = "(every plan)"
EVENT_FORMATS = {"cloudevents": "CloudEvents (JSON Lines)", "lago": "Lago events (JSON Lines)"}
MAX_UPLOAD_BYTES = 20_000_000

# =========================================================================== pure helpers


def build_export(engine: Engine, target: str, plan: str | None) -> Export:
    """The store's workspace (or one plan of it) as `target`'s payloads."""
    return peers.export(workspace_from_store(engine), target, plan=plan)


def compatibility_frame(export: Export) -> pd.DataFrame:
    """The compatibility table: what does not translate first (with why), then what does."""
    rows = export.compatibility()
    frame = pd.DataFrame(rows or [], columns=["item", "status", "detail"])
    order = {"does not translate": 0, "translates": 1}
    frame = frame.sort_values(by="status", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    frame["status"] = frame["status"].map({"translates": "✓ translates", "does not translate": "✗ does not translate"})
    return frame.rename(columns={"item": "Workbench item", "status": "Status", "detail": "In the target / why not"})


def export_text(export: Export) -> str:
    return json.dumps(export.to_json(), indent=2, ensure_ascii=False) + "\n"


def payload_groups(export: Export) -> dict[str, list[tuple[str | None, str]]]:
    """Payload JSON texts by resource kind, in creation order, each with its `ref` placeholder."""
    groups: dict[str, list[tuple[str | None, str]]] = {}
    for res in export.resources:
        groups.setdefault(res.kind, []).append((res.ref, json.dumps(res.payload, indent=2, ensure_ascii=False)))
    return groups


def read_definitions(source: str, files: Sequence[tuple[str, bytes]]) -> Workspace:
    """Uploaded Lago / OpenMeter files → a checked Workspace (raises WorkspaceError naming the
    file, resource and field)."""
    for name, data in files:
        if len(data) > MAX_UPLOAD_BYTES:
            raise WorkspaceError(f"{name} is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB")
    return parse_workspace(peers.import_definitions(source, files))


def import_definitions(engine: Engine, source: str, files: Sequence[tuple[str, bytes]], *, replace: bool) -> Workspace:
    ws = read_definitions(source, files)
    import_workspace(engine, ws, replace=replace)
    state.clear_caches()
    return ws


def events_export_file(engine: Engine, fmt: str, *, batch_size: int = 10_000) -> bytes:
    """Every stored event in `fmt`, converted batch by batch (the store is never one list of
    rows). The file itself is bytes: Streamlit reads a download into memory whatever it is
    given (a spooled file is refused), so the CLI's `events export` is the way for very large
    stores."""
    batches = stored_event_batches(engine, batch_size)
    chunks = cloudevents.cloudevents(batches) if fmt == "cloudevents" else lago.lago_events(batches)
    return b"".join(chunk.encode("utf-8") for chunk in chunks)


# =========================================================================== Developers: export


def render_export(engine: Engine) -> None:
    st.subheader("Export to Lago, OpenMeter, Stripe, Orb")
    st.caption("The metrics and plans as the bodies of each system's create calls, in its field names and amount "
               "units. Whatever the system cannot express is listed with the reason and left out — never "
               "approximated.")
    plans = [p.code for p in plan_store.list_plans(engine)]
    cols = st.columns([1.4, 1])
    target = cols[0].segmented_control("Target", list(TARGET_LABELS), format_func=TARGET_LABELS.get,
                                       key=KEY + "target", default="lago") or "lago"
    chosen = cols[1].selectbox("Plans", [ALL_PLANS, *plans], key=KEY + "plan",
                               help="One plan exports with only the metrics it uses.")
    export = build_export(engine, target, None if chosen == ALL_PLANS else chosen)
    if not export.resources and not export.unsupported:
        st.info("No metrics or plans yet: create some, or load the demo on the Workspace page.", icon=":material/info:")
        return
    lost, done = len(export.unsupported), len(export.translated)
    summary = st.columns(3)
    summary[0].metric("Payloads", len(export.resources))
    summary[1].metric("Translate", done)
    summary[2].metric("Do not translate", lost)
    table = compatibility_frame(export)
    missing = table[table["Status"].str.startswith("✗")]
    fine = table[table["Status"].str.startswith("✓")]
    st.markdown(f"**Compatibility with {TARGET_LABELS[target]}: does not translate ({len(missing)})**")
    # st.table renders its cells as Markdown, and names, units and paths are user text.
    missing, fine = literal_cells(missing), literal_cells(fine)
    if len(missing):  # a static table wraps the reasons: they are the point of this list
        st.table(missing.drop(columns="Status").rename(columns={"In the target / why not": "Why not"}),
                 hide_index=True, border="horizontal")
    else:
        st.caption("Everything translates.")
    with st.expander(f"Translates ({len(fine)})"):
        st.table(fine.drop(columns="Status").rename(columns={"In the target / why not": "Becomes"}),
                 hide_index=True, border="horizontal")
    st.download_button(f"Download {TARGET_LABELS[target]} export (JSON)", data=export_text(export),
                       file_name=f"{target}-export.json", mime="application/json", icon=":material/download:",
                       key=KEY + "download", on_click="ignore")
    st.caption("Create the resources in this order. A value such as `${billable_metric:llm_tokens}` stands for "
               "the id the system gives the resource whose ref it is: replace it before sending. "
               "`metering export --to " + target + "` prints the same document.")
    groups = payload_groups(export)
    if groups:
        tabs = st.tabs([f"{kind} ({len(items)})" for kind, items in groups.items()])
        for tab, items in zip(tabs, groups.values()):
            with tab:
                for ref, body in items:
                    if ref:
                        st.caption(f"ref {md_code(ref)}")
                    st.code(body, language="json")


def literal_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every text cell escaped for st.table, which reads cells as Markdown."""
    return frame.map(lambda v: md(v) if isinstance(v, str) else v)


# =========================================================================== Workspace: import


def render_import(engine: Engine, *, after_import: Callable[[str], None]) -> None:
    """The import part; `after_import(message)` runs after a successful import (the Workspace
    page clears its per-page choices and shows the message), then the page reruns."""
    with st.container(border=True):
        st.subheader("Import from Lago or OpenMeter", anchor=False)
        source = st.segmented_control("From", list(SOURCE_LABELS), format_func=SOURCE_LABELS.get,
                                      key=IMPORT_KEY + "source", default="lago") or "lago"
        uploads = st.file_uploader(f"{SOURCE_LABELS[source]} definitions (JSON)", type=["json"],
                                   accept_multiple_files=True, key=IMPORT_KEY + f"upload:{source}",
                                   help="An export document (metering export --to …) or a JSON array of create "
                                        "payloads (billable metrics and plans, or meters, features and plans).")
        if not uploads:
            st.caption("Bring your current pricing in to change and backtest it. Nothing changes until you press "
                       "Import; what the workbench cannot reproduce is refused with the reason.")
            return
        files = [(u.name, u.getvalue()) for u in uploads]
        try:
            ws = read_definitions(source, files)
        except WorkspaceError as exc:
            st.error(f"Cannot be imported: {md(exc)}", icon=":material/error:")
            return
        st.success(f"Valid {SOURCE_LABELS[source]} definitions: {plural(len(ws.metrics), 'metric')} "
                   f"({md(', '.join(m.code for m in ws.metrics)) or 'none'}) and {plural(len(ws.plans), 'plan')} "
                   f"({md(', '.join(p.code for p in ws.plans)) or 'none'}).", icon=":material/task:")
        if source == "lago":
            st.caption("Lago billable metrics have no unit: they come in with the unit `units` (edit it afterwards).")
        replace = st.radio("Mode", ["Replace", "Merge"], key=IMPORT_KEY + "mode", horizontal=True, captions=[
            "metrics, plans, subscriptions and timezone are replaced; events are kept",
            "kept; the file's codes replace the same ones",
        ]) == "Replace"
        if st.button("Import definitions", key=IMPORT_KEY + "import", type="primary", icon=":material/upload:"):
            try:
                import_definitions(engine, source, files, replace=replace)
            except WorkspaceError as exc:
                st.error(f"Not imported: {md(exc)}", icon=":material/error:")
                return
            after_import(f"Imported {SOURCE_LABELS[source]} definitions ({'replace' if replace else 'merge'}): "
                         f"{plural(len(ws.metrics), 'metric')}, {plural(len(ws.plans), 'plan')}.")
            st.rerun()


# =========================================================================== Events: export


def render_events_export(engine: Engine) -> None:
    count = store.event_count(engine)
    row = st.container(horizontal=True, vertical_alignment="bottom")
    fmt = row.selectbox("Export stored events as", list(EVENT_FORMATS), format_func=EVENT_FORMATS.get,
                        key=EVENTS_KEY + "format", width=300)
    row.download_button(f"Download {plural(count, 'event')}", data=lambda: events_export_file(engine, fmt),
                        file_name=f"events-{fmt}.jsonl", mime="application/x-ndjson", icon=":material/download:",
                        key=EVENTS_KEY + "download", on_click="ignore", disabled=count == 0)
    st.caption("CloudEvents: type = event name, subject = customer, id = idempotency key, data = properties. "
               "Lago: one POST /api/v1/events body a line; external_subscription_id is the customer id, code the "
               "event name, nested properties become dotted keys. `metering events export --format …` streams the "
               "same.")
