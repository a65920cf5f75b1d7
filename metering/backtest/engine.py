"""Running a backtest: who is billed, in which periods, on what usage, under each plan.

Every invoice is built the way ``metering invoice --plan P --period M`` builds it: the cohort
and each customer's anchor come from :func:`invoices.assignments` (what-if under a plan),
usage from :func:`billing.usage_chains`, lines and totals from :func:`invoices.build_invoice`
with :func:`invoices.fixed_lines`. What a backtest adds is sharing:

- usage does not depend on prices, and plans that may be compared share their interval, so
  each (metric, quota) is measured ONCE for the whole cohort and every month, in one pass over
  the events per set of customers sharing a schedule (the months' periods are contiguous);
- a :class:`BacktestCache` keeps that usage and each plan's priced invoices between runs on
  the same events, so editing a draft's price re-prices that draft only.

A ``limit_recurring`` quota carries over from the customer's first period, so its usage runs
from the anchor (``Schedule.chain_to``), as an invoice's does; the months' periods are then
read from that one chain.
"""

from __future__ import annotations

import gc
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from metering import billing, invoices
from metering.backtest.months import MAX_MONTHS, BacktestError, Month, label, month_range, periods_in_month
from metering.backtest.results import Backtest, PricedPlan
from metering.billing import PeriodUsage, Schedule, Window
from metering.engine import Events
from metering.invoices import Invoice, InvoiceError
from metering.models import MetricBase, MetricType
from metering.plans import Plan, Quota

MIN_PLANS, MAX_PLANS = 2, 6


# --- checks ---------------------------------------------------------------------------------


def check_plans(plans: Sequence[Plan]) -> None:
    """2–6 distinct plans sharing one currency and one billing interval."""
    if len(plans) < MIN_PLANS:
        raise BacktestError(f"pick at least {MIN_PLANS} plans: the baseline and a plan to compare with it")
    if len(plans) > MAX_PLANS:
        raise BacktestError(f"a backtest compares at most {MAX_PLANS} plans, not {len(plans)}")
    codes = [p.code for p in plans]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        raise BacktestError(f"plan '{twice[0]}' is listed twice: each plan can be compared only once")
    base = plans[0]
    for plan in plans[1:]:
        if plan.currency != base.currency:
            raise BacktestError(
                f"plans must share a currency: '{base.code}' bills in {base.currency}, '{plan.code}' in "
                f"{plan.currency} (totals in different currencies cannot be compared)"
            )
        if plan.interval != base.interval:
            raise BacktestError(
                f"plans must share a billing interval: '{base.code}' bills every {base.interval}, "
                f"'{plan.code}' every {plan.interval} (their periods would not line up)"
            )


def check_months(months: Sequence[Month]) -> tuple[Month, ...]:
    if not months:
        raise BacktestError("pick at least one month")
    if len(months) > MAX_MONTHS:
        raise BacktestError(f"a backtest covers at most {MAX_MONTHS} months, not {len(months)}")
    return tuple(months)


# --- the cache ------------------------------------------------------------------------------


class BacktestCache:
    """Usage and priced plans of earlier runs, valid while the events are the same object.

    Keys hold everything a value depends on (the months' periods of every customer, the
    metric's definition, the quota; the whole plan), so a stale entry is never read; entries
    are dropped oldest first beyond the limits, and all of them when the events change.
    """

    def __init__(self, *, max_usage: int = 32, max_priced: int = 16) -> None:
        self._frame: weakref.ref[Events] | None = None
        self._calendars: OrderedDict[Any, Calendar] = OrderedDict()
        self._usage: OrderedDict[Any, Any] = OrderedDict()
        self._priced: OrderedDict[Any, Any] = OrderedDict()
        self._limits = {"calendars": 8, "usage": max_usage, "priced": max_priced}
        self.stats = {"usage_computed": 0, "usage_reused": 0, "plans_computed": 0, "plans_reused": 0}

    def bind(self, frame: Events) -> None:
        if self._frame is None or self._frame() is not frame:
            self._calendars.clear()
            self._usage.clear()
            self._priced.clear()
            self._frame = weakref.ref(frame)

    def _get(self, table: str, key: Any, make: Callable[[], Any], counter: str | None = None) -> Any:
        store: OrderedDict[Any, Any] = getattr(self, "_" + table)
        if key in store:
            store.move_to_end(key)
            if counter:
                self.stats[counter + "_reused"] += 1
            return store[key]
        value = make()
        if counter:
            self.stats[counter + "_computed"] += 1
        store[key] = value
        while len(store) > self._limits[table]:
            store.popitem(last=False)
        return value


# --- who is billed in which periods ---------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    """Each customer's billing periods in each month (customers with at least one, sorted)."""

    interval: str
    tz: str
    months: tuple[Month, ...]
    customers: tuple[str, ...]
    periods: dict[str, tuple[tuple[Window, ...], ...]]
    schedules: dict[str, Schedule]
    key: tuple[Any, ...]


