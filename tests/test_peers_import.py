"""Importing Lago and OpenMeter definitions (contract §9): create payloads and peer objects in,
a checked workspace document out; what would price differently is refused with the file,
resource and field named, and nothing is imported."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from metering import peers
from metering.peers import DefinitionsError
from metering.workspace import WorkspaceError, parse_workspace


def lago(*payloads: Any, name: str = "lago.json") -> dict[str, Any]:
    return peers.import_definitions("lago", [(name, json.dumps(list(payloads)).encode())])


def om(*payloads: Any, name: str = "om.json") -> dict[str, Any]:
    return peers.import_definitions("openmeter", [(name, json.dumps(list(payloads)).encode())])


METRIC = {"billable_metric": {"name": "Storage", "code": "storage", "aggregation_type": "sum_agg", "field_name": "gb",
                              "recurring": True}}
PLAN = {"plan": {"name": "Startup", "code": "startup", "interval": "monthly", "amount_cents": 10000,
                 "amount_currency": "EUR", "pay_in_advance": True, "tax_codes": ["vat"],
                 "charges": [{"billable_metric_id": "${billable_metric:storage}", "charge_model": "standard",
                              "invoice_display_name": "Storage", "properties": {"amount": "0.5"}}]}}


def test_lago_create_payloads_import_into_a_workspace_document() -> None:
    doc = lago(METRIC, PLAN)
    ws = parse_workspace(doc)
    m = ws.metric("storage")
    assert (m.aggregation.value, m.value_property, m.metric_type.value, m.event_name, m.unit) == \
        ("sum", "gb", "charge_recurring", "storage", "units")
    plan = ws.plan("startup")
    assert plan.currency == "EUR" and plan.base_fee == Decimal("100") and plan.interval == "month"
    assert plan.charges[0].model == "standard" and plan.charges[0].unit_price == Decimal("0.5")


def test_lago_objects_read_back_from_lago_import_too() -> None:
    metric = {"billable_metric": {**METRIC["billable_metric"], "lago_id": "1a90-uuid", "created_at": "2026-01-01",
                                  "active_subscriptions_count": 3}}
    plan = json.loads(json.dumps(PLAN))
    plan["plan"]["lago_id"] = "plan-uuid"
    plan["plan"]["charges"][0] = {"lago_id": "c1", "lago_billable_metric_id": "1a90-uuid",
                                  "billable_metric_id": "1a90-uuid", "charge_model": "graduated",
                                  "properties": {"graduated_ranges": [
                                      {"from_value": 0, "to_value": 10, "per_unit_amount": "0", "flat_amount": "0"},
                                      {"from_value": 11, "to_value": None, "per_unit_amount": "2", "flat_amount": "0"}]}}
    ws = parse_workspace(lago(metric, plan))
    charge = ws.plan("startup").charges[0]  # a first range at 0 reads as free units
    assert (charge.metric, charge.model, charge.free_units, charge.unit_price) == ("storage", "standard", 10, 2)


def test_lago_amount_cents_use_the_currency_minor_unit() -> None:
    plan = json.loads(json.dumps(PLAN))
    plan["plan"].update(amount_currency="JPY", amount_cents=500)
    assert parse_workspace(lago(METRIC, plan)).plan("startup").base_fee == Decimal(500)


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"aggregation_type": "weighted_sum_agg"}, "billable_metric.aggregation_type", "no workbench equivalent"),
    ({"expression": "round(a * b)"}, "billable_metric.expression", "expression"),
    ({"rounding_function": "ceil"}, "billable_metric.rounding_function", "rounding"),
    ({"feild_name": "gb"}, "billable_metric.feild_name", "unknown field"),
])
def test_lago_metric_refusals_name_the_field(change: dict[str, Any], field: str, words: str) -> None:
    metric = {"billable_metric": {**METRIC["billable_metric"], **change}}
    with pytest.raises(DefinitionsError) as exc:
        lago(metric)
    assert f"lago.json: [0].{field}: " in str(exc.value) and words in str(exc.value)


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"interval": "quarterly"}, "plan.interval", "weekly, monthly, yearly"),
    ({"trial_period": 14}, "plan.trial_period", "trial periods"),
    ({"minimum_commitment": {"amount_cents": 100}}, "plan.minimum_commitment", "minimum commitments"),
    ({"amount_currency": "XYZ"}, "plan.amount_currency", "ISO 4217"),
])
def test_lago_plan_refusals_name_the_field(change: dict[str, Any], field: str, words: str) -> None:
    plan = {"plan": {**PLAN["plan"], **change}}
    with pytest.raises(DefinitionsError) as exc:
        lago(METRIC, plan)
    assert f"lago.json: [1].{field}: " in str(exc.value) and words in str(exc.value)


@pytest.mark.parametrize(("charge", "field", "words"), [
    ({"min_amount_cents": 300}, "min_amount_cents", "minimum amount"),
    ({"prorated": True}, "prorated", "prorated"),
    ({"charge_model": "dynamic"}, "charge_model", "dynamic"),
    ({"properties": {"amount": "1", "pricing_group_keys": ["region"]}}, "properties.pricing_group_keys", "each group"),
    ({"billable_metric_id": "nope"}, "billable_metric_id", "names no billable metric"),
    ({"filters": [{"values": {"r": ["a"]}, "properties": {"amount": "1"}},
                  {"values": {"r": ["b"]}, "properties": {"amount": "2"}}]}, "filters", "several charge filters"),
    ({"filters": [{"values": {"r": ["a"]}, "properties": {"amount": "1"}}]}, "properties", "outside the filter"),
])
def test_lago_charge_refusals_name_the_field(charge: dict[str, Any], field: str, words: str) -> None:
    plan = json.loads(json.dumps(PLAN))
    plan["plan"]["charges"][0].update(charge)
    with pytest.raises(DefinitionsError) as exc:
        lago(METRIC, plan)
    assert f"[1].plan.charges[0].{field}: " in str(exc.value) and words in str(exc.value)


def test_lago_filtered_charge_becomes_a_metric_filter() -> None:
    plan = json.loads(json.dumps(PLAN))
    plan["plan"]["charges"][0].update(properties={"amount": "0"}, filters=[
        {"values": {"region": ["us", "eu"]}, "properties": {"amount": "0.7",
                                                              "presentation_group_keys": [{"value": "zone"}]}}])
    ws = parse_workspace(lago(METRIC, plan))
    assert ws.metric("storage").filters == {"region": ["us", "eu"]} and ws.metric("storage").group_by == ["zone"]
    assert ws.plan("startup").charges[0].unit_price == Decimal("0.7")


def test_several_files_and_the_export_document_form() -> None:
    export = {"target": "lago", "resources": [{"kind": "billable_metric", "payload": METRIC}], "unsupported": []}
    doc = peers.import_definitions("lago", [("metrics.json", json.dumps(export).encode()),
                                            ("plans.json", json.dumps([PLAN]).encode())])
    assert [p["code"] for p in doc["plans"]] == ["startup"]
    with pytest.raises(DefinitionsError, match="billable metric 'storage' is defined twice"):
        peers.import_definitions("lago", [("a.json", json.dumps([METRIC]).encode()),
                                          ("b.json", json.dumps([METRIC]).encode())])


@pytest.mark.parametrize(("data", "words"), [
    (b"", "x.json is empty"),
    (b"\xff\xfe", "not UTF-8"),
    (b"{not json", "not valid JSON: line 1"),
    (b'{"target": "openmeter", "resources": []}', "an export for 'openmeter', not for lago"),
    (b'{"hello": 1}', "expected an export document"),
    (b'[{"customer": {}}]', "expected a Lago create body"),
    (b'{"target": "lago", "resources": [{"kind": "coupon", "payload": {}}]}', "unknown resource kind 'coupon'"),
])
def test_unreadable_files_get_one_clear_error(data: bytes, words: str) -> None:
    with pytest.raises(DefinitionsError, match=words.replace("(", r"\(")):
        peers.import_definitions("lago", [("x.json", data)])


def test_the_workspace_rules_still_apply() -> None:
    plan = json.loads(json.dumps(PLAN))
    plan["plan"]["charges"][0] = {"billable_metric_code": "storage", "charge_model": "volume", "properties": {
        "volume_ranges": [{"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
                          {"from_value": 11, "to_value": 20, "per_unit_amount": "1", "flat_amount": "0"}]}}
    with pytest.raises(WorkspaceError, match=r"break a workspace rule: plans\[0\]\.charges\[0\]\.tiers\[1\]\.up_to"):
        lago(METRIC, plan)


# ------------------------------------------------------------------------------ OpenMeter

METER = {"slug": "tokens_total", "name": "Tokens", "aggregation": "SUM", "eventType": "prompt",
         "valueProperty": "$.tokens", "groupBy": {"model": "$.model", "type": "$['type']"}}
FEATURE = {"key": "gpt4_tokens", "name": "GPT-4 tokens", "meterSlug": "tokens_total",
           "advancedMeterGroupByFilters": {"model": {"$in": ["gpt-4", "gpt-4o"]}}}
OM_PLAN = {"key": "pro", "name": "Pro", "currency": "USD", "billingCadence": "P1M", "phases": [
    {"key": "default", "name": "Default", "duration": None, "rateCards": [
        {"type": "flat_fee", "key": "base_fee", "name": "Base", "billingCadence": "P1M",
         "price": {"type": "flat", "amount": "20", "paymentTerm": "in_advance"}},
        {"type": "usage_based", "key": "gpt4_tokens", "name": "Tokens", "featureKey": "gpt4_tokens",
         "billingCadence": "P1M", "price": {"type": "tiered", "mode": "graduated", "tiers": [
             {"upToAmount": "1000", "unitPrice": {"type": "unit", "amount": "0"}, "flatPrice": None},
             {"unitPrice": {"type": "unit", "amount": "0.001"}, "flatPrice": {"type": "flat", "amount": "1"}}]},
         "discounts": {"usage": {"quantity": "50"}}}]}]}


def test_openmeter_meters_features_and_plans_import() -> None:
    ws = parse_workspace(om(METER, FEATURE, OM_PLAN, {**METER, "slug": "raw", "aggregation": "COUNT"}))
    m = ws.metric("gpt4_tokens")
    assert (m.event_name, m.value_property, m.filters, m.group_by) == ("prompt", "tokens",
                                                                       {"model": ["gpt-4", "gpt-4o"]}, ["type"])
    assert ws.metric("raw").aggregation.value == "count" and ws.metric("raw").value_property is None
    plan = ws.plan("pro")
    assert plan.base_fee == 20 and plan.charges[0].free_units == 50 and plan.charges[0].tiers[1].flat_fee == 1


@pytest.mark.parametrize(("payloads", "words"), [
    ([{**METER, "aggregation": "AVG"}], "'AVG' has no workbench equivalent"),
    ([{**METER, "valueProperty": "$.items[*].n"}], "beyond $.a.b"),
    ([{**METER, "eventFrom": "2026-01-01T00:00:00Z"}], "skipping events"),
    ([METER, {**FEATURE, "advancedMeterGroupByFilters": {"model": {"$ne": "x"}}}], "only $in and $eq"),
    ([METER, {**FEATURE, "meterSlug": "other"}], "meter 'other' is not in these files"),
    ([METER, FEATURE, {**OM_PLAN, "phases": [OM_PLAN["phases"][0], OM_PLAN["phases"][0]]}], "one phase"),
    ([METER, FEATURE, {**OM_PLAN, "billingCadence": "P3M"}], "'P3M' has no workbench equivalent"),
])
def test_openmeter_refusals(payloads: list[Any], words: str) -> None:
    with pytest.raises(DefinitionsError, match=words.replace("$", r"\$").replace("[", r"\[").replace("*", r"\*")):
        om(*payloads)


def test_openmeter_commitments_and_one_time_fees_are_refused() -> None:
    plan = json.loads(json.dumps(OM_PLAN))
    plan["phases"][0]["rateCards"][1]["price"]["minimumAmount"] = "100"
    with pytest.raises(DefinitionsError, match=r"rateCards\[1\]\.price\.minimumAmount: spend commitments"):
        om(METER, FEATURE, plan)
    plan = json.loads(json.dumps(OM_PLAN))
    plan["phases"][0]["rateCards"][0]["billingCadence"] = None
    with pytest.raises(DefinitionsError, match="billed on another cadence than the plan"):
        om(METER, FEATURE, plan)


def test_a_merge_that_would_break_a_kept_plan_changes_nothing(sqlite_engine) -> None:  # noqa: ANN001
    """Merging re-checks the result: a limit metric re-imported as a plain metric (Lago has no
    quotas) would leave a kept plan's quota on a charge metric."""
    from metering.workspace import export_workspace, import_workspace

    here = {"metrics": [{"name": "SMS", "code": "sms", "unit": "sms", "aggregation": "count",
                         "metric_type": "limit_recurring"}],
            "plans": [{"code": "pro", "name": "Pro", "currency": "USD", "quotas": [{"metric": "sms", "limit": 10}]}]}
    import_workspace(sqlite_engine, here)
    before = export_workspace(sqlite_engine)
    incoming = lago({"billable_metric": {"name": "SMS", "code": "sms", "aggregation_type": "count_agg"}})
    with pytest.raises(WorkspaceError, match=r"merged with the workspace already here, plans\[0\]\.quotas\[0\]\.metric"):
        import_workspace(sqlite_engine, incoming, replace=False)
    assert export_workspace(sqlite_engine) == before
    import_workspace(sqlite_engine, incoming, replace=True)  # replacing is fine
    assert export_workspace(sqlite_engine)["plans"] == []
