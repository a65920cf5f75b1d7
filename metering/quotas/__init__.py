"""Live quotas (contract §8): entitlement checks, hard limits on the events API, usage alerts.

* `entitlement.check(engine, customer_id, metric_code, quantity=…, now=…)` answers "may this
  customer use N more units now?" with the current period's limit, carryover, available, used,
  remaining, overage, has_access and fits (the rules the Timeline simulates, contract §3).
* `ledger.Ledger` keeps the used amount per (customer, metric, period) in memory, computed
  through `metering.engine.stored_events` and advanced by the API's own accepted events;
  `ledger.ledger_for(engine).admission()` is the serialized check + insert of `POST /events`.
* `alerts`: thresholds on a plan's quota, the `quota_alert` table, the signed webhook.

The submodules are imported where they are used (this package is imported by `metering.store`
for its tables, so it imports nothing heavy itself).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Entitlement", "NoQuota", "check", "list_alerts"]


def __getattr__(name: str) -> Any:
    if name in ("Entitlement", "NoQuota", "check"):
        from metering.quotas import entitlement

        return getattr(entitlement, name)
    if name == "list_alerts":
        from metering.quotas.alerts import list_alerts

        return list_alerts
    raise AttributeError(name)
