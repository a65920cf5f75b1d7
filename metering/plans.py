"""Plans (contract §4) as Pydantic v2 models, with messages for a person tied to field paths.

Decimal fields accept int, Decimal, numeric text, or a float read through its shortest text
(`Decimal(str(x))`), never through binary; they serialise as plain decimal strings in JSON
mode (`model_dump(mode="json")`, `model_dump_json()`), and stay Decimals in Python mode.

Use `plan_errors(data)` for a form: it returns `(dotted path, message)` pairs such as
`("charges.0.tiers.1.up_to", "tiers must be in ascending order of up_to: …")`.
`validate_plan_against_metrics` adds the rules that need the workspace's metrics.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from metering.money import normalize_currency, to_decimal

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
INTERVALS = ("day", "week", "month", "year")
CHARGE_MODELS = ("standard", "graduated", "volume", "package", "percentage")
CHARGE_METRIC_TYPES = ("charge_metered", "charge_recurring")
LIMIT_METRIC_TYPES = ("limit_metered", "limit_recurring")

# Which optional Charge fields each model needs, and which it may use.
_MODEL_NEEDS: dict[str, tuple[str, ...]] = {
    "standard": ("unit_price",),
    "graduated": ("tiers",),
    "volume": ("tiers",),
    "package": ("package_size", "package_price"),
    "percentage": ("rate",),
}
_MODEL_ALLOWS: dict[str, tuple[str, ...]] = {**_MODEL_NEEDS, "percentage": ("rate", "fixed_fee")}
_MODEL_FIELDS = ("unit_price", "tiers", "package_size", "package_price", "rate", "fixed_fee")


# --- decimal fields -------------------------------------------------------------------------


def _decimal_required(value: Any, info: ValidationInfo) -> Any:
    if value is None:
        raise PydanticCustomError("required", "{field} is required", {"field": info.field_name})
    return _decimal_in(value, info)


def _decimal_in(value: Any, info: ValidationInfo) -> Any:
    if value is None:
        return None
    try:
        result = to_decimal(value)
    except ValueError as exc:
        raise PydanticCustomError(
            "decimal_input", "{field} {reason}", {"field": info.field_name, "reason": str(exc)}
        ) from None
    return result.copy_abs() if result.is_zero() else result  # "-0" is just 0


def _plain(value: Decimal) -> str:
    # Plain text, never exponent notation ("1E+3" → "1000"); keeps the digits as given.
    return format(value, "f")


def _plain_opt(value: Decimal | None) -> str | None:
    return None if value is None else _plain(value)


def _not_negative(value: Decimal | None, info: ValidationInfo) -> Decimal | None:
    if value is not None and value < 0:
        raise PydanticCustomError("decimal_negative", "{field} must be 0 or more", {"field": info.field_name})
    return value


def _positive(value: Decimal | None, info: ValidationInfo) -> Decimal | None:
    if value is not None and value <= 0:
        raise PydanticCustomError(
            "decimal_not_positive", "{field} must be greater than 0", {"field": info.field_name}
        )
    return value


# The before-validator turns every accepted input into a Decimal (or None) first, so the
# Optional variants report one clear error instead of one per union member.
_Dec = Annotated[
    Decimal,
    BeforeValidator(_decimal_required),
    PlainSerializer(_plain, return_type=str, when_used="json"),
]
_OptDec = Annotated[
    Optional[Decimal],
    BeforeValidator(_decimal_in),
    PlainSerializer(_plain_opt, return_type=Optional[str], when_used="json"),
]
Amount = Annotated[_Dec, AfterValidator(_not_negative)]  # money or units, ≥ 0
OptAmount = Annotated[_OptDec, AfterValidator(_not_negative)]
OptPositive = Annotated[_OptDec, AfterValidator(_positive)]  # > 0 when set


class _Strict(BaseModel):
    # Unknown keys are refused: a typo such as "unit_prise" must not silently price at 0.
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _required_text(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        raise PydanticCustomError("required", "{field} is required", {"field": info.field_name})
    return value


def _metric_code(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        raise PydanticCustomError("required", "metric is required: the code of a billable metric")
    if isinstance(value, str) and not CODE_RE.match(value):
        raise PydanticCustomError(
            "metric_code",
            "'{code}' is not a metric code (a lower-case letter, then a-z, 0-9 and _)",
            {"code": value},
        )
    return value


def _name(value: Any, info: ValidationInfo) -> Any:
    value = _required_text(value, info)
    if isinstance(value, str) and len(value) > 200:
        raise PydanticCustomError("too_long", "{field} must be at most 200 characters", {"field": info.field_name})
    return value


MetricCode = Annotated[str, BeforeValidator(_metric_code)]
Name = Annotated[str, BeforeValidator(_name)]


# --- models ---------------------------------------------------------------------------------


class Tier(_Strict):
    """One price tier; ``up_to`` is inclusive, and null (open) only on the last tier."""

    up_to: OptPositive = None
    unit_price: Amount
    flat_fee: Amount = Decimal(0)


class Charge(_Strict):
    """A usage charge on one charge_* metric; only the chosen model's fields may be set."""

    # Field order matters: validators below read `model` from the fields validated before them.
    metric: MetricCode
    model: Literal["standard", "graduated", "volume", "package", "percentage"]
    free_units: Amount = Decimal(0)
    unit_price: OptAmount = None
    tiers: list[Tier] | None = None
    package_size: OptPositive = None
    package_price: OptAmount = None
    rate: OptAmount = None
    fixed_fee: OptAmount = None

    @field_validator("model", mode="before")
    @classmethod
    def _model_name(cls, value: Any) -> Any:
        if value is None or value == "":
            raise PydanticCustomError("required", "model is required: one of {models}", {"models": ", ".join(CHARGE_MODELS)})
        return value

    @field_validator(*_MODEL_FIELDS, mode="after")
    @classmethod
    def _fits_model(cls, value: Any, info: ValidationInfo) -> Any:
        model = info.data.get("model")
        name = info.field_name
        if model is None:  # the model itself is invalid and reported already
            return value
        if value is None and name in _MODEL_NEEDS[model]:
            raise PydanticCustomError(
                "model_field_missing",
                "each charge model needs its own fields: {model} needs {field}",
                {"model": model, "field": name},
            )
        if value is not None and name not in _MODEL_ALLOWS[model]:
            raise PydanticCustomError(
                "model_field_extra",
                "{field} does not apply to the {model} model (it uses {fields})",
                {"model": model, "field": name, "fields": ", ".join(_MODEL_ALLOWS[model])},
            )
        return value

    @field_validator("tiers", mode="after")
    @classmethod
    def _tiers(cls, tiers: list[Tier] | None) -> list[Tier] | None:
        if tiers is None:
            return None
        if not tiers:
            raise PydanticCustomError("tiers_empty", "tiers needs at least one tier")
        last = len(tiers) - 1
        previous: Decimal | None = None
        for i, tier in enumerate(tiers):
            if tier.up_to is None and i < last:
                raise _tier_error(i, "only the last tier may have an open up_to (null)")
            if tier.up_to is not None and i == last:
                raise _tier_error(
                    i, "the last tier must have an open up_to (null), so every quantity has a price"
                )
            if tier.up_to is not None and previous is not None and tier.up_to <= previous:
                raise _tier_error(
                    i,
                    f"tiers must be in ascending order of up_to: tier {i + 1}'s up_to "
                    f"({_plain(tier.up_to)}) must be greater than tier {i}'s ({_plain(previous)})",
                )
            previous = tier.up_to
        return tiers

    @field_validator("rate", mode="after")
    @classmethod
    def _rate(cls, rate: Decimal | None) -> Decimal | None:
        if rate is not None and rate > 100:
            raise PydanticCustomError("rate_range", "rate is a percentage: it must be between 0 and 100")
        return rate


