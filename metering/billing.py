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

Everything runs on the frame's columns (numpy / pyarrow); the only Python loop over single
events is limit_metered ``sum`` inside one customer's period after its first rejection.

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
from decimal import ROUND_FLOOR, Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metering import periods
from metering.aggregation import AggregateResult, GroupResult, aggregate_by_customer, select
from metering.frame import DECIMAL, OK, EventFrame, to_us
from metering.models import Aggregation, MetricBase, MetricType
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
        if found is None or found[0] < _utc(self.anchor):
            return None
        return found

    def chain_to(self, window: Window) -> list[Window]:
        """The periods a carryover runs through up to ``window``: every whole period from the
        anchor that ends at or before the window's start, then the window itself."""
        start = _utc(window[0])
        out: list[Window] = []
        k = 0
        while True:
            lo, hi = self.bounds(k)
            if hi > start:
                break
            if hi > lo:
                out.append((lo, hi))
            k += 1
        out.append((start, _utc(window[1])))
        return out


@lru_cache(maxsize=256)
def _first_periods(schedule: Schedule, n: int) -> tuple[Window, ...]:
    # Customers share schedules (one default anchor): compute each list of periods once.
    return tuple(schedule.bounds(k) for k in range(n))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def exact_number(value: Decimal) -> Decimal:
    """The value without trailing zeros or exponent (12.500 → 12.5), exactly, however long."""
    with localcontext(EXACT):
        return normalized(value)


