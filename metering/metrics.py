"""Billable metrics: quick templates, code slugs, validation for forms, and CRUD.

CRUD functions are keyword-only and return `MetricPublic` (plain data, never a live ORM row),
so the app can cache them. Invalid input raises `InvalidMetric` whose `errors` map each field
to a message written for a person.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from metering.models import Metric, MetricCreate, MetricPublic, MetricType, utcnow


class InvalidMetric(ValueError):
    """A metric definition that breaks a rule; `errors` maps field → message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    purpose: str
    aggregation: str | None
    unit: str
    event_name: str
    value_property: str | None = None
    distinct_by: str | None = None
    metric_type: str = MetricType.charge_metered.value
    group_by: tuple[str, ...] = ()
    example: dict[str, Any] = field(default_factory=dict)

    def form(self) -> dict[str, Any]:
        """The form values this template fills in (every one stays editable)."""
        return {
            "name": self.name if self.key != "custom" else "",
            "code": slugify(self.name) if self.key != "custom" else "",
            "description": self.purpose if self.key != "custom" else "",
            "unit": self.unit,
            "metric_type": self.metric_type,
            "event_name": self.event_name,
            "aggregation": self.aggregation or "count",
            "value_property": self.value_property,
            "distinct_by": self.distinct_by,
            "filters": {},
            "group_by": list(self.group_by),
        }


TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template("api_requests", "API Requests", "Track API calls", "count", "requests", "api.request",
                 group_by=("endpoint",), example={"endpoint": "/v1/search", "method": "GET", "region": "us-east", "status": 200}),
        Template("llm_tokens", "LLM Tokens", "Track token usage", "sum", "tokens", "llm.tokens", value_property="tokens",
                 group_by=("model",), example={"tokens": 1250, "model": "gpt-4o", "region": "us-east"}),
        Template("worker_duration", "Worker Duration", "Track task duration", "sum", "ms", "worker.run",
                 value_property="duration_ms", example={"duration_ms": 842.5, "worker": "resize", "region": "eu-west"}),
        Template("storage_gb", "Storage GB", "Track storage usage", "max", "GB", "storage.snapshot", value_property="gb",
                 example={"gb": 12.375, "bucket": "media", "region": "us-east"}),
        Template("emails_sent", "Emails Sent", "Track sent emails", "count", "emails", "email.sent",
                 example={"template": "welcome", "domain": "example.com"}),
        Template("unique_users", "Unique Users", "Track active users", "unique_count", "users", "user.active",
                 distinct_by="user_id", example={"user_id": "user_42", "plan": "pro", "region": "eu-west"}),
        Template("custom", "Custom", "Fully blank configuration", None, "", ""),
    )
}


def slugify(name: str) -> str:
    """Lower-case; runs of other characters become `_`; trimmed; starts with a letter."""
    # Accented letters keep their base letter (Café → cafe) before other runs become `_`.
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if slug and not slug[0].isalpha():
        slug = "m_" + slug
    return slug[:64].rstrip("_")


def errors_of(exc: ValidationError) -> dict[str, str]:
    """Pydantic errors as field → message (first message per field), prefixes removed."""
    out: dict[str, str] = {}
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "metric"
        msg = err["msg"].removeprefix("Value error, ")
        ctx = err.get("ctx", {})
        if err["type"] == "missing":
            msg = f"{key} is required"
        elif err["type"] == "enum":
            msg = f"{key} must be one of: {ctx.get('expected', '')}"
        elif err["type"] == "string_too_long":  # not pydantic's "String should have at most …"
            msg = f"{key} must be at most {ctx.get('max_length')} characters"
        elif err["type"] == "string_too_short":
            msg = f"{key} is required"
        elif err["type"] == "string_type":
            msg = f"{key} must be text"
        out.setdefault(key, msg)
    return out


def validate_metric(data: dict[str, Any] | MetricCreate) -> MetricCreate:
    if isinstance(data, MetricCreate):
        return data
    try:
        return MetricCreate.model_validate(data)
    except ValidationError as exc:
        raise InvalidMetric(errors_of(exc)) from None


CODE_FIXED = (
    "a metric's code cannot change once saved: plans, quotas, API calls and exported files name the "
    "metric by it (create a new metric for another code)"
)


def form_errors(engine: Engine | None, data: dict[str, Any], *, current_code: str | None = None) -> dict[str, str]:
    """Every problem with a form's values, by field (empty when it can be saved)."""
    try:
        metric = validate_metric(data)
    except InvalidMetric as exc:
        errors = exc.errors
        code = str(data.get("code") or "")
        if current_code is not None and "code" not in errors and code != current_code:
            errors["code"] = CODE_FIXED
        elif engine is not None and "code" not in errors and not code_available(engine, code, current_code=current_code):
            errors["code"] = f"a metric with code '{code}' already exists"
        return errors
    if current_code is not None and metric.code != current_code:
        return {"code": CODE_FIXED}
    if engine is not None and not code_available(engine, metric.code, current_code=current_code):
        return {"code": f"a metric with code '{metric.code}' already exists"}
    return {}


def _public(row: Metric) -> MetricPublic:
    return MetricPublic.model_validate(row, from_attributes=True)


def code_available(engine: Engine, code: str, *, current_code: str | None = None) -> bool:
    if current_code is not None and code == current_code:
        return True
    with Session(engine) as session:
        return session.exec(select(Metric.id).where(Metric.code == code)).first() is None


def unique_code(engine: Engine, name: str) -> str:
    """The slug of `name`, with _2, _3 … appended when it is taken."""
    base = slugify(name) or "metric"
    code, n = base, 2
    while not code_available(engine, code):
        suffix = f"_{n}"
        code, n = base[: 64 - len(suffix)] + suffix, n + 1
    return code


def list_metrics(engine: Engine, *, search: str | None = None) -> list[MetricPublic]:
    with Session(engine) as session:
        rows = session.exec(select(Metric).order_by(Metric.name)).all()
    metrics = [_public(r) for r in rows]
    if search:
        needle = search.lower().strip()
        metrics = [m for m in metrics if needle in m.name.lower() or needle in m.code or needle in m.event_name.lower()]
    return metrics


def get_metric(engine: Engine, *, code: str) -> MetricPublic | None:
    with Session(engine) as session:
        row = session.exec(select(Metric).where(Metric.code == code)).first()
        return _public(row) if row else None


def create_metric(engine: Engine, *, data: dict[str, Any] | MetricCreate) -> MetricPublic:
    metric = validate_metric(data)
    if not code_available(engine, metric.code):
        raise InvalidMetric({"code": f"a metric with code '{metric.code}' already exists"})
    with Session(engine) as session:
        row = Metric.model_validate(metric.model_dump())
        session.add(row)
        session.commit()
        session.refresh(row)
        return _public(row)


def update_metric(engine: Engine, *, code: str, data: dict[str, Any] | MetricCreate) -> MetricPublic:
    metric = validate_metric(data)
    with Session(engine) as session:
        row = session.exec(select(Metric).where(Metric.code == code)).first()
        if row is None:
            raise InvalidMetric({"code": f"no metric with code '{code}'"})
        if metric.code != code:  # as Lago and Orb do: the code is the metric's identity
            raise InvalidMetric({"code": CODE_FIXED})
        for key, value in metric.model_dump().items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        session.add(row)
        session.commit()
        session.refresh(row)
        return _public(row)


def delete_metric(engine: Engine, *, code: str) -> bool:
    with Session(engine) as session:
        row = session.exec(select(Metric).where(Metric.code == code)).first()
        if row is None:
            return False
        session.delete(row)
        session.commit()
        return True
