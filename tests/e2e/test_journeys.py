"""End-to-end journeys in a real browser: Debian's Chromium driven by Playwright, against the
real server (`streamlit run app.py`, the pages and the HTTP API on one port).

(a) load the demo workspace → a metric from the LLM Tokens template → its aggregation preview
    over the stored events → save → the invoice totals on the Invoices page;
(b) upload a sample CSV with bad rows → the rejected rows with their line numbers;
(c) the snippets shown (metric editor and Developers page) are the ones the engine generates,
    and the shown code, run as it is, stores its event.

Every number asserted is computed here by the engine (`metering.*`) on the server's own
database. Each journey saves screenshots under test-artifacts/e2e/.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (Debian's chromium package; .ci/run installs it)", allow_module_level=True)
try:
    from playwright.sync_api import Locator, Page, expect
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("the playwright package is not installed (pip install -e '.[test]')", allow_module_level=True)

from sqlalchemy.engine import Engine

from metering import aggregation, demo, ingest, invoices, metrics, preview, snippets, store
from metering.frame import EventFrame
from metering.models import MetricCreate
from metering.money import format_money
from metering.workspace import workspace_from_store
from tests.server import Server

ROOT = Path(__file__).resolve().parents[2]
BAD_ROWS = ROOT / "sample_events" / "bad_rows.csv"
BAD_LINES = [5, 10, 14, 20, 24, 29]  # sample_events/README.md: six bad rows (and one duplicate)
TIMEOUT_MS = 30_000
Shot = Callable[[Page, str], Path]


# =========================================================================== helpers


def settle(page: Page) -> None:
    """Give a rerun time to start, then wait until Streamlit's "running" widget is gone."""
    page.wait_for_timeout(250)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=TIMEOUT_MS)


def open_app(page: Page, server: Server) -> None:
    page.goto(server.base_url + "/")
    expect(page.get_by_role("heading", name="Billable metrics")).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)


