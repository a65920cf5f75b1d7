"""Property tests: the engine (ingest → EventFrame → aggregate / aggregate_by_customer) against a
small reference written here in plain Python over Decimal.

The reference follows the rules word for word (contract §1–2 plus the engine rules where the
contract is silent):
* a property path: a literal key equal to the whole path wins, else nested keys; JSON null = missing;
* text form: strings as they are, numbers by their literal text, true/false, objects and arrays as
  canonical JSON (sorted keys, no spaces);
* a number: a JSON number, or a string that reads as a decimal number (sign, digits, point,
  exponent, white space around); booleans, objects, arrays are not numbers; a number with more than
  18 decimal places (after dropping trailing zeros) or more than 40 integer digits is out of range;
* idempotency: an explicit key, else the content (name, customer, UTC µs, canonical properties);
  a repeated key is dropped, the first one wins;
* window [start, end); filters: every key's text form is one of the values; groups by text forms
  (None for missing); latest: greatest timestamp, ties → stored last; empty → 0.

One thing is kept out of the generated domain: the integer literal -0. Its text form is "0"
(integers are read by value, test_aggregation.py TestTextForms::test_integer_negative_zero_reads_as_zero)
while inside an object's canonical JSON it stays -0; the reference keeps every literal as written.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, Inexact, localcontext
from decimal import Decimal as D
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import numpy as np

from metering import ingest, store
from metering.engine.frame import FrameCache
from metering.engine.registry import store_for
from metering.aggregation import aggregate, aggregate_by_customer
from metering.frame import EventFrame
from metering.models import MetricCreate

MAX_INT_DIGITS = 40  # in-range numbers go up to 40 integer digits (sums then need 42: still exact)
# The whole file runs in well under a minute; raise max_examples locally for a deeper search
# (e.g. --hypothesis-profile or editing these numbers).
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=_HEALTH)
FOCUSED = settings(max_examples=60, deadline=None, suppress_health_check=_HEALTH)

UTC = timezone.utc
BASE = datetime(2026, 1, 1, tzinfo=UTC)
BASE_US = 1_767_225_600 * 1_000_000
EVENT_NAMES = ["api.request", "api.request", "api.request", "other"]
CUSTOMERS = ["c1", "c2", "c3"]
AGGREGATIONS = ["count", "sum", "max", "min", "unique_count", "latest"]


# =========================================================================== the reference


class Num:
    """A JSON number exactly as written in JSON text (JSON Lines test)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Num({self.text})"


def ref_literal(value: Any) -> str:
    """The canonical JSON text of a value: sorted keys, no spaces, numbers as written."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Num):
        return value.text
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(ref_literal(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + ref_literal(value[k]) for k in sorted(value)) + "}"


def ref_lookup(props: dict[str, Any], path: str) -> Any:
    if path in props:
        return props[path]
    value: Any = props
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def ref_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return ref_literal(value)


NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def ref_number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Num):
        return Decimal(value.text)
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        core = value.strip()
        return Decimal(core) if NUMBER_TEXT.fullmatch(core) else None
    return None  # objects and arrays


def ref_in_range(number: Decimal) -> bool:
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    digits = list(digits)
    if not any(digits):
        return True  # zero, however written
    while digits[-1] == 0:
        digits.pop()
        exponent += 1
    decimal_places = max(0, -exponent)
    integer_digits = max(0, len(digits) + exponent)
    return decimal_places <= 18 and integer_digits <= 40


@dataclass
class RefEvent:
    seq: int
    name: str
    customer: str
    ts_us: int
    props: dict[str, Any]


def ref_store(raw: list[tuple[str, str, int, str | None, dict[str, Any]]]) -> list[RefEvent]:
    """Drop repeated idempotency keys (first wins); keys default to the event's content."""
    seen: set[Any] = set()
    out: list[RefEvent] = []
    for name, customer, ts_us, key, props in raw:
        identity = ("key", key) if key else ("content", name, customer, ts_us, ref_literal(props))
        if identity in seen:
            continue
        seen.add(identity)
        out.append(RefEvent(len(out), name, customer, ts_us, props))
    return out


@dataclass
class RefResult:
    value: Decimal
    events: int
    skipped: int
    reasons: dict[str, int]
    groups: dict[tuple[str | None, ...], tuple[Decimal, int, int]] = field(default_factory=dict)


