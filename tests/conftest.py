"""Shared fixtures: database engines (SQLite and PostgreSQL) and a file writer.

* `sqlite_engine`: a fresh in-memory SQLite store (`store.make_engine("sqlite://")`, StaticPool).
* `engine`: parametrized over ["sqlite", "postgres"]. The PostgreSQL variant uses the server named
  by METERING_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test) and runs each
  test in its own freshly created schema `t_<random>`, dropped (CASCADE) afterwards. When the
  variable is unset or the server cannot be reached, the postgres variant is skipped with the
  reason.
* `postgres_engine`: the PostgreSQL engine on its own (skipped the same way).
* `write_file`: writes text (UTF-8, newlines kept as given) or bytes under `tmp_path`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel, create_engine

from metering import store

POSTGRES_ENV = "METERING_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True, scope="session")
def _data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Files the store keeps outside its database (PostgreSQL's local segment cache) go to a
    temporary folder, never into the project's data/."""
    old = os.environ.get("METERING_DATA_DIR")
    os.environ["METERING_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    yield
    if old is None:
        os.environ.pop("METERING_DATA_DIR", None)
    else:
        os.environ["METERING_DATA_DIR"] = old


@pytest.fixture
def sqlite_engine() -> Iterator[Engine]:
    engine = store.make_engine("sqlite://")
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The normalised PostgreSQL URL, or a skip with the reason."""
    raw = os.environ.get(POSTGRES_ENV, "").strip()
    if not raw:
        pytest.skip(f"{POSTGRES_ENV} not set")
    url = store.database_url(raw)
    probe = sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with probe.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver / network error means "not reachable"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        pytest.skip(f"PostgreSQL not reachable: {first_line}")
    finally:
        probe.dispose()
    return url


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(postgres_url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(
        postgres_url,
        pool_pre_ping=True,
        connect_args={"options": f"-csearch_path={schema}", "connect_timeout": 5},
    )
    try:
        SQLModel.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on SQLite and on PostgreSQL (skipped when no server is configured)."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_engine")
    return request.getfixturevalue("postgres_engine")


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """write_file("events.csv", "a,b\\n...") → the path. Text is written as UTF-8 bytes verbatim
    (no newline translation, so "\\r\\n" stays "\\r\\n"); bytes are written as given."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    return _write


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The one embedded ClickHouse (chdb) directory of the test process: chdb opens a single
    data directory per process, so every ClickHouse test shares it (each in its own database)."""
    return str(tmp_path_factory.mktemp("chdb"))


@pytest.fixture
def chdb_client(chdb_dir: str) -> Iterator[object]:
    """A chdb client on a fresh database of the shared directory, dropped afterwards."""
    from metering.engine.clickhouse.connection import ChdbClient

    client = ChdbClient(chdb_dir, database=f"t_{uuid.uuid4().hex[:12]}")
    client.command(f"CREATE DATABASE IF NOT EXISTS `{client.database}`")
    try:
        yield client
    finally:
        client.command(f"DROP DATABASE IF EXISTS `{client.database}`")
