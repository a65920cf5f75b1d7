"""CSV downloads of the tables the pages show, written spreadsheet-safe (`metering.csvsafe`).

Streamlit's own table export (the download icon on st.dataframe) writes whatever the cells hold,
so it is switched off (`client.disableDataExport`, .streamlit/config.toml) and these buttons
take its place where a table is worth taking away.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from metering import csvsafe


def csv_text(frame: pd.DataFrame) -> str:
    return csvsafe.frame_to_csv(frame)


def csv_button(label: str, frame: pd.DataFrame, *, file_name: str, key: str, container: Any = None) -> None:
    """A download button for `frame` as safe CSV (disabled when the table is empty)."""
    target = container if container is not None else st
    target.download_button(label, csv_text(frame), file_name=file_name, mime="text/csv", key=key,
                           icon=":material/download:", on_click="ignore", disabled=frame.empty)
