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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cached_property
from typing import Any

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
    if base == 0:
        return None
    with localcontext(EXACT):
        value = (change * HUNDRED / base).quantize(CENT, rounding=ROUND_HALF_UP)
    return value.copy_abs() if value.is_zero() else value


def _sum(values: Iterator[Decimal] | Sequence[Decimal]) -> Decimal:
    with localcontext(EXACT):
        return sum(values, ZERO)


@dataclass(frozen=True)
class Backtest:
    """Every invoice of a backtest: ``invoices[plan][customer][i]`` holds the invoices of the
    billing periods that start in month ``months[i]`` (none, one, or several for short
    intervals). The first plan is the baseline."""

    plans: tuple[Plan, ...]
    months: tuple[Month, ...]
    customers: tuple[str, ...]
    invoices: dict[str, dict[str, tuple[tuple[Invoice, ...], ...]]]
    tz: str = "UTC"
    stats: dict[str, int] = field(default_factory=dict, compare=False)

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

    def money_text(self, amount: Decimal) -> str:
        with localcontext(EXACT):
            return format(amount.quantize(Decimal(1).scaleb(-minor_units(self.currency))), "f")

    # --- totals -----------------------------------------------------------------------------

    @cached_property
    def customer_month_totals(self) -> dict[str, dict[str, tuple[Decimal, ...]]]:
        """plan → customer → the sum of its invoice totals in each month."""
        return {
            code: {cid: tuple(_sum(i.total for i in cell) for cell in cells) for cid, cells in by_customer.items()}
            for code, by_customer in self.invoices.items()
        }

    @cached_property
    def customer_totals(self) -> dict[str, dict[str, Decimal]]:
        """plan → customer → the sum of its invoice totals over the months."""
        return {
            code: {cid: _sum(months) for cid, months in by_customer.items()}
            for code, by_customer in self.customer_month_totals.items()
        }

    @cached_property
    def month_totals(self) -> dict[str, tuple[Decimal, ...]]:
        """plan → the sum over customers of each month."""
        out = {}
        for code, by_customer in self.customer_month_totals.items():
            out[code] = tuple(_sum(row[i] for row in by_customer.values()) for i in range(len(self.months)))
        return out

    @cached_property
    def totals(self) -> dict[str, Decimal]:
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
        return {
            code: {cid: (self.change(code, cid), self.change_percent(code, cid)) for cid in self.customers}
            for code in self.candidates
        }

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
        return sum(len(cell) for by_customer in self.invoices.values() for cells in by_customer.values() for cell in cells)

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
                cells = {code: self.invoices[code][cid][i] for code in self.codes}
                if not cells[base]:
                    continue
                base_total = self.customer_month_totals[base][cid][i]
                for code in self.codes:
                    cell = cells[code]
                    total = self.customer_month_totals[code][cid][i]
                    with localcontext(EXACT):
                        change = total - base_total
                        subtotal = sum((inv.subtotal for inv in cell), ZERO)
                        credit = sum((inv.credit for inv in cell), ZERO)
                    pct = percent(change, base_total)
                    rows.append({
                        "customer_id": cid, "month": month, "plan": code, "baseline": base,
                        "currency": self.currency, "periods": len(cell),
                        "subtotal": text(subtotal), "credit": text(credit), "total": text(total),
                        "baseline_total": text(base_total), "change": text(change),
                        "change_percent": "" if pct is None else format(pct, "f"),
                    })
        return rows

    def to_csv(self) -> str:
        return csvsafe.to_csv(self.csv_rows(), CSV_COLUMNS)
