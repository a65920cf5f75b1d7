"""The README's screenshot of the metric editor: `docs/editor.png`.

    .venv/bin/python bench/screenshot.py [--out docs/editor.png] [--width 1400] [--height 1000]

Starts the real app (`tests.server.running_server`: `streamlit run app.py` on a free local port
with a fresh temporary SQLite store), loads the demo workspace from the Workspace page, opens
the Metric editor, chooses the LLM Tokens quick template and saves a screenshot of the form
beside its previews over the demo's stored events. Chromium is Debian's (/usr/bin/chromium),
driven by Playwright; no browser is downloaded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.server import running_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
TIMEOUT_MS = 60_000


def settle(page) -> None:  # noqa: ANN001
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=TIMEOUT_MS)


def nav(page, title: str, heading: str | None = None) -> None:  # noqa: ANN001
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=heading or title, exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)


def take(out: Path, width: int, height: int) -> None:
    expect.set_options(timeout=TIMEOUT_MS)
    with tempfile.TemporaryDirectory(prefix="metering-screenshot-") as tmp, running_server(Path(tmp)) as server:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(server.base_url + "/")
                expect(page.get_by_role("heading", name="Billable metrics")).to_be_visible()
                settle(page)

                nav(page, "Workspace")
                page.get_by_role("button", name="Load demo workspace").click()
                expect(page.get_by_text("Loaded the demo workspace")).to_be_visible()
                settle(page)

                nav(page, "Metric editor", "New billable metric")
                page.locator(".st-key-tplcard-llm_tokens").get_by_role("button", name="Use").click()
                expect(page.locator(".st-key-tplcard-on-llm_tokens")).to_be_visible()
                settle(page)
                agg = page.locator(".st-key-panel-agg")
                expect(agg.get_by_text("stored events named llm.tokens")).to_be_visible()
                expect(agg.get_by_test_id("stVegaLiteChart").locator("canvas, svg.marks").first).to_be_visible()  # the chart is drawn
                expect(page.locator(".st-key-panel-event").get_by_test_id("stCode").locator("code")).to_be_visible()

                # More room for the editor: the sidebar folded, the page scrolled to the templates.
                page.get_by_test_id("stSidebar").hover()  # the fold button shows on hover
                page.get_by_role("button", name="Collapse sidebar").click()
                expect(page.get_by_test_id("stSidebar")).to_have_attribute("data-collapsed", "true")
                heading = page.get_by_role("heading", name="Quick templates")
                heading.evaluate("h => h.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(1500)  # charts finish their first draw
                # From the templates down to the by-model chart of the aggregation preview.
                top = heading.bounding_box()["y"] - 12
                chart = agg.get_by_test_id("stVegaLiteChart").bounding_box()
                bottom = chart["y"] + chart["height"] + 16
                print(f"clip {top:.0f}..{bottom:.0f} of {height}")
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), clip={"x": 0, "y": top, "width": width, "height": min(bottom, height) - top})
            finally:
                browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "editor.png")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1400, help="the viewport; the image is cut to the editor")
    args = parser.parse_args()
    take(args.out, args.width, args.height)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
