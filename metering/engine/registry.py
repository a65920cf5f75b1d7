"""One EventStore per database in a process (the app's pages, the API and imports share it)."""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from metering.engine.store import EventStore

_stores: dict[str, EventStore] = {}
_lock = threading.Lock()


def _in_memory(engine: Engine) -> bool:
    url = engine.url
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def store_for(engine: Engine) -> EventStore:
    """The process's store object for this database (an in-memory database: for this engine,
    kept on the engine itself so both go away together)."""
    with _lock:
        if _in_memory(engine):
            found = getattr(engine, "_metering_store", None)
            if found is None:
                found = EventStore(engine)
                engine._metering_store = found  # type: ignore[attr-defined]
            return found
        from metering.engine.frame import store_key

        key = str(store_key(engine))
        found = _stores.get(key)
        if found is None:
            found = _stores[key] = EventStore(engine)
        return found
