"""Event engines: where stored events live and how every question about them is answered.

* `interface.Events`: the one read interface (aggregates, per-period usage, hard-limit walks,
  daily series, the events browser) that billing, previews, the API and the CLI call.
* The embedded engine (default): `store.EventStore` keeps events in columnar segments next to
  the SQL store (plus recent rows in the `event` table); `frame.EventFrame` holds them as
  memory-mapped columns and answers `Events` with numpy/pyarrow (`columnar/`).

`stored_events(engine)` is the store's events as they are now, for reading.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from metering.engine.interface import Events


def stored_events(engine: Engine) -> Events:
    """The store's events now (the process's shared, incrementally refreshed view)."""
    from metering.engine.frame import shared_frames

    return shared_frames().get(engine)


__all__ = ["Events", "stored_events"]
