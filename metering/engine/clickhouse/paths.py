"""Property paths kept as columns of the ClickHouse events table, so reads skip the JSON.

Reading a metric's paths from the properties' JSON text under the value rules (`sql.Paths`)
costs a JSON parse (and for non-integers a regular-expression pass) per selected event: at
10M events a preview took seconds. So, as the embedded engine keeps what a path became, each
path a metric reads gets six columns here, named by a hash of the path (its text is the
columns' COMMENT):

* `p<h>_h2 UInt8 DEFAULT 0`: 1 where the row carries the path's values below (2: the layout).
  Rows stored before the path got its columns read 0 (ClickHouse fills an added column's
  default), and so do rows whose columns an earlier layout wrote.
* `p<h>_t LowCardinality(Nullable(String))`: the text form (filters, groups, unique_count).
* `p<h>_n Nullable(Decimal256(18))`: the exact number (NULL unless the status is OK).
* `p<h>_s UInt8`: the skip status (OK, MISSING, NOT_NUMBER, OUT_OF_RANGE).
* `p<h>_i Nullable(Int64)` (codec T64): the number when it is an integer that fits Int64, and
  `p<h>_f UInt8` (with a minmax index): 1 where the number is OK but not such an integer. A
  sum over a path with no `_f` row adds Int64s (as Int128: exact) instead of Decimal256s,
  which reads a quarter of the bytes.

The values are the embedded engine's own: the writer computes them with
`EventBatch.text` / `columns.numbers` for every path the table has columns for. A path gets
its columns the first time a metric reads it (`keep`): the columns are added, then the rows
without them are written again with them, computed in SQL by the value rules (one
INSERT … SELECT FROM table FINAL; the ReplacingMergeTree keeps the newer copy of a row, which
has the same key and version, and FINAL reads it before any merge), then the table is merged
(OPTIMIZE … FINAL) so that reads do not merge the two copies every time. That runs under the
writer's lock, so no delete or import interleaves. It costs a rewrite of the table once per
new path, as the embedded engine derives a new path once.

Reads (`reads.ClickHouseEvents._selected`) take rows whose `h` columns are all 1 from the
columns and the rest (rows written by a process that did not know the path yet) through the
JSON rules, so an answer never depends on which rows have columns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metering.engine.clickhouse import schema, sql
from metering.engine.clickhouse.connection import ClickHouseClient, ClickHouseError
from metering.engine.columns import OK, numbers

_PREFIX = "path:"
LAYOUT = 2  # of the path columns (1: without the Int64 columns)


@dataclass(frozen=True)
class PathColumns:
    """The columns of one path."""

    path: str
    base: str

    @property
    def has(self) -> str:
        # the layout's number: a table whose path columns were laid out otherwise lacks this
        # flag, so its rows are filled again with every column of this layout
        return f"{self.base}_h{LAYOUT}"

    @property
    def text(self) -> str:
        return f"{self.base}_t"

    @property
    def number(self) -> str:
        return f"{self.base}_n"

    @property
    def status(self) -> str:
        return f"{self.base}_s"

    @property
    def integer(self) -> str:
        return f"{self.base}_i"

    @property
    def fraction(self) -> str:
        return f"{self.base}_f"

    def names(self) -> tuple[str, ...]:
        return (self.has, self.text, self.number, self.status, self.integer, self.fraction)


def columns_of(path: str) -> PathColumns:
    return PathColumns(path, "p" + hashlib.blake2b(path.encode(), digest_size=6).hexdigest())


def stored(client: ClickHouseClient, database: str, table: str = schema.EVENTS_TABLE) -> dict[str, PathColumns]:
    """The paths the table has columns for (all six of this layout present)."""
    rows = schema.columns(client, database, table)
    names = {r["name"] for r in rows}
    found: dict[str, PathColumns] = {}
    for r in rows:
        comment = r["comment"] or ""
        if comment.startswith(_PREFIX) and r["name"].endswith(f"_h{LAYOUT}"):
            cols = columns_of(comment[len(_PREFIX):])
            if cols.has == r["name"] and set(cols.names()) <= names:
                found[cols.path] = cols
    return found


# T64 first drops the high bits the column's values never use (usage counts are small), so
# LZ4 then has a quarter of the bytes: a sum over 10M rows read 16 ms instead of 56 ms here.
_INT64_CODEC = "CODEC(T64, LZ4)"
_INT64 = f"Nullable(Int64) {_INT64_CODEC}"


def upgrade(client: ClickHouseClient, database: str) -> None:
    """Give the integer columns an earlier version added without it the T64 codec. Metadata
    only: parts written from now on, merges included, use it; no data is rewritten now. A
    user who may not ALTER the table keeps the codec it has (the answers are the same)."""
    for r in schema.columns(client, database):
        if (r["name"].endswith("_i") and (r["comment"] or "").startswith(_PREFIX)
                and "T64" not in (r["compression_codec"] or "")):
            try:
                client.command(f"ALTER TABLE {schema.table_name(database)} MODIFY COLUMN "
                               f"{schema.ident(r['name'])} {_INT64_CODEC}")
            except ClickHouseError:
                return


def add_columns(client: ClickHouseClient, database: str, paths: Iterable[str]) -> list[PathColumns]:
    """Add the columns of these paths (idempotent; the `h` column last, so a path is listed
    by `stored` only once all four exist)."""
    table = schema.table_name(database)
    added = []
    for path in paths:
        cols = columns_of(path)
        note = sql.lit(_PREFIX + path)
        for name, ddl in ((cols.text, "LowCardinality(Nullable(String))"), (cols.number, "Nullable(Decimal256(18))"),
                          (cols.status, f"UInt8 DEFAULT {sql.MISSING}"), (cols.integer, _INT64),
                          (cols.fraction, "UInt8 DEFAULT 0"), (cols.has, "UInt8 DEFAULT 0")):
            client.command(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {schema.ident(name)} {ddl} COMMENT {note}")
        client.command(f"ALTER TABLE {table} ADD INDEX IF NOT EXISTS {schema.ident('idx_' + cols.fraction)} "
                       f"{schema.ident(cols.fraction)} TYPE minmax GRANULARITY 1")
        added.append(cols)
    return added


def backfill(client: ClickHouseClient, database: str, paths: Sequence[PathColumns], every: Sequence[str]) -> None:
    """Write again, with these paths' columns computed by the value rules in SQL, every row
    that lacks one of them. `every` is the table's column list (what is copied as it is)."""
    if not paths:
        return
    table = schema.table_name(database)
    source = schema.events_source(database)
    computed = {c for p in paths for c in p.names()}
    kept = [c for c in every if c not in computed and c != "keep_first"]
    rule = sql.Paths([p.path for p in paths])
    lacking = " OR ".join(f"{schema.ident(p.has)} = 0" for p in paths)
    query = sql.select_layers(f"SELECT * FROM {source} WHERE {lacking}", rule.layers())
    outs: list[str] = []
    for i, p in enumerate(paths):
        query = sql.select_layers(query, rule.number_layers(p.path))
        query = f"SELECT * EXCEPT (tr, st, val), st AS b{i}_s, val AS b{i}_n FROM ({query})"
        # an integer that fits Int64: its text form read back as one and equal to the value
        integer = (f"if(b{i}_s = {sql.OK} AND toDecimal256(toInt64OrNull(toString(b{i}_n)), {sql.SCALE}) = b{i}_n, "
                   f"toInt64OrNull(toString(b{i}_n)), NULL)")
        outs += [f"toUInt8(1) AS {schema.ident(p.has)}", f"toLowCardinality({rule.name(p.path)}) AS {schema.ident(p.text)}",
                 f"b{i}_n AS {schema.ident(p.number)}", f"toUInt8(b{i}_s) AS {schema.ident(p.status)}",
                 f"{integer} AS {schema.ident(p.integer)}",
                 f"toUInt8(b{i}_s = {sql.OK} AND {schema.ident(p.integer)} IS NULL) AS {schema.ident(p.fraction)}"]
    names = ", ".join(schema.ident(c) for c in kept)
    targets = ", ".join([names, *(schema.ident(c) for p in paths for c in p.names())])
    client.command(
        f"INSERT INTO {table} ({targets}) SELECT {names}, {', '.join(outs)} FROM ({query}) "
        f"SETTINGS query_plan_merge_expressions = 0")
    # Merge now: until the older copies are merged away, FINAL would merge them on every read.
    client.command(f"OPTIMIZE TABLE {table} FINAL")


