"""Exports to Lago, OpenMeter, Stripe and Orb (contract §9): every payload is valid against the
peer's documented schema (tests/peer_schemas.py), amounts are in the peer's units, and every
metric, charge, quota and plan field is either translated or listed in `unsupported` — for a
hand-made workspace using every field, the demo, and random workspaces (hypothesis)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from metering import demo, peers
from metering.peers import lago, openmeter, orb, stripe
from metering.peers.common import Export, json_number, num, tiers_with_free_units
from metering.workspace import Workspace, WorkspaceError, parse_workspace
from tests.peer_cases import KITCHEN, kitchen, workspaces
from tests.peer_schemas import SCHEMAS

TARGETS = peers.TARGETS


def validate(export: Export) -> None:
    """Every payload against the target's schema for its kind, and plain JSON (no Decimal)."""
    schemas = SCHEMAS[export.target]
    for res in export.resources:
        assert res.kind in schemas, f"{export.target} has no resource kind {res.kind}"
        jsonschema.Draft202012Validator(schemas[res.kind]).validate(res.payload)
    text = json.dumps(export.to_json())  # raises on a Decimal or any non-JSON value
    assert json.loads(text)["target"] == export.target


def items(export: Export) -> tuple[set[str], set[str]]:
    return {t.item for t in export.translated}, {u.item for u in export.unsupported}


def assert_accounted(export: Export, ws: Workspace) -> None:
    """No silent drop: each metric, plan line, charge and quota is translated or listed."""
    done, lost = items(export)
    every = done | lost
    for m in ws.metrics:
        key = f"metrics[{m.code}]"
        assert key in done or any(i.startswith(key) for i in lost), key
    for p in ws.plans:
        key = f"plans[{p.code}]"
        if any(i in lost for i in (f"{key}.interval", f"{key}.code")):
            assert key not in done  # the plan is left out whole, and says so
            continue
        assert key in done, key
        assert not p.base_fee or f"{key}.base_fee" in every
        for i in range(len(p.fixed_charges)):
            assert f"{key}.fixed_charges[{i}]" in every
        for c in p.charges:
            assert f"{key}.charges[{c.metric}]" in every
        for q in p.quotas:
            assert f"{key}.quotas[{q.metric}]" in every
        assert not p.included_credit or f"{key}.included_credit" in lost


def priced_charges(export: Export, plan: str) -> set[str]:
    """The metric codes a plan's exported payloads price (read from the payloads themselves)."""
    out: set[str] = set()
    for res in export.resources:
        p = res.payload
        if export.target == "lago" and res.kind == "plan" and p["plan"]["code"] == plan:
            out |= {c["billable_metric_code"] for c in p["plan"]["charges"]}
        elif export.target == "openmeter" and res.kind == "plan" and p["key"] == plan:
            out |= {c["featureKey"] for c in p["phases"][0]["rateCards"]
                    if c["type"] == "usage_based" and "entitlementTemplate" not in c}
        elif export.target == "stripe" and res.kind == "price" and p["metadata"].get("plan") == plan:
            if "metric" in p["metadata"]:
                out.add(p["metadata"]["metric"])
        elif export.target == "orb" and res.kind == "plan" and p["external_plan_id"] == plan:
            out |= {x["price"]["billable_metric_id"][len("${metric:"):-1] for x in p["prices"]
                    if x["price"].get("billable_metric_id")}
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_every_payload_of_the_kitchen_workspace_fits_the_peers_schema(target: str) -> None:
    ws = kitchen()
    export = peers.export(ws, target)
    validate(export)
    assert_accounted(export, ws)


@pytest.mark.parametrize("target", TARGETS)
def test_the_demo_exports_cleanly(target: str) -> None:
    ws = demo.workspace()
    export = peers.export(ws, target)
    validate(export)
    assert_accounted(export, ws)
    assert export.resources


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=workspaces())
def test_random_workspaces_export_valid_payloads_and_drop_nothing_silently(doc: dict[str, Any]) -> None:
    ws = parse_workspace(doc)
    for target in TARGETS:
        export = peers.export(ws, target)
        validate(export)
        assert_accounted(export, ws)
        done, _ = items(export)
        for p in ws.plans:
            translated = {c.metric for c in p.charges if f"plans[{p.code}].charges[{c.metric}]" in done}
            assert priced_charges(export, p.code) == translated, (target, p.code)


