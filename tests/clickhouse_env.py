"""Fixtures that point the workbench's events at ClickHouse (chdb) for one test.

`events_url` sets METERING_EVENTS_URL to a fresh database in the process's one chdb directory
(conftest's `chdb_dir`: chdb opens a single directory per process) and drops it afterwards;
`sql_engine` is the SQL store (a SQLite file) that keeps imports and the store numbers.
Import the fixtures by name into a test module.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from metering import store
from metering.engine.clickhouse import settings, wiring
from metering.engine.clickhouse.connection import ChdbClient


def drop_database(chdb_dir: str, database: str) -> None:
    ChdbClient(chdb_dir, database).command(f"DROP DATABASE IF EXISTS `{database}`")


@pytest.fixture
def events_url(chdb_dir: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """METERING_EVENTS_URL = chdb:///<the test chdb dir>?database=<fresh>."""
    database = f"w_{uuid.uuid4().hex[:12]}"
    url = f"chdb://{chdb_dir}?database={database}"
    monkeypatch.setenv(settings.ENV, url)
    yield url
    setting = settings.parse(url)
    assert setting is not None
    wiring.forget(setting)
    drop_database(chdb_dir, database)


@pytest.fixture
def sql_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'metering.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


def place(url: str) -> wiring.EventsPlace:
    setting = settings.parse(url)
    assert setting is not None
    return wiring.place_for(setting)


def raw_count(url: str) -> int:
    """Rows in the events table as stored, before any merge and without FINAL."""
    p = place(url)
    table = f"`{p.setting.database}`.`events`"
    return int(p.client.query_arrow(f"SELECT count() AS n FROM {table}").to_pylist()[0]["n"])
