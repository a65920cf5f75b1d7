"""Months of a backtest and the billing periods that start in each (contract §7).

A backtest runs over whole calendar months ``--from … --to`` (both included, at most 24), read
in the workspace timezone. In each month a customer is billed:

- for a monthly plan, its first billing period that starts in that month, exactly as
  ``metering invoice --period YYYY-MM`` finds it (:meth:`billing.Schedule.period_in_month`);
- for any other interval, every billing period that starts in that month (a weekly plan has
  four or five, a yearly plan one in the anniversary month and none in the others).

Periods before the customer's anchor (its subscription start) are never billed, and a period
of zero length (a local day skipped by a timezone change) is left out.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

from metering import periods
from metering.billing import Schedule, Window
from metering.invoices import InvoiceError, parse_month

MAX_MONTHS = 24
Month = tuple[int, int]


class BacktestError(ValueError):
    """A backtest that cannot run as asked, with a message for a person."""


def label(month: Month) -> str:
    return f"{month[0]:04d}-{month[1]:02d}"


def parse(text: str, flag: str = "month") -> Month:
    """``YYYY-MM`` → (year, month); BacktestError naming ``flag`` otherwise."""
    try:
        return parse_month(text)
    except InvoiceError as exc:
        raise BacktestError(f"{flag}: {exc}") from None


def following(month: Month) -> Month:
    year, m = month
    return (year + 1, 1) if m == 12 else (year, m + 1)


def month_range(first: Month | str, last: Month | str) -> list[Month]:
    """Every month from ``first`` to ``last``, both included (1 to 24 of them)."""
    lo = parse(first, "--from") if isinstance(first, str) else first
    hi = parse(last, "--to") if isinstance(last, str) else last
    if hi < lo:
        raise BacktestError(f"--to {label(hi)} is before --from {label(lo)}")
    out = [lo]
    while out[-1] < hi:
        out.append(following(out[-1]))
        if len(out) > MAX_MONTHS:
            raise BacktestError(
                f"a backtest covers at most {MAX_MONTHS} months: {label(lo)} to {label(hi)} is "
                f"{(hi[0] - lo[0]) * 12 + hi[1] - lo[1] + 1}"
            )
    return out


@lru_cache(maxsize=4096)
def bounds(month: Month, tz: str) -> Window:
    """[first instant of the month, first instant of the next) in ``tz``, as aware UTC."""
    zone = periods.zone(tz)
    nxt = following(month)
    start = datetime(month[0], month[1], 1).replace(tzinfo=zone, fold=0).astimezone(timezone.utc)
    end = datetime(nxt[0], nxt[1], 1).replace(tzinfo=zone, fold=0).astimezone(timezone.utc)
    return start, end


@lru_cache(maxsize=65536)
def periods_in_month(schedule: Schedule, month: Month) -> tuple[Window, ...]:
    """The periods of ``schedule`` billed in ``month`` (see the module docstring). Customers
    share schedules (one default anchor), so each answer is computed once."""
    if schedule.interval == "month":
        found = schedule.period_in_month(*month)
        return () if found is None else (found,)
    start, end = bounds(month, schedule.tz)
    anchor = schedule.anchor.astimezone(timezone.utc)
    if end <= anchor:
        return ()
    k = max(0, periods.period_index(anchor, schedule.interval, max(start, anchor), tz=schedule.tz))
    out: list[Window] = []
    while True:
        lo, hi = schedule.bounds(k)
        if lo >= end:
            return tuple(out)
        if lo >= start and lo >= anchor and hi > lo:
            out.append((lo, hi))
        k += 1
