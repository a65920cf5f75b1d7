"""OpenMeter meters, features and plans (create payloads, or OpenMeter's own objects) → a
workspace document. The inverse of `openmeter.export`, so codes, units (meter metadata.unit),
filters, groups, charges and quotas survive a round trip.

A metric is made for each feature (code = feature key, with the feature's filters) and for each
meter that no feature uses (code = slug). A rate card with a metered entitlement becomes a quota
(soft limit → limit_recurring with no carryover, hard → limit_metered); other usage rate cards
become charges. What the workbench cannot reproduce is refused with the reason (AVG meters,
pricing ramps, spend commitments, one-time fees, JSONPath filters…); README, "OpenMeter".
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from metering.peers.definitions import DefinitionsError, Item, check_fields, decimal, obj, refuse_if, text
from metering.peers.openmeter import AGGREGATIONS, CADENCES

KINDS = ("meter", "feature", "plan")
_AGG_BACK = {v: k for k, v in AGGREGATIONS.items()}
_CADENCE_BACK = {v: k for k, v in CADENCES.items()}
_READ_ONLY = {"id", "createdAt", "updatedAt", "deletedAt", "archivedAt", "effectiveFrom", "effectiveTo", "version",
              "status", "validationErrors", "annotations"}
_METER_FIELDS = {"slug", "key", "name", "description", "aggregation", "eventType", "eventFrom", "valueProperty",
                 "groupBy", "metadata"}
_FEATURE_FIELDS = {"key", "name", "meterSlug", "meterGroupByFilters", "advancedMeterGroupByFilters", "metadata",
                   "unitCost"}
_PLAN_FIELDS = {"key", "name", "currency", "billingCadence", "phases", "alignment", "proRatingConfig",
                "settlementMode"}
_PLAN_IGNORED = {"description", "metadata"}
_CARD_FIELDS = {"type", "key", "name", "featureKey", "billingCadence", "price", "discounts", "entitlementTemplate",
                "metadata"}
_CARD_IGNORED = {"description", "taxConfig"}
# JSONPath we read back: $.a.b, $['a-b'], $["a"] (nothing with wildcards, filters or indexes).
_JSONPATH_SEG = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_]*)|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]""")


def kind_of(payload: Any, where: str) -> str:
    if isinstance(payload, dict):
        if "phases" in payload:
            return "plan"
        if "eventType" in payload or "aggregation" in payload:
            return "meter"
        if "meterSlug" in payload or ("key" in payload and "name" in payload):
            return "feature"
    raise DefinitionsError(f"{where}: expected an OpenMeter meter (slug, aggregation, eventType), feature "
                           "(key, name, meterSlug) or plan (key, currency, billingCadence, phases)")


