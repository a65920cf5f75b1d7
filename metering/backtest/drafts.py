"""Draft plans: a copy of a plan to try a change on before anything is saved.

A draft is plan data (the workspace-file shape of a plan, decimals as text), so any field can
be changed and the draft validated exactly as the plan form validates a plan
(:func:`metering.plans.plan_errors` with the workspace's metric types), plus a code that no
stored plan or other draft uses. A valid draft becomes a :class:`Plan` the backtest prices;
saving it stores that plan (the page calls ``plan_store.save_plan``).

Rules decided here: a draft's code is the source's code + ``_draft`` (``_draft_2``, … when
taken, cut to 64 characters), its name the source's name + " (draft)"; it keeps the source's
currency and interval, so it stays comparable with the source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from metering.plans import Plan, plan_errors

SUFFIX = "_draft"
MAX_CODE = 64


class DraftError(ValueError):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        path, message = errors[0]
        super().__init__(f"{path}: {message}" if path else message)


def draft_code(source: str, taken: Iterable[str]) -> str:
    used = set(taken)
    n = 1
    while True:
        tail = SUFFIX if n == 1 else f"{SUFFIX}_{n}"
        code = source[: MAX_CODE - len(tail)] + tail
        if code not in used:
            return code
        n += 1


def duplicate(plan: Plan, taken: Iterable[str]) -> dict[str, Any]:
    """The plan's data with a new code and name (see the module docstring)."""
    data = plan.model_dump(mode="json", exclude_none=True)
    data["code"] = draft_code(plan.code, taken)
    name = f"{plan.name} (draft)"
    data["name"] = name if len(name) <= 200 else plan.name
    return data


def draft_errors(data: Any, metric_types: Mapping[str, str], taken: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Every problem of a draft as (dotted path, message): the plan form's rules, then a code
    already used by another plan."""
    errors = plan_errors(data, dict(metric_types))
    if not errors and isinstance(data, dict) and str(data.get("code", "")).strip() in set(taken):
        errors.append(("code", f"a plan with code '{data['code']}' already exists"))
    return errors


def draft_plan(data: Any, metric_types: Mapping[str, str], taken: Iterable[str] = ()) -> Plan:
    """The draft as a Plan; DraftError (with every problem) when it is not valid."""
    errors = draft_errors(data, metric_types, taken)
    if errors:
        raise DraftError(errors)
    return Plan.model_validate(data)
