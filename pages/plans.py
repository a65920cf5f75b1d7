"""Plans: create and edit plans (charges per metric, quotas, fixed charges), the plan list, subscriptions."""

from __future__ import annotations

import streamlit as st

from workbench import auth, plans, state

auth.gate()  # again here: a page file run on its own (a deep link) must not skip sign-in

st.title("Plans")
st.caption("What customers pay: a base fee, fixed charges, a charge model per usage metric, quotas and included "
           "credit. Messages appear beside the fields; the price preview uses the engine's own arithmetic.")
plans.render(state.engine())
