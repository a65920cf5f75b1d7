"""Timeline: one metric under one plan for one customer, period by period (usage, quota, carryover)."""

from __future__ import annotations

import streamlit as st

from workbench import auth, state, timeline

auth.gate()  # again here: a page file run on its own (a deep link) must not skip sign-in

st.title("Timeline")
st.caption("How a metric behaves over billing periods under a plan: usage, available quota, carryover, "
           "rejected events, overage and the amount billed.")
timeline.render(state.engine())
