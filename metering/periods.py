"""Billing periods: parsing instants and cutting time into day/week/month/year periods.

Every function returns aware UTC datetimes; period boundaries are computed in the local
wall-clock time of the workspace timezone (an IANA name), so a monthly period always starts at
the same local time of day even when DST shifts the UTC offset (a day across a DST switch lasts
23 or 25 hours).

Rules (contract §3, plus the ones the contract leaves open, marked *):

- A timestamp without an offset is UTC; only a subscription start given as a bare date means
  midnight in the workspace timezone.
- * A string of digits (optionally signed, with a fraction) is Unix epoch seconds, like a JSON
  number: CSV cells arrive as text. ISO 8601 basic dates such as ``20261003`` are therefore not
  accepted; write ``2026-10-03``.
- * Fractional epoch seconds keep microsecond precision (rounded half-even beyond that).
- The k-th period start is the anchor's local date/time plus k intervals, always computed from
  the anchor (never chained), so a monthly anchor on the 31st gives Jan 31 → Feb 28 → Mar 31,
  and a yearly anchor on Feb 29 gives Feb 28 in non-leap years.
- * Local times that do not exist (a DST gap) or exist twice (a DST overlap) are resolved the
  PEP 495 way with ``fold=0``: a time in a gap is read with the offset in force before the gap,
  which moves it forward by the gap's length (02:30 on a New York spring-forward day is 03:30
  EDT); a time in an overlap is the first occurrence (the one still on summer time).
  Period 0 always starts exactly at the anchor instant.
- * Naive datetimes passed to these functions are UTC.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Interval = Literal["day", "week", "month", "year"]
INTERVALS: tuple[str, ...] = get_args(Interval)

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_TEXT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_BARE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Instant = str | int | float | Decimal | datetime | date


@lru_cache(maxsize=256)
def zone(tz: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name; ValueError with a readable message when unknown."""
    if not isinstance(tz, str) or not tz.strip():
        raise ValueError("timezone must be an IANA name such as UTC or Europe/Berlin")
    try:
        return ZoneInfo(tz.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown timezone {tz!r}: use an IANA name such as UTC or Europe/Berlin"
        ) from exc


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _localize(naive: datetime, tz: ZoneInfo) -> datetime:
    """A local wall-clock time as an aware UTC instant (fold=0: see the module docstring)."""
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _from_epoch(seconds: Decimal) -> datetime:
    if not seconds.is_finite():
        raise ValueError("epoch seconds must be a finite number")
    micros = int((seconds * 1_000_000).to_integral_value(rounding=ROUND_HALF_EVEN))
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError as exc:
        raise ValueError(f"epoch seconds {seconds} are out of range") from exc


def parse_instant(value: Instant, *, tz: str = "UTC") -> datetime:
    """An ISO 8601 timestamp, a date, or Unix epoch seconds as an aware UTC datetime.

    A value without an offset (naive datetime, ISO text without ``Z``/offset, bare date) is
    read in ``tz``, which defaults to UTC as the contract requires for events, --from and --to.
    Raises ValueError with a message for a person on anything else.
    """
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be true/false")
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return _localize(value, zone(tz))
        return value.astimezone(UTC)
    if isinstance(value, date):
        return _localize(datetime.combine(value, time()), zone(tz))
    if isinstance(value, (int, Decimal)):
        return _from_epoch(Decimal(value))
    if isinstance(value, float):
        # repr() is the shortest text that reads back as this float: no binary noise.
        return _from_epoch(Decimal(repr(value)))
    if not isinstance(value, str):
        raise ValueError(
            f"a timestamp must be ISO 8601 text or epoch seconds, not {type(value).__name__}"
        )
    text = value.strip()
    if not text:
        raise ValueError("timestamp is empty")
    if _EPOCH_TEXT.match(text):
        try:
            return _from_epoch(Decimal(text))
        except InvalidOperation as exc:  # pragma: no cover - the pattern excludes these
            raise ValueError(f"{value!r} is not a timestamp") from exc
    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a timestamp: use ISO 8601 such as 2026-10-03T12:00:00Z, "
            "2026-10-03T14:00:00+02:00 or 2026-10-03, or epoch seconds"
        ) from exc
    if parsed.tzinfo is None:
        return _localize(parsed, zone(tz))
    return parsed.astimezone(UTC)


# The subscription starts every page can show (the events' range, ingest.MIN_TS_US/MAX_TS_US).
START_RANGE = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
_START_FORMS = "a date (2026-10-01) or an ISO 8601 time (2026-10-15T08:00:00Z)"


def parse_subscription_start(value: Instant, *, tz: str) -> datetime:
    """A subscription start: a bare date is midnight in the workspace timezone ``tz``; an ISO
    8601 date-time reads as :func:`parse_instant` (so one without an offset is UTC).

    * Epoch seconds (a number, or text of digits) are refused: a start is written by a person
    and kept as written, and ``1791028800`` says nothing to the next reader. Starts outside
    1900–2199 are refused too (as event times are)."""
    if isinstance(value, bool) or isinstance(value, (int, float, Decimal)):
        raise ValueError(f"{value!r} is a number: a subscription start is {_START_FORMS}, not epoch seconds")
    if isinstance(value, date) and not isinstance(value, datetime):
        moment = parse_instant(value, tz=tz)
    elif isinstance(value, str) and _BARE_DATE.match(value.strip()):
        try:
            day = date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid date") from exc
        moment = parse_instant(day, tz=tz)
    elif isinstance(value, str) and _EPOCH_TEXT.match(value.strip()):
        raise ValueError(f"{value!r} looks like epoch seconds: a subscription start is {_START_FORMS}")
    else:
        moment = parse_instant(value)
    if not START_RANGE[0] <= moment < START_RANGE[1]:
        raise ValueError(f"{value!r} is outside the supported times, 1900-01-01 to 2199-12-31 (UTC)")
    return moment


