"""Usage of a metric per customer and billing period, by metric type (contract §3).

A customer's periods come from a :class:`Schedule` (anchor, the plan's interval, the workspace
timezone). Every function takes the customers' windows and answers one :class:`PeriodUsage`
per customer, customers without events included (usage 0):

- :func:`charge_metered`: the aggregate of the events in the period (resets every period).
- :func:`charge_recurring`: the aggregate of all the customer's events before the end of the
  period, however early (never resets).
- :func:`limit_metered`: a hard quota. Events are taken in time order (timestamp, then store
  order); an event that would take usage past ``limit`` is *rejected* and not counted.
  Unused quota is lost; ``available`` is the limit.
- :func:`limit_recurring`: count or sum per period with a soft quota that carries over:
  available_k = limit + carryover_(k−1); carryover_k = max(available_k − used_k, 0) capped by
  ``max_carryover``; overage_k = max(used_k − available_k, 0).

The event engine (metering.engine.interface.Events) computes the usage per customer and
window (`window_usage`, `limit_usage`, `aggregate_by_customer`); this module turns it into
periods by metric type (running totals, carryover, overage) and prices them.

Rules decided here (the contract is silent):

- A limit is compared with whole counts for count and unique_count: a limit of 2.5 admits 2.
- limit_metered: events whose value is skipped (missing or not a number) are neither counted
  nor rejected; ``rejected`` counts only events refused by the quota. A negative value in a
  sum always fits (it lowers usage).
- limit_metered ``max``/``latest``: usage is the max / latest of the *accepted* values.
- limit_recurring: the first period of a chain starts with no carryover; ``rejected`` is null
  (a soft limit rejects nothing); the overage amount is null without ``overage_unit_price``.
- charge_recurring with a percentage charge: the per-event fee counts the events *in the
  period* (each event pays its fee once), while the rate applies to the running usage.
- Periods before the anchor (the subscription start) are never billed (see invoices).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from typing import Any

import numpy as np

from metering import periods
from metering.engine.interface import AggregateResult, Events, GroupResult
from metering.models import Aggregation, MetricBase, MetricType, as_utc
from metering.money import round_money
from metering.plans import Plan, Quota
from metering.pricing import ChargeResult, price_charge
from metering.values import decimal_str, normalized

# Usage can carry 58 digits (40 integer, 18 decimal places): every sum, difference and format
# here runs with room to spare, never at the default 28-digit precision that would round.
EXACT = Context(prec=120, traps=[InvalidOperation, DivisionByZero, Overflow])

Window = tuple[datetime, datetime]
ZERO = Decimal(0)
_INT64_MAX = np.iinfo(np.int64).max


# --- schedules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A customer's billing periods: period k is ``bounds(k)`` = [start, end) in aware UTC."""

    anchor: datetime
    interval: str
    tz: str = "UTC"

    def bounds(self, k: int) -> Window:
        return periods.period_bounds(self.anchor, self.interval, k, tz=self.tz)

    def first(self, n: int) -> list[Window]:
        """Periods 0 … n−1."""
        return list(_first_periods(self, n))

    def period_in_month(self, year: int, month: int) -> Window | None:
        """The first period from the anchor on (period 0, 1, …) starting in that calendar month
        (read in ``tz``), or None when none does."""
        found = periods.first_period_starting_in_month(
            self.anchor, self.interval, year, month, tz=self.tz, from_anchor=True
        )
        if found is None or found[0] < as_utc(self.anchor):
            return None
        return found

    def chain_to(self, window: Window) -> list[Window]:
        """The periods a carryover runs through up to ``window``: every whole period from the
        anchor that ends at or before the window's start, then the window itself."""
        start = as_utc(window[0])
        out: list[Window] = []
        k = 0
        while True:
            lo, hi = self.bounds(k)
            if hi > start:
                break
            if hi > lo:
                out.append((lo, hi))
            k += 1
        out.append((start, as_utc(window[1])))
        return out


@lru_cache(maxsize=256)
def _first_periods(schedule: Schedule, n: int) -> tuple[Window, ...]:
    # Customers share schedules (one default anchor): compute each list of periods once.
    return tuple(schedule.bounds(k) for k in range(n))


def exact_number(value: Decimal) -> Decimal:
    """The value without trailing zeros or exponent (12.500 → 12.5), exactly, however long."""
    with localcontext(EXACT):
        return normalized(value)


