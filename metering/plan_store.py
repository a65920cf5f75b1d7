"""Persistence of plans, subscriptions and the workspace timezone (the app's pricing setup).

Tables, in SQLModel style, registered on ``SQLModel.metadata`` when this module is imported
(``metering.store`` imports it, so ``make_engine`` creates them):

- ``PlanRecord``: one row per plan, ``code`` unique, the whole plan as canonical JSON text
  (``Plan.model_dump(mode="json")``: decimals as strings, so nothing drifts through floats).
- ``Subscription``: which plan a customer is on and from when (``start`` as given: an ISO
  instant or a bare date, read later with ``periods.parse_subscription_start``).
- ``Setting``: key/value pairs; ``timezone`` (IANA name, default ``UTC``) lives here.

CRUD functions are keyword-only and return plain data (``Plan`` models, ``SubscriptionData``),
never live ORM rows. This module does not import ``metering.store`` (no import cycle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from metering.models import utcnow
from metering.plans import Plan

DEFAULT_TIMEZONE = "UTC"


class PlanRecord(SQLModel, table=True):
    __tablename__ = "plan"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    definition: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class Subscription(SQLModel, table=True):
    __tablename__ = "subscription"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=255, unique=True, index=True)
    plan_code: str = Field(max_length=64, index=True)
    start: str | None = Field(default=None, max_length=64)


class Setting(SQLModel, table=True):
    __tablename__ = "setting"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))


@dataclass(frozen=True)
class SubscriptionData:
    customer_id: str
    plan: str
    start: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The workspace-file shape: ``{"customer_id", "plan", "start"}`` (start omitted when unset)."""
        out: dict[str, Any] = {"customer_id": self.customer_id, "plan": self.plan}
        if self.start is not None:
            out["start"] = self.start
        return out


def _plan_of(record: PlanRecord) -> Plan:
    return Plan.model_validate(json.loads(record.definition))


def _as_plan(plan: Plan | dict[str, Any]) -> Plan:
    return plan if isinstance(plan, Plan) else Plan.model_validate(plan)


# --- plans ----------------------------------------------------------------------------------


def plans_using_metric(engine: Engine, *, code: str) -> list[str]:
    """Codes (sorted) of the stored plans whose charges or quotas reference metric ``code``."""
    out: list[str] = []
    for plan in list_plans(engine):
        if any(c.metric == code for c in plan.charges) or any(q.metric == code for q in plan.quotas):
            out.append(plan.code)
    return sorted(out)


def remove_metric_from_plans(engine: Engine, *, code: str) -> list[str]:
    """Drop the charges and quotas on metric ``code`` from every plan; returns the plans changed.

    Called before a metric is deleted, so no stored plan is left pricing a metric that is gone.
    """
    changed = plans_using_metric(engine, code=code)
    for plan_code in changed:
        plan = get_plan(engine, code=plan_code)
        assert plan is not None
        save_plan(engine, plan=plan.model_copy(update={
            "charges": [c for c in plan.charges if c.metric != code],
            "quotas": [q for q in plan.quotas if q.metric != code],
        }))
    return changed


