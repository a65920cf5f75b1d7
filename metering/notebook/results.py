"""Typed results of the notebook API: imports, metric previews, aggregates, usage series and
timelines. Each converts to pandas (`to_pandas()`, Decimal amounts kept exact in object
columns), displays in Jupyter (`_repr_html_`, every user text escaped) and plots
(`chart()`, Altair, never more rows than Altair embeds). The figures are the engine's own
objects (`metering.engine.interface.AggregateResult`, `metering.billing.TimelinePeriod`, …),
kept on the result, so nothing is recomputed or rounded here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from metering import billing, usage_series
from metering.engine.interface import AggregateResult
from metering.models import MetricBase
from metering.notebook import charts
from metering.notebook import html as h
from metering.preview import Calculation, fmt, group_label, plural

ZERO = Decimal(0)
HTML_ROWS = 20  # rows a rich display shows before "… and N more"


class ValidationFailed(ValueError):
    """A metric or plan the app would refuse to save: `errors` maps each field (a dotted path
    for plans: `charges.0.unit_price`) to the app's message for it."""

    def __init__(self, kind: str, errors: Mapping[str, str]) -> None:
        self.kind = kind
        self.errors = dict(errors)
        listed = "; ".join(f"{k}: {v}" if k else v for k, v in self.errors.items())
        super().__init__(f"{kind} not saved: {listed}")


def _more(shown: int, total: int) -> str:
    return h.paragraph(f"… and {total - shown:,} more (to_pandas() has them all)") if total > shown else ""


def _when(value: datetime | None) -> str:
    return "—" if value is None else billing.iso(value)


# --------------------------------------------------------------------------- imports


@dataclass(frozen=True)
class RowProblem:
    """One rejected row: the file (or "DataFrame"), its line (a frame: its position, 1 = first
    row), the frame's index label (`row`, frames only), the field and the reason."""

    source: str
    line: int
    field: str
    reason: str
    row: Any = None


@dataclass(frozen=True)
class ImportReport:
    """What adding events did, as the app's import reports it: events stored (`accepted`),
    already stored (`duplicates`: same idempotency key), rejected rows with their line and
    reason, and how many valid events are dated after now (`future`)."""

    accepted: int
    duplicates: int
    rejected: int
    future: int
    errors: tuple[RowProblem, ...] = ()
    sources: tuple[str, ...] = ()  # the files (or "DataFrame") read, in order

    def to_json(self) -> dict[str, Any]:
        """The `metering import` document (`file` on each error when several files were read)."""
        several = len(self.sources) > 1
        return {
            "accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected,
            "future": self.future,
            "errors": [{**({"file": e.source} if several else {}), "line": e.line, "field": e.field,
                        "reason": e.reason} for e in self.errors],
        }

    def to_pandas(self) -> pd.DataFrame:
        """One row per rejected row: source, line, row (a frame's index label), field, reason."""
        return pd.DataFrame([(e.source, e.line, e.row, e.field, e.reason) for e in self.errors],
                            columns=["source", "line", "row", "field", "reason"])

    def _repr_html_(self) -> str:
        head = (f"{plural(self.accepted, 'event')} stored · {plural(self.duplicates, 'duplicate')} (already stored) · "
                f"{plural(self.rejected, 'rejected row')}"
                + (f" · {plural(self.future, 'event')} dated in the future" if self.future else ""))
        parts = [h.paragraph(head)]
        if self.errors:
            several = len(self.sources) > 1  # the source column only when it tells files apart
            rows = [((e.source,) if several else ()) + (e.line, e.field, e.reason) for e in self.errors[:HTML_ROWS]]
            headers = [*(["source"] if several else []), "line", "field", "reason"]
            parts += [h.table(headers, rows, numeric=[1 if several else 0]), _more(len(rows), len(self.errors))]
        return h.block(*parts)


# --------------------------------------------------------------------------- metric preview