def test_the_document_has_the_contract_shape() -> None:
    doc = peers.export(kitchen(), "lago").to_json()
    assert set(doc) == {"target", "resources", "unsupported"}
    assert all({"kind", "payload"} <= set(r) <= {"kind", "payload", "ref"} for r in doc["resources"])
    assert all(set(u) == {"item", "reason"} and u["reason"] for u in doc["unsupported"])


def test_one_plan_exports_with_only_the_metrics_it_uses() -> None:
    ws = parse_workspace({**KITCHEN, "plans": KITCHEN["plans"]})
    export = peers.export(ws, "lago", plan="weekly")
    kinds = [(r.kind, r.payload.get("billable_metric", r.payload.get("plan", {})).get("code")) for r in export.resources]
    assert kinds == [("billable_metric", "api_calls"), ("billable_metric", "payments"), ("plan", "weekly")]
    with pytest.raises(WorkspaceError, match="plan 'nope' is not in the workspace"):
        peers.export(ws, "lago", plan="nope")


def test_unknown_target_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown target"):
        peers.export(kitchen(), "paddle")


# ------------------------------------------------------------------------- what does not translate


def reasons(export: Export) -> dict[str, str]:
    return {u.item: u.reason for u in export.unsupported}


def test_lago_lists_what_it_cannot_express() -> None:
    lost = reasons(lago.export(kitchen()))
    assert "no min aggregation" in lost["metrics[low_water].aggregation"]
    assert "not exported" in lost["plans[pro].charges[low_water]"]
    assert "whole-number bounds" in lost["plans[pro].charges[peak_gb]"]
    assert "only to package charges" in lost["plans[pro].charges[users]"]
    assert "plans[pro].charges[payments]" not in lost  # rate and fixed_amount per event
    assert "carryover" in lost["plans[pro].quotas[sms]"]
    assert "rejects events" in lost["plans[pro].quotas[builds]"]
    assert "refreshes every period" in lost["plans[pro].included_credit"]
    assert "not every day" in lost["plans[daily].interval"]
    assert "amount_cents is an integer" in lost["plans[weekly].base_fee"]
    assert "code 'api_calls', not 'api.request'" in lost["metrics[api_calls].event_name"]
    assert "requests" in lost["metrics[*].unit"]
    assert "Europe/Berlin" in lost["timezone"]
    assert "1 subscription" in lost["subscriptions"]


def test_lago_percentage_charges() -> None:
    def one(charge: dict[str, Any], kind: str = "charge_metered") -> Export:
        doc = {"metrics": [{"name": "P", "code": "p", "unit": "USD", "aggregation": "sum", "value_property": "amount",
                            "metric_type": kind}],
               "plans": [{"code": "x", "name": "X", "currency": "USD", "charges": [{"metric": "p", **charge}]}]}
        return lago.export(parse_workspace(doc))

    free_only = one({"model": "percentage", "rate": "2", "free_units": "500"})
    plan = payloads(free_only, "plan")[0]["plan"]
    assert plan["charges"][0]["properties"] == {"rate": "2", "free_units_per_total_aggregation": "500"}
    both = reasons(one({"model": "percentage", "rate": "2", "fixed_fee": "0.3", "free_units": "500"}))
    assert "fixed fee" in both["plans[x].charges[p]"]
    recurring = reasons(one({"model": "percentage", "rate": "2"}, "charge_recurring"))
    assert "running usage" in recurring["plans[x].charges[p]"]


def test_lago_rejects_recurring_with_count_max_latest() -> None:
    doc = {"metrics": [{"name": "N", "code": "n", "unit": "u", "aggregation": "max", "value_property": "v",
                        "metric_type": "charge_recurring"}]}
    assert "only with sum or unique count" in reasons(lago.export(parse_workspace(doc)))["metrics[n].metric_type"]


