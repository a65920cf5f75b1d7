"""The Developers page: the API's address, the API keys, per-metric snippets, the error format.

Pure helpers (no Streamlit calls) come first so tests can use them; `render_*` draw the page.
Keys are named and several (create, list, revoke; admins only, checked in the handlers). A new
key's clear text lives only in this session's `st.session_state["api:key_plain"]`, set when it is
created here (the editor's snippet panel embeds it from there too).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from metering import api, apikeys, metrics, plan_store, snippets
from metering.api.errors import ApiError
from metering.api.quota_routes import parse_quantity
from metering.access import Action
from metering.metrics import TEMPLATES
from metering.models import MetricBase, MetricCreate
from metering.quotas import alerts, entitlement
from metering.values import decimal_str
from workbench import peers as peers_ui
from workbench import auth
from workbench.text import md, md_code

KEY_PLAIN = "api:key_plain"  # shared with the editor's snippet panel
JUST_CREATED = "developers:just_created"  # the name of the key in KEY_PLAIN, while its notice shows
CONFIRM_REVOKE = "developers:confirm_revoke"
REVOKE_CHOICE = "developers:revoke_choice"
NEW_NAME = "developers:new_name"
NAME_ERROR = "developers:name_error"
FLASH = "developers:flash"
METRIC = "developers:metric"
QUOTA_METRIC = "developers:quota_metric"
QUOTA_CUSTOMER = "developers:quota_customer"
QUOTA_QUANTITY = "developers:quota_quantity"
DEFAULT_BASE_URL = "http://localhost:8501"

ENDPOINTS = [
    ("POST", "/api/v1/events", "One event object, or {\"events\": [...]} with up to 1,000 (one transaction); "
     "CloudEvents as application/cloudevents+json or application/cloudevents-batch+json", "yes"),
    ("GET", "/api/v1/metrics", "Every billable metric", "yes"),
    ("GET", "/api/v1/metrics/{code}", "One metric (404 if unknown)", "yes"),
    ("GET", "/api/v1/usage?metric=&customer_id=&from=&to=", "A metric's aggregate over [from, to), with its groups", "yes"),
    ("GET", "/api/v1/entitlements/{customer_id}/{metric}?quantity=N", "May the customer use N more units of a limit "
     "metric now? Limit, carryover, available, used, remaining, overage, has_access, fits (404 without a quota)", "yes"),
    ("GET", "/api/v1/alerts", "The usage alerts recorded when a quota's thresholds were crossed, newest first", "yes"),
    ("GET", "/api/v1/health", "Liveness and store check", "no"),
    ("GET", "/api/v1/openapi.json", "The OpenAPI 3.1 document", "no"),
]

ERRORS = [
    (401, "unauthorized", "No `Authorization: Bearer <key>` header, or not the workspace's key"),
    (404, "not_found", "No such metric or endpoint"),
    (405, "method_not_allowed", "Wrong HTTP method (the `Allow` header lists the right ones)"),
    (413, "body_too_large", f"Body over {api.MAX_BODY_BYTES:,} bytes: split the batch"),
    (422, "invalid_json", "The body is not UTF-8 JSON"),
    (422, "invalid_shape", 'Not an event object or {"events": [...]}'),
    (422, "too_many_events", f"More than {api.MAX_BATCH:,} events in one request"),
    (422, "invalid_event", "A single event breaks a rule; `errors` says which field and why"),
    (422, "quota_exceeded", "A single event would take the customer past a hard limit (`errors` has field `quota`)"),
    (422, "invalid_parameter", "A usage query parameter is missing or unreadable"),
]


# =========================================================================== pure helpers


def origin_of(url: str | None) -> str:
    """scheme://host:port of the page's address (the API lives at the server's root)."""
    if not url:
        return DEFAULT_BASE_URL
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return DEFAULT_BASE_URL
    return f"{parts.scheme}://{parts.netloc}"


