"""Usage: a metric's aggregated usage over a window, by group, per day and by customer."""

from __future__ import annotations

import streamlit as st

from workbench import auth, state, usage

auth.gate()  # again here: a page file run on its own (a deep link) must not skip sign-in

st.title("Usage")
usage.render(state.engine())
