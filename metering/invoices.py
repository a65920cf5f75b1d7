"""Invoices per customer and billing period (contract §4, §6 `metering invoice`).

An invoice has one line per base fee, fixed charge, usage charge and priced quota overage;
each line is rounded half-up to the currency's minor unit; ``subtotal`` is the sum of the
rounded lines; ``credit`` = min(included credit, usage lines) where usage lines are the charges
and quota overage; ``total`` = subtotal − credit. Every line can explain its arithmetic
(:meth:`InvoiceLine.explain`).

Who is billed, under what, for which period:

- ``plan_code`` given (a what-if): every customer found in the events, under that plan;
  otherwise every customer with a subscription, under its plan.
- A customer's periods are anchored at its subscription ``start``; without one, at the default
  anchor: midnight of the first day of the month (workspace timezone) of the earliest event
  across all customers.
- ``month=(year, month)`` bills each customer's first period that starts in that month (none:
  no invoice); ``window=(start, end)`` bills that exact window as one period for everyone.

Rules decided here (the contract is silent):

- Lines come in this order: base fee, fixed charges, usage charges, quota overage (each in
  plan order). The base fee line appears only when the plan has a base fee (≠ 0); every fixed
  charge and every usage charge always has a line, 0 included, so invoices of one plan share
  their shape; a quota gets an overage line only when it is limit_recurring with an
  ``overage_unit_price`` (limit_metered quotas and unpriced overage bill nothing).
- Base fee line: units 1; fixed charge line: units = quantity; usage line: units = the
  period's usage (before free units); overage line: units = overage.
- A period that starts before the customer's anchor (subscription start) is not billed.
- ``window``: the base fee, fixed charges and included credit apply once, in full (no
  proration); a limit_recurring quota carries into the window the carryover of the customer's
  whole billing periods that end at or before the window's start.
- Included credit is truncated (never rounded up) to the currency's minor unit, so a customer
  never gets more credit than the plan grants.
- Invoices are ordered by customer id. The report's top-level ``total`` sums the invoices in
  the first invoice's currency; with no invoice it is "0", ``currency`` is null and ``period``
  is the window (or null for a month).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Any

from metering import billing, csvsafe
from metering.billing import EXACT, PeriodUsage, Schedule, Window, decimal_text, iso
from metering.engine.interface import Events
from metering.models import MetricBase, MetricType, as_utc
from metering.money import format_money, minor_units, round_money
from metering.periods import parse_subscription_start
from metering.plans import Plan
from metering.pricing import ChargeResult, price_charge

ZERO = Decimal(0)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class InvoiceError(ValueError):
    """The request cannot be billed (unknown plan or customer, bad period): a message for a person."""


# --- lines and invoices ---------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceLine:
    kind: str  # "base_fee" | "fixed_charge" | "usage" | "overage"
    description: str
    metric: str | None
    units: Decimal
    amount: Decimal  # rounded to the currency
    exact: Decimal  # before rounding
    groups: tuple[tuple[dict[str, str | None], Decimal], ...] = ()
    charge: ChargeResult | None = None
    unit_price: Decimal | None = None
    usage: PeriodUsage | None = None

    @property
    def is_usage(self) -> bool:
        return self.kind in ("usage", "overage")

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "metric": self.metric,
            "units": decimal_text(self.units),
            "amount": format(self.amount, "f"),
            "groups": [{"group": g, "units": decimal_text(u)} for g, u in self.groups],
        }

    def explain(self, currency: str, *, locale: str = "en_US") -> list[str]:
        """The arithmetic of the line, for a person: units, free units, tiers and rounding."""
        cash = lambda v: format_money(v, currency, locale, exact=True)  # noqa: E731
        lines: list[str] = []
        if self.kind == "base_fee":
            lines.append(f"base fee, billed every period: {cash(self.exact)}")
        elif self.kind == "fixed_charge":
            lines.append(f"{decimal_text(self.units)} × {cash(self.unit_price or ZERO)} = {cash(self.exact)}")
        elif self.kind == "usage":
            u = self.usage
            if u is not None and u.metric_type == MetricType.charge_recurring.value:
                lines.append(f"running usage of every event before {iso(u.end)} (never resets): {decimal_text(u.usage)}")
            if u is not None and u.skipped:
                lines.append(f"{u.skipped} event(s) skipped: " + ", ".join(f"{k} ({n})" for k, n in u.skip_reasons.items()))
            if self.charge is not None:
                lines.extend(self.charge.explain(currency, locale=locale))
        else:  # overage
            u = self.usage
            if u is not None and u.available is not None:
                lines.append(
                    f"used {decimal_text(u.usage)} of {decimal_text(u.available)} available → "
                    f"overage {decimal_text(self.units)}"
                )
            lines.append(f"{decimal_text(self.units)} × {cash(self.unit_price or ZERO)} = {cash(self.exact)}")
        if self.amount != self.exact:
            lines.append(f"rounded half-up to {format_money(self.amount, currency, locale)}")
        return lines


@dataclass(frozen=True)
class Invoice:
    customer_id: str
    plan: str
    currency: str
    start: datetime
    end: datetime
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    credit: Decimal
    total: Decimal
    included_credit: Decimal = ZERO

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "plan": self.plan,
            "period": {"start": iso(self.start), "end": iso(self.end)},
            "currency": self.currency,
            "lines": [line.to_json() for line in self.lines],
            "subtotal": format(self.subtotal, "f"),
            "credit": format(self.credit, "f"),
            "total": format(self.total, "f"),
        }

    def explain(self, *, locale: str = "en_US") -> list[str]:
        """The invoice's own arithmetic: subtotal, credit, total."""
        cash = lambda v: format_money(v, self.currency, locale)  # noqa: E731
        with localcontext(EXACT):
            usage = sum((l.amount for l in self.lines if l.is_usage), ZERO)
        out = [f"subtotal = sum of the rounded lines = {cash(self.subtotal)}"]
        if self.included_credit:
            out.append(
                f"credit = min(included credit {cash(self.included_credit)}, usage lines {cash(usage)})"
                f" = {cash(self.credit)}"
            )
        out.append(f"total = {cash(self.subtotal)} − {cash(self.credit)} = {cash(self.total)}")
        return out