def endpoints_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [{"Method": m, "Path": p, "What it does": d, "Needs the key": k} for m, p, d, k in ENDPOINTS]
    )


def errors_frame() -> pd.DataFrame:
    # A dataframe shows plain text: the Markdown code marks in ERRORS are dropped here.
    return pd.DataFrame([{"Status": s, "error": e, "When": w.replace("`", "")} for s, e, w in ERRORS])


def example_limit_metric() -> MetricBase:
    """A hard-limited metric for the entitlement examples when the workspace has no limit metric."""
    return MetricCreate.model_validate({**TEMPLATES["api_requests"].form(), "metric_type": "limit_metered"})


def quota_customers(engine: Engine, metric_code: str) -> list[str]:
    """Customers whose subscribed plan has a quota on the metric (the ones with an entitlement)."""
    limited = {p.code for p in plan_store.list_plans(engine) if p.quota_for(metric_code) is not None}
    return sorted(s.customer_id for s in plan_store.list_subscriptions(engine) if s.plan in limited)


REJECTION_EXAMPLE = (
    '{"accepted": 2, "duplicates": 0, "rejected": 1,\n'
    ' "errors": [{"index": 2, "field": "quota", "reason": "quota exceeded: metric \'api_requests\' has a hard '
    'limit of 1000 requests per period on plan \'starter\' (1000 used); one more would take usage to 1001. '
    'The period ends 2026-12-01T00:00:00Z"}]}'
)


def example_metric() -> MetricBase:
    """A metric to show snippets for when the workspace has none yet (the LLM Tokens template)."""
    return MetricCreate.model_validate(TEMPLATES["llm_tokens"].form())


# =========================================================================== rendering


def ensure_session_key(engine: Engine) -> str | None:
    """First start without a server (the server's start-up normally does this): create the key
    "default" if the store never had one; a key created now is kept in this session (shown once).
    Only for someone who may manage keys. Returns the reason when no key can be created."""
    if not auth.can(Action.manage_api_keys):
        return None
    try:
        created = apikeys.ensure_key(engine)
    except apikeys.WeakKey as exc:
        return str(exc)
    if created:  # (ensure_key writes its own audit row)
        st.session_state[KEY_PLAIN] = created
        st.session_state[JUST_CREATED] = apikeys.DEFAULT_NAME
    return None


def keys_frame(keys: list[apikeys.KeyInfo]) -> pd.DataFrame:
    def when(moment: datetime | None) -> str:
        return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"

    return pd.DataFrame(
        [{"Name": k.name, "Key": k.masked, "Created": when(k.created_at), "Created by": k.created_by or "—",
          "Last used": when(k.last_used_at)} for k in keys],
        columns=["Name", "Key", "Created", "Created by", "Last used"],
    )


def current_base_url() -> str:
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no browser context (AppTest, bare mode)
        url = None
    return origin_of(url)


def render_base(base_url: str) -> None:
    st.subheader("API")
    st.markdown(f"Base URL: {md_code(base_url + '/api/v1')} · served by this app, next to its pages.")
    st.link_button("OpenAPI document", f"{base_url}/api/v1/openapi.json", icon=":material/description:")
    st.dataframe(endpoints_frame(), hide_index=True, width="stretch")


def create_key(engine: Engine, name: str) -> bool:
    """The handler of "Create key": checks the role, creates, records; the key is shown once."""
    if not auth.allowed(Action.manage_api_keys, audit_action="apikey.create", target=name):
        return False
    try:
        info, plain = apikeys.create_key(engine, name, created_by=auth.current_user().label)
    except apikeys.KeyNameError as exc:
        st.session_state[NAME_ERROR] = str(exc)
        return False
    auth.record("apikey.create", target=info.name, detail=f"key {info.masked}")
    st.session_state[KEY_PLAIN] = plain
    st.session_state[JUST_CREATED] = info.name
    st.session_state.pop(NAME_ERROR, None)
    return True


