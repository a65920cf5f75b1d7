"""One metric under one plan, period by period, for every customer billed: what `metering
timeline` prints and the notebook API's `Workspace.timeline` returns (one function, so the
rules and messages below hold for both).

Every customer in the events is priced under the plan (a what-if for those subscribed
elsewhere; `customer_id` limits it to one, which may be a subscriber without events), its
periods anchored at its subscription start, else at the workspace's default anchor.
"""

from __future__ import annotations

from typing import Any

from metering import billing, invoices
from metering.billing import TimelinePeriod
from metering.engine.interface import Events
from metering.models import MetricBase
from metering.plans import Plan


MAX_PERIODS = 1200  # periods one timeline may ask for (`metering timeline --periods`)


class TimelineError(ValueError):
    """A timeline that cannot be drawn, with a message for a person."""


def plan_and_metric(workspace: Any, plan_code: str, metric_code: str) -> tuple[Plan, MetricBase]:
    """The plan and the metric (WorkspaceError naming the known codes when one is unknown);
    TimelineError when the plan neither charges nor limits the metric."""
    plan, metric = workspace.plan(plan_code), workspace.metric(metric_code)
    if plan.charge_for(metric.code) is None and plan.quota_for(metric.code) is None:
        raise TimelineError(f"plan '{plan.code}' has no charge or quota on metric '{metric.code}'")
    return plan, metric


def customer_timelines(events: Events, workspace: Any, plan: Plan, metric: MetricBase, periods: int, *,
                       customer_id: str | None = None) -> dict[str, list[TimelinePeriod]]:
    """Each customer's first `periods` periods (`billing.timeline`). Raises InvoiceError for a
    customer that cannot be billed, TimelineError for one without an anchor or a bad count."""
    billed = invoices.assignments(events, plans=workspace.plans, subscriptions=workspace.subscriptions,
                                  tz=workspace.timezone, plan_code=plan.code, customer_id=customer_id)
    schedules = {}
    for a in billed:
        schedule = a.schedule(workspace.timezone)
        if schedule is None:
            raise TimelineError(
                f"customer '{a.customer_id}' has no subscription start and there are no events to anchor its periods"
            )
        schedules[a.customer_id] = schedule
    try:
        return billing.timeline(events, metric, plan, schedules, periods_count=periods)
    except ValueError as exc:  # e.g. a limit_recurring metric whose aggregation cannot carry over
        raise TimelineError(str(exc)) from None