def lacking(client: ClickHouseClient, database: str, paths: Sequence[str]) -> list[PathColumns]:
    """Those of these paths (with columns) that some stored row lacks."""
    cols = [columns_of(p) for p in paths]
    if not cols:
        return []
    counts = ", ".join(f"countIf({schema.ident(c.has)} = 0) AS l{i}" for i, c in enumerate(cols))
    row = client.query_arrow(f"SELECT {counts} FROM {schema.events_source(database)}").to_pylist()[0]
    return [c for i, c in enumerate(cols) if row[f"l{i}"]]


def any_lacking(client: ClickHouseClient, database: str, cols: Iterable[PathColumns]) -> bool:
    """Whether any stored row lacks one of these paths' columns. Reads only the flag columns,
    without FINAL (a row that lacks them in any copy counts), and stops at the first: cheap
    enough to ask on every read (`lacking` says which paths, for a backfill)."""
    lack = " OR ".join(f"{schema.ident(c.has)} = 0" for c in cols)
    rows = client.query_arrow(f"SELECT 1 AS x FROM {schema.table_name(database)} WHERE {lack} LIMIT 1").num_rows
    return rows > 0


def table_columns(client: ClickHouseClient, database: str, table: str = schema.EVENTS_TABLE) -> list[str]:
    """The columns an INSERT writes (not the computed ones)."""
    return [r["name"] for r in schema.columns(client, database, table)
            if r["default_kind"] not in ("MATERIALIZED", "ALIAS", "EPHEMERAL")]


