"""Audit log (admins): every change with who made it and when, filterable and exportable."""

from __future__ import annotations

import streamlit as st

from workbench import auditlog, auth, state

auth.gate()  # again here: a page file run on its own (a deep link) must not skip sign-in

st.title("Audit log")
st.caption("Who changed what, and when: metrics, plans, subscriptions, imports, deletions, API keys, reset, demo "
           "and workspace imports. Refused attempts are listed with the outcome denied.")
auditlog.render(state.engine())
