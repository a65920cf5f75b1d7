"""The Developers page: the API's address, the workspace key, per-metric snippets, the error format.

Pure helpers (no Streamlit calls) come first so tests can use them; `render_*` draw the page.
The clear-text key lives only in this session's `st.session_state["api:key_plain"]`, set when
the key is created or rotated here (the editor's snippet panel embeds it from there too).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from metering import api, apikeys, metrics, snippets
from metering.metrics import TEMPLATES
from metering.models import MetricBase, MetricCreate
from workbench import peers as peers_ui

KEY_PLAIN = "api:key_plain"  # shared with the editor's snippet panel
CONFIRM_ROTATE = "developers:confirm_rotate"
JUST_ROTATED = "developers:just_rotated"
METRIC = "developers:metric"
DEFAULT_BASE_URL = "http://localhost:8501"

ENDPOINTS = [
    ("POST", "/api/v1/events", "One event object, or {\"events\": [...]} with up to 1,000 (one transaction); "
     "CloudEvents as application/cloudevents+json or application/cloudevents-batch+json", "yes"),
    ("GET", "/api/v1/metrics", "Every billable metric", "yes"),
    ("GET", "/api/v1/metrics/{code}", "One metric (404 if unknown)", "yes"),
    ("GET", "/api/v1/usage?metric=&customer_id=&from=&to=", "A metric's aggregate over [from, to), with its groups", "yes"),
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


def example_metric() -> MetricBase:
    """A metric to show snippets for when the workspace has none yet (the LLM Tokens template)."""
    return MetricCreate.model_validate(TEMPLATES["llm_tokens"].form())


# =========================================================================== rendering


def ensure_session_key(engine: Engine) -> str | None:
    """Create the workspace key if the store has none; a key created now is kept in this
    session (shown once). Returns the reason when no key can be created."""
    try:
        created = apikeys.ensure_key(engine)
    except apikeys.WeakKey as exc:
        return str(exc)
    if created:
        st.session_state[KEY_PLAIN] = created
        st.session_state[JUST_ROTATED] = True
    return None


def current_base_url() -> str:
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no browser context (AppTest, bare mode)
        url = None
    return origin_of(url)


def render_base(base_url: str) -> None:
    st.subheader("API")
    st.markdown(f"Base URL: `{base_url}/api/v1` · served by this app, next to its pages.")
    st.link_button("OpenAPI document", f"{base_url}/api/v1/openapi.json", icon=":material/description:")
    st.dataframe(endpoints_frame(), hide_index=True, width="stretch")


def render_key(engine: Engine) -> None:
    st.subheader("API key")
    problem = ensure_session_key(engine)
    info = apikeys.key_info(engine)
    if problem:
        st.error(problem, icon=":material/key_off:")
    if info is None:
        st.warning("There is no API key yet.", icon=":material/key:")
    plain = st.session_state.get(KEY_PLAIN)
    if plain:
        if st.session_state.pop(JUST_ROTATED, False):
            st.success("This is the new key. Copy it now: it is stored only as a hash and will not be shown again "
                       "after this session.", icon=":material/key:")
        with st.container(key="developers-key-plain"):
            st.code(plain, language=None)  # its copy button copies the key itself
        st.caption("The snippets below and in the metric editor embed it while this session lasts.")
        if st.button("Hide the key", icon=":material/visibility_off:"):
            st.session_state.pop(KEY_PLAIN, None)
            st.rerun()
    elif info is not None:
        # Text, not a code block: a copy button here would copy the dots, not a key.
        st.markdown(f"Key: `{info.masked}`", help="Only a hash is stored: the key itself cannot be shown or copied again.")
        st.caption(
            f"Created {info.created_at:%Y-%m-%d %H:%M} UTC. Only a hash is stored, so the key cannot be shown again: "
            f"set it as `{apikeys.ENV_VAR}` where your code runs (the snippets read it from there), or rotate to get a new one."
        )
    st.caption("Send it as `Authorization: Bearer <key>`.")
    if not st.session_state.get(CONFIRM_ROTATE):
        if st.button("Rotate key", icon=":material/autorenew:"):
            st.session_state[CONFIRM_ROTATE] = True
            st.rerun()
    else:
        st.warning("Rotating replaces the key at once: code using the old key gets 401 from then on.", icon=":material/warning:")
        confirm, cancel = st.columns(2)
        if confirm.button("Rotate now", type="primary", icon=":material/autorenew:"):
            st.session_state[KEY_PLAIN] = apikeys.rotate_key(engine)
            st.session_state[JUST_ROTATED] = True
            st.session_state[CONFIRM_ROTATE] = False
            st.rerun()
        if cancel.button("Cancel"):
            st.session_state[CONFIRM_ROTATE] = False
            st.rerun()


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
        f"Event `{metric.event_name}` with an example of every property the metric reads; "
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


def render(engine: Engine) -> None:
    base_url = current_base_url()
    render_base(base_url)
    render_key(engine)
    render_snippets(engine, base_url)
    render_errors()
    peers_ui.render_export(engine)


