"""Alerts: usage alerts recorded when quotas' thresholds were crossed, their CSV, and the webhook."""

from __future__ import annotations

import streamlit as st

from workbench import alerts, auth, state

auth.gate()  # again here: a page file run on its own (a deep link) must not skip sign-in

st.title("Alerts")
st.caption("Usage alerts: when events sent to the API take a subscriber's usage to one of its quota's alert "
           "thresholds (a percentage of the period's available units, set on the Plans page), an alert is recorded "
           "once per period — listed here and by GET /api/v1/alerts — and POSTed to the webhook, if one is set.")
alerts.render(state.engine())
