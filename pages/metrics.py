"""Billable metrics: the list of metrics in the store."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from metering import metrics
from workbench import state

st.title("Billable metrics")
rows = metrics.list_metrics(state.engine())
if not rows:
    st.info("No metrics yet.")
else:
    st.dataframe(
        pd.DataFrame(
            [{"Name": m.name, "Code": m.code, "Aggregation": m.aggregation.value, "Type": m.metric_type.value,
              "Unit": m.unit, "Last updated": m.updated_at} for m in rows]
        ),
        hide_index=True,
        width="stretch",
    )
