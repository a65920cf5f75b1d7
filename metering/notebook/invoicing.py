"""Typed results for invoices and plan comparisons: the engine's `Invoice` and `Comparison`
objects (`metering.invoices`, `metering.compare`) with pandas, rich display and charts.

`to_json()` gives the documents `metering invoice` prints, so a notebook, the CLI and the
Invoices page show the same figures from the same functions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from metering import compare, invoices
from metering.billing import Window, iso
from metering.invoices import Invoice
from metering.money import format_money, format_signed_money
from metering.notebook import charts
from metering.notebook import html as h
from metering.plans import Plan
from metering.preview import fmt, plural
from metering.pricing import describe_price

ZERO = Decimal(0)
HTML_ROWS = 20
SUMMARY_COLUMNS = ["customer_id", "plan", "period_start", "period_end", "currency", "subtotal", "credit", "total"]
LINE_COLUMNS = ["customer_id", "plan", "kind", "description", "metric", "units", "amount", "exact"]


@dataclass(frozen=True)
class InvoiceView:
    """One invoice: its lines (base fee, fixed charges, usage charges, overage; each rounded
    half-up to the currency), subtotal, included credit applied and total."""

    invoice: Invoice
    plan: Plan | None = None
    units: Mapping[str, str] | None = None  # metric code → unit name

    @property
    def customer_id(self) -> str:
        """The customer billed."""
        return self.invoice.customer_id

    @property
    def total(self) -> Decimal:
        """What the customer pays: subtotal − credit."""
        return self.invoice.total

    @property
    def subtotal(self) -> Decimal:
        """The sum of the rounded lines."""
        return self.invoice.subtotal

    @property
    def credit(self) -> Decimal:
        """The included credit applied (never more than the usage lines)."""
        return self.invoice.credit

    @property
    def currency(self) -> str:
        """The invoice's currency (ISO 4217)."""
        return self.invoice.currency

    def to_json(self) -> dict[str, Any]:
        """The invoice as `metering invoice` prints it."""
        return self.invoice.to_json()

    def to_pandas(self) -> pd.DataFrame:
        """One row per line: kind, description, metric, units, amount (rounded) and exact
        (before rounding), Decimals."""
        inv = self.invoice
        rows = [(inv.customer_id, inv.plan, line.kind, line.description, line.metric, line.units, line.amount, line.exact)
                for line in inv.lines]
        return pd.DataFrame(rows, columns=LINE_COLUMNS)

    def explain(self) -> list[str]:
        """Each line's arithmetic (units, free units, tiers, rounding), then subtotal, credit
        and total, as the Invoices page writes them."""
        inv = self.invoice
        out = []
        for line in inv.lines:
            out.append(f"{line.description}: " + "; ".join(line.explain(inv.currency)))
        return out + inv.explain()

    def chart(self) -> Any:
        """The amount of each line, as bars."""
        df = self.to_pandas()
        return charts.bars(df, label="description", value="amount", title=f"amount ({self.currency})")

    def _detail(self, line: Any) -> str:
        cur = self.invoice.currency
        if line.kind == "fixed_charge" and line.unit_price is not None:
            return f"{fmt(line.units)} × {format_money(line.unit_price, cur, exact=True)}"
        if line.kind == "usage" and self.plan is not None and line.metric:
            charge = self.plan.charge_for(line.metric)
            if charge is not None:
                return describe_price(charge, cur, (self.units or {}).get(line.metric) or "units")
        if line.kind == "overage" and line.unit_price is not None:
            return f"{format_money(line.unit_price, cur, exact=True)} per unit over the quota"
        return ""

    def _repr_html_(self) -> str:
        inv = self.invoice
        cur = inv.currency
        units = self.units or {}
        name = self.plan.name if self.plan is not None else inv.plan
        rows = []
        for line in inv.lines:
            quantity = "" if line.kind == "base_fee" else f"{fmt(line.units)} {units.get(line.metric or '', '')}".strip()
            rows.append((line.description, self._detail(line), quantity, format_money(line.amount, cur)))
        footer = [("Subtotal", "", "", format_money(inv.subtotal, cur))]
        if inv.credit:
            footer.append(("Included credit", "", "", "−" + format_money(inv.credit, cur)))
        footer.append(("Total", "", "", format_money(inv.total, cur)))
        title = f"Invoice · {inv.customer_id} · {name} ({inv.plan}) · {iso(inv.start)} to {iso(inv.end)} · {cur}"
        return h.block(h.heading(title), h.table(["description", "price", "quantity", "amount"], rows,
                                                 numeric=[2, 3], footer=footer))