def ref_value(events: list[RefEvent], aggregation: str, path: str | None) -> tuple[Decimal, int, dict[str, int]]:
    """(value, skipped, skip reasons) of one set of matching events."""
    reasons: dict[str, int] = {}

    def skip(reason: str) -> None:
        reasons[reason] = reasons.get(reason, 0) + 1

    if aggregation == "count":
        return Decimal(len(events)), 0, {}
    assert path is not None
    if aggregation == "unique_count":
        texts = set()
        for e in events:
            text = ref_text(ref_lookup(e.props, path))
            if text is None:
                skip(f"{path} is missing")
            else:
                texts.add(text)
        return Decimal(len(texts)), sum(reasons.values()), reasons
    numbers: list[tuple[int, int, Decimal]] = []
    for e in events:
        raw = ref_lookup(e.props, path)
        number = None if raw is None else ref_number(raw)
        if raw is None:
            skip(f"{path} is missing")
        elif number is None:
            skip(f"{path} is not a number")
        elif not ref_in_range(number):
            skip(f"{path} has more than 18 decimal places or 40 integer digits")
        else:
            numbers.append((e.ts_us, e.seq, number))
    skipped = sum(reasons.values())
    if not numbers:
        return Decimal(0), skipped, reasons
    with localcontext() as ctx:
        ctx.prec = 400
        ctx.traps[Inexact] = True  # the reference never rounds
        values = [n for _, _, n in numbers]
        if aggregation == "sum":
            value = sum(values, Decimal(0))
        elif aggregation == "max":
            value = max(values)
        elif aggregation == "min":
            value = min(values)
        else:  # latest: greatest timestamp, ties → stored last
            value = max(numbers, key=lambda t: (t[0], t[1]))[2]
    return value, skipped, reasons


def ref_aggregate(
    events: list[RefEvent],
    metric: MetricCreate,
    start_us: int | None,
    end_us: int | None,
    customers: list[str] | None,
) -> RefResult:
    matching = [
        e
        for e in events
        if e.name == metric.event_name
        and (start_us is None or e.ts_us >= start_us)
        and (end_us is None or e.ts_us < end_us)
        and (customers is None or e.customer in customers)
        and all(ref_text(ref_lookup(e.props, key)) in allowed for key, allowed in metric.filters.items())
    ]
    aggregation = metric.aggregation.value
    path = {"count": None, "unique_count": metric.distinct_by}.get(aggregation, metric.value_property)
    if not matching:
        return RefResult(Decimal(0), 0, 0, {})
    value, skipped, reasons = ref_value(matching, aggregation, path)
    result = RefResult(value, len(matching), skipped, reasons)
    if metric.group_by:
        by_key: dict[tuple[str | None, ...], list[RefEvent]] = {}
        for e in matching:
            by_key.setdefault(tuple(ref_text(ref_lookup(e.props, p)) for p in metric.group_by), []).append(e)
        for key, members in by_key.items():
            g_value, g_skipped, _ = ref_value(members, aggregation, path)
            result.groups[key] = (g_value, len(members), g_skipped)
    return result


def plain(value: Decimal) -> str:
    """Decimal text without exponent or trailing zeros, computed without rounding."""
    with localcontext() as ctx:
        ctx.prec = 400
        if value == 0:
            return "0"
        return format(value.normalize(), "f")


# =========================================================================== comparing


def assert_same(got: Any, want: RefResult, metric: MetricCreate) -> None:
    assert got.value == want.value, (got.value, want.value)
    assert got.to_json()["value"] == plain(want.value)
    assert (got.events, got.skipped) == (want.events, want.skipped)
    assert got.skip_reasons == want.reasons
    got_groups = {tuple(g.group[p] for p in metric.group_by): (g.value, g.events, g.skipped) for g in got.groups}
    assert got_groups == want.groups
    assert all(list(g.group) == list(metric.group_by) for g in got.groups)


def compare(frame: EventFrame, events: list[RefEvent], metric: MetricCreate, window: dict[str, Any]) -> None:
    start_us, end_us = window["start_us"], window["end_us"]
    customers = window["customers"]
    kwargs = {"start": window["start"], "end": window["end"], "customer_ids": customers}
    want = ref_aggregate(events, metric, start_us, end_us, customers)
    event(
        f"{metric.aggregation.value}: {'no' if not want.events else 'some'} events"
        f"{', value ≠ 0' if want.value else ''}{', skips' if want.skipped else ''}"
        f"{', groups' if len(want.groups) > 1 else ''}"
    )
    assert_same(aggregate(frame, metric, **kwargs), want, metric)
    per = aggregate_by_customer(frame, metric, **kwargs)
    expected_customers = sorted(
        {c for c in CUSTOMERS if ref_aggregate(events, metric, start_us, end_us, [c]).events and (customers is None or c in customers)}
    )
    assert sorted(per) == expected_customers
    for customer, result in per.items():
        assert_same(result, ref_aggregate(events, metric, start_us, end_us, [customer]), metric)


