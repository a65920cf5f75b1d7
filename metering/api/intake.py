"""Reading event bodies: the msgspec fast path and the exact path (contract §1 rules)."""

from __future__ import annotations


import re
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from metering import ingest, store
from metering.models import EVENT_NAME_RE
from metering.peers import cloudevents
from metering.api.limits import (
    MAX_BATCH,
    MAX_FUTURE_S,
)
from metering.api.errors import ApiError


# --------------------------------------------------------------------------- validation fast path

_ISO_FAST = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|([+-])(\d{2}):(\d{2}))?)?"
)
_EPOCH_FAST = re.compile(r"-?\d{1,12}(?:\.\d{1,6})?")
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
# msgspec decodes a body ~3x faster than json.loads (decoders below, with the event struct)
# and encodes canonical properties ~10x faster than json.dumps. Floats come back as marked
# literal text (like ingest.loads_exact); integers as ints, whose text is their literal,
# except "-0": bodies that may hold one take the exact path.
_ENCODER = msgspec.json.Encoder(order="sorted")
_OPEN_QUOTED = ('"' + ingest._OPEN).encode()
_CLOSE_QUOTED = (ingest._CLOSE + '"').encode()
_MINUS_ZERO = re.compile(rb"-0(?![0-9.eE])")  # starts with a literal: re scans for it quickly
_FIELDS = frozenset(ingest.EVENT_FIELDS)
_NAME_FULLMATCH = EVENT_NAME_RE.fullmatch
# Escapes that yield text no database takes: NUL, and UTF-16 surrogates (fine in pairs, which
# json.loads joins; a lone one cannot be encoded as UTF-8). Only bodies holding one are searched.
_RISKY_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def _may_hold_minus_zero(body: bytes) -> bool:
    """True when the body may hold the JSON number -0 (after ':', '[' or ','), which msgspec
    would read as 0. "-0" inside text (dates, identifiers) mostly follows something else."""
    for match in _MINUS_ZERO.finditer(body):
        i = match.start() - 1
        while i >= 0 and body[i] in b" \t\r\n":
            i -= 1
        if i < 0 or body[i] in b":[,":
            return True
    return False


def _fast_timestamp(stamp: Any) -> int | None:
    """Epoch microseconds for the common timestamp forms, else None (the slow path decides)."""
    ts = _fast_timestamp_any(stamp)
    # Outside the supported times: the exact path refuses it with the reason.
    return ts if ts is not None and ingest.MIN_TS_US <= ts < ingest.MAX_TS_US else None


def _fast_timestamp_any(stamp: Any) -> int | None:
    kind = type(stamp)
    if kind is int:  # epoch seconds as an integer (msgspec decoding)
        return stamp * 1_000_000 if -ingest.MAX_EPOCH_S < stamp < ingest.MAX_EPOCH_S else None
    if kind is not str:
        return None
    n = len(stamp)
    # The usual shapes: 2026-10-03, 2026-10-03T12:00:00, …Z, …+02:00; parsed by the C parser.
    if n in (10, 19, 20, 25) and stamp[4] == "-" and stamp[7] == "-" and (
        n == 10 or (stamp[10] == "T" and stamp[13] == ":" and stamp[16] == ":"
                    and (n == 19 or (n == 20 and stamp[19] == "Z") or (n == 25 and stamp[19] in "+-" and stamp[22] == ":")))
    ):
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        if not 1900 <= moment.year <= 2200:  # pandas' nanosecond range ends in 2262; keep well inside it
            return None
        return (moment - (_EPOCH if moment.tzinfo is None else _EPOCH_UTC)) // _MICROSECOND
    if ingest.is_number(stamp):
        literal = ingest.number_text(stamp)
        if not _EPOCH_FAST.fullmatch(literal):
            return None
        seconds = Decimal(literal)
        if not -ingest.MAX_EPOCH_S < seconds < ingest.MAX_EPOCH_S:
            return None
        return int((seconds * 1_000_000).to_integral_value(rounding=ROUND_FLOOR))
    m = _ISO_FAST.fullmatch(stamp)
    if m is None:
        return None
    year = int(m[1])
    if not 1900 <= year <= 2200:
        return None
    try:
        moment = datetime(year, int(m[2]), int(m[3]), int(m[4] or 0), int(m[5] or 0), int(m[6] or 0),
                          int((m[7] or "0").ljust(6, "0")))
    except ValueError:
        return None
    offset_minutes = 0
    if m[9]:
        hours, minutes = int(m[10]), int(m[11])
        if hours > 23 or minutes > 59:
            return None
        offset_minutes = (hours * 60 + minutes) * (1 if m[9] == "+" else -1)
    return (moment - _EPOCH) // _MICROSECOND - offset_minutes * 60_000_000


