"""Usage alerts on quotas (contract §8): thresholds, the alert log and the signed webhook.

A plan's quota may carry `alert_thresholds`, percentages of the period's available units
(`[80, 100]`). When events accepted by `POST /api/v1/events` leave a customer's usage at or
above a threshold, one alert is recorded for (customer, metric, threshold, period): never twice
in a period, whatever happens next. File imports record none (they are history).

When the workspace has a webhook (`set_webhook`), each alert is POSTed to it as JSON in a
background thread: never on the request's time. The body is signed with HMAC-SHA256 under
the webhook's secret, sent as `X-Metering-Signature: sha256=<hex digest of the raw body>`
(GitHub's and Lago's way: compute the HMAC of the bytes received and compare in constant
time). A delivery that fails (no answer in 10 s, or a status other than 2xx) is retried with
exponential backoff (1 s, 2 s, 4 s, … `MAX_ATTEMPTS` tries in all); the alert row keeps the
state (`pending`, `delivered`, `failed`), the attempts and the last error. The body's `id`
is the alert's: a receiver that sees it twice has a retry.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from metering.billing import iso
from metering.models import as_utc, utcnow
from metering.quotas.tables import AlertWebhook, QuotaAlert
from metering.values import EXACT, decimal_str

SIGNATURE_HEADER = "X-Metering-Signature"
EVENT_HEADER = "X-Metering-Event"
MAX_ATTEMPTS = 6
RETRY_BASE_S = 1.0  # first retry after 1 s, then 2 s, 4 s, …
TIMEOUT_S = 10.0
MIN_SECRET = 16

__all__ = [
    "Alert", "SIGNATURE_HEADER", "Webhook", "get_webhook", "list_alerts", "new_secret", "set_webhook",
    "sign", "verify", "webhook_problem", "clear_webhook",
]


# --- the log --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    id: int
    customer_id: str
    metric: str
    plan: str
    metric_type: str
    threshold: Decimal
    period_start: datetime
    period_end: datetime
    used: Decimal
    available: Decimal
    limit: Decimal
    created_at: datetime
    delivery: str
    attempts: int
    last_error: str | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: QuotaAlert) -> Alert:
        return cls(
            int(row.id or 0), row.customer_id, row.metric, row.plan, row.metric_type, Decimal(row.threshold),
            as_utc(row.period_start), as_utc(row.period_end), Decimal(row.used), Decimal(row.available),  # type: ignore[arg-type]
            Decimal(row.limit), as_utc(row.created_at), row.delivery, row.attempts, row.last_error,  # type: ignore[arg-type]
            as_utc(row.delivered_at),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "quota.threshold_reached",
            "customer_id": self.customer_id,
            "metric": self.metric,
            "plan": self.plan,
            "metric_type": self.metric_type,
            "threshold": decimal_str(self.threshold),
            "period": {"start": iso(self.period_start), "end": iso(self.period_end)},
            "used": decimal_str(self.used),
            "available": decimal_str(self.available),
            "limit": decimal_str(self.limit),
            "created_at": iso(self.created_at),
            "delivery": self.delivery,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "delivered_at": None if self.delivered_at is None else iso(self.delivered_at),
        }

    def payload(self) -> dict[str, Any]:
        """What the webhook receives (the delivery state is the sender's business)."""
        body = self.to_json()
        for name in ("delivery", "attempts", "last_error", "delivered_at"):
            body.pop(name)
        return body


def list_alerts(engine: Engine, *, customer_id: str | None = None, metric: str | None = None,
                limit: int = 1000) -> list[Alert]:
    """Recorded alerts, newest first (at most `limit`), optionally for one customer / metric."""
    with Session(engine) as session:
        query = select(QuotaAlert)
        if customer_id is not None:
            query = query.where(QuotaAlert.customer_id == customer_id)
        if metric is not None:
            query = query.where(QuotaAlert.metric == metric)
        rows = session.exec(query.order_by(QuotaAlert.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
        return [Alert.of(r) for r in rows]


# --- recording (called by the ledger after API events counted) ------------------------------


class Recorder:
    """Per store: which alerts exist already (read once per customer, metric and period)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str, datetime], set[Decimal]] = {}

    def _recorded(self, engine: Engine, cid: str, metric: str, start: datetime) -> set[Decimal]:
        key = (cid, metric, start)
        found = self._known.get(key)
        if found is None:
            if len(self._known) > 100_000:
                self._known.clear()
            with Session(engine) as session:
                rows = session.exec(select(QuotaAlert.threshold, QuotaAlert.period_start).where(
                    QuotaAlert.customer_id == cid, QuotaAlert.metric == metric)).all()
            found = {Decimal(t) for t, s in rows if as_utc(s) == start}
            self._known[key] = found
        return found

    def __call__(self, ledger: Any, config: Any, touched: Sequence[Any]) -> None:
        engine = ledger.engine
        new: list[Alert] = []
        for key in touched:
            entry = ledger.current(key)
            holder = entry.holder
            thresholds = holder.quota.alert_thresholds if holder is not None else None
            if not thresholds or entry.used <= 0:
                continue
            recorded = self._recorded(engine, holder.customer_id, holder.metric.code, entry.start)
            reached = [t for t in thresholds_reached(entry.used, entry.available, thresholds) if t not in recorded]
            for threshold in reached:
                alert = _insert(engine, holder, entry, threshold, webhook=get_webhook(engine) is not None)
                recorded.add(threshold)
                if alert is not None:
                    new.append(alert)
        if new:
            hook = get_webhook(engine)
            if hook is not None:
                for alert in new:
                    deliverer().send(engine, hook, alert)


def _insert(engine: Engine, holder: Any, entry: Any, threshold: Decimal, *, webhook: bool) -> Alert | None:
    row = QuotaAlert(
        customer_id=holder.customer_id, metric=holder.metric.code, plan=holder.plan.code,
        metric_type=entry.kind, threshold=decimal_str(threshold), period_start=entry.start,
        period_end=entry.end, used=decimal_str(entry.used), available=decimal_str(entry.available),
        limit=decimal_str(entry.limit), delivery="pending" if webhook else "none",
    )
    with Session(engine) as session:
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # recorded already (another process, or before a restart)
            session.rollback()
            return None
        session.refresh(row)
        return Alert.of(row)


# --- the webhook setting --------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str


def new_secret() -> str:
    """A random signing secret (whsec_ + 32 bytes, URL-safe)."""
    return "whsec_" + secrets.token_urlsafe(32)


def webhook_problem(url: Any, secret: Any) -> str | None:
    """Why this URL and secret cannot be used, as a sentence for a form, or None."""
    if not isinstance(url, str) or not url.strip():
        return "the webhook URL is required (https://…)"
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "the webhook URL must start with https:// (or http://) and name a host"
    if len(url) > 2000:
        return "the webhook URL must be at most 2,000 characters"
    if not isinstance(secret, str) or len(secret.strip()) < MIN_SECRET:
        return f"the signing secret must be at least {MIN_SECRET} characters (use a generated one)"
    return None


_webhooks: weakref.WeakKeyDictionary[Engine, tuple[float, Webhook | None]] = weakref.WeakKeyDictionary()


def get_webhook(engine: Engine) -> Webhook | None:
    """The workspace's webhook, or None (read at most once a second per engine)."""
    cached = _webhooks.get(engine)
    if cached is not None and time.monotonic() - cached[0] < 1.0:
        return cached[1]
    with Session(engine) as session:
        row = session.get(AlertWebhook, 1)
        hook = None if row is None else Webhook(row.url, row.secret)
    _webhooks[engine] = (time.monotonic(), hook)
    return hook


def set_webhook(engine: Engine, *, url: str, secret: str) -> Webhook:
    """Store the workspace's webhook; ValueError with the sentence of `webhook_problem`."""
    problem = webhook_problem(url, secret)
    if problem is not None:
        raise ValueError(problem)
    with Session(engine) as session:
        row = session.get(AlertWebhook, 1)
        if row is None:
            row = AlertWebhook(id=1, url=url.strip(), secret=secret.strip())
        else:
            row.url, row.secret, row.updated_at = url.strip(), secret.strip(), utcnow()
        session.add(row)
        session.commit()
    _webhooks.pop(engine, None)
    return Webhook(url.strip(), secret.strip())


def clear_webhook(engine: Engine) -> bool:
    with Session(engine) as session:
        row = session.get(AlertWebhook, 1)
        if row is None:
            return False
        session.delete(row)
        session.commit()
    _webhooks.pop(engine, None)
    return True


# --- signing and delivery -------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: `sha256=` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute the signature of the bytes received, compare in
    constant time."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header.strip())  # type: ignore[union-attr]


@dataclass(order=True)
class _Job:
    due: float
    alert_id: int
    attempt: int
    engine: Any = field(default=None, compare=False)
    hook: Any = field(default=None, compare=False)
    body: bytes = field(default=b"", compare=False)


class Deliverer:
    """One background thread that POSTs alerts; retries wait in a heap, never in a sleep that
    holds up other deliveries."""

    def __init__(self) -> None:
        self._heap: list[_Job] = []
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None

    def send(self, engine: Engine, hook: Webhook, alert: Alert) -> None:
        body = json.dumps(alert.payload(), separators=(",", ":"), sort_keys=True).encode("utf-8")
        self._push(_Job(time.monotonic(), alert.id, 1, engine, hook, body))

    def _push(self, job: _Job) -> None:
        with self._cv:
            heapq.heappush(self._heap, job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="metering-alert-webhook", daemon=True)
                self._thread.start()
            self._cv.notify()

    def idle(self) -> bool:
        with self._cv:
            return not self._heap

    def _run(self) -> None:
        while True:
            with self._cv:
                while True:
                    if not self._heap:
                        if not self._cv.wait(timeout=60) and not self._heap:
                            self._thread = None  # idle a minute: the next send starts one again
                            return
                        continue
                    wait = self._heap[0].due - time.monotonic()
                    if wait <= 0:
                        break
                    self._cv.wait(timeout=wait)
                job = heapq.heappop(self._heap)
            self._attempt(job)

    def _attempt(self, job: _Job) -> None:
        error = _post(job.hook, job.body)
        done = error is None
        final = done or job.attempt >= MAX_ATTEMPTS
        try:
            _mark(job.engine, job.alert_id, attempts=job.attempt, error=error,
                  state="delivered" if done else ("failed" if final else "pending"))
        except Exception:  # noqa: BLE001 - the store went away (tests, shutdown): nothing to mark
            return
        if not final:
            delay = RETRY_BASE_S * (2 ** (job.attempt - 1))
            self._push(_Job(time.monotonic() + delay, job.alert_id, job.attempt + 1, job.engine, job.hook, job.body))


def _post(hook: Webhook, body: bytes) -> str | None:
    """None when the receiver answered 2xx, else what went wrong."""
    request = urllib.request.Request(hook.url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": "metering-workbench-webhook/1",
        SIGNATURE_HEADER: sign(hook.secret, body),
        EVENT_HEADER: "quota.threshold_reached",
    })
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - http(s) only (webhook_problem)
            status = response.status
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {str(getattr(exc, 'reason', exc))[:200]}"
    return None if 200 <= status < 300 else f"HTTP {status}"


def _mark(engine: Engine, alert_id: int, *, attempts: int, error: str | None, state: str) -> None:
    with Session(engine) as session:
        row = session.get(QuotaAlert, alert_id)
        if row is None:
            return
        row.attempts, row.last_error, row.delivery = attempts, error, state
        if state == "delivered":
            row.delivered_at = utcnow()
        session.add(row)
        session.commit()


_deliverer = Deliverer()


def deliverer() -> Deliverer:
    return _deliverer


def thresholds_reached(used: Decimal, available: Decimal, thresholds: Iterable[Decimal]) -> list[Decimal]:
    """The thresholds (percent of available) that `used` has reached (used > 0)."""
    if used <= 0:
        return []
    with localcontext(EXACT):
        return [t for t in thresholds if used >= available * t / 100]
