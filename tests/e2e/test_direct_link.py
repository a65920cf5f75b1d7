"""A fresh server whose very first visit is a deep link still shows the app's navigation.

Streamlit treats a `pages/` folder as old auto-discovered pages until some run calls
st.navigation; app.py switches that off when the server imports it (see app.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.server import running_server

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (Debian's chromium package; .ci/run installs it)", allow_module_level=True)
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover
    pytest.skip("the playwright package is not installed (pip install -e '.[test]')", allow_module_level=True)


def test_first_visit_to_a_deep_link_gets_the_navigation(tmp_path):
    with running_server(tmp_path) as server, sync_playwright() as p:  # waits on /api/v1/health only
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{server.base_url}/developers")
            sidebar = page.get_by_test_id("stSidebar")
            # The navigation's sections and titles, not the file names of pages/.
            expect(sidebar.get_by_text("Billable metrics")).to_be_visible(timeout=30_000)
            expect(sidebar.get_by_text("Workspace", exact=True).first).to_be_visible()
            expect(sidebar.get_by_text("app", exact=True)).to_have_count(0)
            expect(page.get_by_role("heading", name="Developers")).to_be_visible()
        finally:
            browser.close()
