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
import io
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy.engine import Engine

from metering import store
from metering.models import EVENT_NAME_RE
from metering.peers import cloudevents
from metering.values import JSON_NUMBER, NUMERIC_TEXT, parse_decimal

REQUIRED = ("event_name", "customer_id", "timestamp")
EVENT_FIELDS = (*REQUIRED, "idempotency_key", "properties")
MAX_EPOCH_S = 253_402_300_800  # 10000-01-01: beyond that a number is not a timestamp
_TS_OFFSET = 1 << 62  # keeps pre-1970 timestamps positive in keys

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


@dataclass
class ParsedEvents:
    """Valid events as parallel columns, plus one error per rejected row."""

    event_name: list[str] = field(default_factory=list)
    customer_id: list[str] = field(default_factory=list)
    ts_us: list[int] = field(default_factory=list)
    idempotency_key: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.event_name)

    def rows(self) -> list[store.EventRow]:
        return list(zip(self.event_name, self.customer_id, self.ts_us, self.idempotency_key, self.properties))

    def extend(self, other: ParsedEvents) -> None:
        for name in ("event_name", "customer_id", "ts_us", "idempotency_key", "properties", "lines", "errors"):
            getattr(self, name).extend(getattr(other, name))


@dataclass
class ImportResult:
    accepted: int
    duplicates: int
    rejected: int
    errors: list[RowError]
    import_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": [e.to_json() for e in self.errors],
        }


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

    Vectorized, and time-ordered so that the unique index grows at its end during a bulk import.
    """
    n = len(ts_us)
    if n == 0:
        return pa.array([], type=pa.string())
    content = pc.binary_join_element_wise(names, customers, properties, "\x1f")
    digest = pd.util.hash_array(content.to_numpy(zero_copy_only=False), categorize=False)
    both = np.empty((n, 2), dtype=">u8")
    both[:, 0] = ts_us.astype(np.int64) + _TS_OFFSET
    both[:, 1] = digest
    hexed = np.frombuffer(both.tobytes().hex().encode(), dtype="S32")
    return pc.binary_join_element_wise("h:", pa.array(hexed, type=pa.binary()).cast(pa.string()), "")


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
        parsed = pd.to_datetime(texts.to_pandas(), utc=True, format="ISO8601", errors="coerce")
        ok = parsed.notna().to_numpy()
        out[idx[ok]] = parsed[ok].dt.as_unit("us").astype("int64").to_numpy()
        for i in idx[~ok].tolist():
            reasons[i] = f"'{_clip(arr[i].as_py())}' is not an ISO 8601 time or Unix epoch seconds"
    for i in np.flatnonzero(numeric).tolist():  # epoch numbers: exact via Decimal, one by one (rare)
        seconds = parse_decimal(arr[i].as_py())
        if seconds is None or not (-MAX_EPOCH_S < seconds < MAX_EPOCH_S):
            reasons[i] = f"epoch seconds {_clip(arr[i].as_py())} out of range"
        else:
            out[i] = int((seconds * 1_000_000).to_integral_value(rounding="ROUND_FLOOR"))
    for i in np.flatnonzero(blank).tolist():
        reasons[i] = "timestamp is required"
    return out, reasons


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


def _finish(
    names: Sequence[str] | pa.Array,
    customers: Sequence[str] | pa.Array,
    stamps: Sequence[Any] | pa.Array,
    keys: Sequence[str] | pa.Array,
    props: Sequence[str | None] | pa.Array,
    lines: Sequence[int] | np.ndarray,
    early: dict[int, RowError],
) -> ParsedEvents:
    """Vectorized checks of the columns; rows with an early (per-record) error are rejected."""
    name_a = pc.utf8_trim_whitespace(_strings(names))
    cust_a = pc.utf8_trim_whitespace(_strings(customers))
    key_a = pc.utf8_trim_whitespace(_strings(keys))
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
    good = np.flatnonzero(~bad)
    if len(good) < n:
        take = pa.array(good)
        name_a, cust_a, key_a, prop_a = (a.take(take) for a in (name_a, cust_a, key_a, prop_a))
        ts, lines = ts[good], lines[good]
        key_len = key_len[good]
    computed = content_keys(name_a, cust_a, ts, prop_a)
    key_a = pc.if_else(pa.array(key_len > 0), key_a, computed)
    return ParsedEvents(
        event_name=name_a.to_pylist(),
        customer_id=cust_a.to_pylist(),
        ts_us=ts.tolist(),
        idempotency_key=key_a.to_pylist(),
        properties=prop_a.to_pylist(),
        lines=lines.tolist(),
        errors=errors,
    )


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
    header = _csv_header(text)
    fast = _read_csv_arrow(text, header)
    if fast is not None:
        columns, n = fast
        lines = np.arange(2, n + 2)
        early: dict[int, RowError] = {}
    else:
        columns, lines, early = _read_csv_python(text, header)
        n = len(lines)
    props = _csv_properties(columns, header, lines, early, n)
    empty = pa.array([""] * n, type=pa.string()) if "idempotency_key" not in columns else columns["idempotency_key"]
    return _finish(columns["event_name"], columns["customer_id"], columns["timestamp"], empty, props, lines, early)


def _read_csv_arrow(text: str, header: list[str]) -> tuple[dict[str, pa.Array], int] | None:
    """The fast path (Arrow's multi-threaded reader), taken only when each line is one record:
    then line numbers are simply row + 2. Otherwise (blank lines, values spanning lines, rows of
    the wrong width) the Python reader below numbers every record exactly."""
    data = text.encode()
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    invalid: list[int] = []

    def on_invalid(row: Any) -> str:
        invalid.append(1)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=1 << 22),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    if invalid or table.num_rows != lines - 1:
        return None
    return {h: table[h].combine_chunks() for h in header}, table.num_rows


def _read_csv_python(text: str, header: list[str]) -> tuple[dict[str, pa.Array], np.ndarray, dict[int, RowError]]:
    csv.field_size_limit(1 << 30)  # a long cell is a value, not a broken file
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    width = len(header)
    rows: list[list[str]] = []
    lines: list[int] = []
    early: dict[int, RowError] = {}
    previous_end = reader.line_num
    try:
        for rec in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not rec or not any(cell.strip() for cell in rec):
                continue  # blank lines are not rows
            if len(rec) > width:
                early[len(rows)] = RowError(start, "row", f"row has {len(rec)} fields, the header has only {width}")
                rec = [""] * width
            elif len(rec) < width:
                rec = rec + [""] * (width - len(rec))  # trailing empty cells left off
            rows.append(rec)
            lines.append(start)
    except csv.Error as exc:
        raise UnreadableFile(f"not a CSV file: line {reader.line_num}: {exc}") from None
    columns = list(zip(*rows)) if rows else [()] * width
    return {name: pa.array(list(columns[j]), type=pa.string()) for j, name in enumerate(header)}, np.asarray(lines, dtype=np.int64), early


def _csv_properties(
    col: dict[str, pa.Array], header: list[str], lines: np.ndarray, early: dict[int, RowError], n: int
) -> pa.Array:
    extra = sorted(h for h in header if h not in EVENT_FIELDS and h)
    if "properties" not in col:
        return _vector_properties(col, extra, n)
    # A properties column needs each cell parsed: the object is the base, other columns on top.
    cells = col["properties"].to_pylist()
    extras = {name: col[name].to_pylist() for name in extra}
    out: list[str | None] = []
    for i in range(n):
        cell = cells[i].strip()
        base: Any = {}
        if cell:
            try:
                base = loads_exact(cell)
            except ValueError as exc:
                early.setdefault(i, RowError(int(lines[i]), "properties", f"not valid JSON: {_clip(exc, 80)}"))
                out.append(None)
                continue
            if not isinstance(base, dict):
                early.setdefault(i, RowError(int(lines[i]), "properties", 'must be a JSON object such as {"model": "gpt-4o"}'))
                out.append(None)
                continue
        for name in extra:
            value = extras[name][i]
            if value != "":
                base[name] = _mark(value) if _JSON_NUMBER_FULL.match(value) else value
        out.append(canonical_json(base))
    return pa.array(out, type=pa.string())


_JSON_NUMBER_FULL = re.compile(rf"^{JSON_NUMBER}$")


def _vector_properties(col: dict[str, pa.Array], extra: list[str], n: int) -> pa.Array:
    """Canonical JSON objects from the extra columns, built column-wise (no per-row loop)."""
    if not extra:
        return pa.array(["{}"] * n, type=pa.string())
    fragments = []
    for name in extra:
        cell = col[name]
        numeric = _matches(cell, f"^{JSON_NUMBER}$")
        value = pc.if_else(numeric, cell, pc.binary_join_element_wise('"', cell, '"', ""))
        needs_escape = _matches(cell, r'["\\\x00-\x1f]')
        if pc.any(needs_escape).as_py():  # quotes, backslashes, control characters: rare
            idx = np.flatnonzero(needs_escape.to_numpy(zero_copy_only=False))
            escaped = [json.dumps(v, ensure_ascii=False) for v in cell.take(pa.array(idx)).to_pylist()]
            mask = np.zeros(n, dtype=bool)
            mask[idx] = True
            value = pc.replace_with_mask(value, pa.array(mask), pa.array(escaped, type=pa.string()))
        key = "," + json.dumps(name, ensure_ascii=False) + ":"
        # An empty cell is left out. Each present fragment starts with a comma; the leading
        # one is cut below. (Arrow's null-skipping join drops all-null rows, so no nulls here.)
        fragments.append(pc.if_else(pc.equal(cell, ""), "", pc.binary_join_element_wise(key, value, "")))
    body = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*fragments, ""), 1)
    return pc.binary_join_element_wise("{", body, "}", "")


# --------------------------------------------------------------------------- JSON / JSON Lines


def parse_records(records: Iterable[tuple[int, Any]]) -> ParsedEvents:
    """Validate event objects (already parsed with loads_exact, or plain Python values)."""
    names: list[str] = []
    customers: list[str] = []
    stamps: list[str] = []
    keys: list[str] = []
    props: list[str | None] = []
    lines: list[int] = []
    early: dict[int, RowError] = {}
    for i, (line, obj) in enumerate(records):
        lines.append(line)
        problem = None
        try:
            obj = _plain(obj) if not _already_exact(obj) else obj
            name, cust, stamp, key, prop = _record_fields(obj)
        except _BadField as bad:
            problem = RowError(line, bad.field, bad.reason)
            name = cust = stamp = key = ""
            prop = None
        except ValueError as exc:
            problem = RowError(line, "properties", str(exc))
            name = cust = stamp = key = ""
            prop = None
        if problem is not None:
            early[i] = problem
        names.append(name)
        customers.append(cust)
        stamps.append(stamp)
        keys.append(key)
        props.append(prop)
    return _finish(names, customers, stamps, keys, props, lines, early)


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


def _record_fields(obj: Any) -> tuple[str, str, str, str, str]:
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
    fields = (obj["event_name"].strip(), obj["customer_id"].strip(), stamp.strip(), key.strip(), canonical_json(prop))
    for name, value in zip(("event_name", "customer_id", "timestamp", "idempotency_key", "properties"), fields):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a JSON escape such as "\ud800": valid syntax, not text
            raise _BadField(name, "contains an invalid \\u escape (a lone UTF-16 surrogate)") from None
    return fields


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


def parse_jsonl(text: str) -> ParsedEvents:
    records: list[tuple[int, Any]] = []
    bad: list[RowError] = []
    # Split on \n only: U+2028, U+2029 and U+0085 are legal inside JSON strings.
    for line_no, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            records.append((line_no, loads_exact(line)))
        except ValueError as exc:
            bad.append(RowError(line_no, "event", f"not valid JSON: {_clip(exc, 80)}"))
    if records == [] and bad and len(bad) == sum(1 for ln in text.split("\n") if ln.strip()):
        raise UnreadableFile(f"not JSON Lines: line {bad[0].line}: {bad[0].reason}")
    parsed = _parse_objects(records)
    parsed.errors = sorted(parsed.errors + bad, key=lambda e: e.line)
    return parsed


def parse_json_array(text: str) -> ParsedEvents:
    try:
        data = loads_exact(text)
    except ValueError as exc:
        raise UnreadableFile(f"not valid JSON: {_clip(exc, 120)}") from None
    start = len(text) - len(text.lstrip())  # where the document's value begins
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        data = data["events"]
        found = _EVENTS_ARRAY.search(text)
        start = found.end() - 1 if found else start
    elif isinstance(data, dict):  # a single event object
        return _parse_objects([(1 + text.count("\n", 0, start), data)])
    if not isinstance(data, list):
        raise UnreadableFile("a JSON file must hold an array of event objects")
    return _parse_objects(list(zip(_element_lines(text, start, len(data)), data)))


_EVENTS_ARRAY = re.compile(r'^\s*\{.*?"events"\s*:\s*\[', re.DOTALL)


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


def read_events(source: str | Path | bytes, *, name: str | None = None) -> ParsedEvents:
    """Parse a file (path or bytes) by its name's extension, else by its first character."""
    label = name or (str(source) if not isinstance(source, bytes) else "upload")
    if isinstance(source, bytes):
        data = source
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise UnreadableFile(f"cannot read {label}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{label} is not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise UnreadableFile(f"{label} is not a text file (it contains NUL bytes)")
    suffix = Path(label).suffix.lower()
    stripped = text.lstrip()
    if suffix in (".jsonl", ".ndjson"):
        return parse_jsonl(text)
    if suffix == ".json" or (suffix not in (".csv", ".txt") and stripped.startswith("[")):
        return parse_json_array(text)
    if suffix not in (".csv", ".txt") and stripped.startswith("{"):
        return parse_jsonl(text)
    if not stripped:
        raise UnreadableFile(f"{label} is empty")
    return parse_csv(text)


def store_parsed(engine: Engine, parsed: ParsedEvents, *, source: str) -> ImportResult:
    import_id = store.new_import(engine, source)
    added = store.insert_events(engine, parsed.rows(), import_id=import_id)
    result = ImportResult(
        accepted=added,
        duplicates=len(parsed) - added,
        rejected=len(parsed.errors),
        errors=sorted(parsed.errors, key=lambda e: e.line),
        import_id=import_id,
    )
    store.finish_import(engine, import_id, accepted=result.accepted, duplicates=result.duplicates, rejected=result.rejected)
    return result


def import_file(engine: Engine, source: str | Path | bytes, *, name: str | None = None) -> ImportResult:
    """Read and store one file; raises UnreadableFile (storing nothing) if it cannot be read."""
    parsed = read_events(source, name=name)
    label = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    return store_parsed(engine, parsed, source=label)
