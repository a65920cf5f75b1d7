"""Reading event files (CSV, JSON Lines, JSON) and API payloads into validated columns.

Rules (contract §1): a bad row is reported with its line (1 = first line of the file), field
and reason while good rows are kept; a file that cannot be read at all raises `UnreadableFile`
and stores nothing. Properties are stored as canonical JSON (sorted keys, compact, number
literals exactly as written) and an event without an idempotency key gets a content hash of
its name, customer, UTC timestamp and canonical properties, so importing a file twice adds
nothing. Column checks are vectorized; only JSON records are looked at one by one.
"""

from __future__ import annotations

import csv
import os
import io
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy.engine import Engine

from metering import store
from metering.engine import keys
from metering.engine.batch import EventBatch, shred
from metering.engine.batch import Path as Path_
from metering.models import EVENT_NAME_RE
from metering.peers import cloudevents
from metering.values import JSON_NUMBER, NUMERIC_TEXT, parse_decimal

REQUIRED = ("event_name", "customer_id", "timestamp")
EVENT_FIELDS = (*REQUIRED, "idempotency_key", "properties")
MAX_EPOCH_S = 253_402_300_800  # 10000-01-01: beyond that a number is not a timestamp
# The times an event may carry: every page (periods, charts, date pickers, pandas' datetimes)
# can show these, so a year-9999 typo is refused at intake instead of breaking reads.
MIN_TS_US = -2_208_988_800_000_000  # 1900-01-01T00:00:00Z, included
MAX_TS_US = 7_258_118_400_000_000  # 2200-01-01T00:00:00Z, excluded
TS_RANGE_TEXT = "1900-01-01 to 2199-12-31 (UTC)"
_TS_OFFSET = keys.TS_OFFSET

# JSON numbers are parsed as marked strings so their literal text survives (no float drift,
# no 4300-digit int limit) and is written back verbatim in canonical JSON. The random marker
# cannot be produced by input.
_NONCE = secrets.token_hex(6)
_OPEN = f"\U000f0000{_NONCE}"
_CLOSE = f"{_NONCE}\U000f0001"


class UnreadableFile(ValueError):
    """The file cannot be read at all: nothing from it is stored."""


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "reason": self.reason}


class ParsedEvents:
    """Valid events (an Arrow-backed :class:`EventBatch`), plus one error per rejected row.

    The list views (`event_name`, `rows()`, …) are for small inputs and tests; bulk paths
    use `batch` directly."""

    def __init__(self, batch: EventBatch | None = None, errors: list[RowError] | None = None) -> None:
        self.batch = batch if batch is not None else EventBatch.empty()
        self.errors: list[RowError] = errors if errors is not None else []
        self.position = 0  # bytes of the file read through this block (a file read in blocks)

    def __len__(self) -> int:
        return len(self.batch)

    @property
    def event_name(self) -> list[str]:
        return self.batch.event_name.to_pylist()

    @property
    def customer_id(self) -> list[str]:
        return self.batch.customer_id.to_pylist()

    @property
    def ts_us(self) -> list[int]:
        return self.batch.ts_us.tolist()

    @property
    def idempotency_key(self) -> list[str]:
        return self.batch.key_text().to_pylist()

    @property
    def properties(self) -> list[str]:
        return self.batch.properties.to_pylist()

    @property
    def lines(self) -> list[int]:
        return [] if self.batch.lines is None else self.batch.lines.tolist()

    def rows(self) -> list[tuple[str, str, int, str, str]]:
        return list(zip(self.event_name, self.customer_id, self.ts_us, self.idempotency_key, self.properties))

    def extend(self, other: ParsedEvents) -> None:
        self.batch = EventBatch.concat([self.batch, other.batch])
        self.errors.extend(other.errors)


@dataclass
class ImportResult:
    accepted: int
    duplicates: int
    rejected: int
    errors: list[RowError]
    import_id: int | None = None
    future: int = 0  # valid events dated after the moment of the import (planned usage, or a typo)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "future": self.future,
            "errors": [e.to_json() for e in self.errors],
        }


def count_future(parsed: ParsedEvents, *, now_us: int | None = None) -> int:
    """How many valid events of a file are dated after now (a file may hold planned usage;
    the result says how much, so a year typo does not go unnoticed)."""
    if not len(parsed):
        return 0
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    return int(np.count_nonzero(np.asarray(parsed.ts_us, dtype=np.int64) > now_us))


# --------------------------------------------------------------------------- JSON helpers


def _mark(text: str) -> str:
    return f"{_OPEN}{text}{_CLOSE}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads_exact(text: str | bytes) -> Any:
    """json.loads keeping every number as its literal text (see canonical_json)."""
    return json.loads(text, parse_float=_mark, parse_int=_mark, parse_constant=_reject_constant)


