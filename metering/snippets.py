"""Code snippets that send a metric's events to the workbench's own API (`POST /api/v1/events`).

Generated from the metric definition: its event name and an example of every property it
reads (value property, distinct by, each filter key with an allowed value, group-by labels),
with the server's real base URL, in cURL (bash), Python (requests) and JavaScript (fetch; Node
18+ as an ES module, for the top-level await: `node --input-type=module` or a `.mjs` file).

The key: given as `api_key`, it is written into the code; with `api_key=None` the code reads
the `METERING_API_KEY` environment variable instead (so a snippet can be shared safely).
The timestamp: an explicit `event` is sent with its own; without one, the example event is sent
with the time the code runs. The idempotency key: every run sends a new one, a random UUID made
by the code (as Lago's `transaction_id` and Stripe's `identifier`), so two identical events in
the same second are two events; a retry of one request should resend the same key.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from metering.models import Aggregation, MetricBase
from metering.values import decimal_str, lookup, to_decimal

LANGUAGES = ("curl", "python", "javascript")
ENV_VAR = "METERING_API_KEY"
_EXAMPLE_VALUES: dict[str, Any] = {
    "tokens": 1250, "duration_ms": 842.5, "gb": 12.375, "user_id": "user_42", "model": "gpt-4o",
    "region": "us-east", "endpoint": "/v1/search", "method": "GET", "status": 200, "plan": "pro",
}
_NOW = "\x00now\x00"  # stands for "the time the snippet runs" until rendered per language
_KEY = "\x00key\x00"  # stands for "a new UUID each run" until rendered per language


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
    # Filters first: an event must carry an allowed value to count at all.
    for key, values in metric.filters.items():
        if values:
            _set_path(props, key, _number_or_text(str(values[0])))
    if metric.aggregation in (Aggregation.sum, Aggregation.max, Aggregation.min, Aggregation.latest) and metric.value_property:
        value = _EXAMPLE_VALUES.get(leaf(metric.value_property), 42)
        _set_path(props, metric.value_property, value if isinstance(value, (int, float)) else 42)
    if metric.aggregation == Aggregation.unique_count and metric.distinct_by:
        _set_path(props, metric.distinct_by, _EXAMPLE_VALUES.get(leaf(metric.distinct_by), "id_123"))
    for path in metric.group_by:
        _set_path(props, path, _EXAMPLE_VALUES.get(leaf(path), "example"))
    for path, value in (overrides or {}).items():
        _set_path(props, path, value)
    return props


def _number_or_text(text: str) -> Any:
    """A filter's allowed value as the event would carry it: integers as JSON numbers (the
    filter compares text forms, so 3 matches "3"), anything else as text."""
    body = text[1:] if text.startswith("-") else text
    if body.isascii() and body.isdigit() and (body == "0" or not body.startswith("0")) and text != "-0":
        return int(text)
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


def _js(value: Any, indent: int = 0) -> str:
    """JSON text (also a JavaScript literal), two-space indented, characters kept as they are."""
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + " " * indent)


def _py(value: Any, indent: int = 0) -> str:
    """A Python literal for a JSON value: dicts, lists, strings, numbers, True/False/None."""
    pad, inner = " " * indent, " " * (indent + 4)
    if value is None:
        return "None"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, (int, float, str)):
        return json.dumps(value, ensure_ascii=False)  # a JSON string or number is a Python literal too
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_py(v, indent + 4)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        return "[\n" + "\n".join(f"{inner}{_py(v, indent + 4)}," for v in value) + f"\n{pad}]"
    return json.dumps(str(value), ensure_ascii=False)


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def snippets(metric: MetricBase, *, base_url: str, api_key: str | None, event: dict[str, Any] | None = None) -> dict[str, str]:
    """cURL, Python and JavaScript code that sends `event` (default: the example event, stamped
    with the time the code runs). `api_key=None` reads METERING_API_KEY from the environment."""
    if event is None:
        event = {**example_event(metric), "timestamp": _NOW}
    if not event.get("idempotency_key"):  # a new key per run: identical events are not duplicates
        event = {k: v for k, v in event.items() if k != "properties"} | {"idempotency_key": _KEY} | (
            {"properties": event["properties"]} if "properties" in event else {})
    url = base_url.rstrip("/") + "/api/v1/events"
    now_json = json.dumps(_NOW)
    key_json = json.dumps(_KEY)

    # cURL: the JSON body in single quotes; the run time and a new UUID spliced in with $(…).
    body = (_shell_quote(_js(event))
            .replace(now_json, "\"'\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"'\"")
            .replace(key_json, "\"'\"$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen)\"'\""))
    auth_sh = _shell_quote(f"Authorization: Bearer {api_key}") if api_key is not None else f'"Authorization: Bearer ${ENV_VAR}"'
    curl = (
        f"curl -sS --fail-with-body -X POST {_shell_quote(url)} \\\n"
        f"  -H {auth_sh} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {body}\n"
    )

    # Python (requests)
    py_imports = ["import os"] if api_key is None else []  # standard library first, as isort does
    py_event = _py(event)
    if key_json in py_event:
        py_imports.append("import uuid")
        py_event = py_event.replace(key_json, "str(uuid.uuid4())")
    if now_json in py_event:
        py_imports.append("from datetime import datetime, timezone")
        py_event = py_event.replace(now_json, 'datetime.now(timezone.utc).isoformat(timespec="seconds")')
    py_auth = f'"Bearer " + os.environ["{ENV_VAR}"]' if api_key is None else json.dumps(f"Bearer {api_key}")
    python = (
        ("\n".join(py_imports) + "\n\n" if py_imports else "")
        + "import requests\n\n"
        f"event = {py_event}\n\n"
        "response = requests.post(\n"
        f"    {json.dumps(url)},\n"
        f"    headers={{\"Authorization\": {py_auth}}},\n"
        "    json=event,\n"
        "    timeout=10,\n"
        ")\n"
        "if not response.ok:\n"
        "    raise SystemExit(f\"HTTP {response.status_code}: {response.text}\")\n"
        "print(response.json())\n"
    )

    # JavaScript (fetch, Node 18+ as an ES module)
    js_event = _js(event).replace(now_json, "new Date().toISOString()").replace(key_json, "randomUUID()")
    js_auth = f"`Bearer ${{process.env.{ENV_VAR}}}`" if api_key is None else json.dumps(f"Bearer {api_key}")
    javascript = (
        ('import { randomUUID } from "node:crypto";\n\n' if "randomUUID()" in js_event else "")
        + f"const event = {js_event};\n\n"
        f"const response = await fetch({json.dumps(url)}, {{\n"
        "  method: \"POST\",\n"
        "  headers: {\n"
        f"    \"Authorization\": {js_auth},\n"
        "    \"Content-Type\": \"application/json\",\n"
        "  },\n"
        "  body: JSON.stringify(event),\n"
        "});\n"
        "if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);\n"
        "console.log(JSON.stringify(await response.json()));\n"
    )
    return {"curl": curl, "python": python, "javascript": javascript}


# =========================================================================== entitlements and alerts

LIMIT_TYPES = ("limit_metered", "limit_recurring")


def is_limit(metric: MetricBase) -> bool:
    return metric.metric_type.value in LIMIT_TYPES


def event_quantity(metric: MetricBase, event: dict[str, Any] | None = None) -> Decimal:
    """How many units of the metric one event uses, the `quantity` an entitlement check asks
    about before sending it: 1 for count and unique_count (one call, one new value at most),
    the value property's number for sum, max and latest (1 when the event has none)."""
    event = event if event is not None else example_event(metric)
    if metric.aggregation in (Aggregation.sum, Aggregation.max, Aggregation.latest) and metric.value_property:
        value = to_decimal(lookup(event.get("properties") or {}, metric.value_property))
        if value is not None and value >= 0:
            return value
    return Decimal(1)


