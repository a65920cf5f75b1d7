"""What a backtest means for revenue and for each customer: revenue by line, the distribution
of per-customer changes, the customers who move most, and the guardrail.

Rules decided here (the contract is silent):

- Revenue by line sums each invoice line (rounded, as invoiced) over customers and months,
  per plan, keyed by line type (base fee, fixed charge, usage, overage) and line (a metric's
  name, a fixed charge's name); the credit applied is a line of its own with a negative
  amount, so a plan's lines add up to its total.
- Per-customer % change = the customer's change / its baseline total × 100 (2 places, half-up,
  as in the JSON). Customers whose baseline total is 0 have no % change: they are counted
  apart ("no baseline bill") and left out of the median, the 95th percentile and the histogram.
- Median: the middle value (the mean of the two middle values for an even count, half-up to 2
  places). 95th percentile: nearest rank, the value at rank ⌈0.95 × n⌉ of the sorted changes
  (an actual customer's change, never interpolated).
- Histogram bins are [lo, hi) of one width chosen from 1-2-5 steps (and 25) so that at most
  20 bins cover every customer's change.
- Movers: the largest changes in money, up and down (ties by customer id).
- Guardrail "no customer pays more than +X %": a customer is past it when its % change is
  above X, or when its baseline total is 0 and it would now pay something (an increase from
  nothing is past any threshold). A plan passes when no customer is past it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext

from metering.backtest.results import CENT, ZERO, Backtest
from metering.billing import EXACT

KIND_LABELS = {"base_fee": "base fee", "fixed_charge": "fixed charge", "usage": "usage", "overage": "overage",
               "credit": "credit"}
MAX_BINS = 20


# --- revenue by line ------------------------------------------------------------------------


@dataclass(frozen=True)
class RevenueLine:
    plan: str
    kind: str  # base_fee | fixed_charge | usage | overage | credit
    line: str  # description on the invoice ("Included credit" for the credit)
    metric: str | None
    amount: Decimal


def revenue_by_line(bt: Backtest) -> list[RevenueLine]:
    """Per plan, each line's revenue over every customer and month (credit negative); the
    lines of a plan sum to its total. In plan order, then the invoices' line order."""
    out: list[RevenueLine] = []
    for code in bt.codes:
        priced = bt.priced[code]
        sums, credit = priced.line_sums, priced.credit
        out += [RevenueLine(code, kind, desc, metric, amount) for (kind, desc, metric), amount in sums.items()]
        if credit:
            out.append(RevenueLine(code, "credit", "Included credit", None, -credit))
    return out


# --- distribution of per-customer changes ---------------------------------------------------


@dataclass(frozen=True)
class Bin:
    lo: Decimal
    hi: Decimal
    count: int


@dataclass(frozen=True)
class Distribution:
    plan: str
    percents: tuple[tuple[str, Decimal], ...]  # customers with a baseline bill, by % change then id
    no_baseline: tuple[str, ...]  # baseline total 0
    up: int
    down: int
    unchanged: int
    median: Decimal | None
    p95: Decimal | None
    bins: tuple[Bin, ...]


def median(values: list[Decimal]) -> Decimal | None:
    """Sorted ``values``' middle (mean of the two middle ones, half-up to 2 places)."""
    if not values:
        return None
    n = len(values)
    if n % 2:
        return values[n // 2]
    with localcontext(EXACT):
        return ((values[n // 2 - 1] + values[n // 2]) / 2).quantize(CENT, rounding=ROUND_HALF_UP)


def nearest_rank(values: list[Decimal], p: int) -> Decimal | None:
    """The p-th percentile of sorted ``values`` by nearest rank: rank ⌈p/100 × n⌉."""
    if not values:
        return None
    rank = max(1, math.ceil(p * len(values) / 100))
    return values[rank - 1]


def _widths():
    exp = 0  # 1 % steps at the finest: changes are shown to 0.01 %, bins finer than 1 % say nothing more
    while True:
        for step in (1, 2, 2.5, 5):
            yield Decimal(str(step)) * Decimal(10) ** exp  # plain (100, not 1E+2)
        exp += 1


def bins_for(values: list[Decimal], max_bins: int = MAX_BINS) -> tuple[Bin, ...]:
    """Equal-width bins [lo, hi) over sorted ``values`` (see the module docstring)."""
    if not values:
        return ()
    lo_v, hi_v = values[0], values[-1]
    with localcontext(EXACT):
        for width in _widths():
            first = (lo_v / width).to_integral_value(rounding=ROUND_FLOOR)
            last = (hi_v / width).to_integral_value(rounding=ROUND_FLOOR)
            if last - first + 1 <= max_bins:
                break
        edges = [(first + i) * width for i in range(int(last - first) + 2)]
    counts = [0] * (len(edges) - 1)
    at = 0
    for v in values:  # sorted: walk the edges once
        while v >= edges[at + 1]:
            at += 1
        counts[at] += 1
    return tuple(Bin(edges[i], edges[i + 1], counts[i]) for i in range(len(counts)))


def distribution(bt: Backtest, code: str) -> Distribution:
    changes = bt.customer_changes[code]
    with_pct = sorted(((cid, pct) for cid, (_, pct) in changes.items() if pct is not None), key=lambda x: (x[1], x[0]))
    values = [pct for _, pct in with_pct]
    up, down, same = bt.counts(code)
    return Distribution(
        code, tuple(with_pct), tuple(cid for cid, (_, pct) in changes.items() if pct is None),
        up, down, same, median(values), nearest_rank(values, 95), bins_for(values),
    )


# --- movers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mover:
    customer_id: str
    baseline: Decimal
    total: Decimal
    change: Decimal
    change_percent: Decimal | None


def _mover(bt: Backtest, code: str, cid: str) -> Mover:
    change, pct = bt.customer_changes[code][cid]
    return Mover(cid, bt.customer_totals[bt.baseline][cid], bt.customer_totals[code][cid], change, pct)


def movers(bt: Backtest, code: str, n: int = 10) -> tuple[list[Mover], list[Mover]]:
    """(the n largest increases, the n largest decreases) under ``code``, in money."""
    changes = bt.customer_changes[code]
    ups = sorted((c for c in changes if changes[c][0] > 0), key=lambda c: (-changes[c][0], c))[:n]
    downs = sorted((c for c in changes if changes[c][0] < 0), key=lambda c: (changes[c][0], c))[:n]
    return [_mover(bt, code, c) for c in ups], [_mover(bt, code, c) for c in downs]


# --- guardrail ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Guardrail:
    plan: str
    max_increase: Decimal  # percent
    flagged: tuple[Mover, ...]  # past it: no-baseline increases first, then by % change, largest first

    @property
    def passed(self) -> bool:
        return not self.flagged

    @property
    def count(self) -> int:
        return len(self.flagged)


def guardrail(bt: Backtest, code: str, max_increase: Decimal) -> Guardrail:
    """Customers of ``code`` whose bill rises more than ``max_increase`` % (see the docstring)."""
    flagged = []
    for cid, (change, pct) in bt.customer_changes[code].items():
        if (pct is None and change > 0) or (pct is not None and pct > max_increase):
            flagged.append(_mover(bt, code, cid))
    flagged.sort(key=lambda m: (m.change_percent is not None, -(m.change_percent or ZERO), -m.change, m.customer_id))
    return Guardrail(code, max_increase, tuple(flagged))

