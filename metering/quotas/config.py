"""Who has which quota: the workspace's metrics, plans, subscriptions and timezone, kept in
memory for the events API and the entitlement check.

A snapshot is reloaded when this process commits a change to a metric, plan, subscription or
setting (a SQLAlchemy session hook), and at most `TTL_S` seconds after a change made by another
process (the CLI's workspace import while the server runs), so a request does not read four
tables first.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession

from metering.models import MetricBase, MetricType
from metering.plans import Plan, Quota

TTL_S = 1.0
LIMIT_TYPES = (MetricType.limit_metered.value, MetricType.limit_recurring.value)
_MISSING = object()
_CONFIG_TABLES = frozenset({"metric", "plan", "subscription", "setting"})

_generation = 0  # bumped after every commit that touched a config table in this process
_gen_lock = threading.Lock()


def _touched(session: OrmSession) -> bool:
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(type(obj), "__tablename__", None)
        if table in _CONFIG_TABLES:
            return True
    return False


@sa_event.listens_for(OrmSession, "after_flush")
def _after_flush(session: OrmSession, _ctx: object) -> None:
    if _touched(session):
        session.info["quota_config_dirty"] = True


@sa_event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    global _generation
    if session.info.pop("quota_config_dirty", False):
        with _gen_lock:
            _generation += 1


def config_changed() -> None:
    """Say that the pricing setup changed (for writers that bypass the ORM session)."""
    global _generation
    with _gen_lock:
        _generation += 1


def generation() -> int:
    return _generation


def metric_type(metric: MetricBase) -> str:
    return str(getattr(metric.metric_type, "value", metric.metric_type))


def aggregation(metric: MetricBase) -> str:
    return str(getattr(metric.aggregation, "value", metric.aggregation))


@dataclass(frozen=True)
class Holder:
    """A customer's quota on one metric: the plan it comes from and the subscription start."""

    customer_id: str
    plan: Plan
    quota: Quota
    metric: MetricBase
    start: str | None  # the subscription start as written (None: the default anchor)


@dataclass
class Config:
    tz: str
    metrics: dict[str, MetricBase]
    plans: dict[str, Plan]
    subscriptions: dict[str, tuple[str, str | None]]  # customer → (plan code, start)
    # event_name → codes of limit metrics on which some subscribed plan has a quota
    by_event: dict[str, list[str]] = field(default_factory=dict)
    loaded_at: float = 0.0
    generation: int = 0
    fingerprint: str = ""  # what the quotas depend on: an unchanged reload keeps the entries
    _holders: dict[tuple[str, str], object] = field(default_factory=dict, repr=False)

    @property
    def any_quota(self) -> bool:
        return bool(self.by_event)

    def holder(self, customer_id: str, metric_code: str) -> Holder | None:
        """The customer's quota on the metric through its subscription, or None."""
        key = (customer_id, metric_code)
        found = self._holders.get(key, _MISSING)
        if found is _MISSING:
            if len(self._holders) > 100_000:
                self._holders.clear()
            found = self._holders[key] = self._holder(customer_id, metric_code)
        return found  # type: ignore[return-value]

    def _holder(self, customer_id: str, metric_code: str) -> Holder | None:
        sub = self.subscriptions.get(customer_id)
        metric = self.metrics.get(metric_code)
        if sub is None or metric is None or metric_type(metric) not in LIMIT_TYPES:
            return None
        plan = self.plans.get(sub[0])
        quota = plan.quota_for(metric_code) if plan is not None else None
        if plan is None or quota is None:
            return None
        return Holder(customer_id, plan, quota, metric, sub[1])


def load(engine: Engine) -> Config:
    from metering import metrics as metric_crud
    from metering import plan_store

    gen = _generation
    metrics = {m.code: m for m in metric_crud.list_metrics(engine)}
    plans = {p.code: p for p in plan_store.list_plans(engine)}
    subs = {s.customer_id: (s.plan, s.start) for s in plan_store.list_subscriptions(engine)}
    tz = plan_store.get_timezone(engine)
    config = Config(tz, metrics, plans, subs, loaded_at=time.monotonic(), generation=gen)
    used_plans = {code for code, _ in subs.values()}
    by_event: dict[str, list[str]] = {}
    for code in sorted(used_plans):
        plan = plans.get(code)
        for quota in plan.quotas if plan else []:
            metric = metrics.get(quota.metric)
            if metric is not None and metric_type(metric) in LIMIT_TYPES:
                names = by_event.setdefault(metric.event_name, [])
                if quota.metric not in names:
                    names.append(quota.metric)
    config.by_event = by_event
    config.fingerprint = hashlib.sha256(json.dumps([
        tz, sorted(subs.items()),
        [m.model_dump(mode="json", exclude={"created_at", "updated_at", "id"}) for _, m in sorted(metrics.items())],
        [p.model_dump(mode="json") for _, p in sorted(plans.items())],
    ], sort_keys=True, default=str).encode()).hexdigest()
    return config


class ConfigCache:
    """One engine's snapshot, reloaded after a change (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._config: Config | None = None
        self._lock = threading.Lock()

    def get(self, *, fresh: bool = False) -> Config:
        config = self._config
        if (not fresh and config is not None and config.generation == _generation
                and time.monotonic() - config.loaded_at < TTL_S):
            return config
        with self._lock:
            config = self._config
            if (fresh or config is None or config.generation != _generation
                    or time.monotonic() - config.loaded_at >= TTL_S):
                fresh_config = load(self._engine)
                if config is not None and fresh_config.fingerprint == config.fingerprint:
                    config.loaded_at, config.generation = fresh_config.loaded_at, fresh_config.generation
                else:
                    config = self._config = fresh_config
            return config

