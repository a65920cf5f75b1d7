"""Billing periods: parsing, anchors, month/year clamping, DST in local wall-clock time."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.periods import (
    default_anchor,
    epoch_us,
    first_period_starting_in_month,
    parse_instant,
    parse_subscription_start,
    period_bounds,
    period_index,
    period_start,
    periods_between,
    zone,
)

UTC = timezone.utc
NY = "America/New_York"
BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hours(bounds: tuple[datetime, datetime]) -> float:
    return (bounds[1] - bounds[0]) / timedelta(hours=1)


# --- parse_instant ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-10-03T12:00:00Z", utc(2026, 10, 3, 12)),
        ("2026-10-03T12:00:00z", utc(2026, 10, 3, 12)),
        ("2026-10-03T14:00:00+02:00", utc(2026, 10, 3, 12)),
        ("2026-10-03T08:00:00-04:00", utc(2026, 10, 3, 12)),
        ("2026-10-03", utc(2026, 10, 3)),
        ("2026-10-03T12:00:00", utc(2026, 10, 3, 12)),  # no offset: UTC
        ("2026-10-03 12:00:00.250Z", utc(2026, 10, 3, 12, 0, 0, 250000)),
        ("  2026-10-03T12:00:00Z  ", utc(2026, 10, 3, 12)),
        (1791115200, utc(2026, 10, 4, 12)),
        ("1791115200", utc(2026, 10, 4, 12)),
        (1791115200.5, utc(2026, 10, 4, 12, 0, 0, 500000)),
        (Decimal("1791115200.000001"), utc(2026, 10, 4, 12, 0, 0, 1)),
        (0, utc(1970, 1, 1)),
        (-86400, utc(1969, 12, 31)),
        (datetime(2026, 10, 3, 12), utc(2026, 10, 3, 12)),
        (datetime(2026, 10, 3, 14, tzinfo=ZoneInfo(BERLIN)), utc(2026, 10, 3, 12)),
        (date(2026, 10, 3), utc(2026, 10, 3)),
    ],
)
def test_parse_instant(value: object, expected: datetime) -> None:
    got = parse_instant(value)  # type: ignore[arg-type]
    assert got == expected
    assert got.tzinfo is UTC


def test_parse_instant_reads_offsetless_values_in_given_zone() -> None:
    assert parse_instant("2026-10-03", tz=BERLIN) == utc(2026, 10, 2, 22)
    assert parse_instant("2026-10-03T12:00:00", tz=NY) == utc(2026, 10, 3, 16)
    # an explicit offset wins over tz
    assert parse_instant("2026-10-03T12:00:00Z", tz=NY) == utc(2026, 10, 3, 12)
    # epoch seconds are absolute
    assert parse_instant(0, tz=NY) == utc(1970, 1, 1)


@pytest.mark.parametrize(
    "value", ["", "   ", "nope", "2026-13-01", "2026-02-30", "2026-10-03T25:00", True, None, [1], float("nan"), "1e999999"]
)
def test_parse_instant_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_instant(value)  # type: ignore[arg-type]


def test_parse_instant_message_is_readable() -> None:
    with pytest.raises(ValueError, match="is not a timestamp: use ISO 8601"):
        parse_instant("yesterday")


def test_unknown_timezone() -> None:
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Base'"):
        zone("Mars/Base")
    with pytest.raises(ValueError, match="unknown timezone"):
        parse_instant("2026-10-03", tz="Not/AZone")
    with pytest.raises(ValueError, match="IANA"):
        zone("")


def test_epoch_us() -> None:
    assert epoch_us(utc(1970, 1, 1, 0, 0, 1, 5)) == 1_000_005
    assert epoch_us(utc(1969, 12, 31, 23, 59, 59)) == -1_000_000
    assert epoch_us(datetime(1970, 1, 2)) == 86_400_000_000  # naive is UTC


# --- subscription start -----------------------------------------------------------------------


def test_subscription_start_bare_date_is_local_midnight() -> None:
    assert parse_subscription_start("2026-10-03", tz=BERLIN) == utc(2026, 10, 2, 22)  # CEST
    assert parse_subscription_start("2026-12-03", tz=BERLIN) == utc(2026, 12, 2, 23)  # CET
    assert parse_subscription_start("2026-03-08", tz=NY) == utc(2026, 3, 8, 5)  # EST, DST day
    assert parse_subscription_start(date(2026, 7, 1), tz=NY) == utc(2026, 7, 1, 4)
    assert parse_subscription_start("2026-10-03", tz="UTC") == utc(2026, 10, 3)


def test_subscription_start_other_forms_are_utc_when_offsetless() -> None:
    assert parse_subscription_start("2026-10-03T00:00:00", tz=BERLIN) == utc(2026, 10, 3)
    assert parse_subscription_start("2026-10-03T00:00:00+02:00", tz=NY) == utc(2026, 10, 2, 22)



@pytest.mark.parametrize("start", [1791115200, 1791115200.5, "1791115200", " 1791115200 ", "-5"])
def test_subscription_start_as_epoch_seconds_is_refused(start: object) -> None:
    with pytest.raises(ValueError, match="epoch seconds"):
        parse_subscription_start(start, tz=BERLIN)  # type: ignore[arg-type]


@pytest.mark.parametrize("start", ["9999-01-01", "1899-12-31", "2200-01-01T00:00:00Z"])
def test_subscription_start_outside_the_supported_times_is_refused(start: str) -> None:
    with pytest.raises(ValueError, match="outside the supported times"):
        parse_subscription_start(start, tz="UTC")


def test_subscription_start_invalid_date() -> None:
    with pytest.raises(ValueError, match="not a valid date"):
        parse_subscription_start("2026-02-29", tz=BERLIN)


# --- default anchor ---------------------------------------------------------------------------


def test_default_anchor_utc() -> None:
    assert default_anchor(utc(2026, 10, 17, 9, 30), tz="UTC") == utc(2026, 10, 1)
    assert default_anchor(utc(2026, 10, 1), tz="UTC") == utc(2026, 10, 1)


def test_default_anchor_uses_local_month() -> None:
    # 23:30 UTC on Mar 31 is already April 1 in Berlin (CEST)
    assert default_anchor(utc(2026, 3, 31, 23, 30), tz=BERLIN) == utc(2026, 3, 31, 22)
    # 03:00 UTC on Nov 1 is still Oct 31 in New York (EDT): October, midnight EDT
    assert default_anchor(utc(2026, 11, 1, 3), tz=NY) == utc(2026, 10, 1, 4)
    assert default_anchor(utc(2026, 1, 15), tz=NY) == utc(2026, 1, 1, 5)


# --- month / year arithmetic ------------------------------------------------------------------


def test_month_anchor_on_31st_clamps_and_returns() -> None:
    anchor = utc(2026, 1, 31)
    starts = [period_start(anchor, "month", k, tz="UTC") for k in range(0, 8)]
    assert [s.date() for s in starts] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
        date(2026, 6, 30),
        date(2026, 7, 31),
        date(2026, 8, 31),
    ]
    assert period_bounds(anchor, "month", 1, tz="UTC") == (utc(2026, 2, 28), utc(2026, 3, 31))


def test_month_anchor_on_31st_in_leap_year() -> None:
    anchor = utc(2028, 1, 31, 9, 15)
    assert period_start(anchor, "month", 1, tz="UTC") == utc(2028, 2, 29, 9, 15)
    assert period_start(anchor, "month", 2, tz="UTC") == utc(2028, 3, 31, 9, 15)


@pytest.mark.parametrize(
    "day, feb_2026, feb_2028, mar",
    [(29, 28, 29, 29), (30, 28, 29, 30), (31, 28, 29, 31), (28, 28, 28, 28)],
)
def test_month_anchors_29th_to_31st(day: int, feb_2026: int, feb_2028: int, mar: int) -> None:
    anchor_2026 = utc(2026, 1, day)
    assert period_start(anchor_2026, "month", 1, tz="UTC") == utc(2026, 2, feb_2026)
    assert period_start(anchor_2026, "month", 2, tz="UTC") == utc(2026, 3, mar)
    anchor_2028 = utc(2028, 1, day)
    assert period_start(anchor_2028, "month", 1, tz="UTC") == utc(2028, 2, feb_2028)


def test_month_negative_k_and_year_rollover() -> None:
    anchor = utc(2026, 1, 31)
    assert period_start(anchor, "month", -1, tz="UTC") == utc(2025, 12, 31)
    assert period_start(anchor, "month", -2, tz="UTC") == utc(2025, 11, 30)
    assert period_start(anchor, "month", 11, tz="UTC") == utc(2026, 12, 31)
    assert period_start(anchor, "month", 13, tz="UTC") == utc(2027, 2, 28)
    assert period_start(anchor, "month", 25, tz="UTC") == utc(2028, 2, 29)


def test_year_anchor_on_feb_29() -> None:
    anchor = utc(2024, 2, 29, 12)
    assert [period_start(anchor, "year", k, tz="UTC") for k in range(5)] == [
        utc(2024, 2, 29, 12),
        utc(2025, 2, 28, 12),
        utc(2026, 2, 28, 12),
        utc(2027, 2, 28, 12),
        utc(2028, 2, 29, 12),
    ]
    assert period_start(anchor, "year", -1, tz="UTC") == utc(2023, 2, 28, 12)


def test_week_and_day_in_utc() -> None:
    anchor = utc(2026, 10, 3, 6)
    assert period_bounds(anchor, "week", 2, tz="UTC") == (utc(2026, 10, 17, 6), utc(2026, 10, 24, 6))
    assert period_bounds(anchor, "day", -1, tz="UTC") == (utc(2026, 10, 2, 6), utc(2026, 10, 3, 6))


def test_bad_interval() -> None:
    with pytest.raises(ValueError, match="interval must be one of day, week, month, year"):
        period_bounds(utc(2026, 1, 1), "quarter", 0, tz="UTC")
    with pytest.raises(ValueError):
        period_index(utc(2026, 1, 1), "monthly", utc(2026, 2, 1), tz="UTC")


def test_out_of_range_years() -> None:
    with pytest.raises(ValueError, match="supported years"):
        period_start(utc(2026, 1, 1), "year", 10_000, tz="UTC")


# --- DST: New York (2026-03-08 spring forward, 2026-11-01 fall back) --------------------------


def test_new_york_daily_across_dst() -> None:
    anchor = parse_subscription_start("2026-03-01", tz=NY)
    assert period_bounds(anchor, "day", 6, tz=NY) == (utc(2026, 3, 7, 5), utc(2026, 3, 8, 5))
    spring = period_bounds(anchor, "day", 7, tz=NY)
    assert spring == (utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))
    assert hours(spring) == 23
    anchor_nov = parse_subscription_start("2026-10-31", tz=NY)
    fall = period_bounds(anchor_nov, "day", 1, tz=NY)
    assert fall == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))
    assert hours(fall) == 25


def test_new_york_monthly_across_dst() -> None:
    anchor = parse_subscription_start("2026-01-01", tz=NY)
    assert period_bounds(anchor, "month", 2, tz=NY) == (utc(2026, 3, 1, 5), utc(2026, 4, 1, 4))
    assert period_bounds(anchor, "month", 10, tz=NY) == (utc(2026, 11, 1, 4), utc(2026, 12, 1, 5))
    # local midnight stays midnight
    for k in range(12):
        start = period_start(anchor, "month", k, tz=NY).astimezone(ZoneInfo(NY))
        assert (start.day, start.hour, start.minute) == (1, 0, 0)


def test_new_york_time_in_dst_gap_moves_forward() -> None:
    # Anchor 02:30 local on Mar 7; Mar 8 02:30 does not exist: read with EST → 03:30 EDT.
    anchor = datetime(2026, 3, 7, 2, 30, tzinfo=ZoneInfo(NY)).astimezone(UTC)
    assert anchor == utc(2026, 3, 7, 7, 30)
    assert period_start(anchor, "day", 1, tz=NY) == utc(2026, 3, 8, 7, 30)
    assert period_start(anchor, "day", 1, tz=NY).astimezone(ZoneInfo(NY)).hour == 3
    assert period_start(anchor, "day", 2, tz=NY) == utc(2026, 3, 9, 6, 30)  # 02:30 EDT
    assert hours(period_bounds(anchor, "day", 1, tz=NY)) == 23


def test_new_york_ambiguous_time_takes_first_occurrence() -> None:
    anchor = datetime(2026, 10, 31, 1, 30, tzinfo=ZoneInfo(NY)).astimezone(UTC)  # EDT
    # Nov 1 01:30 happens twice: the first (EDT, 05:30Z) is the period start.
    assert period_start(anchor, "day", 1, tz=NY) == utc(2026, 11, 1, 5, 30)
    assert period_start(anchor, "day", 2, tz=NY) == utc(2026, 11, 2, 6, 30)
    assert hours(period_bounds(anchor, "day", 1, tz=NY)) == 25


def test_anchor_on_second_pass_of_overlap_is_kept_exactly() -> None:
    anchor = utc(2026, 11, 1, 6, 30)  # 01:30 EST, the second 01:30 of the day
    assert period_start(anchor, "day", 0, tz=NY) == anchor
    assert period_start(anchor, "day", 1, tz=NY) == utc(2026, 11, 2, 6, 30)
    assert period_index(anchor, "day", anchor, tz=NY) == 0
    assert period_index(anchor, "day", anchor - timedelta(microseconds=1), tz=NY) == -1


# --- DST: Berlin (2026-03-29 spring forward, 2026-10-25 fall back) ----------------------------


def test_berlin_daily_across_dst() -> None:
    anchor = parse_subscription_start("2026-03-28", tz=BERLIN)
    assert anchor == utc(2026, 3, 27, 23)
    assert period_bounds(anchor, "day", 1, tz=BERLIN) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    anchor_oct = parse_subscription_start("2026-10-25", tz=BERLIN)
    assert period_bounds(anchor_oct, "day", 0, tz=BERLIN) == (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))


def test_berlin_monthly_and_weekly_across_dst() -> None:
    anchor = parse_subscription_start("2026-01-01", tz=BERLIN)
    march = period_bounds(anchor, "month", 2, tz=BERLIN)
    assert march == (utc(2026, 2, 28, 23), utc(2026, 3, 31, 22))
    assert hours(march) == 31 * 24 - 1
    october = period_bounds(anchor, "month", 9, tz=BERLIN)
    assert october == (utc(2026, 9, 30, 22), utc(2026, 10, 31, 23))
    assert hours(october) == 31 * 24 + 1
    week_anchor = parse_subscription_start("2026-03-23", tz=BERLIN)
    assert hours(period_bounds(week_anchor, "week", 0, tz=BERLIN)) == 7 * 24 - 1


def test_berlin_month_anchor_31st_across_dst() -> None:
    anchor = parse_subscription_start("2026-01-31", tz=BERLIN)
    assert period_bounds(anchor, "month", 1, tz=BERLIN) == (utc(2026, 2, 27, 23), utc(2026, 3, 30, 22))


# --- period_index / periods_between -----------------------------------------------------------


def test_period_index_boundaries() -> None:
    anchor = parse_subscription_start("2026-01-31", tz=NY)
    start, end = period_bounds(anchor, "month", 1, tz=NY)
    assert period_index(anchor, "month", start, tz=NY) == 1
    assert period_index(anchor, "month", end - timedelta(microseconds=1), tz=NY) == 1
    assert period_index(anchor, "month", end, tz=NY) == 2
    assert period_index(anchor, "month", anchor - timedelta(seconds=1), tz=NY) == -1
    assert period_index(anchor, "month", utc(2025, 1, 1), tz=NY) == -13
    assert period_index(anchor, "year", utc(2030, 6, 1), tz=NY) == 4
    assert period_index(anchor, "week", anchor + timedelta(days=14), tz=NY) == 2
    assert period_index(anchor, "day", utc(2026, 3, 8, 12), tz=NY) == 36


def test_periods_between() -> None:
    anchor = utc(2026, 1, 1)
    got = periods_between(anchor, "month", utc(2026, 2, 15), utc(2026, 4, 1), tz="UTC")
    assert got == [(utc(2026, 2, 1), utc(2026, 3, 1)), (utc(2026, 3, 1), utc(2026, 4, 1))]
    # end is exclusive; a window inside one period gives that period
    assert periods_between(anchor, "month", utc(2026, 3, 1), utc(2026, 3, 2), tz="UTC") == [
        (utc(2026, 3, 1), utc(2026, 4, 1))
    ]
    assert periods_between(anchor, "month", utc(2026, 3, 1), utc(2026, 3, 1), tz="UTC") == []
    assert periods_between(anchor, "month", utc(2026, 3, 2), utc(2026, 3, 1), tz="UTC") == []
    before = periods_between(anchor, "year", utc(2024, 6, 1), utc(2026, 1, 2), tz="UTC")
    assert [s.year for s, _ in before] == [2024, 2025, 2026]


def test_skipped_local_day_is_an_empty_period() -> None:
    # Samoa skipped 2011-12-30 entirely (UTC−10 → UTC+14 at midnight).
    tz = "Pacific/Apia"
    anchor = parse_subscription_start("2011-12-28", tz=tz)
    skipped = period_bounds(anchor, "day", 2, tz=tz)
    assert skipped[0] == skipped[1]
    window = periods_between(anchor, "day", anchor, anchor + timedelta(days=4), tz=tz)
    assert len(window) == 4 and all(e > s for s, e in window)
    assert period_index(anchor, "day", skipped[0], tz=tz) == 3


# --- --period YYYY-MM -------------------------------------------------------------------------


def test_first_period_starting_in_month() -> None:
    anchor = parse_subscription_start("2026-01-31", tz="UTC")
    assert first_period_starting_in_month(anchor, "month", 2026, 2, tz="UTC") == (
        utc(2026, 2, 28),
        utc(2026, 3, 31),
    )
    assert first_period_starting_in_month(anchor, "day", 2026, 10, tz="UTC") == (
        utc(2026, 10, 1),
        utc(2026, 10, 2),
    )
    # weekly: the first Saturday in October 2026 (anchor is a Saturday)
    assert first_period_starting_in_month(anchor, "week", 2026, 10, tz="UTC") == (
        utc(2026, 10, 3),
        utc(2026, 10, 10),
    )
    assert first_period_starting_in_month(anchor, "year", 2027, 1, tz="UTC") == (
        utc(2027, 1, 31),
        utc(2028, 1, 31),
    )
    assert first_period_starting_in_month(anchor, "year", 2027, 2, tz="UTC") is None
    # before the anchor: periods extend backwards
    assert first_period_starting_in_month(anchor, "month", 2025, 12, tz="UTC") == (
        utc(2025, 12, 31),
        utc(2026, 1, 31),
    )


def test_first_period_starting_in_month_uses_local_month() -> None:
    anchor = parse_subscription_start("2026-01-01", tz=BERLIN)
    # Oct 1 00:00 CEST is Sep 30 22:00 UTC: it still starts "in October".
    assert first_period_starting_in_month(anchor, "month", 2026, 10, tz=BERLIN) == (
        utc(2026, 9, 30, 22),
        utc(2026, 10, 31, 23),
    )
    with pytest.raises(ValueError, match="month must be 1–12"):
        first_period_starting_in_month(anchor, "month", 2026, 13, tz=BERLIN)


def test_first_period_starting_in_month_anchor_31st_skips_short_month_correctly() -> None:
    anchor = parse_subscription_start("2026-01-31", tz=NY)
    got = first_period_starting_in_month(anchor, "month", 2026, 4, tz=NY)
    assert got == (utc(2026, 4, 30, 4), utc(2026, 5, 31, 4))


# --- properties -------------------------------------------------------------------------------

ZONES = ["UTC", NY, BERLIN, "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo"]


@settings(max_examples=200, deadline=None)
@given(
    anchor=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)),
    instant=st.datetimes(min_value=datetime(1985, 1, 1), max_value=datetime(2045, 1, 1), timezones=st.just(UTC)),
    interval=st.sampled_from(["day", "week", "month", "year"]),
    tz=st.sampled_from(ZONES),
)
def test_every_instant_lies_in_its_period(anchor: datetime, instant: datetime, interval: str, tz: str) -> None:
    k = period_index(anchor, interval, instant, tz=tz)
    start, end = period_bounds(anchor, interval, k, tz=tz)
    assert start <= instant < end
    assert (k < 0) == (instant < anchor)


@settings(max_examples=200, deadline=None)
@given(
    anchor=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)),
    k=st.integers(min_value=-60, max_value=60),
    interval=st.sampled_from(["day", "week", "month", "year"]),
    tz=st.sampled_from(ZONES),
)
def test_periods_are_contiguous_and_keep_local_time(anchor: datetime, k: int, interval: str, tz: str) -> None:
    start, end = period_bounds(anchor, interval, k, tz=tz)
    assert end > start
    assert period_bounds(anchor, interval, k + 1, tz=tz)[0] == end
    assert period_index(anchor, interval, start, tz=tz) == k
    zi = ZoneInfo(tz)
    wall = anchor.astimezone(zi).replace(tzinfo=None)
    expected = _shift_wall_clock(wall, interval, k)
    got = start.astimezone(zi).replace(tzinfo=None)
    if k == 0:
        assert start == anchor
    elif _exists(expected, zi):
        assert got == expected
    else:  # in a DST gap: moved forward by the gap (at most a few hours)
        assert expected < got <= expected + timedelta(hours=3)


def _exists(naive: datetime, zi: ZoneInfo) -> bool:
    return naive.replace(tzinfo=zi).astimezone(UTC).astimezone(zi).replace(tzinfo=None) == naive


def _shift_wall_clock(wall: datetime, interval: str, k: int) -> datetime:
    """Independent reference: calendar arithmetic by repeated day steps for months/years."""
    if interval == "day":
        return wall + timedelta(days=k)
    if interval == "week":
        return wall + timedelta(days=7 * k)
    months = k if interval == "month" else 12 * k
    year, month = divmod(wall.year * 12 + wall.month - 1 + months, 12)
    last = _days_in_month(year, month + 1)
    return wall.replace(year=year, month=month + 1, day=min(wall.day, last))


def _days_in_month(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day