def canonical_json(properties: dict[str, Any]) -> str | None:
    """`ingest.canonical_json` via msgspec's encoder (same bytes, a test checks every character's
    escape), or None when msgspec cannot encode it (integers past its range)."""
    try:
        raw = _ENCODER.encode(properties)
    except (msgspec.EncodeError, OverflowError, ValueError, TypeError):
        return None
    if _OPEN_QUOTED in raw:
        raw = raw.replace(_OPEN_QUOTED, b"").replace(_CLOSE_QUOTED, b"")
    return raw.decode("utf-8")


def _fast_record(obj: Any) -> tuple[str, str, int, str, str] | None:
    """(name, customer, ts_us, key or "", canonical properties) for an ordinary valid event,
    else None. Only forms whose outcome is certain are taken; everything else is left to
    `ingest.parse_records` (which also writes the reasons for rejections). Text is kept as
    sent (never trimmed); a marked number (a JSON number where text belongs) is left to it."""
    if type(obj) is not dict or not obj.keys() <= _FIELDS:
        return None
    name = obj.get("event_name")
    customer = obj.get("customer_id")
    if type(name) is not str or type(customer) is not str or not _NAME_FULLMATCH(name):
        return None
    if not 0 < len(customer) <= 255 or ingest.is_number(customer) or "\x00" in customer:
        return None
    key = obj.get("idempotency_key")
    if key is None:
        key = ""
    elif type(key) is not str or len(key) > 255 or ingest.is_number(key) or "\x00" in key:
        return None
    props = obj.get("properties")
    if props is None:
        canonical = "{}"
    elif type(props) is dict:
        canonical = canonical_json(props)  # type: ignore[assignment]
        if canonical is None:
            return None
    else:
        return None
    ts = _fast_timestamp(obj.get("timestamp"))
    if ts is None:
        return None
    return name, customer, ts, key, canonical


def content_keys(names: Sequence[str], customers: Sequence[str], ts_us: Sequence[int], properties: Sequence[str]) -> list[str]:
    """`ingest.content_keys` for plain lists: the same SipHash of the same joined text."""
    if not names:
        return []
    joined = np.array([f"{n}\x1f{c}\x1f{p}" for n, c, p in zip(names, customers, properties)], dtype=object)
    digests = pd.util.hash_array(joined, categorize=False).tolist()
    offset = ingest._TS_OFFSET
    return [f"h:{t + offset:016x}{d:016x}" for t, d in zip(ts_us, digests)]


def _bad_text(value: Any) -> str | None:
    """Why a decoded JSON value holds text no store accepts (NUL, lone surrogate), else None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "contains a NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "contains an unpaired UTF-16 surrogate (\\ud800–\\udfff)"
    return None


def _with_keys(records: list[tuple[int, tuple[str, str, int, str, str]]]) -> list[tuple[int, store.EventRow]]:
    """Fill in the content-hash key of records that came without an idempotency key."""
    missing = [r for _, r in records if not r[3]]
    keys = iter(content_keys([r[0] for r in missing], [r[1] for r in missing], [r[2] for r in missing], [r[4] for r in missing]))
    return [(i, (name, customer, ts, key or next(keys), props)) for i, (name, customer, ts, key, props) in records]


_NULL_RAW = msgspec.Raw(b"null")


class _Event(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An event as the fast decoder reads it. Not tracked by the garbage collector (it cannot
    be part of a cycle): 1,000 of them per batch would otherwise trigger collections that
    scan the whole process (Streamlit's objects too), ~25% of a batch's CPU time."""

    event_name: str
    customer_id: str
    timestamp: Any
    idempotency_key: str | None = None
    properties: msgspec.Raw = _NULL_RAW  # canonicalised one event at a time


class _Batch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    events: list[_Event]


_BATCH_DECODER = msgspec.json.Decoder(_Batch, float_hook=ingest._mark)
_EVENT_DECODER = msgspec.json.Decoder(_Event, float_hook=ingest._mark)
_PROPERTIES_DECODER = msgspec.json.Decoder(dict[str, Any], float_hook=ingest._mark)


