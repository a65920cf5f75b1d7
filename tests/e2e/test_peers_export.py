"""The Developers page's export to other systems, in a real browser (Chromium via Playwright) on
the real server: the compatibility table, the copyable payloads and the downloaded document are
the engine's (`metering.peers.export` on the server's own database), at 1024 and 1440 px; and
the Workspace page imports the downloaded Lago document back.

The Events page's download of stored events as CloudEvents is the streamed converter's output.

Screenshots: test-artifacts/e2e/d*_developers_export_*.png, d3_workspace_import_lago.png,
d4_events_export.png.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)
try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover
    pytest.skip("the playwright package is not installed", allow_module_level=True)

from sqlalchemy.engine import Engine

from metering import metrics, peers, store
from metering.peers import cloudevents
from metering.peers.stored import stored_event_batches
from metering.workspace import parse_workspace, workspace_from_store
from tests.e2e.test_journeys import TIMEOUT_MS, load_demo_via_ui, nav, open_app, settle
from tests.server import Server

Shot = Callable[[Page, str], Path]
SECTION = "Export to Lago, OpenMeter, Stripe, Orb"


def export_section(page: Page) -> Any:
    heading = page.get_by_role("heading", name=SECTION)
    expect(heading).to_be_visible(timeout=TIMEOUT_MS)
    return heading


def static_table(page: Page, column: str) -> list[list[str]]:
    """The rows (header first) of the st.table that has `column`."""
    table = page.get_by_test_id("stTable").filter(has=page.get_by_role("columnheader", name=column)).locator("table")
    expect(table).to_have_count(1, timeout=TIMEOUT_MS)
    return table.evaluate("t => Array.from(t.querySelectorAll('tr')).map("
                          "  tr => Array.from(tr.querySelectorAll('th, td')).map(c => (c.textContent || '').trim()))")


def choose_target(page: Page, label: str) -> None:
    page.locator(".st-key-developers-export-target").get_by_role("radio", name=label, exact=True).click()
    expect(page.get_by_role("button", name=f"Download {label} export (JSON)")).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)


@pytest.mark.parametrize("width", [1440, 1024])
def test_developers_export_shows_the_engines_translation(browser: Any, live_server: Server, store_engine: Engine,
                                                         shot: Shot, tmp_path: Path, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 1400}, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        open_app(page, live_server)
        if metrics.get_metric(store_engine, code="llm_tokens") is None:
            load_demo_via_ui(page)
        nav(page, "Developers")
        heading = export_section(page)
        ws = workspace_from_store(store_engine)

        # Lago (the default): what does not translate, with the engine's reasons, in its order.
        expected = peers.export(ws, "lago")
        rows = static_table(page, "Why not")
        assert rows[0] == ["Workbench item", "Why not"]
        assert rows[1:] == [[u.item, u.reason] for u in expected.unsupported]
        heading.evaluate("h => h.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
        shot(page, f"d1_developers_export_lago_{width}")

        # Stripe: the table follows the target; the download is the engine's document.
        choose_target(page, "Stripe")
        expected = peers.export(ws, "stripe")
        expect(page.get_by_text(f"does not translate ({len(expected.unsupported)})")).to_be_visible(timeout=TIMEOUT_MS)
        assert static_table(page, "Why not")[1:] == [[u.item, u.reason] for u in expected.unsupported]
        with page.expect_download() as info:
            page.get_by_role("button", name="Download Stripe export (JSON)").click()
        path = tmp_path / "stripe.json"
        info.value.save_as(path)
        assert json.loads(path.read_text()) == expected.to_json()

        # A payload shown for copying is exactly the engine's payload.
        tab = page.get_by_role("tab", name=f"billing.meter ({sum(r.kind == 'billing.meter' for r in expected.resources)})")
        tab.click()
        block = page.get_by_test_id("stCode").filter(has_text='"default_aggregation"').first.locator("code")
        expect(block).to_be_visible(timeout=TIMEOUT_MS)
        first_meter = next(r.payload for r in expected.resources if r.kind == "billing.meter")
        assert json.loads(block.text_content() or "") == first_meter
        block.evaluate("b => b.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(300)
        shot(page, f"d2_developers_export_stripe_payloads_{width}")
    finally:
        context.close()


def test_workspace_imports_a_lago_export_back(page: Page, live_server: Server, store_engine: Engine, shot: Shot,
                                             tmp_path: Path) -> None:
    open_app(page, live_server)
    if metrics.get_metric(store_engine, code="llm_tokens") is None:
        load_demo_via_ui(page)
    ws = workspace_from_store(store_engine)
    doc = peers.export(ws, "lago", plan="starter").to_json()
    file = tmp_path / "lago-starter.json"
    file.write_text(json.dumps(doc))
    nav(page, "Workspace")
    page.locator(".st-key-workspace-peers-upload-lago input[type=file]").set_input_files(str(file))
    settle(page)
    expected = peers.import_definitions("lago", [(file.name, file.read_bytes())])
    expect(page.get_by_text(f"Valid Lago definitions: {len(expected['metrics'])} metrics")).to_be_visible(
        timeout=TIMEOUT_MS)
    page.get_by_role("heading", name="Import from Lago or OpenMeter").evaluate("h => h.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    shot(page, "d3_workspace_import_lago")
    # Merge: Lago turned the SMS quota metric into a plain metric, which the kept plans' quotas
    # cannot use: refused, nothing changes.
    page.locator(".st-key-workspace-peers-mode").get_by_text("Merge", exact=True).click()
    settle(page)
    page.get_by_role("button", name="Import definitions").click()
    expect(page.get_by_text("Not imported: merged with the workspace already here")).to_be_visible(timeout=TIMEOUT_MS)
    assert workspace_from_store(store_engine) == ws
    # Replace: the store holds what the import read.
    page.locator(".st-key-workspace-peers-mode").get_by_text("Replace", exact=True).click()
    settle(page)
    page.get_by_role("button", name="Import definitions").click()
    expect(page.get_by_text("Imported Lago definitions (replace)")).to_be_visible(timeout=TIMEOUT_MS)
    after = workspace_from_store(store_engine)
    assert after.plans == [parse_workspace(expected).plan("starter")]
    assert sorted(m.code for m in after.metrics) == sorted(m["code"] for m in expected["metrics"])


def test_events_page_downloads_stored_events_as_cloudevents(page: Page, live_server: Server, store_engine: Engine,
                                                            shot: Shot, tmp_path: Path) -> None:
    open_app(page, live_server)
    if metrics.get_metric(store_engine, code="llm_tokens") is None:
        load_demo_via_ui(page)
    nav(page, "Events")
    page.get_by_role("tab", name="Stored events").click()
    settle(page)
    button = page.get_by_role("button", name=re.compile(r"^Download [\d,]+ events$"))
    expect(button).to_be_visible(timeout=TIMEOUT_MS)
    button.evaluate("b => b.scrollIntoView({block: 'center'})")
    shot(page, "d4_events_export")
    with page.expect_download(timeout=120_000) as info:
        button.click()
    path = tmp_path / "events.jsonl"
    info.value.save_as(path)
    expected = "".join(cloudevents.cloudevents(stored_event_batches(store_engine)))
    assert path.read_text(encoding="utf-8") == expected
    assert expected.count("\n") == store.event_count(store_engine)