def _tier_error(index: int, message: str) -> PydanticCustomError:
    # Raised on the `tiers` list; `plan_errors` moves it to tiers.<index>.up_to via the context.
    return PydanticCustomError("tier_up_to", message, {"index": index, "field": "up_to"})


class FixedCharge(_Strict):
    """A flat line every period: seats, licences (quantity × unit_price)."""

    name: Name
    quantity: Amount = Decimal(1)
    unit_price: Amount


MAX_ALERT_THRESHOLDS = 10
MAX_ALERT_PERCENT = Decimal(1000)


def alert_threshold_problem(values: Any) -> str | None:
    """Why a list of alert thresholds (percent of the quota's available units) cannot be used,
    or None: 1 to 10 numbers, each greater than 0 and at most 1000, no repeats. Used by the plan
    model and by forms (the same sentence either way)."""
    if values is None:
        return None
    if not isinstance(values, (list, tuple)):
        return "alert thresholds must be a list of percentages such as [80, 100]"
    if len(values) > MAX_ALERT_THRESHOLDS:
        return f"at most {MAX_ALERT_THRESHOLDS} alert thresholds per quota"
    seen: set[Decimal] = set()
    for value in values:
        try:
            number = to_decimal(value)
        except ValueError:
            return f"alert threshold {str(value)[:40]!r} is not a number: write a percentage such as 80"
        if not number.is_finite() or number <= 0 or number > MAX_ALERT_PERCENT:
            return f"alert threshold {value} must be a percentage greater than 0 and at most {MAX_ALERT_PERCENT}"
        if number in seen:
            return f"alert threshold {value} is listed twice"
        seen.add(number)
    return None


