"""Entry of the pricing workbench: page config, shared state defaults and navigation."""

from __future__ import annotations

import streamlit as st

from metering.access import Action
from workbench import auth, state

PAGES = {
    "Design": [
        ("pages/metrics.py", "Billable metrics", ":material/straighten:"),
        ("pages/editor.py", "Metric editor", ":material/edit_note:"),
        ("pages/plans.py", "Plans", ":material/sell:"),
    ],
    "Usage": [
        ("pages/events.py", "Events", ":material/upload_file:"),
        ("pages/usage.py", "Usage", ":material/monitoring:"),
        ("pages/timeline.py", "Timeline", ":material/timeline:"),
        ("pages/alerts.py", "Alerts", ":material/notifications:"),
    ],
    "Billing": [
        ("pages/invoices.py", "Invoices", ":material/receipt_long:"),
        ("pages/backtest.py", "Backtest", ":material/query_stats:"),
    ],
    "Workspace": [
        ("pages/workspace.py", "Workspace", ":material/folder_open:"),
        ("pages/developers.py", "Developers", ":material/code:"),
    ],
}
ADMIN_PAGES = {"Workspace": [("pages/audit.py", "Audit log", ":material/policy:")]}


def main() -> None:
    st.set_page_config(page_title="Pricing workbench", page_icon=":material/receipt_long:", layout="wide")
    state.init_session()
    user = auth.gate()  # with sign-in configured, nothing below runs for a visitor without a role
    pages = {section: list(entries) for section, entries in PAGES.items()}
    if auth.can(Action.view_audit_log):
        for section, entries in ADMIN_PAGES.items():
            pages[section].extend(entries)
    navigation = {
        section: [
            st.Page(path, title=title, icon=icon, default=(path == "pages/metrics.py"))
            for path, title, icon in entries
        ]
        for section, entries in pages.items()
    }
    page = st.navigation(navigation)
    auth.sidebar(user)
    page.run()


if __name__ == "__main__":
    # Executed as the Streamlit script (each session's run, and AppTest).
    main()
else:
    # Imported as a module: `streamlit run app.py` finds this `st.App` (by reading the file)
    # and serves it with uvicorn, the pages and the HTTP API (/api/v1, metering.api) together.
    import os

    from streamlit.runtime.pages_manager import PagesManager

    from metering import api
    from metering.api.headers import limit_parser
    from workbench import errors

    auth.check_listening_at_start()  # without sign-in: 127.0.0.1 only, unless explicitly allowed
    os.umask(0o077)  # whatever the server writes is its owner's only (the store files are 0600 anyway)
    limit_parser()  # request heads over 64 KiB are refused while uvicorn reads them (metering/api/headers.py)
    # pages/ holds st.Page files for st.navigation, not Streamlit's old auto-discovered pages.
    # Until some run calls st.navigation, Streamlit assumes the old kind, so a fresh server's
    # first visit straight to /developers would run that file alone, without this entry.
    PagesManager.uses_pages_directory = False

    api_routes = api.api_routes()
    app = st.App(__file__, routes=api_routes, middleware=api.middleware(api_routes), lifespan=api.lifespan,
                 on_script_error=errors.report)
