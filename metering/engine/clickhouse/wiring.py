"""Which ClickHouse answers for events in this process: one client per events URL.

`metering.engine.stored_events` / `event_writer` come here when `METERING_EVENTS_URL` names
ClickHouse (`settings`). The client (a chdb session or a clickhouse-connect client) is made
once per URL and shared by every page, API request and import of the process, as the
embedded engine's store object is; the events table is created (or brought up to date) when
it is first opened. The writer is per SQL store, whose lock and import records it uses.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from metering.engine.clickhouse import paths, schema
from metering.engine.clickhouse.connection import ChdbClient, ClickHouseClient, ClickHouseError, ServerClient
from metering.engine.clickhouse.settings import EventsSetting
from metering.engine.interface import EventWriter, Events

# Remembered block hashes per table, so a retried INSERT carrying the same
# insert_deduplication_token is dropped (Replicated tables do this anyway).
DEDUPLICATION_WINDOW = 1_000


@dataclass
class EventsPlace:
    """A place events live in ClickHouse: its client, the source reads use, its writers."""

    setting: EventsSetting
    client: ClickHouseClient
    source: str
    writers: dict[int, Any] = field(default_factory=dict)

    def events(self, engine: Engine | None = None) -> Events:
        """The events' reads; given the SQL store, paths metrics read get columns (`paths`)
        under its writer's lock."""
        from metering.engine.clickhouse.reads import ClickHouseEvents

        if self.setting.openmeter:
            return ClickHouseEvents(self.client, self.source)
        keep = None
        if engine is not None:
            keep = lambda paths: self.writer(engine).keep_paths(paths)  # noqa: E731
        return ClickHouseEvents(self.client, self.source, database=self.setting.database, keep=keep)

    def writer(self, engine: Engine) -> EventWriter:
        found = self.writers.get(id(engine))
        if found is None or found[0] is not engine:
            if self.setting.read_only:
                from metering.engine.clickhouse.openmeter import read_only_writer

                writer: Any = read_only_writer(self.setting)
            else:
                from metering.engine.clickhouse.writer import ClickHouseWriter

                writer = ClickHouseWriter(self.client, engine, database=self.setting.database)
            found = self.writers[id(engine)] = (engine, writer)
        return found[1]


_places: dict[str, EventsPlace] = {}
_lock = threading.Lock()


def client_for(setting: EventsSetting) -> ClickHouseClient:
    """A new client for the setting (chdb: the process's session on that directory)."""
    if setting.kind == "chdb":
        return ChdbClient(setting.path, setting.database)
    import clickhouse_connect.common

    # One client serves every thread of the process (pages, API requests, imports); an HTTP
    # session would make the server refuse their concurrent queries, and nothing here needs
    # one (the writer's key tables are plain Memory tables, not session temporaries).
    clickhouse_connect.common.set_setting("autogenerate_session_id", False)
    return ServerClient(setting.host, setting.port, setting.username, setting.password,
                        setting.database, setting.secure)


def place_for(setting: EventsSetting) -> EventsPlace:
    """The process's place for this setting, opened (and its table made) on first use."""
    found = _places.get(setting.key)
    if found is not None:
        return found
    with _lock:
        found = _places.get(setting.key)
        if found is None:
            client = client_for(setting)
            if setting.openmeter:
                from metering.engine.clickhouse.openmeter import check_table, source_sql

                check_table(client, setting)
                source = source_sql(setting)
            else:
                schema.migrate(client, setting.database)
                paths.upgrade(client, setting.database)
                _keep_insert_hashes(client, setting.database)
                source = schema.events_source(setting.database)
            found = _places[setting.key] = EventsPlace(setting, client, source)
    return found


def _keep_insert_hashes(client: ClickHouseClient, database: str) -> None:
    try:
        client.command(f"ALTER TABLE {schema.table_name(database)} "
                       f"MODIFY SETTING non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}")
    except ClickHouseError:  # a Replicated table (deduplicates anyway), or no ALTER right
        pass


def forget(setting: EventsSetting | None = None) -> None:
    """Drop the process's place(s) (tests; a chdb session stays open: one per process)."""
    with _lock:
        if setting is None:
            _places.clear()
        else:
            _places.pop(setting.key, None)
