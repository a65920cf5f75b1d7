"""JSON Schemas of the peers' create payloads, written from their documented fields (not from
our exporters), so a misspelt field, a wrong type or a wrong unit fails the tests.

Sources (the same ones the exporters cite):
- Lago: getlago/lago-openapi `src/schemas/BillableMetricCreateInput.yaml`,
  `BillableMetricBaseInput.yaml`, `BillableMetricFilterInput.yaml`, `AddOnCreateInput.yaml`,
  `AddOnBaseInput.yaml`, `PlanCreateInput.yaml`, `ChargeProperties.yaml`,
  `ChargeObjectProperties.yaml`, `ChargeFilterInput.yaml`, `EventInput.yaml`,
  `EventInputObject.yaml`; lago-api `app/models/billable_metric.rb` (field_name required except
  for count_agg).
- OpenMeter: openmeterio/openmeter `api/openapi.yaml` (`MeterCreate`, `FeatureCreateInputs`,
  `PlanCreate`, `PlanPhase`, `RateCardFlatFee`, `RateCardUsageBased`, `RateCardMeteredEntitlement`,
  `FlatPriceWithPaymentTerm`, `UnitPriceWithCommitments`, `TieredPriceWithCommitments`,
  `PriceTier`, `PackagePriceWithCommitments`, `DynamicPriceWithCommitments`, `Discounts`,
  `DiscountUsage`, `Numeric`, `Metadata`, `Event`).
- Stripe: stripe/stripe-python `stripe/params/billing/_meter_create_params.py`,
  `stripe/params/_price_create_params.py`.
- Orb: orbcorp/orb-python `src/orb/types/item_create_params.py`, `metric_create_params.py`,
  `plan_create_params.py`, `shared_params/new_plan_{unit,tiered,bulk,package}_price.py`,
  `unit_config.py`, `tiered_config.py`, `tier.py`, `bulk_config.py`, `bulk_tier.py`,
  `package_config.py`, `new_billing_cycle_configuration.py`.

Objects are closed (`additionalProperties: false`) over the documented fields, so an unknown
key is caught; the one field we add beyond a create schema is named and explained where it is
allowed.
"""

from __future__ import annotations

from typing import Any

STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
NUM = {"type": "number"}


def obj(required: list[str], properties: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False, **more}


# ----------------------------------------------------------------------------------- Lago

LAGO_DECIMAL = {"type": "string", "pattern": r"^[0-9]+.?[0-9]*$"}  # ChargeProperties: "^[0-9]+.?[0-9]*$"
LAGO_CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$"}
_LAGO_RANGE = obj(["from_value", "to_value", "flat_amount", "per_unit_amount"], {
    "from_value": INT, "to_value": {"type": ["integer", "null"]}, "flat_amount": LAGO_DECIMAL,
    "per_unit_amount": LAGO_DECIMAL})
LAGO_CHARGE_PROPERTIES = obj([], {
    "grouped_by": {"type": "array", "items": STR}, "pricing_group_keys": {"type": "array", "items": STR},
    "graduated_ranges": {"type": "array", "items": _LAGO_RANGE},
    "volume_ranges": {"type": "array", "items": _LAGO_RANGE},
    "amount": LAGO_DECIMAL, "free_units": INT, "package_size": INT, "rate": LAGO_DECIMAL,
    "fixed_amount": LAGO_DECIMAL, "free_units_per_events": {"type": ["integer", "null"]},
    "free_units_per_total_aggregation": {"type": ["string", "null"], "pattern": r"^[0-9]+.?[0-9]*$"},
    "per_transaction_max_amount": NSTR, "per_transaction_min_amount": NSTR,
    "presentation_group_keys": {"type": "array", "items": obj([], {
        "value": STR, "options": obj([], {"display_in_invoice": BOOL})})},
})
LAGO_BILLABLE_METRIC = obj(["billable_metric"], {"billable_metric": obj(["name", "code", "aggregation_type"], {
    "name": STR, "code": STR, "description": NSTR, "recurring": BOOL, "expression": NSTR,
    "rounding_function": {"enum": ["ceil", "floor", "round", None]}, "rounding_precision": {"type": ["integer", "null"]},
    "field_name": NSTR,
    "aggregation_type": {"enum": ["count_agg", "sum_agg", "max_agg", "unique_count_agg", "weighted_sum_agg",
                                  "latest_agg"]},
    "weighted_interval": {"enum": ["seconds", None]},
    "filters": {"type": "array", "items": obj(["key", "values"], {"key": STR, "values": {"type": "array", "items": STR}})},
}, **{"if": {"properties": {"aggregation_type": {"not": {"const": "count_agg"}}}},
      "then": {"required": ["field_name"], "properties": {"field_name": STR}}})})
