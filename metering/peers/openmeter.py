"""OpenMeter: meters, features and plans (product catalog) as the bodies of OpenMeter's create calls.

Checked against openmeterio/openmeter `api/openapi.yaml` (commit 7e57a39, 2026-08-18):
`MeterCreate` (required slug `^[a-z0-9]+(?:_[a-z0-9]+)*$`, aggregation SUM|COUNT|UNIQUE_COUNT|AVG|
MIN|MAX|LATEST, eventType; `valueProperty` a JSONPath into `data`; `groupBy` name → JSONPath;
`metadata` string → string), `FeatureCreateInputs` (key, name, meterSlug,
`advancedMeterGroupByFilters` name → {$eq, $in, …}), `PlanCreate` (key, currency, ISO 8601
`billingCadence`, `phases[{key, name, duration, rateCards}]`), `RateCardFlatFee` /
`RateCardUsageBased` (featureKey, billingCadence, price, `discounts.usage.quantity` "the first N
items are free", `entitlementTemplate` `RateCardMeteredEntitlement` {isSoftLimit,
issueAfterReset (a number), usagePeriod}), prices `UnitPriceWithCommitments`,
`TieredPriceWithCommitments` (mode volume|graduated, tiers [{upToAmount, unitPrice, flatPrice}]),
`PackagePriceWithCommitments` (amount, quantityPerPackage), `DynamicPriceWithCommitments`
(multiplier × the meter's value); amounts are `Numeric` strings `^-?[0-9]+(\\.[0-9]+)?$`. And
`openmeter/productcatalog/feature/connector.go` (a feature takes only SUM, COUNT, UNIQUE_COUNT and
LATEST meters, so MAX and MIN meters cannot be priced or limited in a plan).

Mapping rules (README, "OpenMeter"): one meter and one feature per metric (slug = key = code);
filters become the feature's `advancedMeterGroupByFilters` (`$in`), so the filter keys join the
meter's `groupBy`; the metric's unit is kept in the meter's `metadata.unit`; a fixed charge's
quantity and unit price in its rate card's metadata (OpenMeter prices a flat fee as one amount).
"""

from __future__ import annotations

import re
from typing import Any

from metering.models import MetricCreate
from metering.plans import Charge, Plan, Quota
from metering.peers.common import (
    KEY_RE,
    Export,
    charge_item,
    common_scope_notes,
    json_number,
    metric_item,
    num,
    plan_item,
    quota_item,
    scope,
    slug_key,
)
from metering.workspace import Workspace

AGGREGATIONS = {"count": "COUNT", "sum": "SUM", "max": "MAX", "min": "MIN", "unique_count": "UNIQUE_COUNT",
                "latest": "LATEST"}
FEATURE_AGGREGATIONS = ("SUM", "COUNT", "UNIQUE_COUNT", "LATEST")  # feature/connector.go validMeterAggregations
CADENCES = {"day": "P1D", "week": "P1W", "month": "P1M", "year": "P1Y"}
_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def jsonpath(path: str) -> str:
    """A dot path → JSONPath into `data`: tokens → $.tokens, usage.input → $.usage.input,
    a segment that is no identifier → $['a-b']."""
    out = "$"
    for seg in path.split("."):
        out += f".{seg}" if _SEGMENT.match(seg) else "['" + seg.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def group_names(paths: list[str]) -> dict[str, str]:
    """groupBy names (letters, digits, _) for dot paths, made unique: usage.model → usage_model."""
    names: dict[str, str] = {}
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", path).strip("_") or "g"
        name, n = base, 2
        while name in names.values():
            name, n = f"{base}_{n}", n + 1
        names[path] = name
    return names


def export(workspace: Workspace, *, plan: str | None = None) -> Export:
    metrics, plans = scope(workspace, plan)
    out = Export("openmeter")
    meters: dict[str, MetricCreate] = {}
    features: set[str] = set()
    for m in metrics:
        if _meter(out, m):
            meters[m.code] = m
            if AGGREGATIONS[m.aggregation.value] in FEATURE_AGGREGATIONS:
                _feature(out, m)
                features.add(m.code)
            elif m.filters:
                out.lost(metric_item(m.code, "filters"), "OpenMeter filters a meter's events for pricing in a feature, "
                         f"and features take only SUM, COUNT, UNIQUE_COUNT and LATEST meters, not "
                         f"{AGGREGATIONS[m.aggregation.value]}; the meter counts every {m.event_name} event")
    for p in plans:
        _plan(out, p, meters, features)
    common_scope_notes(out, workspace, plans, "OpenMeter")
    return out