def _alert_thresholds(value: Any) -> Any:
    problem = alert_threshold_problem(value)
    if problem is not None:
        raise PydanticCustomError("alert_thresholds", problem)
    if value is None or len(value) == 0:
        return None  # no alerts: left out of the plan's JSON
    return sorted(to_decimal(v) for v in value)


class Quota(_Strict):
    """The allowance on one limit_* metric (contract §3); `alert_thresholds` are percentages of
    the period's available units at which a live alert is recorded (contract §8)."""

    metric: MetricCode
    limit: Amount
    max_carryover: OptAmount = None
    overage_unit_price: OptAmount = None
    alert_thresholds: Annotated[
        Optional[list[Decimal]],
        BeforeValidator(_alert_thresholds),
        PlainSerializer(lambda v: None if v is None else [_plain(x) for x in v], return_type=Optional[list[str]], when_used="json"),
    ] = None


class Plan(_Strict):
    code: str
    name: Name
    currency: str
    interval: Literal["day", "week", "month", "year"] = "month"
    base_fee: Amount = Decimal(0)
    fixed_charges: list[FixedCharge] = Field(default_factory=list)
    charges: list[Charge] = Field(default_factory=list)
    quotas: list[Quota] = Field(default_factory=list)
    included_credit: Amount = Decimal(0)

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            raise PydanticCustomError("required", "code is required")
        if isinstance(value, str) and not CODE_RE.match(value):
            raise PydanticCustomError(
                "code_pattern",
                "code must start with a lower-case letter and use only a-z, 0-9 and _ "
                "(at most 64 characters)",
            )
        return value

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        try:
            return normalize_currency(value)
        except ValueError as exc:
            raise PydanticCustomError("currency", str(exc)) from None

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        if value not in INTERVALS:
            raise PydanticCustomError(
                "interval", "interval must be one of day, week, month, year"
            )
        return value

    @field_validator("charges", mode="after")
    @classmethod
    def _one_charge_per_metric(cls, charges: list[Charge]) -> list[Charge]:
        _check_unique([c.metric for c in charges], "charge")
        return charges

    @field_validator("quotas", mode="after")
    @classmethod
    def _one_quota_per_metric(cls, quotas: list[Quota]) -> list[Quota]:
        _check_unique([q.metric for q in quotas], "quota")
        return quotas

    def charge_for(self, metric: str) -> Charge | None:
        return next((c for c in self.charges if c.metric == metric), None)

    def quota_for(self, metric: str) -> Quota | None:
        return next((q for q in self.quotas if q.metric == metric), None)


def _check_unique(metrics: list[str], kind: str) -> None:
    seen: dict[str, int] = {}
    for i, metric in enumerate(metrics):
        if metric in seen:
            raise PydanticCustomError(
                "duplicate_metric",
                "a plan has at most one {kind} per metric: '{metric}' already has one "
                "(entry {first})",
                {"kind": kind, "metric": metric, "first": seen[metric] + 1, "index": i, "field": "metric"},
            )
        seen[metric] = i