def fast_rows(body: bytes) -> tuple[list[store.EventRow], bool] | None:
    """(rows, single) for a body of ordinary valid events (msgspec, typed), else None: then
    the exact path decodes it again and explains every problem. Raises ApiError for a batch
    over MAX_BATCH, as the exact path would."""
    if _may_hold_minus_zero(body):
        return None
    try:
        events = _BATCH_DECODER.decode(body).events
        single = False
    except Exception:  # noqa: BLE001 - not a batch of ordinary events
        try:
            events = [_EVENT_DECODER.decode(body)]
            single = True
        except Exception:  # noqa: BLE001 - nor one ordinary event
            return None
    if len(events) > MAX_BATCH:
        raise ApiError(422, "too_many_events", f"a batch holds at most {MAX_BATCH:,} events; this one has {len(events):,}: split it")
    rows: list[Any] = []
    missing: list[int] = []
    decode_properties = _PROPERTIES_DECODER.decode
    seen_stamps: dict[str, int] = {}  # events of a batch often share their time
    for ev in events:
        name, customer, key = ev.event_name, ev.customer_id, ev.idempotency_key
        # NUL is refused (no store takes it); the body is usually checked for "\u0000" before.
        if not _NAME_FULLMATCH(name) or not 0 < len(customer) <= 255 or "\x00" in customer:
            return None
        if key is None or key == "":
            key = ""
            missing.append(len(rows))
        elif len(key) > 255 or "\x00" in key:
            return None
        raw = ev.properties
        if raw == _NULL_RAW:
            canonical: str | None = "{}"
        else:
            try:
                canonical = canonical_json(decode_properties(raw))
            except Exception:  # noqa: BLE001 - not an object, or numbers msgspec cannot hold
                return None
            if canonical is None:
                return None
        stamp = ev.timestamp
        ts = seen_stamps.get(stamp) if type(stamp) is str else None
        if ts is None:
            ts = _fast_timestamp(stamp)
            if ts is None:
                return None
            if type(stamp) is str:
                seen_stamps[stamp] = ts
        rows.append((name, customer, ts, key, canonical))
    if missing:
        keys = content_keys([rows[i][0] for i in missing], [rows[i][1] for i in missing],
                            [rows[i][2] for i in missing], [rows[i][4] for i in missing])
        for i, computed in zip(missing, keys):
            name, customer, ts, _, props = rows[i]
            rows[i] = (name, customer, ts, computed, props)
    return rows, single


def validate_events(events: Sequence[Any], *, risky: bool = True) -> tuple[list[tuple[int, store.EventRow]], list[dict[str, Any]]]:
    """Validate decoded events (from `ingest.loads_exact`). Returns the good ones as (index, row)
    in input order, and one error `{"index", "field", "reason"}` per rejected event."""
    good: dict[int, store.EventRow] = {}
    errors: list[dict[str, Any]] = []
    fast: list[tuple[int, tuple[str, str, int, str, str]]] = []
    slow: list[tuple[int, Any]] = []
    for index, obj in enumerate(events):
        if risky and (reason := _bad_text(obj)) is not None:
            field = next((k for k, v in obj.items() if _bad_text(v) or _bad_text(k)), "event") if isinstance(obj, dict) else "event"
            errors.append({"index": index, "field": field, "reason": reason})
            continue
        record = _fast_record(obj)
        if record is None:
            slow.append((index, obj))
        else:
            fast.append((index, record))
    good.update(_with_keys(fast))
    if slow:
        for index, row, error in _slow_validate(slow):
            if error is not None:
                errors.append({"index": index, "field": error[0], "reason": error[1]})
            else:
                good[index] = row  # type: ignore[assignment]
    errors.sort(key=lambda e: e["index"])
    return sorted(good.items()), errors


def _slow_validate(records: list[tuple[int, Any]]) -> list[tuple[int, store.EventRow | None, tuple[str, str] | None]]:
    try:
        parsed = ingest.parse_records(records)
    except Exception:  # noqa: BLE001 - an input the parser did not foresee: look at each alone
        if len(records) == 1:
            return [(records[0][0], None, ("event", "this event could not be read"))]
        out = []
        for record in records:
            out.extend(_slow_validate([record]))
        return out
    out: list[tuple[int, store.EventRow | None, tuple[str, str] | None]] = []
    for line, row in zip(parsed.lines, parsed.rows()):
        out.append((int(line), row, None))
    for err in parsed.errors:
        out.append((int(err.line), None, (err.field, err.reason)))
    return out



