"""Validated events as Arrow columns, with their properties shredded into one column per path.

Every write path (file imports, the API, simulations, test events) ends in an
:class:`EventBatch`, and every reader of events in memory starts from one. Besides the
event's own fields and its properties as canonical JSON text, a batch holds the text form
(contract §2: numbers by their literal text, booleans as true/false, objects and arrays as
canonical JSON) of every property path its events have, one string column per path, null
where an event lacks it. A CSV file's extra columns are those columns already; JSON events
are flattened once while they are read anyway. A metric then reads its paths without parsing
JSON again; only a path the shredding could not answer (an object asked for as a whole, a
literal dotted key that is JSON null beside a nested one, or a batch with more paths than
`MAX_PATHS`) is derived from the JSON text, in one pass, and kept by the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metering.values import lookup

Path = tuple[str, ...]
MAX_PATHS = 256  # distinct property paths kept as columns per batch; more are read from JSON
MAX_DEPTH = 32  # nesting deeper than this is not shredded (intake refuses deeper than 64)
_CHUNK = 65_536
_DECODER = msgspec.json.Decoder(float_hook=str)  # non-integers as their literal text


# --------------------------------------------------------------------------- text forms


def number_literal_text(literal: str) -> str:
    """A JSON number's text form: its literal, except that integers read by value (-0 is 0)."""
    return "0" if literal == "-0" else literal


def _is_marked(value: str) -> bool:
    from metering import ingest

    return ingest.is_number(value)


def exact_text_form(value: Any) -> str | None:
    """Text form of a value as `ingest.loads_exact` returns it (numbers are marked text)."""
    from metering import ingest

    if value is None:
        return None
    if isinstance(value, str):
        return number_literal_text(ingest.number_text(value)) if ingest.is_number(value) else value
    if value is True:
        return "true"
    if value is False:
        return "false"
    return ingest.canonical_json(value)


def shred(objects: Sequence[dict[str, Any] | None]) -> tuple[dict[Path, pa.Array], frozenset[Path], bool]:
    """Flatten properties (loads_exact form; None = unreadable) into text columns per path.

    Returns (columns, paths holding an explicit JSON null somewhere, complete). Objects are
    walked, not kept (an empty object is the leaf `{}`); arrays are leaves. `complete` is False
    when there were more than MAX_PATHS paths or nesting beyond MAX_DEPTH (those events' other
    paths are then read from the JSON text).
    """
    n = len(objects)
    columns: dict[Path, list[str | None]] = {}
    nulls: set[Path] = set()
    complete = True

    def put(path: Path, i: int, text: str | None) -> None:
        nonlocal complete
        column = columns.get(path)
        if column is None:
            if len(columns) >= MAX_PATHS:
                complete = False
                return
            column = columns[path] = [None] * n
        column[i] = text
        if text is None:
            nulls.add(path)

    def walk(obj: dict[str, Any], prefix: Path, i: int) -> None:
        nonlocal complete
        for key, value in obj.items():
            path = (*prefix, key)
            if type(value) is dict and value:
                if len(path) >= MAX_DEPTH:
                    complete = False
                    continue
                walk(value, path, i)
            else:
                put(path, i, exact_text_form(value))

    for i, obj in enumerate(objects):
        if obj is None:
            complete = False
        elif obj:
            walk(obj, (), i)
    return {p: pa.array(v, type=pa.string()) for p, v in columns.items()}, frozenset(nulls), complete


def parse_properties(texts: Iterable[str | None]) -> list[dict[str, Any] | None]:
    """Canonical JSON texts → loads_exact objects (None for a text that cannot be read)."""
    from metering import ingest

    out: list[dict[str, Any] | None] = []
    for text in texts:
        try:
            obj = ingest.loads_exact(text) if text else {}
        except (ValueError, RecursionError):
            obj = None
        out.append(obj if isinstance(obj, dict) else None)
    return out


def derive_text(properties: pa.Array | pa.ChunkedArray, path: str) -> pa.Array:
    """The text form at `path` for every event, read from the JSON texts in chunks (msgspec,
    exact re-reads only for objects/arrays and texts msgspec cannot take). An unreadable
    text counts as missing: no stored event can make a read fail."""
    if isinstance(properties, pa.ChunkedArray):
        properties = properties.combine_chunks()
    out: list[pa.Array] = []
    for start in range(0, len(properties), _CHUNK):
        texts = properties.slice(start, _CHUNK).to_pylist()
        try:
            objects = _DECODER.decode(("[" + ",".join(t or "{}" for t in texts) + "]").encode())
        except (msgspec.DecodeError, RecursionError, ValueError):
            objects = None
        values: list[str | None] = []
        for j, text in enumerate(texts):
            if objects is None:
                exact = parse_properties([text])[0]
                values.append(None if exact is None else exact_text_form(lookup(exact, path)))
                continue
            obj = objects[j]
            value = lookup(obj, path) if type(obj) is dict else None
            if value is None:
                values.append(None)
            elif type(value) is str:
                values.append(value)  # a string, or a non-integer's literal: the same text form
            elif type(value) is bool:
                values.append("true" if value else "false")
            elif type(value) is int:
                values.append(str(value))
            else:  # objects and arrays: canonical JSON with exact numbers, from an exact read
                exact = parse_properties([text])[0]
                values.append(None if exact is None else exact_text_form(lookup(exact, path)))
        out.append(pa.array(values, type=pa.string()))
    return pa.concat_arrays(out) if out else pa.array([], type=pa.string())