def fixed_lines(plan: Plan) -> list[InvoiceLine]:
    """The lines that do not depend on usage: base fee (when set) and fixed charges."""
    currency = plan.currency
    lines: list[InvoiceLine] = []
    if plan.base_fee:
        lines.append(InvoiceLine("base_fee", "Base fee", None, Decimal(1), round_money(plan.base_fee, currency), plan.base_fee))
    for fixed in plan.fixed_charges:
        with localcontext(EXACT):
            exact = fixed.quantity * fixed.unit_price
        lines.append(InvoiceLine(
            "fixed_charge", fixed.name, None, fixed.quantity, round_money(exact, currency), exact,
            unit_price=fixed.unit_price,
        ))
    return lines


def build_invoice(
    plan: Plan,
    customer_id: str,
    window: Window,
    usages: Mapping[str, PeriodUsage],
    metrics: Mapping[str, MetricBase],
    *,
    fixed: Sequence[InvoiceLine] | None = None,
) -> Invoice:
    """One customer's invoice from its usage per metric code (the plan's charges and quotas).
    ``fixed`` reuses :func:`fixed_lines` of the plan when many invoices are built at once."""
    currency = plan.currency
    lines: list[InvoiceLine] = list(fixed_lines(plan) if fixed is None else fixed)
    for charge in plan.charges:
        u = usages[charge.metric]
        result = price_charge(charge, u.usage, event_count=u.period_events)
        lines.append(InvoiceLine(
            "usage", _name(metrics, charge.metric), charge.metric, u.usage,
            round_money(result.amount, currency), result.amount,
            groups=tuple((dict(g.group), g.value) for g in u.groups),
            charge=result, usage=u,
        ))
    for quota in plan.quotas:
        if quota.overage_unit_price is None:
            continue
        u = usages.get(quota.metric)
        if u is None or u.overage is None:  # limit_metered: a hard limit has no overage
            continue
        with localcontext(EXACT):
            exact = u.overage * quota.overage_unit_price
        lines.append(InvoiceLine(
            "overage", f"{_name(metrics, quota.metric)} overage", quota.metric, u.overage,
            round_money(exact, currency), exact, unit_price=quota.overage_unit_price, usage=u,
        ))
    return _totals(plan, customer_id, window, lines)


