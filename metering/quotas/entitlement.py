"""May this customer use N more units of a limit metric now? (contract §8, entitlement check)

`check(engine, customer_id, metric_code, quantity=…, now=…)` answers for the billing period
holding `now` (the customer's subscription schedule, contract §3), with the rules the Timeline
simulates:

- limit_metered: `available` = `limit`; `used` = the period's usage under the hard limit
  (events that broke it are not counted); `has_access` = remaining > 0; `fits`: count, sum and
  unique_count fit when used + quantity ≤ limit, max and latest when quantity ≤ limit.
  `carryover` and `overage` are null.
- limit_recurring: `carryover` = what the earlier periods carried into this one (capped by
  `max_carryover`), `available` = limit + carryover, `overage` = max(used − available, 0);
  a soft limit: `has_access` and `fits` are always true.
- `remaining` = max(available − used, 0).

A customer without a subscription whose plan has a quota on that metric (or whose
subscription starts later) raises `NoQuota`, which the API answers with 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy.engine import Engine

from metering.billing import iso
from metering.models import as_utc
from metering.quotas import rules
from metering.quotas.config import metric_type
from metering.quotas.ledger import QuotaPeriodError, ledger_for
from metering.values import EXACT, decimal_str

ZERO = Decimal(0)

__all__ = ["Entitlement", "NoQuota", "check"]


class NoQuota(LookupError):
    """No subscription of this customer has a quota on this metric (now)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Entitlement:
    customer_id: str
    metric: str
    plan: str
    metric_type: str
    period_start: datetime
    period_end: datetime
    limit: Decimal
    carryover: Decimal | None
    available: Decimal
    used: Decimal
    remaining: Decimal
    overage: Decimal | None
    has_access: bool
    fits: bool
    quantity: Decimal = Decimal(1)

    def to_json(self) -> dict[str, Any]:
        """Contract §8's JSON: decimals as strings, the period as ISO 8601 UTC instants."""
        def text(value: Decimal | None) -> str | None:
            return None if value is None else decimal_str(value)

        return {
            "customer_id": self.customer_id,
            "metric": self.metric,
            "plan": self.plan,
            "metric_type": self.metric_type,
            "period": {"start": iso(self.period_start), "end": iso(self.period_end)},
            "limit": text(self.limit),
            "carryover": text(self.carryover),
            "available": text(self.available),
            "used": text(self.used),
            "remaining": text(self.remaining),
            "overage": text(self.overage),
            "has_access": self.has_access,
            "fits": self.fits,
        }


def check(
    engine: Engine,
    customer_id: str,
    metric_code: str,
    *,
    quantity: Decimal = Decimal(1),
    now: datetime | None = None,
) -> Entitlement:
    """The customer's entitlement on the metric in the period holding `now` (default: now).
    Raises NoQuota (no such quota, or the subscription has not started) and ValueError for a
    quantity that is not a number ≥ 0."""
    quantity = _quantity(quantity)
    moment = datetime.now(timezone.utc) if now is None else as_utc(now)
    ledger = ledger_for(engine)
    try:
        holder, entry = ledger.state(customer_id, metric_code, moment)
    except KeyError:
        raise NoQuota(_why_none(ledger, customer_id, metric_code)) from None
    except QuotaPeriodError as exc:
        raise NoQuota(str(exc)) from None
    kind = metric_type(holder.metric)
    with localcontext(EXACT):
        available = entry.available
        remaining = max(available - entry.used, ZERO)
        if kind == "limit_recurring":
            overage: Decimal | None = max(entry.used - available, ZERO)
            has_access = fits = True
        else:
            overage = None
            has_access = remaining > 0
            fits = rules.fits(entry.agg, entry.limit, entry.used, quantity)
    return Entitlement(
        customer_id=customer_id, metric=metric_code, plan=holder.plan.code, metric_type=kind,
        period_start=entry.start, period_end=entry.end, limit=entry.limit,
        carryover=entry.carryover if kind == "limit_recurring" else None,
        available=available, used=entry.used, remaining=remaining, overage=overage,
        has_access=has_access, fits=fits, quantity=quantity,
    )


def _quantity(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError("quantity must be a decimal number of units")
    value = Decimal(value)
    if not value.is_finite() or value < 0:
        raise ValueError("quantity must be a number of units, 0 or more")
    return value


def _why_none(ledger: Any, customer_id: str, metric_code: str) -> str:
    """A 404's sentence: what is missing for this customer and metric."""
    config = ledger.configs.get()
    cid, code = customer_id[:80], metric_code[:80]
    metric = config.metrics.get(metric_code)
    if metric is None:
        return f"no metric with code '{code}'"
    kind = metric_type(metric)
    if kind not in ("limit_metered", "limit_recurring"):
        return f"'{code}' is a {kind} metric: entitlements exist for limit_metered and limit_recurring metrics"
    sub = config.subscriptions.get(customer_id)
    if sub is None:
        return f"customer '{cid}' has no subscription"
    return f"the plan '{sub[0][:80]}' of customer '{cid}' has no quota on '{code}'"