def test_openmeter_lists_what_it_cannot_express() -> None:
    lost = reasons(openmeter.export(kitchen()))
    assert "not MAX" in lost["plans[pro].charges[peak_gb]"]
    assert "not MIN" in lost["plans[pro].charges[low_water]"]
    assert "running total" in lost["plans[pro].charges[stored]"]
    assert "per-event fee" in lost["plans[pro].charges[payments]"]
    assert "carries over" in lost["plans[pro].quotas[sms]"]
    assert "refreshes every period" in lost["plans[pro].included_credit"]
    assert "single underscores" in lost["metrics[bad__code_].code"]
    assert "plans[pro].quotas[builds]" not in lost  # a hard limit is a metered entitlement
    assert "plans[daily].quotas[sms]" not in lost  # max_carryover 0: exact


def test_stripe_lists_what_it_cannot_express() -> None:
    lost = reasons(stripe.export(kitchen()))
    for code, agg in (("peak_gb", "max"), ("low_water", "min"), ("users", "unique_count")):
        assert f"{agg} cannot be expressed" in lost[f"metrics[{code}].aggregation"]
    assert "no filters" in lost["metrics[api_calls].filters"]
    assert "no grouping" in lost["metrics[tokens].group_by"]
    assert "no percentage model" in lost["plans[pro].charges[payments]"]
    assert "free units" in lost["plans[pro].charges[seats_now]"]
    assert "running total" in lost["plans[pro].charges[stored]"]
    assert "set quantity 5 on the subscription item" in lost["plans[pro].fixed_charges[0].quantity"]
    assert "no usage quotas" in lost["plans[pro].quotas[sms]"]
    assert "credit_grant" in lost["plans[pro].included_credit"]
    doc = {"metrics": [{"name": "C", "code": "c", "unit": "calls", "aggregation": "count"}],
           "plans": [{"code": "p", "name": "P", "currency": "USD", "charges": [
               {"metric": "c", "model": "standard", "unit_price": "0.0000000000000001"}]}]}
    assert "12 decimal places" in reasons(stripe.export(parse_workspace(doc)))["plans[p].charges[c]"]


def test_orb_lists_what_it_cannot_express() -> None:
    lost = reasons(orb.export(kitchen()))
    assert "latest" in lost["metrics[seats_now]"]
    assert "'usage.tokens' is not a plain column name" in lost["metrics[tokens]"]
    assert "free units taken off first" in lost["plans[pro].charges[users]"]
    assert "metrics[seats_now]" in lost["plans[pro].charges[seats_now]"]
    assert "whole number" in lost["plans[daily].charges[api_calls]"]
    assert "no percentage" in lost["plans[pro].charges[payments]"]
    assert "no usage quotas" in lost["plans[pro].quotas[sms]"]
    assert "refreshes every period" in lost["plans[pro].included_credit"]


# ------------------------------------------------------------------------- field names and units


def payloads(export: Export, kind: str) -> list[dict[str, Any]]:
    return [r.payload for r in export.resources if r.kind == kind]


def test_lago_amounts_cents_and_decimal_strings() -> None:
    export = lago.export(kitchen())
    pro = next(p["plan"] for p in payloads(export, "plan") if p["plan"]["code"] == "pro")
    assert pro["amount_cents"] == 4900 and pro["amount_currency"] == "USD" and pro["interval"] == "monthly"
    charges = {c["billable_metric_code"]: c for c in pro["charges"]}
    api = charges["api_calls"]  # filtered: default price 0, the price under the one filter
    assert api["charge_model"] == "graduated" and api["billable_metric_id"] == "${billable_metric:api_calls}"
    zero = [{"from_value": 0, "to_value": None, "per_unit_amount": "0", "flat_amount": "0"}]
    assert api["properties"] == {"graduated_ranges": zero}
    assert api["filters"] == [{"values": {"status": ["200", "201"], "region": ["eu"]}, "properties": {
        "graduated_ranges": [{"from_value": 0, "to_value": 1000, "per_unit_amount": "0", "flat_amount": "0"},
                             {"from_value": 1001, "to_value": None, "per_unit_amount": "0.02", "flat_amount": "0"}],
        "presentation_group_keys": [{"value": "endpoint"}]}}]
    tokens = charges["tokens"]["properties"]["graduated_ranges"]
    assert tokens == [{"from_value": 0, "to_value": 100, "per_unit_amount": "0", "flat_amount": "0"},
                      {"from_value": 101, "to_value": 1100, "per_unit_amount": "0.01", "flat_amount": "5"},
                      {"from_value": 1101, "to_value": None, "per_unit_amount": "0.005", "flat_amount": "0"}]
    assert charges["seats_now"]["properties"]["package_size"] == 10
    assert charges["seats_now"]["properties"]["free_units"] == 20
    fixed = pro["fixed_charges"]
    assert fixed[0]["units"] == 5 and fixed[0]["properties"] == {"amount": "10"}
    assert fixed[1]["units"] == 0.5 and fixed[0]["add_on_id"] == "${add_on:pro_seats}"
    metric = next(m["billable_metric"] for m in payloads(export, "billable_metric")
                  if m["billable_metric"]["code"] == "tokens")
    assert metric == {"name": "Tokens", "code": "tokens", "aggregation_type": "sum_agg", "recurring": False,
                      "field_name": "usage.tokens"}