# --------------------------------------------------------------------------- the batch


def resolve(
    path: str,
    paths: Collection[Path],
    null_paths: Collection[Path],
    complete: bool,
    get: Callable[[Path], pa.Array],
    n: int,
) -> pa.Array | None:
    """The text form at a dot path from shredded columns, or None when the shredding cannot
    answer it (then the JSON text must be read: see derive_text).

    Contract §2's path rule: a literal key equal to the whole path wins (even when it holds
    JSON null), else the path walks nested objects."""
    literal: Path = (path,)
    nested: Path = tuple(path.split("."))
    candidates = [literal] if nested == literal else [literal, nested]
    prefixes = {p[:i] for p in paths for i in range(1, len(p))}
    if any(c in prefixes for c in candidates):
        return None  # an object at this path in some event: its JSON comes from the text
    if not complete and any(c not in paths for c in candidates):
        return None
    has_lit = literal in paths
    has_nes = nested != literal and nested in paths
    if not has_lit and not has_nes:
        return pa.nulls(n, pa.string())
    if not has_nes:
        return get(literal)
    if not has_lit:
        return get(nested)
    if literal in null_paths:
        return None  # a literal key that is JSON null wins over the nested value
    return pc.coalesce(_plain(get(literal)), _plain(get(nested)))


def _plain(column: pa.Array) -> pa.Array:
    return column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column


@dataclass
class EventBatch:
    """Events as columns. `lines` says where each came from (file line, or index in a body)."""

    event_name: pa.Array
    customer_id: pa.Array
    ts_us: np.ndarray
    key: pa.Array
    properties: pa.Array
    k1: np.ndarray
    k2: np.ndarray
    paths: dict[Path, pa.Array] = field(default_factory=dict)
    null_paths: frozenset[Path] = frozenset()
    complete: bool = True
    lines: np.ndarray | None = None
    seq: np.ndarray | None = None  # store order, when already stored (buffer rows)
    _key_text: pa.Array | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ts_us)

    @classmethod
    def empty(cls) -> EventBatch:
        s = pa.array([], type=pa.string())
        u = np.zeros(0, dtype=np.uint64)
        return cls(s, s, np.zeros(0, np.int64), s, s, u, u, lines=np.zeros(0, np.int64))

    # ---- property paths

    def text(self, path: str) -> pa.Array:
        """The text form at a dot path for every event (contract §2's path rule: a literal key
        equal to the whole path wins, else the path walks nested objects)."""
        found = self._shredded(path)
        return found if found is not None else derive_text(self.properties, path)

    def _shredded(self, path: str) -> pa.Array | None:
        return resolve(path, self.paths.keys(), self.null_paths, self.complete, self.paths.__getitem__, len(self))

    def key_text(self) -> pa.Array:
        """The idempotency keys as text (content keys are kept as null until asked for; written
        out once)."""
        from metering.engine.keys import key_text

        if self._key_text is None:
            self._key_text = key_text(self.key, self.k1, self.k2)
        return self._key_text

    def path_names(self) -> list[str]:
        """The dot paths of the shredded columns (leaves), for suggestions."""
        return [".".join(p) for p in self.paths]

    # ---- selection

    def take(self, indices: np.ndarray) -> EventBatch:
        idx = pa.array(indices, type=pa.int64())
        paths = {p: c.take(idx) for p, c in self.paths.items()}
        return EventBatch(
            self.event_name.take(idx), self.customer_id.take(idx), self.ts_us[indices],
            self.key.take(idx), self.properties.take(idx), self.k1[indices], self.k2[indices],
            {p: c for p, c in paths.items() if c.null_count < len(c) or p in self.null_paths},
            self.null_paths, self.complete,
            None if self.lines is None else self.lines[indices],
            None if self.seq is None else self.seq[indices],
        )

    @classmethod
    def concat(cls, batches: Sequence[EventBatch]) -> EventBatch:
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        all_paths: dict[Path, None] = {}
        for b in batches:
            all_paths.update(dict.fromkeys(b.paths))
        paths = {p: _concat_text([b.paths.get(p, pa.nulls(len(b), pa.string())) for b in batches]) for p in all_paths}

        def cat(name: str) -> Any:
            items = [getattr(b, name) for b in batches]
            if isinstance(items[0], np.ndarray):
                return np.concatenate(items)
            return pa.concat_arrays(items)

        return cls(
            cat("event_name"), cat("customer_id"), cat("ts_us"), cat("key"), cat("properties"),
            cat("k1"), cat("k2"), paths, frozenset().union(*(b.null_paths for b in batches)),
            all(b.complete for b in batches),
            None if any(b.lines is None for b in batches) else cat("lines"),
            None if any(b.seq is None for b in batches) else cat("seq"),
        )


def _concat_text(arrays: list[pa.Array]) -> pa.Array:
    """Text columns one after another (dictionary-encoded ones as plain text: their
    dictionaries differ)."""
    if any(pa.types.is_dictionary(a.type) for a in arrays):
        arrays = [_plain(a) for a in arrays]
    return pa.concat_arrays(arrays)


def path_column_name(path: Path) -> str:
    """The Arrow column name of a shredded path: unambiguous for keys holding dots."""
    return "p:" + json.dumps(list(path), ensure_ascii=False, separators=(",", ":"))


def path_of_column(name: str) -> Path | None:
    if not name.startswith("p:"):
        return None
    return tuple(json.loads(name[2:]))