def is_number(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(_OPEN)


def number_text(value: str) -> str:
    return value[len(_OPEN) : -len(_CLOSE)]


def _plain(value: Any) -> Any:
    """Turn values given as Python objects (API callers, tests) into loads_exact's form."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, Decimal)):
        return _mark(str(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("NaN and Infinity are not JSON numbers")
        return _mark(repr(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept, number literals exactly as read."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace(f'"{_OPEN}', "").replace(f'{_CLOSE}"', "")


def content_keys(names: pa.Array, customers: pa.Array, ts_us: np.ndarray, properties: pa.Array) -> pa.Array:
    """Default idempotency keys: `h:` + the UTC timestamp (hex, offset to stay positive) + a
    64-bit SipHash-2-4 of name, customer and canonical properties (pandas.util.hash_array).

    Vectorized, and time-ordered (see metering.engine.keys for how they are compared)."""
    if len(ts_us) == 0:
        return pa.array([], type=pa.string())
    digest = keys.content_digest(pc.binary_join_element_wise(names, customers, properties, "\x1f"))
    return keys.content_key_text(ts_us, digest)


def content_key(event_name: str, customer_id: str, ts_us: int, properties: str) -> str:
    return content_keys(pa.array([event_name]), pa.array([customer_id]), np.array([ts_us]), pa.array([properties]))[0].as_py()


# --------------------------------------------------------------------------- timestamps


def parse_timestamps(raw: Sequence[Any] | pa.Array) -> tuple[np.ndarray, dict[int, str]]:
    """ISO 8601 text (no offset = UTC) or Unix epoch seconds → UTC epoch microseconds.

    Returns the values and, for each row that is not a timestamp, the reason.
    """
    arr = raw if isinstance(raw, (pa.Array, pa.ChunkedArray)) else pa.array([None if v is None else str(v) for v in raw], type=pa.string())
    n = len(arr)
    out = np.zeros(n, dtype=np.int64)
    reasons: dict[int, str] = {}
    if n == 0:
        return out, reasons
    arr = pc.utf8_trim_whitespace(arr)
    blank = pc.fill_null(pc.equal(arr, ""), True).to_numpy(zero_copy_only=False)
    # ISO dates have '-' as 5th character; only the rest can be epoch numbers (saves a regex pass).
    iso_like = pc.fill_null(pc.equal(pc.utf8_slice_codeunits(arr, 4, 5), "-"), False).to_numpy(zero_copy_only=False)
    numeric = np.zeros(n, dtype=bool)
    other = np.flatnonzero(~iso_like & ~blank)
    if len(other):
        numeric[other] = pc.fill_null(pc.match_substring_regex(arr.take(pa.array(other)), NUMERIC_TEXT), False).to_numpy(zero_copy_only=False)
    iso = ~numeric & ~blank
    if iso.any():
        idx = np.flatnonzero(iso)
        texts = arr if iso.all() else arr.take(pa.array(idx))
        fast = _arrow_times(texts)
        if fast is not None:
            out[idx] = fast
        else:
            parsed = pd.to_datetime(texts.to_pandas(), utc=True, format="ISO8601", errors="coerce")
            ok = parsed.notna().to_numpy()
            out[idx[ok]] = parsed[ok].dt.as_unit("us").astype("int64").to_numpy()
            for i in idx[~ok].tolist():
                reasons[i] = f"'{_clip(arr[i].as_py())}' is not an ISO 8601 time or Unix epoch seconds"
    for i in np.flatnonzero(numeric).tolist():  # epoch numbers: exact via Decimal, one by one (rare)
        seconds = parse_decimal(arr[i].as_py())
        if seconds is None or not (-MAX_EPOCH_S < seconds < MAX_EPOCH_S):
            reasons[i] = f"epoch seconds {_clip(arr[i].as_py())} out of range ({TS_RANGE_TEXT})"
        else:
            out[i] = int((seconds * 1_000_000).to_integral_value(rounding="ROUND_FLOOR"))
    outside = ~blank & ((out < MIN_TS_US) | (out >= MAX_TS_US))
    for i in np.flatnonzero(outside).tolist():  # only rows that parsed: a bad one keeps its reason
        reasons.setdefault(i, f"'{_clip(arr[i].as_py())}' is outside the supported times, {TS_RANGE_TEXT}")
    for i in np.flatnonzero(blank).tolist():
        reasons[i] = "timestamp is required"
    return out, reasons


def _arrow_times(texts: pa.Array) -> np.ndarray | None:
    """Arrow's own ISO 8601 reading (10x pandas'), when every text has a UTC offset and Arrow
    reads them all; None otherwise (then pandas reads them, and names the bad ones). Where
    Arrow reads a text it reads it as pandas does (tests compare them)."""
    try:
        return pc.cast(texts, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def in_time_range(ts_us: int) -> bool:
    """Whether an instant (epoch µs) is one an event may carry (MIN_TS_US ≤ t < MAX_TS_US)."""
    return MIN_TS_US <= ts_us < MAX_TS_US


def _clip(value: Any, width: int = 40) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- shared checks


def _matches(arr: pa.Array, pattern: str) -> pa.Array:
    """Regex match per row, evaluated once per distinct value (columns repeat a lot)."""
    encoded = pc.dictionary_encode(arr)
    hits = pc.fill_null(pc.match_substring_regex(encoded.dictionary, pattern), False)
    return pc.fill_null(pc.take(hits, encoded.indices), False)


def _strings(values: Sequence[Any] | pa.Array) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(values, type=pa.string())


Shredded = tuple[dict[Path_, pa.Array], frozenset[Path_], bool]


def _finish(
    names: Sequence[str] | pa.Array,
    customers: Sequence[str] | pa.Array,
    stamps: Sequence[Any] | pa.Array,
    keys_: Sequence[str] | pa.Array,
    props: Sequence[str | None] | pa.Array,
    lines: Sequence[int] | np.ndarray,
    early: dict[int, RowError],
    shredded: Shredded,
) -> ParsedEvents:
    """Vectorized checks of the columns; rows with an early (per-record) error are rejected.

    Event name, customer and key are kept exactly as sent (no trimming): `" c1"` is not
    customer `c1`, and an event name with a space is refused by its character rule."""
    name_a = _strings(names)
    cust_a = _strings(customers)
    key_a = _strings(keys_)
    prop_a = _strings(props)
    lines = np.asarray(lines, dtype=np.int64)
    n = len(name_a)
    name_ok = _matches(name_a, EVENT_NAME_RE.pattern).to_numpy(zero_copy_only=False)
    cust_len = pc.fill_null(pc.utf8_length(cust_a), 0).to_numpy(zero_copy_only=False)
    key_len = pc.fill_null(pc.utf8_length(key_a), 0).to_numpy(zero_copy_only=False)
    ts, ts_reason = parse_timestamps(_strings(stamps))
    has_nul = (
        pc.fill_null(pc.match_substring(cust_a, "\x00"), False).to_numpy(zero_copy_only=False)
        | pc.fill_null(pc.match_substring(key_a, "\x00"), False).to_numpy(zero_copy_only=False)
    )
    bad = ~name_ok | (cust_len < 1) | (cust_len > 255) | (key_len > 255) | has_nul
    bad[list(ts_reason)] = True
    if early:
        bad[list(early)] = True
    errors: list[RowError] = []
    for i in np.flatnonzero(bad).tolist():  # only bad rows are looked at one by one
        line = int(lines[i])
        if i in early:
            errors.append(early[i])
        elif not name_ok[i]:
            errors.append(RowError(line, "event_name", _event_name_reason(name_a[i].as_py())))
        elif cust_len[i] < 1:
            errors.append(RowError(line, "customer_id", "customer_id is required"))
        elif cust_len[i] > 255:
            errors.append(RowError(line, "customer_id", f"customer_id is {cust_len[i]} characters; at most 255"))
        elif has_nul[i]:
            which = "customer_id" if "\x00" in (cust_a[i].as_py() or "") else "idempotency_key"
            errors.append(RowError(line, which, f"{which} contains a NUL character"))
        elif i in ts_reason:
            errors.append(RowError(line, "timestamp", ts_reason[i]))
        else:
            errors.append(RowError(line, "idempotency_key", f"idempotency_key is {key_len[i]} characters; at most 255"))
    paths, null_paths, complete = shredded
    good = np.flatnonzero(~bad)
    if len(good) < n:
        take = pa.array(good)
        name_a, cust_a, key_a, prop_a = (a.take(take) for a in (name_a, cust_a, key_a, prop_a))
        ts, lines = ts[good], lines[good]
        key_len = key_len[good]
        paths = {p: c.take(take) for p, c in paths.items()}
        paths = {p: c for p, c in paths.items() if c.null_count < len(c) or p in null_paths}
    given = key_len > 0
    k1 = np.empty(len(ts), dtype=np.uint64)
    k2 = np.empty(len(ts), dtype=np.uint64)
    if (~given).any():  # content keys: the digest and the timestamp are the identity
        idx = np.flatnonzero(~given)
        sub = (lambda a: a) if len(idx) == len(ts) else (lambda a: a.take(pa.array(idx)))
        digest = keys.content_digest(pc.binary_join_element_wise(sub(name_a), sub(cust_a), sub(prop_a), "\x1f"))
        k1[idx], k2[idx] = keys.content_ids(ts[idx], digest)
        # Their text (h:…) is those two numbers: kept as null, written out when asked for.
        key_a = pc.if_else(pa.array(given), key_a, pa.scalar(None, pa.string()))
    if given.any():
        idx = np.flatnonzero(given)
        k1[idx], k2[idx] = keys.key_ids(key_a.take(pa.array(idx)) if len(idx) < len(ts) else key_a)
    batch = EventBatch(name_a, cust_a, ts, key_a, prop_a, k1, k2, paths, null_paths, complete, lines)
    return ParsedEvents(batch, errors)


def _event_name_reason(value: str | None) -> str:
    if not value:
        return "event_name is required"
    if len(value) > 100:
        return f"event_name is {len(value)} characters; at most 100"
    bad = sorted({ch for ch in value if not EVENT_NAME_RE.match(ch)})
    shown = ", ".join(repr(ch) for ch in bad[:5])
    return f"event_name '{_clip(value)}' has characters other than letters, digits and _ . : - ({shown})"


# --------------------------------------------------------------------------- CSV


def _csv_header(text: str) -> list[str]:
    try:
        header = next(csv.reader(io.StringIO(text[: 1 << 16], newline="")))
    except StopIteration:
        raise UnreadableFile("the file is empty: expected a header row") from None
    except csv.Error as exc:
        raise UnreadableFile(f"not a CSV file: {exc}") from None
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UnreadableFile(
            "missing required column" + ("s " if len(missing) > 1 else " ") + ", ".join(missing)
            + f" (found: {', '.join(header) or 'nothing'})"
        )
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise UnreadableFile(f"repeated column name(s) in the header: {', '.join(dupes)}")
    return header


def parse_csv(text: str) -> ParsedEvents:
    header, header_lines = _csv_header_lines(text)
    return _parse_csv_block(text.encode(), header, first_line=header_lines + 1, skip=header_lines)


def _parse_csv_block(
    data: bytes | memoryview, header: list[str], *, first_line: int, skip: int, breaks: int | None = None
) -> ParsedEvents:
    """Records of a block of CSV lines (the header's `skip` lines first, if it holds them);
    `first_line` is the file line of the block's first record line; `breaks` its line breaks,
    if counted already."""
    fast = _read_csv_arrow(data, header, skip=skip, breaks=breaks)
    if fast is not None:
        columns, n = fast
        lines = np.arange(first_line, first_line + n)
        early: dict[int, RowError] = {}
        # a row is blank only if its event name is: the other cells are looked at only then
        blank = pc.equal(pc.utf8_trim_whitespace(columns["event_name"]), "").to_numpy(zero_copy_only=False)
        if blank.any():
            for column in columns.values():
                blank &= pc.equal(pc.utf8_trim_whitespace(column), "").to_numpy(zero_copy_only=False)
        if blank.any():  # rows of blank cells only are not rows (as the Python reader says)
            keep = pa.array(np.flatnonzero(~blank))
            columns = {name: column.take(keep) for name, column in columns.items()}
            lines, n = lines[~blank], int(np.count_nonzero(~blank))
    else:
        columns, lines, early = _read_csv_python(str(data, "utf-8"), header, skip=skip, first_line=first_line)
        n = len(lines)
    props, shredded = _csv_properties(columns, header, lines, early, n)
    empty = pa.array([""] * n, type=pa.string()) if "idempotency_key" not in columns else columns["idempotency_key"]
    return _finish(columns["event_name"], columns["customer_id"], columns["timestamp"], empty, props, lines, early, shredded)


def _csv_header_lines(text: str) -> tuple[list[str], int]:
    """The header and how many physical lines it takes (a quoted name may span lines)."""
    header = _csv_header(text)
    reader = csv.reader(io.StringIO(text[: 1 << 16], newline=""))
    next(reader)
    return header, reader.line_num


def _read_csv_arrow(
    data: bytes | memoryview, header: list[str], *, skip: int = 1, breaks: int | None = None
) -> tuple[dict[str, pa.Array], int] | None:
    """The fast path (Arrow's multi-threaded reader), taken only when each line is one record:
    then line numbers simply count up. Otherwise (blank lines, values spanning lines, rows of
    the wrong width) the Python reader below numbers every record exactly."""
    if breaks is None:
        breaks = bytes(data).count(b"\n")
    lines = breaks + (0 if data[-1:] == b"\n" else 1)
    invalid: list[int] = []

    def on_invalid(row: Any) -> str:
        invalid.append(1)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),  # no copy of a block's view
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=skip, block_size=1 << 22),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    if invalid or table.num_rows != lines - skip:
        return None
    columns = {h: table[h].combine_chunks() for h in header}
    # A row of empty cells (",,,") is a blank line to the Python reader; Arrow gives it as a
    # row. Such a row has a blank event name (checked once per distinct name): let the Python
    # reader number the file then, so the layout never changes the result.
    if table.num_rows and pc.any(_matches(columns["event_name"], r"^\s*$")).as_py():
        return None
    return columns, table.num_rows


def _read_csv_python(
    text: str, header: list[str], *, skip: int = 1, first_line: int = 2
) -> tuple[dict[str, pa.Array], np.ndarray, dict[int, RowError]]:
    csv.field_size_limit(1 << 30)  # a long cell is a value, not a broken file
    reader = csv.reader(io.StringIO(text, newline=""))
    if skip:
        next(reader)
    offset = first_line - 1 - (reader.line_num if skip else 0)  # file line = offset + reader line
    width = len(header)
    rows: list[list[str]] = []
    lines: list[int] = []
    early: dict[int, RowError] = {}
    previous_end = reader.line_num
    try:
        for rec in reader:
            start, previous_end = offset + previous_end + 1, reader.line_num
            if not rec or not any(cell.strip() for cell in rec):
                continue  # blank lines (and rows of blank cells only) are not rows
            if len(rec) > width:
                early[len(rows)] = RowError(start, "row", f"row has {len(rec)} fields, the header has only {width}")
                rec = [""] * width
            elif len(rec) < width:
                rec = rec + [""] * (width - len(rec))  # trailing empty cells left off
            rows.append(rec)
            lines.append(start)
    except csv.Error as exc:
        raise UnreadableFile(f"not a CSV file: line {offset + reader.line_num}: {exc}") from None
    columns = list(zip(*rows)) if rows else [()] * width
    return {name: pa.array(list(columns[j]), type=pa.string()) for j, name in enumerate(header)}, np.asarray(lines, dtype=np.int64), early


def _csv_properties(
    col: dict[str, pa.Array], header: list[str], lines: np.ndarray, early: dict[int, RowError], n: int
) -> tuple[pa.Array, Shredded]:
    extra = sorted(h for h in header if h not in EVENT_FIELDS and h)
    if "properties" not in col:
        return _csv_columns(col, extra, n)
    # A properties column needs each cell parsed: the object is the base, other columns on top.
    cells = col["properties"].to_pylist()
    extras = {name: col[name].to_pylist() for name in extra}
    out: list[str | None] = []
    objects: list[dict[str, Any] | None] = []
    for i in range(n):
        cell = cells[i].strip()
        base: Any = {}
        if cell:
            try:
                base = loads_exact(cell)
            except ValueError as exc:
                early.setdefault(i, RowError(int(lines[i]), "properties", f"not valid JSON: {_clip(exc, 80)}"))
                out.append(None)
                objects.append(None)
                continue
            except RecursionError:
                early.setdefault(i, RowError(int(lines[i]), "properties", _TOO_DEEP))
                out.append(None)
                objects.append(None)
                continue
            if not isinstance(base, dict):
                early.setdefault(i, RowError(int(lines[i]), "properties", 'must be a JSON object such as {"model": "gpt-4o"}'))
                out.append(None)
                objects.append(None)
                continue
            if _too_deep(base):
                early.setdefault(i, RowError(int(lines[i]), "properties", _TOO_DEEP))
                out.append(None)
                objects.append(None)
                continue
        for name in extra:
            value = extras[name][i]
            if value != "":
                base[name] = _mark(value) if _JSON_NUMBER_FULL.match(value) else value
        out.append(canonical_json(base))
        objects.append(base)
    return pa.array(out, type=pa.string()), shred(objects)


def _csv_columns(col: dict[str, pa.Array], extra: list[str], n: int) -> tuple[pa.Array, Shredded]:
    """Canonical JSON objects from the extra columns, and the columns themselves as the
    shredded properties (each cell's text form is the cell: a number by its literal, the
    integer -0 as 0; an empty cell is a missing value), built column-wise.

    Cells repeat a lot (models, regions, amounts): each column is dictionary-encoded once and
    its JSON fragment (`"name":value`) is written per distinct value, then taken per row."""
    if not extra:
        return pa.array(["{}"] * n, type=pa.string()), ({}, frozenset(), True)
    fragments: list[pa.Array] = []
    paths: dict[Path_, pa.Array] = {}
    opened = closed = False  # whether the first fragment holds "{" (no comma to cut), the last "}"
    for i, name in enumerate(extra):
        encoded = pc.dictionary_encode(col[name])
        values: list[str] = encoded.dictionary.to_pylist()
        # Each present fragment starts with a comma (the leading one is cut below); an empty
        # cell is "" (Arrow's null-skipping join would drop rows, so no nulls here). When the
        # first column has no empty cell (the usual case), its fragments start the object
        # instead, which saves a pass over every row's text.
        key = "," + json.dumps(name, ensure_ascii=False) + ":"
        if len(values) > max(4096, n // 4):
            fragments.append(_vector_fragment(col[name], key))  # mostly distinct cells: no gain per value
        else:
            first = i == 0 and "" not in values
            head = "{" + key[1:] if first else key
            frags = ["" if v == "" else head + (v if _JSON_NUMBER_FULL.match(v) else json.dumps(v, ensure_ascii=False)) for v in values]
            if i == len(extra) - 1 and (first or opened):
                frags = [f + "}" for f in frags]
                closed = True
            opened = opened or first
            fragments.append(pa.array(frags, type=pa.string()).take(encoded.indices))
        texts = ["0" if v == "-0" else v for v in values]
        indices = encoded.indices
        if "" in values:
            # An empty cell is a missing value: a null index, and "" leaves the dictionary (a
            # null inside a dictionary cannot be written to Parquet).
            empty = values.index("")
            codes = indices.to_numpy(zero_copy_only=False)
            missing = codes == empty
            indices = pa.array(codes - (codes > empty), mask=missing, type=indices.type)
            del texts[empty]
        text = pa.DictionaryArray.from_arrays(indices, pa.array(texts, type=pa.string()))
        if text.null_count < n:
            paths[(name,)] = text
    joined = fragments[0] if len(fragments) == 1 else pc.binary_join_element_wise(*fragments, "")
    if opened:  # "{" is inside the first fragment already (and "}" in the last, usually)
        return (joined if closed else pc.binary_join_element_wise(joined, "}", "")), (paths, frozenset(), True)
    body = pc.utf8_slice_codeunits(joined, 1)
    return pc.binary_join_element_wise("{", body, "}", ""), (paths, frozenset(), True)


def _vector_fragment(cell: pa.Array, key: str) -> pa.Array:
    """`,"name":value` per cell, column-wise ("" for an empty cell)."""
    n = len(cell)
    numeric = _matches(cell, f"^{JSON_NUMBER}$")
    value = pc.if_else(numeric, cell, pc.binary_join_element_wise('"', cell, '"', ""))
    needs_escape = _matches(cell, r'["\\\x00-\x1f]')
    if pc.any(needs_escape).as_py():  # quotes, backslashes, control characters: rare
        idx = np.flatnonzero(needs_escape.to_numpy(zero_copy_only=False))
        escaped = [json.dumps(v, ensure_ascii=False) for v in cell.take(pa.array(idx)).to_pylist()]
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        value = pc.replace_with_mask(value, pa.array(mask), pa.array(escaped, type=pa.string()))
    return pc.if_else(pc.equal(cell, ""), "", pc.binary_join_element_wise(key, value, ""))


MAX_NESTING = 64  # deeper objects/arrays are refused at intake (no reader needs to recurse further)
_TOO_DEEP = f"properties nest objects or arrays more than {MAX_NESTING} levels deep"


def _too_deep(value: Any) -> bool:
    """True when the value nests more than MAX_NESTING levels (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))
    return False


_JSON_NUMBER_FULL = re.compile(rf"^{JSON_NUMBER}$")


# --------------------------------------------------------------------------- JSON / JSON Lines


def parse_records(records: Iterable[tuple[int, Any]]) -> ParsedEvents:
    """Validate event objects (already parsed with loads_exact, or plain Python values)."""
    names: list[str] = []
    customers: list[str] = []
    stamps: list[str] = []
    keys: list[str] = []
    props: list[str | None] = []
    objects: list[dict[str, Any] | None] = []
    lines: list[int] = []
    early: dict[int, RowError] = {}
    for i, (line, obj) in enumerate(records):
        lines.append(line)
        problem = None
        exact: dict[str, Any] | None = None
        try:
            obj = _plain(obj) if not _already_exact(obj) else obj
            name, cust, stamp, key, prop, exact = _record_fields(obj)
        except _BadField as bad:
            problem = RowError(line, bad.field, bad.reason)
            name = cust = stamp = key = ""
            prop = None
        except ValueError as exc:
            problem = RowError(line, "properties", str(exc))
            name = cust = stamp = key = ""
            prop = None
        except RecursionError:
            problem = RowError(line, "properties", _TOO_DEEP)
            name = cust = stamp = key = ""
            prop = None
        if problem is not None:
            early[i] = problem
        names.append(name)
        customers.append(cust)
        stamps.append(stamp)
        keys.append(key)
        props.append(prop)
        objects.append(exact)
    return _finish(names, customers, stamps, keys, props, lines, early, shred(objects))


def _already_exact(obj: Any) -> bool:
    # loads_exact output never holds int/float leaves at the top level.
    return isinstance(obj, dict) and not any(
        isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in obj.values()
    ) and not any(isinstance(v, dict) and _has_python_numbers(v) for v in obj.values())


def _has_python_numbers(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_python_numbers(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_python_numbers(v) for v in value)
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


class _BadField(Exception):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


def _record_fields(obj: Any) -> tuple[str, str, str, str, str, dict[str, Any]]:
    if not isinstance(obj, dict):
        raise _BadField("event", "each event must be a JSON object")
    unknown = sorted(set(obj) - set(EVENT_FIELDS))
    if unknown:
        raise _BadField(
            unknown[0], f"unknown field '{_clip(unknown[0])}': put custom values under properties"
        )
    for name in ("event_name", "customer_id"):
        value = obj.get(name)
        if value is None or value == "":
            raise _BadField(name, f"{name} is required")
        if not isinstance(value, str) or is_number(value):
            raise _BadField(name, f"{name} must be a string")
    stamp = obj.get("timestamp")
    if stamp is None or stamp == "":
        raise _BadField("timestamp", "timestamp is required")
    if isinstance(stamp, bool) or not isinstance(stamp, str):
        raise _BadField("timestamp", "timestamp must be ISO 8601 text or Unix epoch seconds")
    if is_number(stamp):
        stamp = number_text(stamp)
    elif parse_decimal(stamp) is not None:
        raise _BadField("timestamp", "epoch seconds must be a JSON number, not text")
    key = obj.get("idempotency_key")
    if key is None:
        key = ""
    elif not isinstance(key, str) or is_number(key):
        raise _BadField("idempotency_key", "idempotency_key must be a string")
    prop = obj.get("properties")
    if prop is None:
        prop = {}
    if not isinstance(prop, dict):
        raise _BadField("properties", "properties must be a JSON object")
    if _too_deep(prop):
        raise _BadField("properties", _TOO_DEEP)
    fields = (obj["event_name"], obj["customer_id"], stamp.strip(), key, canonical_json(prop))
    for name, value in zip(("event_name", "customer_id", "timestamp", "idempotency_key", "properties"), fields):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a JSON escape such as "\ud800": valid syntax, not text
            raise _BadField(name, "contains an invalid \\u escape (a lone UTF-16 surrogate)") from None
    return (*fields, prop)


def _parse_objects(records: list[tuple[int, Any]]) -> ParsedEvents:
    """parse_records, after mapping the CloudEvents among the objects (those with
    `specversion`) to events; their errors are reported in CloudEvents words (subject, time…)."""
    records, unmapped, ce_lines = cloudevents.map_records(records)
    parsed = parse_records(records)
    if ce_lines or unmapped:
        renamed = [RowError(e.line, *cloudevents.rename(e.field, e.reason)) if e.line in ce_lines else e
                   for e in parsed.errors]
        parsed.errors = sorted(renamed + [RowError(*u) for u in unmapped], key=lambda e: e.line)
    return parsed


def parse_jsonl(text: str, *, first_line: int = 1, whole: bool = True) -> ParsedEvents:
    """JSON Lines; `first_line` numbers the text's first line. With `whole` (the text is the
    whole file), a text without one readable line is an unreadable file."""
    records: list[tuple[int, Any]] = []
    bad: list[RowError] = []
    # Split on \n only: U+2028, U+2029 and U+0085 are legal inside JSON strings.
    for line_no, line in enumerate(text.split("\n"), start=first_line):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            records.append((line_no, loads_exact(line)))
        except ValueError as exc:
            bad.append(RowError(line_no, "event", f"not valid JSON: {_clip(exc, 80)}"))
        except RecursionError:
            bad.append(RowError(line_no, "properties", _TOO_DEEP))
    if whole and records == [] and bad and len(bad) == sum(1 for ln in text.split("\n") if ln.strip()):
        raise UnreadableFile(f"not JSON Lines: line {bad[0].line}: {bad[0].reason}")
    parsed = _parse_objects(records)
    parsed.errors = sorted(parsed.errors + bad, key=lambda e: e.line)
    return parsed


def parse_json_array(text: str) -> ParsedEvents:
    if not text.strip():  # no document at all, not an empty list of events
        raise UnreadableFile("the file is empty: a JSON file must hold an array of event objects ([] for none)")
    try:
        data = loads_exact(text)
    except ValueError as exc:
        raise UnreadableFile(f"not valid JSON: {_clip(exc, 120)}") from None
    except RecursionError:  # some element nests too deeply: read the elements one by one
        return _parse_json_elements(text)
    start = len(text) - len(text.lstrip())  # where the document's value begins
    if _is_workspace(data):
        raise UnreadableFile(
            "this is a workspace file (metrics, plans, subscriptions), not events: import it on the Workspace "
            "page or with `metering workspace import`"
        )
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        data = data["events"]
        found = _EVENTS_ARRAY.search(text)
        start = found.end() - 1 if found else start
    elif isinstance(data, dict):  # a single event object
        return _parse_objects([(1 + text.count("\n", 0, start), data)])
    if not isinstance(data, list):
        raise UnreadableFile("a JSON file must hold an array of event objects")
    return _parse_objects(list(zip(_element_lines(text, start, len(data)), data)))


_WORKSPACE_KEYS = frozenset({"timezone", "metrics", "plans", "subscriptions"})


def _is_workspace(data: Any) -> bool:
    """A workspace document (contract §5) given where events belong: an object with workspace
    keys and none of an event's own fields."""
    return isinstance(data, dict) and bool(data) and set(data) <= _WORKSPACE_KEYS and not set(data) & set(EVENT_FIELDS)


_EVENTS_ARRAY = re.compile(r'^\s*\{.*?"events"\s*:\s*\[', re.DOTALL)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')


def _parse_json_elements(text: str) -> ParsedEvents:
    """A JSON array (or {"events": [...]}) whose elements are read one at a time, so that an
    element nesting too deeply is that element's error, not the file's (a scan of the
    document's brackets and strings finds where each element starts and ends)."""
    found = _EVENTS_ARRAY.search(text)
    start = found.end() - 1 if found else len(text) - len(text.lstrip())
    if not text.startswith("[", start):
        raise UnreadableFile("a JSON file must hold an array of event objects")
    depth, begin = 0, start + 1
    records: list[tuple[int, Any]] = []
    bad: list[RowError] = []
    for match in _TOKEN.finditer(text, start):
        token = match.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            depth -= 1
        if (token == "," and depth == 1) or depth == 0:
            element = text[begin:match.start()]
            if element.strip():
                line = 1 + text.count("\n", 0, begin + len(element) - len(element.lstrip()))
                try:
                    records.append((line, loads_exact(element)))
                except RecursionError:
                    bad.append(RowError(line, "properties", _TOO_DEEP))
                except ValueError as exc:
                    raise UnreadableFile(f"not valid JSON: line {line}: {_clip(exc, 120)}") from None
            begin = match.end()
            if depth == 0:
                break
    parsed = _parse_objects(records)
    parsed.errors = sorted(parsed.errors + bad, key=lambda e: e.line)
    return parsed


def _element_lines(text: str, start: int, count: int) -> list[int]:
    """The line on which each element of the array opening at text[start] starts."""
    decoder = json.JSONDecoder(parse_float=str, parse_int=str)
    lines: list[int] = []
    pos = start + 1
    line, last = 1 + text.count("\n", 0, pos), pos
    while len(lines) < count:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        line += text.count("\n", last, pos)
        lines.append(line)
        _, end = decoder.raw_decode(text, pos)
        line += text.count("\n", pos, end)
        last = pos = end
    return lines


# --------------------------------------------------------------------------- files


# A file is read and stored this much at a time: memory stays bounded whatever the file's size
# (METERING_IMPORT_BLOCK_MB changes it: smaller uses less memory, larger makes fewer segments).
CHUNK_BYTES = int(float(os.environ.get("METERING_IMPORT_BLOCK_MB", "32")) * (1 << 20))


def read_events(source: str | Path | bytes, *, name: str | None = None) -> ParsedEvents:
    """Parse a whole file (path or bytes) by its name's extension, else by its first character."""
    parsed = ParsedEvents()
    for chunk in iter_events(source, name=name):
        parsed.extend(chunk)
    return parsed


def iter_events(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    chunk_bytes: int | None = None,
    prepare: Callable[[EventBatch], None] | None = None,
) -> Iterator[ParsedEvents]:
    """A file's events a block at a time (CSV and JSON Lines stream; a JSON document is read
    whole). Raises UnreadableFile before the first block when the file cannot be read at all,
    so a caller that stores blocks as they come stores nothing from such a file. `prepare`
    (the events writer's, see store.block_preparer) runs on each CSV block on its parsing
    thread."""
    label = name or (str(source) if not isinstance(source, bytes) else "upload")
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    opened = _open(source, label)
    with opened as stream:
        head = _check_text(stream, label)  # the whole file is valid UTF-8 without NUL bytes
        suffix = Path(label).suffix.lower()
        stripped = head.lstrip()
        if suffix in (".jsonl", ".ndjson") or (suffix not in (".csv", ".txt", ".json") and stripped.startswith("{")):
            yield from _jsonl_blocks(stream, chunk_bytes)
            return
        if suffix == ".json" or (suffix not in (".csv", ".txt") and stripped.startswith("[")):
            parsed = parse_json_array(_read_all(stream))
            parsed.position = stream.tell()
            yield parsed
            return
        if not stripped:
            raise UnreadableFile(f"{label} is empty")
        yield from _csv_blocks(stream, head, chunk_bytes, prepare)


def _open(source: str | Path | bytes, label: str) -> IO[bytes]:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    try:
        return open(source, "rb")  # noqa: SIM115 - closed by iter_events
    except OSError as exc:
        raise UnreadableFile(f"cannot read {label}: {exc.strerror or exc}") from None


_BOM = b"\xef\xbb\xbf"


def _check_text(stream: IO[bytes], label: str) -> str:
    """Read the stream once to check it is UTF-8 text without NUL bytes; return its first 64 KiB
    as text and leave the stream at the first byte after a BOM."""
    offset = 0
    carry = b""
    head = b""
    while True:
        block = stream.read(16 << 20)
        if not block:
            break
        if not head:
            head = block[: 1 << 16]
        data = carry + block
        cut = _utf8_boundary(data)
        try:
            data[:cut].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"{label} is not UTF-8 text (byte {offset - len(carry) + exc.start})") from None
        if b"\x00" in block:
            raise UnreadableFile(f"{label} is not a text file (it contains NUL bytes)")
        carry = data[cut:]
        offset += len(block)
    if carry:
        try:
            carry.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"{label} is not UTF-8 text (byte {offset - len(carry) + exc.start})") from None
    bom = head.startswith(_BOM)
    stream.seek(len(_BOM) if bom else 0)
    head = head[len(_BOM):] if bom else head
    return head[: _utf8_boundary(head)].decode("utf-8")