LAGO_ADD_ON = obj(["add_on"], {"add_on": obj(["name", "code", "amount_cents", "amount_currency"], {
    "name": STR, "invoice_display_name": NSTR, "code": STR, "amount_cents": INT, "amount_currency": LAGO_CURRENCY,
    "tax_codes": {"type": "array", "items": STR}})})
_LAGO_CHARGE = obj(["billable_metric_id", "charge_model"], {
    "billable_metric_id": STR,
    # Not a create field: Lago's plan objects (ChargeObject.yaml) name the metric so; Rails'
    # strong parameters (plans_controller.rb) leave it out of a create. The import reads it.
    "billable_metric_code": STR,
    "code": STR, "charge_model": {"enum": ["dynamic", "graduated", "graduated_percentage", "package", "percentage",
                                           "standard", "volume"]},
    "pay_in_advance": BOOL, "invoiceable": BOOL, "regroup_paid_fees": {"enum": [None, "invoice"]},
    "invoice_display_name": STR, "prorated": BOOL, "min_amount_cents": INT, "properties": LAGO_CHARGE_PROPERTIES,
    "filters": {"type": "array", "items": obj(["properties", "values"], {
        "invoice_display_name": NSTR, "properties": LAGO_CHARGE_PROPERTIES,
        "values": {"type": "object", "additionalProperties": {"type": "array", "items": STR}}})},
    "tax_codes": {"type": "array", "items": STR},
})
_LAGO_FIXED_CHARGE = obj(["add_on_id", "charge_model"], {
    "add_on_id": STR, "code": STR, "invoice_display_name": STR, "units": NUM,
    "charge_model": {"enum": ["standard", "graduated", "volume"]}, "pay_in_advance": BOOL, "prorated": BOOL,
    "properties": obj([], {"amount": LAGO_DECIMAL, "graduated_ranges": {"type": "array"},
                           "volume_ranges": {"type": "array"}}),
    "tax_codes": {"type": "array", "items": STR},
})
LAGO_PLAN = obj(["plan"], {"plan": obj(["name", "code", "interval", "amount_cents", "amount_currency", "pay_in_advance"], {
    "name": STR, "invoice_display_name": NSTR, "code": STR,
    "interval": {"enum": ["weekly", "monthly", "quarterly", "semiannual", "yearly"]}, "description": NSTR,
    "amount_cents": INT, "amount_currency": LAGO_CURRENCY, "trial_period": {"type": ["number", "null"]},
    "pay_in_advance": BOOL, "bill_charges_monthly": {"type": ["boolean", "null"]},
    "bill_fixed_charges_monthly": {"type": ["boolean", "null"]}, "tax_codes": {"type": "array", "items": STR},
    "minimum_commitment": {"type": "object"}, "charges": {"type": "array", "items": _LAGO_CHARGE},
    "fixed_charges": {"type": "array", "items": _LAGO_FIXED_CHARGE}, "usage_thresholds": {"type": "array"},
    "metadata": {"type": "object"},
})})
# The spec writes `oneOf` integer / number, which no integer passes in JSON Schema (it is both);
# `anyOf` says what the spec means.
LAGO_EVENT = obj(["event"], {"event": obj(["transaction_id", "external_subscription_id", "code"], {
    "transaction_id": STR, "external_subscription_id": STR, "code": STR,
    "timestamp": {"anyOf": [INT, STR, NUM]},  # documented integer | string, with decimals for sub-seconds
    "precise_total_amount_cents": NSTR,
    "properties": {"type": ["object", "null"], "additionalProperties": {"anyOf": [STR, INT, NUM]}},
})})

# ------------------------------------------------------------------------------ OpenMeter

