"""Event engines: where stored events live and how every question about them is answered.

* `interface.Events`: the one read interface (aggregates, per-period usage, hard-limit walks,
  daily series, the events browser) that billing, previews, the API and the CLI call.
* The embedded engine (default): `store.EventStore` keeps events in columnar segments next to
  the SQL store (plus recent rows in the `event` table); `frame.EventFrame` holds them as
  memory-mapped columns and answers `Events` with numpy/pyarrow (`columnar/`).
* ClickHouse (`clickhouse/`), when `METERING_EVENTS_URL` names one (`clickhouse.settings`):
  a server, chdb in-process, or an OpenMeter events table read-only. Every answer is SQL.

`stored_events(engine)` is the store's events as they are now, for reading;
`event_writer(engine)` is where events are written. Both are the only ways in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from metering.engine.interface import EventWriter, Events


def _clickhouse() -> Any:
    """The ClickHouse place METERING_EVENTS_URL names, or None for the embedded engine
    (raises EventsUrlError for a URL that cannot be used)."""
    from metering.engine.clickhouse.settings import current

    setting = current()
    if setting is None:
        return None
    from metering.engine.clickhouse.wiring import place_for

    return place_for(setting)


def stored_events(engine: Engine) -> Events:
    """The store's events now (the process's shared, incrementally refreshed view)."""
    place = _clickhouse()
    if place is not None:
        return place.events(engine)
    from metering.engine.frame import shared_frames

    return shared_frames().get(engine)


def event_writer(engine: Engine) -> EventWriter:
    """Where the store's events are written (one writer per database in a process)."""
    place = _clickhouse()
    if place is not None:
        return place.writer(engine)
    from metering.engine.registry import store_for

    return store_for(engine)


def uses_clickhouse() -> bool:
    """Whether events live in ClickHouse (METERING_EVENTS_URL is set to a usable URL)."""
    return _clickhouse() is not None


def events_problem() -> str | None:
    """Why the configured events engine cannot be used (a bad URL, a server that does not
    answer, a table that is not there), in one line; None when it can."""
    from metering.engine.clickhouse.connection import ClickHouseError
    from metering.engine.clickhouse.settings import EventsUrlError

    try:
        _clickhouse()
    except (EventsUrlError, ClickHouseError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def read_only_reason(engine: Engine) -> str | None:
    """Why events cannot be written here (events read from an OpenMeter table), or None."""
    writer = event_writer(engine)
    return getattr(writer, "reason", None) if getattr(writer, "read_only", False) else None


__all__ = ["EventWriter", "Events", "event_writer", "events_problem", "read_only_reason", "stored_events",
           "uses_clickhouse"]
