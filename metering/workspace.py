"""The workspace file (contract §5): one JSON document with a whole pricing scenario.

`{"timezone": "UTC", "metrics": [...], "plans": [...], "subscriptions": [...]}`. A bad file
raises `WorkspaceError` whose message names the path of the bad field
(`metrics[1].value_property: sum needs a value property …`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from metering.metrics import InvalidMetric, validate_metric
from metering.models import MetricCreate


class WorkspaceError(ValueError):
    """The workspace document cannot be used; the message names the bad field's path."""


@dataclass
class Workspace:
    timezone: str = "UTC"
    metrics: list[MetricCreate] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)

    def metric(self, code: str) -> MetricCreate:
        for metric in self.metrics:
            if metric.code == code:
                return metric
        known = ", ".join(m.code for m in self.metrics) or "none"
        raise WorkspaceError(f"metric '{code}' is not in the workspace (metrics: {known})")


def parse_workspace(data: Any) -> Workspace:
    if not isinstance(data, dict):
        raise WorkspaceError("a workspace must be a JSON object with timezone, metrics, plans, subscriptions")
    unknown = sorted(set(data) - {"timezone", "metrics", "plans", "subscriptions"})
    if unknown:
        raise WorkspaceError(f"{unknown[0]}: unknown field (expected timezone, metrics, plans, subscriptions)")
    tz = data.get("timezone", "UTC") or "UTC"
    try:
        ZoneInfo(str(tz))
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
    return Workspace(str(tz), metrics, _list(data, "plans"), _list(data, "subscriptions"))


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise WorkspaceError(f"{key}: must be a list")
    return value


def load_workspace(path: str | Path) -> Workspace:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkspaceError(f"cannot read workspace {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise WorkspaceError(f"workspace {path} is not UTF-8 text") from None
    try:
        data = json.loads(text, parse_float=str)
    except json.JSONDecodeError as exc:
        raise WorkspaceError(f"workspace {path} is not valid JSON: line {exc.lineno}: {exc.msg}") from None
    return parse_workspace(data)


def workspace_json(workspace: Workspace) -> dict[str, Any]:
    return {
        "timezone": workspace.timezone,
        "metrics": [m.model_dump(mode="json") for m in workspace.metrics],
        "plans": workspace.plans,
        "subscriptions": workspace.subscriptions,
    }
