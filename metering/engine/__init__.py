"""Event engines: where stored events live and how every question about them is answered.

* `interface.Events`: the one read interface (aggregates, per-period usage, hard-limit walks,
  daily series, the events browser) that billing, previews, the API and the CLI call.
* The embedded engine (default): `store.EventStore` keeps events in columnar segments next to
  the SQL store (plus recent rows in the `event` table); `frame.EventFrame` holds them as
  memory-mapped columns and answers `Events` with numpy/pyarrow (`columnar/`).

`stored_events(engine)` is the store's events as they are now, for reading;
`event_writer(engine)` is where events are written. Both are the only ways in.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from metering.engine.interface import EventWriter, Events


def stored_events(engine: Engine) -> Events:
    """The store's events now (the process's shared, incrementally refreshed view)."""
    from metering.engine.frame import shared_frames

    return shared_frames().get(engine)


def event_writer(engine: Engine) -> EventWriter:
    """Where the store's events are written (one writer per database in a process)."""
    from metering.engine.registry import store_for

    return store_for(engine)


__all__ = ["EventWriter", "Events", "event_writer", "stored_events"]
