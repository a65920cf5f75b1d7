"""contract §2 on the embedded engine's columns: selection as numpy masks over category
codes, the six aggregations as pyarrow hash aggregates over exact decimal256 values, grouped
by the metric's group_by labels (and by customer when asked). No Python loop touches single
events. `explain` reads the first few values the editor writes out, from the same columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from metering.engine.columnar import counting
from metering.engine.columns import MISSING, NOT_NUMBER, OK, OUT_OF_RANGE, to_us
from metering.engine.interface import AggregateResult, Explanation, GroupResult
from metering.models import Aggregation, MetricBase
from metering.values import EXACT, normalized

if TYPE_CHECKING:
    from metering.engine.frame import EventFrame

SKIP_REASONS = {
    MISSING: "{path} is missing",
    NOT_NUMBER: "{path} is not a number",
    OUT_OF_RANGE: "{path} has more than 18 decimal places or 40 integer digits",
}


def value_path(metric: MetricBase) -> str | None:
    if metric.aggregation == Aggregation.unique_count:
        return metric.distinct_by
    if metric.aggregation == Aggregation.count:
        return None
    return metric.value_property


def select(
    frame: EventFrame,
    metric: MetricBase,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    customer_ids: Sequence[str] | None = None,
) -> np.ndarray:
    """Indices of the events the metric reads in [start, end), in store order."""
    codes = frame.event_names.codes_of([metric.event_name])
    if not len(codes):
        return np.zeros(0, dtype=np.int64)
    mask = frame.event_names.codes == codes[0]
    start_us, end_us = to_us(start), to_us(end)
    if start_us is not None:
        mask &= frame.ts_us >= start_us
    if end_us is not None:
        mask &= frame.ts_us < end_us
    if customer_ids is not None:
        mask &= frame.customers.isin(customer_ids)
    for path, allowed in metric.filters.items():
        mask &= frame.path(path).text.isin([str(v) for v in allowed])
    return np.flatnonzero(mask)


def _key(frame: EventFrame, path: str) -> counting.Key:
    cats = frame.path(path).text
    return counting.Key(cats.codes, cats.values)


def _key_columns(frame: EventFrame, metric: MetricBase, idx: np.ndarray, by_customer: bool) -> list[tuple[str, pa.Array, list[str]]]:
    keys: list[tuple[str, pa.Array, list[str]]] = []
    if by_customer:
        codes = frame.customers.codes[idx]
        keys.append(("customer_id", pa.array(codes), frame.customers.values))
    for path in metric.group_by:
        cats = frame.path(path).text
        codes = cats.codes[idx]
        keys.append((path, pa.array(codes, mask=codes < 0), cats.values))
    return keys


def _dense_groups(keys: list[tuple[str, pa.Array, list[str]]], n: int) -> tuple[np.ndarray, list[int], int] | None:
    """One group number per event from the key codes (a missing label is a code of its own),
    when every key combination fits one counting array; None otherwise."""
    gid = np.zeros(n, dtype=np.int64)
    sizes: list[int] = []
    total = 1
    for _, col, values in keys:
        size = len(values) + 1
        total *= size
        if total > counting.DENSE_LIMIT:
            return None
        codes = (col.fill_null(-1) if col.null_count else col).to_numpy(zero_copy_only=False)
        gid = gid * size + codes + 1  # code 0: missing
        sizes.append(size)
    return gid, sizes, total


def _reduce_counting(frame: EventFrame, metric: MetricBase, idx: np.ndarray,
                     keys: list[tuple[str, pa.Array, list[str]]]) -> pa.Table | None:
    """`_reduce` for count and for sum over exact int64 values, by counting into one array per
    key combination (counting.Tally) instead of a hash aggregate: the same table, several times
    faster. None when it does not apply (other aggregations, decimal256 values, too many key
    combinations, 2^31 events or more)."""
    found = frame.path(metric.value_property).scaled if metric.aggregation == Aggregation.sum else None  # type: ignore[arg-type]
    if not counting.applies(metric, found, len(idx)):
        return None
    dense = _dense_groups(keys, len(idx))
    if dense is None:
        return None
    gid, sizes, groups = dense
    path = value_path(metric)
    tally = counting.Tally(groups, found, len(idx))
    tally.add(gid, frame.path(path).status[idx] if path is not None else None,
              found.ints[idx] if found is not None else None)
    return tally.table(sizes)


def _reduce(frame: EventFrame, metric: MetricBase, idx: np.ndarray, keys: list[tuple[str, pa.Array, list[str]]]) -> pa.Table:
    """One row per key combination: value, events, skipped, and a count per skip status."""
    counted = _reduce_counting(frame, metric, idx, keys)
    if counted is not None:
        return counted
    agg = metric.aggregation
    path = value_path(metric)
    columns: dict[str, pa.Array] = {f"k{i}": col for i, (_, col, _) in enumerate(keys)}
    key_names = list(columns)
    columns["one"] = pa.array(np.ones(len(idx), dtype=np.int64))
    specs: list[tuple[str, str]] = [("one", "sum")]
    if path is not None:
        column = frame.path(path)
        status = column.status[idx]
        if agg == Aggregation.unique_count:
            status = np.where(status == MISSING, MISSING, OK).astype(np.int8)
        if status.any():  # counts per skip reason only when something was skipped (rows read 0 else)
            for code in (MISSING, NOT_NUMBER, OUT_OF_RANGE):
                columns[f"s{code}"] = pa.array((status == code).astype(np.int64))
                specs.append((f"s{code}", "sum"))
    if agg == Aggregation.count:
        pass
    elif agg == Aggregation.unique_count:
        codes = frame.path(path).text.codes[idx]  # type: ignore[arg-type]
        columns["v"] = pa.array(codes, mask=codes < 0)
        specs.append(("v", "count_distinct"))
    else:
        values, scale = frame.path(path).values_at(idx)  # type: ignore[arg-type]
        columns["v"] = values
        if agg == Aggregation.latest:
            return _with_scale(_reduce_latest(frame, idx, columns, key_names, specs), scale)
        specs.append(("v", {"sum": "sum", "max": "max", "min": "min"}[agg.value]))
        table = pa.table(columns)
        return _with_scale(table.group_by(key_names, use_threads=False).aggregate(specs), scale)
    table = pa.table(columns)
    return table.group_by(key_names, use_threads=False).aggregate(specs)


def _with_scale(table: pa.Table, scale: int | None) -> pa.Table:
    """Mark a result whose values are int64 × 10^scale (see columns.Scaled)."""
    return table if scale is None else table.replace_schema_metadata({"value_scale": str(scale)})


def _reduce_latest(frame: EventFrame, idx: np.ndarray, columns: dict[str, pa.Array], key_names: list[str], specs: list[tuple[str, str]]) -> pa.Table:
    # The value of the newest event (ties: stored last) among events with a value: order by
    # (ts, seq), take each group's greatest position among valid values, read the value there.
    order = np.lexsort((frame.seq[idx], frame.ts_us[idx]))
    table = pa.table(columns).take(pa.array(order))
    valid = table["v"].is_valid().to_numpy(zero_copy_only=False)
    positions = np.arange(table.num_rows, dtype=np.int64)
    table = table.append_column("pos", pa.array(positions, mask=~valid))
    grouped = table.group_by(key_names, use_threads=False).aggregate([*specs, ("pos", "max")])
    values = table["v"].take(grouped["pos_max"])  # a null position reads a null value
    return grouped.append_column("v_last", values)


def _as_decimal(value: Any, scale: int = -1) -> Decimal:
    if value is None:
        return Decimal(0)
    if scale >= 0:  # an exact int64 of value × 10^scale
        return normalized(Decimal(int(value)).scaleb(-scale))
    return normalized(Decimal(value))


def _rows(table: pa.Table, metric: MetricBase, keys: list[tuple[str, pa.Array, list[str]]]) -> list[dict[str, Any]]:
    agg = metric.aggregation
    value_col = {
        "count": "one_sum", "unique_count": "v_count_distinct", "sum": "v_sum",
        "max": "v_max", "min": "v_min", "latest": "v_last",
    }[agg.value]
    data = table.to_pydict()
    scale = int((table.schema.metadata or {}).get(b"value_scale", b"-1"))
    out = []
    for r in range(table.num_rows):
        skipped = {code: int(data.get(f"s{code}_sum", [0] * table.num_rows)[r] or 0) for code in (MISSING, NOT_NUMBER, OUT_OF_RANGE)}
        if agg == Aggregation.unique_count:
            skipped = {MISSING: skipped[MISSING]}
        row = {
            "key": tuple(
                None if data[f"k{i}"][r] is None else values[int(data[f"k{i}"][r])]
                for i, (_, _, values) in enumerate(keys)
            ),
            "value": _as_decimal(data[value_col][r], scale if value_col.startswith("v_") else -1),
            "events": int(data["one_sum"][r]),
            "skip": skipped,
        }
        out.append(row)
    return out


def _result(metric: MetricBase, total: dict[str, Any] | None, groups: list[dict[str, Any]]) -> AggregateResult:
    path = value_path(metric) or ""
    if total is None:
        return AggregateResult(metric.code, metric.aggregation.value, Decimal(0), 0, 0, {}, [])
    reasons = {SKIP_REASONS[c].format(path=path): n for c, n in total["skip"].items() if n}
    group_results = [
        GroupResult(dict(zip(metric.group_by, g["key"])), g["value"], g["events"], sum(g["skip"].values()))
        for g in groups
    ]
    group_results.sort(key=lambda g: tuple((v is None, v or "") for v in g.group.values()))
    return AggregateResult(
        metric.code, metric.aggregation.value, total["value"], total["events"],
        sum(total["skip"].values()), reasons, group_results,
    )


def aggregate(
    frame: EventFrame,
    metric: MetricBase,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    customer_ids: Sequence[str] | None = None,
) -> AggregateResult:
    """The metric's value over [start, end), with its groups and skipped events."""
    keys = [_key(frame, path) for path in metric.group_by]
    table = counting.counted(frame, metric, keys, start_us=to_us(start), end_us=to_us(end), customer_ids=customer_ids)
    if table is not None:  # count and sum: straight from the columns, no index of the events
        if not table.num_rows:
            return _result(metric, None, [])
        labels = [(k, None, key.values) for k, key in zip(metric.group_by, keys)]
        groups = _rows(table, metric, labels) if metric.group_by else []
        return _result(metric, _added_up(groups) if groups else _rows(table, metric, [])[0], groups)
    idx = select(frame, metric, start=start, end=end, customer_ids=customer_ids)
    if not len(idx):
        return _result(metric, None, [])
    groups: list[dict[str, Any]] = []
    if metric.group_by:
        keys = _key_columns(frame, metric, idx, by_customer=False)
        groups = _rows(_reduce(frame, metric, idx, keys), metric, keys)
        if metric.aggregation in ADDITIVE:  # the total is the groups added up: one pass, not two
            return _result(metric, _added_up(groups), groups)
    total = _rows(_reduce(frame, metric, idx, []), metric, [])[0]
    return _result(metric, total, groups)


