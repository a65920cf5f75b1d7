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

from metering.engine.columns import MISSING, NOT_NUMBER, OUT_OF_RANGE, Scaled
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


class Tally:
    """Per group slot: events, skipped events per reason and the exact sum of int64 values,
    added to a part of the events at a time (`add`), then one row per slot that has events
    (`table`)."""

    def __init__(self, groups: int, found: Scaled | None, rows: int) -> None:
        self.groups = groups
        self.scale = found.scale if found is not None else None
        # float64 sums stay exact integers when every partial sum is below 2^53 (see _parts)
        self.small = found is not None and found.max_abs * max(rows, 1) < 2**53
        self.counts = np.zeros(groups, dtype=np.int64)
        self.skipped: dict[int, np.ndarray] = {}  # every reason, once anything was skipped
        self.sums: list[np.ndarray] | None = None  # the parts' sums (see _parts)

    def add(self, gid: np.ndarray, status: np.ndarray | None = None, ints: np.ndarray | None = None) -> None:
        """Events whose slots are `gid`, their value status and (for a sum) their int64 values
        (0 wherever a value is missing or skipped, as columns.scaled keeps them)."""
        self.counts += np.bincount(gid, minlength=self.groups)
        if status is not None and status.any():
            if not self.skipped:
                self.skipped = {code: np.zeros(self.groups, dtype=np.int64) for code in SKIP_CODES}
            for code in SKIP_CODES:
                hit = status == code
                if hit.any():
                    self.skipped[code] += np.bincount(gid[hit], minlength=self.groups)
        if ints is not None:
            got = [np.bincount(gid, weights=w, minlength=self.groups) for w in _parts(ints, self.small)]
            self.sums = got if self.sums is None else [a + b for a, b in zip(self.sums, got)]

    def table(self, sizes: Sequence[int]) -> pa.Table:
        """k0… (each key's code, decoded from the slot of `sizes`' mixed radix; null: missing),
        one_sum, s{code}_sum (when anything was skipped), v_sum (with the values' scale)."""
        present = np.flatnonzero(self.counts)
        columns: dict[str, pa.Array] = {}
        rest = present.astype(np.int64)
        decoded: list[np.ndarray] = []
        for size in reversed(sizes):
            decoded.append(rest % size - 1)
            rest = rest // size
        for i, codes in enumerate(reversed(decoded)):
            codes = codes.astype(np.int32)
            columns[f"k{i}"] = pa.array(codes, mask=codes < 0)
        columns["one_sum"] = pa.array(self.counts[present])
        for code, counts in self.skipped.items():
            columns[f"s{code}_sum"] = pa.array(counts[present])
        if self.scale is None:
            return pa.table(columns)
        sums = _combine([p[present] for p in self.sums]) if self.sums is not None else [0] * len(present)
        columns["v_sum"] = pa.array(sums, type=pa.int64())
        return pa.table(columns).replace_schema_metadata({"value_scale": str(self.scale)})


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
    tally = Tally(groups, found, n)
    name_codes = frame.event_names.codes_of([metric.event_name])
    if not len(name_codes):
        return tally.table(sizes)
    name_code = name_codes[0]
    customer_table = _lookup(frame.customers, customer_ids) if customer_ids is not None else None
    filters = [(frame.path(path).text, _lookup(frame.path(path).text, [str(v) for v in allowed]))
               for path, allowed in metric.filters.items()]
    status = column.status if column is not None else None
    if status is not None and not status.any():  # no value missing or skipped anywhere: nothing to count
        status = None
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
        tally.add(gid, status[lo:hi].compress(mask) if status is not None else None,
                  found.ints[lo:hi].compress(mask) if found is not None else None)
    return tally.table(sizes)


def _lookup(categories, wanted: Sequence[str]) -> np.ndarray:  # noqa: ANN001 - columns.Categories
    """A table indexed by category code (its last slot, for code -1, stays False: `take`
    wraps -1 to the last slot as indexing does)."""
    table = np.zeros(len(categories.values) + 1, dtype=bool)
    table[categories.codes_of(wanted)] = True
    return table


__all__ = ["CHUNK", "Key", "Tally", "applies", "counted", "exact_sums"]
