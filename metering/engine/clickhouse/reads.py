"""The `Events` interface on ClickHouse: every answer computed in SQL, only aggregates back.

`ClickHouseEvents(client, source)` reads a *source*: a table expression exposing the columns
event_name, customer_id, ts (DateTime64(6, 'UTC')), idempotency_key, properties (JSON text),
import_id (Nullable(Int64)) and seq (store order). For the workbench's own table that is
`schema.events_source(db)` (`db.events FINAL`: see schema for why FINAL); for an OpenMeter
table it is a subquery mapping its CloudEvents columns onto these.

What comes back to Python, per method: one row per group (aggregate, aggregate_by_customer),
per (customer, window) (window_usage, limit_usage), per day × label (daily_usage), per
customer or event name (customer_ids, first_event_us, event_name_counts); `browse` returns a
page (`limit` rows), `find_event` one row, `sample_properties` at most `n` texts and
`explain` at most `k` values. No method reads events one by one into Python: the hard-limit
walk of limit_metered (`sum`) runs in ClickHouse too, as an `arrayFold` over each
(customer, window)'s events after its first rejection.

Inside ClickHouse, the walk holds, per (customer, window) that passes its limit, the values
of its events from the first rejection on (an array per window, never all events at once).

The value rules (text forms, numbers, skip reasons, `latest` ties) are the embedded engine's,
written in SQL in `metering.engine.clickhouse.sql`. Customer lists travel as one Array
parameter (no query-size limit); every other value is a quoted literal. Needs ClickHouse
23.10 or later (arrayFold); chdb embeds a current one.

Paths a metric reads are columns of the table (`paths`): rows that carry them are read from
those columns, other rows (if any) from the JSON text by the same rules (`_selected`). A read
over a source without such columns (an OpenMeter table) always reads the JSON text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from metering.engine.clickhouse import paths as pathcols
from metering.engine.clickhouse import sql
from metering.engine.clickhouse.schema import ident as sql_ident
from metering.engine.clickhouse.connection import ClickHouseClient, ClickHouseError
from metering.engine.columnar.aggregate import SKIP_REASONS, value_path
from metering.engine.columns import MISSING, NOT_NUMBER, OUT_OF_RANGE, to_us
from metering.engine.interface import (
    AggregateResult,
    EventQuery,
    Explanation,
    GroupResult,
    Instant,
    LimitRow,
    Window,
    WindowUsage,
)
from metering.models import Aggregation, MetricBase
from metering.values import EXACT, normalized

if TYPE_CHECKING:
    import pandas as pd

# Each aggregation over a group's rows (val: the exact value, st: its status, vt: its text form)
_VALUE = {
    "count": "toDecimal256(count(), 0)",
    "sum": "sumIf(val, st = 0)",
    "max": "maxIf(val, st = 0)",
    "min": "minIf(val, st = 0)",
    "unique_count": "toDecimal256(uniqExact(vt), 0)",
    "latest": "argMaxIf(val, (tus, sq), st = 0)",
}
# Decimal256(18) holds 58 integer digits; a limit beyond that admits every value anyway.
_BIG = Decimal(10) ** 57
# Every read runs with these. query_plan_merge_expressions = 0 keeps the layers of a path's
# columns (sql.Paths) apart: merged into one expression, the lazily evaluated branches (the
# marked document, the full number rule) are evaluated again inside later branches, which
# made a sum over non-integer values ~8x slower. Standard GROUPING: 0 = grouped by it.
_SETTINGS = "query_plan_merge_expressions = 0, force_grouping_standard_compatibility = 1"
# A LIMIT that never cuts: a condition on columns computed in layers (st = 0, a filter's text)
# is otherwise traced back through every layer to the table for index analysis, expanding
# the layers' expressions into one tree: planning a query over 8 events took 12 s. The
# conditions on the table's own columns are inside, where the index uses them.
_FENCE = " LIMIT 9223372036854775807"
_BROWSE_COLUMNS = ["ts_us", "event_name", "customer_id", "properties", "idempotency_key", "import_id"]


def _value(agg: str, ints: bool) -> str:
    """The aggregation's SQL; a sum of values that are all Int64 integers adds those (as
    Int128, exact for any count of them) instead of their Decimal256 form."""
    if ints and agg == "sum":
        return "toDecimal256(ifNull(sum(toInt128(vi)), 0), 18)"
    return _VALUE[agg]


def _agg(metric: MetricBase) -> str:
    return str(getattr(metric.aggregation, "value", metric.aggregation))


def _dec(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return normalized(Decimal(value))


def _time(us: int) -> str:
    return f"fromUnixTimestamp64Micro(toInt64({int(us)}), 'UTC')"


def _limit18(limit: Decimal) -> str:
    """The limit floored to 18 places as a Decimal256(18) literal (values carry 18 places, so
    comparisons with it are the exact comparisons with the limit)."""
    bound = max(min(Decimal(limit), _BIG), -_BIG).quantize(Decimal(1).scaleb(-18), rounding=ROUND_FLOOR, context=EXACT)
    return f"toDecimal256({sql.lit(format(bound, 'f'))}, 18)"


def _ids(customer_ids: Sequence[str] | None) -> dict[str, Any] | None:
    """The `cids` parameter of a customer filter (see `_conditions`)."""
    return None if customer_ids is None or not len(customer_ids) else {"cids": list(dict.fromkeys(customer_ids))}


def _positions(cids: Sequence[str]) -> dict[int, list[int]]:
    """Position of each customer id's row (an id given twice: its last position, as the
    embedded engine has it) → the positions that read it."""
    last = {c: p for p, c in enumerate(cids)}
    return {p: [p] for p in last.values()}


class ClickHouseEvents:
    """Stored events in ClickHouse (see the module docstring)."""

    def __init__(self, client: ClickHouseClient, source: str, *, database: str | None = None,
                 keep: Callable[[Sequence[str]], None] | None = None) -> None:
        self.client = client
        self.source = source
        # path columns (`paths`): the table's database (None: a source without them, e.g.
        # OpenMeter's), and how to give a path its columns (None: read-only)
        self.database = database
        self.keep = keep
        self._kept: dict[str, pathcols.PathColumns] = {}
        self._settings = _SETTINGS

    # ------------------------------------------------------------------ plumbing

    def _rows(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if self._settings:
            try:
                return self.client.query_arrow(f"{query} SETTINGS {self._settings}", params).to_pylist()
            except ClickHouseError as exc:
                if "readonly" not in str(exc).lower():
                    raise
                self._settings = ""  # a readonly=1 user may not set anything: the defaults answer the same
        return self.client.query_arrow(query, params).to_pylist()

    def _scalar(self, query: str) -> Any:
        rows = self._rows(query)
        return next(iter(rows[0].values())) if rows else None

    def _conditions(self, metric: MetricBase | None, start: Instant, end: Instant,
                    customer_ids: Sequence[str] | None) -> list[str]:
        """Conditions on the source's own columns (the metric's filters come after its paths)."""
        where = []
        if metric is not None:
            where.append(f"event_name = {sql.lit(metric.event_name)}")
        start_us, end_us = to_us(start), to_us(end)
        if start_us is not None:
            where.append(f"ts >= {_time(start_us)}")
        if end_us is not None:
            where.append(f"ts < {_time(end_us)}")
        if customer_ids is not None:  # the ids come as a parameter (any number of them: no query size limit)
            where.append("customer_id IN (SELECT arrayJoin({cids:Array(String)}))" if len(customer_ids) else "0")
        return where

    def _path_columns(self, needed: Sequence[str]) -> dict[str, pathcols.PathColumns] | None:
        """The columns of these paths (`paths`), given to them first if they have none yet and
        this source may be written; None when they cannot be had (reads then parse the JSON)."""
        if self.database is None or not needed:
            return None
        if any(p not in self._kept for p in needed):
            self._kept = pathcols.stored(self.client, self.database)
            missing = [p for p in needed if p not in self._kept]
            if missing and self.keep is not None:
                try:
                    self.keep(missing)
                except ClickHouseError:  # a user without ALTER/INSERT rights: the JSON answers the same
                    self.keep = None
                self._kept = pathcols.stored(self.client, self.database)
        if any(p not in self._kept for p in needed):
            return None
        return {p: self._kept[p] for p in needed}

    def _selected(self, metric: MetricBase, start: Instant = None, end: Instant = None,
                  customer_ids: Sequence[str] | None = None, *, labels: Sequence[str] = ()) -> str:
        return self._selection(metric, start, end, customer_ids, labels=labels)[0]

    def _selection(self, metric: MetricBase, start: Instant = None, end: Instant = None,
                   customer_ids: Sequence[str] | None = None, *, labels: Sequence[str] = ()) -> tuple[str, bool]:
        """The metric's events as rows of: cid, tus (ts in µs), sq (seq), g0… (the label
        paths' text forms), vt (the value path's text form), st (skip status), val (the
        exact value, sum/max/min/latest), and for `sum` vi (the value when it is an integer
        that fits Int64). Rows that carry the paths' columns read them; the others (if any)
        read the JSON text by the same rules. The flag says a sum may add vi alone (every
        selected value is such an integer: see `paths`)."""
        path = value_path(metric)
        needed = list(dict.fromkeys([*metric.filters, *labels, *([path] if path is not None else [])]))
        where = self._conditions(metric, start, end, customer_ids)
        cols = self._path_columns(needed)
        if cols is None:
            return self._from_json(metric, where, labels), False
        # every row has them: no JSON branch
        if not pathcols.any_lacking(self.client, self.database, cols.values()):  # type: ignore[arg-type]
            ints = _agg(metric) == "sum" and pathcols.all_integers(self.client, self.database, cols[path])  # type: ignore[arg-type,index]
            return self._from_columns(metric, where, labels, cols), ints
        every = " AND ".join(f"{sql_ident(c.has)} = 1" for c in cols.values())
        fast = self._from_columns(metric, where + [every], labels, cols)
        slow = self._from_json(metric, where + [f"NOT ({every})"], labels, low_cardinality=True)
        return f"SELECT * FROM ({fast}) UNION ALL SELECT * FROM ({slow})", False

    def _from_columns(self, metric: MetricBase, where: list[str], labels: Sequence[str],
                      cols: dict[str, pathcols.PathColumns]) -> str:
        agg = _agg(metric)
        path = value_path(metric)
        conds = list(where)
        for fpath, allowed in metric.filters.items():
            texts = [str(v) for v in allowed]
            conds.append(f"{sql_ident(cols[fpath].text)} IN ({', '.join(sql.lit(t) for t in texts)})" if texts else "0")
        out = ["customer_id AS cid", "toUnixTimestamp64Micro(ts) AS tus", "seq AS sq",
               *(f"{sql_ident(cols[p].text)} AS g{i}" for i, p in enumerate(labels))]
        if path is None:
            out.append(f"toUInt8({sql.OK}) AS st")
        elif agg != Aggregation.unique_count.value:
            c = cols[path]
            out += [f"{sql_ident(c.text)} AS vt", f"{sql_ident(c.status)} AS st", f"{sql_ident(c.number)} AS val"]
            if agg == "sum":
                out.append(f"{sql_ident(c.integer)} AS vi")
        else:
            c = cols[path]
            out += [f"{sql_ident(c.text)} AS vt", f"toUInt8(if(vt IS NULL, {MISSING}, {sql.OK})) AS st"]
        return f"SELECT {', '.join(out)} FROM {self.source} WHERE {' AND '.join(conds)}"

    def _from_json(self, metric: MetricBase, where: list[str], labels: Sequence[str], *,
                   low_cardinality: bool = False) -> str:
        """The rows of `_selected`, each path read from the JSON text (sql.Paths)."""
        agg = _agg(metric)
        path = value_path(metric)
        # the filters' paths first: the other paths are read only for the events that pass
        filtering = sql.Paths(list(metric.filters), prefix="f")
        rest = [p for p in dict.fromkeys([*labels, *([path] if path is not None else [])]) if p not in metric.filters]
        paths = sql.Paths(rest)

        def name(p: str) -> str:
            text = filtering.name(p) if p in metric.filters else paths.name(p)
            return f"toLowCardinality({text})" if low_cardinality else text

        inner = (f"SELECT customer_id AS cid, toUnixTimestamp64Micro(ts) AS tus, seq AS sq, properties "
                 f"FROM {self.source} WHERE {' AND '.join(where)}")
        query = sql.select_layers(inner, filtering.layers())
        filters = []
        for fpath, allowed in metric.filters.items():
            texts = [str(v) for v in allowed]
            filters.append(f"{filtering.name(fpath)} IN ({', '.join(sql.lit(t) for t in texts)})" if texts else "0")
        if filters:
            query = f"SELECT * FROM ({query}{_FENCE}) WHERE {' AND '.join(filters)}"
        query = sql.select_layers(query, paths.layers())
        numeric = path is not None and agg not in (Aggregation.unique_count.value,)
        if numeric:
            owner = filtering if path in metric.filters else paths
            query = sql.select_layers(query, owner.number_layers(path))  # type: ignore[arg-type]
        cols = ["cid", "tus", "sq", *(f"{name(p)} AS g{i}" for i, p in enumerate(labels))]
        if path is None:
            cols.append(f"toUInt8({sql.OK}) AS st")
        elif numeric:
            cols += [f"{name(path)} AS vt", "st", "val"]
            if agg == "sum":
                cols.append("CAST(NULL, 'Nullable(Int64)') AS vi")
        else:
            cols += [f"{name(path)} AS vt", f"toUInt8(if(vt IS NULL, {MISSING}, {sql.OK})) AS st"]
        return f"SELECT {', '.join(cols)} FROM ({query}){_FENCE}"

    @staticmethod
    def _measures(metric: MetricBase, ints: bool = False) -> str:
        """Per group: n (events), sk (skipped), m1 and m2 (the sums of the skip codes and of
        their squares: with sk they give the count of each of the three reasons, see `_row`,
        for less than three conditional counts cost), v (the aggregate; NULL when there is none)."""
        return f"count() AS n, countIf(st != 0) AS sk, sum(st) AS m1, sum(st * st) AS m2, {_value(_agg(metric), ints)} AS v"

    @staticmethod
    def _row(metric: MetricBase, r: dict[str, Any], key: tuple) -> dict[str, Any]:
        # codes 1, 2, 3 counted a, b, c times: sk = a+b+c, m1 = a+2b+3c, m2 = a+4b+9c
        sk, m1, m2 = int(r["sk"]), int(r["m1"]), int(r["m2"])
        c = (m2 - 3 * m1 + 2 * sk) // 2
        b = m1 - sk - 2 * c
        skip = {MISSING: sk - b - c, NOT_NUMBER: b, OUT_OF_RANGE: c}
        if _agg(metric) == Aggregation.unique_count.value:
            skip = {MISSING: skip[MISSING]}
        nv = int(r["n"]) - sk
        value = r["v"] if nv or _agg(metric) in ("count", "unique_count") else None
        return {"key": key, "value": _dec(value), "events": int(r["n"]), "skip": skip}

    @staticmethod
    def _result(metric: MetricBase, total: dict[str, Any] | None, groups: list[dict[str, Any]]) -> AggregateResult:
        path = value_path(metric) or ""
        if total is None:
            return AggregateResult(metric.code, metric.aggregation.value, Decimal(0), 0, 0, {}, [])
        reasons = {SKIP_REASONS[c].format(path=path): n for c, n in total["skip"].items() if n}
        results = [
            GroupResult(dict(zip(metric.group_by, g["key"])), g["value"], g["events"], sum(g["skip"].values()))
            for g in groups
        ]
        results.sort(key=lambda g: tuple((v is None, v or "") for v in g.group.values()))
        return AggregateResult(metric.code, metric.aggregation.value, total["value"], total["events"],
                               sum(total["skip"].values()), reasons, results)

    def _grouped(self, metric: MetricBase, start: Instant, end: Instant, customer_ids: Sequence[str] | None,
                 *, by_customer: bool) -> list[tuple[str | None, bool, dict[str, Any]]]:
        """(customer or None, is a label group, row) for the totals and, with group_by, the
        label groups, in one scan: `ROLLUP` aggregates the finest groups once and merges their
        states into the totals (GROUPING SETS would aggregate every row once per set); the
        partial levels it also makes (some labels only) are dropped."""
        labels = list(metric.group_by)
        keys = [f"g{i}" for i in range(len(labels))]
        base = ["cid"] if by_customer else []
        selected, ints = self._selection(metric, start, end, customer_ids, labels=labels)
        grouping = ""
        if labels:
            sets = f"ROLLUP({', '.join(base + keys)})"
            grouping = f", grouping({', '.join(keys)}) AS gm" + (", grouping(cid) AS gc" if base else "")
        else:
            sets = ", ".join(base)
        group_by = f" GROUP BY {sets}" if sets else ""
        cols = ", ".join([*base, *keys]) + ", " if (base or keys) else ""
        query = f"SELECT {cols}{self._measures(metric, ints)}{grouping} FROM ({selected}){group_by}"
        none = (1 << len(keys)) - 1  # standard GROUPING: a bit is 0 where grouped by that label
        out = []
        for r in self._rows(query, _ids(customer_ids)):
            if not r["n"]:
                continue  # a total over no rows (no GROUP BY): nothing matched
            if labels:
                if by_customer and r["gc"] != 0:
                    continue  # ROLLUP's grand total: not asked for
                if r["gm"] not in (0, none):
                    continue  # some labels only
            is_group = bool(labels) and r["gm"] == 0
            key = tuple(r[k] for k in keys) if is_group else ()
            row = self._row(metric, r, key)
            out.append((r["cid"] if by_customer else None, is_group, row))
        return out

    # ------------------------------------------------------------------ facts

    def __len__(self) -> int:
        return int(self._scalar(f"SELECT count() FROM {self.source}") or 0)

    def time_bounds(self, event_name: str | None = None) -> tuple[int, int] | None:
        where = f" WHERE event_name = {sql.lit(event_name)}" if event_name is not None else ""
        rows = self._rows(
            f"SELECT count() AS n, toUnixTimestamp64Micro(min(ts)) AS lo, toUnixTimestamp64Micro(max(ts)) AS hi "
            f"FROM {self.source}{where}")
        if not rows or not rows[0]["n"]:
            return None
        return int(rows[0]["lo"]), int(rows[0]["hi"])

    def customer_ids(self) -> list[str]:
        rows = self._rows(f"SELECT DISTINCT customer_id AS c FROM {self.source}")
        return sorted(r["c"] for r in rows)

    def first_event_us(self, customer_ids: Sequence[str] | None = None) -> dict[str, int]:
        where = self._conditions(None, None, None, customer_ids)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(f"SELECT customer_id AS c, toUnixTimestamp64Micro(min(ts)) AS t FROM {self.source}{clause} GROUP BY c",
                          _ids(customer_ids))
        return {r["c"]: int(r["t"]) for r in rows}

    def event_name_counts(self) -> list[tuple[str, int]]:
        rows = self._rows(f"SELECT toString(event_name) AS e, count() AS n FROM {self.source} GROUP BY e")
        return sorted(((r["e"], int(r["n"])) for r in rows), key=lambda p: (-p[1], p[0]))

    def sample_properties(self, event_name: str | None = None, n: int = 2000) -> list[str]:
        n = max(int(n), 0)
        if event_name:
            found = [r["p"] for r in self._rows(
                f"SELECT properties AS p FROM {self.source} WHERE event_name = {sql.lit(event_name)} LIMIT {n}")]
            if found:
                return found
        return [r["p"] for r in self._rows(f"SELECT properties AS p FROM {self.source} LIMIT {n}")]

    # ------------------------------------------------------------------ contract §2

    def _assemble(self, metric: MetricBase, rows: list[tuple[str | None, bool, dict[str, Any]]]) -> dict[str | None, AggregateResult]:
        totals: dict[str | None, dict[str, Any]] = {}
        groups: dict[str | None, list[dict[str, Any]]] = {}
        for cid, is_group, row in rows:
            if is_group:
                groups.setdefault(cid, []).append(row)
            else:
                totals[cid] = row
        return {cid: self._result(metric, total, groups.get(cid, [])) for cid, total in totals.items()}

    def aggregate(self, metric: MetricBase, *, start: Instant = None, end: Instant = None,
                  customer_ids: Sequence[str] | None = None) -> AggregateResult:
        found = self._assemble(metric, self._grouped(metric, start, end, customer_ids, by_customer=False))
        return found.get(None) or self._result(metric, None, [])

    def aggregate_by_customer(self, metric: MetricBase, *, start: Instant = None, end: Instant = None,
                              customer_ids: Sequence[str] | None = None) -> dict[str, AggregateResult]:
        found = self._assemble(metric, self._grouped(metric, start, end, customer_ids, by_customer=True))
        return {str(cid): result for cid, result in found.items()}

    def explain(self, metric: MetricBase, *, start: Instant = None, end: Instant = None, k: int = 5) -> Explanation:
        result = self.aggregate(metric, start=start, end=end)
        agg = _agg(metric)
        firsts: list[Decimal] = []
        distinct: list[str] = []
        more = False
        latest_ts = latest_customer = None
        k = max(int(k), 0)
        if result.events and value_path(metric) is not None:
            selected = self._selected(metric, start, end)
            if agg == Aggregation.unique_count.value:
                rows = self._rows(f"SELECT vt, min(sq) AS first FROM ({selected}) WHERE vt IS NOT NULL "
                                  f"GROUP BY vt ORDER BY first LIMIT {k}")
                distinct = [r["vt"] for r in rows]
            elif agg == Aggregation.latest.value:
                rows = self._rows(f"SELECT tus, cid FROM ({selected}) WHERE st = 0 ORDER BY tus DESC, sq DESC LIMIT 1")
                if rows:
                    latest_ts, latest_customer = int(rows[0]["tus"]), rows[0]["cid"]
            else:
                rows = self._rows(f"SELECT val FROM ({selected}) WHERE st = 0 ORDER BY sq LIMIT {k + 1}")
                firsts = [_dec(r["val"]) for r in rows[:k]]
                more = len(rows) > k
        return Explanation(result, firsts, more, distinct, latest_ts, latest_customer)

    # ------------------------------------------------------------------ contract §3

    def _chained(self, metric: MetricBase, chain: Sequence[Window], cids: Sequence[str], *,
                 since_ever: bool = False) -> tuple[str, dict[str, Any], bool]:
        """The metric's events of these customers in a chain of windows, with pos (customer
        position in `cids`), b (window: the last one starting at or before the event) and
        inside (the event lies in its window's [start, end)). With `since_ever`, events
        before the chain are kept too, in window 0 (inside = 0)."""
        starts = [int(to_us(s)) for s, _ in chain]  # type: ignore[arg-type]
        ends = [int(to_us(e)) for _, e in chain]  # type: ignore[arg-type]
        ids = list(dict.fromkeys(cids))
        selected, ints = self._selection(metric, None if since_ever else min(starts), max(ends), ids)
        starts_sql = "[" + ",".join(f"toInt64({s})" for s in starts) + "]"
        ends_sql = "[" + ",".join(f"toInt64({e})" for e in ends) + "]"
        at = {c: p for p, c in enumerate(cids)}  # an id given twice: its last position
        raw_b = f"toInt64(arrayCount(x -> x <= tus, {starts_sql})) - 1"
        query = (
            f"SELECT *, greatest(rb, 0) AS b, rb >= 0 AND tus < arrayElement({ends_sql}, toUInt64(greatest(rb, 0) + 1)) AS inside, "
            "transform(cid, {cids:Array(String)}, {cpos:Array(Int64)}, toInt64(-1)) AS pos "
            f"FROM (SELECT *, {raw_b} AS rb FROM ({selected}))"
        )
        keep = "inside OR rb < 0" if since_ever else "inside"
        return f"SELECT * FROM ({query}) WHERE pos >= 0 AND ({keep})", {"cids": ids, "cpos": [at[c] for c in ids]}, ints

    def window_usage(self, metric: MetricBase, chain: Sequence[Window], customer_ids: Sequence[str], *,
                     since_ever: bool = False) -> WindowUsage:
        nb, nc = len(chain), len(customer_ids)
        values: list[list[Decimal | None]] = [[None] * nb for _ in range(nc)]
        events = np.zeros((nc, nb), dtype=np.int64)
        skipped = np.zeros((nc, nb), dtype=np.int64)
        period_events = np.zeros((nc, nb), dtype=np.int64)
        if not nb or not nc:
            return WindowUsage(values, events, skipped, period_events)
        rows_sql, params, ints = self._chained(metric, chain, customer_ids, since_ever=since_ever)
        agg = _agg(metric)
        value = _value(agg, ints)
        query = (f"SELECT pos, b, count() AS n, countIf(inside) AS pn, countIf(st != 0) AS sk, "
                 f"countIf(st = 0) AS nv, {value} AS v FROM ({rows_sql}) GROUP BY pos, b")
        rows = self._rows(query, params)
        # positions of repeated customer ids: every position of an id reads the same numbers
        same = _positions(customer_ids)
        for r in rows:
            for c in same[int(r["pos"])]:
                w = int(r["b"])
                events[c, w], period_events[c, w], skipped[c, w] = int(r["n"]), int(r["pn"]), int(r["sk"])
                if agg == "count":
                    values[c][w] = _dec(r["n"]) if r["n"] else None
                elif agg == "unique_count":
                    if not since_ever:
                        values[c][w] = _dec(r["v"]) if r["v"] else None
                else:
                    values[c][w] = _dec(r["v"]) if r["nv"] else None
        if agg == "unique_count" and since_ever:  # a value counts where the customer first used it
            query = (f"SELECT pos, fb AS b, count() AS d FROM (SELECT pos, vt, min(b) AS fb FROM ({rows_sql}) "
                     f"WHERE vt IS NOT NULL GROUP BY pos, vt) GROUP BY pos, b")
            for r in self._rows(query, params):
                for c in same[int(r["pos"])]:
                    values[c][int(r["b"])] = Decimal(int(r["d"])) if r["d"] else None
        return WindowUsage(values, events, skipped, period_events)

    def limit_usage(self, metric: MetricBase, chain: Sequence[Window], customer_ids: Sequence[str],
                    limit: Decimal) -> dict[tuple[int, int], LimitRow]:
        """A hard quota per (customer position, window) with events, events taken in time
        order then store order (contract §3). count, unique_count, max and latest are plain
        aggregates; `sum` is a running total (a window function) up to the first event that
        would pass the limit, and from there the sequential rule (accept when used + value ≤
        limit) as an arrayFold over the rest of that window's values, in ClickHouse."""
        agg = _agg(metric)
        if agg == Aggregation.min.value:
            raise ValueError("min cannot be used with a limit metric: a quota caps a minimum")
        if not chain or not customer_ids:
            return {}
        limit = Decimal(limit)
        rows_sql, params, _ = self._chained(metric, chain, customer_ids)
        # a count never passes 2^63 - 1: a larger limit is that (a longer literal reads as Float64)
        whole = min(max(int(limit.to_integral_value(rounding=ROUND_FLOOR)), 0), 2**63 - 1)
        cap = _limit18(limit)
        base = "SELECT pos, b, count() AS n, countIf(st != 0) AS sk"
        if agg == "count":
            query = (f"{base}, toDecimal256(least(count(), {whole}), 0) AS used, count() - least(count(), {whole}) AS rej "
                     f"FROM ({rows_sql}) GROUP BY pos, b")
        elif agg == "unique_count":
            # each distinct value ranked by where it is first seen in its (customer, window):
            # the first `whole` are admitted; every event of a later one is refused (a refused
            # value is not "known", so its repeats are refused too)
            first_seen = (f"SELECT *, if(vt IS NULL, (toInt64(9223372036854775807), toUInt64(0)), "
                          f"min((tus, sq)) OVER (PARTITION BY pos, b, vt)) AS fa FROM ({rows_sql})")
            ranked = f"SELECT *, dense_rank() OVER (PARTITION BY pos, b ORDER BY fa) AS rk FROM ({first_seen})"
            query = (f"{base}, toDecimal256(uniqExactIf(vt, vt IS NOT NULL AND rk <= {whole}), 0) AS used, "
                     f"countIf(vt IS NOT NULL AND rk > {whole}) AS rej FROM ({ranked}) GROUP BY pos, b")
        elif agg in ("max", "latest"):
            fits = f"st = 0 AND val <= {cap}"
            used = f"maxIf(val, {fits})" if agg == "max" else f"argMaxIf(val, (tus, sq), {fits})"
            query = f"{base}, {used} AS used, countIf(st = 0 AND NOT ({fits})) AS rej FROM ({rows_sql}) GROUP BY pos, b"
        else:  # sum
            zero = "toDecimal256(0, 18)"
            running = (
                f"SELECT *, ifNull(val, {zero}) AS v0, sum(ifNull(val, {zero})) OVER "
                f"(PARTITION BY pos, b ORDER BY tus, sq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run "
                f"FROM ({rows_sql})"
            )
            # the first event whose running total passes the limit: everything before it fitted
            marked = (
                f"SELECT *, countIf(run > {cap}) OVER (PARTITION BY pos, b) > 0 AS ho, "
                f"minIf((tus, sq), run > {cap}) OVER (PARTITION BY pos, b) AS fo FROM ({running})"
            )
            per_window = (
                f"SELECT pos, b, count() AS n, countIf(st != 0) AS sk, any(ho) AS over, sum(v0) AS total, "
                f"sumIf(run - v0, ho AND (tus, sq) = fo) AS before, "
                f"arrayMap(y -> y.3, arraySort(y -> (y.1, y.2), groupArrayIf((tus, sq, v0), st = 0 AND ho AND (tus, sq) >= fo))) AS tail "
                f"FROM ({marked}) GROUP BY pos, b"
            )
            fold = (f"arrayFold((acc, x) -> if(acc.1 + x <= {cap}, (acc.1 + x, acc.2), (acc.1, acc.2 + 1)), "
                    f"tail, (before, toUInt64(0)))")
            query = (f"SELECT pos, b, n, sk, if(over, w.1, total) AS used, if(over, w.2, 0) AS rej "
                     f"FROM (SELECT *, if(over, {fold}, (total, toUInt64(0))) AS w FROM ({per_window}))")
        rows = self._rows(query, params)
        same = _positions(customer_ids)
        out: dict[tuple[int, int], LimitRow] = {}
        for r in rows:
            for c in same[int(r["pos"])]:
                out[(c, int(r["b"]))] = LimitRow(_dec(r["used"]), int(r["n"]), int(r["sk"]), int(r["rej"]))
        return out

    # ------------------------------------------------------------------ the app

    def daily_usage(self, metric: MetricBase, *, start: Instant = None, end: Instant = None,
                    customer_ids: Sequence[str] | None = None, split_by: str | None = None) -> pd.DataFrame:
        import pandas as pd

        columns = ["day", "group", "value", "events", "skipped"]
        labels = [split_by] if split_by else []
        selected, ints = self._selection(metric, start, end, customer_ids, labels=labels)
        keys = ", g0" if split_by else ""
        query = (f"SELECT intDiv(tus, 86400000000) - if(tus % 86400000000 < 0, 1, 0) AS day{keys}, "
                 f"{self._measures(metric, ints)} FROM ({selected}) GROUP BY day{keys} ORDER BY day{keys}")
        rows = self._rows(query, _ids(customer_ids))
        if not rows:
            return pd.DataFrame({c: pd.Series(dtype=object if c in ("day", "group", "value") else "int64") for c in columns})
        epoch = date(1970, 1, 1)
        records = []
        for r in rows:
            row = self._row(metric, r, ())
            records.append({
                "day": epoch + timedelta(days=int(r["day"])),
                "group": r["g0"] if split_by else None,
                "value": row["value"],
                "events": row["events"],
                "skipped": sum(row["skip"].values()),
            })
        return pd.DataFrame.from_records(records, columns=columns)

    def _browse_where(self, q: EventQuery) -> str:
        where = []
        if q.event_name:
            where.append(f"event_name = {sql.lit(q.event_name)}")
        if q.customer_id:
            where.append(f"customer_id = {sql.lit(q.customer_id)}")
        if q.start is not None:
            where.append(f"ts >= {_time(to_us(datetime(q.start.year, q.start.month, q.start.day, tzinfo=timezone.utc)))}")  # type: ignore[arg-type]
        if q.end is not None:
            end = q.end + timedelta(days=1)
            where.append(f"ts < {_time(to_us(datetime(end.year, end.month, end.day, tzinfo=timezone.utc)))}")  # type: ignore[arg-type]
        if q.import_id is not None:
            where.append(f"import_id = {int(q.import_id)}")
        return f" WHERE {' AND '.join(where)}" if where else ""

    def count_events(self, query: EventQuery) -> int:
        return int(self._scalar(f"SELECT count() FROM {self.source}{self._browse_where(query)}") or 0)

    def browse(self, query: EventQuery, *, limit: int, offset: int) -> pd.DataFrame:
        """One page of the matching events, newest first (ties: stored last first)."""
        import pandas as pd

        rows = self._rows(
            f"SELECT toUnixTimestamp64Micro(ts) AS ts_us, toString(event_name) AS event_name, customer_id, properties, "
            f"idempotency_key, import_id FROM {self.source}{self._browse_where(query)} "
            f"ORDER BY ts DESC, seq DESC LIMIT {max(int(limit), 0)} OFFSET {max(int(offset), 0)}")
        return pd.DataFrame({
            "ts_us": np.array([r["ts_us"] for r in rows], dtype=np.int64),
            "event_name": [r["event_name"] for r in rows],
            "customer_id": [r["customer_id"] for r in rows],
            "properties": [r["properties"] for r in rows],
            "idempotency_key": [r["idempotency_key"] for r in rows],
            "import_id": pd.array([r["import_id"] for r in rows], dtype="Int64"),
        }, columns=_BROWSE_COLUMNS)

    def find_event(self, key: str) -> dict[str, Any] | None:
        rows = self._rows(
            f"SELECT toString(event_name) AS event_name, customer_id, toUnixTimestamp64Micro(ts) AS ts_us, "
            f"idempotency_key, properties, import_id FROM {self.source} WHERE idempotency_key = {sql.lit(key)} "
            f"ORDER BY seq LIMIT 1")
        if not rows:
            return None
        r = rows[0]
        return {
            "event_name": r["event_name"], "customer_id": r["customer_id"], "ts_us": int(r["ts_us"]),
            "idempotency_key": r["idempotency_key"], "properties": r["properties"],
            "import_id": None if r["import_id"] is None else int(r["import_id"]),
        }


__all__ = ["ClickHouseEvents"]
