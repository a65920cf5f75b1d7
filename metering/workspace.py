"""The workspace file (contract §5): one JSON document with a whole pricing scenario.

`{"timezone": "UTC", "metrics": [...], "plans": [...], "subscriptions": [...]}`. A bad file
raises `WorkspaceError` whose message names the path of the bad field
(`metrics[1].value_property: sum needs a value property …`,
`plans[0].charges[1].tiers[2].up_to: …`, `subscriptions[3].plan: …`).

Parsed, a workspace holds typed objects: metrics (`MetricCreate`), plans (`plans.Plan`,
checked against the metrics) and subscriptions (`SubscriptionData`: customer_id, plan code and
the start as written, which must read with `periods.parse_subscription_start`).

`export_workspace(engine)` writes the app's store as such a document and
`import_workspace(engine, workspace)` loads one into it, so export → import → export gives the
same document (and the same invoices). Exported documents list metrics and plans by code and
subscriptions by customer id; plans leave out unset optional fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from metering import metrics as metric_crud
from metering import plan_store
from metering.metrics import InvalidMetric, validate_metric
from metering.models import MetricBase, MetricCreate
from metering.periods import parse_subscription_start
from metering.plan_store import SubscriptionData
from metering.plans import Plan, errors_of, validate_plan_against_metrics

TOP_LEVEL = ("timezone", "metrics", "plans", "subscriptions")
SUBSCRIPTION_FIELDS = ("customer_id", "plan", "start")


class WorkspaceError(ValueError):
    """The workspace document cannot be used; the message names the bad field's path."""


@dataclass
class Workspace:
    timezone: str = "UTC"
    metrics: list[MetricCreate] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    subscriptions: list[SubscriptionData] = field(default_factory=list)

    def metric(self, code: str) -> MetricCreate:
        for metric in self.metrics:
            if metric.code == code:
                return metric
        known = ", ".join(m.code for m in self.metrics) or "none"
        raise WorkspaceError(f"metric '{code}' is not in the workspace (metrics: {known})")

    def plan(self, code: str) -> Plan:
        for plan in self.plans:
            if plan.code == code:
                return plan
        known = ", ".join(sorted(p.code for p in self.plans)) or "none"
        raise WorkspaceError(f"plan '{code}' is not in the workspace (plans: {known})")

    def subscription(self, customer_id: str) -> SubscriptionData | None:
        return next((s for s in self.subscriptions if s.customer_id == customer_id), None)


def _dotted_to_path(prefix: str, dotted: str) -> str:
    """("plans[0]", "charges.1.tiers.2.up_to") → "plans[0].charges[1].tiers[2].up_to"."""
    out = prefix
    for part in dotted.split(".") if dotted else []:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def _plan(i: int, item: Any, metric_types: dict[str, str]) -> Plan:
    where = f"plans[{i}]"
    if not isinstance(item, dict):
        raise WorkspaceError(f"{where}: must be an object")
    try:
        plan = Plan.model_validate(item)
    except ValidationError as exc:
        path, message = errors_of(exc)[0]
        raise WorkspaceError(f"{_dotted_to_path(where, path)}: {message}") from None
    problems = validate_plan_against_metrics(plan, metric_types)
    if problems:
        path, message = problems[0]
        raise WorkspaceError(f"{_dotted_to_path(where, path)}: {message}")
    return plan


def _subscription(i: int, item: Any, plan_codes: set[str], tz: str) -> SubscriptionData:
    where = f"subscriptions[{i}]"
    if not isinstance(item, dict):
        raise WorkspaceError(f"{where}: must be an object with customer_id, plan and start")
    unknown = sorted(set(item) - set(SUBSCRIPTION_FIELDS))
    if unknown:
        raise WorkspaceError(f"{where}.{unknown[0]}: unknown field (expected customer_id, plan, start)")
    customer = item.get("customer_id")
    if not isinstance(customer, str) or not customer.strip():
        raise WorkspaceError(f"{where}.customer_id: is required (the customer_id of the events, as text)")
    if len(customer) > 255:
        raise WorkspaceError(f"{where}.customer_id: must be at most 255 characters")
    code = item.get("plan")
    if not isinstance(code, str) or not code.strip():
        raise WorkspaceError(f"{where}.plan: is required (the code of a plan in this workspace)")
    if code not in plan_codes:
        known = ", ".join(sorted(plan_codes)) or "none"
        raise WorkspaceError(f"{where}.plan: plan '{code}' is not in the workspace (plans: {known})")
    start = item.get("start")
    if start is not None and not isinstance(start, str):
        raise WorkspaceError(
            f"{where}.start: must be a date (\"2026-10-01\") or an ISO 8601 time string (\"2026-10-15T08:00:00Z\");"
            " epoch seconds are refused"
        )
    if start is not None and str(start).strip() == "":
        start = None
    if start is not None:
        start = str(start).strip()
        try:
            parse_subscription_start(start, tz=tz)
        except ValueError as exc:
            raise WorkspaceError(f"{where}.start: {exc}") from None
    return SubscriptionData(customer, code, start)


