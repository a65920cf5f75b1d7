"""Imports with progress: parse a file (or a simulated DataFrame), then store it chunk by chunk.

The same rules as `ingest.import_file` / `ingest.store_parsed` (contract §1) and the same
`ImportResult`; the difference is that the rows are written in chunks and a callback hears
about each one, so a caller (the app's progress bar, a CLI) can show how far a large import
got. Each chunk is its own transaction (`store.insert_events`), so an interrupted import
keeps whole chunks only; the import record then holds the counts of what was stored, and
`store.delete_import` removes it all. Pure Python: no Streamlit here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from metering import ingest, simulate, store
from metering.ingest import ImportResult, ParsedEvents, UnreadableFile

__all__ = [
    "CHUNK_SIZE",
    "ImportResult",
    "Progress",
    "ProgressCallback",
    "UnreadableFile",
    "import_bytes",
    "import_frames",
    "parse_frames",
    "store_in_chunks",
]

CHUNK_SIZE = 10_000  # rows per progress step (and per transaction)


@dataclass(frozen=True)
class Progress:
    """Where an import is: `stage` is "parsed", "storing" or "done"; rows stored so far of `total`."""

    stage: str
    done: int
    total: int

    @property
    def fraction(self) -> float:
        if self.stage == "done" or self.total <= 0:
            return 1.0 if self.stage == "done" else 0.0
        return min(self.done / self.total, 1.0)


ProgressCallback = Callable[[Progress], None]


def _notify(callback: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    if callback is not None:
        callback(Progress(stage, done, total))


def store_in_chunks(
    engine: Engine,
    parsed: ParsedEvents,
    *,
    source: str,
    chunk_size: int = CHUNK_SIZE,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Store parsed events as one import, `chunk_size` rows at a time, reporting each chunk.

    Returns the same numbers as `ingest.store_parsed`: accepted (rows added), duplicates
    (rows whose idempotency key was already stored, or repeated within the file) and the
    rejected rows. If a chunk fails, the import record keeps the counts of the chunks stored
    before it and the error is raised again.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    rows = parsed.rows()
    total = len(rows)
    rejected = len(parsed.errors)
    import_id = store.new_import(engine, source)
    _notify(on_progress, "parsed", 0, total)
    added = done = 0
    try:
        for begin in range(0, total, chunk_size):
            chunk = rows[begin : begin + chunk_size]
            added += store.insert_events(engine, chunk, import_id=import_id)
            done += len(chunk)
            _notify(on_progress, "storing", done, total)
    finally:
        store.finish_import(engine, import_id, accepted=added, duplicates=done - added, rejected=rejected)
    _notify(on_progress, "done", total, total)
    return ImportResult(
        accepted=added,
        duplicates=total - added,
        rejected=rejected,
        errors=sorted(parsed.errors, key=lambda e: e.line),
        import_id=import_id,
        future=ingest.count_future(parsed),
    )


def import_bytes(
    engine: Engine,
    data: bytes,
    *,
    name: str,
    source: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Read one file's bytes (format by `name`'s extension) and store it with progress.

    Raises `UnreadableFile` before anything is stored (not even an import record) when the
    file cannot be read at all.
    """
    parsed = ingest.read_events(data, name=name)
    return store_in_chunks(engine, parsed, source=source or name, chunk_size=chunk_size, on_progress=on_progress)


def parse_frames(frames: Sequence[pd.DataFrame]) -> ParsedEvents:
    """Simulated events (`simulate.simulate` frames) → validated events, read exactly the way
    an uploaded CSV file is (the frames are written with `simulate.to_csv` and read back with
    `ingest.read_events`), so a simulation stores what importing its file would store."""
    parsed = ParsedEvents()
    with tempfile.TemporaryDirectory(prefix="metering-sim-") as tmp:
        for i, df in enumerate(frames):
            path = Path(tmp) / f"simulation-{i}.csv"
            simulate.to_csv(df, path)
            parsed.extend(ingest.read_events(path.read_bytes(), name=path.name))
            os.unlink(path)
    return parsed


def import_frames(
    engine: Engine,
    frames: Sequence[pd.DataFrame],
    *,
    source: str,
    chunk_size: int = CHUNK_SIZE,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Store simulated events (one or more frames) as one import, with progress."""
    parsed = parse_frames(frames)
    return store_in_chunks(engine, parsed, source=source, chunk_size=chunk_size, on_progress=on_progress)