# =========================================================================== strategies


@st.composite
def number_texts(draw: st.DrawFn) -> str:
    """JSON number literals: in range, and out of range (too many decimals, too many digits)."""
    kind = draw(st.sampled_from(["int", "int", "decimal", "decimal", "nine", "eighteen", "exponent", "too_precise", "too_big"]))
    sign = draw(st.sampled_from(["", "", "-"]))
    whole = draw(st.one_of(st.just("0"), st.integers(1, 999_999), st.integers(1, 10**MAX_INT_DIGITS - 1)).map(str))
    digits = st.text("0123456789", min_size=1, max_size=1)
    if kind == "int":
        text = whole
    elif kind == "decimal":  # often with trailing zeros: 1.50 keeps its literal text
        text = whole + "." + draw(st.text("0123456789", min_size=1, max_size=4)) + draw(st.sampled_from(["", "", "0", "00"]))
    elif kind == "nine":
        text = whole + "." + draw(st.text("0123456789", min_size=9, max_size=9))
    elif kind == "eighteen":
        text = draw(st.sampled_from(["0", "1", "12"])) + "." + draw(st.text("0123456789", min_size=17, max_size=17)) + draw(digits)
    elif kind == "exponent":
        mantissa = draw(st.sampled_from(["1", "2.5", "12", "999", "0.5", "7.25"]))
        text = mantissa + draw(st.sampled_from(["e", "E"])) + draw(st.sampled_from(["", "+", "-"])) + str(draw(st.integers(0, 2)))
    elif kind == "too_precise":  # 19 to 22 decimal places, last one non-zero: out of range
        text = draw(st.sampled_from(["0", "3"])) + "." + draw(st.text("0123456789", min_size=18, max_size=21)) + draw(st.sampled_from("123456789"))
    else:  # 41+ integer digits, or exponents far out: out of range
        text = draw(
            st.one_of(
                st.integers(41, 60).map(lambda n: "1" + "0" * (n - 1)),
                st.sampled_from(["1e40", "1E+41", "5e100", "1e-19", "2.5E-30", "123456789012345678901234567890123456789012345"]),
            )
        )
    if text.lstrip("-") in ("0",) and sign == "-":
        sign = ""  # the integer literal -0: see the module docstring
    return sign + text


# Any character but lone surrogates (not encodable), including U+F0000 / U+F0001 (ingest's
# private number markers, which must survive as plain text) and the Unicode line separators.
SAFE_CHARACTERS = st.characters(blacklist_categories=("Cs",))
NON_NUMBER_STRINGS = ["abc", "", " ", "NaN", "Infinity", "-inf", "1,5", "1_000", "0x1F", "true", "null", "-", "e5", "٣", "1.2.3", "5 5", "日本"]
NUMERIC_STRINGS = [" 12 ", "+3", ".5", "5.", "1e2", "007", "-0.25", "\t4\n", "\u00a02\u3000", "1E-3", "+.5e1"]
GROUP_VALUES = ["a", "b", 1, "1", 2, True, False, "true", None, {"x": 1}, [1, "a"], "日本", "", Decimal("1.50"), Decimal("1.5"), "1.50"]


