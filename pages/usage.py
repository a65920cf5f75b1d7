"""Usage: a metric's aggregated usage over a window, by group, per day and by customer."""

from __future__ import annotations

import streamlit as st

from workbench import state, usage

st.title("Usage")
usage.render(state.engine())
