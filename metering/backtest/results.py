"""A backtest's invoices and the figures the contract names (§7): totals per plan and month,
per customer, changes against the baseline, the summary, the JSON document and the CSV rows.

Rules decided here (the contract is silent):

- A customer is listed when it has at least one billing period in the months (the plans share
  currency, interval and anchors, so it then has one under every plan); a customer whose
  subscription starts after the last month is left out.
- Amounts are written with the currency's minor units (``"0.00"``, ``"1200"`` for JPY).
- ``change_percent`` = change / baseline × 100 rounded half-up to 2 places (``"-0.00"`` is
  written ``"0.00"``); ``null`` when the baseline is 0.
- The CSV has one row per customer × month × plan for the months in which the customer has a
  billing period; ``periods`` says how many invoices the row sums (1 for monthly plans).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cached_property
from typing import Any, NamedTuple

from metering import csvsafe
from metering.backtest.months import Month, label
from metering.billing import EXACT
from metering.invoices import Invoice
from metering.money import minor_units
from metering.plans import Plan

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")

CSV_COLUMNS = [
    "customer_id", "month", "plan", "baseline", "currency", "periods", "subtotal", "credit", "total",
    "baseline_total", "change", "change_percent",
]


def percent(change: Decimal, base: Decimal) -> Decimal | None:
    """change / base × 100, half-up to 2 places; None when base is 0."""
    with localcontext(EXACT):
        return _percent(change, base)


def _percent(change: Decimal, base: Decimal) -> Decimal | None:
    if base == 0:
        return None
    value = (change * HUNDRED / base).quantize(CENT, rounding=ROUND_HALF_UP)
    return value.copy_abs() if value.is_zero() else value


def _sum(values: Iterator[Decimal] | Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO)  # callers hold the EXACT context (one per table, not per sum)


Cells = tuple[tuple[Invoice, ...], ...]  # per month: the invoices of the periods starting in it


class MonthSums(NamedTuple):
    """The invoices of one customer in one month under one plan, summed (a tuple of numbers:
    the cyclic collector stops tracking it)."""

    periods: int
    subtotal: Decimal
    credit: Decimal
    total: Decimal


NO_PERIOD = MonthSums(0, ZERO, ZERO, ZERO)


class PricedPlan:
    """One plan's invoices for every customer and month, kept as their sums.

    A backtest builds every invoice once and keeps what the figures need (per customer and
    month: subtotal, credit, total; per line: the revenue); the invoices themselves are rebuilt
    for one customer when asked (:meth:`invoices_of`), from the same cached usage. Holding
    12,000 invoice objects per plan would cost some 20 MB and slow Python's cyclic collector
    for the whole process; the sums are plain Decimals.
    """

    def __init__(
        self,
        plan: Plan,
        months: dict[str, tuple[MonthSums, ...]],
        line_sums: dict[tuple[str, str, str | None], Decimal],
        credit: Decimal,
        rebuild: Callable[[str], Cells],
    ) -> None:
        self.plan = plan
        self.months = months
        self.line_sums = line_sums
        self.credit = credit
        self._rebuild = rebuild
        self._recent: dict[str, Cells] = {}

    @classmethod
    def summed(cls, plan: Plan, invoices: Iterator[tuple[str, Cells]], rebuild: Callable[[str], Cells]) -> PricedPlan:
        """Sum each customer's invoices as they are built (nothing else is kept)."""
        months: dict[str, tuple[MonthSums, ...]] = {}
        sums: dict[tuple[str, str, str | None], Decimal] = {}
        credit = ZERO
        with localcontext(EXACT):
            for cid, cells in invoices:
                row = []
                for cell in cells:
                    if not cell:
                        row.append(NO_PERIOD)
                        continue
                    row.append(MonthSums(
                        len(cell), _sum(i.subtotal for i in cell), _sum(i.credit for i in cell), _sum(i.total for i in cell),
                    ))
                    for inv in cell:
                        for line in inv.lines:
                            key = (line.kind, line.description, line.metric)
                            sums[key] = sums.get(key, ZERO) + line.amount
                        credit += inv.credit
                months[cid] = tuple(row)
        return cls(plan, months, sums, credit, rebuild)

    def invoices_of(self, customer: str) -> Cells:
        """The customer's invoices, month by month (rebuilt, the last few kept)."""
        found = self._recent.get(customer)
        if found is None:
            if len(self._recent) >= 8:
                self._recent.pop(next(iter(self._recent)))
            found = self._recent[customer] = self._rebuild(customer)
        return found

    @cached_property
    def month_totals(self) -> dict[str, tuple[Decimal, ...]]:
        """customer → the sum of its invoice totals in each month."""
        return {cid: tuple(m.total for m in row) for cid, row in self.months.items()}