def test_stripe_amounts_in_minor_units() -> None:
    export = stripe.export(kitchen())
    prices = {p["lookup_key"]: p for p in payloads(export, "price")}
    assert prices["pro.base_fee"]["unit_amount"] == 4900 and prices["pro.base_fee"]["currency"] == "usd"
    assert prices["pro.base_fee"]["recurring"] == {"interval": "month", "usage_type": "licensed"}
    assert "pro.api_calls" not in prices  # filters: no meter, so no price
    tokens = prices["pro.tokens"]
    assert tokens["recurring"] == {"interval": "month", "usage_type": "metered", "meter": "${billing.meter:tokens}"}
    assert tokens["tiers_mode"] == "graduated" and tokens["tiers"] == [
        {"up_to": 100, "unit_amount_decimal": "0"},
        {"up_to": 1100, "unit_amount_decimal": "1", "flat_amount_decimal": "500"},
        {"up_to": "inf", "unit_amount_decimal": "0.5"}]
    assert prices["daily.base_fee"]["unit_amount"] == 100 and prices["daily.base_fee"]["currency"] == "jpy"
    assert prices["weekly.base_fee"]["unit_amount_decimal"] == "1000.5"  # KWD has 3 minor digits
    meters = {m["event_name"]: m for m in payloads(export, "billing.meter")}
    assert meters["tokens"]["value_settings"] == {"event_payload_key": "usage.tokens"}
    assert meters["seats"]["default_aggregation"] == {"formula": "last"}


def test_stripe_package_is_a_per_unit_price_on_transformed_quantity() -> None:
    doc = {"metrics": [{"name": "C", "code": "c", "unit": "calls", "aggregation": "count"}],
           "plans": [{"code": "p", "name": "P", "currency": "EUR", "charges": [
               {"metric": "c", "model": "package", "package_size": 1000, "package_price": "5"}]}]}
    price = payloads(stripe.export(parse_workspace(doc)), "price")[0]
    assert price["transform_quantity"] == {"divide_by": 1000, "round": "up"} and price["unit_amount"] == 500


def test_openmeter_meters_use_jsonpath_and_group_by_maps() -> None:
    export = openmeter.export(kitchen())
    meters = {m["slug"]: m for m in payloads(export, "meter")}
    assert meters["tokens"]["valueProperty"] == "$.usage.tokens"
    assert meters["tokens"]["groupBy"] == {"model": "$.model"} and meters["tokens"]["metadata"] == {"unit": "tokens"}
    assert meters["api_calls"]["groupBy"] == {"endpoint": "$.endpoint", "status": "$.status", "region": "$.region"}
    assert meters["users"]["aggregation"] == "UNIQUE_COUNT" and meters["users"]["valueProperty"] == "$.user_id"
    features = {f["key"]: f for f in payloads(export, "feature")}
    assert features["api_calls"]["advancedMeterGroupByFilters"] == {"status": {"$in": ["200", "201"]},
                                                                    "region": {"$in": ["eu"]}}
    assert "peak_gb" not in features  # MAX meters take no feature
    pro = next(p for p in payloads(export, "plan") if p["key"] == "pro")
    cards = {c["key"]: c for c in pro["phases"][0]["rateCards"]}
    assert cards["base_fee"]["price"] == {"type": "flat", "amount": "49", "paymentTerm": "in_arrears"}
    assert cards["api_calls"]["price"] == {"type": "unit", "amount": "0.02"}
    assert cards["api_calls"]["discounts"] == {"usage": {"quantity": "1000"}}
    assert cards["builds"]["entitlementTemplate"] == {"type": "metered", "isSoftLimit": False, "issueAfterReset": 100,
                                                      "usagePeriod": "P1M"}
    daily = next(p for p in payloads(export, "plan") if p["key"] == "daily")
    sms = next(c for c in daily["phases"][0]["rateCards"] if c["key"] == "sms")
    assert sms["entitlementTemplate"]["isSoftLimit"] is True and sms["entitlementTemplate"]["issueAfterReset"] == 10.5
    assert sms["price"] == {"type": "unit", "amount": "2"} and sms["discounts"] == {"usage": {"quantity": "10.5"}}
    assert daily["billingCadence"] == "P1D"


