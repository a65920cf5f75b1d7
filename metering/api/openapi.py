"""The OpenAPI 3.1 document of every endpoint."""

from __future__ import annotations


from typing import Any


from metering import ingest
from metering.api import quota_openapi
from metering.api.limits import (
    API_VERSION,
    MAX_BATCH,
    MAX_BODY_BYTES,
    MAX_FUTURE_S,
    PREFIX,
)


# --------------------------------------------------------------------------- OpenAPI


def _error_response(description: str, example: tuple[str, str] | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Error"}}
    if example:
        content["example"] = {"error": example[0], "detail": example[1]}
    return {"description": description, "content": {"application/json": content}}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every endpoint, as the code above answers them."""
    nullable_str = {"type": ["string", "null"]}
    event = {
        "type": "object",
        "description": "A usage event (contract §1). Unknown fields are rejected: custom values go under properties.",
        "required": ["event_name", "customer_id", "timestamp"],
        "additionalProperties": False,
        "properties": {
            # Kept exactly as sent: no trimming, so the patterns are the rules themselves.
            "event_name": {"type": "string", "pattern": r"^[A-Za-z0-9_.:\-]{1,100}$", "example": "llm.tokens"},
            "customer_id": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^\\x00]*$", "example": "cus_001"},
            "timestamp": {
                "description": f"ISO 8601 (no offset = UTC; a bare date is midnight UTC) or Unix epoch seconds, within "
                               f"{ingest.TS_RANGE_TEXT} and at most {MAX_FUTURE_S // 60} minutes after the server's clock "
                               "(later events are refused: import them from a file).",
                "oneOf": [{"type": "string", "example": "2026-10-03T12:00:00Z"}, {"type": "number", "example": 1791028800}],
            },
            "idempotency_key": {"type": ["string", "null"], "maxLength": 255, "pattern": "^[^\\x00]*$",
                                "description": "At most 255 characters, unique per workspace; without it the key is a hash of the event's content."},
            "properties": {"type": ["object", "null"], "additionalProperties": True, "example": {"tokens": 1250, "model": "gpt-4o"},
                           "description": "JSON object, nested allowed; null or absent = {}"},
        },
    }
    # A CloudEvent as this API reads it (contract §9): anything this schema refuses, the API
    # refuses too (422), so a fuzzer's invalid data is always rejected.
    text_attr = {"type": "string", "pattern": r"\S"}
    cloud_event = {
        "type": "object",
        "description": "A CloudEvents 1.0 event (OpenMeter's format): type → event_name, subject → customer_id, "
                       "time → timestamp (absent: the time of receipt), id → idempotency_key, data → properties. "
                       "Extension attributes are rejected (put custom values under data).",
        "required": ["specversion", "id", "source", "type", "subject"],
        "additionalProperties": False,
        "properties": {
            "specversion": {"const": "1.0"},
            "id": text_attr,
            "source": text_attr,
            "type": {**text_attr, "example": "llm.tokens"},
            "subject": {**text_attr, "example": "cus_001"},
            "time": {"type": ["string", "null"], "example": "2026-10-03T12:00:00Z"},
            "datacontenttype": {"type": ["string", "null"]},
            "dataschema": {"type": ["string", "null"]},
            "data": {"type": ["object", "null"], "additionalProperties": True, "example": {"tokens": 1250}},
        },
    }
    auth_error = _error_response("No API key, or not the workspace's key", ("unauthorized", "invalid API key"))
    bad_params = _error_response("Parameters that cannot be used", ("invalid_parameter", "metric is required"))
    not_found = _error_response("No such metric", ("not_found", "no metric with code 'x'"))
    metric = {
        "type": "object",
        "required": ["code", "name", "unit", "metric_type", "event_name", "aggregation", "filters", "group_by", "created_at", "updated_at"],
        "properties": {
            "code": {"type": "string"},
            "name": {"type": "string"},
            "description": nullable_str,
            "unit": {"type": "string"},
            "metric_type": {"type": "string", "enum": ["limit_metered", "limit_recurring", "charge_metered", "charge_recurring"]},
            "event_name": {"type": "string"},
            "aggregation": {"type": "string", "enum": ["count", "sum", "max", "min", "unique_count", "latest"]},
            "value_property": nullable_str,
            "distinct_by": nullable_str,
            "filters": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            "group_by": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    }
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Pricing workbench API",
            "version": API_VERSION,
            "description": (
                "Send usage events and read metrics and usage. Every endpoint except health and this document "
                "needs the workspace API key: `Authorization: Bearer <key>` (Developers page). Errors are JSON "
                '`{"error": <code>, "detail": <sentence>}`.'
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The workspace API key (mtr_…)"}},
            "schemas": {
                "Event": event,
                "CloudEvent": cloud_event,
                "CloudEventBatch": {
                    "type": "array",
                    "maxItems": MAX_BATCH,
                    "items": {},
                    "description": f"Up to {MAX_BATCH:,} CloudEvents, stored in one transaction; each item is checked like a "
                                   "CloudEvent, bad items are reported in errors by index and the others are stored.",
                },
                "EventBatch": {
                    "type": "object",
                    "required": ["events"],
                    "additionalProperties": False,
                    "properties": {"events": {"type": "array", "maxItems": MAX_BATCH, "items": {}}},
                    "description": f"Up to {MAX_BATCH:,} events, stored in one transaction. Each item is checked like an Event; "
                                   "bad items are reported in errors and the others are stored.",
                },
                "IngestResult": {
                    "type": "object",
                    "required": ["accepted", "duplicates", "rejected", "errors"],
                    "additionalProperties": False,
                    "properties": {
                        "accepted": {"type": "integer", "minimum": 0, "description": "events stored now"},
                        "duplicates": {"type": "integer", "minimum": 0, "description": "events whose key was already stored (skipped)"},
                        "rejected": {"type": "integer", "minimum": 0, "description": "events that break a rule (see errors)"},
                        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/EventError"}},
                    },
                },
                "EventError": {
                    "type": "object",
                    "required": ["index", "field", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "index": {"type": "integer", "minimum": 0, "description": "position in events (0 for a single event)"},
                        "field": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {
                        "error": {"type": "string", "description": "a short code: unauthorized, not_found, method_not_allowed, "
                                  "body_too_large, invalid_json, invalid_shape, too_many_events, invalid_event, quota_exceeded, invalid_parameter"},
                        "detail": {"type": "string", "description": "what was wrong, for a person"},
                        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/EventError"},
                                   "description": "for invalid_event: the event's problems"},
                    },
                },
                "Metric": metric,
                "Usage": {
                    "type": "object",
                    "required": ["metric", "value", "events", "skipped", "groups", "from", "to", "customer_id"],
                    "properties": {
                        "metric": {"type": "string"},
                        "value": {"type": "string", "description": "exact decimal, as a string", "example": "52.5"},
                        "events": {"type": "integer", "minimum": 0, "description": "matching events, skipped ones included"},
                        "skipped": {"type": "integer", "minimum": 0, "description": "events left out of the value (missing or not numeric)"},
                        "groups": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["group", "value"],
                                "properties": {
                                    "group": {"type": "object", "additionalProperties": nullable_str},
                                    "value": {"type": "string"},
                                },
                            },
                        },
                        "from": {"type": ["string", "null"], "description": "the window's start (UTC), null = from the first event"},
                        "to": {"type": ["string", "null"], "description": "the window's end, excluded (UTC), null = no end"},
                        "customer_id": {"type": ["array", "null"], "items": {"type": "string"}},
                    },
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            f"{PREFIX}/events": {
                "post": {
                    "operationId": "sendEvents",
                    "summary": f"Send one event, or a batch of up to {MAX_BATCH:,} (also as CloudEvents)",
                    "description": f"Body limit {MAX_BODY_BYTES:,} bytes. Idempotent: a repeated key counts as a duplicate.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"oneOf": [
                                {"$ref": "#/components/schemas/Event"}, {"$ref": "#/components/schemas/EventBatch"},
                            ]}},
                            "application/cloudevents+json": {"schema": {"$ref": "#/components/schemas/CloudEvent"}},
                            "application/cloudevents-batch+json": {"schema": {"$ref": "#/components/schemas/CloudEventBatch"}},
                        },
                    },
                    "responses": {
                        "200": {"description": "Stored (counts and the rejected events of a batch)",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResult"}}}},
                        "400": _error_response("A Content-Length header that is not a number", ("bad_request", "Content-Length is not a number")),
                        "401": auth_error,
                        "413": _error_response(f"Body over {MAX_BODY_BYTES:,} bytes", ("body_too_large", "the body is over 1,048,576 bytes")),
                        "422": _error_response("Not JSON, not an event or a batch, more than 1,000 events, or a single event that breaks a rule "
                                               "(quota_exceeded: a hard limit, with the counts and errors of a batch answer)",
                                               ("invalid_event", "timestamp: timestamp is required")),
                    },
                }
            },
            f"{PREFIX}/metrics": {
                "get": {
                    "operationId": "listMetrics",
                    "summary": "Every billable metric",
                    "responses": {
                        "200": {"description": "The metrics, by name",
                                "content": {"application/json": {"schema": {
                                    "type": "object", "required": ["metrics"],
                                    "properties": {"metrics": {"type": "array", "items": {"$ref": "#/components/schemas/Metric"}}},
                                }}}},
                        "401": auth_error,
                    },
                }
            },
            f"{PREFIX}/metrics/{{code}}": {
                "get": {
                    "operationId": "getMetric",
                    "summary": "One billable metric",
                    "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "The metric", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Metric"}}}},
                        "401": auth_error,
                        "404": not_found,
                    },
                }
            },
            f"{PREFIX}/usage": {
                "get": {
                    "operationId": "getUsage",
                    "summary": "A metric's aggregate over [from, to), with its groups",
                    "parameters": [
                        {"name": "metric", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1},
                         "description": "metric code, exactly (404 when no metric has it)"},
                        {"name": "customer_id", "in": "query", "required": False, "style": "form", "explode": True,
                         "schema": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255}},
                         "description": "repeat for several customers; none = all; exactly as in the events"},
                        {"name": "from", "in": "query", "required": False, "schema": {"type": "string", "minLength": 1},
                         "description": f"ISO 8601 (no offset = UTC) or epoch seconds, within {ingest.TS_RANGE_TEXT}; included "
                                        "(422 for a time that cannot be read, or from ≥ to)"},
                        {"name": "to", "in": "query", "required": False, "schema": {"type": "string", "minLength": 1},
                         "description": f"ISO 8601 (no offset = UTC) or epoch seconds, within {ingest.TS_RANGE_TEXT}; excluded"},
                    ],
                    "responses": {
                        "200": {"description": "The usage", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Usage"}}}},
                        "401": auth_error,
                        "404": not_found,
                        "422": bad_params,
                    },
                }
            },
            f"{PREFIX}/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness and store check (no key needed)",
                    "security": [],
                    "responses": {
                        "200": {"description": "Up", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["status"],
                            "properties": {"status": {"const": "ok"}, "version": {"type": "string"}}}}}},
                        "503": {"description": "The store cannot be reached", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["status", "detail"],
                            "properties": {"status": {"const": "unavailable"}, "detail": {"type": "string"}}}}}},
                    },
                }
            },
            f"{PREFIX}/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document (no key needed)",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
        },
    }
    # Live quotas (contract §8): the entitlement check and the alert log.
    document["components"]["schemas"].update(quota_openapi.schemas())  # type: ignore[index]
    document["paths"].update(quota_openapi.paths(auth_error, _error_response))  # type: ignore[union-attr]
    return document