OM_KEY = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[a-z0-9]+(?:_[a-z0-9]+)*$"}
OM_NUMERIC = {"type": "string", "pattern": r"^\-?[0-9]+(\.[0-9]+)?$"}
OM_METADATA = {"type": ["object", "null"], "additionalProperties": STR}
OM_NAME = {"type": "string", "minLength": 1, "maxLength": 256}
OM_DESCRIPTION = {"type": "string", "maxLength": 1024}
OM_DURATION = {"type": "string", "pattern": r"^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?$"}
OM_METER = obj(["slug", "aggregation", "eventType"], {
    "description": OM_DESCRIPTION, "metadata": OM_METADATA, "name": OM_NAME, "slug": OM_KEY,
    "aggregation": {"enum": ["SUM", "COUNT", "UNIQUE_COUNT", "AVG", "MIN", "MAX", "LATEST"]},
    "eventType": {"type": "string", "minLength": 1}, "eventFrom": STR,
    "valueProperty": {"type": "string", "minLength": 1, "pattern": r"^\$"},
    "groupBy": {"type": "object", "propertyNames": {"pattern": "^[A-Za-z0-9_]+$"},
                "additionalProperties": {"type": "string", "pattern": r"^\$"}},
})
_OM_FILTER = obj([], {"$eq": NSTR, "$ne": NSTR, "$in": {"type": ["array", "null"], "items": STR},
                      "$nin": {"type": ["array", "null"], "items": STR}, "$like": NSTR, "$nlike": NSTR, "$ilike": NSTR})
OM_FEATURE = obj(["key", "name"], {
    "key": OM_KEY, "name": STR, "metadata": OM_METADATA, "meterSlug": OM_KEY,
    "meterGroupByFilters": {"type": "object", "additionalProperties": STR},
    "advancedMeterGroupByFilters": {"type": "object", "additionalProperties": _OM_FILTER},
    "unitCost": {"type": "object"},
})
_OM_FLAT = obj(["type", "amount"], {"type": {"const": "flat"}, "amount": OM_NUMERIC,
                                   "paymentTerm": {"enum": ["in_advance", "in_arrears"]}})
_OM_UNIT = obj(["type", "amount"], {"type": {"const": "unit"}, "amount": OM_NUMERIC})
_OM_COMMIT = {"minimumAmount": OM_NUMERIC, "maximumAmount": OM_NUMERIC}
_OM_USAGE_PRICE = {"oneOf": [
    _OM_FLAT,
    obj(["type", "amount"], {"type": {"const": "unit"}, "amount": OM_NUMERIC, **_OM_COMMIT}),
    obj(["type", "mode", "tiers"], {"type": {"const": "tiered"}, "mode": {"enum": ["volume", "graduated"]},
                                    "tiers": {"type": "array", "minItems": 1, "items": obj(["flatPrice", "unitPrice"], {
                                        "upToAmount": OM_NUMERIC,
                                        "flatPrice": {"oneOf": [{"type": "null"}, obj(["type", "amount"], {
                                            "type": {"const": "flat"}, "amount": OM_NUMERIC})]},
                                        "unitPrice": {"oneOf": [{"type": "null"}, _OM_UNIT]}})},
                                    **_OM_COMMIT}),
    obj(["type"], {"type": {"const": "dynamic"}, "multiplier": OM_NUMERIC, **_OM_COMMIT}),
    obj(["type", "amount", "quantityPerPackage"], {"type": {"const": "package"}, "amount": OM_NUMERIC,
                                                   "quantityPerPackage": OM_NUMERIC, **_OM_COMMIT}),
    {"type": "null"},
]}
_OM_DISCOUNTS = obj([], {"percentage": {"type": "object"}, "usage": obj(["quantity"], {"quantity": OM_NUMERIC})})
_OM_ENTITLEMENT = obj(["type"], {
    "metadata": OM_METADATA, "type": {"const": "metered"}, "isSoftLimit": BOOL,
    "issueAfterReset": {"type": "number", "minimum": 0}, "issueAfterResetPriority": INT,
    "preserveOverageAtReset": BOOL, "usagePeriod": OM_DURATION})
_OM_CARD_COMMON = {"key": OM_KEY, "name": OM_NAME, "description": OM_DESCRIPTION, "metadata": OM_METADATA,
                   "featureKey": OM_KEY, "entitlementTemplate": _OM_ENTITLEMENT, "taxConfig": {"type": "object"},
                   "discounts": _OM_DISCOUNTS}