def revoke_key(engine: Engine, key_id: int) -> bool:
    """The handler of "Revoke now": checks the role, revokes, records."""
    keys = {k.id: k for k in apikeys.list_keys(engine)}
    target = keys[key_id].name if key_id in keys else f"#{key_id}"
    if not auth.allowed(Action.manage_api_keys, audit_action="apikey.revoke", target=target):
        return False
    try:
        info = apikeys.revoke_key(engine, key_id)
    except KeyError:
        st.session_state[FLASH] = f"The key {target} was already revoked."
        return False
    auth.record("apikey.revoke", target=info.name, detail=f"key {info.masked}")
    st.session_state[FLASH] = f"Revoked the key {info.name} ({info.masked}): requests with it now get 401."
    return True


def _close_revoke() -> None:
    st.session_state.pop(CONFIRM_REVOKE, None)


@st.dialog("Revoke an API key", on_dismiss=_close_revoke)
def confirm_revoke(engine: Engine, key: apikeys.KeyInfo) -> None:
    st.markdown("Revoke this key? Code that sends it gets 401 from then on. Other keys keep working.")
    st.text(f"{key.name}  {key.masked}")
    left, right = st.columns(2)
    if left.button("Revoke now", key="developers:revoke_yes", type="primary", icon=":material/key_off:",
                   width="stretch", disabled=not auth.can(Action.manage_api_keys)) and revoke_key(engine, key.id):
        _close_revoke()
        st.rerun()
    if right.button("Cancel", key="developers:revoke_no", width="stretch"):
        _close_revoke()
        st.rerun()


def render_key(engine: Engine) -> None:
    st.subheader("API keys")
    manage = auth.can(Action.manage_api_keys)
    problem = ensure_session_key(engine)
    if problem:
        st.error(problem, icon=":material/key_off:")
    if flash := st.session_state.pop(FLASH, None):
        st.success(md(flash), icon=":material/key:")
    keys = apikeys.list_keys(engine)
    plain = st.session_state.get(KEY_PLAIN)
    if plain:
        created = st.session_state.get(JUST_CREATED)
        if created:
            st.success(f"This is the new key {md(created)}. Copy it now: it is stored only as a hash and will not be "
                       "shown again after this session.", icon=":material/key:")
        with st.container(key="developers-key-plain"):
            st.code(plain, language=None)  # its copy button copies the key itself
        st.caption("The snippets below and in the metric editor embed it while this session lasts.")
        if st.button("Hide the key", icon=":material/visibility_off:"):
            st.session_state.pop(KEY_PLAIN, None)
            st.session_state.pop(JUST_CREATED, None)
            st.rerun()
    if keys:
        st.dataframe(keys_frame(keys), hide_index=True, width="stretch", key="developers:keys")
    else:
        st.warning("There is no active API key: every request gets 401 until an admin creates one.", icon=":material/key:")
    st.caption(
        "Send a key as `Authorization: Bearer <key>`. Only hashes are stored, so a key is shown once, when it is "
        f"created: set it as `{apikeys.ENV_VAR}` where your code runs (the snippets read it from there). "
        "Several keys work at once (one per service or person), so a new key can replace an old one without "
        "downtime: create, deploy, then revoke the old one."
    )
    if not manage:
        st.caption("Creating and revoking keys needs the admin role.")
    left, right = st.columns(2, vertical_alignment="bottom")
    with left.form("developers:create", border=False, clear_on_submit=True):
        row = st.container(horizontal=True, vertical_alignment="bottom")
        name = row.text_input("Name of a new key", key=NEW_NAME, placeholder="e.g. billing-service", disabled=not manage,
                              max_chars=apikeys.MAX_NAME_LENGTH)
        if row.form_submit_button("Create key", icon=":material/add:", disabled=not manage):
            if create_key(engine, name):
                st.rerun()
        if error := st.session_state.get(NAME_ERROR):
            st.caption(f":red[:material/error: {md(error)}]")
    if keys:
        by_id = {k.id: k for k in keys}
        row = right.container(horizontal=True, vertical_alignment="bottom")
        chosen = row.selectbox("Key to revoke", list(by_id), key=REVOKE_CHOICE, disabled=not manage,
                               format_func=lambda i: f"{by_id[i].name} · {by_id[i].masked}")
        if row.button("Revoke…", key="developers:revoke", icon=":material/key_off:", disabled=not manage):
            st.session_state[CONFIRM_REVOKE] = chosen
        pending = st.session_state.get(CONFIRM_REVOKE)
        if pending in by_id:
            confirm_revoke(engine, by_id[pending])


