"""API keys: named, several at a time, stored only as hashes, shown once, revocable.

* `ensure_key(engine)` runs at start-up: when the store has never had a key it creates one named
  "default" (`METERING_API_KEY` if that variable is set, else `mtr_` + 43 random URL-safe
  characters) and returns it in clear text; later calls return None, even after every key was
  revoked (a restart never mints a key nobody asked for). `create_key(engine, name)` adds a key
  and returns it; it does not touch the others. These two are the only places the clear text
  ever leaves this module: the store keeps a SHA-256 digest and the last four characters (a hint
  to tell keys apart).
* `revoke_key` stops a key at once in this process (other processes within `CACHE_SECONDS`);
  the row stays, marked revoked, so the list can say when.
* `identify(engine, presented)` hashes what a client sent and compares it with every active
  digest using `hmac.compare_digest` (constant time, and no early exit, so the time does not
  say which key nearly matched). Active digests are cached per engine for `CACHE_SECONDS`, so
  a request costs no query. `mark_used` records a key's last use, at most once a minute per key
  and process (`use_due` says when), so the API does not write on every request.

Why a plain SHA-256 and not scrypt/PBKDF2: a generated key carries 256 random bits, so no
amount of guessing against a stolen digest can find it; slow hashes exist to protect
low-entropy passwords, and would cost milliseconds on every API request. That argument needs
a strong key, so `METERING_API_KEY` must be at least `MIN_KEY_LENGTH` characters.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, func, select

from metering import audit
from metering.models import as_utc, utcnow

ENV_VAR = "METERING_API_KEY"
PREFIX = "mtr_"
DEFAULT_NAME = "default"
STARTUP_ACTOR = "start-up"  # who the audit log and the key list name for the first key
MIN_KEY_LENGTH = 24  # for METERING_API_KEY: 24 random URL-safe characters ≈ 144 bits
MAX_KEY_LENGTH = 200
MAX_NAME_LENGTH = 64
CACHE_SECONDS = 1.0
USED_WRITE_SECONDS = 60.0
_SCHEME = "sha256"


class ApiKey(SQLModel, table=True):
    """One API key. Only its hash is stored; `revoked_at` set means it no longer works."""

    __tablename__ = "api_key"
    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=200)  # "sha256:<hex digest>"
    hint: str = Field(max_length=8)  # the key's last 4 characters (after "mtr_" for generated keys)
    created_at: datetime = Field(default_factory=utcnow)
    name: str = Field(default=DEFAULT_NAME, max_length=MAX_NAME_LENGTH)
    created_by: str = Field(default="", max_length=320)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


# Columns added after the first version of the table (one unnamed key): added on start-up.
_ADDED_COLUMNS = ("name", "created_by", "last_used_at", "revoked_at")


def upgrade_schema(engine: Engine) -> None:
    """Add the columns an older store's api_key table lacks (its one key becomes "default")."""
    present = {c["name"] for c in inspect(engine).get_columns("api_key")}
    missing = [c for c in _ADDED_COLUMNS if c not in present]
    if not missing:
        return
    table = ApiKey.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        for name in missing:
            column = table.c[name]
            kind = column.type.compile(dialect=engine.dialect)
            default = {"name": f" NOT NULL DEFAULT '{DEFAULT_NAME}'", "created_by": " NOT NULL DEFAULT ''"}.get(name, "")
            conn.execute(text(f"ALTER TABLE api_key ADD COLUMN {name} {kind}{default}"))


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a stored key (never the key itself)."""

    id: int
    name: str
    hint: str
    created_at: datetime
    created_by: str = ""
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def masked(self) -> str:
        if self.hint.startswith(PREFIX):
            return f"{PREFIX}{'•' * 12}{self.hint[len(PREFIX):]}"
        return f"{'•' * 12}{self.hint}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _info(row: ApiKey) -> KeyInfo:
    assert row.id is not None
    return KeyInfo(row.id, row.name, row.hint, as_utc(row.created_at) or utcnow(), row.created_by,
                   as_utc(row.last_used_at), as_utc(row.revoked_at))


def _hint(key: str) -> str:
    return (PREFIX if key.startswith(PREFIX) else "") + key[-4:]


class WeakKey(ValueError):
    """METERING_API_KEY is too short (or too long) to be stored as a fast hash."""


class KeyNameError(ValueError):
    """A key name that cannot be used (blank, too long, or taken by an active key)."""


def generate_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return f"{_SCHEME}:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"


def _check_env_key(key: str) -> str:
    key = key.strip()
    weak = len(set(key)) < 10  # "aaaa…": long but guessable (randomness itself cannot be checked)
    if weak or not (MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH) or any(c.isspace() or not c.isprintable() for c in key):
        raise WeakKey(
            f"{ENV_VAR} must be {MIN_KEY_LENGTH}–{MAX_KEY_LENGTH} random printable characters without spaces"
            f" (for example {PREFIX} followed by secrets.token_urlsafe(32)); it is stored as a fast hash,"
            " which only a long random key makes safe"
        )
    return key


def check_name(name: str) -> str:
    """The name as stored, or KeyNameError saying what is wrong with it."""
    name = " ".join(str(name).split())
    if not name:
        raise KeyNameError("a key needs a name, e.g. billing-service or ci")
    if len(name) > MAX_NAME_LENGTH:
        raise KeyNameError(f"a key name has at most {MAX_NAME_LENGTH} characters")
    if not name.isprintable():
        raise KeyNameError("a key name cannot hold control characters")
    return name


_FIRST_KEY_ID = 1  # a fixed id, so two processes starting at once cannot both create "default"
_lock = threading.Lock()
# engine -> (monotonic time loaded, [(stored hash, key id)] of the active keys)
_cache: weakref.WeakKeyDictionary[Engine, tuple[float, list[tuple[str, int]]]] = weakref.WeakKeyDictionary()
_used: weakref.WeakKeyDictionary[Engine, dict[int, float]] = weakref.WeakKeyDictionary()


def _forget() -> None:
    # Every engine of this process: the app's pages and the API each hold their own engine on
    # the same store, and a revocation on the Developers page must stop the key at once.
    with _lock:
        _cache.clear()


def ensure_key(engine: Engine) -> str | None:
    """Create the first key ("default") if the store never had one. Returns it (shown once), else None.

    With METERING_API_KEY set, that key is the one created (and None is returned: whoever set
    the variable knows it). Once any key exists the variable is not read again."""
    env = os.environ.get(ENV_VAR, "").strip()
    with Session(engine) as session:
        if session.exec(select(ApiKey.id).limit(1)).first() is not None:
            return None
        key = _check_env_key(env) if env else generate_key()
        session.add(ApiKey(id=_FIRST_KEY_ID, key_hash=hash_key(key), hint=_hint(key), name=DEFAULT_NAME,
                           created_by=STARTUP_ACTOR))
        try:
            session.commit()
        except IntegrityError:  # another process created it first: that key stands
            session.rollback()
            return None
        finally:
            _forget()
    audit.record(engine, actor=STARTUP_ACTOR, role=None, action="apikey.create", target=DEFAULT_NAME,
                 detail=f"the first key ({'from ' + ENV_VAR if env else 'generated, shown once'}): {_hint(key)}")
    return None if env else key


def create_key(engine: Engine, name: str, *, created_by: str = "") -> tuple[KeyInfo, str]:
    """A new key named `name` (unique among active keys). Returns what may be shown and the key."""
    name = check_name(name)
    key = generate_key()
    for _attempt in range(5):
        with Session(engine) as session:
            taken = session.exec(select(ApiKey.id).where(ApiKey.name == name, col(ApiKey.revoked_at).is_(None))).first()
            if taken is not None:
                raise KeyNameError(f"an active key is already named '{name}': pick another name or revoke that one")
            # Explicit ids (max + 1, retried on a clash) work the same on SQLite and PostgreSQL,
            # where the first key's fixed id would otherwise collide with the sequence.
            next_id = int(session.exec(select(func.coalesce(func.max(ApiKey.id), 0))).one()) + 1
            row = ApiKey(id=next_id, key_hash=hash_key(key), hint=_hint(key), name=name, created_by=created_by[:320])
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                continue
            session.refresh(row)
            _forget()
            return _info(row), key
    raise RuntimeError("could not store the new key: the store kept changing")  # pragma: no cover


def revoke_key(engine: Engine, key_id: int) -> KeyInfo:
    """Stop a key at once. KeyError when there is no such active key."""
    with Session(engine) as session:
        row = session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            raise KeyError(key_id)
        row.revoked_at = utcnow()
        session.add(row)
        session.commit()
        session.refresh(row)
        info = _info(row)
    _forget()
    return info


def list_keys(engine: Engine, *, include_revoked: bool = False) -> list[KeyInfo]:
    """Keys oldest first (active ones only, unless asked)."""
    query = select(ApiKey).order_by(col(ApiKey.id))
    if not include_revoked:
        query = query.where(col(ApiKey.revoked_at).is_(None))
    with Session(engine) as session:
        return [_info(r) for r in session.exec(query).all()]


def _active(engine: Engine) -> list[tuple[str, int]]:
    now = time.monotonic()
    with _lock:
        cached = _cache.get(engine)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    with Session(engine) as session:
        rows = session.exec(select(ApiKey.key_hash, ApiKey.id).where(col(ApiKey.revoked_at).is_(None))).all()
    digests = [(h, int(i)) for h, i in rows]
    with _lock:
        _cache[engine] = (now, digests)
    return digests


def needs_lookup(engine: Engine) -> bool:
    """True when `identify` would query the store (no fresh cached digests): async callers then
    run it in a thread, so a slow database never blocks their event loop."""
    with _lock:
        cached = _cache.get(engine)
    return cached is None or time.monotonic() - cached[0] >= CACHE_SECONDS


def identify(engine: Engine, presented: str | None) -> int | None:
    """The id of the active key `presented` is, else None (constant-time over every key)."""
    if not presented or len(presented) > MAX_KEY_LENGTH:
        return None
    digest = hash_key(presented).encode()
    found: int | None = None
    for stored, key_id in _active(engine):
        if hmac.compare_digest(digest, stored.encode()) and found is None:
            found = key_id
    return found


def verify(engine: Engine, presented: str | None) -> bool:
    """True when `presented` is an active key."""
    return identify(engine, presented) is not None


def use_due(engine: Engine, key_id: int) -> bool:
    """Whether this process should record the key's use now (at most once per USED_WRITE_SECONDS)."""
    now = time.monotonic()
    with _lock:
        seen = _used.setdefault(engine, {})
        if now - seen.get(key_id, -USED_WRITE_SECONDS) < USED_WRITE_SECONDS:
            return False
        seen[key_id] = now
        return True


def mark_used(engine: Engine, key_id: int) -> None:
    with Session(engine) as session:
        row = session.get(ApiKey, key_id)
        if row is not None:
            row.last_used_at = utcnow()
            session.add(row)
            session.commit()
