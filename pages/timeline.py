"""Timeline: one metric under one plan for one customer, period by period (usage, quota, carryover)."""

from __future__ import annotations

import streamlit as st

from workbench import state, timeline

st.title("Timeline")
st.caption("How a metric behaves over billing periods under a plan: usage, available quota, carryover, "
           "rejected events, overage and the amount billed.")
timeline.render(state.engine())
