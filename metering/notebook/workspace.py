"""`Workspace`: the pricing workbench as a notebook library, over the same engine as the app.

A Workspace is a store (the SQL tables of metrics, plans, subscriptions and timezone, and the
event store beside them) plus methods that call the functions the CLI and the pages call:

- `Workspace.open("pricing.json")`: a workspace file, loaded into a private in-memory store
  (nothing is written back until `save()`); `Workspace.open("data/metering.db")` or a
  database URL (`sqlite:///…`, `postgresql://…`): that store itself, the app's if it is the
  app's (`Workspace.app()` opens `DATABASE_URL`, as `make run` does); `Workspace.new()`: empty.
- Events go in through the importer (`add_events`: files, or a DataFrame read as the CSV
  file it would be) and are read only through `metering.engine.stored_events`.
- Metrics and plans are defined and edited with the app's validation and messages
  (`metering.metrics.form_errors`, `metering.plans.plan_errors`); a refusal is a
  `ValidationFailed` whose `errors` map each field to its message.
- Every figure comes from the engine's functions: `aggregation.aggregate`,
  `usage_series.daily_usage`, `billing.timeline`, `invoices.run`, `compare.compare_plans`,
  `backtest.run`; results are typed objects (`metering.notebook.results`, `.invoicing`,
  `.backtests`).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from metering import aggregation, audit, backtest, billing, compare, importing, ingest, invoices, metrics
from metering import plan_store, preview, store, timelines, usage_series
from metering import workspace as documents
from metering.backtest import drafts
from metering.engine import Events, stored_events
from metering.engine.columns import from_us
from metering.models import MetricCreate
from metering.notebook import frames
from metering.notebook.backtests import BacktestResult
from metering.notebook.invoicing import Comparison, InvoiceView, Invoices
from metering.notebook.results import Aggregate, ImportReport, MetricPreview, RowProblem, Timeline, UsageSeries
from metering.notebook.results import ValidationFailed
from metering.plans import Plan, plan_errors

Time = str | int | datetime | date | pd.Timestamp | None
DEFAULT_GUARDRAIL = Decimal(20)
_STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def _time_us(value: Time, name: str) -> int | None:
    """A window bound → epoch microseconds: ISO text or epoch seconds (as `--from`/`--to`
    read them), a datetime (naive = UTC), a date (its UTC midnight) or a pandas Timestamp."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, datetime):
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
        value = value.isoformat()
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{name}: give ISO 8601 text, epoch seconds, a date or a datetime, not {type(value).__name__}")
    values, problems = ingest.parse_timestamps([str(value).strip()])
    if 0 in problems:
        raise ValueError(f"{name}: {problems[0]}")
    return int(values[0])


def _month(value: str | tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, tuple):
        return invoices.parse_month(f"{value[0]:04d}-{value[1]:02d}")
    return invoices.parse_month(value)


