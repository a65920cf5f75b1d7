"""The Plans page: create and edit plans, the list of plans, subscriptions, and price previews.

The form keeps a *draft* in session state (`plans:draft`): plain strings per field, a charge and
a quota slot per metric (kept when switched off, so nothing typed is lost), and table rows for
fixed charges and tiers. Every widget has a key `plans:f:<path>` (the draft path, e.g.
`plans:f:charges.llm_tokens.rate`); at the top of each run the widgets' values are copied into
the draft, then the draft is turned into plan data (:func:`plan_data`) and checked with the
engine's `plans.plan_errors`, so each message is drawn beside its widget. Tables
(`st.data_editor`) keep their base rows in `plans:base:<path>` and the draft rows are the base
with the editor's edit state applied.

Rules decided here:

- A blank decimal field is "not set": the engine's default applies where there is one (base fee
  0, free units 0, quantity 1, flat fee 0), else the engine says it is needed. Messages about
  blank fields wait for the first Save.
- A table row whose cells are all blank is ignored; a blank `up_to` is the open last tier.
- A plan's code is generated from its name (like a metric's) until edited, and cannot change
  once saved (subscriptions refer to it).
- Deleting a plan deletes its subscriptions too, after the dialog lists them and asks.
- Subscriptions are edited as a table and saved together; each row is checked (customer id,
  known plan, a start the engine can read) before anything is written.
- The price preview defaults to the usage of the customer with the most usage of that metric in
  the latest month with its events (running usage for charge_recurring).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from metering import aggregation, metrics, plan_store, usage_series
from metering.access import Action
from metering.engine.columns import from_us, to_us
from metering.engine.interface import Events
from metering.models import MetricPublic, MetricType
from metering.money import currencies, format_money, round_money, to_decimal
from metering.periods import parse_subscription_start
from metering.plans import CHARGE_METRIC_TYPES, CHARGE_MODELS, INTERVALS, LIMIT_METRIC_TYPES, Charge, Plan, plan_errors
from metering.preview import fmt, plural
from metering.values import decimal_str
from metering.pricing import describe_price, price_charge
from workbench import auth, state
from workbench.editor import field_error, in_form_words
from workbench.text import md, md_code
from workbench.invoices import ordered_plans

K = "plans:"
F = "plans:f:"  # widget keys: F + draft path
BASE = "plans:base:"
DRAFT = K + "draft"
EDITING = K + "editing"  # None: no form; "": a new plan; a code: that plan
FLASH = K + "flash"
DELETE = K + "delete"
TRIED = K + "tried_save"
SUBS_TABLE = K + "subs_table"
SUBS_BASE = K + "subs_base"

MODEL_LABELS = {
    "standard": "Standard — units × unit price",
    "graduated": "Graduated — each tier prices its own units",
    "volume": "Volume — one tier prices every unit",
    "package": "Package — per started package",
    "percentage": "Percentage — rate % + fee per event",
}
MODEL_FIELDS = {
    "standard": ("unit_price",),
    "graduated": ("tiers",),
    "volume": ("tiers",),
    "package": ("package_size", "package_price"),
    "percentage": ("rate", "fixed_fee"),
}
FIELD_LABELS = {
    "code": "Code", "name": "Name", "currency": "Currency", "interval": "Interval", "base_fee": "Base fee",
    "included_credit": "Included credit", "free_units": "Free units", "unit_price": "Unit price",
    "package_size": "Package size", "package_price": "Package price", "rate": "Rate (%)",
    "fixed_fee": "Fee per event", "limit": "Limit", "max_carryover": "Max carryover",
    "overage_unit_price": "Overage unit price", "tiers": "Tiers", "up_to": "Up to", "flat_fee": "Flat fee",
    "quantity": "Quantity", "metric": "Metric", "fixed_charges": "Fixed charges", "alert_thresholds": "Alert thresholds",
}
# How the engine's messages name things in this form (`base_fee must be 0 or more` → `Base fee
# must be 0 or more`): the labels the widgets show.
FORM_WORDS = {
    "code": "Code", "name": "Name", "currency": "Currency", "interval": "Interval", "base_fee": "Base fee",
    "included_credit": "Included credit", "free_units": "Free units", "unit_price": "Unit price",
    "package_size": "Package size", "package_price": "Package price", "rate": "Rate (%)", "fixed_fee": "Fee per event",
    "limit": "Limit", "max_carryover": "Max carryover", "overage_unit_price": "Overage unit price", "tiers": "Tiers",
    "up_to": "Up to", "flat_fee": "Flat fee", "quantity": "Quantity", "metric": "Metric",
    "alert_thresholds": "Alert thresholds",
    **{t.value: t.value.replace("_", " ").capitalize() for t in MetricType},
}
FIXED_COLUMNS = ("name", "quantity", "unit_price")
TIER_COLUMNS = ("up_to", "unit_price", "flat_fee")
SUB_COLUMNS = ("customer_id", "plan", "start")
PLAN_LIST_COLUMNS = [1.4, 0.9, 0.9, 4.0, 2.0, 0.9, 0.4, 0.4]
LIST_CSS = "<style>.st-key-plans-list hr { margin: 0.1rem 0 !important; }</style>"


# =========================================================================== the draft (pure)


def _text(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


def blank_charge() -> dict[str, Any]:
    return {"on": False, "model": "standard", "free_units": "", "unit_price": "", "tiers": [],
            "package_size": "", "package_price": "", "rate": "", "fixed_fee": ""}


def blank_quota() -> dict[str, Any]:
    return {"on": False, "limit": "", "max_carryover": "", "overage_unit_price": "", "alert_thresholds": ""}


def blank_draft() -> dict[str, Any]:
    return {"code": "", "name": "", "currency": "USD", "interval": "month", "base_fee": "", "included_credit": "",
            "fixed_charges": [], "charges": {}, "quotas": {}, "code_auto": True}


def draft_of(plan: Plan) -> dict[str, Any]:
    """The form values of a stored plan."""
    draft = blank_draft()
    draft.update({
        "code": plan.code, "name": plan.name, "currency": plan.currency, "interval": plan.interval,
        "base_fee": _text(plan.base_fee) if plan.base_fee else "",
        "included_credit": _text(plan.included_credit) if plan.included_credit else "",
        "code_auto": False,
    })
    draft["fixed_charges"] = [
        {"name": f.name, "quantity": _text(f.quantity), "unit_price": _text(f.unit_price)} for f in plan.fixed_charges
    ]
    for c in plan.charges:
        slot = blank_charge()
        slot.update({
            "on": True, "model": c.model, "free_units": _text(c.free_units) if c.free_units else "",
            "unit_price": _text(c.unit_price), "package_size": _text(c.package_size),
            "package_price": _text(c.package_price), "rate": _text(c.rate), "fixed_fee": _text(c.fixed_fee),
            "tiers": [{"up_to": _text(t.up_to), "unit_price": _text(t.unit_price),
                       "flat_fee": _text(t.flat_fee) if t.flat_fee else ""} for t in c.tiers or []],
        })
        draft["charges"][c.metric] = slot
    for q in plan.quotas:
        draft["quotas"][q.metric] = {"on": True, "limit": _text(q.limit), "max_carryover": _text(q.max_carryover),
                                     "overage_unit_price": _text(q.overage_unit_price),
                                     "alert_thresholds": thresholds_text(q.alert_thresholds)}
    return draft


def thresholds_text(values: Sequence[Decimal] | None) -> str:
    """A quota's alert thresholds as the form shows them: "80, 100"."""
    return ", ".join(decimal_str(v) for v in values or [])


