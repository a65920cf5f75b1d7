"""What every peer exporter shares: the result shape, item names, placeholders, numbers.

An export is `{"target", "resources": [{"kind", "payload"}], "unsupported": [{"item", "reason"}]}`
(contract §9). The rule every exporter follows: a field is either translated exactly, or it is
left out of the payload and listed in `unsupported` with the reason. Nothing is approximated
(a 10.005 USD base fee is not rounded to 1001 cents; a percentage charge is not turned into a
unit price). A resource whose essential part cannot be expressed (a `min` metric in Lago) is
left out whole, and so is everything priced on it, each with its own entry.

`translated` is not part of the contract's document: it lists what did translate and into
which field, for the app's compatibility table.

Peers want ids they assign at creation (Lago's `billable_metric_id`, Stripe's meter id, Orb's
`item_id`). An export cannot know them, so it writes a placeholder `${kind:code}` (e.g.
`${billable_metric:llm_tokens}`), and the resource it stands for carries it as `ref`: create the
resources in the order listed and replace each placeholder with the id the peer returned for the
resource whose `ref` it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metering.models import MetricCreate
from metering.money import minor_units
from metering.plans import Plan
from metering.workspace import Workspace

TARGETS = ("lago", "openmeter", "stripe", "orb")
IMPORT_SOURCES = ("lago", "openmeter")
PLACEHOLDER_RE = re.compile(r"^\$\{([a-z_.]+):(.+)\}$")


@dataclass(frozen=True)
class Resource:
    kind: str
    payload: dict[str, Any]
    ref: str | None = None  # the placeholder other payloads use for this resource's id

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "payload": self.payload}
        if self.ref:
            out["ref"] = self.ref
        return out


@dataclass(frozen=True)
class Unsupported:
    item: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"item": self.item, "reason": self.reason}


@dataclass(frozen=True)
class Translated:
    item: str
    becomes: str  # where it went, in the target's words


@dataclass
class Export:
    target: str
    resources: list[Resource] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)
    translated: list[Translated] = field(default_factory=list)

    def add(self, kind: str, payload: dict[str, Any], *, code: str | None = None) -> None:
        """A resource; with `code`, other payloads name its id as `${kind:code}` (its `ref`)."""
        self.resources.append(Resource(kind, payload, ref(kind, code) if code else None))

    def lost(self, item: str, reason: str) -> None:
        self.unsupported.append(Unsupported(item, reason))

    def ok(self, item: str, becomes: str) -> None:
        self.translated.append(Translated(item, becomes))

    def to_json(self) -> dict[str, Any]:
        """The export document of contract §9."""
        return {
            "target": self.target,
            "resources": [r.to_json() for r in self.resources],
            "unsupported": [u.to_json() for u in self.unsupported],
        }

    def compatibility(self) -> list[dict[str, str]]:
        """One row per workbench item: what translates (and into what), what does not and why."""
        rows = [{"item": t.item, "status": "translates", "detail": t.becomes} for t in self.translated]
        rows += [{"item": u.item, "status": "does not translate", "detail": u.reason} for u in self.unsupported]
        return rows


# --------------------------------------------------------------------------- scope and names


def scope(workspace: Workspace, plan_code: str | None) -> tuple[list[MetricCreate], list[Plan]]:
    """Every metric and plan, or one plan and the metrics its charges and quotas use; by code.
    Raises WorkspaceError for an unknown plan."""
    if plan_code is None:
        return sorted(workspace.metrics, key=lambda m: m.code), sorted(workspace.plans, key=lambda p: p.code)
    plan = workspace.plan(plan_code)
    used = {c.metric for c in plan.charges} | {q.metric for q in plan.quotas}
    return sorted((m for m in workspace.metrics if m.code in used), key=lambda m: m.code), [plan]


def metric_item(code: str, field_name: str | None = None) -> str:
    return f"metrics[{code}]" + (f".{field_name}" if field_name else "")


def plan_item(code: str, rest: str | None = None) -> str:
    return f"plans[{code}]" + (f".{rest}" if rest else "")


def charge_item(plan: str, metric: str, field_name: str | None = None) -> str:
    return plan_item(plan, f"charges[{metric}]" + (f".{field_name}" if field_name else ""))


def quota_item(plan: str, metric: str) -> str:
    return plan_item(plan, f"quotas[{metric}]")


def ref(kind: str, code: str) -> str:
    """The placeholder for the id a peer gives the resource `kind` created from `code`."""
    return "${" + kind + ":" + code + "}"


def ref_code(value: Any, kind: str) -> str | None:
    """The code inside a placeholder of that kind (`${billable_metric:x}` → "x"), else None."""
    if not isinstance(value, str):
        return None
    m = PLACEHOLDER_RE.match(value.strip())
    return m.group(2) if m and m.group(1) == kind else None


def common_scope_notes(out: Export, workspace: Workspace, plans: list[Plan], target_name: str) -> None:
    """Subscriptions and the timezone: part of a workspace, not of any peer's plan payloads."""
    codes = {p.code for p in plans}
    subs = [s for s in workspace.subscriptions if s.plan in codes]
    if subs:
        out.lost("subscriptions", f"{len(subs)} subscription(s) are not exported: subscriptions belong to customers, "
                 f"create them in {target_name} (with the start date as the billing anchor) after the plans")
    if workspace.timezone != "UTC":
        out.lost("timezone", f"the workspace bills periods in {workspace.timezone}; a plan payload carries no time "
                 f"zone, so set it on the {target_name} account or customer")