def render_snippets(engine: Engine, base_url: str) -> None:
    st.subheader("Send events")
    available = metrics.list_metrics(engine)
    if available:
        by_code = {m.code: m for m in available}
        code = st.selectbox("Metric", list(by_code), key=METRIC, format_func=lambda c: f"{by_code[c].name} ({c})")
        metric: MetricBase = by_code[code] if code in by_code else available[0]
    else:
        st.info("No metrics yet: these snippets send an event for the LLM Tokens template.", icon=":material/info:")
        metric = example_metric()
    plain = st.session_state.get(KEY_PLAIN)
    code_by_language = snippets.snippets(metric, base_url=base_url, api_key=plain)
    if plain is None:
        st.caption(f"The code reads the key from the `{apikeys.ENV_VAR}` environment variable.")
    st.caption(
        f"Event {md_code(metric.event_name)} with an example of every property the metric reads; "
        "the timestamp is the time the code runs and the `idempotency_key` a new UUID each run, so two "
        "identical events are two events. To retry a request safely, resend it with the same key."
    )
    curl, python, javascript = st.tabs(["cURL", "Python", "JavaScript"])
    curl.code(code_by_language["curl"], language="bash")
    python.code(code_by_language["python"], language="python")
    javascript.code(code_by_language["javascript"], language="javascript")
    javascript.caption("Node 18+ as an ES module (top-level await): save as `send.mjs` or run with `node --input-type=module`.")


def render_errors() -> None:
    st.subheader("Errors")
    st.markdown('Every error is JSON: `{"error": "<code>", "detail": "<what was wrong>"}`.')
    st.dataframe(errors_frame(), hide_index=True, width="stretch")
    st.markdown(
        "A batch is stored whole or not at all; its bad events are answered in `errors` "
        '(`{"index", "field", "reason"}`) while the good ones are stored, like a file import. '
        "Resending an event is safe: a repeated `idempotency_key` (or, without one, the same content) "
        "counts as a duplicate."
    )
    st.code(
        '{"accepted": 998, "duplicates": 1, "rejected": 1,\n'
        ' "errors": [{"index": 17, "field": "timestamp", "reason": "timestamp is required"}]}',
        language="json",
    )


