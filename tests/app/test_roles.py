"""Sign-in and roles through the real navigation, with a faked signed-in person (AppTest.user).

* Sign-in configured and nobody signed in: only the sign-in buttons; no page code runs.
* A viewer sees every page with every change control disabled, and — with the controls forced
  on (as a forged client or a UI bug would) — every change handler still refuses on the server:
  the store is unchanged and each attempt is in the audit log as "denied".
* An editor can change metrics, plans and subscriptions but not do the admin actions; an admin
  can, and each change is in the audit log under their address.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from metering import apikeys, audit, metrics, plan_store, store
from metering.workspace import export_workspace
from tests.app.conftest import ROOT, TIMEOUT
from workbench import auth
from workbench.text import plain

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret-of-enough-length",
    "client_id": "workbench", "client_secret": "secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
ROLES = {"admin": ["ana@example.com"], "editor": ["ed@example.com"], "viewer": ["example.com"]}
SECRETS = {"auth": AUTH, "workbench": {"roles": ROLES}}
ADMIN = {"is_logged_in": True, "email": "ana@example.com", "name": "Ana Admin", "email_verified": True}
EDITOR = {"is_logged_in": True, "email": "ed@example.com", "name": "Ed Editor"}
VIEWER = {"is_logged_in": True, "email": "vera@example.com", "name": "Vera Viewer"}
STRANGER = {"is_logged_in": True, "email": "eve@elsewhere.org", "name": "Eve"}


def app_as(user: dict[str, Any] | None, secrets: dict[str, Any] | None = None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.secrets = dict(SECRETS if secrets is None else secrets)
    at.user = dict(user) if user is not None else {"is_logged_in": False}
    at.run()
    if page is not None and not at.exception:
        at.switch_page(f"pages/{page}.py")
        at.run()
    assert not at.exception, at.exception
    return at


def snapshot(engine: Engine) -> tuple:
    with engine.connect() as conn:
        imports = conn.execute(text("SELECT id, accepted FROM import_batch ORDER BY id")).all()
    return (json.dumps(export_workspace(engine), sort_keys=True), store.store_version(engine), tuple(imports),
            tuple((k.id, k.revoked_at) for k in apikeys.list_keys(engine, include_revoked=True)))


def refused(at: AppTest) -> bool:
    return any("Your role is viewer" in e.value for e in at.error)


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


# =========================================================================== sign-in


def test_sign_in_required_before_any_page(demo_engine: Engine) -> None:
    at = app_as(None)
    assert titles(at) == ["Pricing workbench"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.dataframe and "Billable metrics" not in titles(at)
    # a deep link runs nothing either
    at.switch_page("pages/workspace.py")
    at.run()
    assert titles(at) == ["Pricing workbench"] and [b.label for b in at.button] == ["Sign in"]


def test_one_button_per_named_provider(app_engine: Engine) -> None:
    google = {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    secrets = {"auth": {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": AUTH["cookie_secret"],
                        "google": google, "okta": dict(google)}, "workbench": {"roles": ROLES}}
    at = app_as(None, secrets)
    assert [b.label for b in at.button] == ["Sign in with Google", "Sign in with Okta"]


def test_signed_in_without_a_role(app_engine: Engine) -> None:
    at = app_as(STRANGER)
    assert any("eve@elsewhere.org" in plain(e.value) and "no role" in e.value for e in at.error)
    assert [b.label for b in at.button] == ["Sign out"]
    assert "Billable metrics" not in titles(at)


def test_bad_role_settings_stop_the_app(app_engine: Engine) -> None:
    at = app_as(VIEWER, {"auth": AUTH, "workbench": {"roles": {"admins": ["ana@example.com"]}}})
    assert any("unknown setting admins" in plain(e.value) for e in at.error)
    assert "Billable metrics" not in titles(at)


def test_sidebar_names_the_person_and_offers_sign_out(app_engine: Engine) -> None:
    at = app_as(VIEWER)
    assert titles(at) == ["Billable metrics"]
    assert any("Vera Viewer" in t.value and "vera@example.com" in t.value for t in at.sidebar.text)
    assert any(c.value == "Role: viewer" for c in at.sidebar.caption)
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    # one audit row for the session's sign-in
    assert [(e.action, e.actor) for e in audit.entries(app_engine)] == [("auth.sign_in", "vera@example.com")]


def _sidebar_only() -> None:
    from workbench import auth as a

    a.sidebar(a.gate())


def test_sign_out_button_signs_out(app_engine: Engine) -> None:
    # (AppTest runs page files on their own after the first run, so the sidebar is tested alone)
    at = AppTest.from_function(_sidebar_only, default_timeout=TIMEOUT)
    at.secrets, at.user = dict(SECRETS), dict(VIEWER)
    at.run()
    at.sidebar.button(key="auth:logout").click().run()
    assert at.user == {"is_logged_in": False}
    at.run()
    assert [b.label for b in at.button] == ["Sign in"]


def test_audit_page_is_for_admins_only(app_engine: Engine) -> None:
    admin = app_as(ADMIN, page="audit")
    assert titles(admin) == ["Audit log"]
    assert list(admin.dataframe[0].value["actor"]) == ["ana@example.com"]
    editor = app_as(EDITOR)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        editor.switch_page("pages/audit.py")  # not in an editor's navigation
    direct = AppTest.from_file(str(ROOT / "pages" / "audit.py"), default_timeout=TIMEOUT)  # the file run on its own
    direct.secrets, direct.user = dict(SECRETS), dict(EDITOR)
    direct.run()
    assert not direct.dataframe and any("Your role is editor" in e.value for e in direct.error)


def test_without_sign_in_the_local_user_is_admin(app_engine: Engine) -> None:
    at = app_as(None, secrets={"workbench": {"roles": {}}})
    assert titles(at) == ["Billable metrics"]
    assert any("Local mode" in c.value and "127.0.0.1" in c.value for c in at.sidebar.caption)
    assert not at.sidebar.button  # nobody to sign out
    at = app_as(None, secrets={"workbench": {"roles": {"without_sign_in": "viewer"}}}, page="workspace")
    assert at.button(key="workspace:reset").disabled


# =========================================================================== the viewer


VIEWER_DISABLED = {
    "metrics": ["metrics:del:llm_tokens"],
    "plans": ["plans:subs_save", "plans:del:starter"],
    "events": ["events:sim:insert", "events:delete"],
    "workspace": ["workspace:demo", "workspace:reset"],
    "developers": [],
}


@pytest.mark.parametrize("name", sorted(VIEWER_DISABLED))
def test_a_viewer_sees_the_pages_with_change_controls_disabled(demo_engine: Engine, name: str) -> None:
    at = app_as(VIEWER, page=name)
    for key in VIEWER_DISABLED[name]:
        assert at.button(key=key).disabled, key
    if name == "developers":
        assert any(b.label == "Create key" and b.disabled for b in at.button)
    if name == "workspace":
        assert at.selectbox(key="workspace:tz").disabled


@pytest.fixture
def forced_controls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every control drawn enabled, as a forged client or a UI bug would have it: only the
    handlers' own checks stand between a viewer and the store."""
    monkeypatch.setattr(auth, "can", lambda action: True)