@dataclass(frozen=True)
class Backtest:
    """The plans priced for every customer and month: ``invoices_of(plan, customer)[i]`` are
    the invoices of the billing periods that start in month ``months[i]`` (none, one, or
    several for short intervals). The first plan is the baseline."""

    plans: tuple[Plan, ...]
    months: tuple[Month, ...]
    customers: tuple[str, ...]
    priced: dict[str, PricedPlan]
    tz: str = "UTC"
    stats: dict[str, int] = field(default_factory=dict, compare=False)

    def invoices_of(self, code: str, customer: str) -> Cells:
        """The customer's invoices under plan ``code``, month by month."""
        return self.priced[code].invoices_of(customer)

    # --- identity ---------------------------------------------------------------------------

    @property
    def baseline(self) -> str:
        return self.plans[0].code

    @property
    def codes(self) -> list[str]:
        return [p.code for p in self.plans]

    @property
    def candidates(self) -> list[str]:
        """Every plan but the baseline."""
        return self.codes[1:]

    @property
    def currency(self) -> str:
        return self.plans[0].currency

    @property
    def interval(self) -> str:
        return self.plans[0].interval

    @property
    def month_labels(self) -> list[str]:
        return [label(m) for m in self.months]

    def plan(self, code: str) -> Plan:
        return next(p for p in self.plans if p.code == code)

    @cached_property
    def _quantum(self) -> Decimal:
        return Decimal(1).scaleb(-minor_units(self.currency))

    def money_text(self, amount: Decimal) -> str:
        """An amount with the currency's minor units (sums of invoice totals already have them;
        an empty sum is 0)."""
        return format(amount.quantize(self._quantum, context=EXACT), "f")

    # --- totals -----------------------------------------------------------------------------

    @cached_property
    def customer_month_totals(self) -> dict[str, dict[str, tuple[Decimal, ...]]]:
        """plan → customer → the sum of its invoice totals in each month."""
        return {code: p.month_totals for code, p in self.priced.items()}

    @cached_property
    def customer_totals(self) -> dict[str, dict[str, Decimal]]:
        """plan → customer → the sum of its invoice totals over the months."""
        with localcontext(EXACT):
            return {
                code: {cid: _sum(months) for cid, months in by_customer.items()}
                for code, by_customer in self.customer_month_totals.items()
            }

    @cached_property
    def month_totals(self) -> dict[str, tuple[Decimal, ...]]:
        """plan → the sum over customers of each month."""
        out = {}
        with localcontext(EXACT):
            for code, by_customer in self.customer_month_totals.items():
                out[code] = tuple(_sum(row[i] for row in by_customer.values()) for i in range(len(self.months)))
        return out

    @cached_property
    def totals(self) -> dict[str, Decimal]:
        with localcontext(EXACT):
            return {code: _sum(months) for code, months in self.month_totals.items()}

    def change(self, code: str, customer: str | None = None) -> Decimal:
        """Total under ``code`` − total under the baseline (of one customer, or of everyone)."""
        with localcontext(EXACT):
            if customer is None:
                return self.totals[code] - self.totals[self.baseline]
            return self.customer_totals[code][customer] - self.customer_totals[self.baseline][customer]

    def change_percent(self, code: str, customer: str | None = None) -> Decimal | None:
        base = self.totals[self.baseline] if customer is None else self.customer_totals[self.baseline][customer]
        return percent(self.change(code, customer), base)

    @cached_property
    def customer_changes(self) -> dict[str, dict[str, tuple[Decimal, Decimal | None]]]:
        """candidate plan → customer → (change, change_percent)."""
        base = self.customer_totals[self.baseline]
        out = {}
        with localcontext(EXACT):
            for code in self.candidates:
                totals = self.customer_totals[code]
                changes = {cid: totals[cid] - base[cid] for cid in self.customers}
                out[code] = {cid: (change, _percent(change, base[cid])) for cid, change in changes.items()}
        return out

    def counts(self, code: str) -> tuple[int, int, int]:
        """(customers up, down, unchanged) under ``code`` against the baseline."""
        up = down = same = 0
        for change, _ in self.customer_changes[code].values():
            if change > 0:
                up += 1
            elif change < 0:
                down += 1
            else:
                same += 1
        return up, down, same

    def invoice_count(self) -> int:
        return sum(m.periods for p in self.priced.values() for row in p.months.values() for m in row)

    # --- the contract's document ------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The ``metering backtest`` document (contract §7)."""
        text = self.money_text
        pct = lambda v: None if v is None else format(v, "f")  # noqa: E731
        plans = [
            {
                "plan": code,
                "total": text(self.totals[code]),
                "months": [{"month": m, "total": text(t)} for m, t in zip(self.month_labels, self.month_totals[code])],
            }
            for code in self.codes
        ]
        customers = []
        for cid in self.customers:
            customers.append({
                "customer_id": cid,
                "totals": {code: text(self.customer_totals[code][cid]) for code in self.codes},
                "change": {code: text(self.customer_changes[code][cid][0]) for code in self.candidates},
                "change_percent": {code: pct(self.customer_changes[code][cid][1]) for code in self.candidates},
            })
        summary = []
        for code in self.candidates:
            up, down, same = self.counts(code)
            summary.append({
                "plan": code,
                "total": text(self.totals[code]),
                "change": text(self.change(code)),
                "change_percent": pct(self.change_percent(code)),
                "customers_up": up,
                "customers_down": down,
                "customers_unchanged": same,
            })
        return {
            "currency": self.currency,
            "baseline": self.baseline,
            "months": self.month_labels,
            "plans": plans,
            "customers": customers,
            "summary": summary,
        }

    # --- CSV --------------------------------------------------------------------------------

    def csv_rows(self) -> list[dict[str, Any]]:
        """One row per customer × month × plan (months without a billing period left out)."""
        rows = []
        text = self.money_text
        base = self.baseline
        for cid in self.customers:
            for i, month in enumerate(self.month_labels):
                base_sums = self.priced[base].months[cid][i]
                if not base_sums.periods:
                    continue
                for code in self.codes:
                    sums = self.priced[code].months[cid][i]
                    with localcontext(EXACT):
                        change = sums.total - base_sums.total
                    pct = percent(change, base_sums.total)
                    rows.append({
                        "customer_id": cid, "month": month, "plan": code, "baseline": base,
                        "currency": self.currency, "periods": sums.periods,
                        "subtotal": text(sums.subtotal), "credit": text(sums.credit), "total": text(sums.total),
                        "baseline_total": text(base_sums.total), "change": text(change),
                        "change_percent": "" if pct is None else format(pct, "f"),
                    })
        return rows

    def to_csv(self) -> str:
        return csvsafe.to_csv(self.csv_rows(), CSV_COLUMNS)
