"""Code snippets that send a metric's events to the workbench's own API (`POST /api/v1/events`).

Generated from the metric definition: its event name and an example of every property it
reads (value property, distinct by, a filter key with an allowed value, group-by labels), with
the server's real base URL and API key, in cURL, Python (requests) and JavaScript (fetch).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from metering.models import Aggregation, MetricBase

LANGUAGES = ("curl", "python", "javascript")
_EXAMPLE_VALUES: dict[str, Any] = {
    "tokens": 1250, "duration_ms": 842.5, "gb": 12.375, "user_id": "user_42", "model": "gpt-4o",
    "region": "us-east", "endpoint": "/v1/search", "method": "GET", "status": 200, "plan": "pro",
}


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    target.setdefault(parts[-1], value)


def example_properties(metric: MetricBase, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """An example value for every property the metric reads, nested along dot paths."""
    props: dict[str, Any] = {}
    leaf = lambda p: p.split(".")[-1]  # noqa: E731
    if metric.aggregation in (Aggregation.sum, Aggregation.max, Aggregation.min, Aggregation.latest) and metric.value_property:
        _set_path(props, metric.value_property, _EXAMPLE_VALUES.get(leaf(metric.value_property), 42))
    if metric.aggregation == Aggregation.unique_count and metric.distinct_by:
        _set_path(props, metric.distinct_by, _EXAMPLE_VALUES.get(leaf(metric.distinct_by), "id_123"))
    for key, values in metric.filters.items():
        if values:
            first: Any = values[0]
            _set_path(props, key, _number_or_text(first))
    for path in metric.group_by:
        _set_path(props, path, _EXAMPLE_VALUES.get(leaf(path), "example"))
    for path, value in (overrides or {}).items():
        _set_path(props, path, value)
    return props


def _number_or_text(text: str) -> Any:
    try:
        return int(text) if text.lstrip("-").isdigit() else text
    except ValueError:
        return text


def example_event(metric: MetricBase, *, customer_id: str = "cus_001", when: datetime | None = None) -> dict[str, Any]:
    """The event the metric expects, as the API and import files accept it."""
    when = when or datetime.now(timezone.utc).replace(microsecond=0)
    return {
        "event_name": metric.event_name,
        "customer_id": customer_id,
        "timestamp": when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "properties": example_properties(metric),
    }


def snippets(metric: MetricBase, *, base_url: str, api_key: str, event: dict[str, Any] | None = None) -> dict[str, str]:
    """cURL, Python and JavaScript code that sends `event` (default: the example event)."""
    event = event or example_event(metric)
    url = base_url.rstrip("/") + "/api/v1/events"
    body = json.dumps(event, indent=2)
    body_sh = body.replace("'", "'\\''")
    py_event = json.dumps(event, indent=4).replace("true", "True").replace("false", "False").replace("null", "None")
    return {
        "curl": (
            f"curl -sS -X POST '{url}' \\\n"
            f"  -H 'Authorization: Bearer {api_key}' \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            f"  -d '{body_sh}'\n"
        ),
        "python": (
            "import requests\n\n"
            f"event = {py_event}\n\n"
            "response = requests.post(\n"
            f"    {url!r},\n"
            f"    headers={{\"Authorization\": \"Bearer {api_key}\"}},\n"
            "    json=event,\n"
            "    timeout=10,\n"
            ")\n"
            "response.raise_for_status()\n"
            "print(response.json())\n"
        ),
        "javascript": (
            f"const event = {body};\n\n"
            f"const response = await fetch({json.dumps(url)}, {{\n"
            "  method: \"POST\",\n"
            "  headers: {\n"
            f"    \"Authorization\": \"Bearer {api_key}\",\n"
            "    \"Content-Type\": \"application/json\",\n"
            "  },\n"
            "  body: JSON.stringify(event),\n"
            "});\n"
            "if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);\n"
            "console.log(await response.json());\n"
        ),
    }
