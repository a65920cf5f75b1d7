"""API keys: named and several, created once at start-up, stored as hashes, checked in constant time,
revocable; and the Developers page that creates, lists and revokes them."""

from __future__ import annotations

import hashlib
import hmac
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from metering import apikeys, store
from tests.app.conftest import ROOT, TIMEOUT, app_engine  # noqa: F401  (the AppTest store fixture)

STRONG = "mtr_env_key_0123456789abcdefghijklmnop"


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(apikeys.ENV_VAR, raising=False)


def rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM api_key"))]


def test_first_start_creates_a_key_once(engine):
    key = apikeys.ensure_key(engine)
    assert key is not None and key.startswith("mtr_") and len(key) == 4 + 43
    assert apikeys.ensure_key(engine) is None  # shown once: later starts do not return it
    assert apikeys.verify(engine, key)
    assert len(rows(engine)) == 1


def test_only_a_hash_is_stored(engine):
    key = apikeys.ensure_key(engine)
    [row] = rows(engine)
    assert not any(isinstance(v, str) and key in v for v in row)
    assert f"sha256:{hashlib.sha256(key.encode()).hexdigest()}" in row
    [info] = apikeys.list_keys(engine)
    assert info.name == "default" and info.active
    assert info.masked == "mtr_" + "•" * 12 + key[-4:] and key not in info.masked


def test_keys_are_random(engine, sqlite_engine):
    assert apikeys.ensure_key(engine) != apikeys.ensure_key(sqlite_engine)
    assert len({apikeys.generate_key() for _ in range(100)}) == 100


@pytest.mark.parametrize("presented", [None, "", " ", "mtr_", "mtr_x", "x" * 10_000, "\x00", "é"])
def test_wrong_keys_fail(engine, presented):
    key = apikeys.ensure_key(engine)
    assert not apikeys.verify(engine, presented)
    assert not apikeys.verify(engine, key[:-1])
    assert not apikeys.verify(engine, key + "x")
    assert not apikeys.verify(engine, key.upper())


def test_no_key_stored_verifies_nothing(engine):
    assert not apikeys.verify(engine, "anything")
    assert apikeys.list_keys(engine) == []


def test_comparison_is_constant_time_over_every_key(engine, monkeypatch):
    key = apikeys.ensure_key(engine)
    apikeys.create_key(engine, "second")
    apikeys.create_key(engine, "third")
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(apikeys.hmac, "compare_digest", spy)
    assert apikeys.verify(engine, key)  # the first key matches, and the others are still compared
    assert not apikeys.verify(engine, "mtr_wrong")
    assert len(calls) == 6 and all(len(a) == len(b) for a, b in calls)  # digests, not keys


def test_named_keys_live_side_by_side(engine):
    first = apikeys.ensure_key(engine)
    info, second = apikeys.create_key(engine, "  billing   service ", created_by="ana@example.com")
    assert info.name == "billing service" and info.created_by == "ana@example.com"
    assert second != first and second.startswith("mtr_")
    assert apikeys.verify(engine, first) and apikeys.verify(engine, second)  # a new key revokes nothing
    assert apikeys.identify(engine, second) == info.id != apikeys.identify(engine, first)
    assert [k.name for k in apikeys.list_keys(engine)] == ["default", "billing service"]
    assert info.masked.endswith(second[-4:])


def test_revoking_one_key_stops_only_that_one(engine):
    first = apikeys.ensure_key(engine)
    info, second = apikeys.create_key(engine, "ci")
    revoked = apikeys.revoke_key(engine, info.id)
    assert revoked.revoked_at is not None and not revoked.active
    assert not apikeys.verify(engine, second) and apikeys.verify(engine, first)
    assert [k.name for k in apikeys.list_keys(engine)] == ["default"]
    assert [k.name for k in apikeys.list_keys(engine, include_revoked=True)] == ["default", "ci"]
    with pytest.raises(KeyError):
        apikeys.revoke_key(engine, info.id)  # already revoked
    with pytest.raises(KeyError):
        apikeys.revoke_key(engine, 999)
    # the name of a revoked key can be used again
    again, third = apikeys.create_key(engine, "ci")
    assert again.id != info.id and apikeys.verify(engine, third)


def test_revoking_every_key_does_not_bring_a_new_one_at_start_up(engine):
    apikeys.ensure_key(engine)
    [info] = apikeys.list_keys(engine)
    apikeys.revoke_key(engine, info.id)
    assert apikeys.ensure_key(engine) is None
    assert apikeys.list_keys(engine) == []