def entitlement_url(base_url: str, customer_id: str, metric_code: str) -> str:
    """`GET /api/v1/entitlements/{customer_id}/{metric}`; the customer id is percent-encoded
    (ids may hold `/`, spaces or non-ASCII characters)."""
    return f"{base_url.rstrip('/')}/api/v1/entitlements/{quote(customer_id, safe='')}/{quote(metric_code, safe='')}"


def _auth_parts(api_key: str | None) -> tuple[str, str, str, list[str]]:
    """(curl header, Python header value, JavaScript header value, Python imports)."""
    curl = _shell_quote(f"Authorization: Bearer {api_key}") if api_key is not None else f'"Authorization: Bearer ${ENV_VAR}"'
    py = f'"Bearer " + os.environ["{ENV_VAR}"]' if api_key is None else json.dumps(f"Bearer {api_key}")
    js = f"`Bearer ${{process.env.{ENV_VAR}}}`" if api_key is None else json.dumps(f"Bearer {api_key}")
    return curl, py, js, (["import os"] if api_key is None else [])


def _get_snippets(url: str, params: dict[str, str], api_key: str | None, *, python_tail: str, js_tail: str) -> dict[str, str]:
    """cURL, Python and JavaScript code for one authenticated GET with query parameters; the
    Python and JavaScript tails use the decoded answer (`answer`) and print it last as JSON
    (Python: a dict, as the events snippet prints)."""
    curl_auth, py_auth, js_auth, py_imports = _auth_parts(api_key)
    curl = f"curl -sS --fail-with-body -G {_shell_quote(url)} \\\n  -H {curl_auth}"
    for name, value in params.items():
        curl += f" \\\n  --data-urlencode {_shell_quote(f'{name}={value}')}"
    curl += "\n"
    python = (
        ("\n".join(py_imports) + "\n\n" if py_imports else "")
        + "import requests\n\n"
        "response = requests.get(\n"
        f"    {json.dumps(url)},\n"
        + (f"    params={_py(params, 4)},\n" if params else "")
        + f"    headers={{\"Authorization\": {py_auth}}},\n"
        "    timeout=10,\n"
        ")\n"
        "if not response.ok:\n"
        "    raise SystemExit(f\"HTTP {response.status_code}: {response.text}\")\n"
        "answer = response.json()\n"
        + python_tail
        + "print(answer)\n"
    )
    query = ("?" + urlencode(params)) if params else ""
    javascript = (
        f"const response = await fetch({json.dumps(url + query)}, {{\n"
        f"  headers: {{ \"Authorization\": {js_auth} }},\n"
        "});\n"
        "if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);\n"
        "const answer = await response.json();\n"
        + js_tail
        + "console.log(JSON.stringify(answer));\n"
    )
    return {"curl": curl, "python": python, "javascript": javascript}


