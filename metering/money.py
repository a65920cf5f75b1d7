"""Currencies and money rounding, from Babel's copy of the Unicode CLDR data (no hand tables).

- A currency is valid when CLDR lists it as in current use in some territory (so USD, EUR, JPY,
  KWD…; withdrawn codes such as DEM and the ISO test/no-currency codes XTS/XXX are refused).
- Minor units are CLDR's accounting digits (`babel.numbers.get_currency_precision`): USD 2,
  JPY 0, KWD 3. CLDR and ISO 4217 differ for a few currencies (IQD, LBP, IRR… have 0 digits in
  CLDR); CLDR is what invoices and Babel's formatting agree on, so it wins here.
- Rounding is half-up in the commercial sense: a tie moves away from zero (2.345 → 2.35,
  −2.345 → −2.35), and a result of −0 is written as 0.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from functools import lru_cache
from typing import Any

from babel.core import get_global
from babel.numbers import format_currency, get_currency_precision

# ISO 4217 codes for "testing" and "no currency": real codes, but never a price list's currency.
_NOT_FOR_PRICES = frozenset({"XTS", "XXX"})


@lru_cache(maxsize=1)
def currencies() -> frozenset[str]:
    """Every currency code accepted for a plan: in current use somewhere according to CLDR."""
    in_use: set[str] = set()
    for entries in get_global("territory_currencies").values():
        for code, _start, end, *_ in entries:
            if end is None:
                in_use.add(code)
    return frozenset(in_use - _NOT_FOR_PRICES)


def normalize_currency(currency: Any) -> str:
    """The upper-case code of a valid currency (surrounding space and case are forgiven)."""
    if not isinstance(currency, str) or not currency.strip():
        raise ValueError("currency must be an ISO 4217 code such as USD, EUR or JPY")
    code = currency.strip().upper()
    if code not in currencies():
        raise ValueError(
            f"{currency.strip()!r} is not an ISO 4217 currency in use; "
            "use a code such as USD, EUR or JPY"
        )
    return code


@lru_cache(maxsize=512)
def minor_units(currency: str) -> int:
    """Decimal places of the currency's minor unit: USD 2, JPY 0, KWD 3 (cached: every
    invoice line asks, and Babel's lookup costs more than the rounding)."""
    return int(get_currency_precision(normalize_currency(currency)))


def to_decimal(value: Any) -> Decimal:
    """An exact Decimal from an int, Decimal, numeric text, or float (read via its shortest
    text, so 0.1 is 0.1, not 0.1000000000000000055…). Booleans, NaN and infinities are refused."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        try:
            if "_" in text:  # Decimal() would read 1_000; a person typing it meant something else
                raise InvalidOperation
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number (write e.g. 0.02)") from None
    else:
        raise ValueError(f"must be a number, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("must be a finite number")
    return result


def round_money(amount: Decimal | int | str, currency: str) -> Decimal:
    """``amount`` rounded half-up (ties away from zero) to the currency's minor unit."""
    value = to_decimal(amount)
    quantum = Decimal(1).scaleb(-minor_units(currency))
    with localcontext() as ctx:
        ctx.prec = max(ctx.prec, value.adjusted() + 10)  # quantize never runs out of digits
        rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    return rounded.copy_abs() if rounded.is_zero() else rounded


def format_money(
    amount: Decimal | int | str,
    currency: str,
    locale: str = "en_US",
    *,
    exact: bool = False,
) -> str:
    """Display text for an amount: ``$1,234.50``, ``¥1,235``, ``1.234,50 €`` (de_DE).

    By default the amount is first rounded with :func:`round_money`; ``exact=True`` keeps every
    digit beyond the minor unit (for unit prices such as ``$0.0002``).
    """
    code = normalize_currency(currency)
    value = to_decimal(amount)
    if exact:
        return format_currency(value, code, locale=locale, decimal_quantization=False)
    return format_currency(round_money(value, code), code, locale=locale)


def format_signed_money(amount: Decimal, currency: str) -> str:
    """+$12.00 / −$3.50 / $0.00: a difference against a baseline."""
    if amount > 0:
        return "+" + format_money(amount, currency)
    if amount < 0:
        return "−" + format_money(-amount, currency)
    return format_money(amount, currency)