@dataclass(frozen=True)
class Invoices:
    """Invoices of a billing period for every customer billed (each subscriber under its plan,
    or everyone in the events under one plan), ordered by customer id."""

    invoices: tuple[Invoice, ...]
    plans: Mapping[str, Plan]
    units: Mapping[str, str]
    label: str
    window: Window | None = None

    def __len__(self) -> int:
        return len(self.invoices)

    def __iter__(self) -> Iterator[InvoiceView]:
        return (self._view(i) for i in self.invoices)

    def __getitem__(self, customer_id: str) -> InvoiceView:
        """The invoice of one customer."""
        for inv in self.invoices:
            if inv.customer_id == customer_id:
                return self._view(inv)
        raise KeyError(f"no invoice for customer '{customer_id}' in {self.label}")

    def _view(self, inv: Invoice) -> InvoiceView:
        return InvoiceView(inv, self.plans.get(inv.plan), self.units)

    @property
    def customers(self) -> list[str]:
        """The customers invoiced, by id."""
        return [i.customer_id for i in self.invoices]

    @property
    def totals(self) -> dict[str, Decimal]:
        """Currency → the sum of the invoice totals (plans may bill in several currencies)."""
        out: dict[str, Decimal] = {}
        for inv in self.invoices:
            out[inv.currency] = out.get(inv.currency, ZERO) + inv.total
        return out

    @property
    def total(self) -> Decimal:
        """The report's total: the invoices in the first invoice's currency (0 with none)."""
        return Decimal(invoices.report(self.invoices, window=self.window)["total"])

    def to_json(self) -> dict[str, Any]:
        """The `metering invoice` document."""
        return invoices.report(self.invoices, window=self.window)

    def to_pandas(self) -> pd.DataFrame:
        """One row per invoice: customer, plan, period, currency, subtotal, credit, total."""
        rows = [(i.customer_id, i.plan, i.start, i.end, i.currency, i.subtotal, i.credit, i.total) for i in self.invoices]
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    def lines(self) -> pd.DataFrame:
        """Every invoice's lines, one row each (Decimal units and amounts)."""
        frames = [self._view(i).to_pandas() for i in self.invoices]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=LINE_COLUMNS)

    def chart(self, top: int = 40) -> Any:
        """Invoice totals per customer, the `top` largest (the rest as one "(other)" bar)."""
        df = self.to_pandas()[["customer_id", "total"]]
        df, _ = charts.top_n(df, label="customer_id", value="total", n=top)
        currency = self.invoices[0].currency if self.invoices else ""
        return charts.bars(df, label="customer_id", value="total", title=f"total ({currency})")

    def _repr_html_(self) -> str:
        if not self.invoices:
            return h.paragraph(f"No invoice for {self.label}: no customer has a billing period starting in it")
        totals = " + ".join(format_money(v, c) for c, v in self.totals.items())
        head = f"{plural(len(self.invoices), 'invoice')} for {self.label} · total {totals}"
        rows = [(i.customer_id, self.plans[i.plan].name if i.plan in self.plans else i.plan,
                 f"{iso(i.start)} to {iso(i.end)}", format_money(i.subtotal, i.currency), format_money(i.credit, i.currency),
                 format_money(i.total, i.currency)) for i in self.invoices[:HTML_ROWS]]
        more = (h.paragraph(f"… and {len(self.invoices) - len(rows):,} more (to_pandas() has them all)")
                if len(self.invoices) > len(rows) else "")
        return h.block(h.paragraph(head), h.table(["customer", "plan", "period", "subtotal", "credit", "total"], rows,
                                                  numeric=[3, 4, 5]), more)


@dataclass(frozen=True)
class Comparison:
    """The same usage priced under several plans (`compare.compare_plans`, the Invoices page's
    comparison): each customer's total per plan and its difference with the baseline (the
    first plan)."""

    comparison: compare.Comparison
    names: Mapping[str, str]
    label: str

    @property
    def totals(self) -> dict[str, Decimal]:
        """Plan → the sum of the customers' totals."""
        return dict(self.comparison.totals)

    @property
    def differences(self) -> dict[str, Decimal]:
        """Plan → its total − the baseline's total (0 for the baseline)."""
        return dict(self.comparison.differences)

    def to_json(self) -> dict[str, Any]:
        """The comparison as JSON (amounts as decimal text)."""
        return self.comparison.to_json()

    def to_pandas(self) -> pd.DataFrame:
        """One row per customer: a total per plan, then `<plan> vs <baseline>` differences."""
        return compare.comparison_frame(self.comparison)

    def chart(self) -> Any:
        """The total of every plan, baseline first."""
        c = self.comparison
        df = pd.DataFrame({"plan": c.plans, "total": [c.totals[p] for p in c.plans]})
        return charts.bars(df, label="plan", value="total", title=f"total ({c.currency})")

    def _repr_html_(self) -> str:
        c = self.comparison
        cur = c.currency
        rows = [(self.names.get(p, p), p, format_money(c.totals[p], cur),
                 "baseline" if p == c.baseline else format_signed_money(c.differences[p], cur)) for p in c.plans]
        head = h.paragraph(f"{plural(len(c.customers), 'customer')} priced under {len(c.plans)} plans for {self.label}")
        ranked = sorted(c.customers, key=lambda r: (-max((abs(d) for d in r.differences.values()), default=ZERO),
                                                     r.customer_id))[:HTML_ROWS]
        detail = [(r.customer_id, *(format_money(r.totals[p], cur) for p in c.plans)) for r in ranked]
        return h.block(head, h.table(["plan", "code", "total", "vs baseline"], rows, numeric=[2, 3]),
                       h.paragraph("Customers who move most:"),
                       h.table(["customer", *c.plans], detail, numeric=range(1, len(c.plans) + 1)))


__all__ = ["Comparison", "InvoiceView", "Invoices"]
