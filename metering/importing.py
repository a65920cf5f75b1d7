"""Imports with progress: a file (or simulated DataFrames) read and stored a block at a time.

The same rules as `ingest.import_file` (contract §1) and the same `ImportResult`; a callback
hears about each stored block, so a caller (the app's progress bar, a CLI) can show how far a
large import got. Each block is one batch of the event store (whole or not at all), so an
interrupted import keeps whole blocks only; its record then has no `finished_at`, and
`store.delete_import` removes what it stored. Memory stays bounded by the block size, whatever
the file's size. Pure Python: no Streamlit here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from metering import ingest, simulate, store
from metering.engine.batch import EventBatch
from metering.ingest import ImportResult, ParsedEvents, UnreadableFile

__all__ = [
    "ImportResult",
    "Progress",
    "ProgressCallback",
    "UnreadableFile",
    "import_bytes",
    "import_path",
    "import_frames",
    "parse_frames",
    "store_in_chunks",
]


@dataclass(frozen=True)
class Progress:
    """Where an import is: `stage` is "parsed", "storing" or "done"; events read so far
    (`done`) of `total` when known (bytes for a file read as it goes: see `unit`)."""

    stage: str
    done: int
    total: int
    unit: str = "events"

    @property
    def fraction(self) -> float:
        if self.stage == "done" or self.total <= 0:
            return 1.0 if self.stage == "done" else 0.0
        return min(self.done / self.total, 1.0)


ProgressCallback = Callable[[Progress], None]


def _notify(callback: ProgressCallback | None, stage: str, done: int, total: int, unit: str = "events") -> None:
    if callback is not None:
        callback(Progress(stage, done, total, unit))


def store_in_chunks(
    engine: Engine,
    parsed: ParsedEvents,
    *,
    source: str,
    chunk_size: int = 1_000_000,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Store events already read as one import, `chunk_size` events per batch, with progress."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    total = len(parsed)
    _notify(on_progress, "parsed", 0, total)

    def blocks() -> Iterator[ParsedEvents]:
        if total == 0:
            yield ParsedEvents(parsed.batch, list(parsed.errors))
        for begin in range(0, total, chunk_size):
            rows = np.arange(begin, min(begin + chunk_size, total))
            yield ParsedEvents(parsed.batch.take(rows), parsed.errors if begin == 0 else [])

    result = ingest.store_blocks(
        engine, blocks(), source=source, on_block=lambda read, _: _notify(on_progress, "storing", read, total)
    )
    _notify(on_progress, "done", total, total)
    return result


def import_path(
    engine: Engine,
    path: str | Path,
    *,
    name: str | None = None,
    source: str | None = None,
    on_progress: ProgressCallback | None = None,
    chunk_bytes: int | None = None,
) -> ImportResult:
    """Import a file on disk a block at a time (memory bounded by `chunk_bytes`), reporting the
    share of the file read. Raises UnreadableFile before anything is stored."""
    label = name or Path(path).name
    size = max(os.path.getsize(path), 1)
    blocks = ingest.iter_events(str(path), name=label, chunk_bytes=chunk_bytes, prepare=store.block_preparer(engine))
    return _import_blocks(engine, blocks, source=source or label, size=size, on_progress=on_progress)


def import_bytes(
    engine: Engine,
    data: bytes,
    *,
    name: str,
    source: str | None = None,
    on_progress: ProgressCallback | None = None,
    chunk_bytes: int | None = None,
) -> ImportResult:
    """Read one file's bytes (format by `name`'s extension) and store it with progress.

    Raises `UnreadableFile` before anything is stored (not even an import record) when the
    file cannot be read at all."""
    blocks = ingest.iter_events(data, name=name, chunk_bytes=chunk_bytes, prepare=store.block_preparer(engine))
    return _import_blocks(engine, blocks, source=source or name, size=max(len(data), 1), on_progress=on_progress)


def _import_blocks(
    engine: Engine, blocks: Iterator[ParsedEvents], *, source: str, size: int, on_progress: ProgressCallback | None
) -> ImportResult:
    first = next(blocks, None)  # an unreadable file raises here, before any record exists
    _notify(on_progress, "parsed", 0, size, "bytes")

    def all_blocks() -> Iterator[ParsedEvents]:
        if first is not None:
            yield first
        yield from blocks

    result = ingest.store_blocks(
        engine, all_blocks(), source=source,
        on_block=lambda _read, position: _notify(on_progress, "storing", position, size, "bytes"),
    )
    _notify(on_progress, "done", size, size, "bytes")
    return result


def parse_frames(frames: Sequence[pd.DataFrame]) -> ParsedEvents:
    """Simulated events (`simulate.simulate` frames) → validated events, read exactly the way
    an uploaded CSV file is (the frames are written with `simulate.to_csv` and read back with
    `ingest.read_events`), so a simulation stores what importing its file would store."""
    parsed = ParsedEvents()
    for chunk in _frame_blocks(frames):
        parsed.extend(chunk)
    return parsed


def _frame_blocks(
    frames: Sequence[pd.DataFrame], prepare: Callable[[EventBatch], None] | None = None
) -> Iterator[ParsedEvents]:
    with tempfile.TemporaryDirectory(prefix="metering-sim-") as tmp:
        for i, df in enumerate(frames):
            path = Path(tmp) / f"simulation-{i}.csv"
            simulate.to_csv(df, path)
            yield from ingest.iter_events(str(path), name=path.name, prepare=prepare)
            os.unlink(path)


def import_frames(
    engine: Engine,
    frames: Sequence[pd.DataFrame],
    *,
    source: str,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Store simulated events (one or more frames) as one import, with progress."""
    total = sum(len(f) for f in frames)
    _notify(on_progress, "parsed", 0, total)
    result = ingest.store_blocks(
        engine, _frame_blocks(frames, store.block_preparer(engine)), source=source, on_block=lambda read, _: _notify(on_progress, "storing", read, total)
    )
    _notify(on_progress, "done", total, total)
    return result
