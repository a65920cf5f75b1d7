"""Every page renders without an exception on an empty store."""

import pytest

from tests.app.conftest import page

PAGES = ["metrics", "editor", "plans", "events", "usage", "timeline", "alerts", "invoices", "backtest", "workspace", "developers", "audit"]


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_on_empty_store(app_engine, name):
    at = page(name)
    assert not at.exception, at.exception
