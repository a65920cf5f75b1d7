"""The Alerts page: usage alerts recorded when a quota's thresholds were crossed, and the webhook.

The rows come from `metering.quotas.alerts.list_alerts` (the same as `GET /api/v1/alerts`); the
table is plain text (ids are user text) and the CSV goes through `workbench.downloads` (safe CSV).
The webhook (URL + signing secret) is set here by admins only: the handler checks the role on the
server (`auth.allowed`) before writing, and each field's problem is the engine's sentence
(`alerts.webhook_problem`), shown beside that field.

Rules decided here:

- Alerts are listed newest first, at most MAX_ROWS (the caption says when there are more).
- Times are in the workspace timezone; the period is the alert's billing period, end exclusive.
- Viewers and editors see that a webhook is set and its host, not its URL or secret (a URL may
  carry a token); admins see the URL and the secret's last four characters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from metering import plan_store
from metering.access import Action
from metering.quotas import alerts
from metering.values import decimal_str
from workbench import auth, downloads
from workbench.editor import field_error
from workbench.invoices import local
from workbench.text import md, md_code

KEY = "alerts:"
ALL = "(all)"
MAX_ROWS = 1000
COLUMNS = ["reached at", "customer_id", "metric", "plan", "threshold (%)", "period start", "period end", "used",
           "available", "delivery", "attempts", "delivered at", "last error"]
URL_KEY, SECRET_KEY = KEY + "url", KEY + "secret"
ERRORS = KEY + "errors"  # {"url": message, "secret": message} from the last Save
FLASH = KEY + "flash"
_GOOD_URL, _GOOD_SECRET = "https://receiver.example/alerts", "x" * alerts.MIN_SECRET


def _when(moment: datetime | None, tz: str) -> str:
    return "" if moment is None else f"{local(moment, tz):%Y-%m-%d %H:%M:%S}"


def alerts_frame(rows: list[alerts.Alert], tz: str) -> pd.DataFrame:
    """One row per alert, every figure as exact text."""
    return pd.DataFrame([{
        "reached at": _when(a.created_at, tz), "customer_id": a.customer_id, "metric": a.metric, "plan": a.plan,
        "threshold (%)": decimal_str(a.threshold), "period start": _when(a.period_start, tz),
        "period end": _when(a.period_end, tz), "used": decimal_str(a.used), "available": decimal_str(a.available),
        "delivery": a.delivery, "attempts": a.attempts, "delivered at": _when(a.delivered_at, tz),
        "last error": a.last_error or "",
    } for a in rows], columns=COLUMNS)


def field_problems(url: Any, secret: Any) -> dict[str, str]:
    """The engine's sentence for each field on its own (the other field taken as valid), so each
    message is drawn beside the field it is about."""
    out = {}
    if (problem := alerts.webhook_problem(url, _GOOD_SECRET)) is not None:
        out["url"] = problem
    if (problem := alerts.webhook_problem(_GOOD_URL, secret)) is not None:
        out["secret"] = problem
    return out


def masked(secret: str) -> str:
    return f"…{secret[-4:]}" if len(secret) > 4 else "…"


def save_webhook(engine: Engine, url: str, secret: str) -> bool:
    """The handler of "Save webhook": checks the role, then the fields, then stores and records."""
    host = urlsplit(url.strip()).hostname or ""
    if not auth.allowed(Action.manage_webhook, audit_action="webhook.set", target=host):
        return False
    problems = field_problems(url, secret)
    if problems:
        st.session_state[ERRORS] = problems
        return False
    hook = alerts.set_webhook(engine, url=url, secret=secret)
    auth.record("webhook.set", target=urlsplit(hook.url).hostname or "", detail=f"secret {masked(hook.secret)}")
    st.session_state.pop(ERRORS, None)
    st.session_state[FLASH] = f"Saved the webhook: alerts are now POSTed to {hook.url}, signed with the secret."
    return True


def remove_webhook(engine: Engine) -> bool:
    if not auth.allowed(Action.manage_webhook, audit_action="webhook.clear"):
        return False
    if alerts.clear_webhook(engine):
        auth.record("webhook.clear")
        st.session_state[FLASH] = "Removed the webhook: alerts are still recorded, and sent nowhere."
    return True


def render_alerts(engine: Engine, tz: str) -> None:
    everything = alerts.list_alerts(engine, limit=MAX_ROWS + 1)
    customers = sorted({a.customer_id for a in everything})
    codes = sorted({a.metric for a in everything})
    top = st.columns([2, 2, 1], vertical_alignment="bottom")
    who = top[0].selectbox("Customer", [ALL, *customers], key=KEY + "customer")
    what = top[1].selectbox("Metric", [ALL, *codes], key=KEY + "metric")
    top[2].button("Refresh", key=KEY + "refresh", icon=":material/refresh:", width="stretch")
    rows = alerts.list_alerts(engine, customer_id=None if who == ALL else who, metric=None if what == ALL else what,
                              limit=MAX_ROWS + 1)
    shown = rows[:MAX_ROWS]
    table = alerts_frame(shown, tz)
    st.caption(f"{len(shown):,} alert{'' if len(shown) == 1 else 's'}, newest first"
               + (f" (the newest {MAX_ROWS:,})" if len(rows) > MAX_ROWS else "")
               + f". Times in {tz}; a period's end is exclusive. Each threshold is recorded once per customer, "
               "metric and period, when events sent to the API reach it (file imports record none).")
    if not shown:
        st.info("No alerts recorded yet. Give a plan's quota alert thresholds (Plans page, e.g. 80, 100): when events "
                "sent to the API take a subscriber's usage to one, it appears here.", icon=":material/notifications:")
    downloads.csv_button("Alerts (CSV)", table, file_name="usage-alerts.csv", key=KEY + "csv")
    st.dataframe(table, hide_index=True, width="stretch", key=KEY + "table",
                 column_config={c: st.column_config.TextColumn(c, alignment="right")
                                for c in ("threshold (%)", "used", "available")})


def render_webhook(engine: Engine) -> None:
    st.subheader("Webhook", anchor=False)
    admin = auth.can(Action.manage_webhook)
    hook = alerts.get_webhook(engine)
    if flash := st.session_state.pop(FLASH, None):
        st.success(md(flash), icon=":material/webhook:")
    if hook is None:
        st.caption("No webhook: alerts are recorded and listed here, and sent nowhere.")
    elif admin:
        st.markdown(f"Alerts are POSTed to {md_code(hook.url)}, signed with the secret {md_code(masked(hook.secret))}.")
    else:
        st.markdown(f"Alerts are POSTed to a webhook at {md_code(urlsplit(hook.url).hostname or '')}.")
    st.caption(f"Each alert is sent as JSON with the header `{alerts.SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the "
               "raw body under the secret>`; the receiver recomputes it and compares in constant time. A failed "
               f"delivery is retried with backoff ({alerts.MAX_ATTEMPTS} tries in all), never holding up the API.")
    if not admin:
        st.caption("Setting the webhook needs the admin role.")
    # Non-admins see the form disabled and empty (no URL or secret in their session); the
    # handler checks the role again, whatever the browser sends.
    st.session_state.setdefault(URL_KEY, hook.url if hook and admin else "")
    st.session_state.setdefault(SECRET_KEY, (hook.secret if hook else alerts.new_secret()) if admin else "")
    errors = st.session_state.get(ERRORS) or {}
    with st.form(KEY + "form", border=True):
        cols = st.columns(2)
        with cols[0]:
            st.text_input("Webhook URL", key=URL_KEY, placeholder="https://example.com/hooks/usage", max_chars=2000,
                          disabled=not admin)
            field_error(errors.get("url"))
        with cols[1]:
            st.text_input("Signing secret", key=SECRET_KEY, type="password", disabled=not admin,
                          help="Prefilled with a new random secret; give the receiver the same one.")
            field_error(errors.get("secret"))
        st.form_submit_button("Save webhook", icon=":material/save:", type="primary", disabled=not admin,
                              on_click=_on_save, args=(engine,))
    if hook is not None:
        st.button("Remove the webhook", key=KEY + "remove", icon=":material/delete:", disabled=not admin,
                  on_click=_on_remove, args=(engine,))


def _on_save(engine: Engine) -> None:
    save_webhook(engine, st.session_state.get(URL_KEY, ""), st.session_state.get(SECRET_KEY, ""))


def _on_remove(engine: Engine) -> None:
    if remove_webhook(engine):
        st.session_state.pop(URL_KEY, None)
        st.session_state.pop(SECRET_KEY, None)


def render(engine: Engine) -> None:
    tz = plan_store.get_timezone(engine)
    render_alerts(engine, tz)
    render_webhook(engine)
