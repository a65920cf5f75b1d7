"""contract §3 on the embedded engine's columns: usage per (customer, window) of a chain of
billing periods in one pass over the events, and the hard-quota walk of limit_metered.

Everything runs on numpy / pyarrow columns; the only Python loop over single events is the
limit_metered `sum` walk inside one customer's window after its first rejection (exact
integers, or Decimals for values that do not fit them).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metering.engine.columnar.aggregate import select
from metering.engine.columns import DECIMAL, OK, to_us
from metering.engine.interface import LimitRow, Window, WindowUsage
from metering.models import Aggregation, MetricBase
from metering.values import EXACT, normalized

if TYPE_CHECKING:
    from metering.engine.frame import EventFrame

ZERO = Decimal(0)
_INT64_MAX = np.iinfo(np.int64).max


def _agg(metric: MetricBase) -> str:
    return str(getattr(metric.aggregation, "value", metric.aggregation))


def exact_number(value: Decimal) -> Decimal:
    with localcontext(EXACT):
        return normalized(value)


def _customer_filter(frame: EventFrame, cids: Sequence[str]) -> list[str] | None:
    # No filter when every customer of the frame is asked for: one mask less over all events.
    if len(cids) >= len(frame.customers.values) and set(frame.customers.values) <= set(cids):
        return None
    return list(cids)


def _local_codes(frame: EventFrame, cids: Sequence[str]) -> np.ndarray:
    """frame customer code → position in ``cids`` (−1 for customers not asked for; the last
    slot serves code −1)."""
    lookup = np.full(len(frame.customers.values) + 1, -1, dtype=np.int64)
    index = frame.customers.lookup()
    for pos, cid in enumerate(cids):
        code = index.get(cid)
        if code is not None:
            lookup[code] = pos
    return lookup


def chain_keys(
    frame: EventFrame, metric: MetricBase, chain: Sequence[Window], cids: Sequence[str], *, since_ever: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The metric's events of these customers in a chain of windows: (indices, key = customer
    position × windows + window, inside = the event lies in its window's [start, end)). An
    event goes to the last window starting at or before it, if it is before that window's end.
    With ``since_ever`` events before the chain's start are kept too, in window 0 (inside False)."""
    nb = len(chain)
    starts = np.array([to_us(s) for s, _ in chain], dtype=np.int64)
    ends = np.array([to_us(e) for _, e in chain], dtype=np.int64)
    idx = select(frame, metric, start=None if since_ever else int(starts.min()), end=int(ends.max()),
                 customer_ids=_customer_filter(frame, cids))
    ts = frame.ts_us[idx]
    b = np.searchsorted(starts, ts, side="right") - 1
    inside = b >= 0
    inside[inside] &= ts[inside] < ends[b[inside]]
    local = _local_codes(frame, cids)[frame.customers.codes[idx]]
    keep = (local >= 0) & (inside | ((b < 0) if since_ever else False))
    idx, b, local, inside = idx[keep], np.maximum(b[keep], 0), local[keep], inside[keep]
    return idx, local * nb + b, inside