def parse_thresholds(text: Any) -> list[str] | None:
    """The thresholds typed in the form ("80, 100", "80 %; 100%") as a list for the engine,
    which says what is wrong with any of them; None when blank (no alerts)."""
    pieces = [p.strip().removesuffix("%").strip() for p in _clean(text).replace(";", ",").split(",")]
    pieces = [p for p in pieces if p]
    return pieces or None


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _blank_row(row: dict[str, Any], columns: Sequence[str]) -> bool:
    return all(_clean(row.get(c)) == "" for c in columns)


def _opt(value: Any) -> str | None:
    text = _clean(value)
    return text or None


def plan_data(draft: dict[str, Any], metric_list: Sequence[MetricPublic]) -> tuple[dict[str, Any], dict[str, str]]:
    """The plan as data for the engine, and where each list entry came from: a map from data
    path prefixes (`charges.2`, `fixed_charges.0`, `charges.2.tiers.1`) to draft paths
    (`charges.llm_tokens`, `fixed_charges#3` = row 3 of the table, …)."""
    origin: dict[str, str] = {}
    data: dict[str, Any] = {
        "code": _clean(draft.get("code")),
        "name": _clean(draft.get("name")),
        "currency": _clean(draft.get("currency")),
        "interval": _clean(draft.get("interval")) or "month",
    }
    for key in ("base_fee", "included_credit"):
        if _opt(draft.get(key)) is not None:
            data[key] = _clean(draft[key])
    fixed = []
    for row_no, row in enumerate(draft.get("fixed_charges") or []):
        if _blank_row(row, FIXED_COLUMNS):
            continue
        entry: dict[str, Any] = {"name": _clean(row.get("name")), "unit_price": _opt(row.get("unit_price"))}
        if _opt(row.get("quantity")) is not None:
            entry["quantity"] = _clean(row.get("quantity"))
        origin[f"fixed_charges.{len(fixed)}"] = f"fixed_charges#{row_no}"
        fixed.append(entry)
    data["fixed_charges"] = fixed
    charges, quotas = [], []
    for m in metric_list:
        kind = m.metric_type.value
        if kind in CHARGE_METRIC_TYPES:
            slot = (draft.get("charges") or {}).get(m.code)
            if not slot or not slot.get("on"):
                continue
            model = slot.get("model") or "standard"
            entry = {"metric": m.code, "model": model}
            if _opt(slot.get("free_units")) is not None:
                entry["free_units"] = _clean(slot["free_units"])
            for name in MODEL_FIELDS.get(model, ()):
                if name == "tiers":
                    tiers = []
                    for row_no, row in enumerate(slot.get("tiers") or []):
                        if _blank_row(row, TIER_COLUMNS):
                            continue
                        tier: dict[str, Any] = {"up_to": _opt(row.get("up_to")), "unit_price": _opt(row.get("unit_price"))}
                        if _opt(row.get("flat_fee")) is not None:
                            tier["flat_fee"] = _clean(row.get("flat_fee"))
                        origin[f"charges.{len(charges)}.tiers.{len(tiers)}"] = f"charges.{m.code}.tiers#{row_no}"
                        tiers.append(tier)
                    entry["tiers"] = tiers
                elif name == "fixed_fee":
                    if _opt(slot.get(name)) is not None:
                        entry[name] = _clean(slot[name])
                else:
                    entry[name] = _opt(slot.get(name))
            origin[f"charges.{len(charges)}"] = f"charges.{m.code}"
            charges.append(entry)
        elif kind in LIMIT_METRIC_TYPES:
            slot = (draft.get("quotas") or {}).get(m.code)
            if not slot or not slot.get("on"):
                continue
            entry = {"metric": m.code, "limit": _opt(slot.get("limit"))}
            if (thresholds := parse_thresholds(slot.get("alert_thresholds"))) is not None:
                entry["alert_thresholds"] = thresholds
            if kind == MetricType.limit_recurring.value:
                for name in ("max_carryover", "overage_unit_price"):
                    if _opt(slot.get(name)) is not None:
                        entry[name] = _clean(slot[name])
            origin[f"quotas.{len(quotas)}"] = f"quotas.{m.code}"
            quotas.append(entry)
    data["charges"] = charges
    data["quotas"] = quotas
    return data, origin


