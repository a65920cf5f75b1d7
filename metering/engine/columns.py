"""Column types of the embedded engine: category codes for text, exact decimals for numbers.

A property path read for every event becomes a :class:`PathColumn`: its text form as category
codes (filters, unique_count, group_by compare codes, not strings) and, on first use, its
numeric value as exact decimal256 with a status per event saying why a value was skipped. Both
are derived from the text form alone (contract §2: a JSON number and a string that reads as a
decimal number are the same number; booleans, objects and arrays are never numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metering.values import EXACT, SCALE, in_range, parse_decimal

DECIMAL = pa.decimal256(76, SCALE)

# Status of a path's value per event.
OK, MISSING, NOT_NUMBER, OUT_OF_RANGE = 0, 1, 2, 3
_FAST_NUMBER = rf"^[+-]?[0-9]{{1,40}}(\.[0-9]{{0,{SCALE}}})?$"
_LOOSE_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_QUANTUM = Decimal(1).scaleb(-SCALE)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_us(value: datetime | int | None) -> int | None:
    """An aware datetime (naive = UTC) or epoch microseconds → epoch microseconds."""
    if value is None or isinstance(value, (int, np.integer)):
        return None if value is None else int(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


class Grow:
    """An append-only numpy buffer behind successive snapshots of a column. Each snapshot is a
    view of a prefix; appending writes after the newest snapshot's end (never into a prefix a
    reader holds) and grows the buffer by a quarter when it is full, so appending k rows to N
    costs O(k), amortized, instead of copying all N."""

    __slots__ = ("buf", "used")

    def __init__(self, array: np.ndarray) -> None:
        self.buf = array
        self.used = len(array)

    @staticmethod
    def append(view: np.ndarray, owner: Grow | None, more: np.ndarray) -> tuple[np.ndarray, Grow]:
        n, k = len(view), len(more)
        if owner is None or owner.used != n or not _shares(view, owner.buf) or len(owner.buf) < n + k:
            if owner is not None and owner.used == n and _shares(view, owner.buf):
                capacity = max(n + k, int(n * 1.25) + 1024)
            else:
                capacity = n + k  # a first append, or a snapshot that is not the newest: exact
            buf = np.empty(capacity, dtype=view.dtype if n else more.dtype)
            buf[:n] = view
            owner = Grow(buf)
        owner.buf[n:n + k] = more
        owner.used = n + k
        return owner.buf[:n + k], owner


def _shares(view: np.ndarray, buf: np.ndarray) -> bool:
    return view is buf or (view.base is buf) or (len(view) == 0)


@dataclass
class Categories:
    """Text values as int32 codes into `values` (-1 = missing), like pandas.Categorical."""

    codes: np.ndarray
    values: list[str]
    _lookup: dict[str, int] | None = field(default=None, repr=False, compare=False)
    _grow: Grow | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, items: Sequence[Any]) -> Categories:
        return cls.from_arrow(pa.array(items, type=pa.string()))

    @classmethod
    def from_arrow(cls, text: pa.Array | pa.ChunkedArray) -> Categories:
        if isinstance(text, pa.ChunkedArray):
            if text.num_chunks == 1:
                text = text.chunk(0)
            elif pa.types.is_dictionary(text.type):
                return cls.concat([cls.from_arrow(c) for c in text.chunks]) if text.num_chunks else cls.empty()
            else:
                text = text.combine_chunks()
        encoded = text if pa.types.is_dictionary(text.type) else pc.dictionary_encode(text)
        indices = encoded.indices
        if indices.null_count == 0 and indices.type == pa.int32():
            codes = indices.to_numpy(zero_copy_only=False)  # zero copy (memory-mapped files)
        else:
            codes = pc.fill_null(indices, -1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        values = encoded.dictionary.to_pylist()
        if len(set(values)) < len(values):  # a dictionary may repeat a value: one code per value
            return cls.concat([cls(codes, values)])
        return cls(codes, values)

    @classmethod
    def empty(cls) -> Categories:
        return cls(np.zeros(0, np.int32), [])

    @classmethod
    def concat(cls, parts: Sequence[Categories]) -> Categories:
        """The parts' codes one after another, over the union of their value lists."""
        if len(parts) == 1 and len(set(parts[0].values)) == len(parts[0].values):
            return parts[0]
        values: list[str] = []
        index: dict[str, int] = {}
        chunks = []
        for part in parts:
            mapping = np.empty(len(part.values) + 1, dtype=np.int32)
            for j, v in enumerate(part.values):
                code = index.get(v)
                if code is None:
                    code = index[v] = len(values)
                    values.append(v)
                mapping[j] = code
            mapping[-1] = -1  # code -1 (missing) reads the last slot
            if np.array_equal(mapping[:-1], np.arange(len(part.values))):
                chunks.append(part.codes)  # the same codes (sorted dictionaries make this the rule)
            else:
                chunks.append(mapping[part.codes])
        codes = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
        return cls(codes, values, index)

    def appended(self, other: Categories) -> Categories:
        """These codes followed by `other`'s (appended in place where possible): the value list
        and its lookup are shared and only ever extended, so earlier snapshots stay right."""
        values, index = self.values, self.lookup()
        mapping = np.empty(len(other.values) + 1, dtype=np.int32)
        for j, v in enumerate(other.values):
            code = index.get(v)
            if code is None:
                code = index[v] = len(values)
                values.append(v)
            mapping[j] = code
        mapping[-1] = -1
        same = np.array_equal(mapping[:-1], np.arange(len(other.values)))
        codes, grow = Grow.append(self.codes, self._grow, other.codes if same else mapping[other.codes])
        return Categories(codes, values, index, grow)

    def lookup(self) -> dict[str, int]:
        if self._lookup is None:
            self._lookup = {v: i for i, v in enumerate(self.values)}
        return self._lookup

    def codes_of(self, wanted: Sequence[str]) -> np.ndarray:
        found = self.lookup()
        return np.array([found[w] for w in wanted if w in found], dtype=np.int32)

    def isin(self, wanted: Sequence[str]) -> np.ndarray:
        # A lookup table indexed by code (the last slot, for -1 = missing, stays False):
        # one gather over the column instead of np.isin's sort.
        table = np.zeros(len(self.values) + 1, dtype=bool)
        table[self.codes_of(wanted)] = True
        return table[self.codes]

    def sorted(self) -> Categories:
        """The same texts with the values in sorted order (files write them so: parts that hold
        the same values then share their codes, and join without remapping)."""
        order = sorted(range(len(self.values)), key=self.values.__getitem__)
        if order == list(range(len(self.values))):
            return self
        remap = np.empty(len(order) + 1, dtype=np.int32)
        remap[np.array(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int32)
        remap[-1] = -1
        return Categories(remap[self.codes], [self.values[i] for i in order])

    def to_arrow(self) -> pa.DictionaryArray:
        codes = pa.array(self.codes, mask=self.codes < 0, type=pa.int32())
        return pa.DictionaryArray.from_arrays(codes, pa.array(self.values, type=pa.string()))


def numbers(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Exact decimal value and status per text form. `true`, `{…}` and `[…]` never read as numbers."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if pa.types.is_dictionary(text.type):
        # Decide once per distinct value, then gather (label-like columns repeat a lot).
        value, status = numbers(text.dictionary)
        indices = text.indices
        valid = indices.is_valid().to_numpy(zero_copy_only=False)
        idx = pc.fill_null(indices, 0).to_numpy(zero_copy_only=False)
        out_status = np.where(valid, status[idx] if len(status) else MISSING, MISSING).astype(np.int8)
        out_value = value.take(pa.array(idx, mask=~valid)) if len(value) else pa.nulls(len(text), DECIMAL)
        return out_value, out_status
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


@dataclass(frozen=True)
class Scaled:
    """Numbers as exact int64: value × 10^scale (0 where there is no value). Kept beside the
    decimals when every value fits, since int64 columns take a quarter of the memory and add up
    several times faster; `max_abs` bounds any sum of n values by max_abs × n."""

    ints: np.ndarray
    scale: int
    max_abs: int

    def sum_fits(self, n: int) -> bool:
        return self.max_abs * max(n, 1) < 2**63

    def decimals(self, rows: np.ndarray | None = None) -> pa.Array:
        """The values as decimal256 (null where `ints` says 0 is not a value: callers mask)."""
        ints = self.ints if rows is None else self.ints[rows]
        # The int64 is the decimal's unscaled integer: the same bits read at the value's scale
        # (a view, no arithmetic), then widened to the engine's decimal type.
        unscaled = pa.array(ints, type=pa.int64()).cast(pa.decimal256(38, 0))
        return unscaled.view(pa.decimal256(38, self.scale)).cast(DECIMAL)


SCALES = (0, 2, 3, 6, 9, 12, 15, 18)


def scaled(number: pa.Array, status: np.ndarray) -> Scaled | None:
    """The exact int64 form of decimal values (the smallest scale that loses nothing), or None
    when they do not fit int64."""
    values = pc.fill_null(number, pa.scalar(Decimal(0), DECIMAL)) if len(number) else number
    try:
        # int64 holds at most 19 digits, so a value with more integer digits has no int64 form;
        # a narrow type keeps the product's precision (p1 + p2 + 1) within decimal256's 76.
        narrow = pc.cast(values, pa.decimal256(19 + SCALE, SCALE))
    except pa.ArrowInvalid:
        return None
    for s in SCALES:
        try:
            shifted = pc.multiply(narrow, pa.scalar(Decimal(10) ** s, pa.decimal256(19, 0)))
            ints = pc.cast(shifted, pa.int64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            continue
        ints = np.where(status == OK, ints, 0).astype(np.int64)
        max_abs = int(np.abs(ints).max()) if len(ints) else 0
        return Scaled(ints, s, max_abs)
    return None


def _rescale(parts: Sequence[Scaled]) -> Scaled | None:
    """Parts at one common scale (the largest), or None when that would overflow int64."""
    top = max(p.scale for p in parts)
    out, max_abs = [], 0
    for p in parts:
        factor = 10 ** (top - p.scale)
        if p.max_abs * factor >= 2**63:
            return None
        out.append(p.ints * factor if factor != 1 else p.ints)
        max_abs = max(max_abs, p.max_abs * factor)
    return Scaled(np.concatenate(out) if len(out) > 1 else out[0], top, max_abs)


class PathColumn:
    """One property path for every event: text codes now; on first use, the status per event
    and the numbers (as exact int64 when they fit, else decimal256)."""

    def __init__(
        self,
        text: Categories,
        number: pa.Array | None = None,
        status: np.ndarray | None = None,
        *,
        loader: Callable[[], tuple[Scaled | None, pa.Array | None, np.ndarray]] | None = None,
        parts: list[PathColumn] | None = None,
    ) -> None:
        self.text = text
        self._number = number
        self._status = status
        self._scaled: Scaled | None = None
        self._loaded = number is not None
        self._loader = loader  # where the numbers come from when not derived from `text` here
        self._parts = parts  # or: the parts whose numbers make these, joined on first use
        self._grow: dict[str, Grow] = {}

    def __len__(self) -> int:
        return len(self.text.codes)

    def _load(self) -> None:
        if self._loaded:
            return
        if self._parts is not None:
            self._scaled, self._number, self._status = _join_numbers(self._parts)
            self._parts = None
        elif self._loader is not None:
            self._scaled, self._number, self._status = self._loader()
        else:
            self._number, self._status = numbers(self.text.to_arrow())
            self._scaled = scaled(self._number, self._status)
        self._loaded = True

    @property
    def status(self) -> np.ndarray:
        self._load()
        return self._status  # type: ignore[return-value]

    @property
    def scaled(self) -> Scaled | None:
        self._load()
        return self._scaled

    @property
    def number(self) -> pa.Array:
        """Every value as decimal256 (null where status is not OK)."""
        self._load()
        if self._number is None:
            assert self._scaled is not None
            self._number = pc.if_else(pa.array(self._status == OK), self._scaled.decimals(), pa.scalar(None, DECIMAL))
        return self._number

    def decimals_at(self, rows: np.ndarray) -> pa.Array:
        """The values of these rows as decimal256, null where there is none."""
        self._load()
        if self._number is None and self._scaled is not None:
            values = self._scaled.decimals(rows)
            return pc.if_else(pa.array(self._status[rows] == OK), values, pa.scalar(None, DECIMAL))
        return self.number.take(pa.array(rows))

    def values_at(self, rows: np.ndarray) -> tuple[pa.Array, int | None]:
        """The values of these rows for aggregating: exact int64 with their scale when they fit
        (and any sum of them does), else decimal256 with scale None; null where there is none."""
        found = self.scaled
        if found is not None and found.sum_fits(len(rows)):
            return pa.array(found.ints[rows], mask=self.status[rows] != OK), found.scale
        return self.decimals_at(rows), None

    @classmethod
    def concat(cls, parts: Sequence[PathColumn]) -> PathColumn:
        """The parts one after another; numbers stay per part until asked for (each part may
        have them kept already)."""
        if len(parts) == 1:
            return parts[0]
        return cls(Categories.concat([p.text for p in parts]), parts=list(parts))

    def appended(self, more: Sequence[PathColumn]) -> PathColumn:
        """This column followed by `more` (new parts of a frame), appended in place where
        possible: numbers already built are extended, not rebuilt."""
        text = self.text
        for part in more:
            text = text.appended(part.text)
        if not self._loaded:
            return PathColumn(text, parts=[*(self._parts or [self]), *more])
        if self._scaled is not None and all(p.scaled is not None and p.scaled.scale <= self._scaled.scale for p in more):
            top = self._scaled.scale
            ints_more = [p.scaled.ints * 10 ** (top - p.scaled.scale) for p in more]  # type: ignore[union-attr]
            bound = max([self._scaled.max_abs, *(p.scaled.max_abs * 10 ** (top - p.scaled.scale) for p in more)])  # type: ignore[union-attr]
            if bound < 2**63:
                column = PathColumn(text)
                column._loaded = True
                column._status, column._grow["status"] = Grow.append(self._status, self._grow.get("status"), np.concatenate([p.status for p in more]))  # type: ignore[arg-type]
                ints, column._grow["ints"] = Grow.append(self._scaled.ints, self._grow.get("ints"), np.concatenate(ints_more))
                column._scaled = Scaled(ints, top, bound)
                return column
        return PathColumn(text, parts=[self, *more])  # scales differ: joined again on first use


def _join_numbers(parts: Sequence[PathColumn]) -> tuple[Scaled | None, pa.Array | None, np.ndarray]:
    if not parts:
        return None, pa.nulls(0, DECIMAL), np.zeros(0, np.int8)
    status = np.concatenate([p.status for p in parts])
    pieces = [p.scaled for p in parts]
    if all(x is not None for x in pieces):
        found = _rescale(pieces)  # type: ignore[arg-type]
        if found is not None:
            return found, None, status
    return None, pa.concat_arrays([p.number for p in parts]), status
