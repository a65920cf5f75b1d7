"""Plan models (contract §4): parsing, exact decimals, messages tied to field paths."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from metering.plans import (
    Charge,
    FixedCharge,
    Plan,
    Quota,
    Tier,
    plan_errors,
    validate_plan_against_metrics,
)

D = Decimal


def plan_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "pro",
        "name": "Pro",
        "currency": "USD",
        "interval": "month",
        "base_fee": "49",
        "fixed_charges": [{"name": "Seats", "quantity": 3, "unit_price": "10"}],
        "charges": [
            {"metric": "api_calls", "model": "standard", "unit_price": "0.02", "free_units": 1000},
            {
                "metric": "llm_tokens",
                "model": "graduated",
                "tiers": [
                    {"up_to": 1000, "unit_price": "0.01"},
                    {"up_to": None, "unit_price": "0.005", "flat_fee": 1},
                ],
            },
        ],
        "quotas": [{"metric": "sms", "limit": 1000, "max_carryover": 500}],
        "included_credit": "5",
    }
    data.update(overrides)
    return data


def charge(**fields: Any) -> dict[str, Any]:
    return {"metric": "m", **fields}


def errors_for(**overrides: Any) -> list[tuple[str, str]]:
    return plan_errors(plan_data(**overrides))


METRICS = {
    "api_calls": "charge_metered",
    "llm_tokens": "charge_recurring",
    "sms": "limit_recurring",
    "seats_cap": "limit_metered",
}


# --- valid plans ------------------------------------------------------------------------------


def test_full_plan_parses_with_exact_decimals() -> None:
    plan = Plan.model_validate(plan_data())
    assert plan.base_fee == D(49) and plan.included_credit == D(5)
    assert plan.fixed_charges == [FixedCharge(name="Seats", quantity=D(3), unit_price=D(10))]
    api = plan.charge_for("api_calls")
    assert api is not None and api.unit_price == D("0.02") and api.free_units == D(1000)
    tokens = plan.charge_for("llm_tokens")
    assert tokens is not None and tokens.tiers == [
        Tier(up_to=D(1000), unit_price=D("0.01")),
        Tier(up_to=None, unit_price=D("0.005"), flat_fee=D(1)),
    ]
    assert plan.quota_for("sms") == Quota(metric="sms", limit=D(1000), max_carryover=D(500))
    assert plan.charge_for("nope") is None
    assert plan_errors(plan_data()) == []


def test_defaults() -> None:
    plan = Plan.model_validate({"code": "free", "name": "Free", "currency": "EUR"})
    assert plan.interval == "month"
    assert plan.base_fee == 0 and plan.included_credit == 0
    assert plan.charges == [] and plan.quotas == [] and plan.fixed_charges == []
    assert FixedCharge(name="Seat", unit_price="5").quantity == D(1)
    assert Charge(metric="m", model="standard", unit_price="1").free_units == D(0)


def test_floats_are_read_through_their_text_not_binary() -> None:
    plan = Plan.model_validate(plan_data(base_fee=0.1, included_credit=19.99))
    assert plan.base_fee == D("0.1")
    assert str(plan.included_credit) == "19.99"
    from_json = Plan.model_validate_json(json.dumps(plan_data(base_fee=0.1)))
    assert str(from_json.base_fee) == "0.1"


def test_json_serialises_decimals_as_plain_strings_and_round_trips() -> None:
    plan = Plan.model_validate(plan_data(base_fee="1e3"))
    dumped = plan.model_dump(mode="json")
    assert dumped["base_fee"] == "1000"
    assert dumped["charges"][0]["unit_price"] == "0.02"
    assert dumped["charges"][0]["free_units"] == "1000"
    assert dumped["charges"][1]["tiers"][1] == {"up_to": None, "unit_price": "0.005", "flat_fee": "1"}
    assert dumped["quotas"][0]["overage_unit_price"] is None
    assert Plan.model_validate(dumped) == plan
    assert Plan.model_validate_json(plan.model_dump_json()) == plan
    # Python mode keeps Decimals
    assert plan.model_dump()["base_fee"] == D(1000)


def test_negative_zero_is_zero() -> None:
    plan = Plan.model_validate(plan_data(base_fee="-0.00"))
    assert plan.model_dump(mode="json")["base_fee"] == "0.00"


def test_currency_is_normalised_to_upper_case() -> None:
    assert Plan.model_validate(plan_data(currency=" jpy")).currency == "JPY"


@pytest.mark.parametrize("model, fields", [
    ("standard", {"unit_price": "0"}),
    ("graduated", {"tiers": [{"unit_price": "1"}]}),
    ("volume", {"tiers": [{"up_to": "0.5", "unit_price": "1"}, {"unit_price": "0.5"}]}),
    ("package", {"package_size": "100", "package_price": "5"}),
    ("percentage", {"rate": "2.5"}),
    ("percentage", {"rate": "100", "fixed_fee": "0.30"}),
])
def test_each_model_with_its_fields_is_valid(model: str, fields: dict[str, Any]) -> None:
    assert errors_for(charges=[charge(model=model, **fields)]) == []


# --- plan-level messages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"code": "Pro"}, ("code", "code must start with a lower-case letter and use only a-z, 0-9 and _ (at most 64 characters)")),
        ({"code": "9lives"}, ("code", "code must start with a lower-case letter and use only a-z, 0-9 and _ (at most 64 characters)")),
        ({"code": "a" * 65}, ("code", "code must start with a lower-case letter and use only a-z, 0-9 and _ (at most 64 characters)")),
        ({"code": ""}, ("code", "code is required")),
        ({"code": 7}, ("code", "code must be text")),
        ({"name": "  "}, ("name", "name is required")),
        ({"name": "x" * 201}, ("name", "name must be at most 200 characters")),
        ({"currency": "XYZ"}, ("currency", "'XYZ' is not an ISO 4217 currency in use; use a code such as USD, EUR or JPY")),
        ({"currency": None}, ("currency", "currency must be an ISO 4217 code such as USD, EUR or JPY")),
        ({"interval": "monthly"}, ("interval", "interval must be one of day, week, month, year")),
        ({"base_fee": "-1"}, ("base_fee", "base_fee must be 0 or more")),
        ({"base_fee": "ten"}, ("base_fee", "base_fee 'ten' is not a decimal number (write e.g. 0.02)")),
        ({"base_fee": True}, ("base_fee", "base_fee must be a number, not true/false")),
        ({"base_fee": "NaN"}, ("base_fee", "base_fee must be a finite number")),
        ({"included_credit": "-0.01"}, ("included_credit", "included_credit must be 0 or more")),
        ({"charges": {}}, ("charges", "charges must be a list")),
        ({"colour": "red"}, ("colour", "unknown field 'colour'")),
    ],
)
def test_plan_field_messages(overrides: dict[str, Any], expected: tuple[str, str]) -> None:
    assert errors_for(**overrides) == [expected]


def test_missing_required_fields() -> None:
    assert plan_errors({}) == [
        ("code", "code is required"),
        ("name", "name is required"),
        ("currency", "currency is required"),
    ]
    assert plan_errors([]) == [("", "a plan must be a JSON object")]


def test_nested_missing_and_type_messages() -> None:
    assert errors_for(fixed_charges=[{"name": "Seats"}]) == [
        ("fixed_charges.0.unit_price", "unit_price is required")
    ]
    assert errors_for(quotas=[{"metric": "sms"}]) == [("quotas.0.limit", "limit is required")]
    assert errors_for(charges=["standard"]) == [("charges.0", "charges entry 1 must be an object")]
    assert errors_for(quotas=[{"metric": "sms", "limit": None}]) == [("quotas.0.limit", "limit is required")]
    assert errors_for(fixed_charges=[{"name": 5, "unit_price": 1}]) == [("fixed_charges.0.name", "name must be text")]
    assert errors_for(charges=[charge(model="volume", tiers=[{"unit_price": 1}, None])]) == [
        ("charges.0.tiers.1", "tiers entry 2 must be an object")
    ]


# --- charge messages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"model": "standard"}, [("charges.0.unit_price", "each charge model needs its own fields: standard needs unit_price")]),
        ({"model": "graduated"}, [("charges.0.tiers", "each charge model needs its own fields: graduated needs tiers")]),
        ({"model": "volume"}, [("charges.0.tiers", "each charge model needs its own fields: volume needs tiers")]),
        (
            {"model": "package"},
            [
                ("charges.0.package_size", "each charge model needs its own fields: package needs package_size"),
                ("charges.0.package_price", "each charge model needs its own fields: package needs package_price"),
            ],
        ),
        ({"model": "percentage"}, [("charges.0.rate", "each charge model needs its own fields: percentage needs rate")]),
        (
            {"model": "standard", "unit_price": "1", "package_size": 10},
            [("charges.0.package_size", "package_size does not apply to the standard model (it uses unit_price)")],
        ),
        (
            {"model": "graduated", "unit_price": "1", "tiers": [{"unit_price": "1"}]},
            [("charges.0.unit_price", "unit_price does not apply to the graduated model (it uses tiers)")],
        ),
        ({"model": "flat", "unit_price": "1"}, [("charges.0.model", "model must be one of standard, graduated, volume, package or percentage")]),
        ({"unit_price": "1"}, [("charges.0.model", "model is required")]),
        ({"model": ""}, [("charges.0.model", "model is required: one of standard, graduated, volume, package, percentage")]),
        ({"model": "package", "package_size": 0, "package_price": 5}, [("charges.0.package_size", "package_size must be greater than 0")]),
        ({"model": "package", "package_size": "-2", "package_price": 5}, [("charges.0.package_size", "package_size must be greater than 0")]),
        ({"model": "standard", "unit_price": "-0.01"}, [("charges.0.unit_price", "unit_price must be 0 or more")]),
        ({"model": "standard", "unit_price": "1", "free_units": -1}, [("charges.0.free_units", "free_units must be 0 or more")]),
        ({"model": "percentage", "rate": "100.01"}, [("charges.0.rate", "rate is a percentage: it must be between 0 and 100")]),
        ({"model": "percentage", "rate": "-1"}, [("charges.0.rate", "rate must be 0 or more")]),
        ({"model": "standard", "unit_price": "1", "rate": "1"}, [("charges.0.rate", "rate does not apply to the standard model (it uses unit_price)")]),
    ],
)
def test_charge_messages(fields: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert errors_for(charges=[charge(**fields)]) == expected


def test_charge_metric_code() -> None:
    assert errors_for(charges=[{"model": "standard", "unit_price": 1}]) == [("charges.0.metric", "metric is required")]
    assert errors_for(charges=[{"metric": "API Calls", "model": "standard", "unit_price": 1}]) == [
        ("charges.0.metric", "'API Calls' is not a metric code (a lower-case letter, then a-z, 0-9 and _)")
    ]


@pytest.mark.parametrize(
    "tiers, expected",
    [
        ([], [("charges.0.tiers", "tiers needs at least one tier")]),
        (
            [{"up_to": 500, "unit_price": 1}, {"up_to": 100, "unit_price": 1}, {"unit_price": 1}],
            [("charges.0.tiers.1.up_to", "tiers must be in ascending order of up_to: tier 2's up_to (100) must be greater than tier 1's (500)")],
        ),
        (
            [{"up_to": 100, "unit_price": 1}, {"up_to": 100, "unit_price": 1}, {"unit_price": 1}],
            [("charges.0.tiers.1.up_to", "tiers must be in ascending order of up_to: tier 2's up_to (100) must be greater than tier 1's (100)")],
        ),
        (
            [{"unit_price": 1}, {"up_to": 100, "unit_price": 1}, {"up_to": None, "unit_price": 1}],
            [("charges.0.tiers.0.up_to", "only the last tier may have an open up_to (null)")],
        ),
        (
            [{"up_to": 100, "unit_price": 1}, {"up_to": 200, "unit_price": 1}],
            [("charges.0.tiers.1.up_to", "the last tier must have an open up_to (null), so every quantity has a price")],
        ),
        ([{"up_to": 0, "unit_price": 1}, {"unit_price": 1}], [("charges.0.tiers.0.up_to", "up_to must be greater than 0")]),
        ([{"up_to": "abc", "unit_price": 1}, {"unit_price": 1}], [("charges.0.tiers.0.up_to", "up_to 'abc' is not a decimal number (write e.g. 0.02)")]),
        ([{"up_to": 10}, {"unit_price": 1}], [("charges.0.tiers.0.unit_price", "unit_price is required")]),
        ([{"up_to": 10, "unit_price": 1, "flat_fee": "-5"}, {"unit_price": 1}], [("charges.0.tiers.0.flat_fee", "flat_fee must be 0 or more")]),
        ([{"up_to": 10, "unit_price": 1, "price": 2}, {"unit_price": 1}], [("charges.0.tiers.0.price", "unknown field 'price'")]),
    ],
)
def test_tier_messages(tiers: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    for model in ("graduated", "volume"):
        assert errors_for(charges=[charge(model=model, tiers=tiers)]) == expected


def test_raw_validation_error_keeps_pydantic_loc() -> None:
    with pytest.raises(ValidationError) as info:
        Charge.model_validate(charge(model="graduated", tiers=[{"unit_price": 1}, {"unit_price": 2}]))
    (err,) = info.value.errors()
    assert err["loc"] == ("tiers",)
    assert err["ctx"] == {"index": 0, "field": "up_to"}


def test_several_errors_each_beside_its_field() -> None:
    errors = errors_for(
        code="Bad Code",
        charges=[
            charge(model="standard"),
            {"metric": "x", "model": "package", "package_size": 0, "package_price": "-1"},
        ],
    )
    assert [path for path, _ in errors] == [
        "code",
        "charges.0.unit_price",
        "charges.1.package_size",
        "charges.1.package_price",
    ]


def test_one_charge_and_one_quota_per_metric_in_the_plan() -> None:
    std = {"metric": "api_calls", "model": "standard", "unit_price": 1}
    assert errors_for(charges=[std, dict(std)]) == [
        ("charges.1.metric", "a plan has at most one charge per metric: 'api_calls' already has one (entry 1)")
    ]
    assert errors_for(quotas=[{"metric": "sms", "limit": 1}, {"metric": "x", "limit": 1}, {"metric": "sms", "limit": 2}]) == [
        ("quotas.2.metric", "a plan has at most one quota per metric: 'sms' already has one (entry 1)")
    ]


def test_quota_messages() -> None:
    assert errors_for(quotas=[{"metric": "sms", "limit": -1}]) == [("quotas.0.limit", "limit must be 0 or more")]
    assert errors_for(quotas=[{"metric": "sms", "limit": 1, "max_carryover": "-1"}]) == [
        ("quotas.0.max_carryover", "max_carryover must be 0 or more")
    ]
    assert errors_for(quotas=[{"metric": "sms", "limit": 1, "overage_unit_price": "x"}]) == [
        ("quotas.0.overage_unit_price", "overage_unit_price 'x' is not a decimal number (write e.g. 0.02)")
    ]


def test_fixed_charge_messages() -> None:
    assert errors_for(fixed_charges=[{"name": "", "unit_price": 1}]) == [("fixed_charges.0.name", "name is required")]
    assert errors_for(fixed_charges=[{"name": "Seats", "unit_price": 1, "quantity": -2}]) == [
        ("fixed_charges.0.quantity", "quantity must be 0 or more")
    ]


# --- rules against the workspace's metrics ----------------------------------------------------


def test_valid_against_metrics() -> None:
    plan = Plan.model_validate(plan_data())
    assert validate_plan_against_metrics(plan, METRICS) == []
    assert plan_errors(plan_data(), METRICS) == []


def test_charge_and_quota_metric_types() -> None:
    plan = Plan.model_validate(
        plan_data(
            charges=[
                {"metric": "sms", "model": "standard", "unit_price": 1},
                {"metric": "ghost", "model": "standard", "unit_price": 1},
            ],
            quotas=[{"metric": "api_calls", "limit": 10}, {"metric": "phantom", "limit": 1}],
        )
    )
    assert validate_plan_against_metrics(plan, METRICS) == [
        ("charges.0.metric", "'sms' is a limit_recurring metric: a charge needs a charge_metered or charge_recurring metric (put limits under quotas)"),
        ("charges.1.metric", "unknown metric 'ghost'"),
        ("quotas.0.metric", "'api_calls' is a charge_metered metric: a quota needs a limit_metered or limit_recurring metric (price it under charges)"),
        ("quotas.1.metric", "unknown metric 'phantom'"),
    ]


def test_carryover_and_overage_only_on_limit_recurring() -> None:
    plan = Plan.model_validate(
        plan_data(quotas=[{"metric": "seats_cap", "limit": 10, "max_carryover": 5, "overage_unit_price": "0.5"}])
    )
    assert validate_plan_against_metrics(plan, METRICS) == [
        ("quotas.0.max_carryover", "max_carryover applies only to limit_recurring metrics: unused limit_metered quota is lost"),
        ("quotas.0.overage_unit_price", "overage_unit_price applies only to limit_recurring metrics: a limit_metered quota rejects usage past the limit"),
    ]
    ok = Plan.model_validate(plan_data(quotas=[{"metric": "sms", "limit": 10, "max_carryover": 5, "overage_unit_price": "0.5"}]))
    assert validate_plan_against_metrics(ok, METRICS) == []


def test_duplicates_checked_against_metrics_too() -> None:
    # model_construct skips validation (e.g. a plan assembled in code); the cross check still catches it
    std = Charge(metric="api_calls", model="standard", unit_price=D(1))
    plan = Plan.model_construct(code="p", name="P", currency="USD", charges=[std, std], quotas=[], fixed_charges=[])
    assert validate_plan_against_metrics(plan, METRICS) == [
        ("charges.1.metric", "a plan has at most one charge per metric: 'api_calls' already has one")
    ]


def test_metric_types_may_be_enums() -> None:
    from enum import Enum

    class Kind(str, Enum):
        charge_metered = "charge_metered"

    plan = Plan.model_validate(plan_data(charges=[{"metric": "api_calls", "model": "standard", "unit_price": 1}], quotas=[]))
    assert validate_plan_against_metrics(plan, {"api_calls": Kind.charge_metered}) == []  # type: ignore[dict-item]


def test_plan_errors_reports_model_errors_before_metric_rules() -> None:
    data = plan_data(code="BAD")
    assert plan_errors(data, {}) == [
        ("code", "code must start with a lower-case letter and use only a-z, 0-9 and _ (at most 64 characters)")
    ]
    assert plan_errors(plan_data(), {"api_calls": "charge_metered"}) == [
        ("charges.1.metric", "unknown metric 'llm_tokens'"),
        ("quotas.0.metric", "unknown metric 'sms'"),
    ]