@lru_cache(maxsize=64)
def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def _totals(plan: Plan, customer_id: str, window: Window, lines: list[InvoiceLine]) -> Invoice:
    quantum = _quantum(plan.currency)
    with localcontext(EXACT):
        subtotal = sum((l.amount for l in lines), ZERO)
        usage = sum((l.amount for l in lines if l.is_usage), ZERO)
        included = plan.included_credit.quantize(quantum, rounding=ROUND_DOWN)
        credit = min(included, usage)
        subtotal, credit = subtotal.quantize(quantum), credit.quantize(quantum)
        total = (subtotal - credit).quantize(quantum)
    return Invoice(
        customer_id, plan.code, plan.currency, window[0], window[1], tuple(lines),
        subtotal, credit, total, included,
    )


def credit_granted(included_credit: Decimal, currency: str) -> Decimal:
    """The included credit at the currency's minor unit, truncated (never more than granted)."""
    with localcontext(EXACT):
        return included_credit.quantize(_quantum(currency), rounding=ROUND_DOWN)


def _name(metrics: Mapping[str, MetricBase], code: str) -> str:
    metric = metrics.get(code)
    return metric.name if metric is not None else code


# --- who is billed, when --------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """A customer billed under a plan, with the anchor of its periods (None: no anchor known)."""

    customer_id: str
    plan: Plan
    anchor: datetime | None

    def schedule(self, tz: str) -> Schedule | None:
        return None if self.anchor is None else Schedule(self.anchor, self.plan.interval, tz)


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month); InvoiceError otherwise."""
    match = _MONTH.match(str(text).strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise InvoiceError(f"period '{text}' is not a month: write YYYY-MM, e.g. 2026-10")
    return int(match.group(1)), int(match.group(2))


def _sub_fields(sub: Any) -> tuple[str, str, Any]:
    if isinstance(sub, Mapping):
        return str(sub["customer_id"]), str(sub["plan"]), sub.get("start")
    return str(sub.customer_id), str(getattr(sub, "plan", None) or getattr(sub, "plan_code")), getattr(sub, "start", None)


def assignments(
    frame: Events,
    *,
    plans: Mapping[str, Plan] | Sequence[Plan],
    subscriptions: Iterable[Any],
    tz: str = "UTC",
    plan_code: str | None = None,
    customer_id: str | None = None,
) -> list[Assignment]:
    """Who is billed under what (see the module docstring), in customer id order.

    ``subscriptions`` are objects or dicts with customer_id, plan (or plan_code) and start.
    Raises InvoiceError for an unknown plan, or a ``customer_id`` that is not billable.
    """
    by_code = dict(plans) if isinstance(plans, Mapping) else {p.code: p for p in plans}
    subs = {}
    for sub in subscriptions:
        cid, code, start = _sub_fields(sub)
        subs[cid] = (code, start)
    default = billing.default_anchor(frame, tz=tz)

    def anchor_of(cid: str) -> datetime | None:
        start = subs.get(cid, (None, None))[1]
        if start is None or str(start).strip() == "":
            return default
        return parse_subscription_start(start, tz=tz)

    out: list[Assignment] = []
    if plan_code is not None:
        plan = by_code.get(plan_code)
        if plan is None:
            known = ", ".join(sorted(by_code)) or "none"
            raise InvoiceError(f"plan '{plan_code}' is not in the workspace (plans: {known})")
        customers = frame.customer_ids()
        if customer_id is not None:
            if customer_id not in customers and customer_id not in subs:
                raise InvoiceError(f"customer '{customer_id}' has no events and no subscription")
            customers = [customer_id]
        return [Assignment(cid, plan, anchor_of(cid)) for cid in customers]
    for cid in sorted(subs):
        if customer_id is not None and cid != customer_id:
            continue
        code = subs[cid][0]
        plan = by_code.get(code)
        if plan is None:
            raise InvoiceError(f"subscription of '{cid}': plan '{code}' is not in the workspace")
        out.append(Assignment(cid, plan, anchor_of(cid)))
    if customer_id is not None and not out:
        raise InvoiceError(f"customer '{customer_id}' has no subscription (use --plan for a what-if)")
    return out


# --- pricing many customers at once ---------------------------------------------------------


def invoices_for(
    frame: Events,
    metrics: Mapping[str, MetricBase] | Sequence[MetricBase],
    billed: Sequence[Assignment],
    *,
    tz: str = "UTC",
    month: tuple[int, int] | None = None,
    window: Window | None = None,
) -> list[Invoice]:
    """Invoices of every assignment for ``month`` (each customer's first period starting in it)
    or for an explicit ``window``; customers without such a period get none."""
    if (month is None) == (window is None):
        raise InvoiceError("give either a month or a window")
    by_code = dict(metrics) if isinstance(metrics, Mapping) else {m.code: m for m in metrics}
    periods: dict[str, tuple[Assignment, Window, Schedule | None]] = {}
    for a in billed:
        schedule = a.schedule(tz)
        if window is not None:
            periods[a.customer_id] = (a, (as_utc(window[0]), as_utc(window[1])), schedule)
        elif schedule is not None:
            found = _period_in_month(schedule, *month)  # type: ignore[misc]
            if found is not None:
                periods[a.customer_id] = (a, found, schedule)

    by_plan: dict[str, list[str]] = {}
    for cid, (a, _, _) in periods.items():
        by_plan.setdefault(a.plan.code, []).append(cid)

    invoices: list[Invoice] = []
    for cids in by_plan.values():
        plan = periods[cids[0]][0].plan
        usages: dict[str, dict[str, PeriodUsage]] = {cid: {} for cid in cids}
        for code, quota in [(c.metric, None) for c in plan.charges] + [(q.metric, q) for q in plan.quotas]:
            metric = by_code.get(code)
            if metric is None:
                raise InvoiceError(f"plan '{plan.code}' uses metric '{code}', which is not in the workspace")
            kind = str(getattr(metric.metric_type, "value", metric.metric_type))
            if quota is not None and (kind != MetricType.limit_recurring.value or quota.overage_unit_price is None):
                continue  # nothing to bill: a hard limit, or overage without a price
            if kind == MetricType.limit_recurring.value:
                chains = {cid: _chain(periods[cid][2], periods[cid][1]) for cid in cids}
                for cid, rows in billing.usage_chains(frame, metric, chains, quota=quota).items():
                    usages[cid][code] = rows[-1]
            else:
                windows = {cid: periods[cid][1] for cid in cids}
                chains1 = {cid: [w] for cid, w in windows.items()}
                for cid, rows in billing.usage_chains(frame, metric, chains1, quota=plan.quota_for(code)).items():
                    usages[cid][code] = rows[0]
        fixed = fixed_lines(plan)
        for cid in cids:
            invoices.append(build_invoice(plan, cid, periods[cid][1], usages[cid], by_code, fixed=fixed))
    invoices.sort(key=lambda inv: inv.customer_id)
    return invoices


@lru_cache(maxsize=4096)
def _period_in_month(schedule: Schedule, year: int, month: int) -> Window | None:
    return schedule.period_in_month(year, month)  # customers share schedules: compute once


@lru_cache(maxsize=4096)
def _chain(schedule: Schedule | None, window: Window) -> tuple[Window, ...]:
    return (window,) if schedule is None else tuple(schedule.chain_to(window))


# --- report and exports ---------------------------------------------------------------------


def report(invoices: Sequence[Invoice], *, window: Window | None = None) -> dict[str, Any]:
    """The ``metering invoice`` JSON (contract §6)."""
    if invoices:
        first = invoices[0]
        period: dict[str, str] | None = {"start": iso(first.start), "end": iso(first.end)}
        currency: str | None = first.currency
        with localcontext(EXACT):
            total = sum((i.total for i in invoices if i.currency == currency), ZERO)
        total_text = format(round_money(total, currency), "f")
    else:
        period = None if window is None else {"start": iso(window[0]), "end": iso(window[1])}
        currency, total_text = None, "0"
    return {
        "period": period,
        "currency": currency,
        "invoices": [i.to_json() for i in invoices],
        "total": total_text,
    }


def to_json_text(invoices: Sequence[Invoice], *, window: Window | None = None) -> str:
    """The report as pretty JSON text (a download)."""
    return json.dumps(report(invoices, window=window), indent=2, ensure_ascii=False) + "\n"


LINE_COLUMNS = ["customer_id", "plan", "period_start", "period_end", "currency", "description", "metric", "units", "amount"]
SUMMARY_COLUMNS = ["customer_id", "plan", "period_start", "period_end", "currency", "subtotal", "credit", "total"]


def line_rows(invoices: Sequence[Invoice]) -> list[dict[str, Any]]:
    """One row per invoice line, decimals as plain text (exact, as on the invoice)."""
    rows = []
    for inv in invoices:
        for line in inv.lines:
            rows.append({
                "customer_id": inv.customer_id, "plan": inv.plan,
                "period_start": iso(inv.start), "period_end": iso(inv.end), "currency": inv.currency,
                "description": line.description, "metric": line.metric or "",
                "units": decimal_text(line.units), "amount": format(line.amount, "f"),
            })
    return rows


def summary_rows(invoices: Sequence[Invoice]) -> list[dict[str, Any]]:
    """One row per invoice: subtotal, credit and total."""
    return [
        {
            "customer_id": inv.customer_id, "plan": inv.plan,
            "period_start": iso(inv.start), "period_end": iso(inv.end), "currency": inv.currency,
            "subtotal": format(inv.subtotal, "f"), "credit": format(inv.credit, "f"), "total": format(inv.total, "f"),
        }
        for inv in invoices
    ]


def to_csv(invoices: Sequence[Invoice], *, summary: bool = False) -> str:
    """CSV text: invoice lines (default) or one summary row per invoice. Customer ids and
    descriptions are user text, so the cells are written spreadsheet-safe (`csvsafe`)."""
    rows, columns = (summary_rows(invoices), SUMMARY_COLUMNS) if summary else (line_rows(invoices), LINE_COLUMNS)
    return csvsafe.to_csv(rows, columns)


# --- one call from a workspace --------------------------------------------------------------


def run(
    frame: Events,
    workspace: Any,
    *,
    plan_code: str | None = None,
    month: tuple[int, int] | None = None,
    window: Window | None = None,
    customer_id: str | None = None,
) -> list[Invoice]:
    """Invoices from a :class:`metering.workspace.Workspace` (the CLI and the app use this)."""
    billed = assignments(
        frame, plans=workspace.plans, subscriptions=workspace.subscriptions, tz=workspace.timezone,
        plan_code=plan_code, customer_id=customer_id,
    )
    return invoices_for(frame, workspace.metrics, billed, tz=workspace.timezone, month=month, window=window)
