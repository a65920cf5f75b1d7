"""Lago: billable metrics, add-ons and plans as the bodies of Lago's create calls; events as
Lago event payloads.

Checked against getlago/lago-openapi (commit 120da12, 2026-07-30): `src/schemas/
BillableMetricCreateInput.yaml` + `BillableMetricBaseInput.yaml` (aggregation_type enum:
count_agg, sum_agg, max_agg, unique_count_agg, weighted_sum_agg, latest_agg: no min),
`PlanCreateInput.yaml` (interval weekly|monthly|quarterly|semiannual|yearly, integer
`amount_cents`, charges with `billable_metric_id`, `charge_model`, `properties`, `filters`;
`fixed_charges` with `add_on_id`, `units`), `ChargeProperties.yaml` + `ChargeObjectProperties.yaml`
(`amount`, `graduated_ranges` / `volume_ranges` with integer from_value/to_value and decimal-
string amounts, integer `package_size` / `free_units` (package only), `rate`, `fixed_amount`,
`free_units_per_total_aggregation`, `presentation_group_keys` "for display only, without
affecting pricing"), `ChargeFilterInput.yaml` (`values` map key → [strings], own `properties`),
`EventInputObject.yaml` (transaction_id, external_subscription_id, code, timestamp, properties
whose values are strings or numbers). And getlago/lago-api `app/models/billable_metric.rb`
(`validate_recurring`: recurring is not allowed with count_agg, max_agg or latest_agg) and
`app/controllers/api/v1/plans_controller.rb` (a charge names its metric only by
`billable_metric_id`).

Mapping rules (README, "Lago"): a metric's filters become the metric's declared `filters` and
one charge filter holding the charge's price, with the charge's default price at 0 (so events
outside the filter bill nothing, as here); `group_by` becomes the charge's
`presentation_group_keys`; free units on standard and graduated charges become a first range at
0; `billable_metric_code` (the field Lago's plan objects carry) sits next to the placeholder id
so the import can find the metric.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metering.models import MetricCreate
from metering.plans import Charge, Plan
from metering.peers.common import (
    Export,
    charge_item,
    common_scope_notes,
    is_whole,
    join_lines,
    json_number,
    json_strings,
    metric_item,
    minor,
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

AGGREGATIONS = {"count": "count_agg", "sum": "sum_agg", "max": "max_agg", "unique_count": "unique_count_agg",
                "latest": "latest_agg"}
INTERVALS = {"week": "weekly", "month": "monthly", "year": "yearly"}
RECURRING_OK = ("sum", "unique_count")  # lago-api billable_metric.rb: validate_recurring


def export(workspace: Workspace, *, plan: str | None = None) -> Export:
    metrics, plans = scope(workspace, plan)
    out = Export("lago")
    exported: dict[str, MetricCreate] = {}
    priced = {c.metric for p in plans for c in p.charges}
    units = []
    for m in metrics:
        if _metric(out, m, priced):
            exported[m.code] = m
            units.append(f"{m.code}: {m.unit}")
    if units:
        out.lost("metrics[*].unit", "Lago billable metrics have no unit field (" + ", ".join(units)
                 + "); an import from Lago reads 'units'")
    for p in plans:
        _plan(out, p, exported)
    common_scope_notes(out, workspace, plans, "Lago")
    return out


def _metric(out: Export, m: MetricCreate, priced: set[str]) -> bool:
    agg = m.aggregation.value
    if agg not in AGGREGATIONS:
        out.lost(metric_item(m.code, "aggregation"), "Lago has no min aggregation (count, sum, max, unique count, "
                 "latest and weighted sum only); the metric is not exported")
        return False
    kind = m.metric_type.value
    if kind == "charge_recurring" and agg not in RECURRING_OK:
        out.lost(metric_item(m.code, "metric_type"), f"Lago allows a recurring billable metric only with sum or unique "
                 f"count, not {agg}; the metric is not exported")
        return False
    payload: dict[str, Any] = {"name": m.name, "code": m.code, "aggregation_type": AGGREGATIONS[agg],
                               "recurring": kind == "charge_recurring"}
    if m.description:
        payload["description"] = m.description
    prop = m.value_property or m.distinct_by
    if prop:
        payload["field_name"] = prop
    if m.filters:
        payload["filters"] = [{"key": k, "values": list(v)} for k, v in m.filters.items()]
        if m.code in priced:
            out.ok(metric_item(m.code, "filters"), "billable metric filters + one charge filter per charge (the "
                   "charge's default price is 0)")
        else:
            out.lost(metric_item(m.code, "filters"), "a Lago billable metric's filters only declare values; events are "
                     "filtered by a charge filter, and no exported plan has a charge on this metric")
    out.add("billable_metric", {"billable_metric": payload}, code=m.code)
    out.ok(metric_item(m.code), f"billable_metric {AGGREGATIONS[agg]}" + (" recurring" if payload["recurring"] else "")
           + (f", field_name {prop}" if prop else ""))
    if kind.startswith("limit_"):
        out.lost(metric_item(m.code, "metric_type"), f"Lago has no usage quotas; {kind} is exported as a plain "
                 "(metered) billable metric for its usage")
    if m.event_name != m.code:
        out.lost(metric_item(m.code, "event_name"), f"Lago sends an event to the billable metric whose code is the "
                 f"event's code: events for this metric must carry code '{m.code}', not '{m.event_name}'")
    if m.group_by and m.code not in priced:
        out.lost(metric_item(m.code, "group_by"), "Lago keeps display groups on a plan's charge "
                 "(presentation_group_keys) and no exported plan has a charge on this metric")
    return True


def _plan(out: Export, p: Plan, metrics: dict[str, MetricCreate]) -> None:
    if p.interval not in INTERVALS:
        out.lost(plan_item(p.code, "interval"), f"Lago plans bill weekly, monthly, quarterly, semiannually or yearly, "
                 f"not every {p.interval}; the plan is not exported")
        return
    payload: dict[str, Any] = {"name": p.name, "code": p.code, "interval": INTERVALS[p.interval],
                               "amount_currency": p.currency, "pay_in_advance": False}
    cents = minor(p.base_fee, p.currency)
    if is_whole(cents):
        payload["amount_cents"] = int(cents)
        if p.base_fee:
            out.ok(plan_item(p.code, "base_fee"), f"amount_cents {int(cents)}")
    else:
        payload["amount_cents"] = 0
        out.lost(plan_item(p.code, "base_fee"), f"{num(p.base_fee)} {p.currency} is not a whole number of minor "
                 "units, and Lago's amount_cents is an integer; left at 0")
    charges = []
    for c in p.charges:
        body = _charge(out, p, c, metrics.get(c.metric))
        if body is not None:
            charges.append(body)
    payload["charges"] = charges
    fixed = []
    for i, f in enumerate(p.fixed_charges):
        code = slug_key(f"{p.code}_{f.name}")
        units = json_number(f.quantity)
        item = plan_item(p.code, f"fixed_charges[{i}]")
        if units is None:
            out.lost(item, f"quantity {num(f.quantity)} cannot be written exactly as a JSON number; not exported")
            continue
        out.add("add_on", {"add_on": {"name": f.name, "code": code, "amount_cents": 0, "amount_currency": p.currency}},
                code=code)
        fixed.append({"add_on_id": ref("add_on", code), "code": code, "invoice_display_name": f.name, "units": units,
                      "charge_model": "standard", "pay_in_advance": False, "prorated": False,
                      "properties": {"amount": num(f.unit_price)}})
        out.ok(item, f"fixed charge on add-on {code} ({num(f.quantity)} × {num(f.unit_price)})")
    if fixed:
        payload["fixed_charges"] = fixed
    for q in p.quotas:
        kind = metrics[q.metric].metric_type.value if q.metric in metrics else "limit"
        reason = ("Lago has no usage limit that rejects events" if kind == "limit_metered" else
                  "Lago has no allowance with carryover and overage price (a usage threshold only triggers an "
                  "invoice)")
        out.lost(quota_item(p.code, q.metric), reason + "; the quota is not exported")
    if p.included_credit:
        out.lost(plan_item(p.code, "included_credit"), "Lago plans have no money credit that refreshes every period "
                 "(wallet credits are prepaid per customer and roll over); not exported")
    out.add("plan", {"plan": payload})
    out.ok(plan_item(p.code), f"plan {INTERVALS[p.interval]} in {p.currency}")


def _ranges(tiers: list[tuple[Decimal | None, Decimal, Decimal]]) -> list[dict[str, Any]] | None:
    """Lago's [{from_value, to_value, per_unit_amount, flat_amount}] (from = previous to + 1),
    or None when a bound is not a whole number (Lago's bounds are integers)."""
    out, low = [], 0
    for up, price, flat in tiers:
        top = None if up is None else whole(up)
        if up is not None and top is None:
            return None
        out.append({"from_value": low, "to_value": top, "per_unit_amount": num(price), "flat_amount": num(flat)})
        low = (top or 0) + 1
    return out


def _zero_properties(model: str) -> dict[str, Any]:
    """The charge's default price outside its filter: nothing."""
    zero_range = [{"from_value": 0, "to_value": None, "per_unit_amount": "0", "flat_amount": "0"}]
    return {"standard": {"amount": "0"}, "graduated": {"graduated_ranges": zero_range},
            "volume": {"volume_ranges": zero_range}, "package": {"amount": "0", "package_size": 1, "free_units": 0},
            "percentage": {"rate": "0"}}[model]


def _charge(out: Export, p: Plan, c: Charge, m: MetricCreate | None) -> dict[str, Any] | None:
    item = charge_item(p.code, c.metric)
    if m is None:
        out.lost(item, f"its metric '{c.metric}' is not exported (see {metric_item(c.metric)})")
        return None
    free = c.free_units
    model, props, why = c.model, None, None
    if c.model in ("standard", "graduated"):
        base = ([(None, c.unit_price, Decimal(0))] if c.model == "standard"
                else [(t.up_to, t.unit_price, t.flat_fee) for t in c.tiers or []])
        if c.model == "standard" and not free:
            props = {"amount": num(c.unit_price)}
        else:
            ranges = _ranges(tiers_with_free_units(base, free))
            if ranges is None:
                why = "Lago's graduated ranges have whole-number bounds; free units or tier bounds here are fractional"
            else:
                model, props = "graduated", {"graduated_ranges": ranges}
    elif c.model == "volume":
        ranges = _ranges([(t.up_to, t.unit_price, t.flat_fee) for t in c.tiers or []])
        if free:
            why = "Lago applies free units only to package charges; a volume charge has none"
        elif ranges is None:
            why = "Lago's volume ranges have whole-number bounds; a tier bound here is fractional"
        else:
            props = {"volume_ranges": ranges}
    elif c.model == "package":
        size, free_units = whole(c.package_size), whole(free)
        if size is None or free_units is None:
            why = "Lago's package_size and free_units are whole numbers"
        else:
            props = {"amount": num(c.package_price), "package_size": size, "free_units": free_units}
    else:  # percentage
        if m.metric_type.value == "charge_recurring":
            why = ("on a recurring metric the workbench applies the rate to the running usage but the per-event fee "
                   "to the period's events; Lago has no such charge")
        elif free and c.fixed_fee:
            why = ("Lago's free_units_per_total_aggregation also frees those transactions from the fixed fee, while "
                   "the workbench charges the per-event fee on every event")
        else:
            props = {"rate": num(c.rate)}
            if c.fixed_fee:
                props["fixed_amount"] = num(c.fixed_fee)
            if free:
                props["free_units_per_total_aggregation"] = num(free)
    if props is None:
        out.lost(item, f"{c.model} charge: {why}; the charge is not exported")
        return None
    if m.group_by:
        props["presentation_group_keys"] = [{"value": g} for g in m.group_by]
    body: dict[str, Any] = {"billable_metric_id": ref("billable_metric", m.code), "billable_metric_code": m.code,
                            "charge_model": model, "pay_in_advance": False, "prorated": False}
    if m.filters:
        body["properties"] = _zero_properties(model)
        body["filters"] = [{"values": {k: list(v) for k, v in m.filters.items()}, "properties": props}]
    else:
        body["properties"] = props
    out.ok(item, f"charge_model {model}" + (" (free units as a first range at 0)" if free and c.model in
                                            ("standard", "graduated") else ""))
    return body


# --------------------------------------------------------------------------- events out


def _timestamps(ts_us: np.ndarray) -> pa.Array:
    """`_timestamp` for a column: whole seconds, then the microseconds without trailing zeros."""
    ts = np.asarray(ts_us, dtype=np.int64)
    seconds, micros = np.divmod(np.abs(ts), 1_000_000)
    sign = pc.if_else(pa.array(ts < 0), "-", "")
    fraction = pc.utf8_rtrim(pc.utf8_lpad(pa.array(micros).cast(pa.string()), 6, "0"), "0")
    fraction = pc.if_else(pa.array(micros != 0), pc.binary_join_element_wise(".", fraction, ""), "")
    return pc.binary_join_element_wise(sign, pa.array(seconds).cast(pa.string()), fraction, "")


def _flat(properties: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Lago's properties hold strings and numbers only: nested objects become dotted keys
    (which a metric's dot path reads: a literal key equal to the whole path wins), booleans
    `true`/`false`, arrays canonical JSON text; null counts as missing and is left out."""
    for key, value in properties.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flat(value, name + ".")
        elif value is None:
            continue
        elif isinstance(value, bool):  # before numbers: a bool is no number here
            yield name, "true" if value else "false"
        elif isinstance(value, list):
            yield name, _dumps(value)  # stored canonical: keys already sorted, no spaces
        else:
            yield name, value


# Properties text that may hold something other than flat strings and numbers (a nested object,
# an array, true / false / null). Only those rows are parsed and flattened one by one; a string
# value that merely contains such text is parsed needlessly, never written wrongly.
_MAYBE_NOT_FLAT = r"^.+\{|\[|true|false|null"


def lago_event_lines(rows: Sequence[tuple[str, str, int, str, str]]) -> str:
    """Stored event rows (event_name, customer_id, ts_us, idempotency_key, properties JSON text)
    → JSON Lines, each the body of Lago's `POST /api/v1/events` (`{"event": {...}}`), built
    column-wise.

    `external_subscription_id` is the customer id (the workbench has one subscription per
    customer; create the Lago subscription with that external id). Number literals are kept
    exactly as stored (no float); see `_flat` for the properties."""
    if not rows:
        return ""
    names, customers, stamps, keys, properties = (list(col) for col in zip(*rows))
    props = pa.array(properties, type=pa.string())
    odd = pc.fill_null(pc.match_substring_regex(props, _MAYBE_NOT_FLAT), False)
    if pc.any(odd).as_py():
        idx = np.flatnonzero(odd.to_numpy(zero_copy_only=False))
        flat = [_dumps(dict(_flat(json.loads(properties[i], parse_float=_Literal, parse_int=_Literal))))
                for i in idx.tolist()]
        mask = np.zeros(len(props), dtype=bool)
        mask[idx] = True
        props = pc.replace_with_mask(props, pa.array(mask), pa.array(flat, type=pa.string()))
    return join_lines('{"event":{"transaction_id":', json_strings(keys), ',"external_subscription_id":',
                      json_strings(customers), ',"code":', json_strings(names), ',"timestamp":',
                      _timestamps(np.array(stamps)), ',"properties":', props, "}}")


class _Literal(str):
    """A JSON number kept as its exact text (json.loads hands the literal to parse_float/_int)."""


def _dumps(obj: Any) -> str:
    """json.dumps, but `_Literal` values are written bare (exact number text)."""
    if isinstance(obj, _Literal):
        return str(obj)
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _dumps(v) for k, v in obj.items()) + "}"
    if isinstance(obj, list):
        return "[" + ",".join(_dumps(v) for v in obj) + "]"
    return json.dumps(obj, ensure_ascii=False)


def lago_events(batches: Iterable[Sequence[tuple[str, str, int, str, str]]]) -> Iterator[str]:
    """The JSON Lines text of each batch, one chunk per batch (streams: one batch in memory)."""
    for batch in batches:
        if batch:
            yield lago_event_lines(batch)