def _meter(out: Export, m: MetricCreate) -> bool:
    if not KEY_RE.match(m.code):
        out.lost(metric_item(m.code, "code"), "an OpenMeter slug is lower-case letters and digits in words joined by "
                 "single underscores (no __, no _ at the end); the metric is not exported")
        return False
    names = group_names(list(dict.fromkeys([*m.group_by, *m.filters])))
    payload: dict[str, Any] = {"slug": m.code, "name": m.name, "aggregation": AGGREGATIONS[m.aggregation.value],
                               "eventType": m.event_name}
    if m.description:
        payload["description"] = m.description
    prop = m.value_property or m.distinct_by
    if prop:
        payload["valueProperty"] = jsonpath(prop)
    if names:
        payload["groupBy"] = {name: jsonpath(path) for path, name in names.items()}
    payload["metadata"] = {"unit": m.unit}
    out.add("meter", payload)
    out.ok(metric_item(m.code), f"meter {payload['aggregation']} on {m.event_name}"
           + (f", valueProperty {payload['valueProperty']}" if prop else ""))
    if m.group_by:
        out.ok(metric_item(m.code, "group_by"), "meter groupBy " + ", ".join(names[g] for g in m.group_by))
    out.ok(metric_item(m.code, "unit"), "meter metadata.unit")
    if m.metric_type.value == "charge_recurring":
        out.lost(metric_item(m.code, "metric_type"), "OpenMeter prices a meter's usage within each billing period; a "
                 "running total that never resets cannot be priced (the meter is exported, its charges are not)")
    return True


def _feature(out: Export, m: MetricCreate) -> None:
    payload: dict[str, Any] = {"key": m.code, "name": m.name, "meterSlug": m.code}
    if m.filters:
        names = group_names(list(dict.fromkeys([*m.group_by, *m.filters])))
        payload["advancedMeterGroupByFilters"] = {names[k]: {"$in": list(v)} for k, v in m.filters.items()}
        out.ok(metric_item(m.code, "filters"), "feature advancedMeterGroupByFilters ($in)")
    out.add("feature", payload)


def _price(c: Charge) -> tuple[dict[str, Any] | None, str]:
    """The rate card price of a charge, or (None, why not)."""
    if c.model == "standard":
        return {"type": "unit", "amount": num(c.unit_price)}, "unit price"
    if c.model in ("graduated", "volume"):
        tiers = []
        for t in c.tiers or []:
            tier: dict[str, Any] = {"unitPrice": {"type": "unit", "amount": num(t.unit_price)}}
            tier["flatPrice"] = {"type": "flat", "amount": num(t.flat_fee)} if t.flat_fee else None
            if t.up_to is not None:
                tier = {"upToAmount": num(t.up_to), **tier}
            tiers.append(tier)
        return {"type": "tiered", "mode": c.model, "tiers": tiers}, f"tiered price, mode {c.model}"
    if c.model == "package":
        return ({"type": "package", "amount": num(c.package_price), "quantityPerPackage": num(c.package_size)},
                "package price")
    if c.fixed_fee:
        return None, "OpenMeter has no per-event fee (a dynamic price only multiplies the meter's value)"
    if c.free_units:
        return None, "OpenMeter's dynamic price multiplies the whole meter value; free units on it are not documented"
    return {"type": "dynamic", "multiplier": num(c.rate.scaleb(-2))}, "dynamic price, multiplier = rate / 100"


def _charge_card(out: Export, p: Plan, c: Charge, meters: dict[str, MetricCreate], features: set[str]
                 ) -> dict[str, Any] | None:
    item = charge_item(p.code, c.metric)
    m = meters.get(c.metric)
    if m is None:
        out.lost(item, f"its metric '{c.metric}' is not exported (see {metric_item(c.metric)})")
        return None
    if c.metric not in features:
        out.lost(item, f"OpenMeter prices usage through a feature, and features take only SUM, COUNT, UNIQUE_COUNT "
                 f"and LATEST meters, not {AGGREGATIONS[m.aggregation.value]}; the charge is not exported")
        return None
    if m.metric_type.value == "charge_recurring":
        out.lost(item, "the metric is charge_recurring (a running total); OpenMeter prices each period's usage")
        return None
    price, how = _price(c)
    if price is None:
        out.lost(item, f"{c.model} charge: {how}; the charge is not exported")
        return None
    card: dict[str, Any] = {"type": "usage_based", "key": c.metric, "name": m.name, "featureKey": c.metric,
                            "billingCadence": CADENCES[p.interval], "price": price}
    if c.free_units:
        card["discounts"] = {"usage": {"quantity": num(c.free_units)}}
    out.ok(item, how + (" + usage discount (free units)" if c.free_units else ""))
    return card