def _utf8_boundary(data: bytes) -> int:
    """The length of `data` without a UTF-8 sequence cut off at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data) if back == 1 else len(data) - back + 1
        if byte >= 0xC0:  # a lead byte: complete if its sequence fits
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)


def _read_all(stream: IO[bytes]) -> str:
    return stream.read().decode("utf-8")


def _line_blocks(stream: IO[bytes], chunk_bytes: int, *, csv_quotes: bool) -> Iterator[tuple[memoryview, int, int, int]]:
    """Blocks of whole lines with the number of the block's first line, the file position
    after the block and the block's line breaks. For CSV a block ends only where the quotes
    are balanced (a quoted value may hold line breaks). Each block is read into a buffer of
    its own and handed on as a view of it (the part of a line cut off at its end starts the
    next buffer): the file's bytes are copied once, not three times."""
    line = 1
    carry = b""
    position = stream.tell()
    while True:
        buf = bytearray(len(carry) + chunk_bytes)
        buf[: len(carry)] = carry
        got = _read_into(stream, memoryview(buf)[len(carry):])
        size = len(carry) + got
        if not got:
            if size:
                yield memoryview(buf)[:size], line, position + size, buf.count(b"\n", 0, size)
            return
        cut = _block_end(buf, size, csv_quotes)
        if cut <= 0:
            carry = bytes(buf[:size])
            continue
        carry = bytes(buf[cut:size])
        position += cut
        breaks = buf.count(b"\n", 0, cut)
        yield memoryview(buf)[:cut], line, position, breaks
        line += breaks