def _value_at(data: Any, path: str) -> Any:
    node = data
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def form_errors(data: dict[str, Any], origin: dict[str, str], metric_types: dict[str, str]) -> dict[str, str]:
    """The engine's messages (`plan_errors`) keyed by the draft path of the widget they belong
    to: `name`, `charges.api.unit_price`, `charges.api.tiers` (row messages say which tier),
    `fixed_charges`, `quotas.sms.limit`, …; `plan` for the rest. First message per widget."""
    out: dict[str, str] = {}
    for path, message in plan_errors(data, metric_types):
        key, text = _locate(path, in_form_words(message, FORM_WORDS), origin)
        if key in out:
            if text not in out[key]:
                out[key] += f"; {text}"
        else:
            out[key] = text
    return out


def _locate(path: str, message: str, origin: dict[str, str]) -> tuple[str, str]:
    parts = path.split(".") if path else []
    if len(parts) >= 2 and parts[0] in ("charges", "quotas") and parts[1].isdigit():
        slot = origin.get(f"{parts[0]}.{parts[1]}")
        if slot is None:
            return "plan", message
        rest = parts[2:]
        if rest and rest[0] == "tiers":
            if len(rest) >= 2 and rest[1].isdigit():
                row = origin.get(f"{parts[0]}.{parts[1]}.tiers.{rest[1]}")
                n = int(row.rsplit("#", 1)[1]) + 1 if row else int(rest[1]) + 1
                field = FIELD_LABELS.get(rest[2], rest[2]) if len(rest) > 2 else "tier"
                return f"{slot}.tiers", f"row {n} ({field}): {message}"
            return f"{slot}.tiers", message
        if not rest or rest[0] == "metric":
            return f"{slot}.on", message
        return f"{slot}.{rest[0]}", message
    if len(parts) >= 2 and parts[0] == "fixed_charges" and parts[1].isdigit():
        row = origin.get(f"fixed_charges.{parts[1]}", f"fixed_charges#{parts[1]}")
        n = int(row.rsplit("#", 1)[1]) + 1
        field = FIELD_LABELS.get(parts[2], parts[2]) if len(parts) > 2 else "row"
        return "fixed_charges", f"row {n} ({field}): {message}"
    if parts and parts[0] in ("code", "name", "currency", "interval", "base_fee", "included_credit",
                              "fixed_charges", "charges", "quotas"):
        return parts[0], message
    return "plan", message


def is_blank_field(data: dict[str, Any], origin: dict[str, str], key: str) -> bool:
    """Whether the widget an error belongs to is still blank (such errors wait for a Save)."""
    if key in ("code", "name"):
        return _clean(data.get(key)) == ""
    reverse = {v: k for k, v in origin.items()}
    head, _, name = key.rpartition(".")
    if head in reverse and name not in ("tiers", "on"):
        return _value_at(data, f"{reverse[head]}.{name}") in (None, "")
    if name == "tiers" and head in reverse:
        return not _value_at(data, f"{reverse[head]}.tiers")
    return False


def apply_table_edits(rows: list[dict[str, Any]], edits: dict[str, Any] | None, columns: Sequence[str]) -> list[dict[str, str]]:
    """A data editor's edit state applied to its base rows (cell edits, then deletions, then
    added rows), every cell as stripped text."""
    out = [dict(r) for r in rows]
    edits = edits or {}
    for position, change in (edits.get("edited_rows") or {}).items():
        if int(position) < len(out):
            out[int(position)].update(change)
    deleted = {int(i) for i in edits.get("deleted_rows") or []}
    out = [r for i, r in enumerate(out) if i not in deleted]
    out.extend(dict(r) for r in edits.get("added_rows") or [])
    return [{c: _clean(r.get(c)) for c in columns} for r in out]


def label_of(key: str, names: dict[str, str]) -> str:
    """A widget's name for the list of reasons: `charges.llm_tokens.rate` → "LLM Tokens charge · Rate (%)"."""
    parts = key.split(".")
    if parts[0] in ("charges", "quotas") and len(parts) >= 2:
        what = "charge" if parts[0] == "charges" else "quota"
        field = parts[2] if len(parts) > 2 else "on"
        suffix = "" if field == "on" else f" · {FIELD_LABELS.get(field, field)}"
        return f"{names.get(parts[1], parts[1])} {what}{suffix}"
    return FIELD_LABELS.get(key, key)


# --- subscriptions --------------------------------------------------------------------------


def subscription_rows(engine: Engine) -> list[dict[str, str]]:
    return [{"customer_id": s.customer_id, "plan": s.plan, "start": s.start or ""} for s in plan_store.list_subscriptions(engine)]


def first_event_days(first_events: dict[str, int], tz: str) -> dict[str, str]:
    """customer → the day (YYYY-MM-DD, in the workspace timezone) of its first event: the start
    a subscription saved with a blank start gets, so no period before the customer existed is
    billed (a bare date is midnight in that timezone, so the first event is inside period 0)."""
    zone = ZoneInfo(tz)
    return {cid: f"{from_us(us).astimezone(zone):%Y-%m-%d}" for cid, us in first_events.items()}


