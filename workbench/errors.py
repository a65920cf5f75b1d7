"""Unexpected errors: logged on the server with an id, shown to the person as that id only.

`report` is the app's `st.App(on_script_error=...)` handler: it covers the page scripts, widget
callbacks and fragments. The traceback (with server paths and data) goes to the server log next
to the id; the page says only that something failed and which id to quote. `client.showErrorDetails
= "none"` (.streamlit/config.toml) hides details in any case the handler does not cover.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import streamlit as st
from streamlit.logger import get_logger

_LOG = get_logger("workbench.errors")


def new_id() -> str:
    """Short and quotable: the UTC date and time, then 6 random hex digits."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def report(exc: BaseException) -> bool:
    """Log the error with a new id and show the id; True: Streamlit shows nothing more."""
    error_id = new_id()
    _LOG.error("error %s: %s: %s", error_id, type(exc).__name__, exc, exc_info=exc)
    try:
        st.error(f"Something went wrong on the server (error id {error_id}). Nothing more is shown here; "
                 "quote this id to whoever runs the workbench: the details are in the server log.",
                 icon=":material/error:")
    except Exception:  # noqa: BLE001 - showing the message must not hide the error
        _LOG.exception("could not show error %s", error_id)
    return True