def test_a_viewer_cannot_change_metrics_or_send_test_events(demo_engine: Engine, forced_controls: None) -> None:
    before = snapshot(demo_engine)
    at = app_as(VIEWER)
    at.session_state["metrics:delete"] = "llm_tokens"
    at.run()
    if at.checkbox:
        at.checkbox(key="metrics:delete_ack").check().run()
    at.button(key="metrics:delete_yes").click().run()
    assert refused(at)
    at.session_state["editor:code"] = "llm_tokens"
    at.switch_page("pages/editor.py")
    at.run()
    at.button(key="editor:save").click().run()
    assert refused(at), [e.value for e in at.error]
    at.button(key="editor:test_send").click().run()
    assert refused(at)
    assert snapshot(demo_engine) == before
    assert {(e.action, e.outcome) for e in audit.entries(demo_engine) if e.outcome == "denied"} == {
        ("metric.delete", "denied"), ("metric.update", "denied"), ("events.test", "denied")}


def test_a_viewer_cannot_change_plans_or_subscriptions(demo_engine: Engine, forced_controls: None) -> None:
    before = snapshot(demo_engine)
    at = app_as(VIEWER, page="plans")
    at.button(key="plans:edit:starter").click().run()
    at.button(key="plans:save").click().run()
    assert refused(at)
    at.button(key="plans:subs_save").click().run()
    assert refused(at)
    at.button(key="plans:del:starter").click().run()
    at.checkbox(key="plans:delete_ack").check().run()
    at.button(key="plans:delete_yes").click().run()
    assert refused(at)
    assert snapshot(demo_engine) == before
    assert plan_store.get_plan(demo_engine, code="starter") is not None
    assert {e.action for e in audit.entries(demo_engine) if e.outcome == "denied"} == {
        "plan.save", "subscriptions.save", "plan.delete"}


