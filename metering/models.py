"""Tables and typed shapes of the store, in SQLModel's layered style.

`MetricBase` holds the fields a person edits; `MetricCreate` validates them (field and
cross-field rules, each tied to its field so a form can show it beside the field);
`Metric` is the table; `MetricPublic` is what callers read back.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import Enum
from typing import Any, overload

from pydantic import ValidationInfo, field_validator, model_validator
from sqlalchemy import JSON, BigInteger, Column, Integer, Text
from sqlmodel import Field, SQLModel

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
EVENT_NAME_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
PATH_RE = re.compile(r"^[^.\s][^\s]*$")


class MetricType(str, Enum):
    limit_metered = "limit_metered"
    limit_recurring = "limit_recurring"
    charge_metered = "charge_metered"
    charge_recurring = "charge_recurring"


class Aggregation(str, Enum):
    count = "count"
    sum = "sum"
    max = "max"
    min = "min"
    unique_count = "unique_count"
    latest = "latest"


NEEDS_VALUE = {Aggregation.sum, Aggregation.max, Aggregation.min, Aggregation.latest}


def allowed_aggregations(metric_type: MetricType | str) -> list[Aggregation]:
    """The aggregations a metric type takes (contract §3): limit_recurring counts or sums;
    limit_metered takes all but min (a quota caps a minimum); charges take all six."""
    kind = MetricType(metric_type)
    if kind == MetricType.limit_recurring:
        return [Aggregation.count, Aggregation.sum]
    if kind == MetricType.limit_metered:
        return [a for a in Aggregation if a != Aggregation.min]
    return list(Aggregation)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """The moment as an aware UTC datetime; a naive one is UTC (SQLite hands stored times back
    naive, and every stored time is UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _clean_path(value: str | None, label: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if not PATH_RE.match(value) or value.endswith(".") or ".." in value:
        raise ValueError(f"{label} must be a dot path such as tokens or usage.input_tokens")
    return value


class MetricBase(SQLModel):
    # Field order matters: cross-field validators read the fields declared before them.
    name: str = Field(min_length=1, max_length=200)
    code: str = Field(min_length=1, max_length=64)
    description: str | None = None
    unit: str = Field(min_length=1, max_length=50)
    metric_type: MetricType = MetricType.charge_metered
    event_name: str = Field(default="", max_length=100)
    aggregation: Aggregation = Aggregation.count
    value_property: str | None = None
    distinct_by: str | None = None
    filters: dict[str, list[str]] = Field(default_factory=dict, sa_column=Column(JSON))
    group_by: list[str] = Field(default_factory=list, sa_column=Column(JSON))


class MetricCreate(MetricBase):
    """A metric definition as submitted: every rule is checked here, with a message for a person."""

    @model_validator(mode="before")
    @classmethod
    def _present_every_field(cls, data: Any) -> Any:
        # Field validators only run on given values; give every rule-bearing field explicitly
        # so that, e.g., a missing value_property for sum is reported beside that field.
        if isinstance(data, dict):
            data = dict(data)
            for key in ("event_name", "value_property", "distinct_by", "filters", "group_by"):
                data.setdefault(key, None)
            if data["event_name"] is None:
                data["event_name"] = ""
        return data

    @field_validator("name", "unit", mode="before")
    @classmethod
    def _strip_required(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            value = value.strip()
        if value in (None, ""):
            raise ValueError(f"{info.field_name} is required")
        return value

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, value: Any) -> Any:
        if value in (None, ""):
            raise ValueError("code is required")
        if isinstance(value, str) and not CODE_RE.match(value.strip()):
            raise ValueError(
                "code must start with a lower-case letter and use only a-z, 0-9 and _ "
                "(at most 64 characters)"
            )
        return value.strip() if isinstance(value, str) else value

    @field_validator("event_name", mode="after")
    @classmethod
    def _event_name(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip() and "code" not in info.data:
            return ""  # it defaults to the code, which is missing or invalid: said beside the code
        value = value.strip() or str(info.data.get("code") or "")
        if not EVENT_NAME_RE.match(value):
            raise ValueError(
                "event name must be 1–100 characters of letters, digits and _ . : -"
            )
        return value

    @field_validator("aggregation", mode="after")
    @classmethod
    def _aggregation_fits_type(cls, value: Aggregation, info: ValidationInfo) -> Aggregation:
        metric_type = info.data.get("metric_type")
        if metric_type is None or value in allowed_aggregations(metric_type):
            return value
        if metric_type == MetricType.limit_recurring:
            raise ValueError("a limit_recurring metric needs count or sum aggregation")
        raise ValueError("min cannot be used with a limit metric: a quota caps a minimum")

    @field_validator("value_property", mode="before")
    @classmethod
    def _value_property(cls, value: Any, info: ValidationInfo) -> Any:
        value = _clean_path(value, "value property")
        aggregation = info.data.get("aggregation")
        if aggregation in NEEDS_VALUE and value is None:
            raise ValueError(
                f"{aggregation.value} needs a value property: the numeric field to "
                f"{'add up' if aggregation == Aggregation.sum else 'read'}, e.g. tokens"
            )
        if aggregation is not None and aggregation not in NEEDS_VALUE:
            return None  # count and unique_count read no value; keep the definition clean
        return value

    @field_validator("distinct_by", mode="before")
    @classmethod
    def _distinct_by(cls, value: Any, info: ValidationInfo) -> Any:
        value = _clean_path(value, "distinct by")
        aggregation = info.data.get("aggregation")
        if aggregation == Aggregation.unique_count and value is None:
            raise ValueError("unique_count needs a distinct by property, e.g. user_id")
        if aggregation is not None and aggregation != Aggregation.unique_count:
            return None
        return value

    @field_validator("filters", mode="before")
    @classmethod
    def _filters(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("filters must map a property to a list of allowed values")
        cleaned: dict[str, list[str]] = {}
        for key, values in value.items():
            key = _clean_path(str(key), f"filter key '{key}'")
            if key is None:
                raise ValueError("a filter needs a property name")
            if isinstance(values, (str, int, float)) and not isinstance(values, bool):
                values = [values]
            if not isinstance(values, list) or not values:
                raise ValueError(f"filter '{key}' needs at least one allowed value")
            texts = [_filter_text(v) for v in values]
            if any(t == "" for t in texts):
                raise ValueError(f"filter '{key}' has an empty value")
            cleaned[key] = list(dict.fromkeys(texts))
        return cleaned

    @field_validator("group_by", mode="before")
    @classmethod
    def _group_by(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            value = [v for v in value.split(",")]
        out: list[str] = []
        for item in value:
            path = _clean_path(str(item), f"group by label '{item}'")
            if path is not None and path not in out:
                out.append(path)
        return out


def _filter_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value).strip()


class MetricUpdate(MetricCreate):
    pass


class Metric(MetricBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(min_length=1, max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class MetricPublic(MetricBase):
    id: int
    created_at: datetime
    updated_at: datetime


class ImportBatch(SQLModel, table=True):
    """One import (a file, an API call, a simulation): lets a person delete what it added."""

    __tablename__ = "import_batch"
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    future: int = 0  # accepted events dated after the import (a file may hold them)
    finished_at: datetime | None = None  # None: still running, or interrupted (see store)


# SQLite only auto-numbers an INTEGER PRIMARY KEY (the rowid); PostgreSQL gets a bigint.
_ID = BigInteger().with_variant(Integer, "sqlite")


class Event(SQLModel, table=True):
    """A recently stored usage event, waiting to be moved into a columnar segment (see
    metering.engine.store). `ts_us` is UTC epoch microseconds; `properties` is canonical JSON
    text (sorted keys, number literals kept exactly); `seq` is its place in store order."""

    __tablename__ = "event"
    # Only the unique idempotency key is indexed: previews, invoices and the API read the
    # columnar frame, not SQL, and every extra index slows each bulk import (README, Performance).
    id: int | None = Field(default=None, sa_column=Column(_ID, primary_key=True, autoincrement=True))
    event_name: str = Field(max_length=100)
    customer_id: str = Field(max_length=255)
    ts_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    idempotency_key: str = Field(max_length=255, unique=True)
    properties: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    # No index on import_id: it is only read to delete one import (a scan is fine there), and
    # every index costs time on each bulk insert.
    import_id: int | None = Field(default=None, foreign_key="import_batch.id")
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class StoreState(SQLModel, table=True):
    """One row that says cheaply what changed in `event`: kept in the same transactions as the
    inserts and deletes, so checking for news costs one row read, not a count over the table."""

    __tablename__ = "store_state"
    id: int = Field(default=1, primary_key=True)
    events: int = 0  # stored events (segments and `event` rows)
    generation: int = 0  # bumped by every delete
    next_seq: int = Field(default=1, sa_column=Column(BigInteger, nullable=False, default=1))  # store order
    compactions: int = 0  # bumped when `event` rows move into a segment