def values(paths: Iterable[PathColumns], text_of: Callable[[str], pa.Array], rows: np.ndarray, n: int) -> dict[str, pa.Array]:
    """The path columns of an insert: for each path, the embedded engine's text form, number
    and status of the rows `rows` (of `n`)."""
    out: dict[str, pa.Array] = {}
    idx = pa.array(rows, pa.int64())
    whole = len(rows) == n
    for p in paths:
        text = text_of(p.path)
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        if pa.types.is_dictionary(text.type):
            text = text.cast(pa.string())
        if not whole:
            text = text.take(idx)
        number, status = numbers(text.dictionary_encode())
        ok = np.asarray(status) == OK
        # integers that fit Int64: an unchecked cast read back equal (fractions and larger values
        # come back different)
        ints = pc.cast(number, pa.int64(), safe=False)
        exact = pc.fill_null(pc.equal(pc.cast(ints, number.type), number), False).to_numpy(zero_copy_only=False)
        integral = ok & exact
        out[p.has] = pa.array(np.ones(len(rows), dtype=np.uint8))
        out[p.text] = text
        out[p.number] = number
        out[p.status] = pa.array(np.asarray(status, dtype=np.uint8))
        out[p.integer] = pa.array(pc.fill_null(ints, 0).to_numpy(zero_copy_only=False), mask=~integral, type=pa.int64())
        out[p.fraction] = pa.array((ok & ~exact).astype(np.uint8))
    return out


def all_integers(client: ClickHouseClient, database: str, cols: PathColumns) -> bool:
    """Whether every stored number at this path is an integer that fits Int64 (no `_f` row;
    the minmax index on `_f` skips the granules without one)."""
    rows = client.query_arrow(
        f"SELECT 1 AS x FROM {schema.table_name(database)} WHERE {schema.ident(cols.fraction)} = 1 LIMIT 1").num_rows
    return rows == 0
