"""Events: upload files, simulate usage, browse what is stored and delete imports."""

from __future__ import annotations

import streamlit as st

from workbench import auth, events, peers, state

auth.gate()  # again here: a page file run on its own (a deep link) must not skip sign-in

st.title("Events")
engine = state.engine()
upload, simulator, stored = st.tabs(["Upload", "Simulate", "Stored events"])
with upload:
    events.render_upload(engine)
with simulator:
    events.render_simulator(engine)
with stored:
    events.render_browser(engine)
    peers.render_events_export(engine)
    st.subheader("Imports")
    events.render_imports(engine)
