"""Sign-in with Streamlit's `st.login` (OpenID Connect), who is signed in, and the role checks.

Settings live in `.streamlit/secrets.toml` (see the README): `[auth]` is Streamlit's own
sign-in section (one provider directly in it, or named ones such as `[auth.google]`), and
`[workbench.roles]` gives roles to e-mail addresses and domains (`metering.access`).

* `gate()` runs first on every page (app.py): with sign-in configured, a visitor who is not
  signed in sees only the sign-in buttons, and a signed-in person without a role only a sign-out
  button; the script stops there, so no page code runs for them.
* `allowed(action, ...)` is the check every change calls on the server, in its handler, before it
  writes anything (buttons are also disabled for roles that cannot use them, but that is only a
  courtesy). A refusal is shown and recorded in the audit log.
* `record(...)` writes the audit row for a change that succeeded, naming the signed-in person.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import streamlit as st

from metering import access, audit
from metering.access import Action, Role, RoleSettings, SettingsError, User
from workbench import state
from workbench.text import md

PROVIDER_KEYS = ("client_id", "server_metadata_url")


# =========================================================================== settings


def _secrets() -> dict[str, Any]:
    try:
        if not st.secrets.load_if_toml_exists():
            return {}
        return st.secrets.to_dict()
    except Exception:  # noqa: BLE001 - an unreadable secrets file: Streamlit reports it itself
        return {}


def providers(secrets: Mapping[str, Any] | None = None) -> list[str]:
    """The names `st.login` takes: "default" when `[auth]` names a provider itself, else each
    `[auth.<name>]` that does."""
    section = (secrets if secrets is not None else _secrets()).get("auth") or {}
    if not isinstance(section, Mapping):
        return []
    if all(k in section for k in PROVIDER_KEYS):
        return ["default"]
    return [name for name, value in section.items() if isinstance(value, Mapping) and all(k in value for k in PROVIDER_KEYS)]


def sign_in_configured(secrets: Mapping[str, Any] | None = None) -> bool:
    return bool(providers(secrets))


def workbench_settings(secrets: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    section = (secrets if secrets is not None else _secrets()).get("workbench") or {}
    return section if isinstance(section, Mapping) else {}


def role_settings(secrets: Mapping[str, Any] | None = None) -> RoleSettings:
    return RoleSettings.from_mapping(workbench_settings(secrets).get("roles"))


def email_claim(secrets: Mapping[str, Any] | None = None) -> str:
    """Which identity claim holds the e-mail address (`[workbench] email_claim`, default email)."""
    return str(workbench_settings(secrets).get("email_claim") or "email")


def listening(address: str | None, secrets: Mapping[str, Any] | None = None) -> access.Listening:
    allow = os.environ.get(access.ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")
    return access.listening(address, sign_in=sign_in_configured(secrets), allow_without_sign_in=allow)


def check_listening_at_start() -> None:
    """At server start (app.py as a module): say where the app listens; refuse to listen beyond
    this computer without sign-in unless METERING_ALLOW_NO_SIGN_IN=1."""
    from streamlit import config

    decision = listening(config.get_option("server.address"))
    sys.stderr.write(f"pricing workbench: {decision.message}\n")
    sys.stderr.flush()
    if not decision.allowed:
        raise SystemExit(f"pricing workbench: {decision.message}")


# =========================================================================== the person


def current_user() -> User:
    """The person using this session, with their role (None: no access)."""
    secrets = _secrets()
    settings = role_settings(secrets)
    if not sign_in_configured(secrets):
        return User(None, None, settings.without_sign_in, False)
    info = st.user.to_dict()
    if not info.get("is_logged_in"):
        return User(None, None, None, False)
    email = info.get(email_claim(secrets))
    email = str(email) if email else None
    name = str(info["name"]) if info.get("name") else None
    return User(email, name, settings.role_for(email, email_verified=info.get("email_verified")), True)


def can(action: Action) -> bool:
    """For drawing: may this person use the control? (The handler checks again.)"""
    try:
        return access.can(current_user(), action)
    except SettingsError:
        return False


def allowed(action: Action, *, audit_action: str | None = None, target: str = "") -> bool:
    """The server-side check a handler makes before it changes anything. When refused: the reason
    is shown and the attempt recorded in the audit log as "denied"."""
    user = current_user()
    if access.can(user, action):
        return True
    st.error(access.denial(user, action), icon=":material/block:")  # in a callback: shown atop the page
    if audit_action is not None:
        audit.record(state.engine(), actor=user.label, role=user.role.name if user.role else None,
                     action=audit_action, target=target, outcome=audit.DENIED)
    return False


def record(audit_action: str, *, target: str = "", detail: str = "") -> None:
    """The audit row for a change that just succeeded."""
    user = current_user()
    audit.record(state.engine(), actor=user.label, role=user.role.name if user.role else None,
                 action=audit_action, target=target, detail=detail)


# =========================================================================== pages


def _provider_label(name: str) -> str:
    return "Sign in" if name == "default" else f"Sign in with {name.replace('_', ' ').replace('-', ' ').title()}"


def sign_in_page(names: list[str]) -> None:
    st.title("Pricing workbench")
    st.markdown("Sign in with your company account to continue.")
    for name in names:
        if st.button(md(_provider_label(name)), key=f"auth:login:{name}", type="primary", icon=":material/login:"):
            st.login(name)


def no_role_page(user: User) -> None:
    st.title("Pricing workbench")
    who = user.email or user.name or "this account"
    st.error(f"You are signed in as {md(who)}, which has no role in this workbench. Ask an admin to add your "
             "address or domain to [workbench.roles], then sign in again.", icon=":material/block:")
    if st.button("Sign out", key="auth:logout", icon=":material/logout:"):
        st.logout()


def settings_error_page(error: SettingsError) -> None:
    st.title("Pricing workbench")
    st.error(f"The sign-in settings cannot be used: {md(error)}. Fix .streamlit/secrets.toml and restart the app.",
             icon=":material/settings_alert:")


def gate() -> User:
    """Stop the run unless the visitor may use the app; returns the person when they may."""
    secrets = _secrets()
    try:
        user = current_user()
    except SettingsError as exc:
        settings_error_page(exc)
        st.stop()
    if sign_in_configured(secrets) and not user.signed_in:
        sign_in_page(providers(secrets))
        st.stop()
    if user.role is None:
        no_role_page(user)
        st.stop()
    _note_sign_in(user)
    return user


def _note_sign_in(user: User) -> None:
    """One audit row per signed-in session, so the log also says who came in and when."""
    if user.signed_in and not st.session_state.get("auth:noted"):
        st.session_state["auth:noted"] = True
        record("auth.sign_in", target=user.label, detail=f"role {user.role.name if user.role else 'none'}")


def sidebar(user: User) -> None:
    """Who is signed in (with sign-out), or the local-mode note; and the warning when the app is
    open to the network without sign-in."""
    decision = listening(st.get_option("server.address"))
    with st.sidebar:
        if user.signed_in:
            role = user.role.name if user.role else "no role"
            st.caption("Signed in as")
            st.text(f"{user.name or user.email}\n{user.email or ''}".strip())
            st.caption(f"Role: {role}")
            if st.button("Sign out", key="auth:logout", icon=":material/logout:", width="stretch"):
                st.logout()
        elif decision.open_without_sign_in:
            st.caption("No sign-in: everyone who can reach this server is an "
                       f"{user.role.name if user.role else 'unknown'}.")
        else:
            st.caption("Local mode: no sign-in, listening on 127.0.0.1 only, so only this computer can open the "
                       f"workbench. You are the {user.role.name if user.role else 'unknown'}.")
    if decision.open_without_sign_in:
        st.warning("This workbench is open to the network without sign-in: anyone who can reach it can change "
                   "and delete everything. Configure sign-in (README, Sign-in) or listen on 127.0.0.1.",
                   icon=":material/warning:")


def role_name(user: User) -> str:
    return user.role.name if user.role else "none"


__all__ = [
    "Action", "Role", "allowed", "can", "check_listening_at_start", "current_user", "gate", "providers", "record",
    "role_settings", "sidebar", "sign_in_configured",
]