def cohort(
    frame: Events,
    workspace: Any,
    plans: Sequence[Plan],
    customer_ids: Iterable[str] | None = None,
) -> list[invoices.Assignment]:
    """The customers billed (every customer in the events, or the ones given) with their
    anchors, as :func:`invoices.assignments` gives them for a what-if under the baseline."""
    by_code = {p.code: p for p in workspace.plans}
    by_code.update({p.code: p for p in plans})  # drafts and edited copies win
    kwargs = dict(plans=by_code, subscriptions=workspace.subscriptions, tz=workspace.timezone, plan_code=plans[0].code)
    try:
        billed = invoices.assignments(frame, **kwargs)
        if customer_ids is None:
            return billed
        found = {a.customer_id: a for a in billed}
        out = []
        for cid in dict.fromkeys(customer_ids):  # keep order, drop repeats
            a = found.get(cid)
            if a is None:  # no events: billable only with a subscription (as `invoice --customer`)
                (a,) = invoices.assignments(frame, customer_id=cid, **kwargs)
            out.append(a)
        return sorted(out, key=lambda a: a.customer_id)
    except InvoiceError as exc:
        raise BacktestError(str(exc)) from None


def calendar(billed: Sequence[invoices.Assignment], interval: str, months: Sequence[Month], tz: str) -> Calendar:
    months = tuple(months)
    periods: dict[str, tuple[tuple[Window, ...], ...]] = {}
    schedules: dict[str, Schedule] = {}
    shared: dict[Schedule, tuple[tuple[Window, ...], ...]] = {}
    for a in billed:
        if a.anchor is None:
            continue
        schedule = Schedule(a.anchor, interval, tz)
        rows = shared.get(schedule)
        if rows is None:
            rows = shared[schedule] = tuple(periods_in_month(schedule, m) for m in months)
        if any(rows):
            periods[a.customer_id] = rows
            schedules[a.customer_id] = schedule
    customers = tuple(sorted(periods))
    key = (interval, tz, months, tuple((cid, schedules[cid].anchor) for cid in customers))
    return Calendar(interval, tz, months, customers, periods, schedules, key)


# --- usage ----------------------------------------------------------------------------------

Usage = dict[str, tuple[tuple[PeriodUsage, ...], ...]]  # customer → per month → per period


def _kind(metric: MetricBase) -> str:
    return str(getattr(metric.metric_type, "value", metric.metric_type))


def measured(metric: MetricBase, quota: Quota | None) -> bool:
    """Whether an invoice reads this metric's usage: charges always; a quota only when it is
    limit_recurring with a priced overage (a hard limit, or unpriced overage, bills nothing)."""
    if quota is None:
        return True
    return _kind(metric) == MetricType.limit_recurring.value and quota.overage_unit_price is not None


def usage_of(frame: Events, metric: MetricBase, cal: Calendar, quota: Quota | None) -> Usage:
    """The metric's usage in every customer's periods, months in order."""
    if _kind(metric) == MetricType.limit_recurring.value:
        return _recurring_quota_usage(frame, metric, cal, quota)
    flat: dict[int, list[Window]] = {}
    chains: dict[str, list[Window]] = {}
    for cid in cal.customers:
        rows = cal.periods[cid]
        chain = flat.get(id(rows))
        if chain is None:  # customers sharing a schedule share the chain object (one pass each)
            chain = flat[id(rows)] = [w for month in rows for w in month]
        chains[cid] = chain
    found = billing.usage_chains(frame, metric, chains, quota=None)
    out: Usage = {}
    for cid in cal.customers:
        got, at, cells = found[cid], 0, []
        for month in cal.periods[cid]:
            cells.append(tuple(got[at:at + len(month)]))
            at += len(month)
        out[cid] = tuple(cells)
    return out


def _recurring_quota_usage(frame: Events, metric: MetricBase, cal: Calendar, quota: Quota | None) -> Usage:
    assert quota is not None
    shared: dict[tuple[Schedule, Window], list[Window]] = {}
    chains: dict[str, list[Window]] = {}
    for cid in cal.customers:
        last = next(w[-1] for w in reversed(cal.periods[cid]) if w)
        key = (cal.schedules[cid], last)
        chain = shared.get(key)
        if chain is None:  # from the anchor, as an invoice's carryover runs
            chain = shared[key] = cal.schedules[cid].chain_to(last)
        chains[cid] = chain
    found = billing.usage_chains(frame, metric, chains, quota=quota)
    out: Usage = {}
    for cid in cal.customers:
        by_window = {(u.start, u.end): u for u in found[cid]}
        out[cid] = tuple(tuple(by_window[w] for w in month) for month in cal.periods[cid])
    return out


# --- pricing --------------------------------------------------------------------------------