def _exact_decode(body: bytes) -> Any:
    """The body decoded with number literals kept exactly (raises ApiError 422)."""
    try:
        text_ = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(422, "invalid_json", f"the body is not UTF-8 text (byte {exc.start})") from None
    if not text_.strip():
        raise ApiError(422, "invalid_json", 'the body is empty: send one event object or {"events": [...]}')
    try:
        return ingest.loads_exact(text_)
    except ValueError as exc:  # json.JSONDecodeError and NaN/Infinity
        raise ApiError(422, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(422, "invalid_json", "the body nests arrays or objects too deeply") from None


def _events_of(data: Any) -> tuple[list[Any], bool]:
    """The events of a decoded body and whether it was a single event (raises ApiError 422)."""
    if isinstance(data, dict) and "events" in data:
        extra = sorted(k for k in data if k != "events")
        if extra:
            raise ApiError(422, "invalid_shape", f"unknown field '{extra[0][:40]}' next to events: a batch is {{\"events\": [...]}} only")
        events = data["events"]
        if not isinstance(events, list):
            raise ApiError(422, "invalid_shape", "events must be an array of event objects")
        if len(events) > MAX_BATCH:
            raise ApiError(422, "too_many_events", f"a batch holds at most {MAX_BATCH:,} events; this one has {len(events):,}: split it")
        return events, False
    if isinstance(data, dict):
        return [data], True
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(data), "a number")
    if isinstance(data, str) and ingest.is_number(data):
        kind = "a number"
    raise ApiError(422, "invalid_shape", f'expected a JSON object (one event, or {{"events": [...]}} for a batch), got {kind}')


def _iso_us(ts_us: int) -> str:
    return (_EPOCH_UTC + timedelta(microseconds=ts_us)).isoformat().replace("+00:00", "Z")


def refuse_future(
    rows: list[store.EventRow], indexes: Sequence[int] | None, errors: list[dict[str, Any]], *, now_us: int | None = None,
) -> tuple[list[store.EventRow], list[dict[str, Any]]]:
    """Take out the events dated more than MAX_FUTURE_S after the server's clock (one far-future
    event would otherwise become every default view's "latest"), each reported as an error of
    its index. `indexes` are the rows' positions in the request (None: 0, 1, …)."""
    if not rows:
        return rows, errors
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    limit = now_us + MAX_FUTURE_S * 1_000_000
    if max(row[2] for row in rows) <= limit:  # the usual case: one pass, nothing refused
        return rows, errors
    kept: list[store.EventRow] = []
    late: list[dict[str, Any]] = []
    for index, row in zip(indexes if indexes is not None else range(len(rows)), rows):
        if row[2] > limit:
            late.append({"index": index, "field": "timestamp", "reason": (
                f"{_iso_us(row[2])} is more than {MAX_FUTURE_S // 60} minutes after the server's time "
                f"({_iso_us(now_us)}): the API takes events up to {MAX_FUTURE_S // 60} minutes ahead; "
                "import planned (future) usage from a file on the Events page")})
        else:
            kept.append(row)
    return kept, sorted(errors + late, key=lambda e: e["index"])


# --------------------------------------------------------------------------- CloudEvents

CLOUDEVENTS_TYPES = {"application/cloudevents+json": "single", "application/cloudevents-batch+json": "batch"}


def cloudevents_kind(content_type: str | None) -> str | None:
    """"single" / "batch" for the CloudEvents JSON media types, None for anything else (which
    is read as the workbench's own event format, as before)."""
    if not content_type:
        return None
    return CLOUDEVENTS_TYPES.get(content_type.split(";")[0].strip().lower())


def cloudevent_rows(body: bytes, *, batch: bool, received: str) -> tuple[list[store.EventRow], list[dict[str, Any]], bool]:
    """(rows, errors, single) for a CloudEvents body: each CloudEvent is mapped to an event
    (`cloudevents.to_event`; no `time` = `received`, as OpenMeter does), then validated like any
    event; errors keep the CloudEvent's index and are named in CloudEvents words."""
    data = _exact_decode(body)
    if batch:
        if not isinstance(data, list):
            raise ApiError(422, "invalid_shape", "application/cloudevents-batch+json is a JSON array of CloudEvents")
        if len(data) > MAX_BATCH:
            raise ApiError(422, "too_many_events", f"a batch holds at most {MAX_BATCH:,} events; this one has {len(data):,}: split it")
        items = data
    else:
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_shape", "application/cloudevents+json is one CloudEvent object "
                           "(send several as a JSON array with application/cloudevents-batch+json)")
        items = [data]
    mapped: list[tuple[int, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    for index, obj in enumerate(items):
        try:
            mapped.append((index, cloudevents.to_event(obj, default_time=received)))
        except cloudevents.CloudEventError as exc:
            errors.append({"index": index, "field": exc.field, "reason": exc.reason})
    good, bad = validate_events([event for _, event in mapped], risky=True)
    for err in bad:
        field, reason = cloudevents.rename(err["field"], err["reason"])
        errors.append({"index": mapped[err["index"]][0], "field": field, "reason": reason})
    errors.sort(key=lambda e: e["index"])
    return [row for _, row in good], errors, not batch
