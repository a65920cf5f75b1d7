"""Audit log (admins): every change with who made it and when, filterable and exportable."""

from __future__ import annotations

import streamlit as st

from workbench import auditlog, state

st.title("Audit log")
st.caption("Who changed what, and when: metrics, plans, subscriptions, imports, deletions, API keys, reset, demo "
           "and workspace imports. Refused attempts are listed with the outcome denied.")
auditlog.render(state.engine())
