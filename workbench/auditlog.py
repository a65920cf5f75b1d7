"""The Audit log page (admins): who changed what and when, filtered, and the CSV export.

The rows come from `metering.audit.entries`; the table is a dataframe (plain text: names and
targets are user text) and the download goes through `audit.to_csv` (spreadsheet-safe).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from metering import audit
from metering.access import Action
from workbench import auth

KEY = "audit:"
ANYONE, ANY_ACTION = "(everyone)", "(every action)"
MAX_ROWS = 5_000


def frame(rows: list[audit.Entry]) -> pd.DataFrame:
    return pd.DataFrame([r.row() for r in rows], columns=audit.COLUMNS)


def _window(value: object) -> tuple[datetime | None, datetime | None]:
    if isinstance(value, (list, tuple)) and value:
        first, last = value[0], value[-1]
    elif isinstance(value, date):
        first = last = value
    else:
        return None, None
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return start, end


def render(engine: Engine) -> None:
    if not auth.allowed(Action.view_audit_log):
        return
    cols = st.columns([1.1, 1.5, 1.5])
    who = cols[0].selectbox("Who", [ANYONE, *audit.actors(engine)], key=KEY + "actor")
    what = cols[1].selectbox("Action", [ANY_ACTION, *audit.ACTIONS], key=KEY + "action",
                             format_func=lambda a: a if a == ANY_ACTION else f"{a} — {audit.ACTIONS[a]}")
    days = cols[2].date_input("Dates (UTC)", value=[], key=KEY + "dates", format="YYYY-MM-DD",
                              help="Empty: every date. The last day is included.")
    since, until = _window(days)
    rows = audit.entries(engine, actor=None if who == ANYONE else who, action=None if what == ANY_ACTION else what,
                         since=since, until=until, limit=MAX_ROWS + 1)
    shown = rows[:MAX_ROWS]
    st.caption(f"{len(shown):,} entr{'y' if len(shown) == 1 else 'ies'}, newest first"
               + (f" (the newest {MAX_ROWS:,}; narrow the filters to see older ones)" if len(rows) > MAX_ROWS else "")
               + ". Times are UTC.")
    st.download_button("Download CSV", audit.to_csv(shown), file_name=f"audit-log-{datetime.now(UTC):%Y%m%d}.csv",
                       mime="text/csv", icon=":material/download:", key=KEY + "csv", on_click="ignore",
                       disabled=not shown)
    st.dataframe(frame(shown), hide_index=True, width="stretch", key=KEY + "table",
                 column_config={"detail": st.column_config.TextColumn("detail", width="large")})