def dot_path(item: Item, path: Any, field: str) -> str:
    """JSONPath from `data` → a dot path: $.usage.tokens → usage.tokens."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise item.fail("must be a JSONPath such as $.tokens", field)
    pos, segs = 1, []
    while pos < len(path):
        m = _JSONPATH_SEG.match(path, pos)
        if m is None:
            raise item.fail(f"'{path}' uses JSONPath beyond $.a.b and $['a'] (wildcards, indexes, filters), which "
                            "the workbench's dot paths cannot express", field)
        seg = m.group(1) or re.sub(r"\\(.)", r"\1", m.group(2) if m.group(2) is not None else m.group(3))
        if "." in seg:
            raise item.fail(f"the key '{seg}' holds a dot, which a workbench dot path reads as nesting", field)
        segs.append(seg)
        pos = m.end()
    if not segs:
        raise item.fail("must name a property, e.g. $.tokens", field)
    return ".".join(segs)


def to_workspace(items: list[Item]) -> dict[str, Any]:
    unknown = next((i for i in items if i.kind not in KINDS), None)
    if unknown is not None:
        raise unknown.fail(f"unknown resource kind '{unknown.kind}' (OpenMeter: {', '.join(KINDS)})")
    meters: dict[str, tuple[Item, dict[str, Any]]] = {}
    for item in (i for i in items if i.kind == "meter"):
        m = obj(item, item.payload)
        check_fields(item, m, _METER_FIELDS, _READ_ONLY)
        slug = text(item, m.get("slug") or m.get("key"), "slug")
        if slug in meters:
            raise item.fail(f"meter '{slug}' is defined twice", "slug")
        meters[slug] = (item, m)
    metrics: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for item in (i for i in items if i.kind == "feature"):
        f = obj(item, item.payload)
        check_fields(item, f, _FEATURE_FIELDS, _READ_ONLY)
        key = text(item, f.get("key"), "key")
        slug = f.get("meterSlug")
        if slug is None:
            raise item.fail("a feature without a meter has no usage to price (the workbench prices metrics)",
                            "meterSlug")
        if slug not in meters:
            raise item.fail(f"meter '{slug}' is not in these files", "meterSlug")
        refuse_if(item, f.get("unitCost"), "unitCost", "unit costs have no workbench equivalent")
        used.add(slug)
        metric = _metric(*meters[slug], code=key, name=text(item, f.get("name"), "name"))
        _feature_filters(item, f, meters[slug][1], metric)
        if key in metrics:
            raise item.fail(f"feature '{key}' is defined twice", "key")
        metrics[key] = metric
    for slug, (item, m) in meters.items():
        if slug not in used:
            if slug in metrics:
                raise item.fail(f"meter '{slug}' has the key of a feature of another meter", "slug")
            metrics[slug] = _metric(item, m, code=slug, name=m.get("name") or slug)
    plans, types = [], {}
    for item in (i for i in items if i.kind == "plan"):
        plan = _plan(item, obj(item, item.payload), metrics, types)
        if any(p["code"] == plan["code"] for p in plans):
            raise item.fail(f"plan '{plan['code']}' is defined twice", "key")
        plans.append(plan)
    for code, kind in types.items():
        metrics[code]["metric_type"] = kind
    for metric in metrics.values():
        metric.pop("_groups")
    return {"timezone": "UTC", "metrics": list(metrics.values()), "plans": plans, "subscriptions": []}


def _metric(item: Item, m: dict[str, Any], *, code: str, name: str) -> dict[str, Any]:
    agg = _AGG_BACK.get(m.get("aggregation"))
    if agg is None:
        raise item.fail(f"'{m.get('aggregation')}' has no workbench equivalent (SUM, COUNT, UNIQUE_COUNT, MIN, MAX, "
                        "LATEST)", "aggregation")
    refuse_if(item, m.get("eventFrom"), "eventFrom", "skipping events before a date has no workbench equivalent")
    meta = m.get("metadata") or {}
    out: dict[str, Any] = {"code": code, "name": name, "unit": (meta.get("unit") if isinstance(meta, dict) else None)
                           or "units", "metric_type": "charge_metered",
                           "event_name": text(item, m.get("eventType"), "eventType"), "aggregation": agg}
    if m.get("description"):
        out["description"] = m["description"]
    if m.get("valueProperty") is not None and agg != "count":  # COUNT ignores valueProperty (openapi.yaml)
        out["distinct_by" if agg == "unique_count" else "value_property"] = dot_path(item, m["valueProperty"],
                                                                                      "valueProperty")
    groups = obj(item, m.get("groupBy") or {}, "groupBy")
    out["_groups"] = {name: dot_path(item, path, f"groupBy.{name}") for name, path in groups.items()}
    out["group_by"] = list(out["_groups"].values())
    out["filters"] = {}
    return out


def _feature_filters(item: Item, f: dict[str, Any], meter: dict[str, Any], metric: dict[str, Any]) -> None:
    """The feature's group-by filters → the metric's filters; those dimensions then stop being
    report groups (they only exist on the meter so the feature can filter on them)."""
    groups: dict[str, str] = metric["_groups"]
    filters: dict[str, list[str]] = {}
    simple = obj(item, f.get("meterGroupByFilters") or {}, "meterGroupByFilters")
    advanced = obj(item, f.get("advancedMeterGroupByFilters") or {}, "advancedMeterGroupByFilters")
    for name, value in simple.items():
        filters[name] = [value]
    for name, cond in advanced.items():
        where = f"advancedMeterGroupByFilters.{name}"
        cond = obj(item, cond, where)
        if set(cond) == {"$in"} and isinstance(cond["$in"], list) and cond["$in"]:
            filters[name] = list(cond["$in"])
        elif set(cond) == {"$eq"} and isinstance(cond["$eq"], str):
            filters[name] = [cond["$eq"]]
        else:
            raise item.fail("only $in and $eq filters have a workbench equivalent (an event counts when its value is "
                            "one of a list)", where)
    for name, values in filters.items():
        if name not in groups:
            raise item.fail(f"'{name}' is not a groupBy of meter '{meter.get('slug')}'", "advancedMeterGroupByFilters")
        if not all(isinstance(v, str) for v in values):
            raise item.fail("filter values must be text", f"advancedMeterGroupByFilters.{name}")
    metric["filters"] = {groups[name]: values for name, values in filters.items()}
    metric["group_by"] = [path for name, path in groups.items() if name not in filters]


def _price(item: Item, price: dict[str, Any], field: str) -> dict[str, Any]:
    for key in ("minimumAmount", "maximumAmount"):
        refuse_if(item, price.get(key), f"{field}.{key}", "spend commitments have no workbench equivalent")
    kind = price.get("type")
    if kind == "unit":
        check_fields(item, price, {"type", "amount", "minimumAmount", "maximumAmount"}, set(), field)
        return {"model": "standard", "unit_price": decimal(item, price.get("amount"), f"{field}.amount")}
    if kind == "tiered":
        check_fields(item, price, {"type", "mode", "tiers", "minimumAmount", "maximumAmount"}, set(), field)
        mode = price.get("mode")
        if mode not in ("graduated", "volume"):
            raise item.fail("must be graduated or volume", f"{field}.mode")
        tiers = []
        for i, t in enumerate(price.get("tiers") or []):
            where = f"{field}.tiers[{i}]"
            t = obj(item, t, where)
            check_fields(item, t, {"upToAmount", "unitPrice", "flatPrice"}, set(), where)
            unit, flat = t.get("unitPrice"), t.get("flatPrice")
            tiers.append({"up_to": None if t.get("upToAmount") is None else decimal(item, t["upToAmount"],
                                                                                    f"{where}.upToAmount"),
                          "unit_price": decimal(item, obj(item, unit, f"{where}.unitPrice").get("amount"),
                                                f"{where}.unitPrice.amount") if unit else Decimal(0),
                          "flat_fee": decimal(item, obj(item, flat, f"{where}.flatPrice").get("amount"),
                                              f"{where}.flatPrice.amount") if flat else Decimal(0)})
        return {"model": mode, "tiers": tiers}
    if kind == "package":
        check_fields(item, price, {"type", "amount", "quantityPerPackage", "minimumAmount", "maximumAmount"}, set(),
                     field)
        return {"model": "package", "package_price": decimal(item, price.get("amount"), f"{field}.amount"),
                "package_size": decimal(item, price.get("quantityPerPackage"), f"{field}.quantityPerPackage")}
    if kind == "dynamic":
        check_fields(item, price, {"type", "multiplier", "minimumAmount", "maximumAmount"}, set(), field)
        multiplier = decimal(item, price.get("multiplier", "1"), f"{field}.multiplier")
        return {"model": "percentage", "rate": multiplier.scaleb(2)}
    raise item.fail(f"a '{kind}' price on usage has no workbench equivalent (unit, tiered, package, dynamic)",
                    f"{field}.type")


def _free_units(item: Item, card: dict[str, Any], field: str) -> Decimal:
    discounts = obj(item, card.get("discounts") or {}, f"{field}.discounts")
    refuse_if(item, discounts.get("percentage"), f"{field}.discounts.percentage", "percentage discounts have no "
              "workbench equivalent")
    usage = discounts.get("usage")
    if not usage:
        return Decimal(0)
    return decimal(item, obj(item, usage, f"{field}.discounts.usage").get("quantity"),
                   f"{field}.discounts.usage.quantity")


def _plan(item: Item, p: dict[str, Any], metrics: dict[str, dict[str, Any]], types: dict[str, str]) -> dict[str, Any]:
    check_fields(item, p, _PLAN_FIELDS, _PLAN_IGNORED | _READ_ONLY)
    refuse_if(item, p.get("alignment"), "alignment", "billing alignment settings have no workbench equivalent")
    interval = _CADENCE_BACK.get(p.get("billingCadence"))
    if interval is None:
        raise item.fail(f"'{p.get('billingCadence')}' has no workbench equivalent (P1D, P1W, P1M, P1Y)",
                        "billingCadence")
    phases = p.get("phases")
    if not isinstance(phases, list) or len(phases) != 1:
        raise item.fail("only a plan with one phase has a workbench equivalent (no pricing ramps)", "phases")
    phase = obj(item, phases[0], "phases[0]")
    if phase.get("duration") is not None:
        raise item.fail("a phase that ends has no workbench equivalent (the plan's one phase must last: null)",
                        "phases[0].duration")
    out: dict[str, Any] = {"code": text(item, p.get("key"), "key"), "name": text(item, p.get("name"), "name"),
                           "currency": p.get("currency"), "interval": interval, "base_fee": Decimal(0),
                           "fixed_charges": [], "charges": [], "quotas": []}
    for i, card in enumerate(phase.get("rateCards") or []):
        field = f"phases[0].rateCards[{i}]"
        card = obj(item, card, field)
        check_fields(item, card, _CARD_FIELDS, _CARD_IGNORED | _READ_ONLY, field)
        if card.get("billingCadence") != p.get("billingCadence"):
            raise item.fail("a rate card billed on another cadence than the plan (or once) has no workbench "
                            "equivalent", f"{field}.billingCadence")
        if card.get("type") == "flat_fee":
            _flat_fee(item, card, field, out)
        elif card.get("type") == "usage_based":
            _usage(item, card, field, out, metrics, types)
        else:
            raise item.fail("must be flat_fee or usage_based", f"{field}.type")
    return out


def _flat_fee(item: Item, card: dict[str, Any], field: str, out: dict[str, Any]) -> None:
    refuse_if(item, card.get("featureKey"), f"{field}.featureKey", "an entitlement on a flat fee has no workbench "
              "equivalent")
    refuse_if(item, card.get("discounts"), f"{field}.discounts", "discounts on a flat fee have no workbench equivalent")
    price = obj(item, card.get("price"), f"{field}.price")
    if price.get("type") != "flat":
        raise item.fail("a flat fee rate card has a flat price", f"{field}.price.type")
    amount = decimal(item, price.get("amount"), f"{field}.price.amount")
    meta = card.get("metadata") or {}
    if card.get("key") == "base_fee" and not meta:
        out["base_fee"] += amount
        return
    quantity, unit_price = Decimal(1), amount
    if isinstance(meta, dict) and "quantity" in meta and "unit_price" in meta:
        q = decimal(item, meta["quantity"], f"{field}.metadata.quantity")
        u = decimal(item, meta["unit_price"], f"{field}.metadata.unit_price")
        if q * u == amount:  # the export's split of the amount; otherwise the amount rules
            quantity, unit_price = q, u
    out["fixed_charges"].append({"name": text(item, card.get("name"), f"{field}.name"), "quantity": quantity,
                                 "unit_price": unit_price})


def _usage(item: Item, card: dict[str, Any], field: str, out: dict[str, Any], metrics: dict[str, dict[str, Any]],
           types: dict[str, str]) -> None:
    code = card.get("featureKey")
    if code not in metrics:
        raise item.fail(f"feature '{code}' is not in these files", f"{field}.featureKey")
    ent = card.get("entitlementTemplate")
    price = card.get("price")
    free = _free_units(item, card, field)
    if ent is None:
        if price is None:
            raise item.fail("a usage rate card without price or entitlement prices nothing", f"{field}.price")
        charge = {"metric": code, **_price(item, obj(item, price, f"{field}.price"), f"{field}.price")}
        if free:
            charge["free_units"] = free
        out["charges"].append(charge)
        kind = "charge_metered"
    else:
        ent = obj(item, ent, f"{field}.entitlementTemplate")
        if ent.get("type") != "metered":
            raise item.fail("only metered entitlements have a workbench equivalent (a quota)",
                            f"{field}.entitlementTemplate.type")
        refuse_if(item, ent.get("preserveOverageAtReset"), f"{field}.entitlementTemplate.preserveOverageAtReset",
                  "carrying overage into the next period has no workbench equivalent")
        period = ent.get("usagePeriod")
        if period not in (None, card.get("billingCadence")):
            raise item.fail("a usage period other than the plan's billing cadence has no workbench equivalent",
                            f"{field}.entitlementTemplate.usagePeriod")
        soft = ent.get("isSoftLimit", False) is True
        quota: dict[str, Any] = {"metric": code, "limit": decimal(item, ent.get("issueAfterReset", 0),
                                                                  f"{field}.entitlementTemplate.issueAfterReset")}
        if soft:
            quota["max_carryover"] = Decimal(0)  # the grant resets to the same amount: nothing carries over
            if price is not None:
                pricing = _price(item, obj(item, price, f"{field}.price"), f"{field}.price")
                if pricing["model"] != "standard" or free != quota["limit"]:
                    raise item.fail("a soft limit's price must be a unit price with a usage discount equal to the "
                                    "limit (overage × price)", f"{field}.price")
                quota["overage_unit_price"] = pricing["unit_price"]
        elif price is not None:
            raise item.fail("a hard limit with a price has no workbench equivalent (limit_metered quotas bill "
                            "nothing)", f"{field}.price")
        out["quotas"].append(quota)
        kind = "limit_recurring" if soft else "limit_metered"
    if types.setdefault(code, kind) != kind:
        raise item.fail(f"feature '{code}' is a {types[code]} in another plan; a workbench metric has one type",
                        f"{field}.featureKey")