def _needs(plan: Plan, metrics: Mapping[str, MetricBase]) -> list[tuple[str, MetricBase, Quota | None]]:
    out = []
    for code, quota in [(c.metric, None) for c in plan.charges] + [(q.metric, q) for q in plan.quotas]:
        metric = metrics.get(code)
        if metric is None:
            raise BacktestError(f"plan '{plan.code}' uses metric '{code}', which is not in the workspace")
        if measured(metric, quota):
            out.append((code, metric, quota))
    return out


@contextmanager
def _without_gc() -> Iterator[None]:
    """Pricing allocates some 20 short-lived objects per invoice and no reference cycles
    (refcounting frees them); the cyclic collector's passes over them would only add time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def price_plan(
    plan: Plan, cal: Calendar, usage: Mapping[str, Usage], metrics: Mapping[str, MetricBase]
) -> PricedPlan:
    """Every customer's invoices under ``plan``, per month (``usage``: metric code → usage),
    summed as they are built (:class:`PricedPlan`)."""
    fixed = invoices.fixed_lines(plan)
    codes = list(usage)

    def build(cid: str) -> tuple[tuple[Invoice, ...], ...]:
        per_metric = [usage[code][cid] for code in codes]
        cells = []
        for i, month in enumerate(cal.periods[cid]):
            cell = []
            for j, window in enumerate(month):
                usages = {code: per_metric[n][i][j] for n, code in enumerate(codes)}
                cell.append(invoices.build_invoice(plan, cid, window, usages, metrics, fixed=fixed))
            cells.append(tuple(cell))
        return tuple(cells)

    with _without_gc():
        return PricedPlan.summed(plan, ((cid, build(cid)) for cid in cal.customers), build)


def _metric_key(metric: MetricBase) -> str:
    return metric.model_dump_json()


def _quota_key(quota: Quota | None) -> Any:
    return None if quota is None else (quota.limit, quota.max_carryover)


def run(
    frame: Events,
    workspace: Any,
    plans: Sequence[Plan],
    months: Sequence[Month],
    *,
    customer_ids: Iterable[str] | None = None,
    cache: BacktestCache | None = None,
) -> Backtest:
    """Price the cohort under every plan for every month (the first plan is the baseline).

    ``workspace`` gives the metrics, subscriptions (anchors) and timezone; ``plans`` may hold
    plans that are not in it (drafts). Raises BacktestError for plans that cannot be compared,
    bad months, an unknown metric or a customer that cannot be billed.
    """
    plans = list(plans)
    check_plans(plans)
    months = check_months(months)
    cache = cache or BacktestCache()
    cache.bind(frame)
    tz = workspace.timezone
    metrics = {m.code: m for m in workspace.metrics}
    wanted = None if customer_ids is None else tuple(dict.fromkeys(customer_ids))
    cal_key = (plans[0].interval, tz, months, wanted, tuple(sorted((s.customer_id, str(s.start)) for s in workspace.subscriptions)))
    cal = cache._get("calendars", cal_key, lambda: calendar(
        cohort(frame, workspace, plans, wanted), plans[0].interval, months, tz))

    result: dict[str, PricedPlan] = {}
    for plan in plans:
        needs = _needs(plan, metrics)
        usage_keys = tuple((code, _metric_key(metric), _quota_key(quota)) for code, metric, quota in needs)

        def priced(plan: Plan = plan, needs: list = needs) -> PricedPlan:
            usage = {}
            for code, metric, quota in needs:
                key = (cal.key, _metric_key(metric), _quota_key(quota))
                usage[code] = cache._get("usage", key, lambda m=metric, q=quota: usage_of(frame, m, cal, q), "usage")
            return price_plan(plan, cal, usage, metrics)

        try:
            result[plan.code] = cache._get("priced", (cal.key, plan.model_dump_json(), usage_keys), priced, "plans")
        except ValueError as exc:  # e.g. a limit_recurring metric whose aggregation cannot carry over
            if isinstance(exc, BacktestError):
                raise
            raise BacktestError(f"plan '{plan.code}': {exc}") from None
    return Backtest(tuple(plans), months, cal.customers, result, tz=tz, stats=dict(cache.stats))


def run_codes(
    frame: Events,
    workspace: Any,
    codes: Sequence[str],
    first: str,
    last: str,
    *,
    customer_ids: Iterable[str] | None = None,
    drafts: Sequence[Plan] = (),
    cache: BacktestCache | None = None,
) -> Backtest:
    """The CLI's call: plans by code (stored plans or ``drafts``), months as ``YYYY-MM``."""
    known = {p.code: p for p in workspace.plans}
    known.update({p.code: p for p in drafts})
    missing = [c for c in codes if c not in known]
    if missing:
        names = ", ".join(sorted(known)) or "none"
        raise BacktestError(f"plan '{missing[0]}' is not in the workspace (plans: {names})")
    months = month_range(first, last)
    return run(frame, workspace, [known[c] for c in codes], months, customer_ids=customer_ids, cache=cache)


__all__ = ["BacktestCache", "Calendar", "check_plans", "check_months", "cohort", "calendar", "run", "run_codes", "label"]
