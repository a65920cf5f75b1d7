"""Where events live: the `METERING_EVENTS_URL` setting (the CLI's `--events-url`).

* unset (or `embedded`): the embedded engine, next to the SQL store (the default).
* `clickhouse://user:password@host:8123/db` a ClickHouse server over HTTP (clickhouse-connect);
  `clickhouses://…` for HTTPS (port 8443 by default). The database defaults to `metering`.
* `chdb:///path/to/dir` embedded ClickHouse (chdb: the same SQL engine, in-process), data in
  that directory; `?database=name` picks the database inside it (default `metering`).
* `openmeter+clickhouse://…`, `openmeter+clickhouses://…` or `openmeter+chdb:///…`: read-only,
  over an existing OpenMeter events table (`?table=om_events&namespace=default` are the
  defaults; the database defaults to `openmeter`, OpenMeter's own).

Metrics, plans, subscriptions, keys and imports stay in the SQL store (`DATABASE_URL`) in every
case. A bad URL is one line saying what is wrong (`EventsUrlError`); the password is never
part of it.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

ENV = "METERING_EVENTS_URL"
EMBEDDED = "embedded"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_SERVER = {"clickhouse": False, "clickhouses": True}
_EXAMPLES = ("clickhouse://user:password@host:8123/db, chdb:///path/to/dir, "
             "openmeter+clickhouse://user:password@host:8123/openmeter?table=om_events, "
             "or leave it unset for the embedded engine")


class EventsUrlError(ValueError):
    """METERING_EVENTS_URL / --events-url cannot be used (one line, says why)."""


@dataclass(frozen=True)
class EventsSetting:
    """A parsed events URL. `kind` is "server" or "chdb"; `openmeter` = read-only over an
    OpenMeter table."""

    kind: str
    database: str
    openmeter: bool = False
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = ""
    secure: bool = False
    path: str = ""
    table: str = "events"
    namespace: str = ""

    @property
    def read_only(self) -> bool:
        return self.openmeter

    @property
    def key(self) -> str:
        """Identity of the place (one client per key in a process)."""
        where = self.path if self.kind == "chdb" else f"{self.username}@{self.host}:{self.port}"
        return f"{'openmeter+' if self.openmeter else ''}{self.kind}:{where}/{self.database}/{self.table}/{self.namespace}"

    def shown(self) -> str:
        """The URL for messages and pages (no password)."""
        prefix = "openmeter+" if self.openmeter else ""
        if self.kind == "chdb":
            text = f"{prefix}chdb://{self.path}?database={self.database}"
        else:
            scheme = "clickhouses" if self.secure else "clickhouse"
            text = f"{prefix}{scheme}://{self.username}@{self.host}:{self.port}/{self.database}"
        if self.openmeter:
            text += f"{'&' if '?' in text else '?'}table={self.table}&namespace={self.namespace}"
        return text


def _fail(url: str, why: str) -> EventsUrlError:
    return EventsUrlError(f"events URL {_masked(url)!r}: {why}")


def _masked(url: str) -> str:
    """The URL as typed, its password replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password:
            netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
            return parts._replace(netloc=netloc).geturl()
    except ValueError:
        pass
    return url


def parse(url: str | None) -> EventsSetting | None:
    """An events URL → its setting; None (or "", "embedded") = the embedded engine.
    Raises EventsUrlError with one line on anything it cannot use."""
    url = (url or "").strip()
    if not url or url.lower() == EMBEDDED:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port that is not a number, brackets that do not close
        raise _fail(url, f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    openmeter = scheme.startswith("openmeter+")
    base = scheme.removeprefix("openmeter+")
    if base not in (*_SERVER, "chdb"):
        raise _fail(url, f"unknown scheme {parts.scheme + ':' if parts.scheme else '(none)'}; use {_EXAMPLES}")
    allowed = {"table", "namespace"} if openmeter else set()
    if base == "chdb":
        allowed.add("database")
    try:
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
    except ValueError:
        raise _fail(url, "the part after ? must be name=value pairs joined by &") from None
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise _fail(url, f"unknown option {unknown[0]!r} (allowed here: {', '.join(sorted(allowed)) or 'none'})")
    table = query.get("table", "om_events" if openmeter else "events")
    namespace = query.get("namespace", "default") if openmeter else ""
    if not _NAME.match(table):
        raise _fail(url, f"table {table!r} is not a plain table name (letters, digits, _)")
    if openmeter and not namespace:
        raise _fail(url, "namespace must not be empty")
    default_db = "openmeter" if openmeter else "metering"

    if base == "chdb":
        if parts.netloc:
            raise _fail(url, "a chdb URL names a directory, not a host: chdb:///path/to/dir (three slashes)")
        path = unquote(parts.path)
        if not path or path == "/":
            raise _fail(url, "a chdb URL needs a directory: chdb:///path/to/dir")
        database = query.get("database", default_db)
        if not _NAME.match(database):
            raise _fail(url, f"database {database!r} is not a plain name (letters, digits, _)")
        return EventsSetting("chdb", database, openmeter, path=os.path.abspath(path), table=table, namespace=namespace)

    if not parts.hostname:
        raise _fail(url, f"a ClickHouse URL needs a host: {base}://user:password@host:8123/db")
    secure = _SERVER[base]
    database = unquote(parts.path.strip("/")) or default_db
    if not _NAME.match(database):
        raise _fail(url, f"database {database!r} is not a plain name (letters, digits, _)")
    return EventsSetting(
        "server", database, openmeter, host=parts.hostname, port=port or (8443 if secure else 8123),
        username=unquote(parts.username or "default"), password=unquote(parts.password or ""),
        secure=secure, table=table, namespace=namespace,
    )


def events_url() -> str | None:
    """The configured URL (METERING_EVENTS_URL), None when unset or blank."""
    return os.environ.get(ENV, "").strip() or None


_parsed: dict[str, EventsSetting | None] = {}
_lock = threading.Lock()


def current() -> EventsSetting | None:
    """The setting now in effect (None: the embedded engine). Parsed once per value."""
    raw = os.environ.get(ENV, "")
    try:
        return _parsed[raw]
    except KeyError:
        pass
    found = parse(raw)  # raises on a bad value (not cached: the message comes again)
    with _lock:
        _parsed[raw] = found
    return found


def problem() -> str | None:
    """Why the configured URL cannot be used (None: it can, or none is set)."""
    try:
        current()
    except EventsUrlError as exc:
        return str(exc)
    return None
