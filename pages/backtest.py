"""Backtest: plans priced over months of real usage, who pays more and why, drafts with live impact."""

from __future__ import annotations

import streamlit as st

from workbench import backtest, state

st.title("Backtest")
st.caption("Price the same usage under several plans, month by month, exactly as the invoices are: revenue, "
           "who pays more or less and why, a guardrail, and drafts whose every change shows at once.")
backtest.render(state.engine())