@dataclass(frozen=True)
class MetricPreview:
    """The metric editor's live preview for a definition not saved: what Save would refuse
    (`errors`, the app's messages), the calculation written out on the stored events (or on
    example events when none match), the skipped events and why, and an example event."""

    errors: dict[str, str]
    preview_errors: dict[str, str]
    metric: MetricBase | None
    calculation: Calculation | None
    example_event: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        """Whether the definition can be saved as it is."""
        return not self.errors

    @property
    def formula(self) -> str | None:
        """The aggregation written out: `12 + 30 + 7 + … = 48,210 over 1,204 events`."""
        return None if self.calculation is None else self.calculation.formula

    @property
    def skipped(self) -> str | None:
        """Events that matched but added nothing, with the reasons (None: none skipped)."""
        return None if self.calculation is None else self.calculation.skipped_text

    @property
    def skip_reasons(self) -> dict[str, int]:
        """Why matching events were skipped: reason → number of events."""
        return {} if self.calculation is None else dict(self.calculation.result.skip_reasons)

    def to_pandas(self) -> pd.DataFrame:
        """The group breakdown (largest first): group, value (Decimal), events, skipped."""
        calc = self.calculation
        rows = [] if calc is None else [(g.label, g.value, g.events, g.skipped) for g in calc.groups]
        return pd.DataFrame(rows, columns=["group", "value", "events", "skipped"])

    def chart(self) -> Any:
        """The group breakdown as bars (the editor's top groups)."""
        df = self.to_pandas()
        return charts.bars(df, label="group", value="value", title="value")

    def _repr_html_(self) -> str:
        parts = []
        if self.errors:
            parts += [h.paragraph("Save would refuse it:"), h.items(f"{k}: {v}" for k, v in self.errors.items())]
        calc = self.calculation
        if calc is None:
            parts.append(h.paragraph("No preview yet: " + "; ".join(f"{k}: {v}" for k, v in self.preview_errors.items())))
            return h.block(*parts)
        parts += [h.paragraph(calc.formula), h.paragraph(calc.note)]
        if calc.skipped_text:
            parts.append(h.paragraph(calc.skipped_text))
        if calc.groups:
            rows = [(g.label, fmt(g.value), fmt(g.events), fmt(g.skipped)) for g in calc.groups]
            parts.append(h.table(["group", "value", "events", "skipped"], rows, numeric=[1, 2, 3]))
            if calc.more_groups:
                parts.append(h.paragraph(f"… and {plural(calc.more_groups, 'more group')}"))
        return h.block(*parts)


# --------------------------------------------------------------------------- aggregate


