"""What one incoming event means for a limit metric, and the §3 rule that admits it.

Incoming events are read here one by one (an API request holds at most 1,000 of them, and
only those feeding a quota are read), with the engine's own value rules: the property path
rule of `values.lookup`, the text form of `engine.batch.exact_text_form` (numbers keep their
literal), numbers as `engine.columns.numbers` reads them (a JSON number or a numeric string
within the kept range; booleans are not numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

import msgspec

from metering import ingest
from metering.engine.batch import exact_text_form
from metering.models import MetricBase
from metering.quotas.config import aggregation
from metering.values import EXACT, in_range, lookup, parse_decimal

ONE = Decimal(1)


_DECODER = msgspec.json.Decoder(float_hook=str)  # as the engine reads properties (engine.batch)


class Props:
    """An event's properties, read the way the engine's `derive_text` reads them: msgspec with
    non-integers as their literal text; objects and arrays (rare) from an exact re-read."""

    __slots__ = ("_exact", "_fast", "_text")

    def __init__(self, text: str) -> None:
        self._text = text or "{}"
        self._exact: Any = None
        try:
            fast = _DECODER.decode(self._text)
        except (msgspec.DecodeError, RecursionError, ValueError):
            fast = None
        self._fast = fast if type(fast) is dict else None

    def _exact_obj(self) -> dict[str, Any]:
        if self._exact is None:
            try:
                obj = ingest.loads_exact(self._text)
            except (ValueError, RecursionError):
                obj = {}
            self._exact = obj if isinstance(obj, dict) else {}
        return self._exact

    def text_at(self, path: str) -> str | None:
        if self._fast is not None:
            value = lookup(self._fast, path)
            if value is None:
                return None
            kind = type(value)
            if kind is str:
                return value  # a string, or a non-integer's literal: the same text form
            if kind is bool:
                return "true" if value else "false"
            if kind is int:
                return str(value)
        return exact_text_form(lookup(self._exact_obj(), path))


def properties_of(text: str) -> Props:
    return Props(text)


def text_at(properties: Props, path: str) -> str | None:
    return properties.text_at(path)


def number_at(properties: Props, path: str) -> Decimal | None:
    fast = properties._fast
    if fast is not None:
        value = lookup(fast, path)
        if type(value) is int:  # the usual case: no text to read
            number = Decimal(value)
            return number if in_range(number) else None
    text = properties.text_at(path)
    if text is None:
        return None
    value = parse_decimal(text)
    if value is None or not in_range(value):
        return None
    return value


def matches(metric: MetricBase, event_name: str, properties: Props) -> bool:
    """The event feeds the metric: its event name, and every filter (text form in the list)."""
    if event_name != metric.event_name:
        return False
    for path, allowed in (metric.filters or {}).items():
        text = text_at(properties, path)
        if text is None or text not in {str(v) for v in allowed}:
            return False
    return True


@dataclass(frozen=True)
class Reading:
    """What an event adds: `amount` (count: 1; sum/max/latest: its number) or `text`
    (unique_count: its distinct value); both None when its value is skipped."""

    amount: Decimal | None
    text: str | None = None

    @property
    def skipped(self) -> bool:
        return self.amount is None and self.text is None


def read(metric: MetricBase, properties: Props) -> Reading:
    agg = aggregation(metric)
    if agg == "count":
        return Reading(ONE)
    if agg == "unique_count":
        return Reading(None, text_at(properties, metric.distinct_by or ""))
    return Reading(number_at(properties, metric.value_property or ""))


def admits(agg: str, limit: Decimal, used: Decimal, known: set[str] | None, reading: Reading) -> bool:
    """Contract §3's hard-limit rule for one more event (skipped values always pass)."""
    if reading.skipped:
        return True
    with localcontext(EXACT):
        if agg == "count":
            return used + 1 <= limit
        if agg == "sum":
            assert reading.amount is not None
            return reading.amount < 0 or used + reading.amount <= limit
        if agg == "unique_count":
            assert known is not None
            return reading.text in known or len(known) + 1 <= limit
        assert reading.amount is not None  # max, latest
        return reading.amount <= limit


def fits(agg: str, limit: Decimal, used: Decimal, quantity: Decimal) -> bool:
    """Whether `quantity` more units would be accepted now: count and sum add them to usage,
    unique_count reads them as that many new values, max and latest as one value of that size."""
    with localcontext(EXACT):
        if agg in ("count", "sum", "unique_count"):
            return used + quantity <= limit
        return quantity <= limit