def values(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Nasty property values: numbers, numeric and other strings, booleans, null, objects, arrays."""
    scalars = st.one_of(
        numbers,
        numbers,
        numbers,
        st.sampled_from(NUMERIC_STRINGS),
        numbers.map(lambda n: n if isinstance(n, str) else ref_literal(n)),  # a number as a string
        st.sampled_from(NON_NUMBER_STRINGS),
        st.booleans(),
        st.none(),
        st.text(SAFE_CHARACTERS, max_size=5),
    )
    return st.one_of(
        scalars,
        scalars,
        scalars,
        scalars,
        scalars,
        st.lists(scalars, max_size=2),
        st.dictionaries(st.sampled_from(["x", "y", "a.b"]), scalars, max_size=2),
    )


def properties(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    value = values(numbers)
    group = st.one_of(st.sampled_from(GROUP_VALUES), numbers)
    nested_object = st.fixed_dictionaries({}, optional={"x": value, "y": value, "z": st.dictionaries(st.just("x"), value, max_size=1)})
    nested = st.one_of(
        st.fixed_dictionaries({"x": value}, optional={"y": value}),
        nested_object,
        nested_object,
        value,  # "u" usually not an object: u.x is missing
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "v": st.one_of(numbers, numbers, value),  # mostly numeric: the values to aggregate
            "g": group,
            "b": st.sampled_from([True, False, "true", "false", None, 0, 1]),
            "s": st.one_of(st.sampled_from(NUMERIC_STRINGS + NON_NUMBER_STRINGS), value),
            "u": nested,
            "u.x": value,  # a literal dotted key: wins over u → x
            "w.z": value,
        },
    )


# Python values for parse_records: ints, Decimals (literal = str(Decimal)), a few floats.
python_numbers = st.one_of(
    number_texts().map(lambda t: int(t) if re.fullmatch(r"-?[0-9]+", t) else Decimal(t)),
    st.sampled_from([0.1, 0.2, 0.3, 2.5, -1.25, 1e-05, 100.0, 123456.789, -0.0, 3.0]),
    st.integers(-999_999, 999_999),
    st.integers(-(10**MAX_INT_DIGITS) + 1, 10**MAX_INT_DIGITS - 1),
    st.sampled_from([10**41, -(10**45) - 7, Decimal("1E+50"), Decimal("1E-19")]),
)
json_numbers = number_texts().map(Num)


instants = st.tuples(
    st.one_of(st.sampled_from([0, 3_600, 86_400, 86_400 + 1]), st.integers(0, 3 * 86_400)),  # seconds after BASE
    st.sampled_from([0, 0, 0, 1, 500_000, 999_999]),  # microseconds
)


@st.composite
def timestamps(draw: st.DrawFn, instant: tuple[int, int], *, json_text: bool) -> tuple[Any, int]:
    """(timestamp as given, UTC epoch µs) of an instant, in a random form: ISO with Z, with an
    offset, without one (UTC), a bare date (midnight UTC only), epoch seconds (int, fraction, exponent)."""
    seconds, micro = instant
    forms = ["Z", "offset", "naive", "epoch_fraction"]
    if micro == 0:
        forms += ["epoch", "epoch_exponent"]
        if seconds % 86_400 == 0:
            forms += ["date", "date"]
    form = draw(st.sampled_from(forms))
    moment = BASE + timedelta(seconds=seconds, microseconds=micro)
    us = BASE_US + seconds * 1_000_000 + micro
    if form == "date":
        return (moment.date().isoformat(), us)
    if form == "Z":
        return (moment.replace(tzinfo=None).isoformat() + "Z", us)
    if form == "offset":
        minutes = draw(st.sampled_from([-11 * 60, -3 * 60 - 30, -60, 0, 60, 120, 5 * 60 + 45, 14 * 60]))
        return (moment.astimezone(timezone(timedelta(minutes=minutes))).isoformat(), us)
    if form == "naive":
        return (moment.replace(tzinfo=None).isoformat(), us)
    epoch = us // 1_000_000
    if form == "epoch":
        return (Num(str(epoch)) if json_text else epoch, us)
    if form == "epoch_exponent":
        text = str(epoch)
        literal = text[0] + "." + text[1:] + "E" + str(len(text) - 1)
        return (Num(literal) if json_text else Decimal(literal), us)
    literal = f"{epoch}.{micro:06d}"
    if not json_text and micro in (0, 500_000) and draw(st.booleans()):
        return (float(literal), us)  # exactly representable
    return (Num(literal) if json_text else Decimal(literal), us)


@st.composite
def raw_events(draw: st.DrawFn, *, json_text: bool) -> list[tuple[str, str, Any, int, str | None, dict[str, Any]]]:
    """(event_name, customer_id, timestamp as given, expected µs, idempotency key, properties)."""
    numbers = json_numbers if json_text else python_numbers
    props = properties(numbers)
    keys = st.one_of(st.none(), st.none(), st.none(), st.sampled_from(["k1", "k2", "k3"]))
    # a few shared instants, so that events tie (latest) and windows cut between equal times
    shared = draw(st.lists(instants, min_size=1, max_size=3))
    events = []
    for _ in range(draw(st.integers(2, 25))):
        instant = draw(st.one_of(st.sampled_from(shared), instants))
        stamp, us = draw(timestamps(instant, json_text=json_text))
        events.append((draw(st.sampled_from(EVENT_NAMES)), draw(st.sampled_from(CUSTOMERS)), stamp, us, draw(keys), draw(props)))
    # repeat a few events verbatim: same content key (or same explicit key)
    for _ in range(draw(st.integers(0, 3))):
        events.insert(draw(st.integers(0, len(events))), events[draw(st.integers(0, len(events) - 1))])
    return events


FILTER_KEYS = ["g", "b", "s", "u.x", "v"]
FILTER_VALUES = ["a", "b", "1", "2", "true", "false", "0", "1.50", "12", '{"x":1}', '[1,"a"]', "日本", "+3", "abc"]


@st.composite
def metrics(draw: st.DrawFn) -> MetricCreate:
    aggregation = draw(st.sampled_from(AGGREGATIONS))
    path = draw(st.sampled_from(["v", "v", "v", "u.x", "u.x", "u.x", "u.z.x", "s", "g", "u", "w.z", "missing"]))
    filter_values = st.lists(st.sampled_from(FILTER_VALUES), min_size=1, max_size=4)
    filters = draw(
        st.one_of(
            st.just({}),
            st.just({}),
            st.dictionaries(st.sampled_from(FILTER_KEYS), filter_values, max_size=1),
            st.dictionaries(st.sampled_from(FILTER_KEYS), filter_values, max_size=2),
        )
    )
    group_by = draw(st.lists(st.sampled_from(["g", "b", "u.x", "u", "s"]), max_size=2, unique=True))
    fields: dict[str, Any] = {"name": "M", "code": "m", "unit": "u", "event_name": "api.request", "aggregation": aggregation}
    fields["filters"] = filters
    fields["group_by"] = group_by
    if aggregation == "unique_count":
        fields["distinct_by"] = path
    elif aggregation != "count":
        fields["value_property"] = path
    return MetricCreate(**fields)


@st.composite
def windows(draw: st.DrawFn, ts_values: list[int]) -> dict[str, Any]:
    def bound() -> int | None:
        choice = draw(st.sampled_from(["none", "none", "none", "event", "event", "any"]))
        if choice == "none":
            return None
        if choice == "event":
            return draw(st.sampled_from(ts_values)) + draw(st.sampled_from([0, 0, 1, -1]))
        return BASE_US + draw(st.integers(-86_400, 4 * 86_400)) * 1_000_000

    start_us, end_us = bound(), bound()
    if start_us is not None and end_us is not None and start_us > end_us and draw(st.integers(0, 9)):
        start_us, end_us = end_us, start_us  # mostly a proper window; sometimes an empty one

    def as_given(us: int | None) -> Any:
        if us is None or draw(st.booleans()):
            return us
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
        if draw(st.booleans()):
            return moment.replace(tzinfo=None)  # naive = UTC
        return moment.astimezone(timezone(timedelta(hours=draw(st.integers(-12, 14)))))

    customers = draw(st.one_of(st.none(), st.none(), st.none(), st.lists(st.sampled_from([*CUSTOMERS, "nobody"]), max_size=3, unique=True)))
    return {"start": as_given(start_us), "end": as_given(end_us), "start_us": start_us, "end_us": end_us, "customers": customers}


def records_of(raw: list[tuple[str, str, Any, int, str | None, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """The drawn events as numbered event objects (as a JSON Lines file would give them)."""
    records = []
    for i, (name, customer, stamp, _, key, props) in enumerate(raw):
        record: dict[str, Any] = {"event_name": name, "customer_id": customer, "timestamp": stamp, "properties": props}
        if key is not None:
            record["idempotency_key"] = key
        records.append((i + 1, record))
    return records


# =========================================================================== the properties


@SETTINGS
@given(raw=raw_events(json_text=False), cases=st.data())
def test_engine_matches_reference_python_records(raw, cases):
    parsed = ingest.parse_records(records_of(raw))
    assert parsed.errors == []
    assert parsed.ts_us == [us for _, _, _, us, _, _ in raw]
    frame = EventFrame.from_parsed(parsed)
    events = ref_store([(name, customer, us, key, props) for name, customer, _, us, key, props in raw])
    assert len(frame) == len(events)
    ts_values = [e.ts_us for e in events]
    for _ in range(cases.draw(st.integers(1, 5))):
        compare(frame, events, cases.draw(metrics()), cases.draw(windows(ts_values)))


@settings(SETTINGS, max_examples=40)
@given(raw=raw_events(json_text=False), cases=st.data())
def test_counting_over_small_chunks_matches_reference(raw, cases):
    # count and sum read the columns a chunk of rows at a time (4M in use): chunks of 3 rows
    # put chunk boundaries inside every example.
    from unittest import mock

    from metering.engine.columnar import counting

    with mock.patch.object(counting, "CHUNK", 3):
        test_engine_matches_reference_python_records.hypothesis.inner_test(raw, cases)


@settings(SETTINGS, max_examples=60)
@given(raw=raw_events(json_text=False), cases=st.data())
def test_engine_matches_reference_after_storing_and_reopening(raw, cases):
    """The persisted path: events stored (as a segment, as rows, both, then perhaps moved into
    segments), read back by a fresh process's cache (deriving and keeping each path's columns)
    and by another (reading the kept columns), answer as the reference does."""
    parsed = ingest.parse_records(records_of(raw))
    engine = store.make_engine("sqlite://")
    events_store = store_for(engine)
    batch = parsed.batch
    cut = cases.draw(st.integers(0, len(batch)), label="events stored as a segment")
    if cut:
        events_store.write_batch(batch.take(np.arange(cut)), import_id=None)
    rest = batch.take(np.arange(cut, len(batch)))
    rows = list(zip(rest.event_name.to_pylist(), rest.customer_id.to_pylist(), rest.ts_us.tolist(),
                    rest.key_text().to_pylist(), rest.properties.to_pylist()))
    for start in range(0, len(rows), 7):  # the API's way: small batches of rows
        events_store.insert_rows(rows[start:start + 7], import_id=None)
    if cases.draw(st.booleans(), label="rows moved into segments"):
        events_store.compact(chunk=cases.draw(st.integers(1, 9), label="compaction chunk"))
    events = ref_store([(name, customer, us, key, props) for name, customer, _, us, key, props in raw])
    ts_values = [e.ts_us for e in events]
    drawn = [(cases.draw(metrics()), cases.draw(windows(ts_values))) for _ in range(cases.draw(st.integers(1, 4)))]
    for frame in (FrameCache().get(engine), FrameCache().get(engine)):  # derives and keeps; reads back
        assert len(frame) == len(events)
        for metric, window in drawn:
            compare(frame, events, metric, window)
    engine.dispose()


# ------------------------------------------------------------------ JSON Lines written by hand


def json_text(value: Any, rnd: random.Random) -> str:
    """JSON text of a reference value, with random spacing, escaping and repeated (decoy) keys."""
    space = lambda: rnd.choice(["", "", " ", "\t"])  # noqa: E731
    if value is None or isinstance(value, (bool, Num, int, Decimal, float)):
        return ref_literal(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=rnd.random() < 0.3)  # raw U+2028, U+0085, … included
    if isinstance(value, list):
        return "[" + ",".join(space() + json_text(v, rnd) + space() for v in value) + "]"
    parts = []
    for key, item in value.items():
        if rnd.random() < 0.15:  # a decoy first: with repeated keys the last one wins
            parts.append(json.dumps(key) + space() + ":" + space() + rnd.choice(['"decoy"', "999", "null", '{"x":1}']))
        parts.append(json.dumps(key, ensure_ascii=rnd.random() < 0.5) + space() + ":" + space() + json_text(item, rnd))
    return "{" + space() + ("," + space()).join(parts) + space() + "}"


BAD_LINES = [
    ("{oops", "event"),
    ("[]", "event"),
    ('"just a string"', "event"),
    ('{"event_name":"api.request","customer_id":"c1"}', "timestamp"),
    ('{"event_name":"api.request","customer_id":"c1","timestamp":"2026-01-01","tokens":5}', "tokens"),
    ('{"event_name":"api.request","customer_id":"c1","timestamp":"1767225600"}', "timestamp"),
    ('{"event_name":"api.request","customer_id":1,"timestamp":"2026-01-01"}', "customer_id"),
    ('{"event_name":"api request","customer_id":"c1","timestamp":"2026-01-01"}', "event_name"),
    ('{"event_name":"api.request","customer_id":"c1","timestamp":"2026-01-01","properties":[1]}', "properties"),
]


@settings(SETTINGS, max_examples=80)
@given(raw=raw_events(json_text=True), cases=st.data())
def test_engine_matches_reference_json_lines(raw, cases):
    # formatting choices (spacing, escaping, decoys, blank and bad lines) from one drawn seed:
    # far cheaper than drawing each choice, and still reproducible
    rnd = random.Random(cases.draw(st.integers(0, 2**32 - 1)))
    text_lines: list[str] = []
    good_lines: list[int] = []
    bad: list[tuple[int, str]] = []
    for name, customer, stamp, _, key, props in raw:
        while rnd.random() < 0.15:  # blank lines and bad lines in between
            if rnd.random() < 0.5:
                text_lines.append(rnd.choice(["", "  ", "\t"]))
            else:
                line, field_name = rnd.choice(BAD_LINES)
                text_lines.append(line)
                bad.append((len(text_lines), field_name))
        fields = [("event_name", name), ("customer_id", customer), ("timestamp", stamp)]
        if key is not None:
            fields.append(("idempotency_key", key))
        if props or rnd.random() < 0.5:
            fields.append(("properties", props))
        rnd.shuffle(fields)
        if rnd.random() < 0.2:  # a repeated top-level field: the last one wins
            fields.insert(0, ("customer_id", "decoy"))
        body = ",".join(json.dumps(k) + ":" + json_text(v, rnd) for k, v in fields)
        text_lines.append("{" + body + "}")
        good_lines.append(len(text_lines))
    text = rnd.choice(["\n", "\r\n"]).join(text_lines) + rnd.choice(["", "\n"])

    parsed = ingest.parse_jsonl(text)
    assert [(e.line, e.field) for e in parsed.errors] == bad
    assert parsed.lines == good_lines
    assert parsed.ts_us == [us for _, _, _, us, _, _ in raw]
    assert parsed.properties == [ref_literal(props) for *_, props in raw]
    frame = EventFrame.from_parsed(parsed)
    events = ref_store([(name, customer, us, key, props) for name, customer, _, us, key, props in raw])
    assert len(frame) == len(events)
    ts_values = [e.ts_us for e in events]
    for _ in range(cases.draw(st.integers(1, 5))):
        compare(frame, events, cases.draw(metrics()), cases.draw(windows(ts_values)))


# ------------------------------------------------------------------ latest: many ties


@FOCUSED
@given(cases=st.data())
def test_latest_with_many_ties_matches_reference(cases):
    """Few instants, mostly numeric values: latest must take the newest, ties → stored last."""
    shared = cases.draw(st.lists(instants, min_size=1, max_size=2))
    raw = []
    for i in range(cases.draw(st.integers(1, 12))):
        stamp, us = cases.draw(timestamps(cases.draw(st.sampled_from(shared)), json_text=False))
        v = cases.draw(st.one_of(st.integers(-5, 50), st.sampled_from(["7", " 8 ", "x", None, True, "1e1", D("2.50")])))
        props = {"v": v, "g": cases.draw(st.sampled_from(["a", "b"])), "n": i}  # n: every event distinct
        raw.append(("api.request", cases.draw(st.sampled_from(["c1", "c2"])), stamp, us, None, props))
    parsed = ingest.parse_records([(i + 1, {"event_name": n, "customer_id": c, "timestamp": t, "properties": p}) for i, (n, c, t, _, _, p) in enumerate(raw)])
    assert parsed.errors == []
    frame = EventFrame.from_parsed(parsed)
    events = ref_store([(n, c, us, k, p) for n, c, _, us, k, p in raw])
    metric = MetricCreate(
        name="M", code="m", unit="u", event_name="api.request", aggregation="latest", value_property="v",
        group_by=cases.draw(st.sampled_from([[], ["g"]])),
    )
    window = cases.draw(windows([e.ts_us for e in events]))
    compare(frame, events, metric, window)


# ------------------------------------------------------------------ text forms: group_by, filters, unique_count

TEXT_EDGE_VALUES = [
    D("1.50"), D("1.5"), "1.50", 1, "1", D("1E+1"), 10, "10", 1.0, 0.1, -0.0, True, "true", False,
    {"b": 1, "a": [2, D("2.0")]}, '{"a":[2,2.0],"b":1}', [1, "x"], None, "", " 1", "日本",
]


@FOCUSED
@given(cases=st.data())
def test_text_forms_match_reference(cases):
    """Values whose text forms are easy to get wrong, through group_by, filters and unique_count."""
    value = st.sampled_from(TEXT_EDGE_VALUES)
    raw = []
    for i in range(cases.draw(st.integers(1, 15))):
        props = cases.draw(st.fixed_dictionaries({"n": st.just(i)}, optional={"g": value, "h": value, "m": st.fixed_dictionaries({}, optional={"g": value})}))
        raw.append(("api.request", cases.draw(st.sampled_from(["c1", "c2"])), BASE_US // 1_000_000 + i, BASE_US + i * 1_000_000, None, props))
    parsed = ingest.parse_records([(i + 1, {"event_name": n, "customer_id": c, "timestamp": t, "properties": p}) for i, (n, c, t, _, _, p) in enumerate(raw)])
    assert parsed.errors == []
    frame = EventFrame.from_parsed(parsed)
    events = ref_store([(n, c, us, k, p) for n, c, _, us, k, p in raw])
    texts = [t for t in (ref_text(v) for v in TEXT_EDGE_VALUES) if t and t.strip() == t]
    for _ in range(cases.draw(st.integers(1, 4))):
        aggregation = cases.draw(st.sampled_from(["count", "unique_count"]))
        fields: dict[str, Any] = {
            "name": "M", "code": "m", "unit": "u", "event_name": "api.request", "aggregation": aggregation,
            "group_by": cases.draw(st.lists(st.sampled_from(["g", "h", "m.g", "m"]), max_size=2, unique=True)),
            "filters": cases.draw(st.dictionaries(st.sampled_from(["g", "h", "m.g"]), st.lists(st.sampled_from(texts), min_size=1, max_size=4), max_size=1)),
        }
        if aggregation == "unique_count":
            fields["distinct_by"] = cases.draw(st.sampled_from(["g", "h", "m.g", "m"]))
        metric = MetricCreate(**fields)
        compare(frame, events, metric, {"start": None, "end": None, "start_us": None, "end_us": None, "customers": None})


# ------------------------------------------------------------------ the reference itself


def test_reference_sanity():
    """A few hand-checked cases, so a broken reference cannot silently agree with a broken engine."""
    assert ref_lookup({"a.b": 1, "a": {"b": 2}}, "a.b") == 1
    assert ref_lookup({"a": {"b": 2}}, "a.b") == 2
    assert ref_lookup({"a": [1]}, "a.b") is None
    assert ref_text(Num("1.50")) == "1.50" and ref_text(Decimal("1.50")) == "1.50" and ref_text(3) == "3"
    assert ref_text({"b": 1, "a": [True, None]}) == '{"a":[true,null],"b":1}'
    assert ref_number(" +.5e1 ") == Decimal(5) and ref_number(True) is None and ref_number("NaN") is None
    assert ref_number("٣") is None and ref_number({"x": 1}) is None
    assert ref_in_range(Decimal("1.5000000000000000000000")) and not ref_in_range(Decimal("1e-19"))
    assert ref_in_range(Decimal(10**40 - 1)) and not ref_in_range(Decimal(10**40))
    assert ref_in_range(Decimal("0E-40"))
    events = ref_store(
        [
            ("e", "c", 1, None, {"v": Decimal("0.1")}),
            ("e", "c", 2, None, {"v": 0.2}),
            ("e", "c", 2, None, {"v": 0.2}),  # duplicate content
            ("e", "c", 2, "k", {"v": "x"}),
            ("e", "c", 2, "k", {"v": 5}),  # duplicate key
        ]
    )
    m = MetricCreate(name="M", code="m", unit="u", event_name="e", aggregation="sum", value_property="v")
    r = ref_aggregate(events, m, None, None, None)
    assert (r.value, r.events, r.skipped, r.reasons) == (Decimal("0.3"), 3, 1, {"v is not a number": 1})
    latest = MetricCreate(name="M", code="m", unit="u", event_name="e", aggregation="latest", value_property="v")
    assert ref_aggregate(events, latest, None, None, None).value == Decimal("0.2")
    assert plain(Decimal("1E+3")) == "1000" and plain(Decimal("-0.0")) == "0"


def test_timestamp_strategy_is_right():
    """The generated timestamp texts mean the µs the reference says (checked with the stdlib)."""
    samples = [
        ("2026-01-01", BASE_US),
        ("2026-01-02T00:00:00.000001Z", BASE_US + 86_400 * 1_000_000 + 1),
        (datetime(2026, 1, 1, 1, tzinfo=UTC).astimezone(timezone(timedelta(hours=14))).isoformat(), BASE_US + 3_600 * 1_000_000),
    ]
    for text, us in samples:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) == us
        assert one_ts(text) == us


def one_ts(text: str) -> int:
    parsed = ingest.parse_records([(1, {"event_name": "e", "customer_id": "c", "timestamp": text})])
    assert parsed.errors == []
    return parsed.ts_us[0]