def parse_workspace(data: Any, *, known_metric_types: dict[str, str] | None = None,
                    known_plans: set[str] | None = None) -> Workspace:
    """A workspace document → a checked Workspace (WorkspaceError naming the bad field's path).

    `known_metric_types` / `known_plans` are metrics and plans outside the document that its
    plans and subscriptions may refer to (a merge into a store that holds them); the
    document's own metrics and plans take precedence."""
    if not isinstance(data, dict):
        raise WorkspaceError("a workspace must be a JSON object with timezone, metrics, plans, subscriptions")
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise WorkspaceError(f"{unknown[0]}: unknown field (expected timezone, metrics, plans, subscriptions)")
    tz = data.get("timezone", "UTC") or "UTC"
    if not isinstance(tz, str):
        raise WorkspaceError("timezone: must be an IANA time zone name such as UTC or Europe/Berlin")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise WorkspaceError(f"timezone: '{tz}' is not an IANA time zone name such as UTC or Europe/Berlin") from None
    metrics: list[MetricCreate] = []
    seen: set[str] = set()
    for i, item in enumerate(_list(data, "metrics")):
        if not isinstance(item, dict):
            raise WorkspaceError(f"metrics[{i}]: must be an object")
        try:
            metric = validate_metric(item)
        except InvalidMetric as exc:
            key, message = next(iter(exc.errors.items()))
            raise WorkspaceError(f"metrics[{i}].{key}: {message}") from None
        if metric.code in seen:
            raise WorkspaceError(f"metrics[{i}].code: '{metric.code}' is used by another metric")
        seen.add(metric.code)
        metrics.append(metric)
    metric_types = {**(known_metric_types or {}), **{m.code: m.metric_type.value for m in metrics}}
    plans: list[Plan] = []
    for i, item in enumerate(_list(data, "plans")):
        plan = _plan(i, item, metric_types)
        if any(p.code == plan.code for p in plans):
            raise WorkspaceError(f"plans[{i}].code: '{plan.code}' is used by another plan")
        plans.append(plan)
    codes = {p.code for p in plans} | (known_plans or set())
    subscriptions: list[SubscriptionData] = []
    for i, item in enumerate(_list(data, "subscriptions")):
        sub = _subscription(i, item, codes, tz)
        if any(s.customer_id == sub.customer_id for s in subscriptions):
            raise WorkspaceError(
                f"subscriptions[{i}].customer_id: '{sub.customer_id}' already has a subscription"
            )
        subscriptions.append(sub)
    return Workspace(tz, metrics, plans, subscriptions)


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise WorkspaceError(f"{key}: must be a list")
    return value


def read_document(path: str | Path) -> Any:
    """A workspace file's JSON (decimals kept exact), or WorkspaceError saying why not."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise WorkspaceError(f"cannot read workspace {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise WorkspaceError(f"workspace {path} is not UTF-8 text") from None
    if not text.strip():
        raise WorkspaceError(f"workspace {path} is empty")
    try:
        return json.loads(text, parse_float=str)
    except json.JSONDecodeError as exc:
        raise WorkspaceError(f"workspace {path} is not valid JSON: line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise WorkspaceError(f"workspace {path} nests arrays or objects too deeply") from None


def load_workspace(path: str | Path) -> Workspace:
    return parse_workspace(read_document(path))


def _metric_json(metric: MetricBase) -> dict[str, Any]:
    """A metric as the file holds it; unset optional fields (description, value_property,
    distinct_by) are left out rather than written as null."""
    fields = {name: getattr(metric, name) for name in MetricBase.model_fields}
    return MetricCreate.model_validate(fields).model_dump(mode="json", exclude_none=True)


def plan_json(plan: Plan) -> dict[str, Any]:
    return plan.model_dump(mode="json", exclude_none=True)


def workspace_json(workspace: Workspace) -> dict[str, Any]:
    """The document of a parsed workspace, in the export's order (metrics and plans by code,
    subscriptions by customer id)."""
    return {
        "timezone": workspace.timezone,
        "metrics": [_metric_json(m) for m in sorted(workspace.metrics, key=lambda m: m.code)],
        "plans": [plan_json(p) for p in sorted(workspace.plans, key=lambda p: p.code)],
        "subscriptions": [s.as_json() for s in sorted(workspace.subscriptions, key=lambda s: s.customer_id)],
    }


def export_workspace(engine: Engine) -> dict[str, Any]:
    """The app's metrics, plans, subscriptions and timezone as a workspace document."""
    return {
        "timezone": plan_store.get_timezone(engine),
        "metrics": [_metric_json(m) for m in sorted(metric_crud.list_metrics(engine), key=lambda m: m.code)],
        "plans": [plan_json(p) for p in plan_store.list_plans(engine)],
        "subscriptions": [s.as_json() for s in plan_store.list_subscriptions(engine)],
    }


