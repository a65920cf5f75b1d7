"""The audit log: who changed what, and when.

Every change made in the workbench (metrics, plans, subscriptions, imports, deletes, API keys,
reset, demo, workspace import, timezone) is recorded by the handler that made it, right after the
change succeeded, as one row: UTC time, who (their e-mail, or "local user (no sign-in)"), their
role, the action, its target and a short detail. A refused attempt is recorded too, with outcome
"denied". Reset and the demo do not touch the log. Rows are only ever added.

No Streamlit here: the workbench passes the person in; `entries` reads the log back newest
first and `to_csv` writes it through `csvsafe` (spreadsheet-safe).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, Text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from metering import csvsafe
from metering.models import as_utc, utcnow

OK, DENIED = "ok", "denied"

# action id → what it means (the page's filter and the README list these)
ACTIONS: dict[str, str] = {
    "metric.create": "created a metric",
    "metric.update": "changed a metric",
    "metric.delete": "deleted a metric (and its charges and quotas in plans)",
    "plan.save": "created or changed a plan",
    "plan.delete": "deleted a plan (and its subscriptions)",
    "subscriptions.save": "saved the subscriptions table",
    "events.import": "imported an event file",
    "events.simulate": "inserted simulated events",
    "events.test": "sent a test event from the editor",
    "events.delete_import": "deleted the events of an import",
    "workspace.timezone": "changed the workspace timezone",
    "workspace.import": "imported a workspace file",
    "workspace.demo": "loaded the demo workspace",
    "workspace.reset": "reset the workspace",
    "apikey.create": "created an API key",
    "apikey.revoke": "revoked an API key",
    "webhook.set": "set the usage-alert webhook",
    "webhook.clear": "removed the usage-alert webhook",
    "auth.sign_in": "signed in",
}
COLUMNS = ["at", "actor", "role", "action", "target", "detail", "outcome"]
MAX_TARGET = 500


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    actor: str = Field(max_length=320)
    role: str = Field(default="", max_length=16)
    action: str = Field(max_length=64, index=True)
    target: str = Field(default="", max_length=MAX_TARGET)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    outcome: str = Field(default=OK, max_length=16)


@dataclass(frozen=True)
class Entry:
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    detail: str
    outcome: str

    def row(self) -> dict[str, str]:
        return {
            "at": as_utc(self.at).strftime("%Y-%m-%d %H:%M:%S UTC"), "actor": self.actor, "role": self.role,
            "action": self.action, "target": self.target, "detail": self.detail, "outcome": self.outcome,
        }


def record(engine: Engine, *, actor: str, role: str | None, action: str, target: str = "", detail: str = "",
           outcome: str = OK) -> None:
    """Add one row. `action` must be one of ACTIONS (a typo would make a row nobody can filter)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action '{action}'")
    with Session(engine) as session:
        session.add(AuditEntry(actor=actor[:320], role=(role or "")[:16], action=action, target=target[:MAX_TARGET],
                               detail=detail, outcome=outcome))
        session.commit()


def entries(engine: Engine, *, actor: str | None = None, action: str | None = None, since: datetime | None = None,
            until: datetime | None = None, limit: int | None = None) -> list[Entry]:
    """Rows newest first; `since` inclusive, `until` exclusive; `actor` matches exactly."""
    query = select(AuditEntry)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    if since is not None:
        query = query.where(col(AuditEntry.at) >= as_utc(since))
    if until is not None:
        query = query.where(col(AuditEntry.at) < as_utc(until))
    query = query.order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
    if limit is not None:
        query = query.limit(limit)
    with Session(engine) as session:
        return [Entry(as_utc(r.at), r.actor, r.role, r.action, r.target, r.detail, r.outcome)
                for r in session.exec(query).all()]


def actors(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(session.exec(select(AuditEntry.actor).distinct()).all())


def to_csv(rows: Sequence[Entry]) -> str:
    """The rows as spreadsheet-safe CSV (names and targets are user text)."""
    return csvsafe.to_csv([r.row() for r in rows], COLUMNS)