def _read_into(stream: IO[bytes], view: memoryview) -> int:
    """Fill `view` from the stream as far as it goes; the bytes read."""
    done = 0
    while done < len(view):
        got = stream.readinto(view[done:])  # type: ignore[attr-defined]
        if not got:
            break
        done += got
    return done


def _block_end(data: bytearray, size: int, csv_quotes: bool) -> int:
    cut = data.rfind(b"\n", 0, size) + 1
    if not csv_quotes or cut == 0 or data.count(b'"', 0, cut) % 2 == 0:
        return cut
    # Odd quotes before the last line break: end at the last break outside quotes.
    arr = np.frombuffer(data, dtype=np.uint8, count=size)
    inside = np.bitwise_xor.accumulate(arr == 34, dtype=np.uint8)
    breaks = np.flatnonzero((arr == 10) & (inside == 0))
    return int(breaks[-1]) + 1 if len(breaks) else 0


PARSE_THREADS = 2  # CSV blocks parsed at once (Arrow's kernels run without the GIL)


def _csv_blocks(
    stream: IO[bytes], head: str, chunk_bytes: int, prepare: Callable[[EventBatch], None] | None = None
) -> Iterator[ParsedEvents]:
    """Parsed blocks in file order; the next blocks are parsed on other threads while the
    caller stores this one (at most PARSE_THREADS blocks ahead, so memory stays bounded)."""
    header, header_lines = _csv_header_lines(head)

    def parse(data: memoryview, line: int, position: int, breaks: int, first: bool) -> ParsedEvents:
        skip = header_lines if first else 0
        parsed = _parse_csv_block(data, header, first_line=line + skip, skip=skip, breaks=breaks)
        parsed.position = position
        if prepare is not None:
            prepare(parsed.batch)
        return parsed

    with ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="metering-parse") as pool:
        ahead: deque[Future[ParsedEvents]] = deque()
        try:
            for i, (data, line, position, breaks) in enumerate(_line_blocks(stream, chunk_bytes, csv_quotes=True)):
                ahead.append(pool.submit(parse, data, line, position, breaks, i == 0))
                if len(ahead) >= PARSE_THREADS:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()
        finally:
            for future in ahead:
                future.cancel()