def subscription_errors(rows: list[dict[str, str]], plan_codes: set[str], tz: str,
                        defaults: dict[str, str] | None = None) -> list[str]:
    """Every problem of the subscriptions table, one message per row and field. With
    ``defaults`` (first_event_days), a blank start needs the customer to have events."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        if _blank_row(row, SUB_COLUMNS):
            continue
        cid, plan, start = _clean(row.get("customer_id")), _clean(row.get("plan")), _clean(row.get("start"))
        if not cid:
            out.append(f"row {n} (customer_id): a customer id is required")
        elif len(cid) > 255:
            out.append(f"row {n} (customer_id): at most 255 characters")
        elif cid in seen:
            out.append(f"row {n} (customer_id): '{cid}' already has a subscription in row {seen[cid]}")
        else:
            seen[cid] = n
        if not plan:
            out.append(f"row {n} (plan): pick a plan")
        elif plan not in plan_codes:
            out.append(f"row {n} (plan): plan '{plan}' does not exist")
        if start:
            try:
                parse_subscription_start(start, tz=tz)
            except ValueError as exc:
                out.append(f"row {n} (start): {exc}")
        elif defaults is not None and cid and cid not in defaults:
            out.append(f"row {n} (start): '{cid}' has no events yet, so a blank start cannot default to its first "
                       "event: give a start date")
    return out


def save_subscriptions(engine: Engine, rows: list[dict[str, str]],
                       defaults: dict[str, str] | None = None) -> tuple[int, int]:
    """Write the table: rows set (insert or replace), stored customers not in it deleted; a
    blank start becomes ``defaults[customer]`` (the day of its first event). Returns (saved, deleted)."""
    wanted = {_clean(r["customer_id"]): r for r in rows if not _blank_row(r, SUB_COLUMNS)}
    deleted = 0
    for sub in plan_store.list_subscriptions(engine):
        if sub.customer_id not in wanted:
            plan_store.delete_subscription(engine, customer_id=sub.customer_id)
            deleted += 1
    for cid, row in wanted.items():
        start = _opt(row.get("start")) or (defaults or {}).get(cid)
        plan_store.set_subscription(engine, customer_id=cid, plan_code=_clean(row["plan"]), start=start)
    return len(wanted), deleted


# --- price preview --------------------------------------------------------------------------


def preview_default(frame: Events, metric: MetricPublic, *, now: datetime | None = None) -> tuple[Decimal, int, str] | None:
    """(usage, matching events in the period, where it comes from) of the customer with the most
    usage of the metric in the latest UTC month with its events up to now (a later event, e.g.
    planned usage, does not pick the month); None without such events."""
    now = now or datetime.now(UTC)
    days = usage_series.daily_usage(frame, metric, end=now, fill=False)
    if not len(days):
        return None
    latest = days["day"].iloc[-1]
    start, end = usage_series.window_of_month(to_us(datetime(latest.year, latest.month, latest.day, tzinfo=UTC)))
    recurring = metric.metric_type == MetricType.charge_recurring
    by_customer = aggregation.aggregate_by_customer(frame, metric, start=None if recurring else start, end=end)
    if not by_customer:
        return None
    cid, result = sorted(by_customer.items(), key=lambda kv: (-kv[1].value, kv[0]))[0]
    events = result.events
    if recurring:
        in_month = aggregation.aggregate_by_customer(frame, metric, start=start, end=end, customer_ids=[cid])
        events = in_month[cid].events if cid in in_month else 0
    return result.value, events, f"{cid}'s usage in {start:%Y-%m}"


def price_preview(charge_data: dict[str, Any], currency: str, units: Decimal, events: int) -> tuple[Decimal, list[str]]:
    """(amount rounded to the currency, the arithmetic lines) of one charge on some usage."""
    charge = Charge.model_validate(charge_data)
    result = price_charge(charge, units, event_count=events)
    amount = round_money(result.amount, currency)
    lines = result.explain(currency)
    if amount != result.amount:
        lines.append(f"rounded half-up to {format_money(amount, currency)}")
    return amount, lines


# =========================================================================== session state


def _ss() -> Any:
    return st.session_state


def _clear_widgets() -> None:
    for key in list(_ss()):
        if isinstance(key, str) and key.startswith((F, BASE, K + "preview:")):
            del _ss()[key]


def open_editor(code: str | None, engine: Engine) -> None:
    """Load a stored plan (or a blank one when ``code`` is None) into the form."""
    _clear_widgets()
    plan = plan_store.get_plan(engine, code=code) if code else None
    _ss()[DRAFT] = draft_of(plan) if plan else blank_draft()
    _ss()[EDITING] = plan.code if plan else ""
    _ss()[TRIED] = False


def close_editor() -> None:
    _clear_widgets()
    for key in (DRAFT, TRIED):
        _ss().pop(key, None)
    _ss()[EDITING] = None


def _set_path(draft: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = draft
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _get_path(draft: dict[str, Any], path: str) -> Any:
    node: Any = draft
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _table_columns(path: str) -> Sequence[str]:
    return FIXED_COLUMNS if path == "fixed_charges" else TIER_COLUMNS


def sync_draft(draft: dict[str, Any], metric_list: Sequence[MetricPublic]) -> None:
    """Copy the widgets' current values into the draft (start of a run)."""
    ss = _ss()
    for m in metric_list:  # slots exist for every metric the form shows
        if m.metric_type.value in CHARGE_METRIC_TYPES:
            draft["charges"].setdefault(m.code, blank_charge())
        elif m.metric_type.value in LIMIT_METRIC_TYPES:
            draft["quotas"].setdefault(m.code, blank_quota())
    code_widget = ss.get(F + "code")
    if code_widget is not None and code_widget != draft["code"]:
        draft["code_auto"] = False  # the person typed a code
    for key in list(ss):
        if not isinstance(key, str) or not key.startswith(F):
            continue
        path = key[len(F):]
        if path.endswith(".tiers") or path == "fixed_charges":
            columns = _table_columns(path)
            base_key = BASE + path
            if base_key not in ss:
                ss[base_key] = copy.deepcopy(_get_path(draft, path) or [])
            _set_path(draft, path, apply_table_edits(ss[base_key], ss[key], columns))
        else:
            _set_path(draft, path, ss[key])
    if draft.get("code_auto") and not _ss().get(EDITING):
        slug = metrics.slugify(_clean(draft.get("name")))
        if slug != draft["code"]:
            draft["code"] = slug
            ss[F + "code"] = slug


