"""Currencies, minor units and half-up rounding (contract §4)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metering.money import (
    currencies,
    format_money,
    minor_units,
    normalize_currency,
    round_money,
    to_decimal,
)

D = Decimal


@pytest.mark.parametrize(
    "code, places",
    [("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3), ("CLF", 4)],
)
def test_minor_units(code: str, places: int) -> None:
    assert minor_units(code) == places


def test_currency_code_is_normalised() -> None:
    assert normalize_currency(" usd ") == "USD"
    assert minor_units("jpy") == 0


@pytest.mark.parametrize("code", ["XYZ", "DEM", "XXX", "XTS", "US", "DOLLAR", "", "   "])
def test_unknown_currency_is_refused(code: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        minor_units(code)


@pytest.mark.parametrize("code", [None, 840, ["USD"]])
def test_non_text_currency_is_refused(code: object) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        normalize_currency(code)


def test_currency_list_comes_from_cldr() -> None:
    codes = currencies()
    assert {"USD", "EUR", "JPY", "KWD", "CHF", "INR"} <= codes
    assert "DEM" not in codes and "XXX" not in codes
    assert len(codes) > 150


@pytest.mark.parametrize(
    "amount, currency, expected",
    [
        ("30", "USD", "30.00"),
        ("2.345", "USD", "2.35"),
        ("2.344999", "USD", "2.34"),
        ("2.355", "USD", "2.36"),
        ("-2.345", "USD", "-2.35"),
        ("0.005", "USD", "0.01"),
        ("0.5", "JPY", "1"),
        ("1.5", "JPY", "2"),
        ("2.5", "JPY", "3"),  # half-up, not banker's rounding
        ("1234.4999", "JPY", "1234"),
        ("1.0005", "KWD", "1.001"),
        ("1.0004", "KWD", "1.000"),
        ("-0.001", "USD", "0.00"),  # no negative zero
        ("123456789012345678901234567890.125", "USD", "123456789012345678901234567890.13"),
    ],
)
def test_round_money(amount: str, currency: str, expected: str) -> None:
    got = round_money(D(amount), currency)
    assert str(got) == expected


def test_round_money_accepts_int_and_text() -> None:
    assert str(round_money(50, "USD")) == "50.00"
    assert str(round_money("0.125", "USD")) == "0.13"


def test_contract_examples_round_to_cents() -> None:
    assert str(round_money(D(1500) * D("0.02"), "USD")) == "30.00"
    assert str(round_money(D(500) * D("0.10"), "USD")) == "50.00"


def test_format_money() -> None:
    assert format_money(D("1234.5"), "USD") == "$1,234.50"
    assert format_money(D("1234.5"), "JPY") == "¥1,235"  # half-up first, then formatted
    assert format_money(D("0.125"), "USD") == "$0.13"  # Babel alone would give $0.12
    assert format_money(D("1234.5"), "EUR", "de_DE") == "1.234,50\xa0€"
    assert format_money(D("1.2345"), "KWD", "en_US") == "KWD1.235"  # CLDR en_US pattern


def test_format_money_exact_keeps_digits() -> None:
    assert format_money(D("0.0002"), "USD", exact=True) == "$0.0002"
    assert format_money(D("30"), "USD", exact=True) == "$30.00"
    assert format_money(D("30.000"), "USD", exact=True) == "$30.00"


def test_to_decimal() -> None:
    assert to_decimal(0.1) == D("0.1")
    assert str(to_decimal(0.1)) == "0.1"  # not 0.1000000000000000055511151231257827
    assert to_decimal(" 2.50 ") == D("2.50")
    assert to_decimal(3) == D(3)
    assert to_decimal("1e3") == D(1000)
    for bad in (True, "abc", "NaN", "Infinity", "1_000", None, [1], float("inf")):
        with pytest.raises(ValueError):
            to_decimal(bad)


@given(st.decimals(min_value=-10**9, max_value=10**9, places=6, allow_nan=False, allow_infinity=False))
def test_round_money_is_half_up_to_cents(value: Decimal) -> None:
    # Independent integer arithmetic: micro-units → cents, ties away from zero.
    micros = int(value.scaleb(6))
    sign = -1 if micros < 0 else 1
    cents, rest = divmod(abs(micros), 10_000)
    if rest * 2 >= 10_000:
        cents += 1
    expected = D(sign * cents).scaleb(-2) if cents else D("0.00")
    got = round_money(value, "USD")
    assert got == expected
    assert got.as_tuple().exponent == -2
    assert abs(got - value) <= D("0.005")


@given(st.decimals(min_value=-10**6, max_value=10**6, places=3, allow_nan=False, allow_infinity=False))
def test_round_money_is_idempotent(value: Decimal) -> None:
    for code in ("USD", "JPY", "KWD"):
        once = round_money(value, code)
        assert round_money(once, code) == once