def test_openmeter_percentage_is_a_dynamic_multiplier() -> None:
    export = openmeter.export(kitchen())
    weekly = next(p for p in payloads(export, "plan") if p["key"] == "weekly")
    card = next(c for c in weekly["phases"][0]["rateCards"] if c["key"] == "payments")
    assert card["price"] == {"type": "dynamic", "multiplier": "0.02"}


def test_orb_prices_are_strings_and_sql_metrics() -> None:
    export = orb.export(kitchen())
    metrics = {m["metadata"]["code"]: m for m in payloads(export, "metric")}
    assert metrics["api_calls"]["sql"] == ("SELECT COUNT(*) FROM events WHERE event_name = 'api.request' AND "
                                           "status IN ('200', '201') AND region IN ('eu')")
    assert metrics["users"]["sql"] == "SELECT COUNT(DISTINCT user_id) FROM events WHERE event_name = 'users'"
    assert metrics["low_water"]["sql"].startswith("SELECT MIN(gb)")
    pro = next(p for p in payloads(export, "plan") if p["external_plan_id"] == "pro")
    prices = [x["price"] for x in pro["prices"]]
    base = next(p for p in prices if p["name"] == "Base fee")
    assert base["unit_config"] == {"unit_amount": "49"} and base["fixed_price_quantity"] == 1
    api = next(p for p in prices if p.get("billable_metric_id") == "${metric:api_calls}")
    assert api["model_type"] == "tiered" and api["tiered_config"]["tiers"] == [
        {"first_unit": 0, "last_unit": 1000, "unit_amount": "0"},
        {"first_unit": 1000, "last_unit": None, "unit_amount": "0.02"}]
    assert api["invoice_grouping_key"] == "endpoint"
    weekly = next(p for p in payloads(export, "plan") if p["external_plan_id"] == "weekly")
    assert weekly["prices"][0]["price"]["cadence"] == "custom"
    assert weekly["prices"][0]["price"]["billing_cycle_configuration"] == {"duration": 7, "duration_unit": "day"}


def test_placeholders_name_a_resource_that_carries_them() -> None:
    for target in TARGETS:
        export = peers.export(kitchen(), target)
        refs = {r.ref for r in export.resources if r.ref}
        used = set()
        for r in export.resources:
            for token in json.dumps(r.payload).split('"'):
                if token.startswith("${"):
                    used.add(token)
        assert used <= refs, (target, used - refs)


# ------------------------------------------------------------------------- number helpers


def test_number_helpers_are_exact() -> None:
    assert num(Decimal("0.0200")) == "0.02" and num(Decimal("1E+2")) == "100" and num(Decimal("-0")) == "0"
    assert json_number(Decimal("2.5")) == 2.5 and json_number(Decimal("3")) == 3
    assert json_number(Decimal("0.1")) == 0.1
    assert json_number(Decimal("0.12345678901234567890")) is None  # no float holds it
    tiers = tiers_with_free_units([(Decimal(10), Decimal(1), Decimal(2)), (None, Decimal(0), Decimal(0))], Decimal(5))
    assert tiers == [(Decimal(5), Decimal(0), Decimal(0)), (Decimal(15), Decimal(1), Decimal(2)),
                     (None, Decimal(0), Decimal(0))]