class Workspace:
    """A pricing workspace: metrics, plans, subscriptions, timezone and events, in one store.

    Open one with `Workspace.open(path_or_url)`, `Workspace.new()` or `Workspace.app()`;
    then add events, define metrics and plans, and ask for aggregates, usage series,
    timelines, invoices, comparisons and backtests. Every answer is the engine's, the same as
    the CLI's and the app's for the same workspace and events.
    """

    def __init__(self, engine: Engine, *, source: str | None = None, private: bool = True) -> None:
        """Wrap an engine made by `metering.store.make_engine` (prefer the class methods)."""
        self.engine = engine
        self.source = source  # the file or URL it was opened from, for the repr
        self._private = private  # an in-memory store of this notebook only (no audit rows)

    # ------------------------------------------------------------------ opening

    @classmethod
    def new(cls, *, timezone: str = "UTC") -> Workspace:
        """An empty workspace in a private in-memory store (its events in a temporary folder)."""
        ws = cls(store.make_engine("sqlite://"), source=None, private=True)
        if timezone != "UTC":
            ws.timezone = timezone
        return ws

    @classmethod
    def open(cls, target: str | Path) -> Workspace:
        """A workspace file (`.json`, contract §5) loaded into a private in-memory store, or a
        store: a database URL (`sqlite:///path`, `postgresql://…`) or a SQLite file
        (`.db`, `.sqlite`); a store is used as it is (the app sees every change).

        A bad workspace file raises `WorkspaceError` naming the bad field's path."""
        text = str(target)
        if "://" in text:
            return cls(store.make_engine(text), source=store.database_url(text).split("@")[-1], private=False)
        path = Path(text).expanduser()
        if path.suffix.lower() in _STORE_SUFFIXES:
            if not path.exists():
                raise FileNotFoundError(f"no database at {path} (a new store: Workspace.open('sqlite:///{path}'))")
            return cls(store.make_engine(f"sqlite:///{path.resolve()}"), source=str(path), private=False)
        if path.suffix.lower() != ".json":
            raise ValueError(f"{text}: open a workspace file (.json), a SQLite store (.db) or a database URL")
        ws = cls.from_document(documents.read_document(path))  # WorkspaceError: unreadable, not JSON, invalid
        ws.source = str(path)
        return ws

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> Workspace:
        """A workspace document (the JSON of a workspace file, as a dict) in a private
        in-memory store; WorkspaceError naming the bad field's path when it is not valid."""
        documents.parse_workspace(data)
        ws = cls.new()
        documents.import_document(ws.engine, dict(data))
        return ws

    @classmethod
    def app(cls, url: str | None = None) -> Workspace:
        """The app's own store: `url`, else `DATABASE_URL`, else `data/metering.db` (what
        `make run` and the `metering` command use). Changes show in the app at once and are
        recorded in its audit log as made from a notebook."""
        return cls(store.make_engine(url), source=store.database_url(url).split("@")[-1], private=False)

    def __repr__(self) -> str:
        where = self.source or "in memory"
        return (f"<Workspace {where}: {len(self.metrics)} metrics, {len(self.plans)} plans, "
                f"{len(self.subscriptions)} subscriptions, {self.event_count:,} events>")

    def _audit(self, action: str, target: str, detail: str = "") -> None:
        if self._private:
            return
        try:
            who = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name in this environment
            who = "unknown"
        audit.record(self.engine, actor=f"notebook ({who})", role=None, action=action, target=target, detail=detail)

    # ------------------------------------------------------------------ what is there

    @property
    def document(self) -> dict[str, Any]:
        """The workspace file of this store (metrics, plans, subscriptions, timezone; no events)."""
        return documents.export_workspace(self.engine)

    def _workspace(self) -> documents.Workspace:
        return documents.workspace_from_store(self.engine)

    def _events(self) -> Events:
        return stored_events(self.engine)

    def save(self, path: str | Path) -> Path:
        """Write the workspace file (`metering workspace export`'s document) to `path`."""
        out = Path(path)
        out.write_text(json.dumps(self.document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return out

    @property
    def timezone(self) -> str:
        """The IANA timezone billing periods are read in (set it to change it)."""
        return plan_store.get_timezone(self.engine)

    @timezone.setter
    def timezone(self, name: str) -> None:
        documents.parse_workspace({"timezone": name})  # WorkspaceError for a name that is not a zone
        plan_store.set_timezone(self.engine, timezone=name)
        self._audit("workspace.timezone", name)

    @property
    def metrics(self) -> list[MetricCreate]:
        """The metrics, by code."""
        return self._workspace().metrics

    @property
    def plans(self) -> list[Plan]:
        """The plans, by code."""
        return self._workspace().plans

    @property
    def subscriptions(self) -> pd.DataFrame:
        """customer_id, plan, start (as written; None: the default anchor)."""
        rows = [(s.customer_id, s.plan, s.start) for s in plan_store.list_subscriptions(self.engine)]
        return pd.DataFrame(rows, columns=["customer_id", "plan", "start"])

    def subscribers(self, plan: str) -> list[str]:
        """The customers subscribed to `plan` (a backtest cohort), by id."""
        self._workspace().plan(plan)  # WorkspaceError for an unknown plan
        return sorted(s.customer_id for s in plan_store.list_subscriptions(self.engine) if s.plan == plan)

    @property
    def event_count(self) -> int:
        """How many events are stored."""
        return len(self._events())

    @property
    def customers(self) -> list[str]:
        """Every customer found in the events, by id."""
        return sorted(self._events().customer_ids())

    def event_names(self) -> pd.DataFrame:
        """Stored event names with their number of events, most first."""
        return pd.DataFrame(preview.event_name_counts(self._events()), columns=["event_name", "events"])

    def properties(self, event_name: str | None = None) -> pd.DataFrame:
        """Property paths seen in the stored events (of `event_name`), most common first:
        share of events that have it, whether every value reads as a number, an example."""
        seen = preview.seen_paths(self._events(), event_name)
        return pd.DataFrame([(p.path, p.share, p.numeric, p.example) for p in seen],
                            columns=["path", "share", "numeric", "example"])

    # ------------------------------------------------------------------ events

    def add_events(self, source: str | Path | pd.DataFrame | Sequence[str | Path], *, name: str | None = None) -> ImportReport:
        """Import events from a file (CSV, JSON Lines, JSON), several files, or a DataFrame,
        through the app's importer: the good rows are stored, bad rows come back with their
        line and reason, and events already stored (same idempotency key) are duplicates, so
        adding the same file twice adds nothing. An unreadable file raises
        `ingest.UnreadableFile` before anything is stored."""
        if isinstance(source, pd.DataFrame):
            return self._add_frame(source, name or "DataFrame")
        paths = [source] if isinstance(source, (str, Path)) else list(source)
        for path in paths:  # every file checked before any is stored
            if not Path(path).is_file():
                raise FileNotFoundError(f"no events file at {path}")
        reports = []
        for path in paths:
            result = importing.import_path(self.engine, path, name=name or Path(path).name)
            label = str(path)
            reports.append(ImportReport(result.accepted, result.duplicates, result.rejected, result.future,
                                        tuple(RowProblem(label, e.line, e.field, e.reason) for e in result.errors)))
            self._audit("events.import", Path(path).name, f"{result.accepted} accepted, {result.rejected} rejected")
        return ImportReport(
            sum(r.accepted for r in reports), sum(r.duplicates for r in reports), sum(r.rejected for r in reports),
            sum(r.future for r in reports), tuple(e for r in reports for e in r.errors), tuple(map(str, paths)),
        )

    def _add_frame(self, df: pd.DataFrame, name: str) -> ImportReport:
        prepared = frames.prepare(df)
        result = importing.import_frames(self.engine, [prepared.frame], source=name)
        errors = []
        for e in result.errors:
            row = frames.row_of(prepared, e.line)
            errors.append(RowProblem(name, row + 1, e.field, e.reason, prepared.labels[row]))
        self._audit("events.import", name, f"{result.accepted} accepted, {result.rejected} rejected")
        return ImportReport(result.accepted, result.duplicates, result.rejected, result.future, tuple(errors), (name,))

    # ------------------------------------------------------------------ metrics

    def metric(self, code: str | None = None, /, *, template: str | None = None, **fields: Any) -> MetricCreate:
        """A metric by code; with fields, define it (new code) or edit it (fields replace the
        stored ones), validated as the metric editor validates it.

        `template` starts a new metric from a quick template (`api_requests`, `llm_tokens`,
        `worker_duration`, `storage_gb`, `emails_sent`, `unique_users`). Without `code` the
        code comes from the name (as the editor makes it), so running a cell again edits the
        same metric. A code cannot change once saved. Raises `ValidationFailed` (field →
        message, as the editor shows them) and saves nothing when the definition is refused."""
        if code is None and template is None and not fields:
            raise TypeError("give a metric code, or the fields of a metric to define")
        if template is None and not fields:
            return self._workspace().metric(code)  # WorkspaceError naming the known codes
        data: dict[str, Any] = {}
        if template is not None:
            if template not in metrics.TEMPLATES:
                raise ValidationFailed("metric", {"template": f"unknown template '{template}' (templates: "
                                                  f"{', '.join(metrics.TEMPLATES)})"})
            data.update(metrics.TEMPLATES[template].form())
        if code is None:
            code = fields.get("code") or (metrics.slugify(str(fields["name"])) if fields.get("name") else data.get("code"))
        current = metrics.get_metric(self.engine, code=code) if code else None
        if current is not None and template is None:
            data.update(documents._metric_json(current))
        data.update(fields)
        data["code"] = fields.get("code", code)  # a different `code=` for a saved metric is refused below
        errors = metrics.form_errors(self.engine, data, current_code=current.code if current else None)
        if errors:
            raise ValidationFailed("metric", errors)
        if current is None:
            saved = metrics.create_metric(self.engine, data=data)
            self._audit("metric.create", saved.code)
        else:
            saved = metrics.update_metric(self.engine, code=current.code, data=data)
            self._audit("metric.update", saved.code)
        return metrics.validate_metric(documents._metric_json(saved))

    def preview_metric(self, *, template: str | None = None, window: str = "all", **fields: Any) -> MetricPreview:
        """The metric editor's preview of a definition, without saving it: what Save would
        refuse, the aggregation written out on the stored events it selects (`window`: "all"
        or "30d"), the events skipped and why, the group breakdown and an example event."""
        data: dict[str, Any] = dict(metrics.TEMPLATES[template].form()) if template else {}
        data.update(fields)
        data.setdefault("code", metrics.slugify(str(data.get("name") or "")))
        current = data["code"] if metrics.get_metric(self.engine, code=data["code"]) else None
        found = preview.editor_preview(self.engine, self._events(), data, current_code=current, window_key=window)
        return MetricPreview(found.errors, found.preview_errors, found.metric, found.calculation, found.event)

    def delete_metric(self, code: str) -> list[str]:
        """Delete a metric and its charges and quotas in every plan (as the app does); returns
        the plans changed."""
        self._workspace().metric(code)
        changed = plan_store.remove_metric_from_plans(self.engine, code=code)
        metrics.delete_metric(self.engine, code=code)
        self._audit("metric.delete", code, ", ".join(changed))
        return changed

    # ------------------------------------------------------------------ plans

    def _metric_types(self) -> dict[str, str]:
        return {m.code: m.metric_type.value for m in self._workspace().metrics}

    def _plan_data(self, code: str | None, based_on: str | None, fields: Mapping[str, Any]) -> dict[str, Any]:
        ws = self._workspace()
        known = {p.code: p for p in ws.plans}
        base = based_on if based_on is not None else code
        data: dict[str, Any] = {}
        if base in known:
            data = known[base].model_dump(mode="json", exclude_none=True)
        elif based_on is not None:
            ws.plan(based_on)  # WorkspaceError naming the known plans
        for key in ("charges", "quotas"):
            if isinstance(fields.get(key), Mapping):
                data[key] = _merged_entries(data.get(key, []), fields[key])
        data.update({k: v for k, v in fields.items() if not (k in ("charges", "quotas") and isinstance(v, Mapping))})
        if code is not None:
            data["code"] = code
        return data

    def plan(self, code: str, /, *, based_on: str | None = None, **fields: Any) -> Plan:
        """A plan by code; with fields, define it (new code) or edit it, validated as the plan
        form validates it (`plans.plan_errors` with the workspace's metrics).

        `charges` / `quotas` may be a list (replacing them) or a mapping metric code → fields
        to change in that metric's entry (a new code adds one; None removes it), e.g.
        `charges={"api_requests": {"unit_price": "0.002"}}`. `based_on` starts a new plan
        from a copy of another. Amounts may be Decimals, ints or text (never floats' binary).
        Raises `ValidationFailed` (dotted path → message) and saves nothing when refused."""
        if based_on is None and not fields:
            return self._workspace().plan(code)
        data = self._plan_data(code, based_on, fields)
        problems = plan_errors(data, self._metric_types())
        if problems:
            raise ValidationFailed("plan", dict(problems))
        saved = plan_store.save_plan(self.engine, plan=data)
        self._audit("plan.save", saved.code)
        return saved

    def draft(self, source: str, /, *, code: str | None = None, **fields: Any) -> Plan:
        """A copy of plan `source` with changes, NOT saved (the Backtest page's draft): code
        `<source>_draft` unless given, name "<name> (draft)", same currency and interval.
        Fields as in `plan()`. Validated as the plan form validates it; pass it to
        `backtest()` or `compare()` beside stored plans, or `plan(draft.code, **…)` to keep it."""
        ws = self._workspace()
        original = ws.plan(source)
        taken = [p.code for p in ws.plans]
        data = drafts.duplicate(original, taken)
        if code is not None:
            data["code"] = code
        for key in ("charges", "quotas"):
            if isinstance(fields.get(key), Mapping):
                data[key] = _merged_entries(data.get(key, []), fields[key])
        data.update({k: v for k, v in fields.items() if not (k in ("charges", "quotas") and isinstance(v, Mapping))})
        try:
            return drafts.draft_plan(data, self._metric_types(), taken)
        except drafts.DraftError as exc:
            raise ValidationFailed("draft", dict(exc.errors)) from None

    def delete_plan(self, code: str) -> None:
        """Delete a plan and its subscriptions (as the app does)."""
        self._workspace().plan(code)
        plan_store.delete_plan(self.engine, code=code)
        self._audit("plan.delete", code)

    def subscribe(self, customer_id: str, plan: str, start: str | date | None = None) -> None:
        """Put a customer on a plan from `start` (a date, or an ISO 8601 time; None: the
        default anchor, the first of the month of the earliest event), checked as a workspace
        file's subscription is (WorkspaceError naming what is wrong)."""
        if isinstance(start, date):
            start = start.isoformat()
        item = {"customer_id": customer_id, "plan": plan, **({"start": start} if start is not None else {})}
        documents.import_document(self.engine, {"subscriptions": [item]}, merge=True)
        self._audit("subscriptions.save", customer_id, plan)

    # ------------------------------------------------------------------ figures

    def aggregate(self, metric: str | MetricCreate, start: Time = None, end: Time = None, *,
                  group_by: Sequence[str] | None = None, customers: Sequence[str] | str | None = None,
                  per_customer: bool = False) -> Aggregate:
        """A metric over [start, end) (contract §2, `metering aggregate`, the Usage page):
        value, events, skipped events by reason and groups. `group_by` replaces the metric's
        own (for this question only); `customers` limits it to those customers;
        `per_customer` adds each customer's value."""
        m = self._resolve_metric(metric)
        if group_by is not None:
            m = m.model_copy(update={"group_by": [group_by] if isinstance(group_by, str) else list(group_by)})
        lo, hi = _time_us(start, "start"), _time_us(end, "end")
        if lo is not None and hi is not None and hi <= lo:
            raise ValueError("end must be later than start")
        ids = [customers] if isinstance(customers, str) else (list(customers) if customers is not None else None)
        events = self._events()
        result = aggregation.aggregate(events, m, start=lo, end=hi, customer_ids=ids)
        per = aggregation.aggregate_by_customer(events, m, start=lo, end=hi, customer_ids=ids) if per_customer else None
        return Aggregate(m, None if lo is None else from_us(lo), None if hi is None else from_us(hi), result, per)

    def usage_series(self, metric: str | MetricCreate, start: Time = None, end: Time = None, *,
                     split_by: str | None = None, customers: Sequence[str] | str | None = None) -> UsageSeries:
        """The metric per UTC day in [start, end) (× value of property `split_by`), as the
        Usage page's chart: every day of the window present, 0 on days without events."""
        m = self._resolve_metric(metric)
        lo, hi = _time_us(start, "start"), _time_us(end, "end")
        ids = [customers] if isinstance(customers, str) else (list(customers) if customers is not None else None)
        df = usage_series.daily_usage(self._events(), m, start=lo, end=hi, customer_ids=ids, split_by=split_by)
        return UsageSeries(m, split_by, df)

    def timeline(self, plan: str, metric: str, periods: int = 3, *, customer: str | None = None) -> Timeline:
        """One metric under one plan over each customer's first `periods` billing periods
        (`metering timeline`): usage, available quota, carryover, rejected, overage, amount.
        Every customer in the events is priced under `plan` (a what-if), anchored at its
        subscription start, else at the default anchor."""
        if isinstance(periods, bool) or not isinstance(periods, int) or not 1 <= periods <= timelines.MAX_PERIODS:
            raise ValueError(f"periods must be a whole number between 1 and {timelines.MAX_PERIODS}")
        ws = self._workspace()
        p, m = timelines.plan_and_metric(ws, plan, metric)
        rows = timelines.customer_timelines(self._events(), ws, p, m, periods, customer_id=customer)
        return Timeline(m, p.code, p.currency, rows)

    def invoices(self, month: str | tuple[int, int] | None = None, *, start: Time = None, end: Time = None,
                 plan: str | None = None, customer: str | None = None) -> Invoices:
        """Invoices for `month` (YYYY-MM: each customer's first billing period starting in
        it, `metering invoice --period`) or for the window [start, end) billed as one period.
        Without `plan` every subscriber under its plan; with `plan` every customer in the
        events under that plan (a what-if)."""
        ws = self._workspace()
        chosen_month = window = None
        if month is not None:
            if start is not None or end is not None:
                raise ValueError("give either a month or start and end, not both")
            chosen_month = _month(month)
            label = f"{chosen_month[0]:04d}-{chosen_month[1]:02d}"
        elif start is not None and end is not None:
            lo, hi = _time_us(start, "start"), _time_us(end, "end")
            assert lo is not None and hi is not None
            if hi <= lo:
                raise ValueError("end must be later than start")
            window = (from_us(lo), from_us(hi))
            label = f"{billing.iso(window[0])} to {billing.iso(window[1])}"
        else:
            raise ValueError("give a month (YYYY-MM), or start and end")
        if plan is not None:
            ws.plan(plan)
        result = invoices.run(self._events(), ws, plan_code=plan, month=chosen_month, window=window, customer_id=customer)
        return Invoices(tuple(result), {p.code: p for p in ws.plans}, {m.code: m.unit for m in ws.metrics}, label,
                        window)

    def invoice(self, customer: str, month: str | tuple[int, int], *, plan: str | None = None) -> InvoiceView:
        """One customer's invoice for `month` (under its subscription, or under `plan`)."""
        found = self.invoices(month, plan=plan, customer=customer)
        if not len(found):
            raise ValueError(f"customer '{customer}' has no billing period starting in {found.label}")
        return found[customer]

    def _plans(self, plans: Sequence[str | Plan]) -> list[Plan]:
        ws = self._workspace()
        return [p if isinstance(p, Plan) else ws.plan(p) for p in plans]

    def compare(self, plans: Sequence[str | Plan], month: str | tuple[int, int], *,
                customers: Sequence[str] | None = None) -> Comparison:
        """The same usage priced under several plans for `month` (the first is the
        baseline): every customer in the events, each anchored at its subscription start."""
        ws = self._workspace()
        chosen = self._plans(plans)
        ym = _month(month)
        result = compare.compare_plans(self._events(), ws.metrics, chosen, subscriptions=ws.subscriptions,
                                       tz=ws.timezone, month=ym, customer_ids=customers)
        return Comparison(result, {p.code: p.name for p in chosen}, f"{ym[0]:04d}-{ym[1]:02d}")

    def backtest(self, plans: Sequence[str | Plan], months: str | tuple[str, str] | Sequence[str], *,
                 cohort: Sequence[str] | None = None, threshold: Decimal | int | str = DEFAULT_GUARDRAIL) -> BacktestResult:
        """2–6 plans (stored codes or drafts; the first is the baseline) priced over months of
        real usage (`"2026-10"`, or `("2026-10", "2026-12")` first and last), exactly as the
        invoices are (`metering backtest`, the Backtest page). `cohort`: the customers to price
        (default: every customer in the events; `subscribers(plan)` for a plan's). `threshold`:
        the guardrail, "no customer pays more than +threshold %"."""
        first, last = (months, months) if isinstance(months, str) else (months[0], months[-1])
        chosen = self._plans(plans)
        limit = Decimal(str(threshold))
        if not limit.is_finite() or limit < 0:
            raise ValueError("threshold must be a percentage, 0 or more")
        result = backtest.run(self._events(), self._workspace(), chosen, backtest.month_range(first, last),
                              customer_ids=list(cohort) if cohort is not None else None)
        return BacktestResult(result, limit)

    def _resolve_metric(self, metric: str | MetricCreate) -> MetricCreate:
        if isinstance(metric, str):
            return self._workspace().metric(metric)
        return metrics.validate_metric(metric)


def _merged_entries(current: list[dict[str, Any]], changes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Charges or quotas (lists of dicts keyed by `metric`) with `changes` applied: metric →
    fields to set (a new metric adds an entry; None removes the metric's entry)."""
    out = [dict(item) for item in current]
    for code, change in changes.items():
        at = next((i for i, item in enumerate(out) if item.get("metric") == code), None)
        if change is None:
            if at is not None:
                out.pop(at)
            continue
        if not isinstance(change, Mapping):
            raise TypeError(f"{code}: give the fields to change as a dict, or None to remove it")
        if at is None:
            out.append({"metric": code, **change})
        else:
            entry = out[at]
            if "model" in change and change["model"] != entry.get("model"):
                entry = {"metric": code}  # another model: the old model's fields do not carry over
            entry.update(change)
            out[at] = entry
    return out


__all__ = ["Workspace", "ValidationFailed"]
