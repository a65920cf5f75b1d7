"""Who may do what: the roles viewer, editor and admin, and the rule for listening without sign-in.

Roles come from the settings (`[workbench.roles]` in `.streamlit/secrets.toml`), as lists of
e-mail addresses or domains:

    [workbench.roles]
    admin = ["ana@example.com"]
    editor = ["pricing@example.com", "@example.com"]   # "@example.com" and "example.com" are domains
    viewer = ["partner.example"]
    default = "viewer"            # anyone else who signs in (leave out: no access)
    without_sign_in = "admin"     # the role when sign-in is not configured (default admin)

A person's role: an exact e-mail entry wins over a domain entry (so one address can be given
less than its domain); within the same kind the highest role wins; then `default`. E-mail and
domains compare case-insensitively. An identity whose provider says `email_verified = false`
gets no role from its address: an unverified address proves nothing.

`can(user, action)` is the one check every change goes through (the workbench's handlers call
it on the server before they write anything); `REQUIRED` lists which role each action needs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    viewer = 1
    editor = 2
    admin = 3

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[str(value).strip().lower()]
        except KeyError:
            raise ValueError(f"unknown role '{value}': use viewer, editor or admin") from None


class Action(StrEnum):
    view = "view"
    export = "export"
    edit_metrics = "edit_metrics"
    edit_plans = "edit_plans"
    edit_subscriptions = "edit_subscriptions"
    import_events = "import_events"
    simulate = "simulate"
    send_test_events = "send_test_events"
    set_timezone = "set_timezone"
    manage_api_keys = "manage_api_keys"
    delete_events = "delete_events"
    load_demo = "load_demo"
    reset_workspace = "reset_workspace"
    import_workspace = "import_workspace"
    view_audit_log = "view_audit_log"
    manage_webhook = "manage_webhook"


REQUIRED: dict[Action, Role] = {
    Action.view: Role.viewer,
    Action.export: Role.viewer,
    Action.edit_metrics: Role.editor,
    Action.edit_plans: Role.editor,
    Action.edit_subscriptions: Role.editor,
    Action.import_events: Role.editor,
    Action.simulate: Role.editor,
    Action.send_test_events: Role.editor,
    Action.set_timezone: Role.editor,
    Action.manage_api_keys: Role.admin,
    Action.delete_events: Role.admin,
    Action.load_demo: Role.admin,
    Action.reset_workspace: Role.admin,
    Action.import_workspace: Role.admin,
    Action.view_audit_log: Role.admin,
    Action.manage_webhook: Role.admin,
}

DESCRIPTIONS: dict[Action, str] = {
    Action.view: "open the workbench",
    Action.export: "download exports",
    Action.edit_metrics: "create, change or delete metrics",
    Action.edit_plans: "create, change or delete plans",
    Action.edit_subscriptions: "change subscriptions",
    Action.import_events: "import event files",
    Action.simulate: "insert simulated events",
    Action.send_test_events: "send test events",
    Action.set_timezone: "change the workspace timezone",
    Action.manage_api_keys: "create or revoke API keys",
    Action.delete_events: "delete imported events",
    Action.load_demo: "load the demo workspace",
    Action.reset_workspace: "reset the workspace",
    Action.import_workspace: "import a workspace file",
    Action.view_audit_log: "see the audit log",
    Action.manage_webhook: "set or remove the alert webhook",
}


@dataclass(frozen=True)
class User:
    """Who is using the app. `email` is None without sign-in (the local user)."""

    email: str | None
    name: str | None
    role: Role | None
    signed_in: bool

    @property
    def label(self) -> str:
        """How the audit log and the sidebar name this person."""
        if self.email:
            return self.email
        return "local user (no sign-in)" if not self.signed_in else (self.name or "unknown")


def can(user: User, action: Action) -> bool:
    return user.role is not None and user.role >= REQUIRED[action]


class PermissionDenied(Exception):
    def __init__(self, user: User, action: Action) -> None:
        self.user, self.action = user, action
        super().__init__(denial(user, action))


def require(user: User, action: Action) -> None:
    if not can(user, action):
        raise PermissionDenied(user, action)


def denial(user: User, action: Action) -> str:
    """The message a person reads when an action is refused."""
    needed = REQUIRED[action].name
    if user.role is None:
        return f"You have no role in this workbench, so you cannot {DESCRIPTIONS[action]}. Ask an admin to add you."
    return (f"Your role is {user.role.name}: you cannot {DESCRIPTIONS[action]} (it needs the {needed} role). "
            "Ask an admin if you need it.")


# =========================================================================== settings

_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
_LOCAL = re.compile(r"^[^@\s]{1,64}$")
_ROLE_KEYS = {r.name for r in Role}
_KNOWN_KEYS = _ROLE_KEYS | {"default", "without_sign_in"}


class SettingsError(ValueError):
    """The roles settings cannot be used; the message names the setting and the entry."""


def _entry(role: str, raw: Any) -> tuple[str, str]:
    """("email" | "domain", normalized text) of one list entry."""
    if not isinstance(raw, str):
        raise SettingsError(f"workbench.roles.{role}: '{raw}' is not text (an e-mail address or a domain)")
    text = raw.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at:
        local, domain = "", text
    if not _DOMAIN.match(domain):
        raise SettingsError(f"workbench.roles.{role}: '{raw}' is neither an e-mail address nor a domain")
    if local:
        if not _LOCAL.match(local):
            raise SettingsError(f"workbench.roles.{role}: '{raw}' is not an e-mail address")
        return "email", f"{local}@{domain}"
    return "domain", domain


@dataclass(frozen=True)
class RoleSettings:
    emails: dict[str, Role] = field(default_factory=dict)
    domains: dict[str, Role] = field(default_factory=dict)
    default: Role | None = None
    without_sign_in: Role = Role.admin

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> RoleSettings:
        """Read `[workbench.roles]`; SettingsError for unknown keys, roles or entries."""
        mapping = dict(mapping or {})
        unknown = sorted(set(mapping) - _KNOWN_KEYS)
        if unknown:
            raise SettingsError(f"workbench.roles: unknown setting {', '.join(unknown)} "
                                f"(use {', '.join(sorted(_KNOWN_KEYS))})")
        emails: dict[str, Role] = {}
        domains: dict[str, Role] = {}
        for role in sorted(Role):  # ascending: a higher role listed too overwrites a lower one
            entries = mapping.get(role.name, [])
            if isinstance(entries, str):
                entries = [entries]
            if not isinstance(entries, Iterable):
                raise SettingsError(f"workbench.roles.{role.name} must be a list of e-mail addresses or domains")
            for raw in entries:
                kind, value = _entry(role.name, raw)
                (emails if kind == "email" else domains)[value] = role
        try:
            default = Role.parse(mapping["default"]) if mapping.get("default") not in (None, "", "none") else None
            without = Role.parse(mapping.get("without_sign_in", "admin"))
        except ValueError as exc:
            raise SettingsError(f"workbench.roles: {exc}") from None
        return cls(emails, domains, default, without)

    def role_for(self, email: str | None, *, email_verified: Any = None) -> Role | None:
        """The role of a signed-in person with this e-mail address (None: no access)."""
        if email_verified is False or str(email_verified).lower() == "false":
            return None
        if email:
            address = email.strip().lower()
            if address in self.emails:
                return self.emails[address]
            domain = address.rpartition("@")[2]
            if "@" in address and domain in self.domains:
                return self.domains[domain]
        return self.default


# =========================================================================== listening


def is_loopback(address: str | None) -> bool:
    """True for addresses only this computer can reach (127.0.0.0/8, ::1, localhost)."""
    if not address:
        return False  # unset: Streamlit listens on every interface
    text = address.strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


ALLOW_ENV = "METERING_ALLOW_NO_SIGN_IN"


@dataclass(frozen=True)
class Listening:
    """Whether the server may start on `address`, and what to tell people."""

    allowed: bool
    open_without_sign_in: bool  # listening beyond this computer with nobody signing in
    message: str


def listening(address: str | None, *, sign_in: bool, allow_without_sign_in: bool) -> Listening:
    shown = address or "every interface"
    if sign_in:
        return Listening(True, False, f"Listening on {shown}; sign-in is required.")
    if is_loopback(address):
        return Listening(True, False, f"Listening on {address} only: sign-in is not configured, so only this "
                                      "computer can open the workbench.")
    if allow_without_sign_in:
        return Listening(True, True, f"Listening on {shown} WITHOUT sign-in ({ALLOW_ENV}=1): anyone who can reach "
                                     "this server can change and delete everything.")
    return Listening(False, False, (
        f"Refusing to listen on {shown} without sign-in: anyone who could reach the server could change and "
        "delete everything. Configure sign-in ([auth] in .streamlit/secrets.toml, see the README), listen on "
        f"127.0.0.1, or set {ALLOW_ENV}=1 to accept the risk."
    ))
