"""The metric editor's live preview, written out for a person (no Streamlit here).

- `calculate` writes the aggregation out on the REAL stored events the metric selects
  (`12 + 30 + 7 + … = 48,210 over 1,204 events`), or, when the store holds none in the
  window, on a few example events built from the metric's own example event. Every number
  in it comes from the engine (`aggregation.aggregate`); the first values are read from the
  frame's cached columns with numpy (the first k matching indices), never by looping over
  the events.
- `editor_preview` is the one call the editor's preview fragment makes per form change:
  form errors, the live example event, the calculation and the code snippets.
- `send_test_event` stores a test event for real and compares the metric before → after.

Numbers are written exactly (Decimal, no float), with thousands separators: `48,210.5`.
"""

from __future__ import annotations

import copy
import json
import re
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from metering import aggregation, ingest, metrics, snippets
from metering.aggregation import SKIP_REASONS, AggregateResult, value_path
from metering.engine.batch import exact_text_form, parse_properties
from metering.engine.columns import OK, from_us, numbers, to_us
from metering.engine.frame import EventFrame
from metering.engine.interface import Events, Explanation
from metering.models import Aggregation, MetricBase, MetricCreate, MetricType
from metering.values import lookup, normalized, parse_decimal, to_decimal

FIRST_VALUES = 5  # values written out before "…"
TOP_GROUPS = 10  # groups listed in the breakdown
EXAMPLE_EVENTS = 3  # example events used when the store holds none for the metric
WINDOWS: dict[str, str] = {"all": "All time", "30d": "Last 30 days"}
WINDOW_DAYS = {"30d": 30}

# What is derived from one frame (suggestions, calculations), dropped with the frame.
_SEEN: weakref.WeakKeyDictionary[Events, dict[Any, Any]] = weakref.WeakKeyDictionary()

# Fields a preview can do without: the calculation reads none of them.
_PREVIEW_FILLERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "name": lambda d: d.get("name") or "Untitled metric",
    "unit": lambda d: d.get("unit") or "units",
    "code": lambda d: metrics.slugify(str(d.get("name") or "")) or "metric",
    "description": lambda d: None,
    "metric_type": lambda d: MetricType.charge_metered.value,
}


# --------------------------------------------------------------------------- formatting


def fmt(value: Decimal | int | float | None) -> str:
    """An exact number with thousands separators: 48210 → 48,210; 0.30 → 0.3; 1E+3 → 1,000."""
    if value is None:
        return "—"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    number = normalized(Decimal(str(value)) if isinstance(value, float) else value)
    return format(number, ",")


def signed(value: Decimal) -> str:
    if value > 0:
        return "+" + fmt(value)
    if value < 0:
        return "−" + fmt(-value)
    return "±0"


def plural(n: int, word: str) -> str:
    return f"{fmt(n)} {word}{'' if n == 1 else 's'}"


def _when(ts_us: int) -> str:
    moment = from_us(ts_us)
    pattern = "%Y-%m-%d %H:%M UTC" if moment.second == 0 and moment.microsecond == 0 else "%Y-%m-%d %H:%M:%S UTC"
    return moment.strftime(pattern)


def group_label(group: dict[str, str | None]) -> str:
    return ", ".join(f"{k}={'null' if v is None else v}" for k, v in group.items())


# --------------------------------------------------------------------------- the metric a form implies


def preview_metric(data: dict[str, Any]) -> tuple[MetricCreate | None, dict[str, str]]:
    """The metric to preview for a form, even half filled in.

    Fields the calculation does not read (name, unit, code, type) get stand-ins when they are
    missing or wrong; what is left is returned as errors (field → message) and no metric.
    """
    try:
        return MetricCreate.model_validate(data), {}
    except Exception:  # noqa: BLE001 - pydantic ValidationError; re-checked below with messages
        pass
    errors = metrics.form_errors(None, data)
    patched = dict(data)
    for key in list(errors):
        if key == "code" and not str(data.get("event_name") or "").strip():
            continue  # the event name IS the code: no stand-in, or the example shows a stale name
        if key in _PREVIEW_FILLERS:
            patched[key] = _PREVIEW_FILLERS[key](data)
    if "aggregation" in errors and data.get("aggregation") in {a.value for a in Aggregation}:
        patched["metric_type"] = MetricType.charge_metered.value  # a type/aggregation mismatch
    remaining = metrics.form_errors(None, patched)
    if remaining:
        return None, remaining
    return MetricCreate.model_validate(patched), {}


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    key: str
    label: str
    start_us: int | None = None
    end_us: int | None = None