def decimal_text(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros (1000, 0.3), exactly."""
    with localcontext(EXACT):
        return decimal_str(value)


def default_anchor(frame: EventFrame, *, tz: str) -> datetime | None:
    """Midnight of the first day of the month (in ``tz``) of the earliest event, any event."""
    bounds = frame.time_bounds()
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
        out.setdefault((_utc(start), _utc(end)), []).append(cid)
    return out


def _customer_filter(frame: EventFrame, cids: list[str]) -> list[str] | None:
    # No filter when every customer of the frame is asked for: one mask less over all events.
    if len(cids) >= len(frame.customers.values) and set(frame.customers.values) <= set(cids):
        return None
    return cids


def _type(metric: MetricBase) -> str:
    return str(getattr(metric.metric_type, "value", metric.metric_type))


def _agg(metric: MetricBase) -> str:
    return str(getattr(metric.aggregation, "value", metric.aggregation))


def _local_codes(frame: EventFrame, cids: Sequence[str]) -> np.ndarray:
    """frame customer code → position in ``cids`` (−1 for customers not asked for)."""
    lookup = np.full(len(frame.customers.values) + 1, -1, dtype=np.int64)
    index = {v: i for i, v in enumerate(frame.customers.values)}
    for pos, cid in enumerate(cids):
        code = index.get(cid)
        if code is not None:
            lookup[code] = pos
    return lookup


# --- charge_metered / charge_recurring ------------------------------------------------------


def charge_metered(frame: EventFrame, metric: MetricBase, windows: Mapping[str, Window]) -> dict[str, PeriodUsage]:
    """Per customer: the aggregate of its events in its window (usage resets every period)."""
    out: dict[str, PeriodUsage] = {}
    for (start, end), cids in _group_windows(windows).items():
        results = aggregate_by_customer(frame, metric, start=start, end=end, customer_ids=_customer_filter(frame, cids))
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


def _event_counts(frame: EventFrame, metric: MetricBase, start: datetime, end: datetime, cids: list[str]) -> dict[str, int]:
    idx = select(frame, metric, start=start, end=end, customer_ids=_customer_filter(frame, cids))
    counts = np.bincount(frame.customers.codes[idx], minlength=len(frame.customers.values))
    return {frame.customers.values[c]: int(counts[c]) for c in np.flatnonzero(counts)}


def charge_recurring(frame: EventFrame, metric: MetricBase, windows: Mapping[str, Window]) -> dict[str, PeriodUsage]:
    """Per customer: the aggregate of all its events before the end of its window, however
    early (usage never resets). ``period_events`` still counts the window's own events."""
    out: dict[str, PeriodUsage] = {}
    for (start, end), cids in _group_windows(windows).items():
        results = aggregate_by_customer(frame, metric, start=None, end=end, customer_ids=_customer_filter(frame, cids))
        in_period = _event_counts(frame, metric, start, end, cids)
        for cid in cids:
            out[cid] = _period_usage(metric, cid, start, end, results.get(cid), period_events=in_period.get(cid, 0))
    return out


# --- limit_metered --------------------------------------------------------------------------


def _whole(limit: Decimal) -> int:
    """How many whole units (events, distinct values) a limit admits."""
    return max(int(limit.to_integral_value(rounding=ROUND_FLOOR)), 0)


def _scaled_ints(values: pa.Array, limit: Decimal) -> tuple[np.ndarray, int, int] | None:
    """Values × 10^s as exact int64 (s the smallest scale that loses nothing) with the limit
    floored to the same scale; None when they do not fit int64 with room for their sum."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), 0, 0
    try:
        narrow = pc.cast(values, pa.decimal256(57, 18))
    except pa.ArrowInvalid:
        return None
    for s in (0, 2, 3, 6, 9, 12, 15, 18):
        try:
            scaled = pc.multiply(narrow, pa.scalar(Decimal(10) ** s, pa.decimal256(18, 0)))
            ints = pc.cast(scaled, pa.int64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            continue
        if np.abs(ints.astype(np.float64)).sum() >= 2.0**62:
            return None
        limit_scaled = int((limit.scaleb(s)).to_integral_value(rounding=ROUND_FLOOR))
        return ints.astype(np.int64), s, min(limit_scaled, _INT64_MAX)
    return None


def _sum_with_limit(values: list[Any], valid: np.ndarray, limit: Any, used: Any) -> tuple[Any, int]:
    """The sequential rule from a starting ``used``: accept value when used + value ≤ limit."""
    rejected = 0
    with localcontext(EXACT):  # Decimals (the fallback) add exactly; ints are exact anyway
        for v, ok in zip(values, valid.tolist()):
            if not ok:
                continue
            if used + v <= limit:
                used += v
            else:
                rejected += 1
    return used, rejected


def _limit_window(
    frame: EventFrame, metric: MetricBase, start: datetime, end: datetime, cids: list[str], limit: Decimal
) -> dict[str, tuple[Decimal, int, int, int]]:
    """customer → (usage, events, skipped, rejected) of a hard quota over [start, end)."""
    idx = select(frame, metric, start=start, end=end, customer_ids=_customer_filter(frame, cids))
    found = _limit_groups(frame, metric, idx, frame.customers.codes[idx].astype(np.int64), limit)
    return {frame.customers.values[int(code)]: row for code, row in found.items()}


def _limit_groups(
    frame: EventFrame, metric: MetricBase, idx: np.ndarray, keys: np.ndarray, limit: Decimal
) -> dict[int, tuple[Decimal, int, int, int]]:
    """group key → (usage, events, skipped, rejected) of a hard quota, each group of events
    (one customer in one period) taken in time order, then store order."""
    if not len(idx):
        return {}
    order = np.lexsort((frame.seq[idx], frame.ts_us[idx], keys))
    idx, cust = idx[order], keys[order]
    n = len(idx)
    first = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
    ends = np.r_[first[1:], n]
    gid = np.repeat(np.arange(len(first)), ends - first)
    events = ends - first
    ngroups = len(first)
    agg = _agg(metric)
    usage: list[Decimal] = [ZERO] * ngroups
    skipped = np.zeros(ngroups, dtype=np.int64)
    rejected = np.zeros(ngroups, dtype=np.int64)

    if agg == Aggregation.count.value:
        whole = min(_whole(limit), n)
        accepted = np.minimum(events, whole)
        usage = [Decimal(int(a)) for a in accepted]
        rejected = events - accepted
    elif agg == Aggregation.unique_count.value:
        codes = frame.path(metric.distinct_by).text.codes[idx].astype(np.int64)  # type: ignore[arg-type]
        valid = codes >= 0
        skipped = np.bincount(gid[~valid], minlength=ngroups)
        vi = np.flatnonzero(valid)
        if len(vi):
            key = gid[vi].astype(np.int64) * (int(codes.max()) + 1) + codes[vi]
            uniq, first_at, inverse = np.unique(key, return_index=True, return_inverse=True)
            # Rank each distinct (customer, value) by where it is first seen in its customer's
            # events: the first `whole` distinct values are admitted, every later new one refused
            # (a refused value is not "known", so its repeats are refused too).
            seen_order = np.argsort(first_at, kind="stable")
            seen_group = gid[vi[first_at[seen_order]]]
            group_start = np.flatnonzero(np.r_[True, seen_group[1:] != seen_group[:-1]])
            rank_sorted = np.arange(len(seen_order)) - np.repeat(group_start, np.diff(np.r_[group_start, len(seen_order)]))
            rank = np.empty(len(uniq), dtype=np.int64)
            rank[seen_order] = rank_sorted
            admitted = rank < _whole(limit)
            admitted_groups = gid[vi[first_at[admitted]]]
            counts = np.bincount(admitted_groups, minlength=ngroups)
            usage = [Decimal(int(c)) for c in counts]
            rejected = np.bincount(gid[vi[~admitted[inverse]]], minlength=ngroups)
    else:
        column = frame.path(metric.value_property)  # type: ignore[arg-type]
        status = column.status[idx]
        valid = status == OK
        skipped = np.bincount(gid[~valid], minlength=ngroups)
        values = column.number.take(pa.array(idx))
        if agg in (Aggregation.max.value, Aggregation.latest.value):
            fits = valid & _at_most(values, limit)
            rejected = np.bincount(gid[valid & ~fits], minlength=ngroups)
            pos = np.flatnonzero(fits)
            if len(pos):
                if agg == Aggregation.max.value:
                    table = pa.table({"g": pa.array(gid[pos]), "v": values.take(pa.array(pos))})
                    grouped = table.group_by(["g"], use_threads=False).aggregate([("v", "max")]).to_pydict()
                    pairs = zip(grouped["g"], grouped["v_max"])
                else:  # latest: the last admitted event in (ts, seq) order
                    last = np.full(ngroups, -1, dtype=np.int64)
                    np.maximum.at(last, gid[pos], pos)
                    have = np.flatnonzero(last >= 0)
                    pairs = zip(have.tolist(), values.take(pa.array(last[have])).to_pylist())
                for g, v in pairs:
                    usage[int(g)] = exact_number(Decimal(v))
        else:  # sum
            usage, rejected = _limit_sum(values, valid, gid, first, ends, limit)
    return {
        int(cust[first[g]]): (usage[g], int(events[g]), int(skipped[g]), int(rejected[g]))
        for g in range(ngroups)
    }


def _at_most(values: pa.Array, limit: Decimal) -> np.ndarray:
    """value ≤ limit per event (False where the value is null). Values carry 18 places, so the
    limit floored to 18 places compares the same; a limit beyond the column's range admits all."""
    try:
        bound = pa.scalar(limit.quantize(Decimal(1).scaleb(-18), rounding=ROUND_FLOOR), DECIMAL)
    except (pa.ArrowInvalid, ArithmeticError):
        return np.ones(len(values), dtype=bool)
    return pc.fill_null(pc.less_equal(values, bound), False).to_numpy(zero_copy_only=False)


def _limit_sum(
    values: pa.Array, valid: np.ndarray, gid: np.ndarray, first: np.ndarray, ends: np.ndarray, limit: Decimal
) -> tuple[list[Decimal], np.ndarray]:
    ngroups = len(first)
    rejected = np.zeros(ngroups, dtype=np.int64)
    usage: list[Decimal] = [ZERO] * ngroups
    scaled = _scaled_ints(pc.fill_null(values, pa.scalar(ZERO, DECIMAL)), limit)
    if scaled is None:  # huge or very precise values: exact Decimals, one customer at a time
        py = [ZERO if v is None else v for v in values.to_pylist()]
        for g in range(ngroups):
            lo, hi = int(first[g]), int(ends[g])
            used, rej = _sum_with_limit(py[lo:hi], valid[lo:hi], limit, ZERO)
            usage[g], rejected[g] = exact_number(used), rej
        return usage, rejected
    ints, s, cap = scaled
    ints = np.where(valid, ints, 0)
    total = np.cumsum(ints)
    before = np.r_[0, total][first]  # running total before each group starts
    running = total - before[gid]  # usage after each event if every event so far fitted
    over = running > cap
    # The first event past the limit in each group; everything before it fitted.
    first_over = np.full(ngroups, -1, dtype=np.int64)
    where = np.flatnonzero(over)
    if len(where):
        hit_groups, at = np.unique(gid[where], return_index=True)
        first_over[hit_groups] = where[at]
    group_total = total[ends - 1] - before
    for g in range(ngroups):
        p = int(first_over[g])
        if p < 0:
            used = int(group_total[g])
        else:  # sequential from the first rejection, in exact integers
            used_before = int(running[p] - ints[p])  # everything before p fitted
            hi = int(ends[g])
            used, rej = _sum_with_limit(ints[p:hi].tolist(), valid[p:hi], cap, used_before)
            rejected[g] = rej
        with localcontext(EXACT):
            usage[g] = normalized(Decimal(used).scaleb(-s))
    return usage, rejected


def limit_metered(
    frame: EventFrame, metric: MetricBase, windows: Mapping[str, Window], *, limit: Decimal
) -> dict[str, PeriodUsage]:
    """Per customer: usage under a hard quota in its window, with the events it rejected."""
    limit = Decimal(limit)
    if _agg(metric) == Aggregation.min.value:
        raise ValueError("min cannot be used with a limit metric: a quota caps a minimum")
    out: dict[str, PeriodUsage] = {}
    for (start, end), cids in _group_windows(windows).items():
        results = _limit_window(frame, metric, start, end, cids, limit)
        for cid in cids:
            used, events, skipped, rejected = results.get(cid, (ZERO, 0, 0, 0))
            out[cid] = PeriodUsage(
                cid, metric.code, _type(metric), start, end, usage=used, events=events,
                skipped=skipped, period_events=events, available=limit, rejected=rejected,
            )
    return out


# --- limit_recurring ------------------------------------------------------------------------


def _bucket_usage(
    frame: EventFrame, metric: MetricBase, chain: Sequence[Window], cids: list[str]
) -> tuple[list[list[Decimal]], np.ndarray, np.ndarray]:
    """Count or sum per (customer, window of the chain), in one pass over the events.

    Returns usage[customer][window], events[customer, window], skipped[customer, window].
    """
    nb, nc = len(chain), len(cids)
    usage = [[ZERO] * nb for _ in range(nc)]
    events = np.zeros((nc, nb), dtype=np.int64)
    skipped = np.zeros((nc, nb), dtype=np.int64)
    starts = np.array([to_us(s) for s, _ in chain], dtype=np.int64)
    ends = np.array([to_us(e) for _, e in chain], dtype=np.int64)
    idx = select(frame, metric, start=int(starts.min()), end=int(ends.max()), customer_ids=_customer_filter(frame, cids))
    if not len(idx):
        return usage, events, skipped
    ts = frame.ts_us[idx]
    b = np.searchsorted(starts, ts, side="right") - 1
    inside = b >= 0
    inside[inside] &= ts[inside] < ends[b[inside]]
    local = _local_codes(frame, cids)[frame.customers.codes[idx]]
    keep = inside & (local >= 0)
    idx, b, local = idx[keep], b[keep], local[keep]
    key = local * nb + b
    events = np.bincount(key, minlength=nc * nb).reshape(nc, nb)
    if _agg(metric) == Aggregation.count.value:
        for c, w in zip(*np.nonzero(events)):
            usage[int(c)][int(w)] = Decimal(int(events[c, w]))
        return usage, events, skipped
    column = frame.path(metric.value_property)  # type: ignore[arg-type]
    status = column.status[idx]
    skipped = np.bincount(key[status != OK], minlength=nc * nb).reshape(nc, nb)
    table = pa.table({"k": pa.array(key), "v": column.number.take(pa.array(idx))})
    grouped = table.group_by(["k"], use_threads=False).aggregate([("v", "sum")]).to_pydict()
    for k, v in zip(grouped["k"], grouped["v_sum"]):
        if v is not None:
            usage[int(k) // nb][int(k) % nb] = exact_number(Decimal(v))
    return usage, events, skipped


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
    frame: EventFrame,
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
        usage, events, skipped = _bucket_usage(frame, metric, chain, cids)
        events_l, skipped_l = events.tolist(), skipped.tolist()
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
            key = converted[id(chain)] = tuple((_utc(s), _utc(e)) for s, e in chain)
        grouped.setdefault(key, []).append(cid)
    return grouped


# --- any type -------------------------------------------------------------------------------


def _quota_needed(metric: MetricBase, quota: Quota | None) -> Quota:
    if quota is None:
        raise ValueError(f"'{metric.code}' is a {_type(metric)} metric: it needs a quota (limit) in the plan")
    return quota


def _contiguous(chain: Sequence[Window]) -> bool:
    return all(chain[i][1] == chain[i + 1][0] for i in range(len(chain) - 1))


def _chain_keys(
    frame: EventFrame, metric: MetricBase, chain: Sequence[Window], cids: list[str], *, since_ever: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The metric's events of these customers in a contiguous chain of windows: (indices, key =
    customer position × windows + window, inside = the event lies in its window). With
    ``since_ever`` events before the chain's start are kept, in window 0 (inside False)."""
    nb = len(chain)
    starts = np.array([to_us(s) for s, _ in chain], dtype=np.int64)
    end = to_us(chain[-1][1])
    idx = select(frame, metric, start=None if since_ever else int(starts[0]), end=end,
                 customer_ids=_customer_filter(frame, cids))
    ts = frame.ts_us[idx]
    b = np.searchsorted(starts, ts, side="right") - 1
    inside = b >= 0
    local = _local_codes(frame, cids)[frame.customers.codes[idx]]
    keep = local >= 0
    idx, b, local, inside = idx[keep], np.maximum(b[keep], 0), local[keep], inside[keep]
    return idx, local * nb + b, inside


def _charge_chain(
    frame: EventFrame, metric: MetricBase, chain: Sequence[Window], cids: list[str], *, recurring: bool
) -> dict[str, list[PeriodUsage]]:
    """charge_metered / charge_recurring over a contiguous chain, in one pass over the events:
    the aggregate per (customer, window), made running totals for recurring. The groups and skip
    reasons of a preview are left out here (a timeline shows neither)."""
    nb, nc = len(chain), len(cids)
    size = nb * nc
    idx, key, inside = _chain_keys(frame, metric, chain, cids, since_ever=recurring)
    agg = _agg(metric)
    events = np.bincount(key, minlength=size)
    period_events = np.bincount(key[inside], minlength=size)
    skipped = np.zeros(size, dtype=np.int64)
    values: list[Decimal | None] = [None] * size
    if agg == Aggregation.count.value:
        values = [Decimal(int(n)) for n in events]
    elif agg == Aggregation.unique_count.value:
        codes = frame.path(metric.distinct_by).text.codes[idx].astype(np.int64)  # type: ignore[arg-type]
        valid = codes >= 0
        skipped = np.bincount(key[~valid], minlength=size)
        # each distinct value counts in the window where the customer first used it (metered:
        # every window where it appears)
        k, c = key[valid], codes[valid]
        pairs = np.unique(np.stack([k, c]), axis=1) if len(k) else np.zeros((2, 0), dtype=np.int64)
        if recurring and pairs.shape[1]:
            local = pairs[0] // nb
            order = np.lexsort((pairs[0], pairs[1], local))
            pairs = pairs[:, order]
            first_of = np.r_[True, (local[order][1:] != local[order][:-1]) | (pairs[1][1:] != pairs[1][:-1])]
            pairs = pairs[:, first_of]
        distinct = np.bincount(pairs[0], minlength=size)
        values = [Decimal(int(n)) for n in distinct]
    else:
        column = frame.path(metric.value_property)  # type: ignore[arg-type]
        status = column.status[idx]
        skipped = np.bincount(key[status != OK], minlength=size)
        numbers = column.number.take(pa.array(idx))
        if agg == Aggregation.latest.value:
            order = np.lexsort((frame.seq[idx], frame.ts_us[idx]))
            valid = (status == OK)[order]
            last = np.full(size, -1, dtype=np.int64)
            np.maximum.at(last, key[order][valid], np.flatnonzero(valid))
            have = np.flatnonzero(last >= 0)
            taken = numbers.take(pa.array(order[last[have]])).to_pylist()
            for k, v in zip(have.tolist(), taken):
                values[k] = Decimal(v)
        else:
            table = pa.table({"k": pa.array(key), "v": numbers})
            grouped = table.group_by(["k"], use_threads=False).aggregate([("v", agg)]).to_pydict()
            for k, v in zip(grouped["k"], grouped[f"v_{agg}"]):
                if v is not None:
                    values[int(k)] = Decimal(v)
    if recurring:
        events = np.cumsum(events.reshape(nc, nb), axis=1).reshape(-1)
        skipped = np.cumsum(skipped.reshape(nc, nb), axis=1).reshape(-1)
        values = _running(values, nc, nb, agg)
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
                events=int(events[k]), skipped=int(skipped[k]), period_events=int(period_events[k]),
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
    frame: EventFrame, metric: MetricBase, chain: Sequence[Window], cids: list[str], limit: Decimal
) -> dict[str, list[PeriodUsage]]:
    """limit_metered over a contiguous chain in one pass: each (customer, window) is its own
    group of the hard quota (usage resets every window)."""
    nb = len(chain)
    idx, key, _ = _chain_keys(frame, metric, chain, cids)
    found = _limit_groups(frame, metric, idx, key, limit)
    out: dict[str, list[PeriodUsage]] = {}
    for c, cid in enumerate(cids):
        rows = []
        for w, (start, end) in enumerate(chain):
            used, events, skipped, rejected = found.get(c * nb + w, (ZERO, 0, 0, 0))
            rows.append(PeriodUsage(
                cid, metric.code, _type(metric), start, end, usage=used, events=events,
                skipped=skipped, period_events=events, available=limit, rejected=rejected,
            ))
        out[cid] = rows
    return out


def usage_chains(
    frame: EventFrame,
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
        return limit_recurring(frame, metric, chains, limit=q.limit, max_carryover=q.max_carryover)
    if kind not in (MetricType.charge_metered.value, MetricType.charge_recurring.value, MetricType.limit_metered.value):
        raise ValueError(f"unknown metric type {kind!r}")
    limit = _quota_needed(metric, quota).limit if kind == MetricType.limit_metered.value else None
    out: dict[str, list[PeriodUsage]] = {}
    for chain, cids in _shared_chains(chains).items():
        if len(chain) > 1 and _contiguous(chain):
            if kind == MetricType.limit_metered.value:
                out.update(_limit_chain(frame, metric, chain, cids, Decimal(limit)))  # type: ignore[arg-type]
            else:
                out.update(_charge_chain(frame, metric, chain, cids, recurring=kind == MetricType.charge_recurring.value))
            continue
        rows: dict[str, list[PeriodUsage]] = {cid: [] for cid in cids}
        for window in chain:
            windows = {cid: window for cid in cids}
            if kind == MetricType.charge_metered.value:
                slot = charge_metered(frame, metric, windows)
            elif kind == MetricType.charge_recurring.value:
                slot = charge_recurring(frame, metric, windows)
            else:
                slot = limit_metered(frame, metric, windows, limit=limit)  # type: ignore[arg-type]
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
    value = _utc(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def timeline(
    frame: EventFrame,
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
    used = usage_chains(frame, metric, chains, quota=plan.quota_for(metric.code))
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
