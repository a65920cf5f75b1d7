"""count and sum by counting: the preview's and the invoices' hot path on the embedded engine.

A metric's events are counted straight from the stored columns, a chunk of rows at a time:
the selection (event name, window, customers, filters) is a mask over the chunk, the chunk's
selected rows of each needed column are packed (`compress`), and each key combination
(customer, group_by labels) is one slot of a counting array: `np.bincount` counts events and
adds the exact int64 values (see `exact_sums`). Nothing per event is built in Python and no
index of the events is made: memory stays at a few arrays of one chunk, whatever the number
of events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from metering.engine.columns import MISSING, NOT_NUMBER, OK, OUT_OF_RANGE, Scaled
from metering.models import Aggregation, MetricBase

if TYPE_CHECKING:
    from metering.engine.frame import EventFrame

# Rows per pass: each temporary array is a few hundred KB, so the allocator reuses it from
# chunk to chunk (arrays of many MB are fresh pages from the kernel each time, which cost
# more than the counting itself) and it stays in the CPU's cache.
CHUNK = 1 << 16
DENSE_LIMIT = 1 << 22  # key combinations counted in one array
_LIMB = 22  # bits per part of an int64 value summed as float64 (exact below 2^53)
_LIMB_MASK = (1 << _LIMB) - 1
SKIP_CODES = (MISSING, NOT_NUMBER, OUT_OF_RANGE)


def _parts(values: np.ndarray, small: bool) -> list[np.ndarray]:
    """int64 values as float64 weights whose sums stay exact integers (below 2^53): the values
    themselves when they are small enough (max_abs × n), else three 22-bit parts of each."""
    if small:
        return [values.astype(np.float64)]
    high = values >> _LIMB
    return [(values & _LIMB_MASK).astype(np.float64), (high & _LIMB_MASK).astype(np.float64),
            (high >> _LIMB).astype(np.float64)]


def _combine(parts: list[np.ndarray]) -> list[int]:
    """The exact sums from the parts' sums (Python ints: no overflow, no rounding)."""
    if len(parts) == 1:
        return [int(x) for x in parts[0].tolist()]
    return [int(a) + (int(b) << _LIMB) + (int(c) << (2 * _LIMB)) for a, b, c in zip(*(p.tolist() for p in parts))]


def exact_sums(gid: np.ndarray, values: np.ndarray, groups: int, max_abs: int | None = None) -> list[int]:
    """Exact int64 sums per group with numpy's counting. float64 adds integers exactly while
    every partial sum stays below 2^53: when the values are small enough (max_abs × n), one
    count does; otherwise each value is split into three 22-bit parts whose sums stay below
    2^53 (up to 2^31 events), added up as Python ints. No fraction is ever rounded."""
    small = max_abs is not None and max_abs * max(len(values), 1) < 2**53
    return _combine([np.bincount(gid, weights=w, minlength=groups) for w in _parts(values, small)])


@dataclass(frozen=True)
class Key:
    """A grouping column: a category code per row (-1: missing) and the codes' texts."""

    codes: np.ndarray
    values: list[str]


def applies(metric: MetricBase, found: Scaled | None, n: int) -> bool:
    """Whether counting answers this metric: count, or sum over exact int64 values whose sums fit."""
    if n >= 1 << 31:
        return False
    if metric.aggregation == Aggregation.count:
        return True
    return metric.aggregation == Aggregation.sum and found is not None and found.sum_fits(n)


