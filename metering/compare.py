"""Plan comparison ("shadow billing"): the same usage priced under two or more plans.

The first plan is the baseline. Every customer is priced under every plan for the same billing
period (or window); the result gives each customer's invoice total per plan and its difference
against the baseline, and the totals over all customers, as plain data
(:meth:`Comparison.to_json`) or a pandas DataFrame (:func:`comparison_frame`).

Rules decided here:

- Plans compared must share a currency and an interval: totals in different currencies, or
  over periods of different lengths, cannot be subtracted meaningfully.
- Customers are, by default, every customer found in the events (as a what-if invoice), with
  their subscription start as anchor when they have one.
- A customer without a period starting in the requested month under a plan (a period before
  its subscription start) is left out of the comparison altogether, so every row compares
  like with like.
- difference = total under the plan − total under the baseline (positive: the plan costs more).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

import pandas as pd

from metering import invoices as inv
from metering.billing import EXACT, Window
from metering.engine.interface import Events
from metering.models import MetricBase
from metering.plans import Plan

ZERO = Decimal(0)


class ComparisonError(ValueError):
    """Plans that cannot be compared, with a message for a person."""


@dataclass(frozen=True)
class CustomerComparison:
    customer_id: str
    totals: dict[str, Decimal]  # plan code → invoice total
    differences: dict[str, Decimal]  # plan code → total − baseline total
    invoices: dict[str, inv.Invoice]


@dataclass(frozen=True)
class Comparison:
    plans: list[str]  # baseline first
    currency: str
    customers: list[CustomerComparison]
    totals: dict[str, Decimal]
    differences: dict[str, Decimal]

    @property
    def baseline(self) -> str:
        return self.plans[0]

    def to_json(self) -> dict[str, Any]:
        text = lambda d: {k: format(v, "f") for k, v in d.items()}  # noqa: E731
        return {
            "baseline": self.baseline,
            "plans": list(self.plans),
            "currency": self.currency,
            "customers": [
                {"customer_id": c.customer_id, "totals": text(c.totals), "differences": text(c.differences)}
                for c in self.customers
            ],
            "totals": text(self.totals),
            "differences": text(self.differences),
        }


@dataclass(frozen=True)
class PlanGroup:
    """Plans that can be compared with each other: one currency, one billing interval."""

    currency: str
    interval: str
    plans: list[Plan]
    subscribers: int

    @property
    def label(self) -> str:
        count = f"{len(self.plans)} plan{'' if len(self.plans) == 1 else 's'}"
        return f"{self.currency} · every {self.interval} ({count})"


def compatible_groups(plans: Sequence[Plan], subscriptions: Sequence[Any] = ()) -> list[PlanGroup]:
    """``plans`` split by (currency, interval), each group keeping the plans' order. The group
    whose plans have the most subscribers comes first (then the one with the most plans, then
    by currency and interval), so a page's default comparison is always a possible one and
    follows where the customers are, never a cheap plan in another currency."""
    per_plan: dict[str, int] = {}
    for sub in subscriptions:
        code = sub["plan"] if isinstance(sub, dict) else getattr(sub, "plan", None)
        per_plan[str(code)] = per_plan.get(str(code), 0) + 1
    groups: dict[tuple[str, str], list[Plan]] = {}
    for plan in plans:
        groups.setdefault((plan.currency, plan.interval), []).append(plan)
    out = [PlanGroup(cur, interval, members, sum(per_plan.get(p.code, 0) for p in members))
           for (cur, interval), members in groups.items()]
    out.sort(key=lambda g: (-g.subscribers, -len(g.plans), g.currency, g.interval))
    return out


def compare_plans(
    frame: Events,
    metrics: Sequence[MetricBase],
    plans: Sequence[Plan],
    *,
    subscriptions: Sequence[Any] = (),
    tz: str = "UTC",
    month: tuple[int, int] | None = None,
    window: Window | None = None,
    customer_ids: Sequence[str] | None = None,
) -> Comparison:
    """Price the same usage under every plan (the first is the baseline)."""
    if len(plans) < 2:
        raise ComparisonError("pick at least two plans to compare")
    codes = [p.code for p in plans]
    if len(set(codes)) != len(codes):
        raise ComparisonError("each plan can be compared only once")
    base = plans[0]
    for plan in plans[1:]:
        if plan.currency != base.currency:
            raise ComparisonError(
                f"plans must share a currency to be compared: '{base.code}' bills in {base.currency}, "
                f"'{plan.code}' in {plan.currency}"
            )
        if plan.interval != base.interval:
            raise ComparisonError(
                f"plans must share a billing interval to be compared: '{base.code}' is billed every "
                f"{base.interval}, '{plan.code}' every {plan.interval}"
            )
    by_plan: dict[str, dict[str, inv.Invoice]] = {}
    for plan in plans:
        billed = inv.assignments(frame, plans=list(plans), subscriptions=subscriptions, tz=tz, plan_code=plan.code)
        if customer_ids is not None:
            wanted = set(customer_ids)
            billed = [a for a in billed if a.customer_id in wanted]
        result = inv.invoices_for(frame, metrics, billed, tz=tz, month=month, window=window)
        by_plan[plan.code] = {i.customer_id: i for i in result}
    common = sorted(set.intersection(*(set(v) for v in by_plan.values())))
    rows = []
    with localcontext(EXACT):
        for cid in common:
            totals = {code: by_plan[code][cid].total for code in codes}
            rows.append(CustomerComparison(
                cid, totals, {code: totals[code] - totals[base.code] for code in codes},
                {code: by_plan[code][cid] for code in codes},
            ))
        grand = {code: sum((r.totals[code] for r in rows), ZERO) for code in codes}
        differences = {c: grand[c] - grand[base.code] for c in codes}
    return Comparison(codes, base.currency, rows, grand, differences)


def comparison_frame(comparison: Comparison) -> pd.DataFrame:
    """One row per customer: a total column per plan and a difference column per other plan
    (``<plan> vs <baseline>``). Decimal values are kept exact (object columns)."""
    base = comparison.baseline
    records = []
    for c in comparison.customers:
        row: dict[str, Any] = {"customer_id": c.customer_id}
        for code in comparison.plans:
            row[code] = c.totals[code]
        for code in comparison.plans[1:]:
            row[f"{code} vs {base}"] = c.differences[code]
        records.append(row)
    columns = ["customer_id", *comparison.plans, *[f"{c} vs {base}" for c in comparison.plans[1:]]]
    return pd.DataFrame.from_records(records, columns=columns)
