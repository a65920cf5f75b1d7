"""Workspace: load the demo, export and import the workspace file, timezone, reset."""

from __future__ import annotations

import streamlit as st

from workbench import auth, state, workspace

auth.gate()  # again here: a page file run on its own (a deep link) must not skip sign-in

st.title("Workspace")
st.caption("The whole pricing scenario — metrics, plans, subscriptions — as one file you can save, share and load; "
           "or start from the demo.")
workspace.render(state.engine())
