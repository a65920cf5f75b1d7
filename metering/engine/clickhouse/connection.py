"""One small client interface over the two ways of reaching ClickHouse.

* :class:`ChdbClient`: embedded ClickHouse (chdb), in-process, data in a directory. chdb runs
  one embedded server per process, bound to the first path it opens, so sessions are shared
  per path and a second path in the same process is refused with a clear message.
* :class:`ServerClient`: a ClickHouse server over HTTP (clickhouse-connect).

Both answer `command(sql, params)`, `query_arrow(sql, params) -> pyarrow.Table` and
`insert_arrow(table, arrow_table)`. Parameters use ClickHouse's server-side binding,
`{name:Type}` in the SQL, so values never become SQL text; the chdb client writes them in
ClickHouse's parameter text form itself (chdb passes them as text).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import pyarrow as pa


class ClickHouseClient(Protocol):
    database: str

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None: ...
    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table: ...
    def insert_arrow(self, table: str, data: pa.Table) -> None: ...


class ClickHouseError(RuntimeError):
    """A ClickHouse call failed (the message is ClickHouse's)."""


# ---------------------------------------------------------------- parameter text (chdb)


def _escaped(text: str) -> str:
    """A top-level parameter value is read in ClickHouse's 'escaped' (TSV) text form."""
    return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r").replace("\0", "\\0"))


def _quoted(value: Any) -> str:
    """An element inside an array/tuple parameter is read in the 'quoted' (SQL literal) form."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_quoted(v) for v in value) + "]"
    return _quoted(_plain(value)) if isinstance(value, (datetime, date)) else _plain(value)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"unsupported parameter value {type(value).__name__}")


def param_text(value: Any) -> str:
    """A Python value in the text form ClickHouse parses a `{name:Type}` parameter from."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _escaped(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_quoted(v) for v in value) + "]"
    return _plain(value)


# ---------------------------------------------------------------- chdb

_sessions: dict[str, Any] = {}
_sessions_lock = threading.Lock()


def _chdb_session(path: str) -> Any:
    from chdb.session import Session

    with _sessions_lock:
        found = _sessions.get(path)
        if found is None:
            if _sessions:
                other = next(iter(_sessions))
                raise ClickHouseError(
                    f"chdb runs one embedded ClickHouse per process; it is open at {other!r}, "
                    f"so {path!r} cannot be opened too (use one chdb directory per process)")
            found = _sessions[path] = Session(path)
        return found


class ChdbClient:
    """Embedded ClickHouse (chdb) over a data directory, `database` inside it."""

    def __init__(self, path: str, database: str = "metering") -> None:
        self.path = path
        self.database = database
        self._session = _chdb_session(path)

    def _run(self, sql: str, fmt: str, params: Mapping[str, Any] | None) -> Any:
        texts = {k: param_text(v) for k, v in params.items()} if params else None
        try:
            return self._session.query(sql, fmt, params=texts) if texts else self._session.query(sql, fmt)
        except Exception as exc:  # chdb raises its own error types; one type for callers
            raise ClickHouseError(str(exc)) from exc

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(sql, "CSV", params)

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        return self._run(sql, "ArrowTable", params)

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        # chdb's Python() table function reads a variable of the calling frame by name.
        names = ", ".join(f"`{n}`" for n in data.column_names)
        arrow_rows = data  # noqa: F841  (read by name by Python(arrow_rows))
        self._run(f"INSERT INTO {table} ({names}) SELECT {names} FROM Python(arrow_rows)", "CSV", None)


# ---------------------------------------------------------------- server


class ServerClient:
    """A ClickHouse server over HTTP (clickhouse-connect)."""

    def __init__(self, host: str, port: int = 8123, username: str = "default", password: str = "",
                 database: str = "metering", secure: bool = False, **settings: Any) -> None:
        import clickhouse_connect

        self.database = database
        try:
            self._client = clickhouse_connect.get_client(
                host=host, port=port, username=username, password=password, secure=secure,
                settings=settings or None)
        except Exception as exc:
            raise ClickHouseError(f"cannot reach ClickHouse at {host}:{port}: {exc}") from exc

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        try:
            self._client.command(sql, parameters=dict(params) if params else None)
        except Exception as exc:
            raise ClickHouseError(str(exc)) from exc

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        try:
            return self._client.query_arrow(sql, parameters=dict(params) if params else None,
                                            use_strings=True)
        except Exception as exc:
            raise ClickHouseError(str(exc)) from exc

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        try:
            self._client.insert_arrow(table, data)
        except Exception as exc:
            raise ClickHouseError(str(exc)) from exc

    def close(self) -> None:
        self._client.close()


def connect(url: str) -> ClickHouseClient:
    """`chdb:///path/to/dir[?database=name]` or `clickhouse://user:password@host:8123/db`
    (`clickhouses://` for TLS) to a client."""
    parts = urlsplit(url)
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    if parts.scheme == "chdb":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ClickHouseError("chdb URL needs a directory: chdb:///path/to/dir")
        return ChdbClient(path, query.get("database", "metering"))
    if parts.scheme in ("clickhouse", "clickhouses", "clickhouse+http", "clickhouse+https"):
        secure = parts.scheme in ("clickhouses", "clickhouse+https")
        if not parts.hostname:
            raise ClickHouseError("ClickHouse URL needs a host: clickhouse://user:password@host:8123/db")
        return ServerClient(
            parts.hostname, parts.port or (8443 if secure else 8123),
            unquote(parts.username or "default"), unquote(parts.password or ""),
            unquote(parts.path.lstrip("/")) or "metering", secure)
    raise ClickHouseError(f"not a ClickHouse URL: {parts.scheme or url!r} (use chdb:///dir or clickhouse://host:8123/db)")
