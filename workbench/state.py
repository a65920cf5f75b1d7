"""Shared app state: the cached engine and event frame, session defaults.

The engine and the frame cache are process-wide resources (`st.cache_resource`): every
session reads the same store, and the columnar frame is loaded once and then only extended
with new events. Call `clear_caches()` after anything that changes the store wholesale.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from sqlalchemy.engine import Engine

from metering import store
from metering.engine import Events, events_problem, stored_events
from metering.engine.frame import shared_frames
from workbench.text import md

SESSION_DEFAULTS: dict[str, Any] = {
    "editor:code": None,  # code of the metric being edited; None = a new metric
}


@st.cache_resource(show_spinner=False)
def _engine() -> Engine:
    return store.make_engine()


def engine() -> Engine:
    """The store's engine. When the events engine (METERING_EVENTS_URL) cannot be used, the page
    says why and stops there: nothing would be right without the events."""
    problem = events_problem()
    if problem:
        st.error(f"The events engine cannot be used: {md(problem)}. Set METERING_EVENTS_URL to a usable URL, or "
                 "unset it for the embedded engine, then restart the workbench.", icon=":material/error:")
        st.stop()
    return _engine()


def frame() -> Events:
    """The store's events now (the embedded engine reloads or extends its columns only when
    the store changed; the view is shared with the API, so events are held in memory once)."""
    return stored_events(engine())


def init_session() -> None:
    for key, value in SESSION_DEFAULTS.items():
        st.session_state.setdefault(key, value)


def clear_caches() -> None:
    st.cache_data.clear()
    shared_frames().clear()