# Aggregations whose total over all events is the sum of their group values (for max and min a
# group without any value reads 0, so they, like unique_count and latest, get a pass of their own).
ADDITIVE = (Aggregation.count, Aggregation.sum)


def _added_up(groups: list[dict[str, Any]]) -> dict[str, Any]:
    value = Decimal(0)
    for g in groups:
        value = EXACT.add(value, g["value"])
    skip = {code: sum(g["skip"][code] for g in groups) for code in groups[0]["skip"]}
    return {"key": (), "value": normalized(value), "events": sum(g["events"] for g in groups), "skip": skip}


def aggregate_by_customer(
    frame: EventFrame,
    metric: MetricBase,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    customer_ids: Sequence[str] | None = None,
) -> dict[str, AggregateResult]:
    """One result per customer with matching events (customers without any are left out)."""
    keys = [counting.Key(frame.customers.codes, frame.customers.values), *(_key(frame, p) for p in metric.group_by)]
    table = counting.counted(frame, metric, keys, start_us=to_us(start), end_us=to_us(end), customer_ids=customer_ids)
    if table is not None:  # count and sum: straight from the columns, no index of the events
        labels = [("customer_id", None, frame.customers.values),
                  *((p, None, key.values) for p, key in zip(metric.group_by, keys[1:]))]
        by_customer: dict[str, list[dict[str, Any]]] = {}
        for row in _rows(table, metric, labels):
            by_customer.setdefault(row["key"][0], []).append({**row, "key": row["key"][1:]})
        out = {}
        for cid, rows in by_customer.items():
            groups = rows if metric.group_by else []
            out[cid] = _result(metric, _added_up(rows), groups)
        return out
    idx = select(frame, metric, start=start, end=end, customer_ids=customer_ids)
    if not len(idx):
        return {}
    keys = _key_columns(frame, metric, idx, by_customer=True)
    per_group: dict[str, list[dict[str, Any]]] = {}
    if metric.group_by:
        for row in _rows(_reduce(frame, metric, idx, keys), metric, keys):
            per_group.setdefault(row["key"][0], []).append({**row, "key": row["key"][1:]})
        if metric.aggregation in ADDITIVE:  # each total is its groups added up: one pass, not two
            return {cid: _result(metric, _added_up(groups), groups) for cid, groups in per_group.items()}
    totals = _rows(_reduce(frame, metric, idx, keys[:1]), metric, keys[:1])
    return {t["key"][0]: _result(metric, t, per_group.get(t["key"][0], [])) for t in totals}