@dataclass(frozen=True)
class Aggregate:
    """A metric over a window (contract §2), as `metering aggregate` and the Usage page compute
    it: value, events, skipped events by reason, and the value per group (the metric's
    `group_by`), optionally per customer."""

    metric: MetricBase
    start: datetime | None
    end: datetime | None
    result: AggregateResult
    by_customer: dict[str, AggregateResult] | None = None

    @property
    def value(self) -> Decimal:
        """The metric's value over the window (exact)."""
        return self.result.value

    @property
    def events(self) -> int:
        """Events that matched the metric (skipped ones included)."""
        return self.result.events

    @property
    def skipped(self) -> int:
        """Matching events that added nothing (no readable value)."""
        return self.result.skipped

    @property
    def skip_reasons(self) -> dict[str, int]:
        """Why matching events were skipped: reason → number of events."""
        return dict(self.result.skip_reasons)

    def to_json(self) -> dict[str, Any]:
        """The `metering aggregate` document."""
        return self.result.to_json()

    def to_pandas(self, by: str = "group") -> pd.DataFrame:
        """`by="group"`: one row per group (a column per group_by path, then value, events,
        skipped), or one row without groups; `by="customer"` (with `per_customer=True`): one
        row per customer. Values are exact Decimals."""
        if by == "customer":
            if self.by_customer is None:
                raise ValueError("aggregate(..., per_customer=True) gives the values per customer")
            rows = [(cid, r.value, r.events, r.skipped) for cid, r in sorted(self.by_customer.items())]
            return pd.DataFrame(rows, columns=["customer_id", "value", "events", "skipped"])
        if by != "group":
            raise ValueError('by must be "group" or "customer"')
        if not self.result.groups:
            r = self.result
            return pd.DataFrame([(r.value, r.events, r.skipped)], columns=["value", "events", "skipped"])
        paths = list(self.result.groups[0].group)
        rows = [(*(g.group.get(p) for p in paths), g.value, g.events, g.skipped) for g in self.result.groups]
        return pd.DataFrame(rows, columns=[*paths, "value", "events", "skipped"])

    def chart(self, by: str = "group", top: int = 30) -> Any:
        """Bars per group (or per customer), the `top` largest; for count and sum the rest are
        one "(other)" bar (their sum), for other aggregations they are left out."""
        df = self.to_pandas(by)
        if by == "group" and not self.result.groups:
            df = pd.DataFrame({"label": [self.metric.code], "value": [self.value]})
        else:
            key = "customer_id" if by == "customer" else None
            labels = df[key] if key else [group_label(g.group) for g in self.result.groups]
            df = pd.DataFrame({"label": list(labels), "value": list(df["value"])})
        df, _ = charts.top_n(df, label="label", value="value", n=top,
                             additive=usage_series.is_additive(self.metric))
        return charts.bars(df, label="label", value="value", title=f"{self.metric.code} ({self.metric.unit})")

    def _repr_html_(self) -> str:
        r, m = self.result, self.metric
        when = "all time" if self.start is None and self.end is None else f"{_when(self.start)} to {_when(self.end)}"
        parts = [h.paragraph(f"{m.name} ({m.code}): {fmt(r.value)} {m.unit} · {plural(r.events, 'event')} · {when}")]
        if r.skipped:
            reasons = "; ".join(f"{k} ({fmt(n)})" for k, n in sorted(r.skip_reasons.items(), key=lambda kv: -kv[1]))
            parts.append(h.paragraph(f"{plural(r.skipped, 'event')} skipped: {reasons}"))
        if r.groups:
            rows = [(group_label(g.group), fmt(g.value), fmt(g.events), fmt(g.skipped)) for g in r.groups[:HTML_ROWS]]
            parts += [h.table(["group", "value", "events", "skipped"], rows, numeric=[1, 2, 3]),
                      _more(len(rows), len(r.groups))]
        return h.block(*parts)


# --------------------------------------------------------------------------- usage series


_FOLD = {"count": "sum", "sum": "sum", "max": "max", "unique_count": "max", "min": "min", "latest": "last"}


@dataclass(frozen=True)
class UsageSeries:
    """A metric per UTC day (× value of one property), as the Usage page's chart computes it
    (`usage_series.daily_usage`): day, group, value (Decimal), events, skipped."""

    metric: MetricBase
    split_by: str | None
    frame: pd.DataFrame = field(repr=False)

    def to_pandas(self) -> pd.DataFrame:
        """One row per day (× group); a copy."""
        return self.frame.copy()

    def chart(self, top: int = 8) -> Any:
        """Lines per day (one per group: the `top` groups, the rest summed into "(other)" for
        count and sum, left out otherwise). Long spans are folded into weeks, months or years
        so the chart stays within Altair's row limit: sums add up, max and unique_count show
        the peak day, min the lowest, latest the last."""
        df = self.frame[["day", *(["group"] if self.split_by else []), "value"]]
        if self.split_by and len(df):
            totals = df.groupby("group")["value"].agg(lambda s: sum(s, ZERO)).reset_index()
            kept, dropped = charts.top_n(totals, label="group", value="value", n=top,
                                         additive=usage_series.is_additive(self.metric))
            if dropped:
                names = set(kept["group"]) - {charts.OTHER}
                inside = df[df["group"].isin(names)]
                if usage_series.is_additive(self.metric):
                    rest = df[~df["group"].isin(names)].groupby("day")["value"].agg(lambda s: sum(s, ZERO)).reset_index()
                    inside = pd.concat([inside, rest.assign(group=charts.OTHER)], ignore_index=True)
                df = inside
        groups = df["group"].nunique() if self.split_by and len(df) else 1
        df, step = charts.coarsen_days(df, how=_FOLD[self.metric.aggregation.value], groups=groups)
        return charts.daily(df, title=f"{self.metric.code} ({self.metric.unit})", step=step)

    def _repr_html_(self) -> str:
        df = self.frame
        m = self.metric
        if not len(df):
            return h.paragraph(f"{m.name} ({m.code}): no days in the window")
        head = f"{m.name} ({m.code}) per UTC day, {df['day'].min()} to {df['day'].max()}"
        if usage_series.is_additive(m):
            head += f": {fmt(sum(df['value'], ZERO))} {m.unit} in all"
        cols = ["day", *(["group"] if self.split_by else []), "value", "events", "skipped"]
        rows = [[str(r[c]) if c in ("day", "group") else fmt(r[c]) for c in cols] for _, r in df.head(HTML_ROWS).iterrows()]
        return h.block(h.paragraph(head), h.table(cols, rows, numeric=range(len(cols) - 3, len(cols))),
                       _more(len(rows), len(df)))


