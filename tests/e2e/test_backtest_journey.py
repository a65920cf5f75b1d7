"""The backtest journey in a real browser (Debian's Chromium, Playwright, the real server):
pick plans and months, duplicate a plan as a draft, change its price and see the totals move,
export the CSV and JSON, and print the customer letter to PDF (only the letter is printed).

Every number asserted is computed here by the engine (`metering.backtest`) on the server's own
database. Screenshots at 1440 and 1024 px wide, and the printed letter rendered by pdftoppm, are
saved under test-artifacts/e2e/.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS, CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)
try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("the playwright package is not installed", allow_module_level=True)

from sqlalchemy.engine import Engine

from metering import backtest, demo
from metering.frame import EventFrame
from metering.money import format_money
from metering.workspace import workspace_from_store
from tests.e2e.test_journeys import metric_value, nav, open_app, settle
from tests.server import Server

PLANS = ["starter", "growth", "scale"]
# The demo's three months of history end now.
FIRST, LAST = (f"{y:04d}-{m:02d}" for y, m in (demo.span().months[0], demo.span().months[-1]))


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label` (exactly)."""
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True))
    wanted = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):  # a click that lands while the app reruns only focuses the box
        box.click()
        try:
            wanted.wait_for(state="visible", timeout=3_000)
            break
        except Exception:  # noqa: BLE001 - try again
            page.keyboard.press("Escape")
            settle(page)
    wanted.click()
    settle(page)


def engine_backtest(engine: Engine, plans: list) -> backtest.Backtest:
    ws = workspace_from_store(engine)
    return backtest.run(EventFrame.from_store(engine), ws, plans, backtest.month_range(FIRST, LAST))


def test_backtest_journey(page: Page, live_server: Server, store_engine: Engine, shot, tmp_path: Path) -> None:
    demo.load_demo(store_engine)
    page.set_viewport_size({"width": 1440, "height": 2000})
    open_app(page, live_server)
    nav(page, "Backtest")
    choose(page, "From", FIRST)
    choose(page, "To", LAST)
    ws = workspace_from_store(store_engine)
    bt = engine_backtest(store_engine, [ws.plan(c) for c in PLANS])
    for name, code in (("Starter · baseline", "starter"), ("Growth", "growth"), ("Scale", "scale")):
        expect(metric_value(page, name)).to_have_text(format_money(bt.totals[code], "USD"))
    shot(page, "backtest_1440")
    page.set_viewport_size({"width": 1024, "height": 2000})
    settle(page)
    shot(page, "backtest_1024")
    page.set_viewport_size({"width": 1440, "height": 2000})

    # duplicate Growth as a draft: it joins the comparison at Growth's total
    page.get_by_text("Drafts — try a price change without saving it").click()
    choose(page, "Plan to copy", "Growth (growth)")
    page.get_by_role("button", name="Duplicate as draft").click()
    settle(page)
    expect(metric_value(page, "Growth (draft)")).to_have_text(format_money(bt.totals["growth"], "USD"))

    # change the draft's base fee: the totals move, nothing is saved
    draft_box = page.locator(".st-key-backtest-draft-growth_draft")
    fee = draft_box.get_by_role("textbox", name="Base fee (USD)")
    fee.fill("99")
    fee.press("Enter")
    settle(page)
    draft = ws.plan("growth").model_copy(update={"code": "growth_draft", "name": "Growth (draft)", "base_fee": Decimal(99)})
    moved = engine_backtest(store_engine, [*(ws.plan(c) for c in PLANS), draft])
    assert moved.totals["growth_draft"] != bt.totals["growth"]
    expect(metric_value(page, "Growth (draft)")).to_have_text(format_money(moved.totals["growth_draft"], "USD"))
    assert "growth_draft" not in {p.code for p in workspace_from_store(store_engine).plans}
    shot(page, "backtest_draft_1440")

    # and a unit price: storage GB (the third charge) 0.08 → 0.5
    price = draft_box.get_by_role("textbox", name="Unit price (USD)").nth(1)
    price.fill("0.5")
    price.press("Enter")
    settle(page)
    charges = [c.model_copy(update={"unit_price": Decimal("0.5")}) if c.metric == "storage_gb" else c for c in draft.charges]
    draft = draft.model_copy(update={"charges": charges})
    moved = engine_backtest(store_engine, [*(ws.plan(c) for c in PLANS), draft])
    expect(metric_value(page, "Growth (draft)")).to_have_text(format_money(moved.totals["growth_draft"], "USD"))

    # exports: the engine's CSV (one row per customer × month × plan) and the contract's JSON
    page.get_by_role("tab", name="Export").click()
    settle(page)
    with page.expect_download() as got:
        page.get_by_role("button", name="Backtest (CSV)").click()
    text = Path(got.value.path()).read_text(encoding="utf-8")
    assert text == moved.to_csv()
    assert len(list(csv.DictReader(io.StringIO(text)))) == len(moved.customers) * 3 * 4
    with page.expect_download() as got:
        page.get_by_role("button", name="Backtest (JSON)").click()
    assert json.loads(Path(got.value.path()).read_text(encoding="utf-8")) == moved.to_json()

    # the customer letter prints alone
    page.get_by_role("tab", name="Customer letter").click()
    settle(page)
    choose(page, "Customer", "cus_acme")
    letter = page.locator(".bt-letter")
    expect(letter).to_contain_text(format_money(moved.customer_totals["growth_draft"]["cus_acme"], "USD"))
    shot(page, "backtest_letter_1440")
    pdf = ARTIFACTS / "backtest_letter.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    if not shutil.which("pdftoppm") or not shutil.which("pdftotext"):
        pytest.skip("poppler-utils (pdftoppm, pdftotext) is not installed: the PDF was written but not checked")
    printed = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "PREPARED FOR" in printed.upper() and "cus_acme" in printed and "would have paid" in printed
    assert format_money(moved.customer_totals["scale"]["cus_acme"], "USD") in printed
    for hidden in ("Billable metrics", "Drafts", "Plans (the first is the baseline)", "Customer detail", "Print / save"):
        assert hidden not in printed, hidden
    pages = printed.count("\f")
    assert pages == 1, pages
    subprocess.run(["pdftoppm", "-png", "-r", "70", "-singlefile", str(pdf), str(ARTIFACTS / "backtest_letter_pdf")],
                   check=True)
    assert (ARTIFACTS / "backtest_letter_pdf.png").stat().st_size > 10_000