def save_plan(engine: Engine, *, plan: Plan | dict[str, Any]) -> Plan:
    """Insert or replace (by code) a plan; a dict is validated first (pydantic ValidationError)."""
    plan = _as_plan(plan)
    definition = json.dumps(plan.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    with Session(engine) as session:
        record = session.exec(select(PlanRecord).where(PlanRecord.code == plan.code)).first()
        if record is None:
            record = PlanRecord(code=plan.code, name=plan.name, definition=definition)
        else:
            record.name, record.definition, record.updated_at = plan.name, definition, utcnow()
        session.add(record)
        session.commit()
    return plan


def get_plan(engine: Engine, *, code: str) -> Plan | None:
    with Session(engine) as session:
        record = session.exec(select(PlanRecord).where(PlanRecord.code == code)).first()
        return None if record is None else _plan_of(record)


def list_plans(engine: Engine) -> list[Plan]:
    """Every stored plan, in code order."""
    with Session(engine) as session:
        records = session.exec(select(PlanRecord).order_by(PlanRecord.code)).all()
        return [_plan_of(r) for r in records]


def delete_plan(engine: Engine, *, code: str) -> bool:
    """Delete a plan; True when it existed. Subscriptions on it are left for the caller to
    handle (see ``subscriptions_on_plan``)."""
    with Session(engine) as session:
        record = session.exec(select(PlanRecord).where(PlanRecord.code == code)).first()
        if record is None:
            return False
        session.delete(record)
        session.commit()
        return True


def subscriptions_on_plan(engine: Engine, *, code: str) -> list[str]:
    """Customer ids (sorted) subscribed to plan ``code``."""
    return sorted(s.customer_id for s in list_subscriptions(engine) if s.plan == code)


# --- subscriptions --------------------------------------------------------------------------


def set_subscription(engine: Engine, *, customer_id: str, plan_code: str, start: str | None = None) -> SubscriptionData:
    """Put a customer on a plan (insert or replace). ``start`` is kept as given (text)."""
    customer_id = str(customer_id)
    if not customer_id or len(customer_id) > 255:
        raise ValueError("customer_id must be 1–255 characters")
    if not plan_code:
        raise ValueError("plan is required")
    start = None if start is None or str(start).strip() == "" else str(start).strip()
    with Session(engine) as session:
        row = session.exec(select(Subscription).where(Subscription.customer_id == customer_id)).first()
        if row is None:
            row = Subscription(customer_id=customer_id, plan_code=plan_code, start=start)
        else:
            row.plan_code, row.start = plan_code, start
        session.add(row)
        session.commit()
    return SubscriptionData(customer_id, plan_code, start)


def list_subscriptions(engine: Engine) -> list[SubscriptionData]:
    """Every subscription, in customer id order."""
    with Session(engine) as session:
        rows = session.exec(select(Subscription).order_by(Subscription.customer_id)).all()
        return [SubscriptionData(r.customer_id, r.plan_code, r.start) for r in rows]


def get_subscription(engine: Engine, *, customer_id: str) -> SubscriptionData | None:
    with Session(engine) as session:
        r = session.exec(select(Subscription).where(Subscription.customer_id == customer_id)).first()
        return None if r is None else SubscriptionData(r.customer_id, r.plan_code, r.start)


def delete_subscription(engine: Engine, *, customer_id: str) -> bool:
    with Session(engine) as session:
        row = session.exec(select(Subscription).where(Subscription.customer_id == customer_id)).first()
        if row is None:
            return False
        session.delete(row)
        session.commit()
        return True


# --- settings -------------------------------------------------------------------------------


def get_setting(engine: Engine, *, key: str, default: str | None = None) -> str | None:
    with Session(engine) as session:
        row = session.get(Setting, key)
        return default if row is None else row.value


def set_setting(engine: Engine, *, key: str, value: str) -> None:
    with Session(engine) as session:
        row = session.get(Setting, key)
        if row is None:
            row = Setting(key=key, value=value)
        else:
            row.value = value
        session.add(row)
        session.commit()


def get_timezone(engine: Engine) -> str:
    """The workspace timezone (IANA name); ``UTC`` until one is set."""
    return get_setting(engine, key="timezone", default=DEFAULT_TIMEZONE) or DEFAULT_TIMEZONE


def set_timezone(engine: Engine, *, timezone: str) -> str:
    """Store the workspace timezone; ValueError (readable) for a name that is not IANA."""
    from metering.periods import zone

    name = str(timezone).strip()
    zone(name)  # raises ValueError with a message for a person
    set_setting(engine, key="timezone", value=name)
    return name


def clear_pricing(engine: Engine) -> None:
    """Delete every plan, subscription and setting (used by a replacing workspace import)."""
    with Session(engine) as session:
        for model in (Subscription, PlanRecord, Setting):
            for row in session.exec(select(model)).all():
                session.delete(row)
        session.commit()
