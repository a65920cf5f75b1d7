"""Metric editor: a new metric or the one in `editor:code`; form on the left, live previews right."""

from __future__ import annotations

import streamlit as st

from metering import metrics
from workbench import auth, editor, state
from workbench.text import md, md_code

auth.gate()  # again here: a page file run on its own (a deep link) must not skip sign-in

engine = state.engine()
editor.ensure_loaded(engine)
editor.inject_css()

code = editor.editing()
if code:
    current = metrics.get_metric(engine, code=code)
    st.title(f"Edit metric · {md(current.name if current else code)}")
    st.caption(f"Editing {md_code(code)}. Changes apply when you save; the previews follow the form as you type.")
else:
    st.title("New billable metric")
    st.caption("Start from a quick template or fill the form; the previews on the right follow it as you type.")

editor.templates_row(engine)
editor.recheck_store()  # a full run (page entry, template): look for new events once
editor.editor_body()