# =========================================================================== drawing


def _seed(path: str, value: Any) -> str:
    key = F + path
    if key not in _ss():
        _ss()[key] = value
    return key


def _text_input(container: Any, path: str, label: str, errors: dict[str, str], **kwargs: Any) -> None:
    key = _seed(path, _clean(_get_path(_ss()[DRAFT], path)))
    with container:
        st.text_input(label, key=key, **kwargs)
        field_error(errors.get(path))


def _table(path: str, label: str, columns: dict[str, Any], errors: dict[str, str], *, container_key: str) -> None:
    ss = _ss()
    key, base_key = F + path, BASE + path
    if key not in ss:  # a fresh widget: its base is the draft's rows
        ss[base_key] = copy.deepcopy(_get_path(ss[DRAFT], path) or [])
    names = list(columns)
    base = pd.DataFrame(ss[base_key], columns=names).astype(object)
    with st.container(key=container_key):
        st.markdown(label)
        st.data_editor(base, key=key, num_rows="dynamic", hide_index=True, width="stretch", column_config=columns)
        field_error(errors.get(path))


def _basics(errors: dict[str, str]) -> None:
    draft = _ss()[DRAFT]
    editing = _ss().get(EDITING)
    c = st.columns([2, 1.6, 1, 1])
    _text_input(c[0], "name", "Name", errors, placeholder="e.g. Growth")
    _text_input(c[1], "code", "Code", errors, disabled=bool(editing),
                help="Generated from the name until you edit it; fixed once the plan is saved (subscriptions refer to it).")
    options = sorted(currencies())
    key = _seed("currency", draft["currency"] if draft["currency"] in options else "USD")
    with c[2]:
        st.selectbox("Currency", options, key=key)
        field_error(errors.get("currency"))
    key = _seed("interval", draft["interval"] if draft["interval"] in INTERVALS else "month")
    with c[3]:
        st.selectbox("Interval", list(INTERVALS), key=key, help="Billing periods follow it, anchored at the subscription start.")
        field_error(errors.get("interval"))
    c = st.columns(2)
    _text_input(c[0], "base_fee", "Base fee (every period)", errors, placeholder="0")
    _text_input(c[1], "included_credit", "Included credit (every period, usage only)", errors, placeholder="0",
                help="Money off the usage lines each period; never carried over.")


def _charge_block(m: MetricPublic, errors: dict[str, str], currency: str, frame: Events,
                  data: dict[str, Any], origin: dict[str, str], all_errors: dict[str, str]) -> None:
    ss = _ss()
    slot = ss[DRAFT]["charges"][m.code]
    base = f"charges.{m.code}"
    with st.container(border=True, key=f"plans-charge-{m.code}"):
        top = st.columns([2.2, 2])
        agg = m.aggregation.value + (f" of {m.value_property}" if m.value_property else "") + (
            f" of {m.distinct_by}" if m.distinct_by else "")
        key = _seed(f"{base}.on", bool(slot.get("on")))
        with top[0]:
            st.checkbox(f"**{md(m.name)}** · {md_code(m.code)}", key=key,
                        help=f"{m.metric_type.value}: {md(agg)}, in {md(m.unit)}")
            st.caption(f"{md(m.metric_type.value)} · {md(agg)} · {md(m.unit)}")
            field_error(errors.get(f"{base}.on"))
        if not ss[key]:
            return
        key = _seed(f"{base}.model", slot.get("model") if slot.get("model") in CHARGE_MODELS else "standard")
        top[1].selectbox("Charge model", list(CHARGE_MODELS), key=key, format_func=MODEL_LABELS.get)
        model = ss[key]
        c = st.columns(3)
        _text_input(c[0], f"{base}.free_units", f"Free units ({md(m.unit)})", errors, placeholder="0",
                    help="Units free each period, taken off first.")
        if model == "standard":
            _text_input(c[1], f"{base}.unit_price", f"Unit price ({currency})", errors)
        elif model == "package":
            _text_input(c[1], f"{base}.package_size", f"Package size ({md(m.unit)})", errors)
            _text_input(c[2], f"{base}.package_price", f"Package price ({currency})", errors)
        elif model == "percentage":
            _text_input(c[1], f"{base}.rate", "Rate (%)", errors, help="Percent of the billable units (e.g. an amount).")
            _text_input(c[2], f"{base}.fixed_fee", f"Fee per event ({currency})", errors, placeholder="0")
        else:
            _table(f"{base}.tiers", f"**Tiers** — {MODEL_LABELS[model].split(' — ')[1]}", {
                "up_to": st.column_config.TextColumn("Up to (inclusive)", help="Blank on the last tier: and above"),
                "unit_price": st.column_config.TextColumn(f"Unit price ({currency})"),
                "flat_fee": st.column_config.TextColumn(f"Flat fee ({currency})", help="Added once when the tier is reached"),
            }, errors, container_key=f"plans-tiers-{m.code}")
        _preview(m, base, currency, frame, data, origin, errors, all_errors)