OM_RATE_CARD = {"oneOf": [
    obj(["type", "key", "name", "billingCadence", "price"], {
        "type": {"const": "flat_fee"}, **_OM_CARD_COMMON, "billingCadence": {"oneOf": [OM_DURATION, {"type": "null"}]},
        "price": {"oneOf": [_OM_FLAT, {"type": "null"}]}}),
    obj(["type", "key", "name", "billingCadence", "price"], {
        "type": {"const": "usage_based"}, **_OM_CARD_COMMON, "billingCadence": OM_DURATION, "price": _OM_USAGE_PRICE}),
]}
OM_PLAN = obj(["name", "key", "currency", "billingCadence", "phases"], {
    "name": OM_NAME, "description": OM_DESCRIPTION, "metadata": OM_METADATA, "key": OM_KEY,
    "alignment": {"type": "object"}, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "billingCadence": OM_DURATION, "proRatingConfig": {"type": "object"}, "settlementMode": STR,
    "phases": {"type": "array", "minItems": 1, "items": obj(["key", "name", "duration", "rateCards"], {
        "key": OM_KEY, "name": OM_NAME, "description": OM_DESCRIPTION, "metadata": OM_METADATA,
        "duration": {"oneOf": [OM_DURATION, {"type": "null"}]}, "rateCards": {"type": "array", "items": OM_RATE_CARD}})},
})
CLOUDEVENT = obj(["id", "source", "specversion", "type", "subject"], {
    "id": {"type": "string", "minLength": 1}, "source": {"type": "string", "minLength": 1},
    "specversion": {"type": "string", "minLength": 1}, "type": {"type": "string", "minLength": 1},
    "datacontenttype": {"enum": ["application/json", None]}, "dataschema": {"type": ["string", "null"], "minLength": 1},
    "subject": {"type": "string", "minLength": 1},
    "time": {"type": ["string", "null"], "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"},
    "data": {"type": ["object", "null"]},
})

# --------------------------------------------------------------------------------- Stripe

STRIPE_METER = obj(["default_aggregation", "display_name", "event_name"], {
    "customer_mapping": obj(["event_payload_key", "type"], {"event_payload_key": STR, "type": {"const": "by_id"}}),
    "default_aggregation": obj(["formula"], {"formula": {"enum": ["count", "last", "sum"]}}),
    "display_name": STR, "event_name": STR, "event_time_window": {"enum": ["day", "hour"]},
    "value_settings": obj(["event_payload_key"], {"event_payload_key": STR}),
})
_STRIPE_DECIMAL12 = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,12})?$"}  # "at most 12 decimal places"
_STRIPE_TIER = obj(["up_to"], {
    "flat_amount": INT, "flat_amount_decimal": {"type": "string", "pattern": "^[0-9]+$"},  # "an integer in minor units"
    "unit_amount": INT, "unit_amount_decimal": _STRIPE_DECIMAL12,
    "up_to": {"oneOf": [{"const": "inf"}, INT]},
}, **{"not": {"anyOf": [{"required": ["flat_amount", "flat_amount_decimal"]},
                        {"required": ["unit_amount", "unit_amount_decimal"]}]}})
STRIPE_PRICE = obj(["currency"], {
    "active": BOOL, "billing_scheme": {"enum": ["per_unit", "tiered"]},
    "currency": {"type": "string", "pattern": "^[a-z]{3}$"},  # "in lowercase"
    "lookup_key": {"type": "string", "maxLength": 200}, "metadata": {"type": "object", "additionalProperties": STR},
    "nickname": STR, "product": STR,
    "product_data": obj(["name"], {"active": BOOL, "id": STR, "metadata": {"type": "object"}, "name": STR,
                                   "statement_descriptor": STR, "tax_code": STR,
                                   "unit_label": {"type": "string", "maxLength": 12}}),
    "recurring": obj(["interval"], {"interval": {"enum": ["day", "month", "week", "year"]}, "interval_count": INT,
                                    "meter": STR, "trial_period_days": INT,
                                    "usage_type": {"enum": ["licensed", "metered"]}}),
    "tax_behavior": {"enum": ["exclusive", "inclusive", "unspecified"]},
    "tiers": {"type": "array", "items": _STRIPE_TIER}, "tiers_mode": {"enum": ["graduated", "volume"]},
    "transform_quantity": obj(["divide_by", "round"], {"divide_by": INT, "round": {"enum": ["down", "up"]}}),
    "unit_amount": {"type": "integer", "minimum": 0}, "unit_amount_decimal": _STRIPE_DECIMAL12,
}, **{"allOf": [
    {"not": {"required": ["unit_amount", "unit_amount_decimal"]}},  # "only one of"
    {"if": {"properties": {"billing_scheme": {"const": "tiered"}}, "required": ["billing_scheme"]},
     "then": {"required": ["tiers", "tiers_mode"], "not": {"required": ["transform_quantity"]}},
     "else": {"anyOf": [{"required": ["unit_amount"]}, {"required": ["unit_amount_decimal"]}]}},
]})

