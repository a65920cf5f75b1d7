"""Developers: the HTTP API's address and key, code that sends a metric's events, the error format."""

from __future__ import annotations

import streamlit as st

from workbench import auth, developers, state

auth.gate()  # again here: a page file run on its own (a deep link) must not skip sign-in

st.title("Developers")
developers.render(state.engine())
