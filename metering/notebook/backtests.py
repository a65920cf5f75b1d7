"""A backtest as a notebook result: the engine's `metering.backtest.Backtest` (invoices built
as `metering invoice` builds them, for every customer and month under every plan) with its
analysis (`metering.backtest.analysis`: guardrail, distribution, movers; `reasons`: why one
customer's bill moves), pandas tables, a rich display and a chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from metering.backtest import analysis, reasons
from metering.money import format_money, format_signed_money
from metering.notebook import charts
from metering.notebook import html as h
from metering.preview import fmt, plural

MOVERS = 5  # customers listed each way in the rich display


def _pct(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return ("+" if value > 0 else "") + f"{fmt(value)} %"


@dataclass(frozen=True)
class BacktestResult:
    """2–6 plans priced over 1–24 months for a cohort (the first plan is the baseline), with
    the guardrail "no customer pays more than +`threshold` %" checked for every other plan."""

    backtest: backtest.Backtest
    threshold: Decimal

    # --- figures ------------------------------------------------------------------------

    @property
    def baseline(self) -> str:
        """The baseline plan's code (the first plan)."""
        return self.backtest.baseline

    @property
    def plans(self) -> list[str]:
        """The plan codes, baseline first."""
        return self.backtest.codes

    @property
    def months(self) -> list[str]:
        """The months priced, as YYYY-MM."""
        return self.backtest.month_labels

    @property
    def customers(self) -> list[str]:
        """The customers priced (those with a billing period in the months), by id."""
        return list(self.backtest.customers)

    @property
    def currency(self) -> str:
        """The plans' currency."""
        return self.backtest.currency

    @property
    def totals(self) -> dict[str, Decimal]:
        """Plan → revenue over every customer and month."""
        return dict(self.backtest.totals)

    def change(self, plan: str, customer: str | None = None) -> Decimal:
        """Total under `plan` − total under the baseline (everyone's, or one customer's)."""
        return self.backtest.change(plan, customer)

    def change_percent(self, plan: str, customer: str | None = None) -> Decimal | None:
        """The change in % of the baseline (2 places, half-up; None when the baseline is 0)."""
        return self.backtest.change_percent(plan, customer)

    def guardrail(self, plan: str) -> analysis.Guardrail:
        """The customers of `plan` past the threshold (`passed` when there are none)."""
        return analysis.guardrail(self.backtest, plan, self.threshold)

    @property
    def passed(self) -> dict[str, bool]:
        """Plan → whether it passes the guardrail (every plan but the baseline)."""
        return {code: self.guardrail(code).passed for code in self.backtest.candidates}

    def distribution(self, plan: str) -> analysis.Distribution:
        """Per-customer % changes under `plan`: up / down / unchanged, median, 95th percentile, bins."""
        return analysis.distribution(self.backtest, plan)

    def movers(self, plan: str, n: int = 10) -> tuple[list[analysis.Mover], list[analysis.Mover]]:
        """(the n largest increases, the n largest decreases) in money under `plan`."""
        return analysis.movers(self.backtest, plan, n)

    def why(self, customer: str, plan: str, month: str | None = None) -> pd.DataFrame:
        """One customer's invoice under the baseline and under `plan`, line by line, with each
        difference and its reason (which tier, free units, credit, quota or fee), for `month`
        (YYYY-MM; default the first month in which the customer is billed)."""
        bt = self.backtest
        if customer not in bt.customers:
            raise KeyError(f"customer '{customer}' is not in this backtest")
        if plan not in bt.candidates:
            raise KeyError(f"plan '{plan}' is not compared in this backtest (plans: {', '.join(bt.candidates)})")
        cells = bt.invoices_of(bt.baseline, customer)
        if month is None:
            index = next(i for i, c in enumerate(cells) if c)
        elif month in bt.month_labels:
            index = bt.month_labels.index(month)
        else:
            raise KeyError(f"month '{month}' is not in this backtest ({bt.month_labels[0]} to {bt.month_labels[-1]})")
        rows = [(d.description, d.kind, d.baseline, d.candidate, d.difference, "; ".join(r.text for r in d.reasons))
                for d in reasons.customer_diffs(bt, customer, plan, index)]
        return pd.DataFrame(rows, columns=["line", "kind", "baseline", plan, "difference", "reason"])

    # --- conversions -------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The `metering backtest` document (contract §7)."""
        return self.backtest.to_json()

    def to_pandas(self) -> pd.DataFrame:
        """One row per customer: the total under each plan, then each other plan's change and
        % change (Decimals; % None when the baseline total is 0)."""
        bt = self.backtest
        rows = []
        for cid in bt.customers:
            row: dict[str, Any] = {"customer_id": cid}
            row.update({code: bt.customer_totals[code][cid] for code in bt.codes})
            for code in bt.candidates:
                change, pct = bt.customer_changes[code][cid]
                row[f"{code} change"] = change
                row[f"{code} change %"] = pct
            rows.append(row)
        columns = ["customer_id", *bt.codes, *[f"{c} change{s}" for c in bt.candidates for s in ("", " %")]]
        return pd.DataFrame(rows, columns=columns)

    def months_frame(self) -> pd.DataFrame:
        """Revenue per month and plan: month, plan, total (Decimal)."""
        bt = self.backtest
        rows = [(m, code, bt.month_totals[code][i]) for code in bt.codes for i, m in enumerate(bt.month_labels)]
        return pd.DataFrame(rows, columns=["month", "plan", "total"])

    def chart(self) -> Any:
        """Revenue per month, one line per plan (at most 24 months × 6 plans)."""
        return charts.plan_months(self.months_frame(), currency=self.currency, plans=self.plans)

    def _repr_html_(self) -> str:
        bt = self.backtest
        cur = bt.currency
        money = lambda v: format_money(v, cur)  # noqa: E731
        names = {p.code: p.name for p in bt.plans}
        summary = []
        for code in bt.codes:
            if code == bt.baseline:
                summary.append((names[code], code, money(bt.totals[code]), "baseline", "", "", ""))
                continue
            up, down, same = bt.counts(code)
            rail = self.guardrail(code)
            verdict = "passes" if rail.passed else f"fails: {plural(rail.count, 'customer')}"
            summary.append((names[code], code, money(bt.totals[code]), format_signed_money(bt.change(code), cur),
                            _pct(bt.change_percent(code)), f"{up} / {down} / {same}", verdict))
        head = (f"{plural(len(bt.customers), 'customer')} · {plural(len(bt.months), 'month')} "
                f"({bt.month_labels[0]} to {bt.month_labels[-1]}) · guardrail: no customer pays more than "
                f"+{fmt(self.threshold)} %")
        parts = [h.paragraph(head),
                 h.table(["plan", "code", "revenue", "change", "change %", "up / down / same", "guardrail"], summary,
                         numeric=[2, 3, 4])]
        for code in bt.candidates:
            dist = self.distribution(code)
            parts.append(h.heading(f"{names[code]} ({code}) against {names[bt.baseline]}: median "
                                   f"{_pct(dist.median)}, 95th percentile {_pct(dist.p95)}", 5))
            ups, downs = self.movers(code, MOVERS)
            rows = [(m.customer_id, money(m.baseline), money(m.total), format_signed_money(m.change, cur), _pct(m.change_percent))
                    for m in [*ups, *downs]]
            if rows:
                parts.append(h.table(["top movers", "baseline", code, "change", "change %"], rows, numeric=[1, 2, 3, 4]))
        return h.block(*parts)
