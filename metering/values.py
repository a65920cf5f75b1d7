"""The value rules every part of the engine shares: what counts as a number, text forms, paths.

One place for them, so ingest, aggregation and the tests' reference implementation agree.
"""

from __future__ import annotations

import json
import re
from decimal import Context, Decimal, InvalidOperation
from typing import Any

# A JSON number, exactly as RFC 8259 writes it. CSV cells matching this become JSON numbers
# verbatim (so "02134" stays a string: leading zeros usually mean an identifier).
JSON_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
JSON_NUMBER_RE = re.compile(rf"^{JSON_NUMBER}$")

# A string "reads as a decimal number" when it matches this after trimming white space, the
# way PostgreSQL's numeric cast reads it (Lago sums with that cast): sign, digits, point,
# exponent. No NaN, no Infinity, no thousands separators.
NUMERIC_TEXT = r"^\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*$"
NUMERIC_TEXT_RE = re.compile(NUMERIC_TEXT)

# Exact range the columnar engine keeps: decimal256 with 18 places leaves 58 integer digits.
# Values with more than 18 decimal places or 40 integer digits are skipped as out of range,
# never rounded.
SCALE = 18
MAX_INT_DIGITS = 40

_MISSING = object()
# Enough digits for every value the engine keeps (40 integer + 18 decimal places) and for their
# sums: the default context (28 digits) would round them.
EXACT = Context(prec=120)


def parse_decimal(text: str) -> Decimal | None:
    """The exact value of a numeric text, or None when it does not read as a number."""
    if not NUMERIC_TEXT_RE.match(text):
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:  # pragma: no cover - the pattern already excludes these
        return None


def in_range(value: Decimal) -> bool:
    """True when the engine keeps `value` exactly (≤ 18 decimal places, ≤ 40 integer digits)."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent < -SCALE:
        # trailing zeros beyond 18 places are harmless: 1.5000000000000000000000
        stripped = value.normalize(context=EXACT)
        if stripped.as_tuple().exponent < -SCALE:  # type: ignore[operator]
            return False
    return value.adjusted() < MAX_INT_DIGITS


def text_form(value: Any) -> str | None:
    """The text form of a JSON value, used by filters, unique_count and group_by.

    Numbers read with their literal text (`3` → "3"), booleans as `true`/`false`, objects and
    arrays as canonical JSON, JSON null and missing values as None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def lookup(properties: dict[str, Any], path: str) -> Any:
    """The value at a dot path: a literal key equal to the whole path wins, else nested keys.

    Returns None for missing values (JSON null counts as missing).
    """
    if path in properties:
        return properties[path]
    current: Any = properties
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def normalized(value: Decimal) -> Decimal:
    """The same number without trailing zeros or an exponent: 12.500 → 12.5, 1E+3 → 1000."""
    if value == value.to_integral_value(context=EXACT):
        return value.quantize(Decimal(1), context=EXACT)
    return value.normalize(context=EXACT)


def decimal_str(value: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros: 1000, 0.3, -2.5."""
    if value == 0:
        return "0"
    return format(value.normalize(context=EXACT), "f")


def to_decimal(value: Any) -> Decimal | None:
    """The exact numeric value of a JSON value, or None (booleans are not numbers)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        return parse_decimal(value)
    return None
