"""The Events page: upload files, simulate events, browse what is stored, delete imports.

Pure helpers (no Streamlit) come first so tests can call them directly: upload handling,
simulation plans built from metrics / templates / an event name, the paged SQL browser and
the list of imports. The `render_*` functions below draw the page's sections.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import text
from sqlalchemy.engine import Engine

from metering.engine import read_only_reason, stored_events
from metering.engine.interface import EventQuery
from metering import csvsafe, importing, metrics, simulate, store
from metering.access import Action
from metering.ingest import UnreadableFile
from metering.importing import Progress
from metering.models import Aggregation, MetricPublic
from workbench import auth, charts, state
from workbench.text import md, md_code

KEY = "events:"  # prefix of this page's session-state keys
UPLOAD_RESULTS = KEY + "upload_results"
UPLOAD_ROUND = KEY + "upload_round"
SIM_PREVIEW = KEY + "sim_preview"
SIM_RESULT = KEY + "sim_result"
CONFIRM_DELETE = KEY + "confirm_delete"
CONFIRM_EVENT = KEY + "confirm_delete_event"
DELETED = KEY + "deleted"
EVENT_DELETED = KEY + "event_deleted"
PAGE = KEY + "browse_page"

FILE_TYPES = ["csv", "jsonl", "ndjson", "json", "txt"]
MAX_UPLOAD_MB = 1024  # .streamlit/config.toml server.maxUploadSize: larger files come by path
MAX_SIMULATED_EVENTS = 5_000_000  # beyond this, generate files with metering.simulate instead
PREVIEW_ROWS = 20
MAX_CHOICES = 100_000


# =========================================================================== uploads


@dataclass
class FileOutcome:
    """What happened to one uploaded file: counts and rejected rows, or why it was unreadable."""

    file: str
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # line, field, reason
    unreadable: str | None = None
    import_id: int | None = None
    future: int = 0  # valid events dated after the import (kept; said so, a year typo shows)

    @property
    def all_rejected(self) -> bool:
        """Every row of the file was rejected: nothing was stored."""
        return not self.unreadable and self.rejected > 0 and self.accepted == 0 and self.duplicates == 0


def import_uploads(
    engine: Engine,
    files: Sequence[tuple[str, bytes]],
    *,
    on_progress: Callable[[str, Progress], None] | None = None,
) -> list[FileOutcome]:
    """Import each (name, bytes) as its own import; an unreadable file stores nothing."""
    outcomes = []
    for name, data in files:
        callback = (lambda p, n=name: on_progress(n, p)) if on_progress else None
        try:
            result = importing.import_bytes(engine, data, name=name, on_progress=callback)
        except UnreadableFile as exc:
            outcomes.append(FileOutcome(name, unreadable=str(exc)))
            continue
        outcomes.append(FileOutcome(
            name, result.accepted, result.duplicates, result.rejected,
            [(e.line, e.field, e.reason) for e in result.errors], None, result.import_id, result.future,
        ))
    return outcomes


def summary_table(outcomes: Sequence[FileOutcome]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"File": o.file, "Accepted": o.accepted, "Duplicates": o.duplicates, "Rejected": o.rejected,
          "In the future": o.future, "Status": _status(o)} for o in outcomes],
        columns=["File", "Accepted", "Duplicates", "Rejected", "In the future", "Status"],
    )


def _status(o: FileOutcome) -> str:
    if o.unreadable:
        return "unreadable: nothing stored"
    if o.all_rejected:
        return "every row rejected: nothing stored"
    return "imported"


def rejected_table(outcomes: Sequence[FileOutcome]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"file": o.file, "line": line, "field": fld, "reason": reason} for o in outcomes for line, fld, reason in o.errors],
        columns=["file", "line", "field", "reason"],
    )


def rejected_csv(outcomes: Sequence[FileOutcome]) -> bytes:
    # File names and reasons quote the file's own text: written spreadsheet-safe.
    return csvsafe.frame_to_csv(rejected_table(outcomes)).encode("utf-8")


# =========================================================================== simulation plans

NUMERIC_KINDS = ("int", "decimal")
DIST_OPTIONS = (*simulate.DISTRIBUTIONS, "values")  # "values": a weighted list of numbers
_RANGE = re.compile(r"^(.*?)\{(\d+)\.\.(\d+)\}(.*)$")


def parse_choices(spec: str) -> tuple[tuple[str, ...], tuple[float, ...] | None]:
    """`"gpt-4o:3, claude:1, llama"` → values and weights (weight 1 when left out).

    `user_{001..300}` expands to user_001 … user_300 (zero-padded as written). A weight is
    the text after the last `:` when it reads as a number ≥ 0 (so `a:b` stays a value).
    """
    values: list[str] = []
    weights: list[float] = []
    weighted = False
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        weight = 1.0
        head, sep, tail = item.rpartition(":")
        if sep and head.strip():
            try:
                parsed = float(tail)
            except ValueError:
                parsed = None
            if parsed is not None:
                if not math.isfinite(parsed) or parsed < 0:
                    raise ValueError(f"weight '{tail.strip()}' of '{head.strip()}' must be a number ≥ 0")
                weight, weighted, item = parsed, True, head.strip()
        match = _RANGE.match(item)
        if match:
            prefix, lo_text, hi_text, suffix = match.groups()
            lo, hi = int(lo_text), int(hi_text)
            if hi < lo:
                raise ValueError(f"range {{{lo_text}..{hi_text}}} runs backwards")
            if hi - lo + 1 + len(values) > MAX_CHOICES:
                raise ValueError(f"at most {MAX_CHOICES:,} values")
            width = len(lo_text) if lo_text.startswith("0") and len(lo_text) > 1 else 0
            expanded = [f"{prefix}{i:0{width}d}{suffix}" for i in range(lo, hi + 1)]
        else:
            expanded = [item]
        values.extend(expanded)
        weights.extend([weight] * len(expanded))
    if not values:
        raise ValueError("give at least one value (comma-separated)")
    if len(set(values)) != len(values):
        dupes = sorted({v for v in values if values.count(v) > 1})
        raise ValueError(f"repeated value(s): {', '.join(dupes[:5])}")
    if weighted and sum(weights) <= 0:
        raise ValueError("weights must have a positive sum")
    return tuple(values), (tuple(weights) if weighted else None)


def format_choices(values: Sequence[str], weights: Sequence[float] | None = None) -> str:
    if weights is None:
        return ", ".join(values)
    return ", ".join(f"{v}:{_short_number(w)}" for v, w in zip(values, weights))


def _short_number(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:g}"


@dataclass
class PropertyPlan:
    """One simulated property, as the form shows it (every field editable)."""

    name: str
    role: str  # why it is there: "value of llm_tokens (sum)", "group by", "extra", …
    kind: str = "int"  # int · decimal · choice
    dist: str = "lognormal"  # simulate.DISTRIBUTIONS or "values"
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    sigma: float | None = None
    decimals: int = 2
    choices: str = ""
    per_customer: bool = False
    customer_sigma: float = 0.0

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS

    def to_spec(self) -> simulate.PropertySpec:
        if self.numeric and self.dist == "values" or not self.numeric:
            values, weights = parse_choices(self.choices)
            return simulate.PropertySpec(
                self.name, kind=self.kind, values=values, weights=weights,  # type: ignore[arg-type]
                decimals=self.decimals, per_customer=self.per_customer and not self.numeric,
            )
        return simulate.PropertySpec(
            self.name, kind=self.kind, dist=self.dist, low=self.low, high=self.high,  # type: ignore[arg-type]
            mean=self.mean, sigma=self.sigma, decimals=self.decimals, customer_sigma=self.customer_sigma,
        )


@dataclass
class StreamPlan:
    """The events of one event name and the properties they carry."""

    event_name: str
    properties: list[PropertyPlan]
    metrics: list[str] = field(default_factory=list)


def _from_property_spec(prop: simulate.PropertySpec, role: str) -> PropertyPlan:
    if prop.values:
        return PropertyPlan(
            prop.name, role, kind=prop.kind, dist="values" if prop.kind != "choice" else "lognormal",
            decimals=prop.decimals, choices=format_choices(prop.values, prop.weights), per_customer=prop.per_customer,
        )
    return PropertyPlan(
        prop.name, role, kind=prop.kind, dist=prop.dist, low=prop.low, high=prop.high, mean=prop.mean,
        sigma=prop.sigma, decimals=prop.decimals, customer_sigma=prop.customer_sigma,
    )


def _template_by_event() -> dict[str, str]:
    return {simulate.template_spec(key).event_name: key for key in simulate.TEMPLATES}


def template_plan(template: str) -> StreamPlan:
    """The simulator's realistic defaults for a quick template (simulate.template_spec)."""
    spec = simulate.template_spec(template)
    return StreamPlan(spec.event_name, [_from_property_spec(p, "template") for p in spec.properties])


