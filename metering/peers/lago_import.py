"""Lago billable metrics, add-ons and plans (create payloads, or Lago's own objects) → a
workspace document. The inverse of `lago.export`: codes are kept, so export → import gives the
same metrics and plans (a metric's unit, which Lago has no field for, comes back as `units`).

What Lago can express but the workbench cannot is refused with the reason (expressions,
weighted sums, quarterly plans, minimum commitments, charge filters with their own prices…):
an import never quietly prices differently. Fields that change nothing the workbench computes
(display names, tax codes, invoice timing) are ignored; README, "Lago".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from metering.money import minor_units, normalize_currency
from metering.peers.common import num, ref_code
from metering.peers.definitions import Item, check_fields, decimal, obj, refuse_if, text
from metering.peers.lago import AGGREGATIONS, INTERVALS

KINDS = ("billable_metric", "plan", "add_on")
_AGG_BACK = {v: k for k, v in AGGREGATIONS.items()}
_INTERVAL_BACK = {v: k for k, v in INTERVALS.items()}
# Fields of Lago's GET objects that say nothing about pricing (so an object read back from Lago imports too).
_READ_ONLY = {"lago_id", "created_at", "updated_at", "organization_id", "active_subscriptions_count",
              "draft_invoices_count", "plans_count", "customers_count", "lago_parent_id", "parent_id",
              "lago_billable_metric_id", "lago_add_on_id", "lago_plan_id", "deleted_at", "pending_deletion",
              "integration_mappings", "taxes", "applicable_usage_thresholds"}
_METRIC_FIELDS = {"name", "code", "description", "recurring", "expression", "rounding_function", "rounding_precision",
                  "field_name", "aggregation_type", "weighted_interval", "filters"}
_PLAN_FIELDS = {"name", "code", "interval", "amount_cents", "amount_currency", "trial_period", "minimum_commitment",
                "charges", "fixed_charges", "usage_thresholds", "bill_charges_monthly", "bill_fixed_charges_monthly",
                "entitlements"}
_PLAN_IGNORED = {"invoice_display_name", "description", "pay_in_advance", "tax_codes", "metadata", "cascade_updates"}
_CHARGE_FIELDS = {"billable_metric_id", "billable_metric_code", "charge_model", "properties", "filters", "prorated",
                  "min_amount_cents", "applied_pricing_unit"}
_CHARGE_IGNORED = {"id", "code", "invoice_display_name", "pay_in_advance", "invoiceable", "regroup_paid_fees",
                   "tax_codes", "accepts_target_wallet", "group_by_wallet", "billable_metric"}
_PROPERTY_FIELDS = {"amount", "graduated_ranges", "volume_ranges", "package_size", "free_units", "rate",
                    "fixed_amount", "free_units_per_events", "free_units_per_total_aggregation",
                    "per_transaction_max_amount", "per_transaction_min_amount", "graduated_percentage_ranges",
                    "grouped_by", "pricing_group_keys", "presentation_group_keys"}
_FIXED_FIELDS = {"add_on_id", "add_on_code", "charge_model", "units", "properties", "prorated"}
_FIXED_IGNORED = {"id", "code", "invoice_display_name", "pay_in_advance", "tax_codes", "apply_units_immediately"}


def kind_of(payload: Any, where: str) -> str:
    """The kind of a create body by its single top-level key: {"billable_metric": {...}} …"""
    if isinstance(payload, dict) and len(payload) == 1 and next(iter(payload)) in KINDS:
        return next(iter(payload))
    from metering.peers.definitions import DefinitionsError
    raise DefinitionsError(f"{where}: expected a Lago create body such as {{\"billable_metric\": {{...}}}} or "
                           "{\"plan\": {...}} (or {\"add_on\": {...}})")


def _body(item: Item) -> dict[str, Any]:
    payload = obj(item, item.payload)
    if set(payload) != {item.kind}:
        raise item.fail(f"a Lago {item.kind} create body is {{\"{item.kind}\": {{...}}}}")
    return obj(item, payload[item.kind], item.kind)


def to_workspace(items: list[Item]) -> dict[str, Any]:
    unknown = next((i for i in items if i.kind not in KINDS), None)
    if unknown is not None:
        raise unknown.fail(f"unknown resource kind '{unknown.kind}' (Lago: {', '.join(KINDS)})")
    metrics: dict[str, dict[str, Any]] = {}
    by_lago_id: dict[str, str] = {}
    for item in (i for i in items if i.kind == "billable_metric"):
        body = _body(item)
        metric = _metric(item, body)
        if metric["code"] in metrics:
            raise item.fail(f"billable metric '{metric['code']}' is defined twice", "billable_metric.code")
        metrics[metric["code"]] = metric
        if isinstance(body.get("lago_id"), str):
            by_lago_id[body["lago_id"]] = metric["code"]
    add_ons = {}
    for item in (i for i in items if i.kind == "add_on"):
        body = _body(item)
        for key in ("lago_id", "code"):
            if isinstance(body.get(key), str):
                add_ons[body[key]] = body
    plans: list[dict[str, Any]] = []
    extra: dict[str, dict[str, Any]] = {}  # filters and group_by the charges say the metric has
    for item in (i for i in items if i.kind == "plan"):
        plan = _plan(item, _body(item), metrics, by_lago_id, add_ons, extra)
        if any(p["code"] == plan["code"] for p in plans):
            raise item.fail(f"plan '{plan['code']}' is defined twice", "plan.code")
        plans.append(plan)
    for code, fields in extra.items():
        metrics[code].update(fields)
    return {"timezone": "UTC", "metrics": list(metrics.values()), "plans": plans, "subscriptions": []}


def _metric(item: Item, m: dict[str, Any]) -> dict[str, Any]:
    f = "billable_metric"
    check_fields(item, m, _METRIC_FIELDS, _READ_ONLY, f)
    code = text(item, m.get("code"), f"{f}.code")
    refuse_if(item, m.get("expression"), f"{f}.expression", "an expression computed per event has no workbench "
              "equivalent")
    refuse_if(item, m.get("rounding_function"), f"{f}.rounding_function", "rounding of the aggregated units has no "
              "workbench equivalent")
    agg_name = m.get("aggregation_type")
    agg = _AGG_BACK.get(agg_name) if isinstance(agg_name, str) else None
    if agg is None:
        raise item.fail(f"'{agg_name}' has no workbench equivalent (count_agg, sum_agg, max_agg, unique_count_agg, "
                        "latest_agg)", f"{f}.aggregation_type")
    recurring = m.get("recurring", False)
    if not isinstance(recurring, bool):
        raise item.fail("must be true or false", f"{f}.recurring")
    out: dict[str, Any] = {"name": text(item, m.get("name"), f"{f}.name"), "code": code, "unit": "units",
                           "metric_type": "charge_recurring" if recurring else "charge_metered",
                           "event_name": code, "aggregation": agg}
    if m.get("description"):
        out["description"] = text(item, m["description"], f"{f}.description")
    field_name = text(item, m.get("field_name"), f"{f}.field_name", required=False)
    if agg == "unique_count":
        out["distinct_by"] = field_name
    elif agg != "count":
        out["value_property"] = field_name
    declared = m.get("filters") or []
    if not isinstance(declared, list) or not all(isinstance(x, dict) and set(x) <= {"key", "values"} for x in declared):
        raise item.fail("must be a list of {key, values}", f"{f}.filters")
    # A Lago metric's filters only declare values a charge may filter on; the filtering itself
    # comes from the charges (below).
    return out


def _ranges(item: Item, ranges: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(ranges, list) or not ranges:
        raise item.fail("must be a non-empty list of ranges", field)
    tiers, expected = [], 0
    for i, r in enumerate(ranges):
        where = f"{field}[{i}]"
        r = obj(item, r, where)
        check_fields(item, r, {"from_value", "to_value", "per_unit_amount", "flat_amount"}, set(), where)
        low = decimal(item, r.get("from_value"), f"{where}.from_value")
        if low != expected:
            raise item.fail(f"must be {expected} (0 for the first range, else the previous to_value + 1)",
                            f"{where}.from_value")
        top = r.get("to_value")
        up = None if top is None else decimal(item, top, f"{where}.to_value")
        tiers.append({"up_to": up, "unit_price": decimal(item, r.get("per_unit_amount"), f"{where}.per_unit_amount"),
                      "flat_fee": decimal(item, r.get("flat_amount", "0"), f"{where}.flat_amount")})
        expected = (up or 0) + 1
    return tiers


def _pricing(item: Item, model: str, props: dict[str, Any], field: str) -> dict[str, Any]:
    """Lago charge properties → the workbench charge's model fields (and free_units)."""
    check_fields(item, props, _PROPERTY_FIELDS, set(), field)
    for key in ("grouped_by", "pricing_group_keys"):
        refuse_if(item, props.get(key), f"{field}.{key}", "pricing each group separately has no workbench "
                  "equivalent (group_by only splits the report)")
    if model == "standard":
        return {"model": "standard", "unit_price": decimal(item, props.get("amount"), f"{field}.amount")}
    if model == "graduated":
        tiers = _ranges(item, props.get("graduated_ranges"), f"{field}.graduated_ranges")
        first = tiers[0]
        # A first range at 0 is how free units are exported (lago.py): read it back as free units.
        if len(tiers) > 1 and first["unit_price"] == 0 and first["flat_fee"] == 0 and first["up_to"]:
            free = first["up_to"]
            rest = [{**t, "up_to": None if t["up_to"] is None else t["up_to"] - free} for t in tiers[1:]]
            if len(rest) == 1 and rest[0]["flat_fee"] == 0:
                return {"model": "standard", "unit_price": rest[0]["unit_price"], "free_units": free}
            return {"model": "graduated", "tiers": rest, "free_units": free}
        return {"model": "graduated", "tiers": tiers}
    if model == "volume":
        return {"model": "volume", "tiers": _ranges(item, props.get("volume_ranges"), f"{field}.volume_ranges")}
    if model == "package":
        return {"model": "package", "package_price": decimal(item, props.get("amount"), f"{field}.amount"),
                "package_size": decimal(item, props.get("package_size"), f"{field}.package_size"),
                "free_units": decimal(item, props.get("free_units") or 0, f"{field}.free_units")}
    if model == "percentage":
        refuse_if(item, props.get("free_units_per_events"), f"{field}.free_units_per_events",
                  "free transactions by count have no workbench equivalent")
        for key in ("per_transaction_max_amount", "per_transaction_min_amount"):
            refuse_if(item, props.get(key), f"{field}.{key}", "per-transaction caps have no workbench equivalent")
        out = {"model": "percentage", "rate": decimal(item, props.get("rate"), f"{field}.rate")}
        if props.get("fixed_amount") not in (None, ""):
            out["fixed_fee"] = decimal(item, props["fixed_amount"], f"{field}.fixed_amount")
        if props.get("free_units_per_total_aggregation") not in (None, ""):
            free = decimal(item, props["free_units_per_total_aggregation"], f"{field}.free_units_per_total_aggregation")
            if free and out.get("fixed_fee"):
                raise item.fail("with a fixed_amount, Lago frees those transactions from the fixed fee too, which the "
                                "workbench cannot express", f"{field}.free_units_per_total_aggregation")
            out["free_units"] = free
        return out
    raise item.fail(f"charge model '{model}' has no workbench equivalent (standard, graduated, volume, package, "
                    "percentage)", field.rsplit(".", 1)[0] + ".charge_model")


