"""Stripe: Billing Meters and Prices as the parameters of `stripe.billing.Meter.create` and
`stripe.Price.create`.

Checked against stripe/stripe-python (commit 6c6e373, 2026-07-24), the SDK generated from
Stripe's OpenAPI spec: `stripe/params/billing/_meter_create_params.py` (display_name, event_name,
`default_aggregation.formula` count|last|sum, `customer_mapping{event_payload_key, type: by_id}`,
`value_settings.event_payload_key`; no filters, no groups) and `stripe/params/_price_create_params.py`
(currency in lower case, `billing_scheme` per_unit|tiered, `tiers_mode` graduated|volume,
`tiers[{up_to: int | "inf", unit_amount_decimal, flat_amount_decimal}]` where a flat amount is "an
integer in the minor units", `unit_amount_decimal` in minor units "with at most 12 decimal places",
`transform_quantity{divide_by: int, round}` "cannot be combined with tiers", `recurring{interval
day|week|month|year, usage_type metered|licensed, meter}`, `product_data{name, unit_label}`,
`lookup_key`, `metadata`).

Mapping rules (README, "Stripe"): one meter per metric (latest → `last`); each plan line is a
price: base fee and fixed charges `licensed`, charges `metered` on the meter; free units on
standard and graduated charges become a first tier at 0; a package charge is a per-unit price
on `transform_quantity{divide_by: package_size, round: up}`. Amounts are in the minor unit of
CLDR's currency data (as invoices here); `recurring.meter` holds the `${billing.meter:CODE}`
placeholder.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from metering.models import MetricCreate
from metering.plans import Charge, Plan
from metering.peers.common import (
    Export,
    charge_item,
    common_scope_notes,
    decimal_places,
    is_whole,
    metric_item,
    minor,
    num,
    plan_item,
    quota_item,
    ref,
    scope,
    tiers_with_free_units,
    whole,
)
from metering.workspace import Workspace

FORMULAS = {"count": "count", "sum": "sum", "latest": "last"}
CUSTOMER_KEY = "stripe_customer_id"
MAX_DECIMALS = 12  # unit_amount_decimal: "at most 12 decimal places"


def export(workspace: Workspace, *, plan: str | None = None) -> Export:
    metrics, plans = scope(workspace, plan)
    out = Export("stripe")
    meters: dict[str, MetricCreate] = {}
    for m in metrics:
        if _meter(out, m):
            meters[m.code] = m
    for p in plans:
        _prices(out, p, meters)
    common_scope_notes(out, workspace, plans, "Stripe")
    return out


def _meter(out: Export, m: MetricCreate) -> bool:
    item = metric_item(m.code)
    agg = m.aggregation.value
    if agg not in FORMULAS:
        out.lost(metric_item(m.code, "aggregation"), f"Stripe meters aggregate with count, sum or last only; {agg} "
                 "cannot be expressed, so the meter is not exported")
        return False
    if m.filters:
        out.lost(metric_item(m.code, "filters"), "a Stripe meter counts every meter event with its event_name and "
                 "has no filters; the meter is not exported (it would bill events the filter leaves out)")
        return False
    payload: dict[str, Any] = {"display_name": m.name, "event_name": m.event_name,
                               "default_aggregation": {"formula": FORMULAS[agg]},
                               "customer_mapping": {"event_payload_key": CUSTOMER_KEY, "type": "by_id"}}
    if m.value_property:
        payload["value_settings"] = {"event_payload_key": m.value_property}
    out.add("billing.meter", payload, code=m.code)
    out.ok(item, f"billing meter, formula {FORMULAS[agg]}" + (f", value key {m.value_property}"
                                                              if m.value_property else ""))
    if m.group_by:
        out.lost(metric_item(m.code, "group_by"), "Stripe meters have no grouping; invoice amounts are unaffected, "
                 "the breakdown is lost")
    if m.metric_type.value.startswith("limit_"):
        out.lost(metric_item(m.code, "metric_type"), "Stripe has no usage quotas; the meter is exported for its usage")
    return True


def _amount(value: Decimal, currency: str) -> tuple[str, Any] | None:
    """("unit_amount", int) when the amount is whole in minor units, else ("unit_amount_decimal",
    text) when it fits 12 decimal places, else None."""
    amount = minor(value, currency)
    if is_whole(amount):
        return "unit_amount", int(amount)
    if decimal_places(amount) <= MAX_DECIMALS:
        return "unit_amount_decimal", num(amount)
    return None


def _tiers(tiers: list[tuple[Decimal | None, Decimal, Decimal]], currency: str) -> tuple[list[dict[str, Any]] | None, str]:
    out = []
    for up, price, flat in tiers:
        top = "inf" if up is None else whole(up)
        if top is None:
            return None, "Stripe tier bounds (up_to) are whole numbers"
        unit = minor(price, currency)
        if decimal_places(unit) > MAX_DECIMALS:
            return None, "a unit price needs more than 12 decimal places in minor units"
        flat_minor = minor(flat, currency)
        if not is_whole(flat_minor):
            return None, "Stripe's flat amounts are whole minor units"
        tier: dict[str, Any] = {"up_to": top, "unit_amount_decimal": num(unit)}
        if flat:
            tier["flat_amount_decimal"] = num(flat_minor)
        out.append(tier)
    return out, ""


def _metered(c: Charge, currency: str) -> tuple[dict[str, Any] | None, str]:
    """The pricing fields of a metered price, or (None, why not)."""
    free = c.free_units
    if c.model in ("standard", "graduated"):
        base = ([(None, c.unit_price, Decimal(0))] if c.model == "standard"
                else [(t.up_to, t.unit_price, t.flat_fee) for t in c.tiers or []])
        if c.model == "standard" and not free:
            amount = _amount(c.unit_price, currency)
            if amount is None:
                return None, "the unit price needs more than 12 decimal places in minor units"
            return {"billing_scheme": "per_unit", amount[0]: amount[1]}, "per-unit metered price"
        tiers, why = _tiers(tiers_with_free_units(base, free), currency)
        if tiers is None:
            return None, why + (" (free units become a first tier)" if free else "")
        return ({"billing_scheme": "tiered", "tiers_mode": "graduated", "tiers": tiers},
                "graduated tiers" + (", free units as a first tier at 0" if free else ""))
    if c.model == "volume":
        if free:
            return None, "volume tiers price all units by the total; free units taken off first cannot be expressed"
        tiers, why = _tiers([(t.up_to, t.unit_price, t.flat_fee) for t in c.tiers or []], currency)
        if tiers is None:
            return None, why
        return {"billing_scheme": "tiered", "tiers_mode": "volume", "tiers": tiers}, "volume tiers"
    if c.model == "package":
        size = whole(c.package_size)
        if free:
            return None, "transform_quantity divides the whole usage; free units taken off first cannot be expressed"
        if size is None:
            return None, "transform_quantity.divide_by is a whole number"
        amount = _amount(c.package_price, currency)
        if amount is None:
            return None, "the package price needs more than 12 decimal places in minor units"
        return ({"billing_scheme": "per_unit", amount[0]: amount[1],
                 "transform_quantity": {"divide_by": size, "round": "up"}},
                "per-unit price on transform_quantity (divide_by package size, round up)")
    return None, "Stripe prices have no percentage model"


def _prices(out: Export, p: Plan, meters: dict[str, MetricCreate]) -> None:
    currency = p.currency.lower()
    recurring = {"interval": p.interval}
    out.ok(plan_item(p.code), f"Stripe has no plan object: one price per line, lookup_key '{p.code}.<line>', "
           f"recurring every {p.interval}")
    lines: list[tuple[str, str, Decimal]] = []
    if p.base_fee:
        lines.append(("base_fee", "Base fee", p.base_fee))
    for i, f in enumerate(p.fixed_charges):
        lines.append((f"fixed_charges[{i}]", f.name, f.unit_price))
        if f.quantity != 1:
            out.lost(plan_item(p.code, f"fixed_charges[{i}].quantity"), f"a Stripe price has no quantity: set "
                     f"quantity {num(f.quantity)} on the subscription item")
    for field, name, amount in lines:
        item = plan_item(p.code, field)
        value = _amount(amount, p.currency)
        if value is None:
            out.lost(item, f"{num(amount)} {p.currency} needs more than 12 decimal places in minor units")
            continue
        out.add("price", {"currency": currency, value[0]: value[1], "billing_scheme": "per_unit",
                          "recurring": {**recurring, "usage_type": "licensed"},
                          "product_data": {"name": f"{p.name} – {name}"},
                          "lookup_key": f"{p.code}.{field}", "nickname": name, "metadata": {"plan": p.code}})
        out.ok(item, f"licensed price, {value[0]} {value[1]}")
    for c in p.charges:
        item = charge_item(p.code, c.metric)
        m = meters.get(c.metric)
        if m is None:
            out.lost(item, f"its metric '{c.metric}' is not exported as a meter (see {metric_item(c.metric)})")
            continue
        if m.metric_type.value == "charge_recurring":
            out.lost(item, "the metric is charge_recurring (a running total); a Stripe metered price bills each "
                     "period's usage")
            continue
        pricing, how = _metered(c, p.currency)
        if pricing is None:
            out.lost(item, f"{c.model} charge: {how}; not exported")
            continue
        product: dict[str, Any] = {"name": f"{p.name} – {m.name}"}
        if len(m.unit) <= 12:  # Stripe's unit_label limit
            product["unit_label"] = m.unit
        out.add("price", {"currency": currency, **pricing,
                          "recurring": {**recurring, "usage_type": "metered", "meter": ref("billing.meter", m.code)},
                          "product_data": product, "lookup_key": f"{p.code}.{m.code}", "nickname": m.name,
                          "metadata": {"plan": p.code, "metric": m.code}})
        out.ok(item, how)
    for q in p.quotas:
        out.lost(quota_item(p.code, q.metric), "Stripe has no usage quotas (entitlements are on/off features); the "
                 "quota is not exported")
    if p.included_credit:
        out.lost(plan_item(p.code, "included_credit"), "Stripe billing credits are granted per customer "
                 "(billing.credit_grant), not refreshed by a price; not exported")