# ------------------------------------------------------------------------------------ Orb

ORB_AMOUNT = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
ORB_METADATA = {"type": ["object", "null"], "additionalProperties": NSTR}
ORB_ITEM = obj(["name"], {"name": STR, "metadata": ORB_METADATA})
ORB_METRIC = obj(["description", "item_id", "name", "sql"], {
    "description": NSTR, "item_id": STR, "name": STR, "sql": {"type": "string", "pattern": "^SELECT .+ FROM events"},
    "metadata": ORB_METADATA})
_ORB_PRICE_COMMON = {
    "cadence": {"enum": ["annual", "semi_annual", "monthly", "quarterly", "one_time", "custom"]},
    "item_id": STR, "name": STR, "billable_metric_id": NSTR, "billed_in_advance": {"type": ["boolean", "null"]},
    "billing_cycle_configuration": obj(["duration", "duration_unit"], {"duration": INT,
                                                                       "duration_unit": {"enum": ["day", "month"]}}),
    "currency": NSTR, "external_price_id": NSTR, "fixed_price_quantity": {"type": ["number", "null"]},
    "invoice_grouping_key": NSTR, "metadata": ORB_METADATA, "reference_id": NSTR,
}
_ORB_REQ = ["cadence", "item_id", "model_type", "name"]
ORB_PRICE = {"oneOf": [
    obj(_ORB_REQ + ["unit_config"], {**_ORB_PRICE_COMMON, "model_type": {"const": "unit"},
                                     "unit_config": obj(["unit_amount"], {"unit_amount": ORB_AMOUNT, "prorated": BOOL})}),
    obj(_ORB_REQ + ["tiered_config"], {**_ORB_PRICE_COMMON, "model_type": {"const": "tiered"},
                                       "tiered_config": obj(["tiers"], {"prorated": BOOL, "tiers": {
                                           "type": "array", "items": obj(["first_unit", "unit_amount"], {
                                               "first_unit": NUM, "unit_amount": ORB_AMOUNT,
                                               "last_unit": {"type": ["number", "null"]}})}})}),
    obj(_ORB_REQ + ["bulk_config"], {**_ORB_PRICE_COMMON, "model_type": {"const": "bulk"},
                                     "bulk_config": obj(["tiers"], {"tiers": {"type": "array", "items": obj(
                                         ["unit_amount"], {"unit_amount": ORB_AMOUNT,
                                                           "maximum_units": {"type": ["number", "null"]}})}})}),
    obj(_ORB_REQ + ["package_config"], {**_ORB_PRICE_COMMON, "model_type": {"const": "package"},
                                        "package_config": obj(["package_amount", "package_size"], {
                                            "package_amount": ORB_AMOUNT, "package_size": INT})}),
]}
ORB_PLAN = obj(["currency", "name", "prices"], {
    "currency": STR, "name": STR, "prices": {"type": "array", "items": obj([], {
        "allocation_price": {"type": ["object", "null"]}, "plan_phase_order": {"type": ["integer", "null"]},
        "price": ORB_PRICE})},
    "adjustments": {"type": ["array", "null"]}, "default_invoice_memo": NSTR, "description": NSTR,
    "external_plan_id": NSTR, "metadata": ORB_METADATA, "net_terms": {"type": ["integer", "null"]},
    "plan_phases": {"type": ["array", "null"]}, "status": {"enum": ["active", "draft"]},
})

SCHEMAS: dict[str, dict[str, dict[str, Any]]] = {
    "lago": {"billable_metric": LAGO_BILLABLE_METRIC, "add_on": LAGO_ADD_ON, "plan": LAGO_PLAN},
    "openmeter": {"meter": OM_METER, "feature": OM_FEATURE, "plan": OM_PLAN},
    "stripe": {"billing.meter": STRIPE_METER, "price": STRIPE_PRICE},
    "orb": {"item": ORB_ITEM, "metric": ORB_METRIC, "plan": ORB_PLAN},
}
