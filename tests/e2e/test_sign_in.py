"""Sign-in end to end: the real server with `[auth]` in its secrets.toml, a local OpenID Connect
provider (`oidc-provider-mock`, started here in a thread), and Chromium signing in as different
people.

* Nobody signed in: only the sign-in button, whichever page is asked for.
* A viewer signs in through the provider's form, sees who is signed in, finds every change
  control disabled, changes nothing, and signs out (the provider's end-session page included).
* An admin sees the Audit log page, with both sign-ins on it.
* Someone the roles do not list is told so and offered sign-out only.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, EXPECT_TIMEOUT_MS, wait_for_root_page

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)
try:
    import httpx
    import oidc_provider_mock
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"needs the test extras (pip install -e '.[test]'): {exc}", allow_module_level=True)

from metering import apikeys, audit, store
from metering.workspace import export_workspace
from tests.server import Server, running_server

ROLES = """
[workbench.roles]
admin = ["ana@example.com"]
editor = ["ed@example.com"]
viewer = ["example.com"]
"""
PEOPLE = {
    "ana@example.com": {"email": "ana@example.com", "name": "Ana Admin", "email_verified": True},
    "vera@example.com": {"email": "vera@example.com", "name": "Vera Viewer", "email_verified": True},
    "eve@elsewhere.org": {"email": "eve@elsewhere.org", "name": "Eve Elsewhere", "email_verified": True},
}
Shot = Callable[[Any, str], Path]


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """The OpenID provider on a free port, with the people above registered."""
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # the provider runs over plain http here
    with oidc_provider_mock.run_server_in_thread() as server:
        url = f"http://localhost:{server.server_port}"
        for sub, claims in PEOPLE.items():
            assert httpx.put(f"{url}/users/{quote(sub)}", json=claims).status_code == 204
        yield url


@pytest.fixture(scope="module")
def signed_server(provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    secrets_toml = f"""
[auth]
redirect_uri = "http://127.0.0.1:{{port}}/oauth2callback"
cookie_secret = "{secrets.token_urlsafe(32)}"
client_id = "pricing-workbench"
client_secret = "{secrets.token_urlsafe(16)}"
server_metadata_url = "{provider}/.well-known/openid-configuration"
{ROLES}
"""
    with running_server(tmp_path_factory.mktemp("signed"), secrets_toml=secrets_toml) as srv:
        wait_for_root_page(srv.base_url)
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(browser: Any, width: int = 1440) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 1000})
    context.set_default_timeout(30_000)
    # the provider's pages load a stylesheet from a CDN; there is no network here
    context.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())
    return context.new_page()


def settle(page: Page) -> None:
    page.wait_for_timeout(250)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)


def sign_in(page: Page, server: Server, who: str) -> None:
    page.goto(server.base_url + "/")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_placeholder("sub").fill(who)  # the provider's form
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(server.base_url + "/**")


def test_nobody_signed_in_sees_only_the_sign_in_button(browser: Any, signed_server: Server, shot: Shot) -> None:
    for width in (1024, 1440):
        page = new_page(browser, width)
        page.goto(signed_server.base_url + "/workspace")  # a deep link
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        expect(page.get_by_role("heading", name="Pricing workbench")).to_be_visible()
        settle(page)
        expect(page.get_by_role("heading", name="Workspace")).to_have_count(0)
        expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
        shot(page, f"sign-in-{width}")
        page.context.close()


def test_a_viewer_signs_in_changes_nothing_and_signs_out(browser: Any, signed_server: Server, shot: Shot) -> None:
    engine = store.make_engine(signed_server.database_url)
    before = (export_workspace(engine), store.store_version(engine), len(apikeys.list_keys(engine)))
    page = new_page(browser)
    sign_in(page, signed_server, "vera@example.com")
    expect(page.get_by_role("heading", name="Billable metrics")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Vera Viewer")).to_be_visible()
    expect(sidebar.get_by_text("Role: viewer")).to_be_visible()
    expect(sidebar.get_by_role("link", name="Audit log")).to_have_count(0)  # admins only
    settle(page)
    shot(page, "viewer-metrics-1440")

    sidebar.get_by_role("link", name="Workspace", exact=True).click()
    expect(page.get_by_role("heading", name="Workspace", exact=True)).to_be_visible()
    settle(page)
    for label in ("Load demo workspace", "Reset workspace…"):
        button = page.get_by_role("button", name=label)
        expect(button).to_be_disabled()
        button.click(force=True)  # a click on a disabled button does nothing
    settle(page)
    shot(page, "viewer-workspace-1440")

    sidebar.get_by_role("link", name="Developers", exact=True).click()
    expect(page.get_by_role("heading", name="Developers")).to_be_visible()
    expect(page.get_by_role("button", name="Create key")).to_be_disabled()
    expect(page.get_by_text("Creating and revoking keys needs the admin role.")).to_be_visible()

    sidebar.get_by_role("link", name="Events", exact=True).click()
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    settle(page)
    expect(page.get_by_role("button", name="Import")).to_be_disabled()
    page.get_by_role("tab", name="Simulate").click()
    expect(page.get_by_role("button", name="Insert")).to_be_disabled()

    assert (export_workspace(engine), store.store_version(engine), len(apikeys.list_keys(engine))) == before

    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()  # the provider's end-session page
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(signed_server.base_url + "/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()  # the cookie is gone
    page.context.close()
    engine.dispose()


def test_an_admin_sees_the_audit_log_with_the_sign_ins(browser: Any, signed_server: Server, shot: Shot) -> None:
    page = new_page(browser)
    sign_in(page, signed_server, "ana@example.com")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Role: admin")).to_be_visible()
    sidebar.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    settle(page)
    engine = store.make_engine(signed_server.database_url)
    actors = {e.actor for e in audit.entries(engine, action="auth.sign_in")}
    assert {"ana@example.com", "vera@example.com"} <= actors
    grid = page.get_by_test_id("stDataFrame")
    expect(grid).to_be_visible()
    shot(page, "admin-audit-1440")
    page.set_viewport_size({"width": 1024, "height": 1000})
    settle(page)
    shot(page, "admin-audit-1024")
    page.context.close()
    engine.dispose()


def test_someone_without_a_role_is_told_so(browser: Any, signed_server: Server, shot: Shot) -> None:
    page = new_page(browser, 1024)
    sign_in(page, signed_server, "eve@elsewhere.org")
    message = page.get_by_text("which has no role")
    expect(message).to_be_visible()
    assert "signed in as eve@elsewhere.org," in message.inner_text().replace("\u2060", "")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("heading", name="Billable metrics")).to_have_count(0)
    settle(page)
    shot(page, "no-role-1024")
    page.context.close()