def _preview(m: MetricPublic, base: str, currency: str, frame: Events, data: dict[str, Any],
             origin: dict[str, str], errors: dict[str, str], all_errors: dict[str, str]) -> None:
    mine = lambda found: any(k.startswith(base + ".") and not k.endswith(".on") for k in found)  # noqa: E731
    if mine(errors):
        st.caption(":gray[Price preview: fix the fields above first.]")
        return
    if mine(all_errors):
        st.caption(":gray[Price preview: fill in the fields above first.]")
        return
    reverse = {v: k for k, v in origin.items()}
    charge_data = _value_at(data, reverse[base]) if base in reverse else None
    if charge_data is None:
        return
    ss = _ss()
    key = f"{K}preview:{m.code}"
    found = preview_default(frame, m)
    if key not in ss:
        ss[key] = fmt(found[0]).replace(",", "") if found else ""
    with st.container(key=f"plans-preview-{m.code}"):
        c = st.columns([1, 1, 2.5], vertical_alignment="bottom")
        c[0].text_input(f"Preview units ({md(m.unit)})", key=key,
                        help="Defaults to " + (md(found[2]) if found else "nothing: no events yet"))
        ek = f"{K}preview_events:{m.code}"
        if charge_data.get("model") == "percentage":
            if ek not in ss:
                ss[ek] = str(found[1]) if found else "0"
            c[1].text_input("Events in the period", key=ek, help="The per-event fee counts them.")
        text = _clean(ss[key])
        if not text:
            c[2].caption("Type some units to see the price.")
            return
        try:
            units = to_decimal(text.replace(",", ""))
            events = int(_clean(ss.get(ek, "0")) or 0)
        except ValueError as exc:
            c[2].caption(f":red[{md(exc)}]")
            return
        try:
            amount, lines = price_preview(charge_data, currency, units, events)
        except (ValidationError, ValueError) as exc:
            c[2].caption(f":red[{md(exc)}]")
            return
        c[2].markdown(f"**{fmt(units)} {md(m.unit)} → {md(format_money(amount, currency))}**")
        st.caption("  \n".join(md(line) for line in lines))


def _quota_block(m: MetricPublic, errors: dict[str, str], currency: str) -> None:
    ss = _ss()
    slot = ss[DRAFT]["quotas"][m.code]
    base = f"quotas.{m.code}"
    recurring = m.metric_type == MetricType.limit_recurring
    with st.container(border=True, key=f"plans-quota-{m.code}"):
        key = _seed(f"{base}.on", bool(slot.get("on")))
        st.checkbox(f"**{md(m.name)}** · {md_code(m.code)} · {m.metric_type.value}", key=key,
                    help="A hard limit that rejects events past it" if not recurring
                    else "A soft limit: unused quota carries over, usage past it is overage")
        field_error(errors.get(f"{base}.on"))
        if not ss[key]:
            return
        c = st.columns(3)
        _text_input(c[0], f"{base}.limit", f"Limit per period ({md(m.unit)})", errors)
        if recurring:
            _text_input(c[1], f"{base}.max_carryover", f"Max carryover ({md(m.unit)})", errors, placeholder="no cap")
            _text_input(c[2], f"{base}.overage_unit_price", f"Overage unit price ({currency})", errors,
                        placeholder="not billed")
        else:
            c[1].caption("Limit metered: unused quota is lost and events past the limit are rejected; "
                         "no carryover, no overage.")
        _text_input(st.columns(2)[0], f"{base}.alert_thresholds", "Alert thresholds (% of available)", errors,
                    placeholder="e.g. 80, 100",
                    help="Percentages of the period's available units, separated by commas. When events sent to "
                         "the API take a subscriber's usage to one, an alert is recorded once per period (Alerts "
                         "page, GET /api/v1/alerts) and sent to the workspace's webhook if one is set.")


def _editor(engine: Engine, metric_list: list[MetricPublic], frame: Events) -> None:
    ss = _ss()
    draft = ss[DRAFT]
    sync_draft(draft, metric_list)
    data, origin = plan_data(draft, metric_list)
    types = {m.code: m.metric_type.value for m in metric_list}
    all_errors = form_errors(data, origin, types)
    editing = ss.get(EDITING)
    if not editing and data["code"] and plan_store.get_plan(engine, code=data["code"]) is not None:
        all_errors.setdefault("code", f"a plan with code '{data['code']}' already exists")
    shown = {k: v for k, v in all_errors.items() if ss.get(TRIED) or not is_blank_field(data, origin, k)}
    currency = draft.get("currency") or "USD"
    names = {m.code: m.name for m in metric_list}

    with st.container(border=True, key="plans-editor"):
        st.subheader(f"Edit plan · {md(draft.get('name') or editing)}" if editing else "New plan", anchor=False)
        _basics(shown)
        _table("fixed_charges", "**Fixed charges** — billed every period (seats, licences): quantity × unit price", {
            "name": st.column_config.TextColumn("Name", help="Shown on the invoice, e.g. Seats"),
            "quantity": st.column_config.TextColumn("Quantity", help="Blank: 1"),
            "unit_price": st.column_config.TextColumn(f"Unit price ({currency})"),
        }, shown, container_key="plans-fixed")

        charge_metrics = [m for m in metric_list if m.metric_type.value in CHARGE_METRIC_TYPES]
        limit_metrics = [m for m in metric_list if m.metric_type.value in LIMIT_METRIC_TYPES]
        st.markdown("**Usage charges** — one per charge metric; tick the ones this plan prices")
        if not charge_metrics:
            st.caption("No charge_metered or charge_recurring metric yet: create one on the Metric editor page.")
        for m in charge_metrics:
            _charge_block(m, shown, currency, frame, data, origin, all_errors)
        st.markdown("**Quotas** — one per limit metric")
        if not limit_metrics:
            st.caption("No limit_metered or limit_recurring metric yet.")
        for m in limit_metrics:
            _quota_block(m, shown, currency)
        gone = sorted(
            {c for c, slot in draft["charges"].items() if slot.get("on") and types.get(c) not in CHARGE_METRIC_TYPES}
            | {c for c, slot in draft["quotas"].items() if slot.get("on") and types.get(c) not in LIMIT_METRIC_TYPES}
        )
        if gone:
            st.warning(f"This plan prices {', '.join(md_code(c) for c in gone)}, which is no longer a metric of that "
                       "kind (deleted, or its type changed): saving drops it.", icon=":material/warning:")
        if "plan" in shown:
            st.error(md(shown["plan"]), icon=":material/error:")

        def request_save() -> None:
            ss[TRIED] = True
            ss[K + "save_now"] = True

        row = st.container(horizontal=True)
        may = auth.can(Action.edit_plans)
        row.button("Save plan", key=K + "save", type="primary", icon=":material/save:", on_click=request_save,
                   disabled=not may, help=None if may else "Saving plans needs the editor role.")
        row.button("Cancel", key=K + "cancel", on_click=close_editor)
        if not ss.pop(K + "save_now", False):
            return
        if all_errors:
            reasons = "\n".join(f"- **{md(label_of(k, names))}**: {md(v)}" for k, v in all_errors.items())
            st.error(f"Not saved. Fix these first:\n{reasons}", icon=":material/block:")
            return
        if not auth.allowed(Action.edit_plans, audit_action="plan.save", target=data["code"]):
            return
        plan = plan_store.save_plan(engine, plan=data)
        auth.record("plan.save", target=plan.code, detail=(
            f"{plan.name}: {plan.currency} {plan.interval}, base fee {plan.base_fee}, "
            f"{plural(len(plan.charges), 'charge')}, {plural(len(plan.quotas), 'quota')}, "
            f"{plural(len(plan.fixed_charges), 'fixed charge')}" + ("" if not editing else " (changed)")))
        ss[FLASH] = f"Saved plan {plan.name} ({plan.code})."
        close_editor()
        st.rerun()


