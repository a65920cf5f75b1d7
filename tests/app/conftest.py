"""AppTest fixtures: every page test gets a fresh SQLite store and empty Streamlit caches."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from metering import demo, store
from metering.frame import shared_frames

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30


def _use_store(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Point the app at the SQLite file `path` (DATABASE_URL) with empty Streamlit caches."""
    url = f"sqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("METERING_DATA_DIR", str(tmp_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    shared_frames().clear()
    engine = store.make_engine(url)
    yield engine
    st.cache_data.clear()
    st.cache_resource.clear()
    shared_frames().clear()
    engine.dispose()


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """DATABASE_URL → a fresh SQLite file; the app's cached engine and frames are dropped."""
    yield from _use_store(tmp_path / "app.db", tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace loaded once into a SQLite file (copied for each test)."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    engine = store.make_engine(f"sqlite:///{path}")
    demo.load_demo(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def demo_engine(demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A fresh copy of the loaded demo workspace as the app's store."""
    path = tmp_path / "app.db"
    shutil.copy(demo_db, path)
    shutil.copytree(f"{demo_db}.events", f"{path}.events")  # the event segments beside it
    yield from _use_store(path, tmp_path, monkeypatch)


def demo_months() -> list[tuple[int, int]]:
    """The loaded demo's three months, oldest first: its history ends now (two whole months and
    the current one so far), so pages that start "from now" open on these."""
    return list(demo.span().months)


def page(name: str) -> AppTest:
    """An AppTest for one page file (pages/<name>.py), run through the app's navigation."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    if name != "metrics":
        at.switch_page(f"pages/{name}.py")
        at.run()
    return at
