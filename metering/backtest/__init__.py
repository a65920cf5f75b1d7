"""Backtests (contract §7): any 2–6 plans priced over 1–24 months of real usage for a cohort,
exactly as the invoices are, with what it means for revenue and for each customer.

- :mod:`.months`: the months and the billing periods that start in each;
- :mod:`.engine`: who is billed, usage measured once per metric and shared by every plan,
  pricing, and the cache that makes a draft's edit re-price only that draft;
- :mod:`.results`: totals, changes, the contract's JSON document and the CSV rows;
- :mod:`.analysis`: revenue by line, the distribution of changes, movers, the guardrail;
- :mod:`.reasons`: one customer's invoices side by side, each line's difference and reason;
- :mod:`.drafts`: duplicating a plan as a draft and validating it as the plan form does.
"""

from metering.backtest.engine import BacktestCache, check_plans, cohort, run, run_codes
from metering.backtest.months import MAX_MONTHS, BacktestError, label, month_range, parse
from metering.backtest.results import Backtest, percent

__all__ = [
    "MAX_MONTHS", "Backtest", "BacktestCache", "BacktestError", "check_plans", "cohort", "label",
    "month_range", "parse", "percent", "run", "run_codes",
]