def _cancel_delete() -> None:
    _ss().pop(DELETE, None)


@st.dialog("Delete plan", on_dismiss=_cancel_delete)
def confirm_delete(engine: Engine, code: str) -> None:
    plan = plan_store.get_plan(engine, code=code)
    if plan is None:
        st.info(f"The plan {md_code(code)} no longer exists.")
        if st.button("Close", key=K + "delete_close"):
            _cancel_delete()
            st.rerun()
        return
    subs = plan_store.subscriptions_on_plan(engine, code=code)
    st.markdown(f"Delete **{md(plan.name)}** ({md_code(code)})? This cannot be undone.")
    confirmed = True
    if subs:
        shown = ", ".join(md_code(s) for s in subs[:12]) + (f" and {len(subs) - 12} more" if len(subs) > 12 else "")
        st.markdown(f"{plural(len(subs), 'customer')} subscribed to it: {shown}. Their subscriptions are deleted "
                    "with the plan.")
        confirmed = st.checkbox(f"Also delete {plural(len(subs), 'subscription')}", key=K + "delete_ack")
    else:
        st.markdown("No customer is subscribed to it.")
    left, right = st.columns(2)
    may = auth.can(Action.edit_plans) and auth.can(Action.edit_subscriptions)
    if left.button("Delete plan", key=K + "delete_yes", type="primary", icon=":material/delete:",
                   disabled=not confirmed or not may, width="stretch") \
            and auth.allowed(Action.edit_plans, audit_action="plan.delete", target=code) \
            and (not subs or auth.allowed(Action.edit_subscriptions, audit_action="plan.delete", target=code)):
        for cid in subs:
            plan_store.delete_subscription(engine, customer_id=cid)
        plan_store.delete_plan(engine, code=code)
        auth.record("plan.delete", target=code, detail=f"{plan.name}; subscriptions deleted: {len(subs)}")
        if _ss().get(EDITING) == code:
            close_editor()
        _ss().pop(SUBS_TABLE, None)
        _ss()[FLASH] = f"Deleted plan {plan.name} ({code})" + (f" and {plural(len(subs), 'subscription')}." if subs else ".")
        _cancel_delete()
        st.rerun()
    if right.button("Cancel", key=K + "delete_no", width="stretch"):
        _cancel_delete()
        st.rerun()


def charges_summary(plan: Plan, metric_list: Sequence[MetricPublic]) -> list[str]:
    """One line per charge and quota with its price: "API Requests · $0.01 each (first 1,000
    free)", "LLM Tokens · $4.00 per 100,000 tokens", "SMS Credits · 1,000 sms a month, unused
    carries over · overage $0.02 each"."""
    by_code = {m.code: m for m in metric_list}
    lines = []
    for c in plan.charges:
        m = by_code.get(c.metric)
        lines.append(f"{m.name if m else c.metric} · {describe_price(c, plan.currency, m.unit if m else 'units')}")
    for q in plan.quotas:
        m = by_code.get(q.metric)
        unit = f" {m.unit}" if m else ""
        if m is not None and m.metric_type == MetricType.limit_metered:
            text = f"hard limit {fmt(q.limit)}{unit} a {plan.interval}"
        else:
            text = f"{fmt(q.limit)}{unit} a {plan.interval}, unused carries over"
            if q.max_carryover is not None:
                text += f" (at most {fmt(q.max_carryover)})"
            if q.overage_unit_price is not None:
                text += f" · overage {format_money(q.overage_unit_price, plan.currency, exact=True)} each"
        if q.alert_thresholds:
            text += " · alerts at " + ", ".join(f"{decimal_str(t)} %" for t in q.alert_thresholds)
        lines.append(f"{m.name if m else q.metric} · {text}")
    return lines


def _charges_summary(plan: Plan, metric_list: Sequence[MetricPublic]) -> str:
    return "  \n".join(md(line) for line in charges_summary(plan, metric_list)) or "—"


