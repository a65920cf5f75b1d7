"""Hardening, end to end in Chromium against the real server.

* Hostile names, units, customer ids, file names, CSV headers and property values (tests/hostile.py,
  their image URLs pointing at a trap server started here) show literally on every page: no
  <img>, <strong> or link is made of them and the browser never asks the trap for anything
  (a control at the end proves the trap would have seen a fetch).
* An unexpected error shows only an id; the server log has the traceback under that id.
* Without sign-in the server says it listens on 127.0.0.1 only (terminal and page); it refuses
  to listen on every interface unless METERING_ALLOW_NO_SIGN_IN=1, and then every page warns.
* Downloads (CSV) are spreadsheet-safe.
"""

from __future__ import annotations

import csv
import os
import io
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CHROMIUM, wait_for_root_page

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)
try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover
    pytest.skip("the playwright package is not installed (pip install -e '.[test]')", allow_module_level=True)

from sqlalchemy.engine import Engine

from tests.hostile import Texts
from tests.server import ROOT, STREAMLIT, Server, free_port, running_server

WJ = "\u2060"
Shot = Callable[[Any, str], Path]


class Trap:
    """An HTTP server that counts every request it gets (a fetched hostile image would land here)."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                trap.hits.append(self.path)
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def trap() -> Iterator[Trap]:
    t = Trap()
    yield t
    t.close()


@pytest.fixture(scope="module")
def texts(trap: Trap, store_engine: Engine) -> Texts:
    t = Texts(trap.host)
    t.load(store_engine)
    return t


def settle(page: Page) -> None:
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)


def nav(page: Page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=title, exact=True).or_(
        page.get_by_role("heading", name=re.compile(f"^{re.escape(title)}")))).to_be_visible()
    settle(page)


def check(page: Page, trap: Trap, requested: list[str], *literal: str) -> str:
    """The page shows `literal` as text, builds no markup from the hostile text, fetched nothing."""
    html = page.content()
    assert trap.host not in "".join(re.findall(r"<img[^>]*>", html)), "an <img> points at the trap"
    assert not re.search(r'href="[^"]*' + re.escape(trap.host), html), "a link points at the trap"
    for marker in ("<strong>bold</strong>", "<strong>b</strong>", "<strong>p</strong>", "<strong>label</strong>",
                   "<strong>file</strong>", "<strong>s</strong>"):
        assert marker not in html, marker
    text = page.locator("body").inner_text().replace(WJ, "")
    for item in literal:
        assert item in text, item
    assert not [u for u in requested if trap.host in u]
    assert trap.hits == []
    return text


def test_hostile_text_is_shown_literally_and_fetches_nothing(page: Page, live_server: Server, texts: Texts,
                                                             trap: Trap, shot: Shot) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(live_server.base_url + "/")
    expect(page.get_by_role("heading", name="Billable metrics")).to_be_visible()
    settle(page)
    check(page, trap, requested, texts.name, texts.unit, texts.path)
    shot(page, "hostile-metrics")

    page.locator(".st-key-metrics-edit-hostile button").first.click()
    expect(page.get_by_role("heading", name=re.compile("^Edit metric"))).to_be_visible()
    settle(page)
    check(page, trap, requested, f"Edit metric · {texts.name}")
    assert page.get_by_role("textbox", name="Value property *").input_value() == texts.path
    shot(page, "hostile-editor")

    nav(page, "Plans")
    check(page, trap, requested, texts.plan, texts.fixed)
    page.locator(".st-key-plans-edit-hostile_plan button").first.click()
    expect(page.get_by_role("heading", name=re.compile("^Edit plan"))).to_be_visible()
    settle(page)
    check(page, trap, requested, f"Edit plan · {texts.plan}", texts.name)

    nav(page, "Events")
    page.get_by_role("tab", name="Stored events").click()
    settle(page)
    check(page, trap, requested)
    nav(page, "Usage")
    check(page, trap, requested, texts.name, texts.path)
    nav(page, "Timeline")
    check(page, trap, requested, texts.customer)
    nav(page, "Invoices")
    check(page, trap, requested, texts.customer)
    page.get_by_role("tab", name="Customer view").click()
    settle(page)
    check(page, trap, requested, texts.customer, texts.fixed)  # the HTML invoice escapes them too
    nav(page, "Workspace")
    check(page, trap, requested)
    nav(page, "Developers")
    check(page, trap, requested)
    nav(page, "Audit log")
    check(page, trap, requested)

    # the control: an image pointing at the trap is fetched and counted
    page.evaluate(f"() => {{ const i = new Image(); i.src = 'http://{trap.host}/control.png'; document.body.append(i); }}")
    page.wait_for_timeout(1000)
    assert trap.hits == ["/control.png"]
    trap.hits.clear()


def test_csv_downloads_are_spreadsheet_safe(page: Page, live_server: Server, texts: Texts, store_engine: Engine) -> None:
    from metering import plan_store

    # a customer id that starts a formula, subscribed so it is on the invoices
    plan_store.set_subscription(store_engine, customer_id="=HYPERLINK(\"http://x\",\"y\")", plan_code="hostile_plan",
                                start="2026-10-01")
    from metering import importing

    importing.import_bytes(store_engine, b"event_name,customer_id,timestamp,region\n"
                                         b"hostile.event,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",2026-10-03T00:00:00Z,eu\n",
                           name="formula.csv")
    page.goto(live_server.base_url + "/invoices")
    expect(page.get_by_role("heading", name="Invoices")).to_be_visible()
    settle(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Summary (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    ids = {r["customer_id"] for r in rows}
    assert "'=HYPERLINK(\"http://x\",\"y\")" in ids and not any(i.startswith("=") for i in ids)
    assert all(not r["total"].startswith("'") for r in rows)  # numbers stay numbers


def test_an_error_shows_an_id_and_the_log_has_the_details(browser: Any, tmp_path: Path, shot: Shot) -> None:
    # a store that cannot be opened: every page fails on the server
    with running_server(tmp_path, database_url="sqlite:////proc/no-such-dir/metering.db", wait_healthy=False) as srv:
        page = browser.new_page(viewport={"width": 1024, "height": 900})
        page.goto(srv.base_url + "/")
        message = page.get_by_text(re.compile(r"Something went wrong on the server \(error id [0-9-]+[0-9a-f]{6}\)"))
        expect(message).to_be_visible(timeout=30_000)
        settle(page)
        shot(page, "error-id-1024")
        error_id = re.search(r"error id ([0-9]{8}-[0-9]{6}-[0-9a-f]{6})", message.inner_text()).group(1)
        html = page.content()
        assert "Traceback" not in html and "/proc/no-such-dir" not in html and str(ROOT) not in html
        page.wait_for_timeout(500)
        log = srv.log()
        assert f"error {error_id}" in log and "Traceback" in log and "no-such-dir" in log
        page.close()


def test_local_mode_is_said_in_the_terminal_and_on_the_page(page: Page, live_server: Server) -> None:
    assert "Listening on 127.0.0.1 only: sign-in is not configured" in live_server.log()
    page.goto(live_server.base_url + "/")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text(re.compile("Local mode: no sign-in, listening on 127.0.0.1 only"))).to_be_visible()


def test_every_interface_without_sign_in_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secrets.toml").write_text("")
    command = [str(STREAMLIT), "run", str(ROOT / "app.py"), "--server.headless", "true", "--server.address", "0.0.0.0",
               "--server.port", str(free_port()), "--secrets.files", str(tmp_path / "secrets.toml")]
    env = {k: v for k, v in os.environ.items() if k != "METERING_ALLOW_NO_SIGN_IN"}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Refusing to listen on 0.0.0.0 without sign-in" in done.stdout + done.stderr
    assert "METERING_ALLOW_NO_SIGN_IN=1" in done.stdout + done.stderr


def test_every_interface_with_the_option_warns_on_every_page(browser: Any, tmp_path: Path, shot: Shot) -> None:
    with running_server(tmp_path, address="0.0.0.0", extra_env={"METERING_ALLOW_NO_SIGN_IN": "1"}) as srv:
        wait_for_root_page(srv.base_url)
        assert "WITHOUT sign-in" in srv.log()
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        for path, heading in (("/", "Billable metrics"), ("/workspace", "Workspace")):
            page.goto(srv.base_url + path)
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=30_000)
            expect(page.get_by_text("This workbench is open to the network without sign-in")).to_be_visible()
        settle(page)
        shot(page, "open-without-sign-in-1440")
        page.close()


def test_named_keys_on_the_developers_page(page: Page, live_server: Server, store_engine: Engine, shot: Shot) -> None:
    import requests

    from metering import apikeys, audit

    page.goto(live_server.base_url + "/developers")
    expect(page.get_by_role("heading", name="Developers")).to_be_visible()
    settle(page)
    page.get_by_label("Name of a new key").fill("billing-service")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("This is the new key billing-service")).to_be_visible()
    new_key = page.locator('[data-testid="stCode"] code').first.inner_text().strip()
    assert new_key.startswith("mtr_")
    # both keys work: a new key revokes nothing
    for key in (live_server.api_key, new_key):
        assert requests.get(f"{live_server.base_url}/api/v1/metrics", headers={"Authorization": f"Bearer {key}"},
                            timeout=10).status_code == 200
    settle(page)
    shot(page, "developers-keys-1440")
    page.set_viewport_size({"width": 1024, "height": 1400})
    settle(page)
    shot(page, "developers-keys-1024")
    # revoke "default"
    page.get_by_role("button", name="Revoke…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("default")).to_be_visible()
    dialog.get_by_role("button", name="Revoke now").click()
    expect(page.get_by_text("Revoked the key default")).to_be_visible()
    assert requests.get(f"{live_server.base_url}/api/v1/metrics", timeout=10,
                        headers={"Authorization": f"Bearer {live_server.api_key}"}).status_code == 401
    assert requests.get(f"{live_server.base_url}/api/v1/metrics", timeout=10,
                        headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    assert [k.name for k in apikeys.list_keys(store_engine)] == ["billing-service"]
    actions = [(e.action, e.target, e.actor) for e in audit.entries(store_engine) if e.action.startswith("apikey.")]
    assert actions[:2] == [("apikey.revoke", "default", "local user (no sign-in)"),
                           ("apikey.create", "billing-service", "local user (no sign-in)")]
    page.goto(live_server.base_url + "/audit")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.get_by_role("button", name="Download CSV")).to_be_visible()
    settle(page)
    page.wait_for_timeout(1000)  # the grid draws on a canvas after it appears
    shot(page, "audit-local-1024")
