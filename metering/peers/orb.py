"""Orb: items, billable metrics (SQL) and plans with prices, as the bodies of Orb's create calls.

Checked against orbcorp/orb-python (commit 604050c, 2026-08-19), the SDK generated from Orb's
OpenAPI spec: `src/orb/types/metric_create_params.py` (name, item_id, sql, description, metadata),
`plan_create_params.py` (currency, name, `prices: [{"price": {...}}]`, external_plan_id,
metadata), `shared_params/new_plan_unit_price.py` (cadence annual|semi_annual|monthly|quarterly|
one_time|custom, item_id, model_type, name, billable_metric_id, `fixed_price_quantity` for fixed
fees, `billing_cycle_configuration{duration, duration_unit: day|month}` for custom cadence,
`invoice_grouping_key`), `shared_params/unit_config.py` ({unit_amount: str}),
`tiered_config.py` + `tier.py` ({first_unit exclusive, last_unit inclusive, unit_amount}: no flat
amount), `bulk_config.py` + `bulk_tier.py` ({maximum_units, unit_amount}: no flat amount),
`package_config.py` ({package_amount: str, package_size: int}). Orb's SQL dialect is not part of
that spec: the metric SQL follows the documented shape `SELECT SUM(prop) FROM events WHERE
event_name = '…'` with properties as columns.

Mapping rules (README, "Orb"): month → monthly, year → annual, day and week → custom cadence of 1
or 7 days; graduated → tiered, volume → bulk; free units on standard and graduated charges become
a first tier at 0; one group_by property becomes the price's `invoice_grouping_key`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from metering.models import MetricCreate
from metering.plans import Charge, Plan
from metering.peers.common import (
    IDENT_RE,
    Export,
    charge_item,
    common_scope_notes,
    json_number,
    metric_item,
    num,
    plan_item,
    quota_item,
    ref,
    scope,
    slug_key,
    tiers_with_free_units,
    whole,
)
from metering.workspace import Workspace

SQL_AGGREGATES = {"count": "COUNT(*)", "sum": "SUM({p})", "max": "MAX({p})", "min": "MIN({p})",
                  "unique_count": "COUNT(DISTINCT {p})"}
CADENCES: dict[str, tuple[str, dict[str, Any] | None]] = {
    "month": ("monthly", None), "year": ("annual", None),
    "day": ("custom", {"duration": 1, "duration_unit": "day"}), "week": ("custom", {"duration": 7, "duration_unit": "day"}),
}


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def metric_sql(m: MetricCreate) -> tuple[str | None, str]:
    """The metric's SQL over Orb's `events` table, or (None, why not)."""
    agg = m.aggregation.value
    if agg not in SQL_AGGREGATES:
        return None, "Orb's documented metric SQL has no 'latest value' aggregate"
    prop = m.value_property or m.distinct_by
    names = [p for p in [prop, *m.filters] if p]
    bad = next((p for p in names if not IDENT_RE.match(p)), None)
    if bad is not None:
        return None, f"'{bad}' is not a plain column name; Orb's SQL reads properties as columns"
    where = [f"event_name = {_quote(m.event_name)}"]
    where += [f"{key} IN ({', '.join(_quote(v) for v in values)})" for key, values in m.filters.items()]
    return f"SELECT {SQL_AGGREGATES[agg].format(p=prop)} FROM events WHERE {' AND '.join(where)}", ""


def export(workspace: Workspace, *, plan: str | None = None) -> Export:
    metrics, plans = scope(workspace, plan)
    out = Export("orb")
    exported: dict[str, MetricCreate] = {}
    for m in metrics:
        sql, why = metric_sql(m)
        if sql is None:
            out.lost(metric_item(m.code), f"{why}; the metric is not exported")
            continue
        exported[m.code] = m
        out.add("item", {"name": m.name, "metadata": {"code": m.code}}, code=m.code)
        payload: dict[str, Any] = {"name": m.name, "item_id": ref("item", m.code), "sql": sql,
                                   "description": m.description, "metadata": {"code": m.code, "unit": m.unit}}
        out.add("metric", payload, code=m.code)
        out.ok(metric_item(m.code), f"metric SQL: {sql}")
        if len(m.group_by) > 1:
            out.lost(metric_item(m.code, "group_by"), "an Orb price groups its invoice line by one property "
                     "(invoice_grouping_key); the breakdown by several is lost, amounts are unaffected")
        if m.metric_type.value.startswith("limit_"):
            out.lost(metric_item(m.code, "metric_type"), "Orb has no usage quotas; the metric is exported for its usage")
    for p in plans:
        _plan(out, p, exported)
    common_scope_notes(out, workspace, plans, "Orb")
    return out


def _tiered(tiers: list[tuple[Decimal | None, Decimal, Decimal]]) -> tuple[dict[str, Any] | None, str]:
    if any(flat for _, _, flat in tiers):
        return None, "Orb's tiered price has no flat amount per tier"
    out, low = [], Decimal(0)
    for up, price, _ in tiers:
        first, last = json_number(low), None if up is None else json_number(up)
        if first is None or (up is not None and last is None):
            return None, "a tier bound cannot be written exactly as a JSON number"
        out.append({"first_unit": first, "last_unit": last, "unit_amount": num(price)})
        low = up if up is not None else low
    return {"model_type": "tiered", "tiered_config": {"tiers": out}}, "tiered price"


def _pricing(c: Charge) -> tuple[dict[str, Any] | None, str]:
    free = c.free_units
    if c.model == "standard" and not free:
        return {"model_type": "unit", "unit_config": {"unit_amount": num(c.unit_price)}}, "unit price"
    if c.model in ("standard", "graduated"):
        base = ([(None, c.unit_price, Decimal(0))] if c.model == "standard"
                else [(t.up_to, t.unit_price, t.flat_fee) for t in c.tiers or []])
        pricing, why = _tiered(tiers_with_free_units(base, free))
        return pricing, why + (" (free units as a first tier at 0)" if pricing and free else "")
    if c.model == "volume":
        if free:
            return None, "Orb's bulk price prices all units by the total; free units taken off first cannot be expressed"
        if any(t.flat_fee for t in c.tiers or []):
            return None, "Orb's bulk tiers have no flat amount"
        tiers = []
        for t in c.tiers or []:
            top = None if t.up_to is None else json_number(t.up_to)
            if t.up_to is not None and top is None:
                return None, "a tier bound cannot be written exactly as a JSON number"
            tiers.append({"maximum_units": top, "unit_amount": num(t.unit_price)})
        return {"model_type": "bulk", "bulk_config": {"tiers": tiers}}, "bulk price"
    if c.model == "package":
        size = whole(c.package_size)
        if free:
            return None, "Orb's package price divides the whole usage; free units taken off first cannot be expressed"
        if size is None:
            return None, "Orb's package_size is a whole number"
        return ({"model_type": "package", "package_config": {"package_amount": num(c.package_price),
                                                              "package_size": size}}, "package price")
    return None, "Orb has no percentage-of-usage price"


def _plan(out: Export, p: Plan, metrics: dict[str, MetricCreate]) -> None:
    cadence, cycle = CADENCES[p.interval]
    common: dict[str, Any] = {"cadence": cadence}
    if cycle:
        common["billing_cycle_configuration"] = cycle
    prices: list[dict[str, Any]] = []
    fixed = [("base_fee", "Base fee", Decimal(1), p.base_fee)] if p.base_fee else []
    fixed += [(f"fixed_charges[{i}]", f.name, f.quantity, f.unit_price) for i, f in enumerate(p.fixed_charges)]
    for field, name, quantity, amount in fixed:
        item = plan_item(p.code, field)
        qty = json_number(quantity)
        if qty is None:
            out.lost(item, f"quantity {num(quantity)} cannot be written exactly as fixed_price_quantity (a JSON number)")
            continue
        code = f"{p.code}.{slug_key(name)}"
        out.add("item", {"name": f"{p.name} – {name}", "metadata": {"code": code}}, code=code)
        prices.append({"price": {**common, "item_id": ref("item", code), "name": name, "model_type": "unit",
                                 "unit_config": {"unit_amount": num(amount)}, "fixed_price_quantity": qty}})
        out.ok(item, f"fixed unit price, fixed_price_quantity {num(quantity)}")
    for c in p.charges:
        item = charge_item(p.code, c.metric)
        m = metrics.get(c.metric)
        if m is None:
            out.lost(item, f"its metric '{c.metric}' is not exported (see {metric_item(c.metric)})")
            continue
        if m.metric_type.value == "charge_recurring":
            out.lost(item, "the metric is charge_recurring (a running total); an Orb metric is computed over each "
                     "billing period's events")
            continue
        pricing, how = _pricing(c)
        if pricing is None:
            out.lost(item, f"{c.model} charge: {how}; not exported")
            continue
        price: dict[str, Any] = {**common, "item_id": ref("item", m.code), "name": m.name,
                                 "billable_metric_id": ref("metric", m.code), **pricing}
        if len(m.group_by) == 1:
            price["invoice_grouping_key"] = m.group_by[0]
        prices.append({"price": price})
        out.ok(item, how)
    for q in p.quotas:
        out.lost(quota_item(p.code, q.metric), "Orb has no usage quotas; the quota is not exported")
    if p.included_credit:
        out.lost(plan_item(p.code, "included_credit"), "an Orb plan has no money credit that refreshes every period "
                 "for usage only (credits are granted per customer); not exported")
    out.add("plan", {"name": p.name, "currency": p.currency, "external_plan_id": p.code, "prices": prices,
                     "metadata": {"code": p.code}})
    out.ok(plan_item(p.code), f"plan, cadence {cadence}" + (f" ({cycle['duration']} day)" if cycle else ""))