def epoch_us(instant: datetime) -> int:
    """UTC epoch microseconds of an instant (the store's `ts_us`); naive means UTC."""
    delta = _as_utc(instant) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def default_anchor(earliest_event_utc: datetime, *, tz: str) -> datetime:
    """Midnight (in ``tz``) of the first day of the month in which the earliest event falls."""
    local = _as_utc(earliest_event_utc).astimezone(zone(tz))
    return _localize(datetime(local.year, local.month, 1), zone(tz))


def _check_interval(interval: str) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")


def _clamped(year: int, month: int, day: int) -> date:
    if not 1 <= year <= 9999:
        raise ValueError("billing period is outside the supported years 1–9999")
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def period_start(anchor: datetime, interval: str, k: int, *, tz: str) -> datetime:
    """Start of the k-th period (k may be negative) as an aware UTC datetime."""
    _check_interval(interval)
    anchor = _as_utc(anchor)
    if k == 0:
        return anchor  # exact, even when the anchor is the second pass of a DST overlap
    zi = zone(tz)
    local = anchor.astimezone(zi).replace(tzinfo=None, fold=0)
    try:
        if interval == "day":
            start = local + timedelta(days=k)
        elif interval == "week":
            start = local + timedelta(weeks=k)
        elif interval == "month":
            months = local.year * 12 + (local.month - 1) + k
            start = datetime.combine(_clamped(months // 12, months % 12 + 1, local.day), local.time())
        else:
            start = datetime.combine(_clamped(local.year + k, local.month, local.day), local.time())
    except OverflowError as exc:
        raise ValueError("billing period is outside the supported years 1–9999") from exc
    return _localize(start, zi)


def period_bounds(anchor: datetime, interval: str, k: int, *, tz: str) -> tuple[datetime, datetime]:
    """The k-th period (k = 0 is the first) as half-open ``[start, end)`` in aware UTC."""
    return period_start(anchor, interval, k, tz=tz), period_start(anchor, interval, k + 1, tz=tz)


def period_index(anchor: datetime, interval: str, instant: datetime, *, tz: str) -> int:
    """The k of the period containing ``instant``; negative for instants before the anchor."""
    _check_interval(interval)
    anchor, instant = _as_utc(anchor), _as_utc(instant)
    zi = zone(tz)
    a, t = anchor.astimezone(zi), instant.astimezone(zi)
    # Estimate from local calendar fields, then correct by at most a step or two.
    if interval == "day":
        k = (t.date() - a.date()).days
    elif interval == "week":
        k = (t.date() - a.date()).days // 7
    elif interval == "month":
        k = (t.year * 12 + t.month) - (a.year * 12 + a.month)
    else:
        k = t.year - a.year
    while period_start(anchor, interval, k, tz=tz) > instant:
        k -= 1
    while period_start(anchor, interval, k + 1, tz=tz) <= instant:
        k += 1
    return k


def periods_between(
    anchor: datetime, interval: str, start: datetime, end: datetime, *, tz: str
) -> list[tuple[datetime, datetime]]:
    """Every period overlapping ``[start, end)``, in order, as full (unclipped) periods.

    Empty when ``end <= start``. A period of zero length (a whole local day skipped, as
    Pacific/Apia did on 2011-12-30) overlaps nothing and is left out.
    """
    start, end = _as_utc(start), _as_utc(end)
    if end <= start:
        return []
    k = period_index(anchor, interval, start, tz=tz)
    out: list[tuple[datetime, datetime]] = []
    lo = period_start(anchor, interval, k, tz=tz)
    while lo < end:
        hi = period_start(anchor, interval, k + 1, tz=tz)
        if hi > lo and hi > start:
            out.append((lo, hi))
        k, lo = k + 1, hi
    return out


def first_period_starting_in_month(
    anchor: datetime, interval: str, year: int, month: int, *, tz: str, from_anchor: bool = False
) -> tuple[datetime, datetime] | None:
    """The first period whose start falls in calendar month ``year-month`` (read in ``tz``),
    or None when no period starts in that month (e.g. a yearly plan in the other 11 months).

    With ``from_anchor`` only periods 0, 1, … count (a subscription has no period before its
    start), so a weekly plan starting on the 15th has period 0 as its period of that month.
    This is the CLI's ``--period YYYY-MM``.
    """
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1–12, not {month}")
    zi = zone(tz)
    month_start = _localize(datetime.combine(_clamped(year, month, 1), time()), zi)
    nxt = year * 12 + month  # zero-based month count of the following month
    month_end = _localize(datetime.combine(_clamped(nxt // 12, nxt % 12 + 1, 1), time()), zi)
    k = period_index(anchor, interval, month_start, tz=tz)
    lo = period_start(anchor, interval, k, tz=tz)
    if lo < month_start:
        k += 1
    if from_anchor and k < 0:
        k = 0  # never walk back past the anchor
    while True:
        lo, hi = period_bounds(anchor, interval, k, tz=tz)
        if lo >= month_end:
            return None
        if hi > lo:
            return lo, hi
        k += 1  # skip a zero-length period
