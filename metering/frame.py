"""The columnar, in-memory view of events that every preview and invoice reads.

Loaded once from the store (or from files), then reused: new events are appended without a
reload. Properties are parsed in one bulk call; a property path becomes columns on first use
and is cached: category codes for its text form (filters, unique_count, group_by) and an exact
decimal256 column for its numeric value (sum, max, min, latest), with a status per event that
says why a value was skipped. Aggregation then runs on these columns only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Engine

from metering import ingest, store
from metering.values import EXACT, SCALE, in_range, lookup, parse_decimal

DECIMAL = pa.decimal256(76, SCALE)

# Status of a path's value per event.
OK, MISSING, NOT_NUMBER, OUT_OF_RANGE = 0, 1, 2, 3
_FAST_NUMBER = rf"^[+-]?[0-9]{{1,40}}(\.[0-9]{{0,{SCALE}}})?$"
_LOOSE_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_ABSENT = object()
_QUANTUM = Decimal(1).scaleb(-SCALE)
_NONE = type(None)
# Non-integer numbers come back as their literal text and integers as exact ints, so no
# value ever passes through a binary float.
_DECODER = msgspec.json.Decoder(float_hook=str)

Row = tuple[int, str, str, int, str]  # id, event_name, customer_id, ts_us, properties


def to_us(value: datetime | int | None) -> int | None:
    """An aware datetime (naive = UTC) or epoch microseconds → epoch microseconds."""
    if value is None or isinstance(value, (int, np.integer)):
        return None if value is None else int(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + pd.Timedelta(microseconds=int(value)).to_pytimedelta()


@dataclass
class Categories:
    """Text values as int32 codes into `values` (-1 = missing), like pandas.Categorical."""

    codes: np.ndarray
    values: list[str]

    @classmethod
    def build(cls, items: Sequence[Any]) -> Categories:
        return cls.from_arrow(pa.array(items, type=pa.string()))

    @classmethod
    def from_arrow(cls, text: pa.Array) -> Categories:
        encoded = pc.dictionary_encode(text)
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
        return cls(codes, encoded.dictionary.to_pylist())

    def extend(self, other: Categories) -> Categories:
        """These codes followed by `other`'s, over the union of both value lists."""
        index = pd.Index(self.values, dtype=object)
        mapping = index.get_indexer(pd.Index(other.values, dtype=object)).astype(np.int32)
        values = list(self.values)
        for j in np.flatnonzero(mapping < 0):
            mapping[j] = len(values)
            values.append(other.values[j])
        codes = np.where(other.codes >= 0, mapping[np.maximum(other.codes, 0)] if len(mapping) else -1, -1)
        return Categories(np.concatenate([self.codes, codes.astype(np.int32)]), values)

    def codes_of(self, wanted: Sequence[str]) -> np.ndarray:
        lookup_ = {v: i for i, v in enumerate(self.values)}
        return np.array([lookup_[w] for w in wanted if w in lookup_], dtype=np.int32)

    def isin(self, wanted: Sequence[str]) -> np.ndarray:
        # A lookup table indexed by code (the last slot, for -1 = missing, stays False):
        # one gather over the column instead of np.isin's sort.
        table = np.zeros(len(self.values) + 1, dtype=bool)
        table[self.codes_of(wanted)] = True
        return table[self.codes]


@dataclass
class PathColumn:
    text: Categories
    number: pa.Array  # decimal256, null where status != OK
    status: np.ndarray  # int8, see OK / MISSING / NOT_NUMBER / OUT_OF_RANGE


def _extract(props: list[dict[str, Any]], path: str) -> list[Any]:
    """Values at a dot path for every event: a literal key equal to the path wins, else nested."""
    if "." not in path:
        return [d.get(path) for d in props]
    literal = [d.get(path, _ABSENT) for d in props]
    current: list[Any] = props
    for part in path.split("."):
        current = [c.get(part) if type(c) is dict else None for c in current]
    return [c if lit is _ABSENT else lit for lit, c in zip(literal, current)]