def _jsonl_blocks(stream: IO[bytes], chunk_bytes: int) -> Iterator[ParsedEvents]:
    first = True
    for data, line, position, _ in _line_blocks(stream, chunk_bytes, csv_quotes=False):
        parsed = parse_jsonl(str(data, "utf-8"), first_line=line, whole=first and len(data) < chunk_bytes)
        parsed.position = position
        yield parsed
        first = False


def store_parsed(engine: Engine, parsed: ParsedEvents, *, source: str) -> ImportResult:
    """Store events already read as one import (one batch: whole or not at all)."""
    return store_blocks(engine, [parsed], source=source)


def store_blocks(
    engine: Engine,
    blocks: Iterable[ParsedEvents],
    *,
    source: str,
    on_block: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Store blocks of events as one import, each block one batch (a crash keeps whole blocks).

    The import record is created when the first block is ready (an unreadable file stores
    nothing, not even a record) and finished with the counts at the end; `on_block(events
    read, bytes of the file read)` hears about each block."""
    import_id: int | None = None
    added = read = future = 0
    errors: list[RowError] = []
    now_us = int(datetime.now(timezone.utc).timestamp() * 1_000_000)
    for parsed in blocks:
        if import_id is None:
            import_id = store.new_import(engine, source)
        # The import's counts change in the same transaction as its events: right after a crash.
        stored = store.events(engine).store(
            parsed.batch, import_id=import_id, rejected=len(parsed.errors), future_after_us=now_us
        )
        added += stored.added
        future += stored.future
        read += len(parsed)
        errors.extend(parsed.errors)
        if on_block is not None:
            on_block(read, parsed.position)
    if import_id is None:
        import_id = store.new_import(engine, source)
    store.finish_import(engine, import_id)
    return ImportResult(
        accepted=added, duplicates=read - added, rejected=len(errors),
        errors=sorted(errors, key=lambda e: e.line), import_id=import_id, future=future,
    )


def import_file(engine: Engine, source: str | Path | bytes, *, name: str | None = None) -> ImportResult:
    """Read and store one file a block at a time; raises UnreadableFile (storing nothing) if it
    cannot be read at all."""
    label = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    return store_blocks(engine, iter_events(source, name=name, prepare=store.block_preparer(engine)), source=label)