def entitlement_snippets(metric: MetricBase, *, base_url: str, api_key: str | None, customer_id: str = "cus_001",
                         quantity: Decimal | int | str | None = None) -> dict[str, str]:
    """cURL, Python and JavaScript code that asks the workbench's API whether `customer_id` may
    use `quantity` more units of the limit metric now (`GET /api/v1/entitlements/…?quantity=N`,
    contract §8). Python and JavaScript print one line saying whether it fits (with what is left
    until the period's end), then the answer itself; cURL prints the answer."""
    amount = decimal_str(Decimal(str(event_quantity(metric) if quantity is None else quantity)))
    python_tail = (
        "left = f\"{answer['remaining']} of {answer['available']} left until {answer['period']['end']}\"\n"
        f"print((\"fits: \" if answer[\"fits\"] else \"does not fit: \") + {json.dumps(amount + ' more, ')} + left)\n"
    )
    js_tail = (
        "const left = `${answer.remaining} of ${answer.available} left until ${answer.period.end}`;\n"
        f"console.log((answer.fits ? \"fits: \" : \"does not fit: \") + {json.dumps(amount + ' more, ')} + left);\n"
    )
    return _get_snippets(entitlement_url(base_url, customer_id, metric.code), {"quantity": amount}, api_key,
                         python_tail=python_tail, js_tail=js_tail)


def alerts_snippets(*, base_url: str, api_key: str | None, params: dict[str, str] | None = None) -> dict[str, str]:
    """cURL, Python and JavaScript code that lists the recorded usage alerts (`GET /api/v1/alerts`)."""
    python_tail = "print(f\"{len(answer['alerts'])} alert(s)\")\n"
    js_tail = "console.log(`${answer.alerts.length} alert(s)`);\n"
    return _get_snippets(f"{base_url.rstrip('/')}/api/v1/alerts", dict(params or {}), api_key,
                         python_tail=python_tail, js_tail=js_tail)
