"""The OpenAPI pieces of the live-quota endpoints (merged into openapi_document)."""

from __future__ import annotations

from typing import Any

from metering.api.limits import PREFIX

DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "exact decimal, as a string"}
NULLABLE_DECIMAL = {"type": ["string", "null"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
PERIOD = {
    "type": "object", "required": ["start", "end"], "additionalProperties": False,
    "properties": {"start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time",
                   "description": "excluded"}},
}


def schemas() -> dict[str, Any]:
    return {
        "Entitlement": {
            "type": "object",
            "description": "Contract §8: the customer's quota on a limit metric in the current billing period.",
            "required": ["customer_id", "metric", "plan", "metric_type", "period", "limit", "carryover", "available",
                         "used", "remaining", "overage", "has_access", "fits"],
            "additionalProperties": False,
            "properties": {
                "customer_id": {"type": "string"},
                "metric": {"type": "string"},
                "plan": {"type": "string"},
                "metric_type": {"type": "string", "enum": ["limit_metered", "limit_recurring"]},
                "period": PERIOD,
                "limit": DECIMAL,
                "carryover": {**NULLABLE_DECIMAL, "description": "limit_recurring: carried into this period; else null"},
                "available": {**DECIMAL, "description": "limit + carryover"},
                "used": DECIMAL,
                "remaining": {**DECIMAL, "description": "max(available − used, 0)"},
                "overage": {**NULLABLE_DECIMAL, "description": "limit_recurring: max(used − available, 0); else null"},
                "has_access": {"type": "boolean", "description": "limit_metered: remaining > 0; limit_recurring: true"},
                "fits": {"type": "boolean", "description": "whether `quantity` more units would be accepted now"},
            },
        },
        "Alert": {
            "type": "object",
            "required": ["id", "type", "customer_id", "metric", "plan", "metric_type", "threshold", "period", "used",
                         "available", "limit", "created_at", "delivery", "attempts", "last_error", "delivered_at"],
            "properties": {
                "id": {"type": "integer"},
                "type": {"const": "quota.threshold_reached"},
                "customer_id": {"type": "string"},
                "metric": {"type": "string"},
                "plan": {"type": "string"},
                "metric_type": {"type": "string", "enum": ["limit_metered", "limit_recurring"]},
                "threshold": {**DECIMAL, "description": "percent of available"},
                "period": PERIOD,
                "used": DECIMAL,
                "available": DECIMAL,
                "limit": DECIMAL,
                "created_at": {"type": "string", "format": "date-time"},
                "delivery": {"type": "string", "enum": ["none", "pending", "delivered", "failed"],
                             "description": "webhook delivery (none: no webhook set when it was recorded)"},
                "attempts": {"type": "integer", "minimum": 0},
                "last_error": {"type": ["string", "null"]},
                "delivered_at": {"type": ["string", "null"], "format": "date-time"},
            },
        },
    }


def paths(auth_error: dict[str, Any], error: Any) -> dict[str, Any]:
    bad = error("A quantity or filter that cannot be used", ("invalid_parameter", "quantity: 'x' is not a number of units"))
    missing = error("No subscription whose plan has a quota on that metric (or it has not started)",
                    ("not_found", "customer 'c9' has no subscription"))
    return {
        f"{PREFIX}/entitlements/{{customer_id}}/{{metric}}": {
            "get": {
                "operationId": "getEntitlement",
                "summary": "May this customer use (quantity more) units of a limit metric now?",
                "parameters": [
                    {"name": "customer_id", "in": "path", "required": True, "example": "cus_001",
                     "schema": {"type": "string", "minLength": 1, "maxLength": 255}},
                    {"name": "metric", "in": "path", "required": True, "example": "api_calls",
                     "schema": {"type": "string", "minLength": 1}},
                    {"name": "quantity", "in": "query", "required": False,
                     "schema": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "maxLength": 40, "default": "1"},
                     "description": "units to ask about (decimal ≥ 0, default 1); `fits` answers for it"},
                ],
                "responses": {
                    "200": {"description": "The entitlement",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Entitlement"}}}},
                    "401": auth_error,
                    "404": missing,
                    "422": bad,
                },
            }
        },
        f"{PREFIX}/alerts": {
            "get": {
                "operationId": "listAlerts",
                "summary": "Usage alerts recorded when API events reached a quota's alert threshold (newest first)",
                "parameters": [
                    {"name": "customer_id", "in": "query", "required": False,
                     "schema": {"type": "string", "minLength": 1, "maxLength": 255}},
                    {"name": "metric", "in": "query", "required": False, "schema": {"type": "string", "minLength": 1, "maxLength": 64}},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1000}},
                ],
                "responses": {
                    "200": {"description": "The alerts", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["alerts"],
                        "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}}}}}},
                    "401": auth_error,
                    "422": bad,
                },
            }
        },
    }
