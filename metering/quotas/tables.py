"""The live-quota tables (registered on SQLModel.metadata when `metering.store` imports this).

- `quota_alert`: one row per (customer, metric, threshold, period start): a usage alert,
  recorded once per period when accepted API events take usage to the threshold, with the
  state of its webhook delivery.
- `alert_webhook`: the workspace's webhook (URL and signing secret; one row).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from metering.models import utcnow


class QuotaAlert(SQLModel, table=True):
    __tablename__ = "quota_alert"
    __table_args__ = (UniqueConstraint("customer_id", "metric", "threshold", "period_start", name="uq_quota_alert_once"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=255, index=True)
    metric: str = Field(max_length=64, index=True)
    plan: str = Field(max_length=64)
    metric_type: str = Field(max_length=32)
    threshold: str = Field(max_length=40)  # percent of available, exact decimal text ("80")
    period_start: datetime
    period_end: datetime
    used: str = Field(max_length=100)  # decimal text when the alert was recorded
    available: str = Field(max_length=100)
    limit: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    delivery: str = Field(default="none", max_length=16)  # none | pending | delivered | failed
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    delivered_at: datetime | None = None


class AlertWebhook(SQLModel, table=True):
    __tablename__ = "alert_webhook"

    id: int = Field(default=1, primary_key=True)
    url: str = Field(sa_column=Column(Text, nullable=False))
    secret: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)
