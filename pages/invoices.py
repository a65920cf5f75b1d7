"""Invoices: an invoice per customer for a period, plan comparison and a customer-facing view."""

from __future__ import annotations

import streamlit as st

from workbench import auth, invoices, state

auth.gate()  # again here: a page file run on its own (a deep link) must not skip sign-in

st.title("Invoices")
st.caption("Usage priced into invoices: every line shows its arithmetic. Pick who is billed under what and for which period.")
invoices.render(state.engine())