def window(key: str, *, now: datetime | None = None) -> Window:
    """`all` (every stored event) or `30d`: [now − 30 days, now), so events dated after now
    (planned usage, a typo) are not "in the last 30 days"."""
    if key not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
    if key == "all":
        return Window(key, WINDOWS[key])
    now = now or datetime.now(timezone.utc)
    start = now - timedelta(days=WINDOW_DAYS[key])
    return Window(key, f"{WINDOWS[key]} (since {start.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC, until now)",
                  to_us(start), to_us(now))


# --------------------------------------------------------------------------- example events


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    """Set a dot path (a literal key equal to the path wins, as in `values.lookup`)."""
    if path in target or "." not in path:
        target[path] = value
        return
    parts = path.split(".")
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    target[parts[-1]] = value


def _other_text(value: Any) -> str:
    """A second example text: user_42 → user_43, gpt-4o → gpt-4o_2."""
    text = str(value)
    match = re.search(r"(\d+)$", text)
    if match:
        return text[: match.start()] + str(int(match.group(1)) + 1)
    return f"{text}_2"


def example_events(metric: MetricBase, *, now: datetime | None = None, n: int = EXAMPLE_EVENTS) -> list[dict[str, Any]]:
    """`n` events the metric would read: its example event with varied values (value i is
    (i+1) × the example value; unique_count repeats a value; the last event is in another
    group), one hour apart, so the example calculation shows what the aggregation does."""
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    base = snippets.example_properties(metric)
    vpath = value_path(metric)
    fixed = set(metric.filters)  # varying a filtered property would drop the event
    events = []
    for i in range(n):
        props = copy.deepcopy(base)
        if vpath and vpath not in fixed:
            example = lookup(base, vpath)
            if metric.aggregation == Aggregation.unique_count:
                if i % 2:
                    _put(props, vpath, _other_text(example))
            elif (number := to_decimal(example)) is not None:
                _put(props, vpath, number * (i + 1))
        if i == n - 1 and n > 1:
            for path in metric.group_by:
                if path not in fixed and path != vpath:
                    _put(props, path, _other_text(lookup(base, path)))
        events.append({
            "event_name": metric.event_name,
            "customer_id": f"cus_{i + 1:03d}",
            "timestamp": (now - timedelta(hours=n - 1 - i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "properties": props,
        })
    return events


def example_frame(metric: MetricBase, *, now: datetime | None = None) -> EventFrame:
    parsed = ingest.parse_records(list(enumerate(example_events(metric, now=now), start=1)))
    return EventFrame.from_parsed(parsed)


def event_example(metric: MetricBase, *, now: datetime | None = None) -> dict[str, Any]:
    """The live example event the form implies (what the API and import files accept)."""
    when = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    return snippets.example_event(metric, when=when)


def event_example_json(metric: MetricBase, *, now: datetime | None = None) -> str:
    return json.dumps(event_example(metric, now=now), indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------- the calculation


@dataclass(frozen=True)
class GroupRow:
    group: dict[str, str | None]
    label: str
    value: Decimal
    events: int
    skipped: int


@dataclass(frozen=True)
class Calculation:
    """The aggregation written out. `source` is `events` (stored) or `example`."""

    source: Literal["events", "example"]
    formula: str
    value: Decimal
    value_text: str
    events: int
    skipped: int
    skipped_text: str | None
    groups: list[GroupRow]
    more_groups: int
    result: AggregateResult
    note: str
    window: Window


def _formula(metric: MetricBase, found: Explanation) -> str:
    agg = metric.aggregation
    result = found.result
    events = plural(result.events, "event")
    if agg == Aggregation.count:
        return events
    path = value_path(metric)
    assert path is not None
    if agg == Aggregation.unique_count:
        shown = found.first_distinct
        more = ", …" if result.value > len(shown) else ""
        listed = f": {', '.join(shown)}{more}" if shown else ""
        word = "value" if result.value == 1 else "values"
        return f"{fmt(result.value)} distinct {path} {word} among {events}{listed}"
    if agg == Aggregation.latest:
        if found.latest_ts is None:
            return f"no numeric {path} value among {events} = 0"
        return f"latest ({_when(found.latest_ts)}, {found.latest_customer}) = {fmt(result.value)} among {events}"
    if not found.first_values:
        return f"no numeric {path} value among {events} = 0"
    shown = [fmt(v) for v in found.first_values]
    if agg == Aggregation.sum:
        return f"{' + '.join(shown)}{' + …' if found.more_values else ''} = {fmt(result.value)} over {events}"
    return f"{agg.value}({', '.join(shown)}{', …' if found.more_values else ''}) = {fmt(result.value)} over {events}"


def _skipped_text(result: AggregateResult) -> str | None:
    if not result.skipped:
        return None
    reasons = "; ".join(f"{reason} ({fmt(n)})" for reason, n in sorted(result.skip_reasons.items(), key=lambda kv: -kv[1]))
    return f"{fmt(result.skipped)} of {plural(result.events, 'event')} skipped: {reasons}"


def _groups(result: AggregateResult, top: int) -> tuple[list[GroupRow], int]:
    ordered = sorted(result.groups, key=lambda g: (-g.value, -g.events, group_label(g.group)))
    rows = [GroupRow(g.group, group_label(g.group), g.value, g.events, g.skipped) for g in ordered[:top]]
    return rows, max(len(ordered) - top, 0)


_CALCULATIONS = 32  # calculations kept per frame: a change that does not touch the metric is free


def calculate(
    frame: Events,
    metric: MetricBase,
    *,
    window_key: str = "all",
    now: datetime | None = None,
    k: int = FIRST_VALUES,
    top: int = TOP_GROUPS,
) -> Calculation:
    """The calculation on the stored events the metric selects in the window, else on examples.

    Kept per frame (a new event makes a new frame) and definition, so form changes that do not
    touch the aggregation (name, unit, description, the test event's text) cost nothing."""
    now = now or datetime.now(timezone.utc)
    win = window(window_key, now=now)
    minute = int(now.timestamp() // 60)  # example events are stamped from `now`
    key = ("calc", metric.model_dump_json(exclude={"name", "code", "description", "unit", "metric_type"}),
           win.start_us, win.end_us, minute, k, top)
    cache = _SEEN.setdefault(frame, {})
    calcs = cache.setdefault("calculations", OrderedDict())
    if key in calcs:
        calcs.move_to_end(key)
        return calcs[key]
    calc = _calculate(frame, metric, win, now=now, k=k, top=top)
    calcs[key] = calc
    while len(calcs) > _CALCULATIONS:
        calcs.popitem(last=False)
    return calc


def forget_calculations(frame: Events) -> None:
    """Drop the kept calculations of a frame (benchmarks time the real work)."""
    _SEEN.get(frame, {}).pop("calculations", None)


def _calculate(events: Events, metric: MetricBase, win: Window, *, now: datetime | None, k: int, top: int) -> Calculation:
    found = events.explain(metric, start=win.start_us, end=win.end_us, k=k)
    if found.result.events:
        source: Literal["events", "example"] = "events"
        note = f"on {plural(found.result.events, 'stored event')} named {metric.event_name} · {win.label}"
    else:
        source = "example"
        found = example_frame(metric, now=now).explain(metric, k=k)
        note = f"on example values: no stored {metric.event_name} event matches in this window ({win.label})"
    result = found.result
    groups, more = _groups(result, top)
    return Calculation(
        source=source,
        formula=_formula(metric, found),
        value=result.value,
        value_text=fmt(result.value),
        events=result.events,
        skipped=result.skipped,
        skipped_text=_skipped_text(result),
        groups=groups,
        more_groups=more,
        result=result,
        note=note,
        window=win,
    )


def group_table(calc: Calculation) -> pd.DataFrame:
    """The group breakdown: one column per group-by label, then `group` (the label's value, or
    `path=value, …` for several labels), value (exact text), events, skipped, and
    `value_number` (a float, for charts only)."""
    paths = list(calc.groups[0].group) if calc.groups else []
    rows = [
        {**{p: ("null" if g.group.get(p) is None else g.group[p]) for p in paths},
         "group": g.label if len(paths) > 1 else ("null" if g.group[paths[0]] is None else g.group[paths[0]]),
         "value": fmt(g.value), "events": g.events, "skipped": g.skipped,
         "value_number": float(g.value)}
        for g in calc.groups
    ]
    return pd.DataFrame(rows, columns=[*paths, "group", "value", "events", "skipped", "value_number"])


# --------------------------------------------------------------------------- what the store holds


def _memo(frame: Events, key: Any, build: Callable[[], Any]) -> Any:
    cache = _SEEN.setdefault(frame, {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


@dataclass(frozen=True)
class SeenPath:
    path: str
    share: float  # of the sampled events that have it
    numeric: bool  # every sampled value reads as a number
    example: str


def _flatten(props: dict[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in props.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 3:
            out.extend(_flatten(value, f"{path}.", depth + 1))
        else:
            out.append((path, value))
    return out


def seen_paths(frame: Events, event_name: str | None = None, *, sample: int = 2000) -> list[SeenPath]:
    """Property paths seen in stored events (of `event_name` when it has any), most common
    first, from the first `sample` of them; `numeric` marks paths fit for a value property."""

    def build() -> list[SeenPath]:
        texts = frame.sample_properties(event_name, sample)
        counts: dict[str, int] = {}
        numeric: dict[str, bool] = {}
        examples: dict[str, str] = {}
        for props in parse_properties(texts):
            for path, value in _flatten(props or {}):
                counts[path] = counts.get(path, 0) + 1
                is_num = isinstance(value, str) and (ingest.is_number(value) or parse_decimal(value) is not None)
                numeric[path] = numeric.get(path, True) and is_num
                examples.setdefault(path, str(exact_text_form(value)))
        total = max(len(texts), 1)
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [SeenPath(p, n / total, numeric[p], examples[p]) for p, n in ordered]

    return _memo(frame, ("paths", event_name, sample), build)


def event_name_counts(frame: Events) -> list[tuple[str, int]]:
    """Stored event names with their number of events, most events first."""

    return _memo(frame, "names", frame.event_name_counts)


def events_named(frame: Events, event_name: str) -> int:
    return dict(event_name_counts(frame)).get(event_name, 0)


# --------------------------------------------------------------------------- the editor's preview


@dataclass(frozen=True)
class EditorPreview:
    errors: dict[str, str]  # every problem with the form (what Save refuses)
    metric: MetricCreate | None  # what the previews show (None: the form cannot be previewed yet)
    preview_errors: dict[str, str]  # why there is no preview
    event: dict[str, Any] | None
    event_json: str
    calculation: Calculation | None
    snippets: dict[str, str] = field(default_factory=dict)
    # limit metrics: the entitlement check for the example event (may it be sent?), per language
    entitlement_snippets: dict[str, str] = field(default_factory=dict)


def editor_preview(
    engine: Engine | None,
    frame: Events,
    data: dict[str, Any],
    *,
    current_code: str | None = None,
    window_key: str = "all",
    now: datetime | None = None,
    example_time: datetime | None = None,
    base_url: str = "http://localhost:8501",
    api_key: str = "YOUR_API_KEY",
) -> EditorPreview:
    """Everything the editor's preview panels show for the form `data` (one call per change).

    `now` places the window; `example_time` is the example event's timestamp (default: now).
    """
    now = now or datetime.now(timezone.utc)
    errors = metrics.form_errors(engine, data, current_code=current_code)
    metric, preview_errors = preview_metric(data)
    if metric is None:
        return EditorPreview(errors, None, preview_errors, None, "", None, {})
    event = event_example(metric, now=example_time or now)
    return EditorPreview(
        errors=errors,
        metric=metric,
        preview_errors={},
        event=event,
        event_json=json.dumps(event, indent=2, ensure_ascii=False),
        calculation=calculate(frame, metric, window_key=window_key, now=now),
        snippets=snippets.snippets(metric, base_url=base_url, api_key=api_key, event=event),
        entitlement_snippets=(
            snippets.entitlement_snippets(metric, base_url=base_url, api_key=api_key, customer_id=event["customer_id"],
                                          quantity=snippets.event_quantity(metric, event))
            if snippets.is_limit(metric) else {}),
    )


# --------------------------------------------------------------------------- test it


@dataclass(frozen=True)
class TestOutcome:
    """What sending one test event did: an error beside the field, or before → after."""

    __test__ = False  # not a pytest class

    error: str | None = None
    field_errors: dict[str, str] = field(default_factory=dict)  # every field's problem, by field
    accepted: int = 0
    duplicates: int = 0
    before: AggregateResult | None = None
    after: AggregateResult | None = None
    not_counted: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if self.error or self.before is None or self.after is None:
            return self.error or ""
        return compare(self.before, self.after)


def compare(before: AggregateResult, after: AggregateResult, *, unit: str = "") -> str:
    """`48,210 → 49,460 tokens (+1,250) · events 1,860 → 1,861`."""
    delta = after.value - before.value
    text = f"{fmt(before.value)} → {fmt(after.value)}{' ' + unit if unit else ''} ({signed(delta) if delta else 'no change'})"
    text += f" · events {fmt(before.events)} → {fmt(after.events)}"
    if after.skipped != before.skipped:
        text += f" · skipped {fmt(before.skipped)} → {fmt(after.skipped)}"
    return text


def why_not_counted(metric: MetricBase, parsed: ingest.ParsedEvents) -> list[str]:
    """Why the (one) parsed event adds nothing to the metric's value, by the engine's rules."""
    batch = parsed.batch
    if not len(batch):
        return []
    reasons = []
    name = batch.event_name[0].as_py()
    if name != metric.event_name:
        reasons.append(f"its event_name is {name!r}; this metric reads {metric.event_name!r}")
    for key, allowed in metric.filters.items():
        got = batch.text(key)[0].as_py()
        if got not in [str(v) for v in allowed]:
            shown = "missing" if got is None else repr(got)
            reasons.append(f"filter {key}: the event's {key} is {shown}; allowed: {', '.join(allowed)}")
    path = value_path(metric)
    if path is not None and not reasons:
        text = batch.text(path)
        if metric.aggregation == Aggregation.unique_count:
            if text[0].as_py() is None:
                reasons.append(f"it is counted as an event but skipped: {path} is missing")
        else:
            status = int(numbers(text)[1][0])
            if status != OK:
                reasons.append("it is counted as an event but skipped: " + SKIP_REASONS[status].format(path=path))
    return reasons


# Valid stand-ins: each field of a test event is checked on its own next to these, so every
# field's problem is found at once (the import reports a row's first problem only).
_PROBE = {"event_name": "probe", "customer_id": "probe", "timestamp": "2026-01-01T00:00:00Z"}


def event_field_errors(obj: dict[str, Any]) -> dict[str, str]:
    """Every field's problem in one event object (from `ingest.loads_exact`), by field, using
    the import's own rules (`ingest.parse_records`); empty when the event is valid."""
    errors = {
        key: f"unknown field '{key}': put custom values under properties"
        for key in sorted(set(obj) - set(ingest.EVENT_FIELDS))
    }
    for name in ingest.EVENT_FIELDS:
        probe: dict[str, Any] = dict(_PROBE)
        if name in obj:
            probe[name] = obj[name]
        elif name in _PROBE:
            del probe[name]  # a required field that is missing
        else:
            continue
        parsed = ingest.parse_records([(1, probe)])
        if parsed.errors:
            errors[name] = parsed.errors[0].reason
    return errors


def parse_test_event(text: str) -> tuple[ingest.ParsedEvents | None, str | None, dict[str, str]]:
    """The test event text → one parsed event, or the reason it cannot be sent and every
    field's problem (field → reason)."""
    try:
        obj = ingest.loads_exact(text)
    except ValueError as exc:
        return None, f"not valid JSON: {exc}", {}
    if not isinstance(obj, dict):
        return None, 'the test event must be one JSON object: {"event_name": …, "customer_id": …, …}', {}
    parsed = ingest.parse_records([(1, obj)])
    if parsed.errors:
        fields = event_field_errors(obj) or {parsed.errors[0].field: parsed.errors[0].reason}
        return None, "; ".join(f"{k}: {v}" for k, v in fields.items()), fields
    return parsed, None, {}


def send_test_event(
    engine: Engine,
    metric: MetricBase,
    text: str,
    *,
    get_frame: Callable[[], Events],
    window_key: str = "all",
    now: datetime | None = None,
) -> TestOutcome:
    """Store the test event for real (source "test event") and aggregate before and after."""
    parsed, error, fields = parse_test_event(text)
    if parsed is None:
        return TestOutcome(error=error, field_errors=fields)
    win = window(window_key, now=now)
    before = aggregation.aggregate(get_frame(), metric, start=win.start_us, end=win.end_us)
    stored = ingest.store_parsed(engine, parsed, source="test event")
    after = aggregation.aggregate(get_frame(), metric, start=win.start_us, end=win.end_us)
    return TestOutcome(
        accepted=stored.accepted,
        duplicates=stored.duplicates,
        before=before,
        after=after,
        not_counted=why_not_counted(metric, parsed),
    )
