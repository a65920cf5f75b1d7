"""The workspace API key: created once, stored as a hash, checked in constant time, rotatable;
and the Developers page that shows and rotates it."""

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
    info = apikeys.key_info(engine)
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
    assert apikeys.key_info(engine) is None


def test_comparison_is_constant_time(engine, monkeypatch):
    key = apikeys.ensure_key(engine)
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(apikeys.hmac, "compare_digest", spy)
    assert apikeys.verify(engine, key)
    assert not apikeys.verify(engine, "mtr_wrong")
    assert len(calls) == 2 and all(len(a) == len(b) for a, b in calls)  # digests, not keys


def test_rotation_replaces_the_key_at_once(engine):
    old = apikeys.ensure_key(engine)
    new = apikeys.rotate_key(engine)
    assert new != old and new.startswith("mtr_")
    assert apikeys.verify(engine, new) and not apikeys.verify(engine, old)
    assert len(rows(engine)) == 1
    newer = apikeys.rotate_key(engine)
    assert apikeys.verify(engine, newer) and not apikeys.verify(engine, new)


def test_rotation_without_a_key_creates_one(engine):
    key = apikeys.rotate_key(engine)
    assert apikeys.verify(engine, key)


def test_env_key_is_used_at_first_start(engine, monkeypatch):
    monkeypatch.setenv(apikeys.ENV_VAR, STRONG)
    assert apikeys.ensure_key(engine) is None  # whoever set the variable knows the key
    assert apikeys.verify(engine, STRONG)
    assert STRONG not in repr(rows(engine))
    assert apikeys.key_info(engine).masked == "mtr_" + "•" * 12 + STRONG[-4:]


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


def test_other_processes_see_a_rotation_within_the_cache_time(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'two.db'}"
    here, there = store.make_engine(url), store.make_engine(url)
    old = apikeys.ensure_key(here)
    assert apikeys.verify(there, old)
    new = apikeys.rotate_key(here)
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


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_page_shows_a_key_created_on_first_visit_once(app_engine):
    at = developers_page()
    plain = at.session_state["api:key_plain"]
    assert apikeys.verify(app_engine, plain)
    assert any(c.value == plain for c in at.code)
    assert any("new key" in s.value for s in at.success)
    # snippets embed it
    assert any(plain in c.value and "/api/v1/events" in c.value for c in at.code)
    # a fresh session sees only the masked key and snippets that read METERING_API_KEY
    other = developers_page()
    assert "api:key_plain" not in other.session_state
    assert not any(plain in c.value for c in other.code)
    # the mask is text, not a code block: a copy button would copy the dots (issue 8)
    assert any("`mtr_••••" in m.value for m in other.markdown)
    assert not any("••••" in c.value for c in other.code)
    assert any("$METERING_API_KEY" in c.value for c in other.code)


def test_rotate_on_the_page(app_engine):
    old = apikeys.ensure_key(app_engine)
    at = developers_page()
    assert "api:key_plain" not in at.session_state
    _button(at, "Rotate key").click().run()
    assert any("401" in w.value for w in at.warning)
    _button(at, "Cancel").click().run()
    assert apikeys.verify(app_engine, old)
    _button(at, "Rotate key").click().run()
    _button(at, "Rotate now").click().run()
    assert not at.exception
    new = at.session_state["api:key_plain"]
    assert new != old and apikeys.verify(app_engine, new) and not apikeys.verify(app_engine, old)
    assert any(c.value == new for c in at.code)
    _button(at, "Hide the key").click().run()
    assert "api:key_plain" not in at.session_state


def test_page_explains_a_weak_env_key(app_engine, monkeypatch):
    monkeypatch.setenv(apikeys.ENV_VAR, "weak")
    at = developers_page()
    assert any(apikeys.ENV_VAR in e.value for e in at.error)


def test_page_lists_snippets_for_each_metric(app_engine):
    from metering import metrics

    metrics.create_metric(app_engine, data={"name": "Storage", "code": "storage", "unit": "GB", "aggregation": "max",
                                            "event_name": "storage.snapshot", "value_property": "usage.gb", "group_by": ["bucket"]})
    at = developers_page()
    assert at.selectbox[0].value == "storage"
    texts = [c.value for c in at.code]
    assert any('"usage": {' in t and "storage.snapshot" in t for t in texts)
    assert any("node" in c.value.lower() for c in at.caption)


def test_masked_form_of_a_key_without_the_prefix(engine, monkeypatch):
    monkeypatch.setenv(apikeys.ENV_VAR, "Zq81-random-ci-secret-XY7w")
    apikeys.ensure_key(engine)
    assert apikeys.key_info(engine).masked == "•" * 12 + "XY7w"
