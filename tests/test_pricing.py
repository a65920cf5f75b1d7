"""Charge models (contract §4): exact Decimal amounts, tier boundaries, explanation steps."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.money import round_money
from metering.plans import Charge
from metering.pricing import (
    EventFeeStep,
    PackageStep,
    PercentageStep,
    TierStep,
    UnitStep,
    graduated,
    package,
    price_charge,
    volume,
)

D = Decimal


@dataclass
class T:
    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = D(0)


@dataclass
class C:
    model: str
    free_units: Decimal = D(0)
    unit_price: Decimal | None = None
    tiers: list[Any] = field(default_factory=list)
    package_size: Decimal | None = None
    package_price: Decimal | None = None
    rate: Decimal | None = None
    fixed_fee: Decimal | None = None


# Three tiers: 0–100 at 1.00; 100–200 at 0.50 + 10 flat; above 200 at 0.10 + 5 flat.
TIERS = [T(D(100), D("1.00")), T(D(200), D("0.50"), D(10)), T(None, D("0.10"), D(5))]


# --- contract examples ------------------------------------------------------------------------


def test_contract_example_free_units() -> None:
    charge = Charge(metric="api_calls", model="standard", unit_price="0.02", free_units=1000)
    result = price_charge(charge, D(2500))
    assert (result.units, result.free_units, result.billable) == (D(2500), D(1000), D(1500))
    assert result.amount == D("30.00")
    assert str(round_money(result.amount, "USD")) == "30.00"
    assert result.steps == (UnitStep(D(1500), D("0.02"), D("30.00")),)
    assert result.explain("USD") == [
        "2,500 units; first 1,000 free → 1,500 billable",
        "1,500 × $0.02 = $30.00",
    ]


def test_contract_example_pay_per_call() -> None:
    charge = Charge(metric="api_calls", model="standard", unit_price="0.10")
    result = price_charge(charge, D(500))
    assert result.amount == D("50.00")
    assert str(round_money(result.amount, "USD")) == "50.00"
    assert result.explain("USD") == ["500 × $0.10 = $50.00"]


# --- standard and free units ------------------------------------------------------------------


@pytest.mark.parametrize(
    "usage, free, expected_billable, expected_amount",
    [
        ("0", "0", "0", "0"),
        ("999", "1000", "0", "0"),
        ("1000", "1000", "0", "0"),
        ("1000.5", "1000", "0.5", "0.015"),
        ("-5", "0", "0", "0"),
        ("-5", "10", "0", "0"),
        ("0.000000001", "0", "0.000000001", "0.00000000003"),
    ],
)
def test_standard_free_units_and_edges(usage: str, free: str, expected_billable: str, expected_amount: str) -> None:
    result = price_charge(C("standard", free_units=D(free), unit_price=D("0.03")), D(usage))
    assert result.billable == D(expected_billable)
    assert result.amount == D(expected_amount)


def test_negative_free_units_count_as_zero() -> None:
    result = price_charge(C("standard", free_units=D(-5), unit_price=D(1)), D(10))
    assert (result.billable, result.amount) == (D(10), D(10))


def test_amount_is_not_rounded() -> None:
    result = price_charge(C("standard", unit_price=D("0.333")), D(3))
    assert result.amount == D("0.999")
    assert str(result.amount) == "0.999"
    tiny = price_charge(C("standard", unit_price=D("0.0000001")), D(7))
    assert tiny.amount == D("0.0000007")


def test_negative_usage_explained() -> None:
    result = price_charge(C("standard", unit_price=D(1)), D(-3))
    assert result.amount == 0 and result.steps == ()
    assert result.explain() == ["usage -3 is negative: bills as 0", "nothing to bill: 0"]


def test_inputs_must_not_be_float() -> None:
    with pytest.raises(TypeError):
        price_charge(C("standard", unit_price=D(1)), 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        price_charge(C("standard", unit_price=0.1), D(1))  # type: ignore[arg-type]
    assert price_charge(C("standard", unit_price=D(1)), "2.5").amount == D("2.5")
    assert price_charge(C("standard", unit_price=D(1)), 2).amount == D(2)


def test_missing_or_unknown_model_fields() -> None:
    with pytest.raises(ValueError, match="standard model needs unit_price"):
        price_charge(C("standard"), D(1))
    with pytest.raises(ValueError, match="unknown charge model 'flat'"):
        price_charge(C("flat"), D(1))
    with pytest.raises(ValueError, match="at least one tier"):
        price_charge(C("graduated"), D(1))
    with pytest.raises(ValueError, match="package_size must be greater than 0"):
        price_charge(C("package", package_size=D(0), package_price=D(1)), D(1))
    with pytest.raises(ValueError, match="up_to null"):
        price_charge(C("graduated", tiers=[T(D(10), D(1))]), D(11))
    with pytest.raises(ValueError, match="up_to null"):
        price_charge(C("volume", tiers=[T(D(10), D(1))]), D(11))


# --- graduated --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "billable, expected",
    [
        ("0", "0"),
        ("0.5", "0.5"),
        ("1", "1"),
        ("99.999", "99.999"),
        ("100", "100"),  # exactly on up_to: all in tier 1, tier 2's flat fee not yet due
        ("100.5", "110.25"),  # just past: 100 + 0.5 × 0.50 + 10
        ("150", "135"),
        ("200", "160"),  # 100 + 100 × 0.50 + 10
        ("201", "165.1"),  # 160 + 1 × 0.10 + 5
        ("1000", "245"),  # 160 + 800 × 0.10 + 5
    ],
)
def test_graduated(billable: str, expected: str) -> None:
    result = price_charge(C("graduated", tiers=TIERS), D(billable))
    assert result.amount == D(expected)
    assert result.amount == sum((s.amount for s in result.steps), D(0))


def test_graduated_steps() -> None:
    result = price_charge(C("graduated", tiers=TIERS, free_units=D(50)), D(300))
    assert result.billable == D(250)
    assert result.steps == (
        TierStep(0, D(0), D(100), D(100), D("1.00"), D(0), D("100.00")),
        TierStep(1, D(100), D(200), D(100), D("0.50"), D(10), D("60.00")),
        TierStep(2, D(200), None, D(50), D("0.10"), D(5), D("10.00")),
    )
    assert result.amount == D(170)
    assert result.explain("USD") == [
        "300 units; first 50 free → 250 billable",
        "tier 1 (0–100): 100 × $1.00 = $100.00",
        "tier 2 (100–200): 100 × $0.50 + $10.00 flat = $60.00",
        "tier 3 (above 200): 50 × $0.10 + $5.00 flat = $10.00",
        "total $170.00",
    ]


def test_graduated_first_tier_flat_fee_only_when_units() -> None:
    tiers = [T(D(10), D(0), D(25)), T(None, D(2))]
    assert price_charge(C("graduated", tiers=tiers), D(0)).amount == 0
    assert price_charge(C("graduated", tiers=tiers), D("0.001")).amount == D(25)
    assert price_charge(C("graduated", tiers=tiers), D(12)).amount == D(29)


def test_graduated_accepts_plan_tiers_and_dicts() -> None:
    charge = Charge.model_validate(
        {
            "metric": "tokens",
            "model": "graduated",
            "tiers": [{"up_to": 1000, "unit_price": "0.01"}, {"up_to": None, "unit_price": "0.005", "flat_fee": 1}],
        }
    )
    assert price_charge(charge, D(2500)).amount == D("18.500")
    amount, _ = graduated(D(2500), [{"up_to": D(1000), "unit_price": D("0.01")}, {"up_to": None, "unit_price": D("0.005")}])
    assert amount == D("17.5")


# --- volume -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "billable, expected, tier",
    [
        ("0", "0", None),
        ("0.5", "0.5", 0),
        ("100", "100", 0),  # exactly on up_to: still tier 1
        ("100.5", "60.25", 1),  # just past: all 100.5 units at 0.50 + 10
        ("200", "110", 1),
        ("201", "25.1", 2),  # 201 × 0.10 + 5
        ("1000", "105", 2),
    ],
)
def test_volume(billable: str, expected: str, tier: int | None) -> None:
    result = price_charge(C("volume", tiers=TIERS), D(billable))
    assert result.amount == D(expected)
    if tier is None:
        assert result.steps == ()
    else:
        (step,) = result.steps
        assert isinstance(step, TierStep)
        assert step.index == tier and step.units == D(billable)


def test_volume_step_and_explain() -> None:
    result = price_charge(C("volume", tiers=TIERS), D(150))
    assert result.steps == (TierStep(1, D(100), D(200), D(150), D("0.50"), D(10), D("85.00")),)
    assert result.explain("EUR", locale="de_DE") == [
        "tier 2 (100–200): 150 × 0,50\xa0€ + 10,00\xa0€ flat = 85,00\xa0€"
    ]


# --- package ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "usage, free, expected_packages, expected_amount",
    [
        ("0", "0", 0, "0"),
        ("1", "0", 1, "5"),
        ("0.001", "0", 1, "5"),
        ("100", "0", 1, "5"),  # exactly one full package
        ("100.000000001", "0", 2, "10"),  # just past
        ("250", "0", 3, "15"),
        ("250", "50", 2, "10"),  # free units come off first
        ("50", "50", 0, "0"),
    ],
)
def test_package(usage: str, free: str, expected_packages: int, expected_amount: str) -> None:
    charge = C("package", free_units=D(free), package_size=D(100), package_price=D(5))
    result = price_charge(charge, D(usage))
    assert result.amount == D(expected_amount)
    packages = [s.packages for s in result.steps if isinstance(s, PackageStep)]
    assert sum(packages) == expected_packages


def test_package_fractional_size_and_explain() -> None:
    result = price_charge(C("package", package_size=D("0.5"), package_price=D("1.25")), D("1.2"))
    assert result.steps == (PackageStep(D("1.2"), D("0.5"), 3, D("1.25"), D("3.75")),)
    assert result.explain("USD") == ["1.2 in packages of 0.5 → 3 × $1.25 = $3.75"]


# --- percentage -------------------------------------------------------------------------------


def test_percentage_rate_and_event_fee() -> None:
    charge = C("percentage", rate=D("2.5"), fixed_fee=D("0.10"))
    result = price_charge(charge, D(1000), event_count=40)
    assert result.amount == D("29.000")
    assert result.steps == (
        PercentageStep(D(1000), D("2.5"), D("25.000")),
        EventFeeStep(40, D("0.10"), D("4.00")),
    )
    assert result.explain("USD") == [
        "2.5% of $1,000.00 = $25.00",
        "40 events × $0.10 = $4.00",
        "total $29.00",
    ]


def test_percentage_edges() -> None:
    # the per-event fee applies even when every unit is free
    charge = C("percentage", rate=D(3), fixed_fee=D("0.25"), free_units=D(100))
    assert price_charge(charge, D(80), event_count=4).amount == D(1)
    assert price_charge(charge, D(150), event_count=0).amount == D("1.5")
    # no fixed fee given: 0
    assert price_charge(C("percentage", rate=D("1.5")), D("33.33"), event_count=10).amount == D("0.49995")
    assert price_charge(C("percentage", rate=D(0)), D(100)).amount == 0


# --- properties -------------------------------------------------------------------------------

units = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def tier_lists(draw: Any, *, flat: bool = True) -> list[T]:
    bounds = sorted(draw(st.sets(st.decimals(min_value="0.001", max_value=10**5, places=3), min_size=0, max_size=5)))
    uppers: list[Decimal | None] = [*bounds, None]
    fee = prices if flat else st.just(D(0))
    return [T(u, draw(prices), draw(fee)) for u in uppers]


@settings(max_examples=300)
@given(tiers=tier_lists(), a=units, b=units)
def test_graduated_is_non_decreasing_and_sums_its_steps(tiers: list[T], a: Decimal, b: Decimal) -> None:
    lo, hi = min(a, b), max(a, b)
    amount_lo, steps_lo = graduated(lo, tiers)
    amount_hi, steps_hi = graduated(hi, tiers)
    assert amount_lo <= amount_hi
    for amount, steps, billable in ((amount_lo, steps_lo, lo), (amount_hi, steps_hi, hi)):
        assert amount == sum((s.amount for s in steps), D(0))
        assert sum((s.units for s in steps), D(0)) == billable
        for s in steps:
            assert isinstance(s, TierStep)
            assert s.amount == s.units * s.unit_price + s.flat_fee


@settings(max_examples=300)
@given(tiers=tier_lists(), data=st.data())
def test_volume_equals_graduated_inside_first_tier(tiers: list[T], data: Any) -> None:
    """For 0 ≤ billable ≤ up_to of the first tier (any billable when it is open), graduated and
    volume agree exactly, flat fees included: graduated enters only tier 1, and volume picks
    tier 1, so both are billable × unit_price_1 + flat_fee_1 (and 0 for 0 units)."""
    first = tiers[0].up_to
    billable = data.draw(units if first is None else st.decimals(min_value=0, max_value=first, places=3))
    assert graduated(billable, tiers)[0] == volume(billable, tiers)[0]


@settings(max_examples=200)
@given(price=prices, data=st.data())
def test_volume_equals_graduated_with_one_price_and_no_flat_fees(price: Decimal, data: Any) -> None:
    """Past the first tier they differ in general, but agree everywhere when every tier has the
    same unit price and no flat fee."""
    tiers = [T(t.up_to, price, D(0)) for t in data.draw(tier_lists(flat=False))]
    billable = data.draw(units)
    assert graduated(billable, tiers)[0] == volume(billable, tiers)[0] == billable * price


@given(
    billable=units,
    size=st.decimals(min_value="0.001", max_value=10**4, places=3),
    price=prices,
)
def test_package_matches_independent_ceil(billable: Decimal, size: Decimal, price: Decimal) -> None:
    expected_packages = math.ceil(Fraction(billable) / Fraction(size))
    amount, steps = package(billable, size, price)
    assert amount == expected_packages * price
    if billable > 0:
        assert steps[0].packages == expected_packages  # type: ignore[union-attr]
        # the packages cover the usage, one fewer would not
        assert expected_packages * size >= billable > (expected_packages - 1) * size


@given(usage=st.decimals(min_value=-10**6, max_value=10**6, places=3), free=units, price=prices)
def test_standard_matches_formula(usage: Decimal, free: Decimal, price: Decimal) -> None:
    result = price_charge(C("standard", free_units=free, unit_price=price), usage)
    assert result.billable == max(usage - free, D(0))
    assert result.amount == max(usage - free, D(0)) * price
    assert result.amount == sum((s.amount for s in result.steps), D(0))


# --- the price in one line (plan list, customer invoice) ---------------------------------------


def test_describe_price_of_every_model() -> None:
    from metering.plans import Charge
    from metering.pricing import describe_price

    def line(**charge: object) -> str:
        return describe_price(Charge.model_validate({"metric": "m", **charge}), "USD", "tokens")

    assert line(model="standard", unit_price="0.0125", free_units="1000") == "$0.0125 each (first 1,000 free)"
    assert line(model="graduated", tiers=[{"up_to": "10000", "unit_price": "0.008"}, {"up_to": None, "unit_price": "0.004",
                                                                                    "flat_fee": "5"}]) == (
        "graduated: $0.008 each up to 10,000 · $0.004 each above 10,000 + $5.00 flat")
    assert line(model="volume", tiers=[{"up_to": None, "unit_price": "1"}]) == "volume: $1.00 each above 0"
    assert line(model="package", package_size="100000", package_price="4") == "$4.00 per 100,000 tokens"
    assert line(model="percentage", rate="2.9", fixed_fee="0.30") == "2.9% + $0.30 per event"
    assert line(model="percentage", rate="1") == "1%"
