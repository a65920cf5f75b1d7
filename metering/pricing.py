"""Charge models (contract §4) as pure functions on exact Decimals, with their arithmetic shown.

`price_charge` takes any charge-shaped object (a `metering.plans.Charge`, or anything with the
same attribute names) and a period's usage, and returns a `ChargeResult`: the exact, unrounded
amount plus the steps that produced it, so an app can print "1,000 free; 1,500 × $0.02 =
$30.00". Rounding to the currency happens per invoice line, elsewhere (`metering.money`).

Rules beyond the contract's formulas:
- Negative usage bills 0 (billable is clamped to 0); negative free units count as 0.
- `percentage`'s per-event `fixed_fee` is charged on every matching event even when billable is
  0 (the contract's formula has no condition), and an absent `fixed_fee` is 0.
- `graduated` and `volume` charge nothing for 0 billable units: no tier is entered, so no tier's
  flat fee applies.
- The amount is always the exact sum of the steps' amounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from typing import Any, Protocol, Union

from babel.numbers import format_decimal

from metering.money import format_money, to_decimal

# Enough digits that every product/sum of realistic figures is exact: units carry ≤ 18 places
# and ≤ 40 integer digits in the store, prices a handful; 120 digits cannot be exhausted.
_EXACT = Context(prec=120, traps=[InvalidOperation, DivisionByZero, Overflow])
ZERO = Decimal(0)

MODELS = ("standard", "graduated", "volume", "package", "percentage")


class ChargeLike(Protocol):
    """What `price_charge` reads; the model's own fields (unit_price, tiers, package_size,
    package_price, rate, fixed_fee) are read with getattr, and tiers may be objects or dicts."""

    model: str
    free_units: Decimal


# --- explanation steps --------------------------------------------------------------------


@dataclass(frozen=True)
class UnitStep:
    """standard: units × unit_price."""

    units: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class TierStep:
    """One tier's share: graduated bills each tier entered, volume the single matching tier.

    ``index`` is the 0-based position in the charge's ``tiers`` list (the form's
    ``tiers.<index>``); ``lower`` is exclusive and ``upper`` (None = open) inclusive.
    """

    index: int
    lower: Decimal
    upper: Decimal | None
    units: Decimal
    unit_price: Decimal
    flat_fee: Decimal
    amount: Decimal


@dataclass(frozen=True)
class PackageStep:
    """package: ceil(units / package_size) packages × package_price."""

    units: Decimal
    package_size: Decimal
    packages: int
    package_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class PercentageStep:
    """percentage: units × rate / 100."""

    units: Decimal
    rate: Decimal
    amount: Decimal


@dataclass(frozen=True)
class EventFeeStep:
    """percentage: matching events × fixed_fee."""

    event_count: int
    fixed_fee: Decimal
    amount: Decimal


Step = Union[UnitStep, TierStep, PackageStep, PercentageStep, EventFeeStep]


@dataclass(frozen=True)
class ChargeResult:
    """A priced charge: ``amount`` is exact (unrounded) and equals the sum of ``steps``."""

    model: str
    units: Decimal  # usage as given (may be negative)
    free_units: Decimal
    billable: Decimal  # max(units - free_units, 0)
    amount: Decimal
    steps: tuple[Step, ...] = field(default_factory=tuple)
    event_count: int = 0

    def explain(self, currency: str | None = None, *, locale: str = "en_US") -> list[str]:
        """Human-readable lines of the arithmetic; money shown with every digit (unrounded)."""
        num = lambda v: _num(v, locale)  # noqa: E731
        cash = lambda v: _cash(v, currency, locale)  # noqa: E731
        lines: list[str] = []
        if self.units < 0:
            lines.append(f"usage {num(self.units)} is negative: bills as 0")
        elif self.free_units > 0:
            lines.append(
                f"{num(self.units)} units; first {num(self.free_units)} free → "
                f"{num(self.billable)} billable"
            )
        for step in self.steps:
            lines.append(_explain_step(step, num, cash))
        if not self.steps:
            lines.append(f"nothing to bill: {cash(ZERO)}")
        elif len(self.steps) > 1:
            lines.append(f"total {cash(self.amount)}")
        return lines


def _num(value: Decimal, locale: str) -> str:
    return format_decimal(value, locale=locale, decimal_quantization=False)


def _cash(value: Decimal, currency: str | None, locale: str) -> str:
    if currency is None:
        return _num(value, locale)
    return format_money(value, currency, locale, exact=True)


def _explain_step(step: Step, num: Any, cash: Any) -> str:
    if isinstance(step, UnitStep):
        return f"{num(step.units)} × {cash(step.unit_price)} = {cash(step.amount)}"
    if isinstance(step, TierStep):
        span = (
            f"above {num(step.lower)}" if step.upper is None
            else f"{num(step.lower)}–{num(step.upper)}"
        )
        text = f"tier {step.index + 1} ({span}): {num(step.units)} × {cash(step.unit_price)}"
        if step.flat_fee:
            text += f" + {cash(step.flat_fee)} flat"
        return f"{text} = {cash(step.amount)}"
    if isinstance(step, PackageStep):
        return (
            f"{num(step.units)} in packages of {num(step.package_size)} → {step.packages} "
            f"× {cash(step.package_price)} = {cash(step.amount)}"
        )
    if isinstance(step, PercentageStep):
        return f"{num(step.rate)}% of {cash(step.units)} = {cash(step.amount)}"
    return f"{step.event_count} events × {cash(step.fixed_fee)} = {cash(step.amount)}"


# --- the models -----------------------------------------------------------------------------


def _dec(value: Any, name: str) -> Decimal:
    # Money and units are never binary floats here: a float is a bug upstream.
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal, int or numeric text, not {type(value).__name__}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (int, str)):
        return to_decimal(value)  # ValueError with a readable message for bad text
    raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")


def _need(value: Any, name: str, model: str) -> Decimal:
    if value is None:
        raise ValueError(f"the {model} model needs {name}")
    return _dec(value, name)


def billable_units(usage: Decimal, free_units: Decimal = ZERO) -> Decimal:
    """max(usage − free_units, 0); negative usage and negative free units count as 0."""
    with localcontext(_EXACT):
        return max(usage - max(free_units, ZERO), ZERO)


def standard(billable: Decimal, unit_price: Decimal) -> tuple[Decimal, tuple[Step, ...]]:
    """billable × unit_price."""
    if billable <= 0:
        return ZERO, ()
    with localcontext(_EXACT):
        amount = billable * unit_price
    return amount, (UnitStep(billable, unit_price, amount),)


def _tier_fields(tiers: Sequence[Any]) -> list[tuple[Decimal | None, Decimal, Decimal]]:
    if not tiers:
        raise ValueError("tiered models need at least one tier")
    out = []
    for tier in tiers:
        up_to = getattr(tier, "up_to", None) if not isinstance(tier, dict) else tier.get("up_to")
        price = getattr(tier, "unit_price", None) if not isinstance(tier, dict) else tier.get("unit_price")
        fee = getattr(tier, "flat_fee", None) if not isinstance(tier, dict) else tier.get("flat_fee")
        out.append(
            (
                None if up_to is None else _dec(up_to, "up_to"),
                ZERO if price is None else _dec(price, "unit_price"),
                ZERO if fee is None else _dec(fee, "flat_fee"),
            )
        )
    return out


def graduated(billable: Decimal, tiers: Sequence[Any]) -> tuple[Decimal, tuple[Step, ...]]:
    """Each tier i with billable > lower_i bills (min(billable, up_to_i) − lower_i) × price_i
    + flat_fee_i; lower_1 = 0, lower_i = up_to_(i−1)."""
    steps: list[Step] = []
    lower = ZERO
    with localcontext(_EXACT):
        for i, (up_to, price, fee) in enumerate(_tier_fields(tiers)):
            if billable <= lower:
                break
            top = billable if up_to is None else min(billable, up_to)
            units = top - lower
            steps.append(TierStep(i, lower, up_to, units, price, fee, units * price + fee))
            if up_to is None:
                break
            lower = up_to
        else:
            if billable > lower:
                raise ValueError(f"no tier prices units above {lower}: the last tier needs up_to null")
        amount = sum((s.amount for s in steps), ZERO)
    return amount, tuple(steps)


def volume(billable: Decimal, tiers: Sequence[Any]) -> tuple[Decimal, tuple[Step, ...]]:
    """The one tier with lower_i < billable ≤ up_to_i prices every unit: billable × price_i
    + flat_fee_i; 0 units bill 0."""
    if billable <= 0:
        _tier_fields(tiers)  # still reject a malformed tier list
        return ZERO, ()
    lower = ZERO
    with localcontext(_EXACT):
        for i, (up_to, price, fee) in enumerate(_tier_fields(tiers)):
            if up_to is None or billable <= up_to:
                amount = billable * price + fee
                return amount, (TierStep(i, lower, up_to, billable, price, fee, amount),)
            lower = up_to
    raise ValueError(f"no tier prices {billable} units: the last tier needs up_to null")


def package(
    billable: Decimal, package_size: Decimal, package_price: Decimal
) -> tuple[Decimal, tuple[Step, ...]]:
    """ceil(billable / package_size) × package_price (a started package is a whole package)."""
    if package_size <= 0:
        raise ValueError("package_size must be greater than 0")
    if billable <= 0:
        return ZERO, ()
    with localcontext(_EXACT):
        whole, rest = divmod(billable, package_size)  # exact, unlike a rounded division
        packages = int(whole) + (1 if rest else 0)
        amount = packages * package_price
    return amount, (PackageStep(billable, package_size, packages, package_price, amount),)


def percentage(
    billable: Decimal, rate: Decimal, event_count: int = 0, fixed_fee: Decimal = ZERO
) -> tuple[Decimal, tuple[Step, ...]]:
    """billable × rate / 100 + event_count × fixed_fee."""
    steps: list[Step] = []
    with localcontext(_EXACT):
        if billable > 0:
            steps.append(PercentageStep(billable, rate, billable * rate.scaleb(-2)))
        if event_count > 0 and fixed_fee:
            steps.append(EventFeeStep(event_count, fixed_fee, event_count * fixed_fee))
        amount = sum((s.amount for s in steps), ZERO)
    return amount, tuple(steps)


def price_charge(charge: ChargeLike, usage: Decimal | int | str, *, event_count: int = 0) -> ChargeResult:
    """Price one charge on one period's usage (and, for percentage, its matching event count).

    Raises ValueError for a charge missing its model's fields, TypeError for float inputs.
    """
    usage_d = _dec(usage, "usage")
    model = str(getattr(charge.model, "value", charge.model))  # a str Enum reads as its value
    free = getattr(charge, "free_units", None)
    free_d = ZERO if free is None else _dec(free, "free_units")
    billable = billable_units(usage_d, free_d)
    if model == "standard":
        amount, steps = standard(billable, _need(getattr(charge, "unit_price", None), "unit_price", model))
    elif model == "graduated":
        amount, steps = graduated(billable, getattr(charge, "tiers", None) or ())
    elif model == "volume":
        amount, steps = volume(billable, getattr(charge, "tiers", None) or ())
    elif model == "package":
        amount, steps = package(
            billable,
            _need(getattr(charge, "package_size", None), "package_size", model),
            _need(getattr(charge, "package_price", None), "package_price", model),
        )
    elif model == "percentage":
        fee = getattr(charge, "fixed_fee", None)
        amount, steps = percentage(
            billable,
            _need(getattr(charge, "rate", None), "rate", model),
            int(event_count),
            ZERO if fee is None else _dec(fee, "fixed_fee"),
        )
    else:
        raise ValueError(f"unknown charge model {model!r}: use one of {', '.join(MODELS)}")
    return ChargeResult(
        model=model,
        units=usage_d,
        free_units=free_d,
        billable=billable,
        amount=amount,
        steps=steps,
        event_count=int(event_count),
    )


# --- the price in words ---------------------------------------------------------------------


def describe_price(charge: ChargeLike, currency: str, unit: str = "unit", *, locale: str = "en_US") -> str:
    """A charge's price in one line, for plan lists and invoices: `$0.01 each (first 1,000
    free)`, `graduated: $0.008 each up to 10,000 · $0.006 each up to 100,000 · $0.004 each
    above 100,000`, `$4.00 per 100,000 tokens`, `2.9% + $0.30 per event`. Prices with every digit."""
    num = lambda v: _num(v, locale)  # noqa: E731
    cash = lambda v: format_money(v, currency, locale, exact=True)  # noqa: E731
    model = charge.model
    if model == "standard":
        text = f"{cash(_dec(getattr(charge, 'unit_price'), 'unit_price'))} each"
    elif model in ("graduated", "volume"):
        parts = []
        lower = ZERO
        for upper, price, flat in _tier_fields(getattr(charge, "tiers") or []):
            part = f"{cash(price)} each " + (f"up to {num(upper)}" if upper is not None else f"above {num(lower)}")
            if flat:
                part += f" + {cash(flat)} flat"
            parts.append(part)
            lower = upper if upper is not None else lower
        text = f"{model}: " + " · ".join(parts)
    elif model == "package":
        text = f"{cash(_dec(getattr(charge, 'package_price'), 'package_price'))} per " \
               f"{num(_dec(getattr(charge, 'package_size'), 'package_size'))} {unit}"
    else:
        text = f"{num(_dec(getattr(charge, 'rate'), 'rate'))}%"
        fee = getattr(charge, "fixed_fee", None)
        if fee is not None and _dec(fee, "fixed_fee"):
            text += f" + {cash(_dec(fee, 'fixed_fee'))} per event"
    free = _dec(getattr(charge, "free_units", ZERO) or ZERO, "free_units")
    if free > 0:
        text += f" (first {num(free)} free)"
    return text