def counted(
    frame: EventFrame,
    metric: MetricBase,
    keys: Sequence[Key],
    *,
    start_us: int | None,
    end_us: int | None,
    customer_ids: Sequence[str] | None,
) -> pa.Table | None:
    """One row per key combination present: k0…, one_sum (events), s{code}_sum (skipped, when
    any), v_sum (int64 × 10^scale, for sum) — the table `aggregate._reduce` makes — or None
    when counting does not apply (see `applies`) or the key combinations are too many."""
    n = len(frame)
    value_path = metric.value_property if metric.aggregation == Aggregation.sum else None
    column = frame.path(value_path) if value_path else None
    found = column.scaled if column is not None else None
    if not applies(metric, found, n):
        return None
    sizes = [len(k.values) + 1 for k in keys]  # code 0: missing
    groups = int(np.prod(sizes, dtype=object)) if sizes else 1
    if groups > DENSE_LIMIT:
        return None
    name_codes = frame.event_names.codes_of([metric.event_name])
    if not len(name_codes):
        return _table(keys, sizes, np.zeros(0, np.int64), np.zeros(0, np.int64), {}, None, None)
    name_code = name_codes[0]
    customer_table = _lookup(frame.customers, customer_ids) if customer_ids is not None else None
    filters = [(frame.path(path).text, _lookup(frame.path(path).text, [str(v) for v in allowed]))
               for path, allowed in metric.filters.items()]
    status = column.status if column is not None else None
    if status is not None and not status.any():  # no value missing or skipped anywhere: nothing to count
        status = None
    counts = np.zeros(groups, dtype=np.int64)
    skipped = {code: np.zeros(groups, dtype=np.int64) for code in SKIP_CODES}
    any_skipped = False
    small = found is not None and found.max_abs * max(n, 1) < 2**53
    sums: list[np.ndarray] | None = None  # the parts' sums (see _parts), over every chunk
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        mask = frame.event_names.codes[lo:hi] == name_code
        if start_us is not None:
            mask &= frame.ts_us[lo:hi] >= start_us
        if end_us is not None:
            mask &= frame.ts_us[lo:hi] < end_us
        if customer_table is not None:
            mask &= customer_table.take(frame.customers.codes[lo:hi])  # take: faster than [] here
        for cats, table in filters:
            mask &= table.take(cats.codes[lo:hi])
        if not mask.any():
            continue
        # The selected rows of each column, packed (compress): later steps touch only them.
        gid = np.zeros(int(np.count_nonzero(mask)), dtype=np.intp)
        for key, size in zip(keys, sizes):
            gid *= size
            gid += key.codes[lo:hi].compress(mask)
            gid += 1
        counts += np.bincount(gid, minlength=groups)
        if status is not None:
            part = status[lo:hi].compress(mask)
            if part.any():
                any_skipped = True
                for code in SKIP_CODES:
                    hit = part == code
                    if hit.any():
                        skipped[code] += np.bincount(gid[hit], minlength=groups)
        if found is not None:
            # ints is 0 wherever a value is missing or skipped (columns.scaled), as a sum needs.
            got = [np.bincount(gid, weights=w, minlength=groups) for w in _parts(found.ints[lo:hi].compress(mask), small)]
            sums = got if sums is None else [a + b for a, b in zip(sums, got)]
    present = np.flatnonzero(counts)
    skip = {code: s[present] for code, s in skipped.items()} if any_skipped else {}
    values = None
    if found is not None:
        values = np.array(_combine([p[present] for p in sums]) if sums is not None else [0] * len(present), dtype=np.int64)
    return _table(keys, sizes, present, counts[present], skip, values, found.scale if found is not None else None)


def _lookup(categories, wanted: Sequence[str]) -> np.ndarray:  # noqa: ANN001 - columns.Categories
    """A table indexed by category code (its last slot, for code -1, stays False: `take`
    wraps -1 to the last slot as indexing does)."""
    table = np.zeros(len(categories.values) + 1, dtype=bool)
    table[categories.codes_of(wanted)] = True
    return table


def _table(keys: Sequence[Key], sizes: list[int], present: np.ndarray, counts: np.ndarray,
           skip: dict[int, np.ndarray], values: np.ndarray | None, scale: int | None) -> pa.Table:
    columns: dict[str, pa.Array] = {}
    rest = present.astype(np.int64)
    decoded: list[np.ndarray] = []
    for size in reversed(sizes):
        decoded.append(rest % size - 1)
        rest = rest // size
    for i, codes in enumerate(reversed(decoded)):
        codes = codes.astype(np.int32)
        columns[f"k{i}"] = pa.array(codes, mask=codes < 0)
    columns["one_sum"] = pa.array(counts.astype(np.int64))
    for code, s in skip.items():
        columns[f"s{code}_sum"] = pa.array(s.astype(np.int64))
    if values is not None:
        columns["v_sum"] = pa.array(values, type=pa.int64())
    table = pa.table(columns) if columns else pa.table({"one_sum": pa.array([], pa.int64())})
    return table if scale is None else table.replace_schema_metadata({"value_scale": str(scale)})


__all__ = ["CHUNK", "Key", "OK", "applies", "counted", "exact_sums"]
