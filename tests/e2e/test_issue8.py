"""Issue 8 in a real browser (the real server, Debian's Chromium): the metric editor's template
cards at 1024 and 1440 px wide (they broke letter by letter in seven squeezed columns), and the
API key's copy button (it copied the masked dots). Screenshots of both widths are saved under
test-artifacts/e2e/ (issue8_*.png)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (Debian's chromium package)", allow_module_level=True)
try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("the playwright package is not installed (pip install -e '.[test]')", allow_module_level=True)

from metering import metrics
from tests.e2e.test_journeys import TIMEOUT_MS, nav, open_app, settle
from tests.server import Server
from workbench.editor import TEMPLATE_CARD_PX

WIDTHS = (1024, 1440)


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def sized_page(request: pytest.FixtureRequest, browser: Any, live_server: Server) -> Iterator[Page]:
    """A page of the given width (tall enough for the whole editor), allowed to use the clipboard."""
    context = browser.new_context(viewport={"width": request.param, "height": 1300},
                                  permissions=["clipboard-read", "clipboard-write"])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def test_template_cards_read_well_at_1024_and_1440(sized_page: Page, live_server: Server, shot: Any) -> None:
    page = sized_page
    width = page.viewport_size["width"]
    open_app(page, live_server)
    nav(page, "Metric editor", "New billable metric")
    cards = page.locator("[class*='st-key-tplcard-']")
    expect(cards).to_have_count(len(metrics.TEMPLATES))
    page.locator(".st-key-tplcard-api_requests").get_by_role("button", name="Use").click()
    expect(page.locator(".st-key-tplcard-on-api_requests")).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    rows: set[float] = set()
    for i in range(cards.count()):
        card = cards.nth(i)
        box = card.bounding_box()
        assert box is not None
        assert box["width"] >= TEMPLATE_CARD_PX - 2, (i, box)  # a card keeps its width: it wraps, not squeezes
        rows.add(round(box["y"]))
        title = card.locator("strong").first
        line_height = title.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 24")
        title_box = title.bounding_box()
        assert title_box is not None and title_box["height"] <= 2 * line_height + 1, (i, title_box)  # whole words
        button = card.get_by_role("button")
        button_box = button.bounding_box()
        assert button_box is not None and button_box["height"] <= 48 and button_box["width"] > 2 * button_box["height"]
    # "API Requests" is written out on its own: never "Req/uest/s"
    name = page.locator(".st-key-tplcard-on-api_requests strong").first
    assert name.inner_text() == "API Requests"
    assert name.evaluate("e => e.getClientRects().length") <= 2  # at most one wrap, between the two words
    # 1440 px: the seven cards in one row; 1024 px: they wrap onto a second row (4 + 3)
    assert len(rows) == (1 if width == 1440 else 2), rows
    heights = {round(cards.nth(i).bounding_box()["height"]) for i in range(cards.count()) if round(cards.nth(i).bounding_box()["y"]) == min(rows)}
    assert len(heights) == 1, heights  # a row's cards are equally tall, their buttons on one line
    page.locator(".st-key-tplcards").scroll_into_view_if_needed()
    shot(page, f"issue8_editor_templates_{width}")


def test_the_copy_button_copies_the_real_key_never_the_dots(sized_page: Page, live_server: Server, shot: Any) -> None:
    page = sized_page
    width = page.viewport_size["width"]
    open_app(page, live_server)
    nav(page, "Developers")
    # Keys made before this session are listed by name and mask only: no code block, no copy button.
    expect(page.get_by_role("button", name="Create key")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator(".st-key-developers-key-plain")).to_have_count(0)
    expect(page.get_by_test_id("stCode").first).to_be_visible(timeout=TIMEOUT_MS)  # the page drawn, for the picture
    settle(page)
    shot(page, f"issue8_developers_masked_{width}")

    name = f"e2e-{width}"
    page.get_by_role("textbox", name="Name of a new key").fill(name)
    page.get_by_role("button", name="Create key").click()
    block = page.locator(".st-key-developers-key-plain").get_by_test_id("stCode")
    expect(block).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    shown = (block.locator("code").text_content() or "").strip()
    assert shown.startswith("mtr_") and "•" not in shown
    block.hover()
    copy = block.get_by_role("button")  # the code block's copy button
    expect(copy).to_have_count(1)
    copy.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == shown
    # the copied key is the workspace's key: the API takes it
    answer = requests.get(f"{live_server.base_url}/api/v1/metrics", headers={"Authorization": f"Bearer {copied}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    shot(page, f"issue8_developers_key_shown_{width}")