def window_usage(
    frame: EventFrame, metric: MetricBase, chain: Sequence[Window], cids: Sequence[str], *, since_ever: bool = False
) -> WindowUsage:
    """The aggregate per (customer, window) in one pass (see interface.WindowUsage)."""
    nb, nc = len(chain), len(cids)
    size = nb * nc
    idx, key, inside = chain_keys(frame, metric, chain, cids, since_ever=since_ever)
    agg = _agg(metric)
    events = np.bincount(key, minlength=size)
    period_events = np.bincount(key[inside], minlength=size)
    skipped = np.zeros(size, dtype=np.int64)
    values: list[Decimal | None] = [None] * size
    if agg == Aggregation.count.value:
        values = [Decimal(int(n)) if n else None for n in events]
    elif agg == Aggregation.unique_count.value:
        codes = frame.path(metric.distinct_by).text.codes[idx].astype(np.int64)  # type: ignore[arg-type]
        valid = codes >= 0
        skipped = np.bincount(key[~valid], minlength=size)
        # each distinct value counts in every window where it appears, or (since_ever) only in
        # the window where the customer first used it
        k, c = key[valid], codes[valid]
        pairs = np.unique(np.stack([k, c]), axis=1) if len(k) else np.zeros((2, 0), dtype=np.int64)
        if since_ever and pairs.shape[1]:
            local = pairs[0] // nb
            order = np.lexsort((pairs[0], pairs[1], local))
            pairs = pairs[:, order]
            first_of = np.r_[True, (local[order][1:] != local[order][:-1]) | (pairs[1][1:] != pairs[1][:-1])]
            pairs = pairs[:, first_of]
        distinct = np.bincount(pairs[0], minlength=size)
        values = [Decimal(int(n)) if n else None for n in distinct]
    else:
        column = frame.path(metric.value_property)  # type: ignore[arg-type]
        status = column.status[idx]
        skipped = np.bincount(key[status != OK], minlength=size)
        numbers, scale = column.values_at(idx)
        read = (lambda v: exact_number(Decimal(v))) if scale is None else (lambda v: exact_number(Decimal(int(v)).scaleb(-scale)))
        if agg == Aggregation.latest.value:
            order = np.lexsort((frame.seq[idx], frame.ts_us[idx]))
            valid = (status == OK)[order]
            last = np.full(size, -1, dtype=np.int64)
            np.maximum.at(last, key[order][valid], np.flatnonzero(valid))
            have = np.flatnonzero(last >= 0)
            taken = numbers.take(pa.array(order[last[have]])).to_pylist()
            for k_, v in zip(have.tolist(), taken):
                values[k_] = read(v)
        else:
            table = pa.table({"k": pa.array(key), "v": numbers})
            grouped = table.group_by(["k"], use_threads=False).aggregate([("v", agg)]).to_pydict()
            for k_, v in zip(grouped["k"], grouped[f"v_{agg}"]):
                if v is not None:
                    values[int(k_)] = read(v)
    grid = [values[c * nb:(c + 1) * nb] for c in range(nc)]
    return WindowUsage(grid, events.reshape(nc, nb), skipped.reshape(nc, nb), period_events.reshape(nc, nb))


def limit_usage(
    frame: EventFrame, metric: MetricBase, chain: Sequence[Window], cids: Sequence[str], limit: Decimal
) -> dict[tuple[int, int], LimitRow]:
    """A hard quota per (customer position, window) that has events; each resets per window."""
    if _agg(metric) == Aggregation.min.value:
        raise ValueError("min cannot be used with a limit metric: a quota caps a minimum")
    nb = len(chain)
    idx, key, _ = chain_keys(frame, metric, chain, cids)
    found = _limit_groups(frame, metric, idx, key, Decimal(limit))
    return {(k // nb, k % nb): LimitRow(*row) for k, row in found.items()}


def _whole(limit: Decimal) -> int:
    """How many whole units (events, distinct values) a limit admits."""
    return max(int(limit.to_integral_value(rounding=ROUND_FLOOR)), 0)


def _scaled_ints(values: pa.Array, limit: Decimal) -> tuple[np.ndarray, int, int] | None:
    """Values × 10^s as exact int64 (s the smallest scale that loses nothing) with the limit
    floored to the same scale; None when they do not fit int64 with room for their sum."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), 0, 0
    try:
        narrow = pc.cast(values, pa.decimal256(37, 18))  # int64 holds 19 digits; the product stays within 76
    except pa.ArrowInvalid:
        return None
    for s in (0, 2, 3, 6, 9, 12, 15, 18):
        try:
            scaled = pc.multiply(narrow, pa.scalar(Decimal(10) ** s, pa.decimal256(19, 0)))
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
        values = column.decimals_at(idx)
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