# --------------------------------------------------------------------------- timeline


TIMELINE_COLUMNS = ["customer_id", "period", "start", "end", "usage", "available", "carryover", "rejected",
                    "overage", "amount", "events"]


@dataclass(frozen=True)
class Timeline:
    """One metric under one plan, period by period per customer (`metering timeline`, the
    Timeline page): usage and, by metric type, available quota, carryover, rejected events,
    overage and the amount billed (None where they do not apply)."""

    metric: MetricBase
    plan_code: str
    currency: str
    periods: dict[str, list[billing.TimelinePeriod]]

    def to_json(self) -> dict[str, Any]:
        """The `metering timeline` document."""
        return billing.timeline_json(self.metric.code, self.periods)

    def to_pandas(self, customers: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per customer × period (Decimal amounts; None where not applicable), for
        every customer or the ones given."""
        chosen = sorted(self.periods) if customers is None else [c for c in sorted(set(customers)) if c in self.periods]
        rows = [(cid, i, p.start, p.end, p.usage, p.available, p.carryover, p.rejected, p.overage, p.amount, p.events)
                for cid in chosen for i, p in enumerate(self.periods[cid])]
        return pd.DataFrame(rows, columns=TIMELINE_COLUMNS)

    def customer(self, customer_id: str) -> pd.DataFrame:
        """One customer's periods."""
        if customer_id not in self.periods:
            known = ", ".join(sorted(self.periods)[:10]) or "none"
            raise KeyError(f"customer '{customer_id}' is not in this timeline (customers: {known}…)")
        return self.to_pandas([customer_id])

    def chart(self, customers: Sequence[str] | None = None) -> Any:
        """Usage per period (available quota dashed) for `customers`, by default the ones with
        the most usage: as many as fit in Altair's row limit, at most 10."""
        n_periods = max((len(p) for p in self.periods.values()), default=1)
        if customers is None:
            ranked = sorted(self.periods, key=lambda c: (-sum((p.usage for p in self.periods[c]), ZERO), c))
            customers = ranked[: max(1, min(10, charts.MAX_ROWS // max(n_periods, 1)))]
        return charts.periods(self.to_pandas(customers), title=f"{self.metric.code} ({self.metric.unit})")

    def _repr_html_(self) -> str:
        rows = []
        for cid, ps in sorted(self.periods.items())[:HTML_ROWS]:
            usage = sum((p.usage for p in ps), ZERO)
            amount = None if all(p.amount is None for p in ps) else sum((p.amount or ZERO for p in ps), ZERO)
            overage = None if all(p.overage is None for p in ps) else sum((p.overage or ZERO for p in ps), ZERO)
            rows.append((cid, len(ps), fmt(usage), fmt(overage), "—" if amount is None else format(amount, "f")))
        head = (f"{self.metric.name} ({self.metric.code}) under plan {self.plan_code}: "
                f"{plural(len(self.periods), 'customer')}")
        return h.block(h.paragraph(head),
                       h.table(["customer", "periods", "usage", "overage", f"amount ({self.currency})"], rows,
                               numeric=[1, 2, 3, 4]),
                       _more(len(rows), len(self.periods)))