def _text_forms(values: list[Any], properties_text: Sequence[str], path: str) -> pa.Array:
    """Text form of each value (values.text_form): numbers by their literal text."""
    kinds = set(map(type, values))
    if kinds <= {str, _NONE}:  # the usual case: one C-level conversion
        return pa.array(values, type=pa.string())
    if kinds <= {int, _NONE}:
        try:
            return pc.cast(pa.array(values, type=pa.int64()), pa.string())
        except (OverflowError, pa.ArrowInvalid):
            pass
    texts: list[str | None] = [
        v if type(v) is str else None if v is None else str(v) if type(v) is int
        else ("true" if v else "false") if type(v) is bool else None
        for v in values
    ]
    if dict in kinds or list in kinds:
        # Objects and arrays (rare): their canonical JSON, re-read exactly from the stored text.
        for i, v in enumerate(values):
            if type(v) in (dict, list):
                texts[i] = ingest.canonical_json(lookup(ingest.loads_exact(properties_text[i]), path))
    return pa.array(texts, type=pa.string())


def _numbers(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Exact decimal value and status per event. `true`, `{…}` and `[…]` never read as numbers."""
    n = len(text)
    status = np.full(n, NOT_NUMBER, dtype=np.int8)
    status[text.is_null().to_numpy(zero_copy_only=False)] = MISSING
    trimmed = pc.utf8_trim_whitespace(text)
    fast = pc.fill_null(pc.match_substring_regex(trimmed, _FAST_NUMBER), False)
    number = pc.if_else(fast, pc.cast(pc.if_else(fast, trimmed, pa.scalar("0")), DECIMAL), pa.scalar(None, DECIMAL))
    fast_np = fast.to_numpy(zero_copy_only=False)
    status[fast_np] = OK
    loose = pc.fill_null(pc.match_substring_regex(trimmed, _LOOSE_NUMBER), False).to_numpy(zero_copy_only=False)
    loose &= ~fast_np
    if loose.any():  # exponents, > 18 places, very long: rare, read one by one with Decimal
        idx = np.flatnonzero(loose)
        py = number.to_pylist()
        for i, s in zip(idx, trimmed.take(pa.array(idx)).to_pylist()):
            value = parse_decimal(s)
            if value is not None and in_range(value):
                status[i] = OK
                py[i] = value.quantize(_QUANTUM, context=EXACT)
            else:
                status[i] = OUT_OF_RANGE
        number = pa.array(py, type=DECIMAL)
    return number, status


def _path_column(props: list[dict[str, Any]], properties_text: Sequence[str], path: str) -> PathColumn:
    text = _text_forms(_extract(props, path), properties_text, path)
    number, status = _numbers(text)
    return PathColumn(Categories.from_arrow(text), number, status)


def _parse_all(properties: Sequence[str]) -> list[dict[str, Any]]:
    if not properties:
        return []
    return _DECODER.decode(("[" + ",".join(properties) + "]").encode())


class EventFrame:
    """Events as columns: seq (store order), event_name, customer_id, ts_us, property paths."""

    def __init__(
        self,
        seq: np.ndarray,
        event_names: Categories,
        customers: Categories,
        ts_us: np.ndarray,
        props: list[dict[str, Any]],
        properties_text: list[str],
    ) -> None:
        self.seq = seq
        self.event_names = event_names
        self.customers = customers
        self.ts_us = ts_us
        self.props = props
        self.properties_text = properties_text
        self._paths: dict[str, PathColumn] = {}
        self.max_id = int(seq.max()) if len(seq) else 0

    def __len__(self) -> int:
        return len(self.seq)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_rows(cls, rows: Sequence[Row]) -> EventFrame:
        if not rows:
            return cls.empty()
        # Column by column with a C-level map: zip(*rows) would unpack a million arguments.
        ids, names, customers, ts, props = (list(map(itemgetter(i), rows)) for i in range(5))
        return cls(
            np.asarray(ids, dtype=np.int64),
            Categories.build(names),
            Categories.build(customers),
            np.asarray(ts, dtype=np.int64),
            _parse_all(props),
            props,
        )

    @classmethod
    def empty(cls) -> EventFrame:
        none = Categories(np.zeros(0, np.int32), [])
        return cls(np.zeros(0, np.int64), none, none, np.zeros(0, np.int64), [], [])

    @classmethod
    def from_store(cls, engine: Engine) -> EventFrame:
        return cls.from_rows(store.fetch_events(engine))

    @classmethod
    def from_parsed(cls, parsed: ingest.ParsedEvents) -> EventFrame:
        """Events read from files, without a store: a repeated idempotency key keeps the first."""
        keys = pd.Series(parsed.idempotency_key, dtype=object)
        keep = np.flatnonzero(~keys.duplicated().to_numpy())
        rows = [
            (int(i) + 1, parsed.event_name[i], parsed.customer_id[i], parsed.ts_us[i], parsed.properties[i])
            for i in keep
        ]
        return cls.from_rows(rows)

    def append_rows(self, rows: Sequence[Row]) -> EventFrame:
        """A new frame with `rows` added; cached property columns are extended, not rebuilt."""
        if not rows:
            return self
        added = EventFrame.from_rows(rows)
        frame = EventFrame(
            np.concatenate([self.seq, added.seq]),
            self.event_names.extend(added.event_names),
            self.customers.extend(added.customers),
            np.concatenate([self.ts_us, added.ts_us]),
            self.props + added.props,
            self.properties_text + added.properties_text,
        )
        for path, col in self._paths.items():
            extra = added.path(path)
            frame._paths[path] = PathColumn(
                col.text.extend(extra.text),
                pa.concat_arrays([col.number, extra.number]),
                np.concatenate([col.status, extra.status]),
            )
        return frame

    # ------------------------------------------------------------------ columns
    def path(self, path: str) -> PathColumn:
        column = self._paths.get(path)
        if column is None:
            column = self._paths[path] = _path_column(self.props, self.properties_text, path)
        return column

    def property_paths(self, limit: int = 200) -> list[str]:
        """Paths seen in (a sample of) the events, nested keys joined by dots, most common first."""
        counts: dict[str, int] = {}
        step = max(1, len(self.props) // 20_000)
        for d in self.props[::step]:
            for key, value in d.items():
                counts[key] = counts.get(key, 0) + 1
                if isinstance(value, dict):
                    for sub in value:
                        counts[f"{key}.{sub}"] = counts.get(f"{key}.{sub}", 0) + 1
        return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:limit]

    def time_bounds(self) -> tuple[int, int] | None:
        if not len(self.ts_us):
            return None
        return int(self.ts_us.min()), int(self.ts_us.max())

    def customer_ids(self) -> list[str]:
        """Every customer that has at least one event, sorted."""
        used = np.unique(self.customers.codes[self.customers.codes >= 0])
        return sorted(self.customers.values[int(c)] for c in used)

    def first_event_us(self, customer_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Each customer's earliest event time (epoch µs), any event name."""
        codes = self.customers.codes
        first = np.full(len(self.customers.values), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, codes[codes >= 0], self.ts_us[codes >= 0])
        wanted = None if customer_ids is None else set(customer_ids)
        return {
            v: int(first[i]) for i, v in enumerate(self.customers.values)
            if first[i] != np.iinfo(np.int64).max and (wanted is None or v in wanted)
        }


class FrameCache:
    """Keeps one EventFrame per database and refreshes it from the store only when it changed.

    New rows (max id grew, nothing deleted) are appended; a delete triggers a reload. Frames are
    keyed by the database URL, so two engines on one database (the app's pages and the API in
    one process) share one frame; in-memory SQLite is keyed per engine, each being its own
    database. Safe to call from several threads.
    """

    def __init__(self) -> None:
        self._frames: dict[object, tuple[store.StoreVersion, EventFrame]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(engine: Engine) -> object:
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return id(engine)
        return url.render_as_string(hide_password=False)

    def get(self, engine: Engine) -> EventFrame:
        with self._lock:
            return self._get(engine)

    def _get(self, engine: Engine) -> EventFrame:
        key = self._key(engine)
        version = store.store_version(engine)
        cached = self._frames.get(key)
        if cached is not None:
            old_version, frame = cached
            if old_version == version:
                return frame
            if version.generation == old_version.generation and version.max_id > old_version.max_id:
                new_rows = store.fetch_events(engine, after_id=frame.max_id)
                if len(frame) + len(new_rows) == version.count:  # only additions since last look
                    frame = frame.append_rows(new_rows)
                    self._frames[key] = (version, frame)
                    return frame
        frame = EventFrame.from_store(engine)
        self._frames[key] = (version, frame)
        return frame

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()


_SHARED = FrameCache()


def shared_frames() -> FrameCache:
    """The process's frame cache: the app's pages and the API read the same frame."""
    return _SHARED
