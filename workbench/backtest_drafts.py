"""Draft plans on the Backtest page: duplicate a plan, change its prices, see the backtest move,
then save the draft as a plan or discard it.

A draft lives in session state only (`backtest:drafts`: code → the plan's data as copied, its
*source*). Each editable field is a widget keyed `backtest:d:<code>:<path>` (the plan data
path, e.g. `charges.0.unit_price`); tier tables are data editors whose edits apply to the
source rows (`workbench.plans.apply_table_edits`). At the top of every run :func:`current`
reads the widgets into plan data, which :func:`metering.backtest.drafts.draft_errors` checks
exactly as the plan form is checked; a valid draft is priced with the other plans.

What a draft can change: its name, the base fee, included credit, fixed charges' quantity and
unit price, each charge's model, free units and the model's prices (unit price, tiers, package,
rate and fee per event), each quota's limit, carryover cap and overage price. Currency and
interval stay the source's (so the draft stays comparable with it); the code is generated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from metering import plan_store
from metering.backtest import drafts
from metering.models import MetricBase
from metering.plans import CHARGE_MODELS, Plan
from workbench.editor import field_error, md
from workbench.plans import MODEL_FIELDS, MODEL_LABELS, TIER_COLUMNS, apply_table_edits

K = "backtest:"
DRAFTS = K + "drafts"
FLASH = K + "flash"
PREFIX = K + "d:"
BASE = K + "dbase:"
ROW = [1.5, 1.3, 1, 1, 1]  # what · model · three fields
FIELD_LABELS = {
    "name": "Name", "base_fee": "Base fee", "included_credit": "Included credit", "quantity": "Quantity",
    "unit_price": "Unit price", "free_units": "Free units", "package_size": "Package size",
    "package_price": "Package price", "rate": "Rate (%)", "fixed_fee": "Fee per event", "limit": "Limit",
    "max_carryover": "Max carryover", "overage_unit_price": "Overage unit price", "model": "Charge model",
    "up_to": "up to", "flat_fee": "flat fee", "tiers": "Tiers",
}


def key(code: str, path: str) -> str:
    return f"{PREFIX}{code}:{path}"


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _tier_rows(tiers: Sequence[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    rows = []
    for tier in tiers or []:
        fee = _clean(tier.get("flat_fee"))
        rows.append({"up_to": _clean(tier.get("up_to")), "unit_price": _clean(tier.get("unit_price")),
                     "flat_fee": "" if fee in ("", "0") else fee})
    return rows


def plan_data(source: Mapping[str, Any], value_of: Callable[[str], Any]) -> dict[str, Any]:
    """The draft as plan data: the source with each field the person changed (``value_of(path)``
    is the widget's value, None when the widget was never drawn). Blank optional fields are
    left out (the engine's default applies); a blank required one stays blank, so the form's
    rule ("… is required") is reported beside it."""
    def get(path: str, default: Any) -> Any:
        found = value_of(path)
        return default if found is None else found

    data: dict[str, Any] = {k: copy.deepcopy(v) for k, v in source.items() if k not in ("charges", "quotas", "fixed_charges")}
    data["name"] = _clean(get("name", source.get("name")))
    for name in ("base_fee", "included_credit"):
        text = _clean(get(name, source.get(name)))
        if text:
            data[name] = text
        else:
            data.pop(name, None)
    data["fixed_charges"] = []
    for i, fixed in enumerate(source.get("fixed_charges") or []):
        entry = {"name": fixed["name"], "unit_price": _clean(get(f"fixed_charges.{i}.unit_price", fixed.get("unit_price")))}
        quantity = _clean(get(f"fixed_charges.{i}.quantity", fixed.get("quantity")))
        if quantity:
            entry["quantity"] = quantity
        data["fixed_charges"].append(entry)
    data["charges"] = []
    for i, charge in enumerate(source.get("charges") or []):
        model = get(f"charges.{i}.model", charge.get("model"))
        entry = {"metric": charge["metric"], "model": model}
        free = _clean(get(f"charges.{i}.free_units", charge.get("free_units")))
        if free:
            entry["free_units"] = free
        for name in MODEL_FIELDS.get(model, ()):
            if name == "tiers":
                rows = get(f"charges.{i}.tiers", _tier_rows(charge.get("tiers")))
                tiers = []
                for row in rows:
                    if all(_clean(row.get(c)) == "" for c in TIER_COLUMNS):
                        continue
                    tier: dict[str, Any] = {"up_to": _clean(row.get("up_to")) or None,
                                            "unit_price": _clean(row.get("unit_price")) or None}
                    if _clean(row.get("flat_fee")):
                        tier["flat_fee"] = _clean(row.get("flat_fee"))
                    tiers.append(tier)
                entry["tiers"] = tiers
            else:
                text = _clean(get(f"charges.{i}.{name}", charge.get(name)))
                if text or name != "fixed_fee":
                    entry[name] = text or None
        data["charges"].append(entry)
    data["quotas"] = []
    for i, quota in enumerate(source.get("quotas") or []):
        entry = {"metric": quota["metric"], "limit": _clean(get(f"quotas.{i}.limit", quota.get("limit"))) or None}
        for name in ("max_carryover", "overage_unit_price"):
            text = _clean(get(f"quotas.{i}.{name}", quota.get(name)))
            if text:
                entry[name] = text
        data["quotas"].append(entry)
    return data


def widget_errors(errors: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The engine's messages keyed by the widget they belong to: a tier's message goes to its
    table ("row 2 (up to): …"), the rest to its field; "" for the draft as a whole."""
    out: dict[str, str] = {}
    for path, message in errors:
        parts = path.split(".") if path else []
        if len(parts) >= 4 and parts[2] == "tiers" and parts[3].isdigit():
            field = FIELD_LABELS.get(parts[4], parts[4]) if len(parts) > 4 else "tier"
            target, text = ".".join(parts[:3]), f"row {int(parts[3]) + 1} ({field}): {message}"
        elif (len(parts) == 1 and parts[0] in ("name", "base_fee", "included_credit")) or (
                len(parts) == 3 and parts[0] in ("charges", "quotas", "fixed_charges")):
            target, text = path, message  # a field the draft editor shows
        else:
            target, text = "", message
        out[target] = f"{out[target]}; {text}" if target in out and text not in out[target] else text
    return out


# --- session state ------------------------------------------------------------------------


def _ss() -> Any:
    return st.session_state


def sources() -> dict[str, dict[str, Any]]:
    return _ss().setdefault(DRAFTS, {})


def _value_of(code: str) -> Callable[[str], Any]:
    ss = _ss()

    def value(path: str) -> Any:
        k = key(code, path)
        if k not in ss:
            return None
        if path.endswith(".tiers"):
            return apply_table_edits(ss.get(BASE + k, []), ss[k], TIER_COLUMNS)
        return ss[k]

    return value


def current(metric_types: Mapping[str, str], taken: Sequence[str]) -> dict[str, tuple[dict[str, Any], list[tuple[str, str]]]]:
    """code → (the draft's plan data now, its problems), from the widgets' values."""
    out = {}
    all_codes = list(taken) + list(sources())
    for code, source in sources().items():
        data = plan_data(source, _value_of(code))
        others = [c for c in all_codes if c != code]
        out[code] = (data, drafts.draft_errors(data, metric_types, others))
    return out


def add_draft(plan: Plan, taken: Sequence[str]) -> str:
    data = drafts.duplicate(plan, [*taken, *sources()])
    sources()[data["code"]] = data
    return data["code"]


def _forget(code: str) -> None:
    sources().pop(code, None)
    for k in list(_ss()):
        if isinstance(k, str) and k.startswith((f"{PREFIX}{code}:", f"{BASE}{PREFIX}{code}:")):
            del _ss()[k]


def discard(code: str, plans_key: str) -> None:
    _forget(code)
    chosen = _ss().get(plans_key)
    if isinstance(chosen, list) and code in chosen:
        _ss()[plans_key] = [c for c in chosen if c != code]
    _ss()[FLASH] = f"Discarded the draft {code}."


def save(engine: Engine, code: str, metric_types: Mapping[str, str], taken: Sequence[str]) -> None:
    """Store the draft as it is now (read again from the widgets) when it is valid."""
    if code not in sources():
        return
    data = plan_data(sources()[code], _value_of(code))
    errors = drafts.draft_errors(data, metric_types, [c for c in [*taken, *sources()] if c != code])
    if errors:
        _ss()[FLASH + ":error"] = (code, "Not saved: fix the fields marked in red first.")
        return
    plan = plan_store.save_plan(engine, plan=data)
    _forget(code)  # the stored plan keeps the code, so the backtest's choice of plans stays
    _ss()[FLASH] = f"Saved the draft as plan {plan.name} ({plan.code}); it is on the Plans page now."


def _metric_types(metrics: Mapping[str, MetricBase]) -> dict[str, str]:
    return {code: str(getattr(m.metric_type, "value", m.metric_type)) for code, m in metrics.items()}


# --- drawing --------------------------------------------------------------------------------


def _seed(k: str, value: Any) -> str:
    if k not in _ss():
        _ss()[k] = value
    return k


def _text(container: Any, code: str, path: str, label: str, source_value: Any, errors: Mapping[str, str], **kw: Any) -> None:
    k = _seed(key(code, path), _clean(source_value))
    with container:
        st.text_input(label, key=k, **kw)
        field_error(errors.get(path))


def _tiers(code: str, path: str, source_tiers: Any, currency: str, unit: str, errors: Mapping[str, str]) -> None:
    k = key(code, path)
    if k not in _ss():
        _ss()[BASE + k] = _tier_rows(source_tiers) or [{"up_to": "", "unit_price": "", "flat_fee": ""}]
    rows = pd.DataFrame(_ss()[BASE + k], columns=list(TIER_COLUMNS)).astype(object)
    st.data_editor(rows, key=k, num_rows="dynamic", hide_index=True, width="stretch", column_config={
        "up_to": st.column_config.TextColumn(f"Up to ({unit}, inclusive)", help="Blank on the last tier: and above"),
        "unit_price": st.column_config.TextColumn(f"Unit price ({currency})"),
        "flat_fee": st.column_config.TextColumn(f"Flat fee ({currency})"),
    })
    field_error(errors.get(path))


def _editor(engine: Engine, code: str, source: dict[str, Any], data: dict[str, Any], errors: list[tuple[str, str]],
            metrics: Mapping[str, MetricBase], plans_key: str, taken: Sequence[str]) -> None:
    shown = widget_errors(errors)
    cur = source["currency"]
    with st.container(border=True, key=f"backtest-draft-{code}"):
        st.markdown(f"**Draft `{code}`** · {cur} · every {source.get('interval', 'month')} · only in this session")
        c = st.columns([2.6, 1, 1, 1], vertical_alignment="bottom")
        _text(c[0], code, "name", "Name", source.get("name"), shown)
        _text(c[1], code, "base_fee", f"Base fee ({cur})", source.get("base_fee"), shown, placeholder="0")
        _text(c[2], code, "included_credit", f"Included credit ({cur})", source.get("included_credit"), shown,
              placeholder="0")
        for i, fixed in enumerate(source.get("fixed_charges") or []):
            c = st.columns(ROW, vertical_alignment="bottom")
            c[0].markdown(f"**{md(fixed['name'])}**  \n:gray[fixed charge]")
            _text(c[2], code, f"fixed_charges.{i}.quantity", "Quantity", fixed.get("quantity"), shown)
            _text(c[3], code, f"fixed_charges.{i}.unit_price", f"Unit price ({cur})", fixed.get("unit_price"), shown)
        for i, charge in enumerate(source.get("charges") or []):
            metric = metrics.get(charge["metric"])
            unit = metric.unit if metric is not None else ""
            name = metric.name if metric is not None else charge["metric"]
            base = f"charges.{i}"
            c = st.columns(ROW, vertical_alignment="bottom")
            c[0].markdown(f"**{md(name)}**  \n:gray[usage charge]")
            k = _seed(key(code, f"{base}.model"), charge.get("model") if charge.get("model") in CHARGE_MODELS else "standard")
            c[1].selectbox("Charge model", list(CHARGE_MODELS), key=k, format_func=lambda m: MODEL_LABELS[m].split(" — ")[0])
            model = _ss()[k]
            _text(c[2], code, f"{base}.free_units", f"Free units ({unit})", charge.get("free_units"), shown, placeholder="0")
            if model == "standard":
                _text(c[3], code, f"{base}.unit_price", f"Unit price ({cur})", charge.get("unit_price"), shown)
            elif model == "package":
                _text(c[3], code, f"{base}.package_size", f"Package size ({unit})", charge.get("package_size"), shown)
                _text(c[4], code, f"{base}.package_price", f"Package price ({cur})", charge.get("package_price"), shown)
            elif model == "percentage":
                _text(c[3], code, f"{base}.rate", "Rate (%)", charge.get("rate"), shown)
                _text(c[4], code, f"{base}.fixed_fee", f"Fee per event ({cur})", charge.get("fixed_fee"), shown,
                      placeholder="0")
            else:
                _tiers(code, f"{base}.tiers", charge.get("tiers"), cur, unit, shown)
            field_error(shown.get(base))
        for i, quota in enumerate(source.get("quotas") or []):
            metric = metrics.get(quota["metric"])
            name = metric.name if metric is not None else quota["metric"]
            unit = metric.unit if metric is not None else ""
            recurring = metric is not None and str(getattr(metric.metric_type, "value", metric.metric_type)) == "limit_recurring"
            c = st.columns(ROW, vertical_alignment="bottom")
            c[0].markdown(f"**{md(name)}**  \n:gray[quota]")
            _text(c[2], code, f"quotas.{i}.limit", f"Limit ({unit})", quota.get("limit"), shown)
            if recurring:
                _text(c[3], code, f"quotas.{i}.max_carryover", f"Max carryover ({unit})", quota.get("max_carryover"),
                      shown, placeholder="no cap")
                _text(c[4], code, f"quotas.{i}.overage_unit_price", f"Overage price ({cur})",
                      quota.get("overage_unit_price"), shown, placeholder="not billed")
        if "" in shown:
            st.error(md(shown[""]), icon=":material/error:")
        failed = _ss().get(FLASH + ":error")
        if failed and failed[0] == code:
            st.error(md(failed[1]), icon=":material/block:")
            _ss().pop(FLASH + ":error", None)
        row = st.container(horizontal=True)
        row.button("Save as plan", key=f"{K}save:{code}", icon=":material/save:", type="primary",
                   on_click=save, args=(engine, code, _metric_types(metrics), list(taken)),
                   help="Store the draft as a plan (checked as the plan form checks it).")
        row.button("Discard", key=f"{K}discard:{code}", icon=":material/delete:", on_click=discard, args=(code, plans_key))
        if errors:
            row.caption(":red[Not in the backtest until the fields marked in red are fixed.]")


def panel(
    engine: Engine,
    stored: Sequence[Plan],
    state: Mapping[str, tuple[dict[str, Any], list[tuple[str, str]]]],
    metrics: Mapping[str, MetricBase],
    *,
    plans_key: str,
    on_duplicate: Callable[[str, str], None],
) -> None:
    """The drafts panel: duplicate a stored plan, then each draft's editor."""
    names = {p.code: p.name for p in stored}
    with st.expander("Drafts — try a price change without saving it", expanded=bool(state), icon=":material/edit_note:"):
        st.caption("A draft is a copy of a plan that only this session sees. Change a price, a tier, free units or the "
                   "base fee: the backtest above follows at once. Save it as a plan when it is right, or discard it.")
        c = st.columns([2, 1], vertical_alignment="bottom")
        source = c[0].selectbox("Plan to copy", list(names), key=K + "dup_source",
                                format_func=lambda code: f"{names[code]} ({code})")

        def duplicate() -> None:
            plan = next(p for p in stored if p.code == _ss()[K + "dup_source"])
            on_duplicate(add_draft(plan, list(names)), plan.code)

        c[1].button("Duplicate as draft", key=K + "duplicate", icon=":material/content_copy:", on_click=duplicate,
                    disabled=source is None)
        for code, (data, errors) in state.items():
            _editor(engine, code, sources()[code], data, errors, metrics, plans_key, list(names))