# --------------------------------------------------------------------------- numbers


def num(value: Decimal) -> str:
    """A decimal as plain text without exponent or trailing zeros: 0.020 → "0.02", 1E+2 → "100"."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def is_whole(value: Decimal) -> bool:
    return value == value.to_integral_value()


def whole(value: Decimal) -> int | None:
    """The value as an int when it is a whole number, else None."""
    return int(value) if is_whole(value) else None


def json_number(value: Decimal) -> int | float | None:
    """A JSON number whose text is exactly the decimal's (an int, or a float whose shortest text
    reads back as the same decimal: 2.5, 0.1), else None. JSON cannot carry a Decimal, and a
    float is only used when no digit changes."""
    if is_whole(value):
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else None


def minor(value: Decimal, currency: str) -> Decimal:
    """An amount in the currency's minor unit (USD 0.02 → 2; JPY 5 → 5)."""
    return value.scaleb(minor_units(currency))


def decimal_places(value: Decimal) -> int:
    """Digits after the point of the value written without trailing zeros."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def slug_key(text: str) -> str:
    """A key in the peers' `^[a-z0-9]+(?:_[a-z0-9]+)*$` form: runs of other characters become `_`."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


KEY_RE = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def tiers_with_free_units(tiers: list[tuple[Decimal | None, Decimal, Decimal]], free: Decimal
                          ) -> list[tuple[Decimal | None, Decimal, Decimal]]:
    """Graduated (up_to, unit_price, flat_fee) tiers on usage, with `free` units first at 0:
    the same amounts as graduated tiers on max(usage − free, 0) (contract §4)."""
    if free <= 0:
        return tiers
    shifted = [(None if up is None else up + free, price, flat) for up, price, flat in tiers]
    return [(free, Decimal(0), Decimal(0)), *shifted]


# --------------------------------------------------------------------------- JSON Lines, column-wise

_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def json_strings(values: Sequence[str] | pa.Array) -> pa.Array:
    """Each text as a JSON string literal (what json.dumps(ensure_ascii=False) writes), built
    column-wise: only the values holding a quote, backslash or control character go through
    json.dumps one by one."""
    arr = values if isinstance(values, pa.Array) else pa.array(values, type=pa.string())
    quoted = pc.binary_join_element_wise('"', arr, '"', "")
    special = pc.fill_null(pc.match_substring_regex(arr, _NEEDS_ESCAPE), False)
    if pc.any(special).as_py():
        idx = np.flatnonzero(special.to_numpy(zero_copy_only=False))
        escaped = [json.dumps(v, ensure_ascii=False) for v in arr.take(pa.array(idx)).to_pylist()]
        mask = np.zeros(len(arr), dtype=bool)
        mask[idx] = True
        quoted = pc.replace_with_mask(quoted, pa.array(mask), pa.array(escaped, type=pa.string()))
    return quoted


def join_lines(*parts: pa.Array | str) -> str:
    """Column pieces and literal text joined row by row, one line each."""
    return "".join(pc.binary_join_element_wise(*parts, "\n", "").to_pylist())
