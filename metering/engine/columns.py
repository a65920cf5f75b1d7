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
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
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
    return _EPOCH + pd.Timedelta(microseconds=int(value)).to_pytimedelta()


@dataclass
class Categories:
    """Text values as int32 codes into `values` (-1 = missing), like pandas.Categorical."""

    codes: np.ndarray
    values: list[str]
    _lookup: dict[str, int] | None = field(default=None, repr=False, compare=False)

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
            chunks.append(mapping[part.codes])
        codes = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
        return cls(codes, values, index)

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


class PathColumn:
    """One property path for every event: text codes now, numbers on first use."""

    def __init__(
        self,
        text: Categories,
        number: pa.Array | None = None,
        status: np.ndarray | None = None,
        *,
        loader: Callable[[], tuple[pa.Array, np.ndarray]] | None = None,
    ) -> None:
        self.text = text
        self._number = number
        self._status = status
        self._loader = loader  # where the numbers come from when not derived from `text` here

    def __len__(self) -> int:
        return len(self.text.codes)

    def _numbers(self) -> None:
        if self._loader is not None:
            self._number, self._status = self._loader()
        else:
            self._number, self._status = numbers(self.text.to_arrow())

    @property
    def number(self) -> pa.Array:
        if self._number is None:
            self._numbers()
        return self._number  # type: ignore[return-value]

    @property
    def status(self) -> np.ndarray:
        if self._status is None:
            self._numbers()
        return self._status  # type: ignore[return-value]

    @property
    def has_numbers(self) -> bool:
        return self._number is not None

    @classmethod
    def concat(cls, parts: Sequence[PathColumn]) -> PathColumn:
        """The parts one after another; numbers stay per part until asked for (each part may
        have them kept already)."""
        if len(parts) == 1:
            return parts[0]
        parts = list(parts)

        def load() -> tuple[pa.Array, np.ndarray]:
            if not parts:
                return pa.nulls(0, DECIMAL), np.zeros(0, np.int8)
            return pa.concat_arrays([p.number for p in parts]), np.concatenate([p.status for p in parts])

        return cls(Categories.concat([p.text for p in parts]), loader=load)