def test_a_viewer_cannot_import_simulate_or_delete_events(demo_engine: Engine, forced_controls: None) -> None:
    before = snapshot(demo_engine)
    at = app_as(VIEWER, page="events")
    at.file_uploader(key="events:uploader:0").set_value(
        [("more.csv", b"event_name,customer_id,timestamp\napi.request,cus_x,2026-10-01T00:00:00Z\n", "text/csv")]).run()
    at.button(key="events:import").click().run()
    assert refused(at)
    at.button(key="events:sim:insert").click().run()
    assert refused(at)
    at.button(key="events:delete").click().run()
    at.button(key="events:delete_confirm").click().run()
    assert refused(at)
    assert snapshot(demo_engine) == before
    assert {e.action for e in audit.entries(demo_engine) if e.outcome == "denied"} == {
        "events.import", "events.simulate", "events.delete_import"}


def test_a_viewer_cannot_change_the_workspace_or_keys(demo_engine: Engine, forced_controls: None) -> None:
    apikeys.ensure_key(demo_engine)
    before = snapshot(demo_engine)
    at = app_as(VIEWER, page="workspace")
    at.selectbox(key="workspace:tz").select("Europe/Berlin").run()
    assert refused(at)
    at.button(key="workspace:demo").click().run()
    at.button(key="workspace:demo_yes").click().run()
    assert refused(at)
    at.button(key="workspace:demo_no").click().run()
    at.button(key="workspace:reset").click().run()
    at.checkbox(key="workspace:reset_ack").check().run()
    at.button(key="workspace:reset_yes").click().run()
    assert refused(at)
    doc = json.dumps({"metrics": [], "plans": [], "subscriptions": []}).encode()
    at.file_uploader(key="workspace:upload").set_value(("empty.json", doc, "application/json")).run()
    at.button(key="workspace:import").click().run()
    assert refused(at)
    assert at.selectbox(key="workspace:tz").value == "UTC"

    dev = app_as(VIEWER, page="developers")
    assert "api:key_plain" not in dev.session_state  # a viewer is never shown a key
    dev.text_input(key="developers:new_name").input("mine")
    next(b for b in dev.button if b.label == "Create key").click().run()
    assert refused(dev)
    dev.button(key="developers:revoke").click().run()
    dev.button(key="developers:revoke_yes").click().run()
    assert refused(dev)
    assert snapshot(demo_engine) == before
    assert {e.action for e in audit.entries(demo_engine) if e.outcome == "denied"} == {
        "workspace.timezone", "workspace.demo", "workspace.reset", "workspace.import", "apikey.create", "apikey.revoke"}


# =========================================================================== editor and admin


def test_an_editor_changes_metrics_but_not_admin_things(demo_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app_as(EDITOR, page="workspace")
    assert at.button(key="workspace:reset").disabled and at.button(key="workspace:demo").disabled
    assert not at.selectbox(key="workspace:tz").disabled
    at.selectbox(key="workspace:tz").select("Europe/Berlin").run()
    assert plan_store.get_timezone(demo_engine) == "Europe/Berlin"
    monkeypatch.setattr(auth, "can", lambda action: True)
    at.run()
    at.button(key="workspace:reset").click().run()
    at.checkbox(key="workspace:reset_ack").check().run()
    at.button(key="workspace:reset_yes").click().run()
    assert any("Your role is editor" in e.value for e in at.error)
    assert metrics.list_metrics(demo_engine)
    rows = [(e.actor, e.role, e.action, e.outcome) for e in audit.entries(demo_engine) if e.action != "auth.sign_in"]
    assert rows == [("ed@example.com", "editor", "workspace.reset", "denied"),
                    ("ed@example.com", "editor", "workspace.timezone", "ok")]


def test_an_admin_deletes_and_it_is_audited(demo_engine: Engine) -> None:
    at = app_as(ADMIN)
    at.session_state["metrics:delete"] = "storage_gb"
    at.run()
    if at.checkbox:
        at.checkbox(key="metrics:delete_ack").check().run()
    at.button(key="metrics:delete_yes").click().run()
    assert not at.exception, at.exception
    assert metrics.get_metric(demo_engine, code="storage_gb") is None
    [row] = audit.entries(demo_engine, action="metric.delete")
    assert (row.actor, row.role, row.target, row.outcome) == ("ana@example.com", "admin", "storage_gb", "ok")
    assert "removed from plans" in row.detail