def _plan_list(engine: Engine, metric_list: Sequence[MetricPublic]) -> None:
    plans = ordered_plans(plan_store.list_plans(engine))
    subs = plan_store.list_subscriptions(engine)
    if not plans:
        st.info("No plans yet. Create one with **New plan**, or load the demo on the Workspace page.",
                icon=":material/sell:")
        return
    st.html(LIST_CSS)
    with st.container(border=True, key="plans-list"):
        header = st.columns(PLAN_LIST_COLUMNS)
        for col, title in zip(header, ["Plan & code", "Billing", "Base fee", "Charges and quotas",
                                       "Fixed charges & credit", "Customers", "", ""]):
            col.markdown(f"**{title}**" if title else "")
        for plan in plans:
            st.divider()
            cols = st.columns(PLAN_LIST_COLUMNS, vertical_alignment="center")
            cols[0].markdown(f"**{md(plan.name)}**  \n{md_code(plan.code)}")
            cols[1].markdown(f"{plan.currency} · {plan.interval}")
            cols[2].markdown(md(format_money(plan.base_fee, plan.currency)))
            cols[3].markdown(_charges_summary(plan, metric_list))
            fixed = "  \n".join(
                md(f"{f.name} {fmt(f.quantity)} × {format_money(f.unit_price, plan.currency, exact=True)}")
                for f in plan.fixed_charges) or "—"
            credit = format_money(plan.included_credit, plan.currency)
            cols[4].markdown(f"{fixed}  \n:gray[included credit {md(credit)}]")
            cols[5].markdown(fmt(sum(1 for s in subs if s.plan == plan.code)))
            cols[6].button("", key=f"{K}edit:{plan.code}", icon=":material/edit:", help=f"Edit {md(plan.name)}",
                           on_click=open_editor, args=(plan.code, engine))
            cols[7].button("", key=f"{K}del:{plan.code}", icon=":material/delete:", help=f"Delete {md(plan.name)}",
                           on_click=lambda c=plan.code: _ss().__setitem__(DELETE, c),
                           disabled=not auth.can(Action.edit_plans))


def _subscriptions(engine: Engine, frame: Events) -> None:
    ss = _ss()
    st.subheader("Subscriptions", anchor=False)
    plans = plan_store.list_plans(engine)
    tz = plan_store.get_timezone(engine)
    st.caption(f"Which plan each customer is on, from when. A bare date is midnight in the workspace timezone "
               f"({tz}); a blank start is saved as the day of the customer's first event (no period before it is "
               "billed). Add, edit or delete rows, then save.")
    if not plans:
        st.caption("Create a plan first.")
        return
    if SUBS_TABLE not in ss:
        ss[SUBS_BASE] = subscription_rows(engine)
    codes = [p.code for p in plans]
    base = pd.DataFrame(ss.get(SUBS_BASE) or [], columns=list(SUB_COLUMNS)).astype(object)
    st.data_editor(base, key=SUBS_TABLE, num_rows="dynamic", hide_index=True, width="stretch",
                   height=min(35 * (len(base) + 2) + 3, 560), column_config={
        "customer_id": st.column_config.TextColumn("Customer id", help="As in the events' customer_id"),
        "plan": st.column_config.SelectboxColumn("Plan", options=codes),
        "start": st.column_config.TextColumn("Start", help="2026-10-01 or 2026-10-15T08:00:00Z; blank: the day of the "
                                                            "customer's first event"),
    })
    rows = apply_table_edits(ss.get(SUBS_BASE) or [], ss.get(SUBS_TABLE), SUB_COLUMNS)
    subscribed = {r["customer_id"] for r in rows}
    missing = sorted(set(frame.customer_ids()) - subscribed)
    if missing:
        st.caption(f"{plural(len(missing), 'customer')} with events but no subscription: "
                   + ", ".join(md(c) for c in missing[:10]) + (" …" if len(missing) > 10 else ""))
    may = auth.can(Action.edit_subscriptions)
    if st.button("Save subscriptions", key=K + "subs_save", icon=":material/save:", disabled=not may,
                 help=None if may else "Saving subscriptions needs the editor role."):
        if not auth.allowed(Action.edit_subscriptions, audit_action="subscriptions.save"):
            return
        blank = [_clean(r.get("customer_id")) for r in rows if not _blank_row(r, SUB_COLUMNS) and not _clean(r.get("start"))]
        defaults = first_event_days(frame.first_event_us([c for c in blank if c]), tz) if blank else {}
        problems = subscription_errors(rows, set(codes), tz, defaults)
        if problems:
            st.error("Subscriptions not saved:\n" + "\n".join(f"- {md(p)}" for p in problems), icon=":material/block:")
            return
        saved, deleted = save_subscriptions(engine, rows, defaults)
        auth.record("subscriptions.save", detail=f"{saved} saved, {deleted} deleted")
        ss.pop(SUBS_TABLE, None)
        ss[FLASH] = f"Saved {plural(saved, 'subscription')}" + (f", deleted {deleted}." if deleted else ".")
        st.rerun()


def render(engine: Engine) -> None:
    ss = _ss()
    ss.setdefault(EDITING, None)
    if flash := ss.pop(FLASH, None):
        st.success(md(flash), icon=":material/check_circle:")
    metric_list = metrics.list_metrics(engine)
    frame = state.frame()
    if ss.get(EDITING) is None:
        st.button("New plan", key=K + "new", type="primary", icon=":material/add:", on_click=open_editor,
                  args=(None, engine))
    else:
        if DRAFT not in ss:
            open_editor(ss[EDITING] or None, engine)
        _editor(engine, metric_list, frame)
    _plan_list(engine, metric_list)
    _subscriptions(engine, frame)
    if code := ss.get(DELETE):
        confirm_delete(engine, code)