def template_defaults(template: str) -> tuple[int, str]:
    """(daily volume, shape) the template suggests."""
    spec = simulate.template_spec(template)
    return spec.daily_volume, spec.shape


def _leaf(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", path.rsplit(".", 1)[-1]) or "value"


def _default_number(name: str, role: str) -> PropertyPlan:
    return PropertyPlan(name, role, kind="int", dist="lognormal", mean=100, sigma=0.8, low=0)


def _default_label(name: str, role: str) -> PropertyPlan:
    leaf = _leaf(name)
    return PropertyPlan(name, role, kind="choice", choices=f"{leaf}-a, {leaf}-b, {leaf}-c")


def _default_distinct(name: str, role: str) -> PropertyPlan:
    return PropertyPlan(name, role, kind="choice", choices=f"{_leaf(name)}_{{001..200}}")


def plans_for_metrics(chosen: Sequence[MetricPublic]) -> list[StreamPlan]:
    """One stream per event name the metrics read, carrying every property they read.

    A value property becomes a number (the template's distribution when the event name is a
    template's); distinct-by a pool of ids; a filter key the metric's allowed values (so every
    event passes the filter; add other values to see filtering at work); a group-by label a
    short list of values. The template's other properties come along as extras.
    """
    by_template = _template_by_event()
    streams: dict[str, StreamPlan] = {}
    for metric in chosen:
        stream = streams.setdefault(metric.event_name, StreamPlan(metric.event_name, []))
        stream.metrics.append(metric.code)
        template = {p.name: p for p in simulate.template_spec(by_template[metric.event_name]).properties} if metric.event_name in by_template else {}
        have = {p.name: p for p in stream.properties}

        def add(plan: PropertyPlan, *, stronger: bool = False) -> None:
            old = have.get(plan.name)
            if old is None:
                stream.properties.append(plan)
                have[plan.name] = plan
            elif stronger:  # a filter's allowed values win over anything else
                stream.properties[stream.properties.index(old)] = plan
                have[plan.name] = plan
            elif plan.role not in old.role:
                old.role += f"; {plan.role}"

        agg = metric.aggregation if isinstance(metric.aggregation, Aggregation) else Aggregation(metric.aggregation)
        label = f"{metric.code} ({agg.value})"
        if metric.value_property and agg not in (Aggregation.count, Aggregation.unique_count):
            role = f"value of {label}"
            base = template.get(metric.value_property)
            add(_from_property_spec(base, role) if base is not None and base.kind != "choice" else _default_number(metric.value_property, role))
        if metric.distinct_by and agg == Aggregation.unique_count:
            role = f"distinct by ({label})"
            base = template.get(metric.distinct_by)
            add(_from_property_spec(base, role) if base is not None else _default_distinct(metric.distinct_by, role))
        for key, allowed in (metric.filters or {}).items():
            add(PropertyPlan(key, f"filter ({metric.code})", kind="choice", choices=format_choices([str(v) for v in allowed])), stronger=True)
        for path in metric.group_by or []:
            role = f"group by ({metric.code})"
            base = template.get(path)
            add(_from_property_spec(base, role) if base is not None else _default_label(path, role))
        for name, prop in template.items():
            if name not in have:
                add(_from_property_spec(prop, "extra (template)"))
    return list(streams.values())


def plan_for_event(event_name: str, numbers: str = "", labels: str = "") -> StreamPlan:
    """A stream from an event name and comma-separated numeric and label property names."""
    props: list[PropertyPlan] = []
    seen: set[str] = set()
    for name in (n.strip() for n in numbers.split(",")):
        if name and name not in seen:
            seen.add(name)
            props.append(_default_number(name, "number"))
    for name in (n.strip() for n in labels.split(",")):
        if name and name not in seen:
            seen.add(name)
            props.append(_default_label(name, "label"))
    return StreamPlan(event_name.strip(), props)


@dataclass(frozen=True)
class Settings:
    customers: int
    start: date
    days: int
    daily_volume: int
    shape: str
    seed: int


def build_specs(streams: Sequence[StreamPlan], settings: Settings) -> list[simulate.SimulationSpec]:
    """SimulationSpecs for the streams; ValueError names the stream and property at fault."""
    if not streams:
        raise ValueError("choose at least one metric, a template or an event name")
    start = datetime(settings.start.year, settings.start.month, settings.start.day, tzinfo=UTC)
    specs = []
    for stream in streams:
        props = []
        for plan in stream.properties:
            try:
                props.append(plan.to_spec())
            except ValueError as exc:
                message = str(exc)
                prefix = f"property {plan.name}: "
                raise ValueError(f"{stream.event_name} · {plan.name}: {message.removeprefix(prefix)}") from None
        try:
            specs.append(simulate.SimulationSpec(
                event_name=stream.event_name, customers=settings.customers, start=start, days=settings.days,
                daily_volume=settings.daily_volume, shape=settings.shape,  # type: ignore[arg-type]
                properties=tuple(props), seed=settings.seed, timestamp_precision="ms",
            ))
        except ValueError as exc:
            raise ValueError(f"{stream.event_name or '(no event name)'}: {exc}") from None
    total = sum(s.total_events for s in specs)
    if total > MAX_SIMULATED_EVENTS:
        raise ValueError(
            f"{total:,} events is more than the app simulates at once ({MAX_SIMULATED_EVENTS:,}); "
            "lower the daily volume or the days, or write files with metering.simulate"
        )
    return specs


def simulation_source(specs: Sequence[simulate.SimulationSpec]) -> str:
    names = ", ".join(s.event_name for s in specs)
    first = specs[0]
    total = sum(s.total_events for s in specs)
    return (
        f"simulation: {names} · {total:,} events · {first.customers} customers · "
        f"{first.start:%Y-%m-%d} + {first.days} days · {first.shape} · seed {first.seed}"
    )


def daily_counts(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Events per UTC day and event name of simulated frames (timestamps are ISO …Z text)."""
    parts = [
        df.assign(day=df["timestamp"].str.slice(0, 10)).groupby(["day", "event_name"], sort=True).size().rename("events").reset_index()
        for df in frames if len(df)
    ]
    if not parts:
        return pd.DataFrame({"day": [], "event_name": [], "events": []})
    out = pd.concat(parts, ignore_index=True)
    out["day"] = pd.to_datetime(out["day"]).dt.date
    return out


# =========================================================================== stored events


def format_ts(ts_us: pd.Series) -> pd.Series:
    """UTC epoch µs → `2026-10-03 12:00:00 UTC` (fraction shown only when there is one)."""
    ts_us = pd.Series(ts_us, dtype="int64")
    stamps = pd.to_datetime(ts_us, unit="us", utc=True)
    base = stamps.dt.strftime("%Y-%m-%d %H:%M:%S")
    micros = (ts_us % 1_000_000).astype("int64")
    frac = micros.map(lambda us: "" if us == 0 else ("." + f"{us:06d}".rstrip("0")))
    return base + frac + " UTC"


def count_events(engine: Engine, q: EventQuery) -> int:
    return stored_events(engine).count_events(q)


def query_events(engine: Engine, q: EventQuery, *, limit: int, offset: int) -> pd.DataFrame:
    """One page of stored events, newest first (only that page's texts are read)."""
    df = stored_events(engine).browse(q, limit=int(limit), offset=int(offset))
    df.insert(1, "timestamp", format_ts(df["ts_us"]) if len(df) else pd.Series(dtype=str))
    return df


def stored_event_names(engine: Engine) -> list[str]:
    return sorted(name for name, _ in stored_events(engine).event_name_counts())


def stored_days(engine: Engine) -> tuple[date, date] | None:
    bounds = stored_events(engine).time_bounds()
    if bounds is None:
        return None
    first, last = format_ts(pd.Series(list(bounds))).str.slice(0, 10)
    return date.fromisoformat(first), date.fromisoformat(last)


def list_imports(engine: Engine) -> pd.DataFrame:
    """Every import, newest first, with the counts it recorded (accepted = events it added)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT id, source, created_at, accepted, duplicates, rejected FROM import_batch ORDER BY id DESC"
        )).all()
    df = pd.DataFrame(rows, columns=["id", "source", "created_at", "accepted", "duplicates", "rejected"])
    if len(df):
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="mixed").dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    return df


def delete_import(engine: Engine, import_id: int) -> int:
    """Delete what one import added; the app's caches are dropped afterwards."""
    deleted = store.delete_import(engine, import_id)
    state.clear_caches()
    return deleted


def delete_event(engine: Engine, idempotency_key: str) -> bool:
    """Delete one stored event (by its unique key); the app's caches are dropped afterwards."""
    deleted = store.delete_event(engine, idempotency_key)
    state.clear_caches()
    return deleted


def event_by_key(engine: Engine, idempotency_key: str) -> dict[str, Any] | None:
    """One stored event as the API takes it (timestamp in UTC), with its import, or None."""
    found = stored_events(engine).find_event(idempotency_key)
    if found is None:
        return None
    stamp = format_ts(pd.Series([found["ts_us"]])).iloc[0].removesuffix(" UTC").replace(" ", "T") + "Z"
    return {"event_name": found["event_name"], "customer_id": found["customer_id"], "timestamp": stamp,
            "idempotency_key": found["idempotency_key"], "properties": json.loads(found["properties"]),
            "import": found["import_id"]}


# =========================================================================== rendering: upload


def _progress_reporter(bar: Any) -> Callable[[str, Progress], None]:
    def report(name: str, p: Progress) -> None:
        if p.unit == "bytes":  # a file read and stored a block at a time
            mb = lambda n: f"{n / 1e6:,.1f} MB"  # noqa: E731
            text_ = f"{md(name)}: stored all {mb(p.total)}" if p.stage == "done" else f"{md(name)}: read and stored {mb(p.done)} of {mb(p.total)}"
        elif p.stage == "parsed":
            text_ = f"{md(name)}: read {p.total:,} valid events, storing…"
        elif p.stage == "done":
            text_ = f"{md(name)}: stored {p.total:,} events"
        else:
            text_ = f"{md(name)}: stored {p.done:,} of {p.total:,} events"
        bar.progress(p.fraction, text=text_)

    return report


def server_file_problem(text_: str) -> str | None:
    """Why a path typed for "import from the server" cannot be imported (None: it can)."""
    if not text_.strip():
        return "Enter the path of a file on the server, e.g. /data/usage/2026-10.csv."
    path = Path(text_.strip()).expanduser()
    if not path.exists():
        return f"There is no file at {path} on the server."
    if not path.is_file():
        return f"{path} is a folder: enter the path of one file."
    if path.suffix.lower().lstrip(".") not in FILE_TYPES:
        return f"{path.name} is not a .csv, .jsonl, .ndjson, .json or .txt file."
    return None


def import_server_file(engine: Engine, text_: str, *, on_progress: Callable[[str, Progress], None] | None = None) -> FileOutcome:
    """Import a file that is already on the server, a block at a time (any size: memory stays
    bounded), as one import."""
    path = Path(text_.strip()).expanduser()
    callback = (lambda p: on_progress(path.name, p)) if on_progress else None
    try:
        result = importing.import_path(engine, path, on_progress=callback)
    except UnreadableFile as exc:
        return FileOutcome(path.name, unreadable=str(exc))
    return FileOutcome(path.name, result.accepted, result.duplicates, result.rejected,
                       [(e.line, e.field, e.reason) for e in result.errors], None, result.import_id)


def run_uploads(engine: Engine, files: Sequence[tuple[str, bytes]]) -> list[FileOutcome]:
    """Import the files with a progress bar and keep the outcomes in session state."""
    bar = st.progress(0.0, text=f"Reading {len(files)} file(s)…")
    outcomes = import_uploads(engine, files, on_progress=_progress_reporter(bar))
    bar.empty()
    st.session_state[UPLOAD_RESULTS] = [o.__dict__ for o in outcomes]
    return outcomes


def import_files(engine: Engine, files: Sequence[tuple[str, bytes]]) -> list[FileOutcome] | None:
    """The Import button's handler: checks the role, imports, records each file in the audit log."""
    if not auth.allowed(Action.import_events, audit_action="events.import", target=", ".join(n for n, _ in files)):
        return None
    outcomes = run_uploads(engine, files)
    for o in outcomes:
        auth.record("events.import", target=o.file, detail=(
            f"unreadable: {o.unreadable}" if o.unreadable else
            f"import #{o.import_id}: {o.accepted:,} accepted, {o.duplicates:,} duplicates, {o.rejected:,} rejected"))
    return outcomes


def upload_outcomes() -> list[FileOutcome]:
    return [FileOutcome(**d) for d in st.session_state.get(UPLOAD_RESULTS, [])]


def render_read_only(engine: Engine) -> bool:
    """Say so when events are read from a table the workbench does not write (OpenMeter)."""
    refused = read_only_reason(engine)
    if refused:
        st.info(md(refused), icon=":material/lock:")
    return bool(refused)


def render_upload(engine: Engine) -> None:
    if render_read_only(engine):
        return
    st.caption(
        "CSV (header row with event_name, customer_id, timestamp; other columns become properties), "
        "JSON Lines (one event a line) or JSON (an array of events). Bad rows are reported, good rows stored; "
        "importing the same events again adds nothing."
    )
    round_ = st.session_state.setdefault(UPLOAD_ROUND, 0)
    may = auth.can(Action.import_events)
    uploaded = st.file_uploader(
        "Event files", type=FILE_TYPES, accept_multiple_files=True, key=f"{KEY}uploader:{round_}", disabled=not may,
        help=None if may else "Importing events needs the editor role.",
    )
    if st.button("Import", type="primary", disabled=not uploaded or not may, key=KEY + "import"):
        if import_files(engine, [(f.name, f.getvalue()) for f in uploaded or []]) is None:
            return
        st.session_state[UPLOAD_ROUND] = round_ + 1  # a fresh uploader: the same click imports once
        st.rerun()
    with st.expander("Import a large file that is on the server", icon=":material/dns:"):
        st.caption(
            f"Uploads go through the browser and are held in memory (up to {MAX_UPLOAD_MB:,} MB). A file of any size "
            "that is already on the server is read and stored a block at a time instead; so is "
            "`metering import FILE` on the command line, also while the app runs."
        )
        typed = st.text_input("Path on the server", key=KEY + "server_path", placeholder="/data/usage/2026-10.csv")
        problem = server_file_problem(typed) if typed else None
        if problem and typed:
            st.error(problem, icon=":material/error:")
        if st.button("Import from path", disabled=not typed or problem is not None, key=KEY + "import_path"):
            bar = st.progress(0.0, text="Checking the file…")
            outcome = import_server_file(engine, typed, on_progress=_progress_reporter(bar))
            bar.empty()
            st.session_state[UPLOAD_RESULTS] = [outcome.__dict__]
            st.rerun()
    render_upload_results(upload_outcomes())


def render_upload_results(outcomes: Sequence[FileOutcome]) -> None:
    if not outcomes:
        return
    for o in outcomes:
        if o.unreadable:
            st.error(f"Could not read **{md(o.file)}**: {md(o.unreadable)}. Nothing from this file was stored.",
                     icon=":material/error:")
        elif o.all_rejected:
            st.error(f"Nothing imported from **{md(o.file)}**: all {o.rejected:,} rows were rejected (see the reasons "
                     "below).", icon=":material/error:")
    readable = [o for o in outcomes if not o.unreadable and not o.all_rejected]
    if readable:
        total = {k: sum(getattr(o, k) for o in readable) for k in ("accepted", "duplicates", "rejected", "future")}
        text_ = (f"Imported {len(readable)} file(s): {total['accepted']:,} accepted, "
                 f"{total['duplicates']:,} duplicate(s), {total['rejected']:,} rejected.")
        if total["rejected"]:  # some rows are missing: not an all-clear
            st.warning(text_ + " The rejected rows are listed below.", icon=":material/warning:")
        else:
            st.success(text_, icon=":material/check_circle:")
        if total["future"]:
            st.warning(
                f"{total['future']:,} of the imported events are dated after now (planned usage, or a wrong year?). "
                "They count in the periods they fall in; delete a wrong one under Stored events.",
                icon=":material/update:",
            )
    st.dataframe(summary_table(outcomes), hide_index=True, key=KEY + "summary", column_config={
        c: st.column_config.NumberColumn(c, format="localized") for c in ("Accepted", "Duplicates", "Rejected", "In the future")
    })
    rejected = rejected_table(outcomes)
    if len(rejected):
        st.markdown(f"**Rejected rows** ({len(rejected):,}; line 1 is the first line of the file)")
        st.dataframe(
            rejected, hide_index=True, key=KEY + "rejected",
            column_config={"line": st.column_config.NumberColumn("line", format="%d"), "reason": st.column_config.TextColumn("reason", width="large")},
        )
        st.download_button(
            "Download rejected rows (CSV)", rejected_csv(outcomes), file_name="rejected_rows.csv",
            mime="text/csv", icon=":material/download:", key=KEY + "download_rejected",
        )


# =========================================================================== rendering: simulator


def _sim_key(*parts: str) -> str:
    return KEY + "sim:" + ":".join(parts)


def _source_streams(engine: Engine) -> tuple[list[StreamPlan], str | None]:
    """The streams the chosen source gives, and the chosen template's key if any."""
    available = metrics.list_metrics(engine)
    source = st.radio(
        "Simulate events for", ["Metrics", "Quick template", "Event name"], index=0 if available else 1,
        horizontal=True, key=_sim_key("source"),
    )
    if source == "Metrics":
        if not available:
            st.info("No metrics yet: create one on the Metric editor page, or use a quick template or an event name.")
            return [], None
        by_code = {m.code: m for m in available}
        chosen = st.multiselect(
            "Metrics", list(by_code), default=list(by_code)[:1], key=_sim_key("metrics"),
            format_func=lambda c: f"{by_code[c].name} ({c}: {by_code[c].aggregation.value} of {by_code[c].event_name})",
        )
        return plans_for_metrics([by_code[c] for c in chosen]), None
    if source == "Quick template":
        names = {k: metrics.TEMPLATES[k].name if k in metrics.TEMPLATES else k for k in simulate.TEMPLATES}
        key = st.selectbox("Template", list(names), format_func=names.get, key=_sim_key("template"))
        return [template_plan(key)], key
    cols = st.columns(3)
    event = cols[0].text_input("Event name", value="my.event", key=_sim_key("event_name"))
    numbers = cols[1].text_input("Numeric properties (comma-separated)", value="", key=_sim_key("numbers"))
    labels = cols[2].text_input("Label properties (comma-separated)", value="", key=_sim_key("labels"))
    return [plan_for_event(event, numbers, labels)], None


_PARAMS = {  # the parameters each distribution reads, with their labels
    "uniform": [("low", "min"), ("high", "max")],
    "normal": [("mean", "mean"), ("sigma", "σ"), ("low", "min"), ("high", "max")],
    "lognormal": [("mean", "median"), ("sigma", "σ (log)"), ("low", "min"), ("high", "max")],
    "poisson": [("mean", "rate"), ("low", "min"), ("high", "max")],
    "constant": [("mean", "value")],
}


def _property_form(stream: StreamPlan, plan: PropertyPlan) -> PropertyPlan:
    """One row of widgets for a property; the row's layout follows its current kind."""
    key = lambda f: _sim_key("p", stream.event_name, plan.name, f)  # noqa: E731
    kinds = ["int", "decimal", "choice"]
    kind_now = st.session_state.get(key("kind"), plan.kind)
    dist_now = st.session_state.get(key("dist"), plan.dist)
    decimal = [1] if kind_now == "decimal" else []
    if kind_now == "choice":
        cols = st.columns([1.8, 1.5, 4.6, 1.9], vertical_alignment="bottom")
    elif dist_now == "values":
        cols = st.columns([1.8, 1.5, 1.7, 5 - len(decimal), *decimal], vertical_alignment="bottom")
    else:
        cols = st.columns([1.8, 1.5, 1.7, 1.2, 1.2, 1.2, 1.2, *decimal], vertical_alignment="bottom")
    cols[0].markdown(f"{md_code(plan.name)}  \n:small[:gray[{md(plan.role)}]]")
    kind = cols[1].selectbox("Kind", kinds, index=kinds.index(plan.kind), key=key("kind"))
    plan = replace(plan, kind=kind)
    if kind == "choice":
        plan.choices = cols[2].text_input(
            "Values", value=plan.choices or f"{_leaf(plan.name)}-a, {_leaf(plan.name)}-b", key=key("choices"),
            help="Comma-separated; optional weights as value:weight; ranges like user_{001..200}. "
                 "Per customer: each customer gets one of them for all its events (e.g. its region).",
        )
        plan.per_customer = cols[3].checkbox("Per customer", value=plan.per_customer, key=key("per_customer"))
        return plan
    index = DIST_OPTIONS.index(plan.dist) if plan.dist in DIST_OPTIONS else 0
    plan.dist = cols[2].selectbox("Distribution", DIST_OPTIONS, index=index, key=key("dist"))
    if plan.dist == "values":
        plan.choices = cols[3].text_input("Values", value=plan.choices or "1, 2, 3", key=key("values"),
                                          help="Numbers, comma-separated; optional weights as value:weight.")
    else:
        for col, (name, label) in zip(cols[3:], _PARAMS[plan.dist]):
            current = getattr(plan, name)
            setattr(plan, name, col.number_input(
                label, value=None if current is None else float(current), key=key(name), placeholder="–", format="%g"
            ))
    if kind == "decimal":
        plan.decimals = int(cols[-1].number_input("Decimals", min_value=0, max_value=9, value=plan.decimals, step=1, key=key("decimals")))
    return plan


def render_simulator(engine: Engine) -> None:
    if render_read_only(engine):
        return
    streams, template = _source_streams(engine)
    volume_default, shape_default = template_defaults(template) if template else (1000, "steady")
    preset = template or "custom"  # a template brings its own volume and shape
    top, bottom = st.columns(3), st.columns(3)
    customers = top[0].number_input("Customers", min_value=1, max_value=100_000, value=30, step=1, key=_sim_key("customers"))
    # Default: the 30 whole UTC days before today, a history that ends now (not a month ahead).
    today = datetime.now(UTC).date()
    start = top[1].date_input("Start (UTC)", value=today - timedelta(days=30), key=_sim_key("start"))
    days = top[2].number_input("Days", min_value=1, max_value=366, value=30, step=1, key=_sim_key("days"))
    volume = bottom[0].number_input("Events per day", min_value=0, max_value=MAX_SIMULATED_EVENTS, value=volume_default, step=100, key=_sim_key("volume", preset))
    shapes = list(simulate.SHAPES)
    shape_labels = {"steady": "steady", "growth": "growth", "spiky": "spiky", "weekly": "weekly season"}
    shape = bottom[1].selectbox("Shape", shapes, index=shapes.index(shape_default), format_func=shape_labels.get, key=_sim_key("shape", preset))
    seed = bottom[2].number_input("Seed", min_value=0, value=0, step=1, key=_sim_key("seed"))

    edited: list[StreamPlan] = []
    for stream in streams:
        title = f"Properties of {md_code(stream.event_name or '…')}" + (f" (read by {md(', '.join(stream.metrics))})" if stream.metrics else "")
        with st.expander(title, expanded=True):
            if not stream.properties:
                st.caption("No properties: the events carry only name, customer and time.")
            props = [_property_form(stream, p) for p in stream.properties]
        edited.append(StreamPlan(stream.event_name, props, stream.metrics))

    settings = Settings(int(customers), start, int(days), int(volume), shape, int(seed))
    try:
        specs = build_specs(edited, settings)
    except ValueError as exc:
        st.warning(md(exc), icon=":material/warning:")
        specs = []
    if specs:
        st.caption(f"{sum(s.total_events for s in specs):,} events from {specs[0].start:%Y-%m-%d} to "
                   f"{specs[0].end - timedelta(days=1):%Y-%m-%d} (UTC).")
    buttons = st.container(horizontal=True)
    preview = buttons.button("Preview sample", disabled=not specs, key=_sim_key("preview"), icon=":material/visibility:")
    may = auth.can(Action.simulate)
    insert = buttons.button("Insert", type="primary", disabled=not specs or not may, key=_sim_key("insert"),
                            icon=":material/database_upload:", help=None if may else "Inserting events needs the editor role.")
    if preview and specs:
        frames = [simulate.simulate(s) for s in specs]
        st.session_state[SIM_PREVIEW] = {
            "specs": repr(specs),
            "heads": [(s.event_name, f.head(PREVIEW_ROWS)) for s, f in zip(specs, frames)],
            "daily": daily_counts(frames),
            "total": sum(len(f) for f in frames),
        }
    if insert and specs:
        insert_simulation(engine, specs)
    render_preview(repr(specs))
    result = st.session_state.get(SIM_RESULT)
    if result:
        st.success(
            f"Inserted {result['accepted']:,} events ({result['duplicates']:,} duplicates) as import "
            f"#{result['import_id']}: {md(result['source'])}", icon=":material/check_circle:",
        )
        if result.get("future"):
            st.warning(f"{result['future']:,} of them are dated after now: they count in the periods they fall in.",
                       icon=":material/update:")


def insert_simulation(engine: Engine, specs: Sequence[simulate.SimulationSpec]) -> importing.ImportResult | None:
    source = simulation_source(specs)
    if not auth.allowed(Action.simulate, audit_action="events.simulate", target=source):
        return None
    bar = st.progress(0.0, text="Simulating…")
    frames = [simulate.simulate(s) for s in specs]
    bar.progress(0.0, text=f"Validating {sum(len(f) for f in frames):,} events…")
    result = importing.import_frames(
        engine, frames, source=source, on_progress=lambda p: _progress_reporter(bar)("simulation", p)
    )
    bar.empty()
    st.session_state[SIM_RESULT] = {
        "accepted": result.accepted, "duplicates": result.duplicates, "import_id": result.import_id, "source": source,
        "future": result.future,
    }
    auth.record("events.simulate", target=source,
                detail=f"import #{result.import_id}: {result.accepted:,} accepted, {result.duplicates:,} duplicates")
    return result


def render_preview(current: str) -> None:
    preview = st.session_state.get(SIM_PREVIEW)
    if not preview:
        return
    if preview["specs"] != current:
        st.caption(":orange[The settings changed since this preview: preview again to see them.]")
    st.markdown(f"**Preview** · {preview['total']:,} events in all; the first {PREVIEW_ROWS} of each event name:")
    for name, head in preview["heads"]:
        st.caption(md_code(name))
        st.dataframe(head, hide_index=True, key=_sim_key("head", name))
    st.altair_chart(charts.daily_volume_chart(preview["daily"]), key=_sim_key("daily"), width="stretch")


# =========================================================================== rendering: browser


PAGE_SIZES = [25, 50, 100, 250]


def render_browser(engine: Engine) -> None:
    if message := st.session_state.pop(EVENT_DELETED, None):
        st.success(md(message), icon=":material/delete:")
    names = stored_event_names(engine)
    if not names:
        st.info("No events stored yet: upload a file or simulate some.")
        return
    bounds = stored_days(engine)
    cols = st.columns([1.2, 1.2, 1.6, 0.8])
    event_name = cols[0].selectbox("Event name", ["(all)", *names], key=KEY + "f_event")
    customer = cols[1].text_input("Customer ID", value="", key=KEY + "f_customer", placeholder="any customer")
    window = cols[2].date_input(
        "Dates (UTC)", value=[], key=KEY + "f_dates", format="YYYY-MM-DD",
        help=f"Empty: every date. Stored events run from {bounds[0]:%Y-%m-%d} to {bounds[1]:%Y-%m-%d}." if bounds else None,
    )
    size = cols[3].selectbox("Rows a page", PAGE_SIZES, key=KEY + "f_size")
    first, last = _date_range(window)
    query = EventQuery(None if event_name == "(all)" else event_name, customer.strip() or None, first, last)
    total = count_events(engine, query)
    pages = max(1, math.ceil(total / size))
    signature = (query, size)
    if st.session_state.get(PAGE + ":query") != signature:  # filters changed → back to page 1
        st.session_state[PAGE + ":query"] = signature
        st.session_state[PAGE] = 1
    st.session_state[PAGE] = min(max(1, st.session_state.get(PAGE, 1)), pages)
    page_no = st.session_state[PAGE]
    nav = st.container(horizontal=True, vertical_alignment="center")
    nav.button("Previous", disabled=page_no <= 1, key=KEY + "prev", icon=":material/chevron_left:",
               on_click=_turn_page, args=(-1,))
    nav.button("Next", disabled=page_no >= pages, key=KEY + "next", icon=":material/chevron_right:",
               on_click=_turn_page, args=(1,))
    offset = (page_no - 1) * size
    rows = query_events(engine, query, limit=size, offset=offset)
    nav.markdown(
        f"Page {page_no} of {pages:,} · events {offset + 1 if total else 0:,}–{offset + len(rows):,} of {total:,}, newest first"
    )
    st.dataframe(
        rows[["timestamp", "event_name", "customer_id", "properties", "idempotency_key", "import_id"]],
        hide_index=True, key=KEY + "events",
        column_config={
            "timestamp": st.column_config.TextColumn("timestamp (UTC)"),
            "properties": st.column_config.TextColumn("properties", width="large"),
            "import_id": st.column_config.NumberColumn("import", format="%d"),
        },
    )
    _delete_one(engine, rows)


def event_label(row: Any) -> str:
    return f"{row.timestamp} · {row.event_name} · {row.customer_id} · key {row.idempotency_key}"


def _delete_one(engine: Engine, rows: pd.DataFrame) -> None:
    """Pick one event of this page and delete it (a far-future typo, a wrong test event)."""
    if len(rows) and not read_only_reason(engine):
        labels = {str(r.idempotency_key): event_label(r) for r in rows.itertuples()}
        line = st.container(horizontal=True, vertical_alignment="bottom")
        chosen = line.selectbox("Event on this page", list(labels), format_func=labels.get, key=KEY + "event_choice",
                                width=640, help="Filter the table above to find an event; each can be deleted alone.")
        if line.button("Delete this event…", key=KEY + "delete_event", icon=":material/delete:"):
            st.session_state[CONFIRM_EVENT] = chosen
    pending = st.session_state.get(CONFIRM_EVENT)
    if pending is not None and not st.session_state.get(CONFIRM_DELETE):
        _confirm_delete_event(engine, str(pending))


def _dismiss_delete_event() -> None:
    st.session_state.pop(CONFIRM_EVENT, None)


@st.dialog("Delete an event", on_dismiss=_dismiss_delete_event)
def _confirm_delete_event(engine: Engine, key: str) -> None:
    found = event_by_key(engine, key)
    if found is None:
        st.info("This event is no longer stored.")
        if st.button("Close", key=KEY + "delete_event_close"):
            _dismiss_delete_event()
            st.rerun()
        return
    st.markdown("Delete this event? This cannot be undone (importing it again brings it back).")
    st.code(json.dumps(found, indent=2, ensure_ascii=False), language="json")
    left, right = st.columns(2)
    if left.button("Cancel", key=KEY + "delete_event_cancel"):
        _dismiss_delete_event()
        st.rerun()
    if right.button("Delete", type="primary", key=KEY + "delete_event_confirm", icon=":material/delete:"):
        delete_event(engine, key)
        _dismiss_delete_event()
        st.session_state[EVENT_DELETED] = f"Deleted the event {found['event_name']} of {found['customer_id']} at {found['timestamp']}."
        st.rerun()


def _turn_page(step: int) -> None:
    st.session_state[PAGE] = st.session_state.get(PAGE, 1) + step


def _date_range(value: Any) -> tuple[date | None, date | None]:
    if isinstance(value, (list, tuple)):
        if len(value) == 2:
            return value[0], value[1]
        if len(value) == 1:
            return value[0], value[0]
        return None, None
    if isinstance(value, date):
        return value, value
    return None, None


# =========================================================================== rendering: imports


def render_imports(engine: Engine) -> None:
    message = st.session_state.pop(DELETED, None)
    if message:
        st.success(message, icon=":material/delete:")
    imports = list_imports(engine)
    if not len(imports):
        st.caption("No imports yet.")
        return
    st.dataframe(imports, hide_index=True, key=KEY + "imports", column_config={
        "id": st.column_config.NumberColumn("import", format="%d"),
        "created_at": st.column_config.TextColumn("imported at"),
        **{c: st.column_config.NumberColumn(c, format="localized") for c in ("accepted", "duplicates", "rejected")},
    })
    labels = {int(r.id): f"#{r.id} · {r.source} · {r.accepted:,} events" for r in imports.itertuples()}
    row = st.container(horizontal=True, vertical_alignment="bottom")
    chosen = row.selectbox("Import", list(labels), format_func=labels.get, key=KEY + "delete_choice", width=520)
    if row.button("Delete events of this import…", key=KEY + "delete", icon=":material/delete:",
                  disabled=not auth.can(Action.delete_events) or read_only_reason(engine) is not None):
        st.session_state[CONFIRM_DELETE] = int(chosen)
    pending = st.session_state.get(CONFIRM_DELETE)
    if pending is not None and st.session_state.get(CONFIRM_EVENT) is None:  # one dialog at a time
        row = imports[imports["id"] == pending]
        if len(row):
            _confirm_delete(engine, int(pending), str(row.iloc[0]["source"]), int(row.iloc[0]["accepted"]))
        else:
            st.session_state.pop(CONFIRM_DELETE, None)


def _dismiss_delete() -> None:
    st.session_state.pop(CONFIRM_DELETE, None)


@st.dialog("Delete an import", on_dismiss=_dismiss_delete)
def _confirm_delete(engine: Engine, import_id: int, source: str, accepted: int) -> None:
    st.markdown(f"Delete the **{accepted:,} events** that import **#{import_id}** added?")
    st.caption(md(source))
    st.caption("Events that import skipped as duplicates belong to other imports and stay.")
    left, right = st.columns(2)
    if left.button("Cancel", key=KEY + "delete_cancel"):
        _dismiss_delete()
        st.rerun()
    if right.button("Delete", type="primary", key=KEY + "delete_confirm", icon=":material/delete:",
                    disabled=not auth.can(Action.delete_events)) \
            and auth.allowed(Action.delete_events, audit_action="events.delete_import", target=f"#{import_id} {source}"):
        deleted = delete_import(engine, import_id)
        auth.record("events.delete_import", target=f"#{import_id} {source}", detail=f"{deleted:,} events deleted")
        _dismiss_delete()
        st.session_state[DELETED] = f"Deleted {deleted:,} events of import #{import_id}."
        st.rerun()
