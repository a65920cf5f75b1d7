"""Real-browser fixtures: the real server (`streamlit run app.py`) and Debian's Chromium via Playwright.

* `live_server` (module scope): `tests.server.running_server` — the real app on a free
  127.0.0.1 port with DATABASE_URL a fresh temporary SQLite file and a known METERING_API_KEY —
  and, beyond its wait for GET /api/v1/health, a wait for the root page to answer too.
* `store_engine`: an engine on the server's own database (`metering.store.make_engine(url)`),
  so tests compute the engine's numbers on exactly the events the pages show.
* `browser` (module scope): Chromium from /usr/bin/chromium (browser downloads do not work
  here; `playwright install` is never run), headless.
* `page`: a fresh browser context and page per test (1400 × 2000, so the long pages fit one
  screenshot: the app scrolls inside its own container, so a full-page shot is the viewport).
* `shot(page, name)`: saves `test-artifacts/e2e/<name>.png`.

When /usr/bin/chromium or the playwright package is missing the test module skips itself
(see test_journeys.py); these fixtures import playwright only when they run.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from metering import store
from tests.server import Server, running_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 2000}
ROOT_PAGE_TIMEOUT = 30.0
EXPECT_TIMEOUT_MS = 30_000


def wait_for_root_page(base_url: str, timeout: float = ROOT_PAGE_TIMEOUT) -> None:
    """GET / until the app's HTML page answers (the pages are served next to the API)."""
    deadline = time.monotonic() + timeout
    last: str = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base_url + "/", timeout=5) as response:
                body = response.read()
                if response.status == 200 and b"<html" in body.lower():
                    return
                last = f"HTTP {response.status}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"the root page of {base_url} did not answer within {timeout:.0f} s ({last})")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("e2e-server")) as srv:
        wait_for_root_page(srv.base_url)
        yield srv


@pytest.fixture(scope="module")
def store_engine(live_server: Server) -> Iterator[Engine]:
    engine = store.make_engine(live_server.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)  # Streamlit reruns: poll up to 30 s, not Playwright's 5 s
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, live_server: Server) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def shot() -> Callable[[Any, str], Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return save