def render_quotas(engine: Engine, base_url: str) -> None:
    st.subheader("Quotas and alerts")
    st.markdown(
        "**Hard limits.** An event sent to `POST /api/v1/events` that feeds a `limit_metered` metric on which the "
        "customer's plan has a quota is refused when it would take the period's usage past the limit: it is not "
        "stored and comes back in `errors` with field `quota` (the reason names the metric, the limit and the "
        "period's end); the batch's other events are stored. A single event gets status 422 (`quota_exceeded`). "
        "Soft limits (`limit_recurring`) never refuse: usage past them is overage. File imports are history and "
        "are never refused."
    )
    st.code(REJECTION_EXAMPLE, language="json", wrap_lines=True)
    plain = st.session_state.get(KEY_PLAIN)
    limited = [m for m in metrics.list_metrics(engine) if snippets.is_limit(m)]
    if limited:
        by_code = {m.code: m for m in limited}
        cols = st.columns([2, 2, 1])
        code = cols[0].selectbox("Quota", list(by_code), key=QUOTA_METRIC,
                                 help="The limit metrics: those a plan's quota can limit.",
                                 format_func=lambda c: f"{by_code[c].name} ({c}) · {by_code[c].metric_type.value}")
        metric: MetricBase = by_code.get(code, limited[0])
        customers = quota_customers(engine, metric.code)
        if customers:
            cid = cols[1].selectbox("Customer", customers, key=f"{QUOTA_CUSTOMER}:{metric.code}")
        else:
            cid = cols[1].text_input("Customer", value="cus_001", key=f"{QUOTA_CUSTOMER}:{metric.code}:typed",
                                     max_chars=255, help="No customer's plan has a quota on this metric yet: "
                                     "the check answers 404 until one has.")
    else:
        st.info("No limit metric yet: these examples use API Requests as a hard-limited metric.", icon=":material/info:")
        metric, cid, cols = example_limit_metric(), "cus_001", st.columns([2, 2, 1])
    default_quantity = decimal_str(snippets.event_quantity(metric))
    typed = cols[2].text_input("Quantity", value=default_quantity, key=f"{QUOTA_QUANTITY}:{metric.code}",
                               help="How many more units to ask about (default: what one example event uses).")
    try:
        quantity = parse_quantity(typed.strip() or "1")
    except ApiError as exc:
        cols[2].caption(f":red[:material/error: {md(exc.detail)}]")
        quantity = snippets.event_quantity(metric)
    st.markdown(
        f"**Entitlement check.** `GET /api/v1/entitlements/{{customer_id}}/{{metric}}?quantity=N` answers whether the "
        "customer may use N more units now: the period, `limit`, `carryover` and `overage` (limit_recurring only, "
        "else null), `available`, `used`, `remaining` = max(available − used, 0), `has_access` (remaining > 0 for a "
        "hard limit, always true for a soft one) and `fits`. Decimals are strings. 404 when the customer's plan has "
        "no quota on the metric."
    )
    code_by_language = snippets.entitlement_snippets(metric, base_url=base_url, api_key=plain, customer_id=cid,
                                                     quantity=quantity)
    curl, python, javascript = st.tabs(["cURL", "Python", "JavaScript"])
    curl.code(code_by_language["curl"], language="bash")
    python.code(code_by_language["python"], language="python")
    javascript.code(code_by_language["javascript"], language="javascript")
    if limited:
        try:
            answer: Any = entitlement.check(engine, cid, metric.code, quantity=quantity).to_json()
        except entitlement.NoQuota as exc:
            answer = {"error": "not_found", "detail": exc.detail}
        st.caption(f"What it answers now for {md(cid)} (status {'404' if 'error' in answer else '200'}):")
        st.code(json.dumps(answer, indent=2, ensure_ascii=False), language="json")

    st.markdown(
        "**Usage alerts.** A plan's quota may carry alert thresholds (percentages of the period's available units, "
        "on the Plans page). When events sent to the API reach one, an alert is recorded once per customer, metric "
        "and period: listed on the Alerts page and by `GET /api/v1/alerts` (newest first; optional `customer_id`, "
        "`metric`, `limit`), and POSTed to the workspace's webhook, if one is set, signed with "
        f"`{alerts.SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body>`."
    )
    alert_code = snippets.alerts_snippets(base_url=base_url, api_key=plain)
    curl, python, javascript = st.tabs(["cURL", "Python", "JavaScript"])
    curl.code(alert_code["curl"], language="bash")
    python.code(alert_code["python"], language="python")
    javascript.code(alert_code["javascript"], language="javascript")


def render(engine: Engine) -> None:
    base_url = current_base_url()
    render_base(base_url)
    render_key(engine)
    render_snippets(engine, base_url)
    render_quotas(engine, base_url)
    render_errors()
    peers_ui.render_export(engine)


