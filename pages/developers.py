"""Developers: the HTTP API's address and key, code that sends a metric's events, the error format."""

from __future__ import annotations

import streamlit as st

from workbench import developers, state

st.title("Developers")
developers.render(state.engine())
