"""AppTest fixtures: every page test gets a fresh SQLite store and empty Streamlit caches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from metering import store

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """DATABASE_URL → a fresh SQLite file; the app's cached engine and frames are dropped."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("METERING_DATA_DIR", str(tmp_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    engine = store.make_engine(url)
    yield engine
    st.cache_data.clear()
    st.cache_resource.clear()
    engine.dispose()


def page(name: str) -> AppTest:
    """An AppTest for one page file (pages/<name>.py), run through the app's navigation."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    if name != "metrics":
        at.switch_page(f"pages/{name}.py")
        at.run()
    return at