# --- errors for forms -----------------------------------------------------------------------

_TYPE_MESSAGES = {
    "string_type": "must be text",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "bool_type": "must be true or false",
}


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def errors_of(exc: ValidationError) -> list[tuple[str, str]]:
    """(dotted field path, message for a person) pairs of a plan ValidationError."""
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        kind = err["type"]
        if not loc:
            field = "plan"
        elif isinstance(loc[-1], int) and len(loc) > 1:
            field = f"{loc[-2]} entry {loc[-1] + 1}"  # an item of a list: "charges entry 2"
        else:
            field = str(loc[-1])
        if "index" in ctx and "field" in ctx:  # list-level rule that belongs to one entry
            loc = (*loc, ctx["index"], ctx["field"])
        if kind == "missing":
            message = f"{field} is required"
        elif kind == "extra_forbidden":
            message = f"unknown field '{field}'"
        elif kind in _TYPE_MESSAGES:
            message = f"{field} {_TYPE_MESSAGES[kind]}"
        elif kind == "literal_error":
            message = f"{field} must be one of {ctx.get('expected', '')}".replace("'", "")
        else:
            message = err["msg"].removeprefix("Value error, ")
        out.append((_path(loc), message))
    return out


def plan_errors(data: Any, metric_types: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Every problem of a plan as submitted, as (dotted path, message); [] when it is valid.

    With ``metric_types`` ({metric code: metric_type}) the cross-object rules of
    :func:`validate_plan_against_metrics` are checked too, once the plan itself is valid.
    """
    if not isinstance(data, dict):
        return [("", "a plan must be a JSON object")]
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        return errors_of(exc)
    if metric_types is not None:
        return validate_plan_against_metrics(plan, metric_types)
    return []


def validate_plan_against_metrics(plan: Plan, metric_types: dict[str, str]) -> list[tuple[str, str]]:
    """Rules that need the workspace's metrics ({code: metric_type}), as (path, message):
    a charge only on a charge_* metric, a quota only on a limit_* metric, no unknown metric,
    one charge and one quota per metric, and carryover only on limit_recurring metrics."""
    out: list[tuple[str, str]] = []
    types = {code: getattr(kind, "value", kind) for code, kind in metric_types.items()}

    seen: set[str] = set()
    for i, charge in enumerate(plan.charges):
        path = f"charges.{i}.metric"
        kind = types.get(charge.metric)
        if charge.metric in seen:
            out.append((path, f"a plan has at most one charge per metric: '{charge.metric}' already has one"))
        seen.add(charge.metric)
        if kind is None:
            out.append((path, f"unknown metric '{charge.metric}'"))
        elif kind not in CHARGE_METRIC_TYPES:
            out.append(
                (path, f"'{charge.metric}' is a {kind} metric: a charge needs a charge_metered "
                 "or charge_recurring metric (put limits under quotas)")
            )

    seen = set()
    for i, quota in enumerate(plan.quotas):
        path = f"quotas.{i}.metric"
        kind = types.get(quota.metric)
        if quota.metric in seen:
            out.append((path, f"a plan has at most one quota per metric: '{quota.metric}' already has one"))
        seen.add(quota.metric)
        if kind is None:
            out.append((path, f"unknown metric '{quota.metric}'"))
        elif kind not in LIMIT_METRIC_TYPES:
            out.append(
                (path, f"'{quota.metric}' is a {kind} metric: a quota needs a limit_metered "
                 "or limit_recurring metric (price it under charges)")
            )
        elif kind == "limit_metered":
            if quota.max_carryover is not None:
                out.append(
                    (f"quotas.{i}.max_carryover", "max_carryover applies only to limit_recurring "
                     "metrics: unused limit_metered quota is lost")
                )
            if quota.overage_unit_price is not None:
                out.append(
                    (f"quotas.{i}.overage_unit_price", "overage_unit_price applies only to "
                     "limit_recurring metrics: a limit_metered quota rejects usage past the limit")
                )
    return out