def decimal_text(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros (1000, 0.3), exactly."""
    with localcontext(EXACT):
        return decimal_str(value)


def default_anchor(events: Events, *, tz: str) -> datetime | None:
    """Midnight of the first day of the month (in ``tz``) of the earliest event, any event."""
    bounds = events.time_bounds()
    if bounds is None:
        return None
    earliest = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(bounds[0]))
    return periods.default_anchor(earliest, tz=tz)


# --- results --------------------------------------------------------------------------------


@dataclass(slots=True)
class PeriodUsage:
    """One customer's usage of one metric in one period.

    ``events`` counts the matching events the usage reads (skipped and rejected included; for
    charge_recurring every event up to the period's end); ``period_events`` the matching events
    inside [start, end) (what a percentage charge's per-event fee counts). Fields that do not
    apply to the metric type are None.
    """

    customer_id: str
    metric: str
    metric_type: str
    start: datetime
    end: datetime
    usage: Decimal
    events: int = 0
    skipped: int = 0
    period_events: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    groups: tuple[GroupResult, ...] = ()
    available: Decimal | None = None
    carryover: Decimal | None = None
    rejected: int | None = None
    overage: Decimal | None = None


def _group_windows(windows: Mapping[str, Window]) -> dict[Window, list[str]]:
    out: dict[Window, list[str]] = {}
    for cid, (start, end) in windows.items():
        out.setdefault((as_utc(start), as_utc(end)), []).append(cid)
    return out


def _type(metric: MetricBase) -> str:
    return str(getattr(metric.metric_type, "value", metric.metric_type))


def _agg(metric: MetricBase) -> str:
    return str(getattr(metric.aggregation, "value", metric.aggregation))


# --- charge_metered / charge_recurring ------------------------------------------------------


def charge_metered(events: Events, metric: MetricBase, windows: Mapping[str, Window]) -> dict[str, PeriodUsage]:
    """Per customer: the aggregate of its events in its window (usage resets every period)."""
    out: dict[str, PeriodUsage] = {}
    for (start, end), cids in _group_windows(windows).items():
        results = events.aggregate_by_customer(metric, start=start, end=end, customer_ids=cids)
        for cid in cids:
            r = results.get(cid)
            out[cid] = _period_usage(metric, cid, start, end, r, period_events=r.events if r else 0)
    return out


def _period_usage(
    metric: MetricBase, cid: str, start: datetime, end: datetime, r: AggregateResult | None, *, period_events: int
) -> PeriodUsage:
    """A customer's usage in one period from its aggregate (None: no matching events)."""
    return PeriodUsage(
        cid, metric.code, _type(metric), start, end,
        usage=r.value if r else ZERO,
        events=r.events if r else 0,
        skipped=r.skipped if r else 0,
        period_events=period_events,
        skip_reasons=dict(r.skip_reasons) if r else {},
        groups=tuple(r.groups) if r else (),
    )


def charge_recurring(events: Events, metric: MetricBase, windows: Mapping[str, Window]) -> dict[str, PeriodUsage]:
    """Per customer: the aggregate of all its events before the end of its window, however
    early (usage never resets). ``period_events`` still counts the window's own events."""
    out: dict[str, PeriodUsage] = {}
    for (start, end), cids in _group_windows(windows).items():
        results = events.aggregate_by_customer(metric, start=None, end=end, customer_ids=cids)
        in_period = events.window_usage(metric, [(start, end)], cids)
        for c, cid in enumerate(cids):
            out[cid] = _period_usage(metric, cid, start, end, results.get(cid), period_events=int(in_period.period_events[c, 0]))
    return out


# --- limit_metered --------------------------------------------------------------------------


def limit_metered(
    events: Events, metric: MetricBase, windows: Mapping[str, Window], *, limit: Decimal
) -> dict[str, PeriodUsage]:
    """Per customer: usage under a hard quota in its window, with the events it rejected."""
    limit = Decimal(limit)
    if _agg(metric) == Aggregation.min.value:
        raise ValueError("min cannot be used with a limit metric: a quota caps a minimum")
    out: dict[str, PeriodUsage] = {}
    for (start, end), cids in _group_windows(windows).items():
        found = events.limit_usage(metric, [(start, end)], cids, limit)
        for c, cid in enumerate(cids):
            row = found.get((c, 0))
            used, n, skipped, rejected = (row.usage, row.events, row.skipped, row.rejected) if row else (ZERO, 0, 0, 0)
            out[cid] = PeriodUsage(
                cid, metric.code, _type(metric), start, end, usage=used, events=n,
                skipped=skipped, period_events=n, available=limit, rejected=rejected,
            )
    return out


# --- limit_recurring ------------------------------------------------------------------------


def carry_chain(
    used: Sequence[Decimal], *, limit: Decimal, max_carryover: Decimal | None = None
) -> list[tuple[Decimal, Decimal, Decimal]]:
    """(available, carryover, overage) per period of a soft quota with carryover.

    >>> [(str(a), str(c)) for a, c, _ in carry_chain([Decimal(700), Decimal(900), Decimal(0)], limit=Decimal(1000))][:3]
    [('1000', '300'), ('1300', '400'), ('1400', '1400')]
    """
    out = []
    carry = ZERO
    with localcontext(EXACT):
        for u in used:
            available = limit + carry
            carry = max(available - u, ZERO)
            if max_carryover is not None:
                carry = min(carry, max_carryover)
            overage = max(u - available, ZERO)
            out.append((available, carry, overage))  # exact; JSON text drops trailing zeros
    return out


def limit_recurring(
    events: Events,
    metric: MetricBase,
    chains: Mapping[str, Sequence[Window]],
    *,
    limit: Decimal,
    max_carryover: Decimal | None = None,
) -> dict[str, list[PeriodUsage]]:
    """Per customer: one PeriodUsage per window of its chain (consecutive periods, oldest
    first), with available, carryover and overage; the chain starts with no carryover."""
    if _agg(metric) not in (Aggregation.count.value, Aggregation.sum.value):
        raise ValueError("a limit_recurring metric needs count or sum aggregation")
    limit = Decimal(limit)
    kind, code = _type(metric), metric.code
    out: dict[str, list[PeriodUsage]] = {}
    for chain, cids in _shared_chains(chains).items():
        if not chain:
            for cid in cids:
                out[cid] = []
            continue
        found = events.window_usage(metric, chain, cids)
        usage = [[ZERO if v is None else v for v in row] for row in found.values]
        events_l, skipped_l = found.events.tolist(), found.skipped.tolist()
        for c, cid in enumerate(cids):
            rows = []
            for w, ((start, end), (available, carry, overage)) in enumerate(
                zip(chain, carry_chain(usage[c], limit=limit, max_carryover=max_carryover))
            ):
                rows.append(PeriodUsage(
                    cid, code, kind, start, end, usage=usage[c][w],
                    events=events_l[c][w], skipped=skipped_l[c][w], period_events=events_l[c][w],
                    available=available, carryover=carry, overage=overage,
                ))
            out[cid] = rows
    return out


def _shared_chains(chains: Mapping[str, Sequence[Window]]) -> dict[tuple[Window, ...], list[str]]:
    """Customers grouped by their chain of windows (in UTC); customers usually share one
    chain object, which is then converted once."""
    converted: dict[int, tuple[Window, ...]] = {}
    grouped: dict[tuple[Window, ...], list[str]] = {}
    for cid, chain in chains.items():
        key = converted.get(id(chain))
        if key is None:
            key = converted[id(chain)] = tuple((as_utc(s), as_utc(e)) for s, e in chain)
        grouped.setdefault(key, []).append(cid)
    return grouped


# --- any type -------------------------------------------------------------------------------


def _quota_needed(metric: MetricBase, quota: Quota | None) -> Quota:
    if quota is None:
        raise ValueError(f"'{metric.code}' is a {_type(metric)} metric: it needs a quota (limit) in the plan")
    return quota


def _contiguous(chain: Sequence[Window]) -> bool:
    return all(chain[i][1] == chain[i + 1][0] for i in range(len(chain) - 1))


def _charge_chain(
    events: Events, metric: MetricBase, chain: Sequence[Window], cids: list[str], *, recurring: bool
) -> dict[str, list[PeriodUsage]]:
    """charge_metered / charge_recurring over a contiguous chain, in one pass over the events:
    the aggregate per (customer, window), made running totals for recurring. The groups and skip
    reasons of a preview are left out here (a timeline shows neither)."""
    nb, nc = len(chain), len(cids)
    found = events.window_usage(metric, chain, cids, since_ever=recurring)
    counts = found.events.reshape(-1)
    skipped = found.skipped.reshape(-1)
    period_events = found.period_events.reshape(-1)
    values: list[Decimal | None] = [v for row in found.values for v in row]
    if recurring:
        counts = np.cumsum(found.events, axis=1).reshape(-1)
        skipped = np.cumsum(found.skipped, axis=1).reshape(-1)
        values = _running(values, nc, nb, _agg(metric))
    out: dict[str, list[PeriodUsage]] = {}
    kind = _type(metric)
    for c, cid in enumerate(cids):
        rows = []
        for w, (start, end) in enumerate(chain):
            k = c * nb + w
            value = values[k]
            rows.append(PeriodUsage(
                cid, metric.code, kind, start, end,
                usage=ZERO if value is None else exact_number(value),
                events=int(counts[k]), skipped=int(skipped[k]), period_events=int(period_events[k]),
            ))
        out[cid] = rows
    return out


def _running(values: list[Decimal | None], nc: int, nb: int, agg: str) -> list[Decimal | None]:
    """Per customer, window w's value over all windows ≤ w (sum, count and unique_count add up,
    max and min keep the extreme, latest keeps the newest window that has a value)."""
    out: list[Decimal | None] = [None] * len(values)
    with localcontext(EXACT):
        for c in range(nc):
            acc: Decimal | None = None
            for w in range(nb):
                v = values[c * nb + w]
                if v is not None:
                    if acc is None or agg == Aggregation.latest.value:
                        acc = v
                    elif agg in (Aggregation.sum.value, Aggregation.count.value, Aggregation.unique_count.value):
                        acc = acc + v
                    elif agg == Aggregation.max.value:
                        acc = max(acc, v)
                    elif agg == Aggregation.min.value:
                        acc = min(acc, v)
                out[c * nb + w] = acc
    return out


def _limit_chain(
    events: Events, metric: MetricBase, chain: Sequence[Window], cids: list[str], limit: Decimal
) -> dict[str, list[PeriodUsage]]:
    """limit_metered over a contiguous chain in one pass: each (customer, window) is its own
    group of the hard quota (usage resets every window)."""
    found = events.limit_usage(metric, chain, cids, limit)
    out: dict[str, list[PeriodUsage]] = {}
    for c, cid in enumerate(cids):
        rows = []
        for w, (start, end) in enumerate(chain):
            row = found.get((c, w))
            used, n, skipped, rejected = (row.usage, row.events, row.skipped, row.rejected) if row else (ZERO, 0, 0, 0)
            rows.append(PeriodUsage(
                cid, metric.code, _type(metric), start, end, usage=used, events=n,
                skipped=skipped, period_events=n, available=limit, rejected=rejected,
            ))
        out[cid] = rows
    return out


def usage_chains(
    events: Events,
    metric: MetricBase,
    chains: Mapping[str, Sequence[Window]],
    *,
    quota: Quota | None = None,
) -> dict[str, list[PeriodUsage]]:
    """Usage of any metric type over each customer's chain of periods (oldest first).

    A chain of one window gives the full result (groups, skip reasons) per customer; longer
    contiguous chains (a timeline) are computed in one pass over the events per set of
    customers sharing the chain, without the groups.
    """
    kind = _type(metric)
    if kind == MetricType.limit_recurring.value:
        q = _quota_needed(metric, quota)
        return limit_recurring(events, metric, chains, limit=q.limit, max_carryover=q.max_carryover)
    if kind not in (MetricType.charge_metered.value, MetricType.charge_recurring.value, MetricType.limit_metered.value):
        raise ValueError(f"unknown metric type {kind!r}")
    limit = _quota_needed(metric, quota).limit if kind == MetricType.limit_metered.value else None
    out: dict[str, list[PeriodUsage]] = {}
    for chain, cids in _shared_chains(chains).items():
        if len(chain) > 1 and _contiguous(chain):
            if kind == MetricType.limit_metered.value:
                out.update(_limit_chain(events, metric, chain, cids, Decimal(limit)))  # type: ignore[arg-type]
            else:
                out.update(_charge_chain(events, metric, chain, cids, recurring=kind == MetricType.charge_recurring.value))
            continue
        rows: dict[str, list[PeriodUsage]] = {cid: [] for cid in cids}
        for window in chain:
            windows = {cid: window for cid in cids}
            if kind == MetricType.charge_metered.value:
                slot = charge_metered(events, metric, windows)
            elif kind == MetricType.charge_recurring.value:
                slot = charge_recurring(events, metric, windows)
            else:
                slot = limit_metered(events, metric, windows, limit=limit)  # type: ignore[arg-type]
            for cid, u in slot.items():
                rows[cid].append(u)
        out.update(rows)
    return out


# --- pricing one metric's usage -------------------------------------------------------------


def price_usage(plan: Plan, usage: PeriodUsage) -> tuple[Decimal | None, ChargeResult | None]:
    """(amount rounded to the plan currency or None, the charge's arithmetic or None).

    charge_*: the plan's charge on the usage (None without a charge on the metric);
    limit_recurring: overage × overage_unit_price (None without a price); limit_metered: None.
    """
    if usage.metric_type in (MetricType.charge_metered.value, MetricType.charge_recurring.value):
        charge = plan.charge_for(usage.metric)
        if charge is None:
            return None, None
        result = price_charge(charge, usage.usage, event_count=usage.period_events)
        return round_money(result.amount, plan.currency), result
    if usage.metric_type == MetricType.limit_recurring.value:
        quota = plan.quota_for(usage.metric)
        if quota is None or quota.overage_unit_price is None or usage.overage is None:
            return None, None
        with localcontext(EXACT):
            exact = usage.overage * quota.overage_unit_price
        return round_money(exact, plan.currency), None
    return None, None


# --- timeline -------------------------------------------------------------------------------


@dataclass(slots=True)
class TimelinePeriod:
    start: datetime
    end: datetime
    usage: Decimal
    available: Decimal | None
    carryover: Decimal | None
    rejected: int | None
    overage: Decimal | None
    amount: Decimal | None
    events: int = 0
    charge: ChargeResult | None = None

    def to_json(self, _memo: dict[Any, str] | None = None) -> dict[str, Any]:
        memo: dict[Any, str] = {} if _memo is None else _memo
        return {
            "start": _text(self.start, memo),
            "end": _text(self.end, memo),
            "usage": _text(self.usage, memo),
            "available": _text(self.available, memo),
            "carryover": _text(self.carryover, memo),
            "rejected": self.rejected,
            "overage": _text(self.overage, memo),
            "amount": None if self.amount is None else format(self.amount, "f"),
        }


def _text(value: Any, memo: dict[Any, str]) -> str | None:
    """JSON text of an instant or a decimal; the same values recur across customers and
    periods (period bounds, 0, the limit), so each is formatted once per document."""
    if value is None:
        return None
    found = memo.get(value)  # equal decimals (1.0, 1) have the same text
    if found is None:
        found = memo[value] = iso(value) if isinstance(value, datetime) else decimal_text(value)
    return found


def iso(value: datetime) -> str:
    """An instant as ISO 8601 in UTC with ``Z`` (microseconds only when there are some)."""
    value = as_utc(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def timeline(
    events: Events,
    metric: MetricBase,
    plan: Plan,
    schedules: Mapping[str, Schedule],
    *,
    periods_count: int,
) -> dict[str, list[TimelinePeriod]]:
    """The first ``periods_count`` periods of each customer's schedule: usage and, by type,
    available / carryover / rejected / overage / amount (None where they do not apply)."""
    if periods_count < 1:
        raise ValueError("periods must be at least 1")
    firsts: dict[Schedule, list[Window]] = {}
    chains = {}
    for cid, s in schedules.items():  # one list per schedule, shared by its customers
        if s not in firsts:
            firsts[s] = s.first(periods_count)
        chains[cid] = firsts[s]
    used = usage_chains(events, metric, chains, quota=plan.quota_for(metric.code))
    out: dict[str, list[TimelinePeriod]] = {}
    priced: dict[tuple[Any, ...], tuple[Decimal | None, ChargeResult | None]] = {}
    for cid in sorted(chains):
        rows = []
        for u in used[cid]:
            key = (u.usage, u.period_events, u.overage)  # many periods repeat (0 usage…): price once
            found = priced.get(key)
            if found is None:
                found = priced[key] = price_usage(plan, u)
            amount, result = found
            rows.append(TimelinePeriod(
                u.start, u.end, u.usage, u.available, u.carryover, u.rejected, u.overage, amount,
                events=u.events, charge=result,
            ))
        out[cid] = rows
    return out


def timeline_json(metric_code: str, timelines: Mapping[str, Sequence[TimelinePeriod]]) -> dict[str, Any]:
    """The ``metering timeline`` shape (contract §6)."""
    memo: dict[Any, str] = {}
    return {
        "metric": metric_code,
        "timelines": [
            {"customer_id": cid, "periods": [p.to_json(memo) for p in rows]}
            for cid, rows in sorted(timelines.items())
        ],
    }