def nav(page: Page, title: str, heading: str | None = None) -> None:
    """Go to a page by its sidebar link, as a person would."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=heading or title, exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)


def metric_value(scope: Page | Locator, label: str) -> Locator:
    """The value of the `st.metric` whose label is `label`."""
    page = scope if isinstance(scope, Page) else scope.page
    label_box = page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)  # relative to each metric
    box = scope.get_by_test_id("stMetric").filter(has=label_box)
    return box.get_by_test_id("stMetricValue")


def table_rows(frame: Locator) -> list[list[str]]:
    """The cells of an `st.dataframe` (header first), from the grid's accessibility table
    (the cells themselves are drawn on a canvas)."""
    expect(frame.locator("table")).to_have_count(1, timeout=TIMEOUT_MS)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:  # the grid fills its table after its first draw
        rows = frame.locator("table").evaluate(
            "t => Array.from(t.querySelectorAll('tr')).map("
            "  tr => Array.from(tr.querySelectorAll('th, td')).map(c => (c.textContent || '').trim()))"
        )
        if len(rows) > 1 or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def shown_code(panel: Locator, tab: str) -> str:
    """Click a tab of a code panel and return the code block shown under it."""
    panel.get_by_role("tab", name=tab, exact=True).click()
    block = panel.get_by_role("tabpanel").get_by_test_id("stCode").locator("code")
    expect(block).to_be_visible(timeout=TIMEOUT_MS)
    return block.text_content() or ""


def as_shown(code: str) -> str:
    """A code block shows its text without the final newline."""
    return code.rstrip("\n")


def load_demo_via_ui(page: Page) -> None:
    """Workspace page → Load demo workspace (confirming the replacement if the store is not empty)."""
    nav(page, "Workspace")
    page.get_by_role("button", name="Load demo workspace").click()
    confirm = page.get_by_role("button", name="Replace with demo")
    done = page.get_by_text("Loaded the demo workspace")
    expect(confirm.or_(done)).to_be_visible(timeout=TIMEOUT_MS)
    if confirm.is_visible():
        confirm.click()
    expect(done).to_be_visible(timeout=60_000)
    settle(page)


def engine_frame(engine: Engine) -> EventFrame:
    return EventFrame.from_store(engine)


def template_metric(engine: Engine, key: str = "llm_tokens") -> MetricCreate:
    """The metric the editor builds from a quick template (the code made unique, as the editor does)."""
    form = metrics.TEMPLATES[key].form()
    return MetricCreate.model_validate({**form, "code": metrics.unique_code(engine, form["name"])})


def event_count(engine: Engine, **where: str) -> int:
    fields = {"event_name": 1, "customer_id": 2}
    return sum(all(row[fields[k]] == v for k, v in where.items()) for row in store.event_rows(engine))


# =========================================================================== (a) demo → metric → invoice


def test_demo_metric_preview_and_invoice_total(page: Page, live_server: Server, store_engine: Engine, shot: Shot) -> None:
    open_app(page, live_server)
    load_demo_via_ui(page)

    # The workspace summary shows what the store now holds.
    demo_events = store.event_count(store_engine)
    assert demo_events > 50_000
    expect(metric_value(page, "Events")).to_have_text(preview.fmt(demo_events))
    expect(metric_value(page, "Metrics")).to_have_text(preview.fmt(len(metrics.list_metrics(store_engine))))
    shot(page, "a1_demo_loaded")

    # A new metric from the LLM Tokens template: the form is filled in, the preview reads the stored events.
    nav(page, "Metric editor", "New billable metric")
    expected_metric = template_metric(store_engine)
    assert expected_metric.code == "llm_tokens_2"  # the demo already has llm_tokens
    page.locator(".st-key-tplcard-llm_tokens").get_by_role("button", name="Use").click()
    expect(page.locator(".st-key-tplcard-on-llm_tokens")).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    expect(page.get_by_role("textbox", name="Name *", exact=True)).to_have_value("LLM Tokens")
    expect(page.get_by_role("textbox", name="Code *", exact=True)).to_have_value(expected_metric.code)
    expect(page.get_by_role("textbox", name="Unit *", exact=True)).to_have_value("tokens")
    expect(page.get_by_role("textbox", name="Value property *", exact=True)).to_have_value("tokens")

    result = aggregation.aggregate(engine_frame(store_engine), expected_metric)
    assert result.events > 1_000 and result.value > 0
    panel = page.locator(".st-key-panel-agg")
    expect(panel.get_by_text(f"on {preview.fmt(result.events)} stored events named llm.tokens · All time")).to_be_visible(
        timeout=TIMEOUT_MS)
    expect(metric_value(panel, "Value (tokens)")).to_have_text(preview.fmt(result.value))
    expect(metric_value(panel, "Events")).to_have_text(preview.fmt(result.events))
    expect(metric_value(panel, "Skipped")).to_have_text(preview.fmt(result.skipped))
    # The breakdown by model: every group the engine finds, with its exact value.
    groups = table_rows(panel.get_by_test_id("stDataFrame"))
    header, body = groups[0], groups[1:]
    assert header[:2] == ["model", "value"], header
    shown_groups = {row[0]: row[1] for row in body}
    expected_groups = {g.group["model"] or "null": preview.fmt(g.value) for g in result.groups}
    assert shown_groups == expected_groups
    shot(page, "a2_editor_llm_tokens_preview")

    # Save: back on the list with the new metric and its usage over every stored event.
    page.get_by_role("button", name="Create metric").click()
    expect(page.get_by_role("heading", name="Billable metrics")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text(f"Saved LLM Tokens ({expected_metric.code}).")).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    saved = metrics.get_metric(store_engine, code=expected_metric.code)
    assert saved is not None
    assert saved.model_dump(include=set(MetricCreate.model_fields)) == expected_metric.model_dump()
    row = page.locator(".st-key-metrics-list [data-testid='stHorizontalBlock']").filter(
        has=page.get_by_text(expected_metric.code, exact=True))
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"{preview.fmt(result.value)} tokens")
    expect(row).to_contain_text(preview.plural(result.events, "event"))
    shot(page, "a3_metric_saved")

    # Invoices: each subscription for the last complete month; every total is the engine's.
    nav(page, "Invoices")
    month_box = page.get_by_role("combobox", name="Month")
    expect(month_box).to_have_value(re.compile(r"^\d{4}-\d{2}$"))
    month_text = month_box.input_value()
    last_complete = demo.span().months[1]  # the demo's history ends now: the month before this one
    assert month_text == f"{last_complete[0]}-{last_complete[1]:02d}"
    ws = workspace_from_store(store_engine)
    billed = invoices.run(engine_frame(store_engine), ws, month=invoices.parse_month(month_text))
    assert billed and {inv.currency for inv in billed} == {"USD"}
    total = sum((inv.total for inv in billed), Decimal(0))
    expect(metric_value(page, "Invoices")).to_have_text(f"{len(billed):,}")
    expect(metric_value(page, "Total (USD)")).to_have_text(format_money(total, "USD"))
    names = {p.code: p.name for p in ws.plans}
    titles = page.get_by_test_id("stExpander").locator("summary")
    expect(titles).to_have_count(len(billed))
    for i, inv in enumerate(billed):
        expect(titles.nth(i)).to_contain_text(
            f"{inv.customer_id} · {names[inv.plan]} · {month_text} · total {format_money(inv.total, inv.currency)}")
    # One invoice opened: its LLM Tokens line is priced from the same events the metric reads.
    first = billed[0]
    llm_line = next(line for line in first.lines if line.metric == "llm_tokens")
    own = aggregation.aggregate(engine_frame(store_engine), expected_metric, start=first.start, end=first.end,
                                customer_ids=[first.customer_id])
    assert own.value == llm_line.units  # the new metric measures what the plan bills as LLM Tokens
    page.get_by_test_id("stExpander").first.locator("summary").click()
    lines = table_rows(page.get_by_test_id("stExpander").first.get_by_test_id("stDataFrame"))
    shown_lines = {row[0]: row[1:] for row in lines[1:]}
    assert shown_lines["LLM Tokens"] == [f"{preview.fmt(llm_line.units)} tokens", format_money(llm_line.amount, "USD")]
    settle(page)
    shot(page, "a4_invoices")


# =========================================================================== (b) bad rows


def test_upload_csv_with_bad_rows_shows_rejected_rows(page: Page, live_server: Server, store_engine: Engine, shot: Shot) -> None:
    parsed = ingest.read_events(BAD_ROWS)
    expected_errors = [(e.line, e.field, e.reason) for e in parsed.errors]
    assert [line for line, _, _ in expected_errors] == BAD_LINES

    open_app(page, live_server)
    nav(page, "Events")
    before = store.event_count(store_engine)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(BAD_ROWS))
    expect(page.get_by_test_id("stFileUploader").get_by_text(BAD_ROWS.name)).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text("Rejected rows", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)

    accepted = store.event_count(store_engine) - before
    rejected = len(expected_errors)
    duplicates = len(parsed) - len(set(parsed.idempotency_key))  # a row repeated in the file
    assert duplicates == 1
    assert accepted == len(parsed) - duplicates
    expect(page.get_by_text(
        f"Imported 1 file(s): {accepted:,} accepted, {duplicates:,} duplicate(s), {rejected:,} rejected.")).to_be_visible()
    expect(page.get_by_text(f"({rejected}; line 1 is the first line of the file)")).to_be_visible()

    frames = page.get_by_test_id("stDataFrame")
    summary = table_rows(frames.nth(0))
    assert summary[0] == ["File", "Accepted", "Duplicates", "Rejected", "In the future", "Status"]
    assert summary[1] == [BAD_ROWS.name, f"{accepted:,}", f"{duplicates:,}", f"{rejected:,}", "0", "imported"]
    table = table_rows(frames.nth(1))
    assert table[0] == ["file", "line", "field", "reason"]
    assert [tuple(row) for row in table[1:]] == [(BAD_ROWS.name, str(line), f, r) for line, f, r in expected_errors]
    expect(page.get_by_role("button", name="Download rejected rows (CSV)")).to_be_visible()
    shot(page, "b_upload_bad_rows")


# =========================================================================== (c) snippets


def _run_snippet(language: str, code: str, server: Server) -> dict[str, Any]:
    """Run shown code as it is, with the key in METERING_API_KEY; its JSON answer."""
    env = {**os.environ, "METERING_API_KEY": server.api_key}
    if language == "curl":
        command = ["bash", "-c", code]
    elif language == "python":
        command = [sys.executable, "-c", code]
    else:
        command = ["node", "--input-type=module", "-e", code]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30, check=False)
    assert done.returncode == 0, f"{language} snippet failed ({done.returncode}): {done.stdout}\n{done.stderr}"
    out = done.stdout.strip().splitlines()[-1]
    return ast.literal_eval(out) if language == "python" else json.loads(out)  # Python prints a dict


def test_snippets_shown_are_the_engines_and_they_work(page: Page, live_server: Server, store_engine: Engine,
                                                       shot: Shot) -> None:
    open_app(page, live_server)
    if not metrics.get_metric(store_engine, code="llm_tokens"):  # run alone: start from the demo
        load_demo_via_ui(page)
    base_url = live_server.base_url  # the address the browser uses: the pages read it from there

    # The editor's Quick snippet panel, for the LLM Tokens template.
    nav(page, "Metric editor", "New billable metric")
    page.locator(".st-key-tplcard-llm_tokens").get_by_role("button", name="Use").click()
    expect(page.locator(".st-key-tplcard-on-llm_tokens")).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    draft = template_metric(store_engine)
    event_block = page.locator(".st-key-panel-event").get_by_test_id("stCode").locator("code")
    expect(event_block).to_contain_text('"event_name": "llm.tokens"', timeout=TIMEOUT_MS)
    event = json.loads(event_block.text_content() or "")
    assert {k: v for k, v in event.items() if k != "timestamp"} == {
        k: v for k, v in snippets.example_event(draft).items() if k != "timestamp"}
    panel = page.locator(".st-key-panel-snippet")
    expect(panel.get_by_text(f"Sends the example event to {base_url}/api/v1/events with a placeholder key")).to_be_visible()
    editor_expected = snippets.snippets(draft, base_url=base_url, api_key="YOUR_API_KEY", event=event)
    for tab, language in (("Python", "python"), ("JavaScript", "javascript"), ("cURL", "curl")):
        assert shown_code(panel, tab) == as_shown(editor_expected[language]), language
    panel.evaluate("p => p.scrollIntoView({block: 'center'})")  # the snippet panel in the picture
    shot(page, "c1_editor_quick_snippet")

    # The Developers page: a chosen metric's snippets read the key from METERING_API_KEY.
    nav(page, "Developers")
    page.get_by_test_id("stSelectbox").filter(has_text="Metric").click()
    page.get_by_role("option", name="LLM Tokens (llm_tokens)").click()
    expect(page.get_by_role("combobox", name="Metric")).to_have_value("LLM Tokens (llm_tokens)")
    settle(page)
    expect(page.get_by_text("The code reads the key from the METERING_API_KEY environment variable.")).to_be_visible()
    metric = metrics.get_metric(store_engine, code="llm_tokens")
    assert metric is not None
    expected = snippets.snippets(metric, base_url=base_url, api_key=None)
    section = page.get_by_test_id("stTabs").filter(has=page.get_by_role("tab", name="JavaScript")).first  # send events
    shown = {}
    for tab, language in (("Python", "python"), ("JavaScript", "javascript"), ("cURL", "curl")):
        shown[language] = shown_code(section, tab)
        assert shown[language] == as_shown(expected[language]), language
    assert base_url in shown["curl"] and "$METERING_API_KEY" in shown["curl"]
    shot(page, "c2_developers_snippets")

    # Run the shown code: each run stores one llm.tokens event for cus_001, stamped now.
    languages = ["curl", "python"] + (["javascript"] if shutil.which("node") else [])
    before = event_count(store_engine, event_name="llm.tokens", customer_id="cus_001")
    started = datetime.now(UTC).replace(microsecond=0)
    for language in languages:
        answer = _run_snippet(language, shown[language], live_server)
        assert answer.get("accepted") == 1, (language, answer)
        time.sleep(1.05)  # the next run is stamped a second later: a new event, not a duplicate
    assert event_count(store_engine, event_name="llm.tokens", customer_id="cus_001") == before + len(languages)
    mine = [(r[3], r[5]) for r in store.event_rows(store_engine) if r[1] == "llm.tokens" and r[2] == "cus_001"]
    rows = mine[::-1][:len(languages)]  # the newest stored
    for ts_us, properties in rows:
        stamped = datetime.fromtimestamp(ts_us / 1_000_000, UTC)
        assert started - timedelta(seconds=2) <= stamped <= datetime.now(UTC) + timedelta(seconds=2)
        assert json.loads(properties) == {"model": "gpt-4o", "tokens": 1250}