def _quota_card(out: Export, p: Plan, q: Quota, meters: dict[str, MetricCreate], features: set[str]
                ) -> dict[str, Any] | None:
    item = quota_item(p.code, q.metric)
    m = meters.get(q.metric)
    if m is None:
        out.lost(item, f"its metric '{q.metric}' is not exported (see {metric_item(q.metric)})")
        return None
    if q.metric not in features:
        out.lost(item, f"an OpenMeter entitlement needs a feature, and features take only SUM, COUNT, UNIQUE_COUNT "
                 f"and LATEST meters, not {AGGREGATIONS[m.aggregation.value]}; the quota is not exported")
        return None
    soft = m.metric_type.value == "limit_recurring"
    if soft and (q.max_carryover is None or q.max_carryover > 0):
        out.lost(item, "unused allowance carries over here; OpenMeter's issueAfterReset grant returns to the same "
                 "amount at every reset (set max_carryover to 0 to export this quota)")
        return None
    limit = json_number(q.limit)
    if limit is None:
        out.lost(item, f"limit {num(q.limit)} cannot be written exactly as issueAfterReset (a JSON number)")
        return None
    card: dict[str, Any] = {"type": "usage_based", "key": q.metric, "name": m.name, "featureKey": q.metric,
                            "billingCadence": CADENCES[p.interval], "price": None,
                            "entitlementTemplate": {"type": "metered", "isSoftLimit": soft, "issueAfterReset": limit,
                                                    "usagePeriod": CADENCES[p.interval]}}
    if soft and q.overage_unit_price is not None:
        card["price"] = {"type": "unit", "amount": num(q.overage_unit_price)}
        if q.limit:
            card["discounts"] = {"usage": {"quantity": num(q.limit)}}
    out.ok(item, f"metered entitlement ({'soft' if soft else 'hard'} limit {num(q.limit)})"
           + (", overage as a unit price after a usage discount of the limit" if card["price"] else "")
           + ("" if soft else "; OpenMeter reports hasAccess false past the limit, it does not reject events "
              "at ingestion"))
    return card


def _plan(out: Export, p: Plan, meters: dict[str, MetricCreate], features: set[str]) -> None:
    if not KEY_RE.match(p.code):
        out.lost(plan_item(p.code, "code"), "an OpenMeter plan key is lower-case words joined by single underscores; "
                 "the plan is not exported")
        return
    cadence = CADENCES[p.interval]
    cards: list[dict[str, Any]] = []
    keys = {c.metric for c in p.charges} | {q.metric for q in p.quotas}
    if p.base_fee:
        key = _free_key("base_fee", keys)
        cards.append({"type": "flat_fee", "key": key, "name": "Base fee", "billingCadence": cadence,
                      "price": {"type": "flat", "amount": num(p.base_fee), "paymentTerm": "in_arrears"}})
        out.ok(plan_item(p.code, "base_fee"), f"flat_fee rate card '{key}'")
    for i, f in enumerate(p.fixed_charges):
        key = _free_key("fixed_" + slug_key(f.name), keys)
        cards.append({"type": "flat_fee", "key": key, "name": f.name, "billingCadence": cadence,
                      "price": {"type": "flat", "amount": num(f.quantity * f.unit_price), "paymentTerm": "in_arrears"},
                      "metadata": {"quantity": num(f.quantity), "unit_price": num(f.unit_price)}})
        out.ok(plan_item(p.code, f"fixed_charges[{i}]"), f"flat_fee rate card '{key}' of quantity × unit price")
    for c in p.charges:
        card = _charge_card(out, p, c, meters, features)
        if card is not None:
            cards.append(card)
    for q in p.quotas:
        card = _quota_card(out, p, q, meters, features)
        if card is not None:
            cards.append(card)
    if p.included_credit:
        out.lost(plan_item(p.code, "included_credit"), "OpenMeter plans have no money credit that refreshes every "
                 "period; not exported")
    out.add("plan", {"key": p.code, "name": p.name, "currency": p.currency, "billingCadence": cadence,
                     "phases": [{"key": "default", "name": p.name, "duration": None, "rateCards": cards}]})
    out.ok(plan_item(p.code), f"plan billed {cadence}, one phase")


def _free_key(base: str, taken: set[str]) -> str:
    key, n = base[:64], 2
    while key in taken:
        key, n = f"{base[:60]}_{n}", n + 1
    taken.add(key)
    return key
