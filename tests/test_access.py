"""Roles from the settings, the action table, and the rule for listening without sign-in."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from metering.access import (
    ALLOW_ENV, REQUIRED, Action, PermissionDenied, Role, RoleSettings, SettingsError, User, can, denial,
    is_loopback, listening, require,
)

SETTINGS = RoleSettings.from_mapping({
    "admin": ["Ana@Example.com"],
    "editor": ["@example.com", "pricing@partner.io"],
    "viewer": ["example.com", "partner.io", "intern@example.com"],
})


def user(role: Role | None) -> User:
    return User("x@example.com", "X", role, True)


def test_exact_address_beats_domain_and_highest_role_wins_within_a_kind() -> None:
    assert SETTINGS.role_for("ana@example.com") is Role.admin
    assert SETTINGS.role_for("ANA@EXAMPLE.COM") is Role.admin  # case-insensitive
    assert SETTINGS.role_for("bob@example.com") is Role.editor  # domain listed as editor and viewer
    assert SETTINGS.role_for("intern@example.com") is Role.viewer  # an address can get less than its domain
    assert SETTINGS.role_for("pricing@partner.io") is Role.editor
    assert SETTINGS.role_for("someone@partner.io") is Role.viewer
    assert SETTINGS.role_for("eve@evil.example.org") is None
    assert SETTINGS.role_for("eve@sub.example.com") is None  # a domain is not its subdomains
    assert SETTINGS.role_for("example.com") is None  # not an address
    assert SETTINGS.role_for(None) is None


def test_unverified_address_gets_nothing_and_default_applies_to_the_rest() -> None:
    settings = RoleSettings.from_mapping({"admin": ["ana@example.com"], "default": "viewer"})
    assert settings.role_for("ana@example.com", email_verified=False) is None
    assert settings.role_for("ana@example.com", email_verified="false") is None
    assert settings.role_for("ana@example.com", email_verified=True) is Role.admin
    assert settings.role_for("zoe@elsewhere.org") is Role.viewer
    assert RoleSettings.from_mapping({"default": "none"}).role_for("zoe@elsewhere.org") is None


def test_without_sign_in_role() -> None:
    assert RoleSettings.from_mapping({}).without_sign_in is Role.admin
    assert RoleSettings.from_mapping({"without_sign_in": "viewer"}).without_sign_in is Role.viewer


@pytest.mark.parametrize("mapping, words", [
    ({"owner": ["a@b.co"]}, "unknown setting owner"),
    ({"admin": ["not an address"]}, "'not an address' is neither"),
    ({"admin": ["a b@example.com"]}, "is not an e-mail address"),
    ({"admin": [42]}, "'42' is not text"),
    ({"default": "superuser"}, "unknown role 'superuser'"),
    ({"admin": ["@"]}, "neither"),
])
def test_bad_settings_are_named(mapping, words) -> None:
    with pytest.raises(SettingsError, match=words):
        RoleSettings.from_mapping(mapping)


def test_action_table() -> None:
    viewer_may = {a for a in Action if can(user(Role.viewer), a)}
    editor_may = {a for a in Action if can(user(Role.editor), a)}
    assert viewer_may == {Action.view, Action.export}
    assert editor_may == viewer_may | {
        Action.edit_metrics, Action.edit_plans, Action.edit_subscriptions, Action.import_events, Action.simulate,
        Action.send_test_events, Action.set_timezone,
    }
    assert all(can(user(Role.admin), a) for a in Action)
    assert not any(can(user(None), a) for a in Action)
    assert set(REQUIRED) == set(Action)


def test_require_and_denial_message() -> None:
    require(user(Role.admin), Action.reset_workspace)
    with pytest.raises(PermissionDenied, match="Your role is viewer: you cannot reset the workspace .*admin"):
        require(user(Role.viewer), Action.reset_workspace)
    assert "no role" in denial(user(None), Action.view)


@given(st.emails(), st.sampled_from(list(Role)))
def test_a_listed_address_gets_its_role(address: str, role: Role) -> None:
    try:
        settings = RoleSettings.from_mapping({role.name: [address]})
    except SettingsError:
        return  # hypothesis' addresses include forms the settings refuse (quoted local parts, IP domains)
    assert settings.role_for(address.upper()) is role
    assert settings.role_for("other-" + address) in (None, role)


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), (None, False), ("192.168.1.5", False), ("example.com", False),
])
def test_is_loopback(address, loopback) -> None:
    assert is_loopback(address) is loopback


def test_listening_rule() -> None:
    assert listening("127.0.0.1", sign_in=False, allow_without_sign_in=False).allowed
    refused = listening("0.0.0.0", sign_in=False, allow_without_sign_in=False)
    assert not refused.allowed and ALLOW_ENV in refused.message
    opened = listening("0.0.0.0", sign_in=False, allow_without_sign_in=True)
    assert opened.allowed and opened.open_without_sign_in
    signed = listening(None, sign_in=True, allow_without_sign_in=False)
    assert signed.allowed and not signed.open_without_sign_in