def _unique_in_order(values: np.ndarray) -> np.ndarray:
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


def _first_distinct(codes: np.ndarray, k: int) -> np.ndarray:
    """The first k distinct non-missing codes in order of appearance (reads a prefix first)."""
    valid = codes[codes >= 0]
    prefix = 1024
    while True:
        firsts = _unique_in_order(valid[:prefix])
        if len(firsts) >= k or prefix >= len(valid):
            return firsts[:k]
        prefix *= 8


def explain(
    frame: EventFrame,
    metric: MetricBase,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    k: int = 5,
) -> Explanation:
    """The aggregate over [start, end) and the first values the editor writes out."""
    idx = select(frame, metric, start=start, end=end)
    result = aggregate_at(frame, metric, idx)
    firsts: list[Decimal] = []
    distinct: list[str] = []
    more = False
    latest_ts = latest_customer = None
    path = value_path(metric)
    if len(idx) and path is not None:
        column = frame.path(path)
        if metric.aggregation == Aggregation.unique_count:
            distinct = [column.text.values[int(c)] for c in _first_distinct(column.text.codes[idx], k)]
        else:
            ok = idx[column.status[idx] == OK]
            if len(ok) and metric.aggregation == Aggregation.latest:
                ts = frame.ts_us[ok]
                newest = ts.max()
                tied = ok[ts == newest]
                j = int(tied[np.argmax(frame.seq[tied])])  # ties: the one stored last
                latest_ts = int(newest)
                latest_customer = frame.customers.values[int(frame.customers.codes[j])]
            elif len(ok):
                firsts = [normalized(v) for v in column.decimals_at(ok[:k]).to_pylist()]
                more = len(ok) > k
    return Explanation(result, firsts, more, distinct, latest_ts, latest_customer)


def aggregate_at(frame: EventFrame, metric: MetricBase, idx: np.ndarray) -> AggregateResult:
    """`aggregate` on events already selected (`idx` from `select`): the same reductions."""
    if not len(idx):
        return _result(metric, None, [])
    total = _rows(_reduce(frame, metric, idx, []), metric, [])[0]
    groups: list[dict[str, Any]] = []
    if metric.group_by:
        keys = _key_columns(frame, metric, idx, by_customer=False)
        groups = _rows(_reduce(frame, metric, idx, keys), metric, keys)
    return _result(metric, total, groups)