def _is_zero(pricing: dict[str, Any]) -> bool:
    """True when a charge's default price bills nothing (how lago.py writes a filtered charge)."""
    amounts = [pricing.get(k) for k in ("unit_price", "package_price", "rate", "fixed_fee")]
    amounts += [t[k] for t in pricing.get("tiers") or [] for k in ("unit_price", "flat_fee")]
    return all(a is None or a == 0 for a in amounts)


def _group_keys(item: Item, props: dict[str, Any], field: str) -> list[str]:
    keys = props.get("presentation_group_keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, dict) and isinstance(k.get("value"), str) for k in keys):
        raise item.fail("must be a list of {value, options}", f"{field}.presentation_group_keys")
    return [k["value"] for k in keys]


def _charge(item: Item, i: int, c: Any, metrics: dict[str, dict[str, Any]], by_lago_id: dict[str, str],
            extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    f = f"plan.charges[{i}]"
    c = obj(item, c, f)
    check_fields(item, c, _CHARGE_FIELDS, _CHARGE_IGNORED | _READ_ONLY, f)
    code = c.get("billable_metric_code") or ref_code(c.get("billable_metric_id"), "billable_metric") \
        or by_lago_id.get(c.get("billable_metric_id") or "")
    if not code or code not in metrics:
        raise item.fail(f"names no billable metric of these files (billable_metric_code, a "
                        f"${{billable_metric:CODE}} placeholder or a metric's lago_id): {c.get('billable_metric_id')!r}",
                        f"{f}.billable_metric_id")
    refuse_if(item, c.get("prorated"), f"{f}.prorated", "prorated charges have no workbench equivalent")
    refuse_if(item, c.get("min_amount_cents"), f"{f}.min_amount_cents", "a minimum amount per charge has no "
              "workbench equivalent")
    refuse_if(item, c.get("applied_pricing_unit"), f"{f}.applied_pricing_unit", "pricing units have no workbench "
              "equivalent")
    model = c.get("charge_model")
    if not isinstance(model, str):
        raise item.fail("is required", f"{f}.charge_model")
    props = obj(item, c.get("properties") or {}, f"{f}.properties")
    pricing = _pricing(item, model, props, f"{f}.properties")
    groups = _group_keys(item, props, f"{f}.properties")
    filters = c.get("filters") or []
    found: dict[str, Any] = {}
    if filters:
        if not isinstance(filters, list) or len(filters) != 1:
            raise item.fail("several charge filters, each with its own price, have no workbench equivalent (a metric "
                            "has one filter)", f"{f}.filters")
        if not _is_zero(pricing):
            raise item.fail("a filtered charge whose events outside the filter still cost something has no workbench "
                            "equivalent (the default properties must price 0)", f"{f}.properties")
        flt = obj(item, filters[0], f"{f}.filters[0]")
        check_fields(item, flt, {"values", "properties"}, {"invoice_display_name"}, f"{f}.filters[0]")
        values = obj(item, flt.get("values"), f"{f}.filters[0].values")
        fprops = obj(item, flt.get("properties") or {}, f"{f}.filters[0].properties")
        pricing = _pricing(item, model, fprops, f"{f}.filters[0].properties")
        groups = groups or _group_keys(item, fprops, f"{f}.filters[0].properties")
        found["filters"] = {str(k): list(v) if isinstance(v, list) else v for k, v in values.items()}
    if groups:
        found["group_by"] = groups
    for key, value in found.items():
        seen = extra.setdefault(code, {})
        if key in seen and seen[key] != value:
            raise item.fail(f"billable metric '{code}' has a different {key.replace('_', ' ')} in another charge; "
                            f"a workbench metric has one", f"{f}.filters" if key == "filters" else f"{f}.properties")
        seen[key] = value
    return {"metric": code, **pricing}


def _plan(item: Item, p: dict[str, Any], metrics: dict[str, dict[str, Any]], by_lago_id: dict[str, str],
          add_ons: dict[str, dict[str, Any]], extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    f = "plan"
    check_fields(item, p, _PLAN_FIELDS, _PLAN_IGNORED | _READ_ONLY, f)
    interval = _INTERVAL_BACK.get(p.get("interval"))
    if interval is None:
        raise item.fail(f"'{p.get('interval')}' has no workbench equivalent (weekly, monthly, yearly)", f"{f}.interval")
    for key, why in (("trial_period", "trial periods"), ("minimum_commitment", "minimum commitments"),
                     ("usage_thresholds", "usage thresholds (progressive billing)"),
                     ("bill_charges_monthly", "billing charges monthly on a longer plan"),
                     ("bill_fixed_charges_monthly", "billing fixed charges monthly on a longer plan"),
                     ("entitlements", "feature entitlements")):
        refuse_if(item, p.get(key), f"{f}.{key}", f"{why} have no workbench equivalent")
    try:
        currency = normalize_currency(p.get("amount_currency"))
    except ValueError as exc:
        raise item.fail(str(exc), f"{f}.amount_currency") from None
    cents = p.get("amount_cents", 0)
    if isinstance(cents, bool) or not isinstance(cents, (int, str, Decimal)):
        raise item.fail("must be a whole number of minor units", f"{f}.amount_cents")
    base_fee = decimal(item, cents, f"{f}.amount_cents").scaleb(-minor_units(currency))
    base_fee = Decimal(num(base_fee))  # 4900 cents → 49, not 49.00
    charges = p.get("charges") or []
    if not isinstance(charges, list):
        raise item.fail("must be a list", f"{f}.charges")
    fixed = []
    for i, fc in enumerate(p.get("fixed_charges") or []):
        where = f"{f}.fixed_charges[{i}]"
        fc = obj(item, fc, where)
        check_fields(item, fc, _FIXED_FIELDS, _FIXED_IGNORED | _READ_ONLY, where)
        if fc.get("charge_model", "standard") != "standard":
            raise item.fail("only a standard fixed charge (units × amount) has a workbench equivalent",
                            f"{where}.charge_model")
        refuse_if(item, fc.get("prorated"), f"{where}.prorated", "prorated fixed charges have no workbench equivalent")
        add_on = add_ons.get(ref_code(fc.get("add_on_id"), "add_on") or fc.get("add_on_id") or fc.get("add_on_code")
                             or "", {})
        name = fc.get("invoice_display_name") or add_on.get("name") or fc.get("code") or add_on.get("code")
        props = obj(item, fc.get("properties") or {}, f"{where}.properties")
        fixed.append({"name": text(item, name, f"{where}.invoice_display_name"),
                      "quantity": decimal(item, fc.get("units", 0), f"{where}.units"),
                      "unit_price": decimal(item, props.get("amount"), f"{where}.properties.amount")})
    return {
        "code": text(item, p.get("code"), f"{f}.code"),
        "name": text(item, p.get("name"), f"{f}.name"),
        "currency": currency,
        "interval": interval,
        "base_fee": base_fee,
        "fixed_charges": fixed,
        "charges": [_charge(item, i, c, metrics, by_lago_id, extra) for i, c in enumerate(charges)],
    }
