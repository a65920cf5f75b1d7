"""The workspace API key: created on first start, stored only as a hash, shown once, rotatable.

* `ensure_key(engine)` runs at start-up: when the store has no key yet it creates one
  (`METERING_API_KEY` if that variable is set, else `mtr_` + 43 random URL-safe characters) and
  returns it in clear text; later calls return None. `rotate_key` replaces the key and returns
  the new one. These two are the only places the clear text ever leaves this module: the
  store keeps a SHA-256 digest and the last four characters (a hint to tell keys apart).
* `verify(engine, presented)` hashes what a client sent and compares digests with
  `hmac.compare_digest` (constant time). The active digest is cached per engine for
  `CACHE_SECONDS`, so a request costs no query; `rotate_key` drops this process's cache (every
  engine's) at once; other processes see a rotation within `CACHE_SECONDS`.

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

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from metering.models import utcnow

ENV_VAR = "METERING_API_KEY"
PREFIX = "mtr_"
MIN_KEY_LENGTH = 24  # for METERING_API_KEY: 24 random URL-safe characters ≈ 144 bits
MAX_KEY_LENGTH = 200
CACHE_SECONDS = 1.0
_SCHEME = "sha256"


class ApiKey(SQLModel, table=True):
    """The workspace's API key: a single row (id 1), so two processes starting at once cannot
    both create one. Only its hash is stored."""

    __tablename__ = "api_key"
    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=200)  # "sha256:<hex digest>"
    hint: str = Field(max_length=8)  # the key's last 4 characters (after "mtr_" for generated keys)
    created_at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about the stored key (never the key itself)."""

    hint: str
    created_at: datetime

    @property
    def masked(self) -> str:
        if self.hint.startswith(PREFIX):
            return f"{PREFIX}{'•' * 12}{self.hint[len(PREFIX):]}"
        return f"{'•' * 12}{self.hint}"


def _hint(key: str) -> str:
    return (PREFIX if key.startswith(PREFIX) else "") + key[-4:]


class WeakKey(ValueError):
    """METERING_API_KEY is too short (or too long) to be stored as a fast hash."""


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


_WORKSPACE_KEY_ID = 1
_lock = threading.Lock()
# engine -> (monotonic time loaded, stored hash or None)
_cache: weakref.WeakKeyDictionary[Engine, tuple[float, str | None]] = weakref.WeakKeyDictionary()


def _forget(engine: Engine) -> None:
    # Every engine of this process: the app's pages and the API each hold their own engine on
    # the same store, and a rotation on the Developers page must stop the old key at once.
    with _lock:
        _cache.clear()


def _active(session: Session) -> ApiKey | None:
    return session.get(ApiKey, _WORKSPACE_KEY_ID)


def ensure_key(engine: Engine) -> str | None:
    """Create the workspace key if there is none. Returns the new key (shown once), else None.

    With METERING_API_KEY set, that key is the one created (and None is returned: whoever set
    the variable knows it). Once a key exists the variable is not read again; rotate instead.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    with Session(engine) as session:
        if _active(session) is not None:
            return None
        key = _check_env_key(env) if env else generate_key()
        session.add(ApiKey(id=_WORKSPACE_KEY_ID, key_hash=hash_key(key), hint=_hint(key)))
        try:
            session.commit()
        except IntegrityError:  # another process created it first: that key stands
            session.rollback()
            return None
        finally:
            _forget(engine)
    return None if env else key


def rotate_key(engine: Engine) -> str:
    """Replace the workspace key with a new random one; the old key stops working. Returns it."""
    key = generate_key()
    with Session(engine) as session:
        row = _active(session) or ApiKey(id=_WORKSPACE_KEY_ID, key_hash="", hint="")
        row.key_hash, row.hint, row.created_at = hash_key(key), _hint(key), utcnow()
        session.add(row)
        session.commit()
    _forget(engine)
    return key


def key_info(engine: Engine) -> KeyInfo | None:
    with Session(engine) as session:
        row = _active(session)
        return KeyInfo(row.hint, row.created_at) if row else None


def _active_hash(engine: Engine) -> str | None:
    now = time.monotonic()
    with _lock:
        cached = _cache.get(engine)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    with Session(engine) as session:
        row = _active(session)
        digest = row.key_hash if row else None
    with _lock:
        _cache[engine] = (now, digest)
    return digest


def needs_lookup(engine: Engine) -> bool:
    """True when `verify` would query the store (no fresh cached digest): async callers then
    run it in a thread, so a slow database never blocks their event loop."""
    with _lock:
        cached = _cache.get(engine)
    return cached is None or time.monotonic() - cached[0] >= CACHE_SECONDS


def verify(engine: Engine, presented: str | None) -> bool:
    """True when `presented` is the workspace key (constant-time comparison of digests)."""
    if not presented or len(presented) > MAX_KEY_LENGTH:
        return False
    stored = _active_hash(engine)
    if stored is None:
        return False
    return hmac.compare_digest(hash_key(presented).encode(), stored.encode())