def workspace_from_store(engine: Engine) -> Workspace:
    """The app's own pricing setup as a parsed Workspace (what the CLI uses without --workspace)."""
    return parse_workspace(export_workspace(engine))


def import_workspace(engine: Engine, workspace: Workspace | dict[str, Any], *, replace: bool = True,
                     checked: bool = False, known_metric_types: dict[str, str] | None = None,
                     known_plans: set[str] | None = None) -> Workspace:
    """Load a workspace into the store. The whole document is validated before anything is
    written. ``replace=True`` removes the metrics, plans, subscriptions and timezone that are
    there first (events are kept); ``replace=False`` adds to them, replacing same codes and
    customers (see `import_document` for a merge checked against the store). Returns the
    parsed workspace."""
    if not isinstance(workspace, Workspace):
        workspace = parse_workspace(workspace)
    elif not checked:  # re-check a hand-built one
        workspace = parse_workspace(workspace_json(workspace), known_metric_types=known_metric_types,
                                    known_plans=known_plans)
    if not replace and not checked:  # a merge not checked by import_document: the merged result must hold
        _check_merge(export_workspace(engine), workspace_json(workspace))
    if replace:
        plan_store.clear_pricing(engine)
        for metric in metric_crud.list_metrics(engine):
            metric_crud.delete_metric(engine, code=metric.code)
    plan_store.set_timezone(engine, timezone=workspace.timezone)
    for metric in workspace.metrics:
        if metric_crud.get_metric(engine, code=metric.code) is None:
            metric_crud.create_metric(engine, data=metric)
        else:
            metric_crud.update_metric(engine, code=metric.code, data=metric)
    for plan in workspace.plans:
        plan_store.save_plan(engine, plan=plan)
    for sub in workspace.subscriptions:
        plan_store.set_subscription(engine, customer_id=sub.customer_id, plan_code=sub.plan, start=sub.start)
    return workspace


def import_document(engine: Engine, data: Any, *, merge: bool = False) -> Workspace:
    """Load a workspace document into the store, validating everything before writing.

    Replace (default): the document alone must be valid; it replaces the store's metrics,
    plans, subscriptions and timezone (events are kept). Merge: the document's metrics, plans
    and subscriptions are added, replacing those with the same code or customer; its plans and
    subscriptions may refer to what the store holds; the timezone changes only when the
    document gives one; and the merged workspace must be valid as a whole (a metric whose type
    changes must still suit the stored plans that price it). Returns the document parsed."""
    if not merge:
        workspace = parse_workspace(data)
        import_workspace(engine, workspace, replace=True)
        return workspace
    current = export_workspace(engine)
    known_types = {m["code"]: m["metric_type"] for m in current["metrics"]}
    workspace = parse_workspace(data, known_metric_types=known_types, known_plans={p["code"] for p in current["plans"]})
    incoming = workspace_json(workspace)
    merged = {
        "timezone": workspace.timezone if "timezone" in data else current["timezone"],
        "metrics": _merged(current["metrics"], incoming["metrics"], "code"),
        "plans": _merged(current["plans"], incoming["plans"], "code"),
        "subscriptions": _merged(current["subscriptions"], incoming["subscriptions"], "customer_id"),
    }
    try:
        parse_workspace(merged)
    except WorkspaceError as exc:
        raise WorkspaceError(f"merging would leave the store's workspace invalid: {exc}") from None
    if "timezone" not in data:
        workspace.timezone = current["timezone"]
    import_workspace(engine, workspace, replace=False, checked=True,
                     known_metric_types=known_types, known_plans={p["code"] for p in current["plans"]})
    return workspace


def _merged(stored: list[dict[str, Any]], incoming: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    by_key = {item[key]: item for item in stored}
    by_key.update({item[key]: item for item in incoming})
    return [by_key[k] for k in sorted(by_key)]


def _check_merge(current: dict[str, Any], incoming: dict[str, Any]) -> None:
    """Raise WorkspaceError when the store's workspace with `incoming` merged in (same codes and
    customers replaced) breaks a rule, before anything is written."""
    def merged(key: str, id_field: str) -> list[dict[str, Any]]:
        by_id = {item[id_field]: item for item in current[key]}
        by_id.update({item[id_field]: item for item in incoming[key]})
        return list(by_id.values())

    try:
        parse_workspace({"timezone": incoming["timezone"], "metrics": merged("metrics", "code"),
                         "plans": merged("plans", "code"), "subscriptions": merged("subscriptions", "customer_id")})
    except WorkspaceError as exc:
        raise WorkspaceError(f"merged with the workspace already here, {exc} (import with Replace, or fix it "
                             "first)") from None