@pytest.mark.parametrize("name, words", [
    ("", "needs a name"), ("   ", "needs a name"), ("x" * 65, "at most 64"), ("a\x00b", "control characters"),
])
def test_bad_names_are_refused(engine, name, words):
    with pytest.raises(apikeys.KeyNameError, match=words):
        apikeys.create_key(engine, name)
    assert apikeys.list_keys(engine) == []


def test_a_name_is_unique_among_active_keys(engine):
    apikeys.create_key(engine, "ci")
    with pytest.raises(apikeys.KeyNameError, match="already named 'ci'"):
        apikeys.create_key(engine, "ci")


def test_last_use_is_recorded_at_most_once_a_minute(engine, monkeypatch):
    key = apikeys.ensure_key(engine)
    key_id = apikeys.identify(engine, key)
    assert apikeys.use_due(engine, key_id) and not apikeys.use_due(engine, key_id)
    apikeys.mark_used(engine, key_id)
    [info] = apikeys.list_keys(engine)
    assert info.last_used_at is not None and info.last_used_at.tzinfo is not None
    monkeypatch.setattr(apikeys, "USED_WRITE_SECONDS", 0.0)
    assert apikeys.use_due(engine, key_id)


def test_an_older_store_gets_the_new_columns(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = store.make_engine(url)
    with old.begin() as conn:
        conn.execute(text("DROP TABLE api_key"))
        conn.execute(text("CREATE TABLE api_key (id INTEGER PRIMARY KEY, key_hash VARCHAR(200) NOT NULL,"
                          " hint VARCHAR(8) NOT NULL, created_at DATETIME NOT NULL)"))
        conn.execute(text("INSERT INTO api_key VALUES (1, :h, 'mtr_abcd', '2026-01-02 03:04:05')"),
                     {"h": apikeys.hash_key(STRONG)})
    old.dispose()
    engine = store.make_engine(url)
    [info] = apikeys.list_keys(engine)
    assert info.name == "default" and info.active and apikeys.verify(engine, STRONG)
    assert apikeys.ensure_key(engine) is None
    engine.dispose()


def test_env_key_is_used_at_first_start(engine, monkeypatch):
    monkeypatch.setenv(apikeys.ENV_VAR, STRONG)
    assert apikeys.ensure_key(engine) is None  # whoever set the variable knows the key
    assert apikeys.verify(engine, STRONG)
    assert STRONG not in repr(rows(engine))
    assert apikeys.list_keys(engine)[0].masked == "mtr_" + "•" * 12 + STRONG[-4:]


def test_env_key_is_ignored_once_a_key_exists(engine, monkeypatch):
    generated = apikeys.ensure_key(engine)
    monkeypatch.setenv(apikeys.ENV_VAR, STRONG)
    assert apikeys.ensure_key(engine) is None
    assert apikeys.verify(engine, generated) and not apikeys.verify(engine, STRONG)


@pytest.mark.parametrize("weak", ["short", "a" * 23, "has a space in it 0123456789", "x" * 201, "ab" * 20])
def test_weak_env_keys_are_refused(engine, monkeypatch, weak):
    monkeypatch.setenv(apikeys.ENV_VAR, weak)
    with pytest.raises(apikeys.WeakKey, match=apikeys.ENV_VAR):
        apikeys.ensure_key(engine)
    assert rows(engine) == []


def test_two_processes_starting_at_once_make_one_key(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'race.db'}"
    engines = [store.make_engine(url) for _ in range(4)]
    results: list[str | None] = []
    barrier = threading.Barrier(len(engines))

    def start(e):
        barrier.wait()
        results.append(apikeys.ensure_key(e))

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [k for k in results if k]
    assert len(created) == 1 and len(rows(engines[0])) == 1
    assert all(apikeys.verify(e, created[0]) for e in engines)
    for e in engines:
        e.dispose()


def test_other_processes_see_a_revocation_within_the_cache_time(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'two.db'}"
    here, there = store.make_engine(url), store.make_engine(url)
    old = apikeys.ensure_key(here)
    assert apikeys.verify(there, old)
    info, new = apikeys.create_key(here, "new")
    apikeys.revoke_key(here, apikeys.identify(here, old))
    monkeypatch.setattr(apikeys, "CACHE_SECONDS", 0.0)
    assert apikeys.verify(there, new) and not apikeys.verify(there, old)
    here.dispose()
    there.dispose()


# =========================================================================== the Developers page


def developers_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/developers.py")
    at.run()
    assert not at.exception, at.exception
    return at


def keys_table(at: AppTest):
    return next(d.value for d in at.dataframe if "Last used" in d.value.columns)


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_page_shows_a_key_created_on_first_visit_once(app_engine):
    at = developers_page()
    plain = at.session_state["api:key_plain"]
    assert apikeys.verify(app_engine, plain)
    assert any(c.value == plain for c in at.code)
    assert any("new key default" in s.value for s in at.success)
    # snippets embed it
    assert any(plain in c.value and "/api/v1/events" in c.value for c in at.code)
    # a fresh session sees only the masked key in the list and snippets that read METERING_API_KEY
    other = developers_page()
    assert "api:key_plain" not in other.session_state
    assert not any(plain in c.value for c in other.code)
    table = keys_table(other)
    assert list(table["Name"]) == ["default"] and table["Key"][0].startswith("mtr_••••")
    assert not any(plain in str(v) for v in table.to_numpy().ravel())
    assert any("$METERING_API_KEY" in c.value for c in other.code)


def test_create_list_and_revoke_on_the_page(app_engine):
    old = apikeys.ensure_key(app_engine)
    at = developers_page()
    assert "api:key_plain" not in at.session_state
    at.text_input(key="developers:new_name").input("billing-service")
    _button(at, "Create key").click().run()
    assert not at.exception, at.exception
    new = at.session_state["api:key_plain"]
    assert new != old and apikeys.verify(app_engine, new) and apikeys.verify(app_engine, old)  # the old one still works
    assert any(c.value == new for c in at.code)
    assert list(keys_table(at)["Name"]) == ["default", "billing-service"]
    # a taken name is explained beside the field and nothing is created
    at.text_input(key="developers:new_name").input("billing-service")
    _button(at, "Create key").click().run()
    assert any("already named 'billing-service'" in c.value for c in at.caption)
    assert len(apikeys.list_keys(app_engine)) == 2
    # revoke the old one, after the confirmation
    at.selectbox(key="developers:revoke_choice").select(apikeys.identify(app_engine, old)).run()
    _button(at, "Revoke…").click().run()
    _button(at, "Cancel").click().run()
    assert apikeys.verify(app_engine, old)
    _button(at, "Revoke…").click().run()
    _button(at, "Revoke now").click().run()
    assert not at.exception, at.exception
    assert not apikeys.verify(app_engine, old) and apikeys.verify(app_engine, new)
    assert any("Revoked the key default" in s.value for s in at.success)
    assert list(keys_table(at)["Name"]) == ["billing-service"]
    _button(at, "Hide the key").click().run()
    assert "api:key_plain" not in at.session_state
    from metering import audit
    assert [(e.action, e.target, e.actor) for e in audit.entries(app_engine)] == [
        ("apikey.revoke", "default", "local user (no sign-in)"), ("apikey.create", "billing-service", "local user (no sign-in)"),
        ("apikey.create", "default", "start-up")]


def test_page_explains_a_weak_env_key(app_engine, monkeypatch):
    monkeypatch.setenv(apikeys.ENV_VAR, "weak")
    at = developers_page()
    assert any(apikeys.ENV_VAR in e.value for e in at.error)


def test_page_lists_snippets_for_each_metric(app_engine):
    from metering import metrics

    metrics.create_metric(app_engine, data={"name": "Storage", "code": "storage", "unit": "GB", "aggregation": "max",
                                            "event_name": "storage.snapshot", "value_property": "usage.gb", "group_by": ["bucket"]})
    at = developers_page()
    assert at.selectbox(key="developers:metric").value == "storage"
    texts = [c.value for c in at.code]
    assert any('"usage": {' in t and "storage.snapshot" in t for t in texts)
    assert any("node" in c.value.lower() for c in at.caption)


def test_masked_form_of_a_key_without_the_prefix(engine, monkeypatch):
    monkeypatch.setenv(apikeys.ENV_VAR, "Zq81-random-ci-secret-XY7w")
    apikeys.ensure_key(engine)
    assert apikeys.list_keys(engine)[0].masked == "•" * 12 + "XY7w"


def test_the_first_key_is_in_the_audit_log(engine, monkeypatch):
    from metering import audit

    key = apikeys.ensure_key(engine)
    apikeys.ensure_key(engine)  # a later start adds nothing
    [row] = audit.entries(engine)
    assert (row.actor, row.action, row.target) == ("start-up", "apikey.create", "default")
    assert key not in row.detail and key[-4:] in row.detail
