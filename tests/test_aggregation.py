"""Aggregation of a metric over a window (contract §2): the six aggregations, filters, group_by,
dot paths, the half-open window, per-customer results, skipped events and exact decimals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from metering import ingest
from metering.aggregation import aggregate, aggregate_by_customer
from metering.engine.columnar.aggregate import select
from metering.frame import EventFrame
from metering.models import MetricCreate

D = Decimal
T0 = datetime(2026, 10, 3, 12, 0, tzinfo=timezone.utc)
T0_S = 1_791_028_800  # T0 in epoch seconds
US = 1_000_000

MISSING = "{} is missing"
NOT_NUMBER = "{} is not a number"
OUT_OF_RANGE = "{} has more than 18 decimal places or 40 integer digits"


def ev(props: dict[str, Any] | None = None, *, at: int | str | None = None, customer: str = "c1", name: str = "e", key: str | None = None) -> dict[str, Any]:
    """An event dict; `at` is seconds after T0 (or a timestamp string)."""
    out: dict[str, Any] = {"event_name": name, "customer_id": customer, "properties": props or {}}
    if at is not None:
        out["timestamp"] = at if isinstance(at, str) else T0_S + at
    if key is not None:
        out["idempotency_key"] = key
    return out


def frame_of(*events: dict[str, Any]) -> EventFrame:
    """Events in store order; an event without a timestamp gets T0 + its position in seconds."""
    records = []
    for i, event in enumerate(events):
        event = dict(event)
        event.setdefault("timestamp", T0_S + i)
        records.append((i + 1, event))
    parsed = ingest.parse_records(records)
    assert parsed.errors == [], parsed.errors
    return EventFrame.from_parsed(parsed)


def frame_of_jsonl(*lines: str) -> EventFrame:
    parsed = ingest.parse_jsonl("".join(line + "\n" for line in lines))
    assert parsed.errors == [], parsed.errors
    return EventFrame.from_parsed(parsed)


def jsonl_event(props_json: str, at: int = 0, customer: str = "c1") -> str:
    return '{"event_name":"e","customer_id":"%s","timestamp":%d,"properties":%s}' % (customer, T0_S + at, props_json)


def metric(aggregation: str = "count", path: str | None = None, **fields: Any) -> MetricCreate:
    data: dict[str, Any] = {"name": "M", "code": "m", "unit": "u", "event_name": "e", "aggregation": aggregation}
    if aggregation == "unique_count":
        data["distinct_by"] = path
    elif aggregation != "count":
        data["value_property"] = path
    data.update(fields)
    return MetricCreate(**data)


def agg(frame: EventFrame, aggregation: str = "count", path: str | None = None, **kw: Any):
    window = {k: kw.pop(k) for k in ("start", "end", "customer_ids") if k in kw}
    return aggregate(frame, metric(aggregation, path, **kw), **window)


def groups(result) -> dict[tuple, tuple[Decimal, int, int]]:
    return {tuple(g.group.values()): (g.value, g.events, g.skipped) for g in result.groups}


# =========================================================================== the six aggregations


class TestSixAggregations:
    FRAME_EVENTS = [
        ev({"v": 3, "u": "a"}),
        ev({"v": "4.5", "u": "b"}),
        ev({"v": -2, "u": "a"}),
        ev({"v": "x", "u": 3}),
        ev({"u": "3"}),
        ev({"v": 10}, name="other"),
    ]

    @pytest.mark.parametrize(
        ("aggregation", "path", "value", "skipped", "reasons"),
        [
            ("count", None, D(5), 0, {}),
            ("sum", "v", D("5.5"), 2, {MISSING.format("v"): 1, NOT_NUMBER.format("v"): 1}),
            ("max", "v", D("4.5"), 2, {MISSING.format("v"): 1, NOT_NUMBER.format("v"): 1}),
            ("min", "v", D(-2), 2, {MISSING.format("v"): 1, NOT_NUMBER.format("v"): 1}),
            ("latest", "v", D(-2), 2, {MISSING.format("v"): 1, NOT_NUMBER.format("v"): 1}),
            # 3 and "3" have the same text form: a, b, 3 → 3 distinct values
            ("unique_count", "u", D(3), 0, {}),
            ("unique_count", "v", D(4), 1, {MISSING.format("v"): 1}),
        ],
    )
    def test_values(self, aggregation, path, value, skipped, reasons):
        result = agg(frame_of(*self.FRAME_EVENTS), aggregation, path)
        assert result.value == value
        assert result.events == 5
        assert result.skipped == skipped
        assert result.skip_reasons == reasons
        assert result.aggregation == aggregation
        assert result.metric == "m"

    @pytest.mark.parametrize("aggregation", ["count", "sum", "max", "min", "unique_count", "latest"])
    def test_no_matching_events_is_zero(self, aggregation):
        frame = frame_of(ev({"v": 5}, name="other"))
        result = agg(frame, aggregation, "v", group_by=["v"])
        assert (result.value, result.events, result.skipped, result.groups) == (D(0), 0, 0, [])
        assert result.to_json() == {"metric": "m", "value": "0", "events": 0, "skipped": 0, "groups": []}
        assert aggregate_by_customer(frame, metric(aggregation, "v")) == {}

    @pytest.mark.parametrize("aggregation", ["count", "sum", "max", "min", "unique_count", "latest"])
    def test_empty_frame_is_zero(self, aggregation):
        result = aggregate(EventFrame.empty(), metric(aggregation, "v"))
        assert (result.value, result.events, result.skipped) == (D(0), 0, 0)

    @pytest.mark.parametrize("aggregation", ["sum", "max", "min", "latest"])
    def test_all_values_skipped_is_zero(self, aggregation):
        result = agg(frame_of(ev({"v": "n/a"}), ev({})), aggregation, "v")
        assert (result.value, result.events, result.skipped) == (D(0), 2, 2)

    def test_max_and_min_of_negative_values(self):
        frame = frame_of(ev({"v": -5}), ev({"v": "-0.5"}), ev({"v": -100}))
        assert agg(frame, "max", "v").value == D("-0.5")
        assert agg(frame, "min", "v").value == D(-100)
        assert agg(frame, "sum", "v").value == D("-105.5")

    def test_to_json_shapes(self):
        result = agg(frame_of(ev({"v": "1.50", "g": "a"}), ev({"v": 2, "g": "b"})), "sum", "v", group_by=["g"])
        assert result.to_json() == {
            "metric": "m",
            "value": "3.5",
            "events": 2,
            "skipped": 0,
            "groups": [{"group": {"g": "a"}, "value": "1.5"}, {"group": {"g": "b"}, "value": "2"}],
        }


# =========================================================================== what reads as a number


class TestNumbers:
    @pytest.mark.parametrize(
        ("value", "number"),
        [
            (5, D(5)),
            (-5, D(-5)),
            (D("1.50"), D("1.5")),
            (0.25, D("0.25")),
            ("5", D(5)),
            (" 5 ", D(5)),
            ("\t-2.5\n", D("-2.5")),
            ("+5", D(5)),
            (".5", D("0.5")),
            ("5.", D(5)),
            ("007", D(7)),
            ("1e3", D(1000)),
            ("1E+3", D(1000)),
            ("-2.5E-3", D("-0.0025")),
            ("\u00a05\u3000", D(5)),  # Unicode white space is white space
        ],
    )
    def test_reads_as_a_number(self, value, number):
        result = agg(frame_of(ev({"v": value})), "sum", "v")
        assert (result.value, result.skipped) == (number, 0)

    @pytest.mark.parametrize(
        "value",
        [True, False, "true", "", " ", "abc", "NaN", "nan", "Infinity", "-Infinity", "inf", "1,000", "1_000", "0x10",
         "1e", "e3", "--1", "+-1", "1.2.3", "5 5", "٣", "\u200b5", {"x": 1}, [1], [], {}],
    )
    def test_not_a_number(self, value):
        result = agg(frame_of(ev({"v": value}), ev({"v": 1})), "sum", "v")
        assert (result.value, result.events, result.skipped) == (D(1), 2, 1)
        assert result.skip_reasons == {NOT_NUMBER.format("v"): 1}

    @pytest.mark.parametrize("props", [{}, {"v": None}, {"w": 1}, {"v.x": 1}])
    def test_missing(self, props):
        result = agg(frame_of(ev(props), ev({"v": 1})), "sum", "v")
        assert (result.value, result.skipped, result.skip_reasons) == (D(1), 1, {MISSING.format("v"): 1})

    def test_booleans_are_not_numbers_for_every_value_aggregation(self):
        frame = frame_of(ev({"v": True}), ev({"v": False}))
        for aggregation in ("sum", "max", "min", "latest"):
            result = agg(frame, aggregation, "v")
            assert (result.value, result.skipped) == (D(0), 2), aggregation

    def test_zero_point_one_plus_zero_point_two(self):
        for events in (
            [ev({"v": 0.1}), ev({"v": 0.2})],
            [ev({"v": D("0.1")}), ev({"v": D("0.2")})],
            [ev({"v": "0.1"}), ev({"v": "0.2"})],
        ):
            result = agg(frame_of(*events), "sum", "v")
            assert result.value == D("0.3")
            assert result.to_json()["value"] == "0.3"
        frame = frame_of_jsonl(jsonl_event('{"v":0.1}', 0), jsonl_event('{"v":0.2}', 1))
        assert agg(frame, "sum", "v").to_json()["value"] == "0.3"

    def test_nine_decimal_places_sum_exactly(self):
        frame = frame_of(*[ev({"v": "0.000000001"}) for _ in range(1000)])
        result = agg(frame, "sum", "v")
        assert result.value == D("0.000001")
        assert result.to_json()["value"] == "0.000001"

    def test_nine_decimals_with_large_integer_part(self):
        frame = frame_of(ev({"v": D("123456789.123456789")}), ev({"v": D("0.000000001")}), ev({"v": D("-0.00000001")}))
        assert agg(frame, "sum", "v").value == D("123456789.12345678")

    def test_eighteen_decimal_places_are_kept(self):
        frame = frame_of(ev({"v": "0.000000000000000001"}), ev({"v": "0.000000000000000002"}))
        result = agg(frame, "sum", "v")
        assert result.value == D("0.000000000000000003")
        assert result.to_json()["value"] == "0.000000000000000003"

    @pytest.mark.parametrize(
        "value",
        ["0.0000000000000000001", "1.1234567890123456789", "1e-19", "-5E-25"],
    )
    def test_more_than_eighteen_decimal_places_are_skipped_never_rounded(self, value):
        result = agg(frame_of(ev({"v": value}), ev({"v": 2})), "sum", "v")
        assert (result.value, result.skipped) == (D(2), 1)
        assert result.skip_reasons == {OUT_OF_RANGE.format("v"): 1}

    @pytest.mark.parametrize("value", ["1.5000000000000000000000", "2.000000000000000000000000000", "0E-30"])
    def test_trailing_zeros_beyond_eighteen_places_are_harmless(self, value):
        result = agg(frame_of(ev({"v": value})), "sum", "v")
        assert (result.value, result.skipped) == (D(value), 0)

    @pytest.mark.parametrize("value", [10**40, -(10**40), "1" + "0" * 45, "1e40", "1E+41", "1e999999999"])
    def test_more_than_forty_integer_digits_are_skipped(self, value):
        result = agg(frame_of(ev({"v": value}), ev({"v": 2})), "sum", "v")
        assert (result.value, result.skipped) == (D(2), 1)
        assert result.skip_reasons == {OUT_OF_RANGE.format("v"): 1}

    @pytest.mark.parametrize("aggregation", ["sum", "max", "min", "latest"])
    def test_out_of_range_is_skipped_for_every_value_aggregation(self, aggregation):
        result = agg(frame_of(ev({"v": 10**41})), aggregation, "v")
        assert (result.value, result.skipped, result.events) == (D(0), 1, 1)

    def test_out_of_range_values_still_count_as_distinct_text(self):
        result = agg(frame_of(ev({"v": 10**41}), ev({"v": "1e-30"})), "unique_count", "v")
        assert (result.value, result.skipped) == (D(2), 0)

    def test_values_up_to_nine_integer_digits_and_exponents(self):
        frame = frame_of_jsonl(
            jsonl_event('{"v":1e3}', 0), jsonl_event('{"v":2.5E+2}', 1), jsonl_event('{"v":-1e-9}', 2), jsonl_event('{"v":999999999}', 3)
        )
        assert agg(frame, "sum", "v").value == D("1000001248.999999999")

    # ---- wide values: 10 to 40 integer digits are in range and must stay exact -----------------

    def test_forty_integer_digits_are_kept(self):
        big = 10**40 - 1  # 40 nines
        frame = frame_of(ev({"v": big}), ev({"v": "0.5"}))
        result = agg(frame, "max", "v")
        assert (result.value, result.skipped) == (D(big), 0)
        assert result.to_json()["value"] == str(big)

    def test_sum_of_huge_values_is_exact(self):
        a = 123456789012345678901234567890123456789  # 39 digits
        frame = frame_of(ev({"v": a}), ev({"v": a}), ev({"v": D("0.000000000000000001")}))
        result = agg(frame, "sum", "v")
        expected = str(2 * a) + ".000000000000000001"  # 57 significant digits
        assert result.value == D(expected)
        assert result.to_json()["value"] == expected

    def test_twenty_nine_significant_digits(self):
        frame = frame_of(ev({"v": D("12345678901.123456789012345678")}))
        result = agg(frame, "sum", "v")
        assert result.value == D("12345678901.123456789012345678")
        assert result.to_json()["value"] == "12345678901.123456789012345678"

    def test_exponent_literal_with_ten_or_more_integer_digits(self):
        frame = frame_of_jsonl(jsonl_event('{"v":1e10}', 0), jsonl_event('{"v":"2.5e12"}', 1))
        result = agg(frame, "sum", "v")
        assert (result.value, result.skipped) == (D("2510000000000"), 0)

    def test_many_decimals_with_more_than_28_significant_digits_are_skipped(self):
        # 31 decimal places: out of range, must be skipped (not rounded to 1)
        frame = frame_of(ev({"v": "1.0000000000000000000000000000001"}), ev({"v": 2}))
        result = agg(frame, "sum", "v")
        assert (result.value, result.skipped) == (D(2), 1)
        assert result.skip_reasons == {OUT_OF_RANGE.format("v"): 1}


# =========================================================================== latest


class TestLatest:
    def test_greatest_timestamp_wins_not_store_order(self):
        frame = frame_of(ev({"v": 1}, at=50), ev({"v": 2}, at=100), ev({"v": 3}, at=10))
        assert agg(frame, "latest", "v").value == D(2)

    def test_ties_go_to_the_event_stored_last(self):
        frame = frame_of(ev({"v": 1, "n": 1}, at=100), ev({"v": 2, "n": 2}, at=100), ev({"v": 3}, at=5))
        assert agg(frame, "latest", "v").value == D(2)
        frame = frame_of(ev({"v": 2, "n": 2}, at=100), ev({"v": 1, "n": 1}, at=100))
        assert agg(frame, "latest", "v").value == D(1)

    def test_ties_across_timestamp_forms(self):
        frame = frame_of(
            ev({"v": 1}, at="2026-10-03T14:00:00+02:00"),
            ev({"v": 2}, at="2026-10-03T12:00:00Z"),
            ev({"v": 3}, at="2026-10-03T12:00:00"),
        )
        assert agg(frame, "latest", "v").value == D(3)

    def test_newest_event_without_a_numeric_value_is_skipped(self):
        frame = frame_of(ev({"v": 7}, at=1), ev({"v": "n/a"}, at=2), ev({}, at=3), ev({"v": True}, at=4))
        result = agg(frame, "latest", "v")
        assert (result.value, result.events, result.skipped) == (D(7), 4, 3)

    def test_latest_per_group_and_customer(self):
        frame = frame_of(
            ev({"v": 1, "g": "a"}, at=1, customer="c1"),
            ev({"v": 2, "g": "b"}, at=2, customer="c1"),
            ev({"v": 3, "g": "a"}, at=3, customer="c2"),
            ev({"v": "x", "g": "a"}, at=4, customer="c1"),
        )
        result = agg(frame, "latest", "v", group_by=["g"])
        assert result.value == D(3)
        assert groups(result) == {("a",): (D(3), 3, 1), ("b",): (D(2), 1, 0)}
        per = aggregate_by_customer(frame, metric("latest", "v", group_by=["g"]))
        assert per["c1"].value == D(2)
        assert groups(per["c1"]) == {("a",): (D(1), 2, 1), ("b",): (D(2), 1, 0)}
        assert per["c2"].value == D(3)


# =========================================================================== filters


class TestFilters:
    def test_number_matches_its_text(self):
        frame = frame_of(ev({"k": 3}), ev({"k": "3"}), ev({"k": 4}), ev({"k": "3.0"}), ev({}))
        assert agg(frame, filters={"k": ["3"]}).value == D(2)
        assert agg(frame, filters={"k": [3]}).value == D(2)
        assert agg(frame, filters={"k": 3}).value == D(2)  # a single value is a list of one

    def test_literal_text_of_numbers(self):
        frame = frame_of(ev({"k": D("1.50")}), ev({"k": D("1.5")}), ev({"k": "1.50"}))
        assert agg(frame, filters={"k": ["1.50"]}).value == D(2)
        assert agg(frame, filters={"k": ["1.5"]}).value == D(1)

    def test_booleans_match_true_false(self):
        frame = frame_of(ev({"k": True}), ev({"k": "true"}), ev({"k": False}), ev({"k": 1}))
        assert agg(frame, filters={"k": ["true"]}).value == D(2)
        assert agg(frame, filters={"k": [True]}).value == D(2)
        assert agg(frame, filters={"k": ["false"]}).value == D(1)

    def test_several_values_are_ored_and_several_keys_anded(self):
        frame = frame_of(
            ev({"model": "a", "region": "eu"}),
            ev({"model": "b", "region": "eu"}),
            ev({"model": "c", "region": "eu"}),
            ev({"model": "a", "region": "us"}),
            ev({"model": "a"}),
        )
        assert agg(frame, filters={"model": ["a", "b"]}).value == D(4)
        assert agg(frame, filters={"model": ["a", "b"], "region": ["eu"]}).value == D(2)
        assert agg(frame, filters={"model": ["c"], "region": ["us"]}).value == D(0)

    def test_missing_or_null_key_never_matches(self):
        frame = frame_of(ev({}), ev({"k": None}), ev({"k": "null"}), ev({"k": ""}))
        assert agg(frame, filters={"k": ["null"]}).value == D(1)
        assert agg(frame, filters={"k": ["None"]}).value == D(0)

    def test_filter_on_nested_path_and_object_value(self):
        frame = frame_of(ev({"usage": {"model": "a", "opts": {"y": 2, "x": 1}}}), ev({"usage": {"model": "b"}}))
        assert agg(frame, filters={"usage.model": ["a"]}).value == D(1)
        assert agg(frame, filters={"usage.opts": ['{"x":1,"y":2}']}).value == D(1)

    def test_filtered_out_events_are_not_skipped_events(self):
        frame = frame_of(ev({"k": "a", "v": 1}), ev({"k": "b", "v": "x"}), ev({"k": "a"}))
        result = agg(frame, "sum", "v", filters={"k": ["a"]})
        assert (result.value, result.events, result.skipped) == (D(1), 2, 1)

    def test_unicode_and_spaces_inside_values(self):
        frame = frame_of(ev({"k": "日本 語"}), ev({"k": "x"}))
        assert agg(frame, filters={"k": ["日本 語"]}).value == D(1)


# =========================================================================== group_by


class TestGroupBy:
    def test_groups_and_the_null_group(self):
        frame = frame_of(
            ev({"v": 1, "model": "a"}), ev({"v": 2, "model": "b"}), ev({"v": 4, "model": "a"}), ev({"v": 8}), ev({"v": 16, "model": None})
        )
        result = agg(frame, "sum", "v", group_by=["model"])
        assert result.value == D(31)
        assert groups(result) == {("a",): (D(5), 2, 0), ("b",): (D(2), 1, 0), (None,): (D(24), 2, 0)}
        assert result.groups[-1].group == {"model": None}  # the null group comes last
        assert result.to_json()["groups"][-1] == {"group": {"model": None}, "value": "24"}

    def test_groups_listed_by_label_with_null_last(self):
        frame = frame_of(ev({"g": "c"}), ev({}), ev({"g": "a"}), ev({"g": "b"}), ev({"g": "a"}))
        assert [g.group["g"] for g in agg(frame, group_by=["g"]).groups] == ["a", "b", "c", None]
        frame = frame_of(ev({"x": "b", "y": "z"}), ev({"x": "a"}), ev({"x": "b", "y": "a"}), ev({"y": "q"}))
        assert [tuple(g.group.values()) for g in agg(frame, group_by=["x", "y"]).groups] == [
            ("a", None), ("b", "a"), ("b", "z"), (None, "q")
        ]

    def test_several_labels(self):
        frame = frame_of(
            ev({"model": "a", "region": "eu"}),
            ev({"model": "a", "region": "us"}),
            ev({"model": "a", "region": "eu"}),
            ev({"region": "eu"}),
            ev({"model": "b"}),
        )
        result = agg(frame, group_by=["model", "region"])
        assert groups(result) == {
            ("a", "eu"): (D(2), 2, 0),
            ("a", "us"): (D(1), 1, 0),
            (None, "eu"): (D(1), 1, 0),
            ("b", None): (D(1), 1, 0),
        }
        assert all(list(g.group) == ["model", "region"] for g in result.groups)

    def test_group_values_are_text_forms(self):
        frame = frame_of(ev({"g": 3}), ev({"g": "3"}), ev({"g": True}), ev({"g": D("1.50")}), ev({"g": {"b": 1, "a": [1, 2]}}))
        result = agg(frame, group_by=["g"])
        assert groups(result) == {
            ("3",): (D(2), 2, 0),
            ("true",): (D(1), 1, 0),
            ("1.50",): (D(1), 1, 0),
            ('{"a":[1,2],"b":1}',): (D(1), 1, 0),
        }

    def test_group_skips_and_unique_count(self):
        frame = frame_of(ev({"u": "x", "g": 1}), ev({"u": "y", "g": 1}), ev({"u": "x", "g": 2}), ev({"g": 2}))
        result = agg(frame, "unique_count", "u", group_by=["g"])
        assert result.value == D(2)
        assert groups(result) == {("1",): (D(2), 2, 0), ("2",): (D(1), 2, 1)}

    def test_groups_add_up_to_the_total_for_sum_and_count(self):
        frame = frame_of(*[ev({"v": i, "g": i % 3 if i % 4 else None}) for i in range(20)])
        for aggregation in ("sum", "count"):
            result = agg(frame, aggregation, "v", group_by=["g"])
            assert sum(g.value for g in result.groups) == result.value
            assert sum(g.events for g in result.groups) == result.events


# =========================================================================== dot paths


class TestDotPaths:
    def test_nested_path(self):
        frame = frame_of(ev({"usage": {"input_tokens": 5, "deep": {"x": 2}}}), ev({"usage": {"input_tokens": "7"}}))
        assert agg(frame, "sum", "usage.input_tokens").value == D(12)
        assert agg(frame, "sum", "usage.deep.x").value == D(2)

    def test_literal_dotted_key_wins_over_nested(self):
        frame = frame_of(ev({"usage.input_tokens": 100, "usage": {"input_tokens": 1}}), ev({"usage": {"input_tokens": 1}}))
        assert agg(frame, "sum", "usage.input_tokens").value == D(101)

    def test_literal_dotted_key_with_null_counts_as_missing(self):
        # The literal key wins even when it holds JSON null (values.lookup), and null is missing.
        frame = frame_of(ev({"a.b": None, "a": {"b": 5}}))
        result = agg(frame, "sum", "a.b")
        assert (result.value, result.skipped) == (D(0), 1)

    def test_path_through_non_objects_is_missing(self):
        frame = frame_of(ev({"a": [1, 2]}), ev({"a": "text"}), ev({"a": 5}), ev({"a": {"c": 1}}), ev({"a": None}))
        result = agg(frame, "sum", "a.b")
        assert (result.value, result.skipped, result.skip_reasons) == (D(0), 5, {MISSING.format("a.b"): 5})

    def test_group_and_filter_by_dot_paths(self):
        frame = frame_of(
            ev({"m": {"name": "a"}, "v": 1}), ev({"m.name": "a", "v": 2}), ev({"m": {"name": "b"}, "v": 4}), ev({"v": 8})
        )
        result = agg(frame, "sum", "v", group_by=["m.name"])
        assert groups(result) == {("a",): (D(3), 2, 0), ("b",): (D(4), 1, 0), (None,): (D(8), 1, 0)}
        assert agg(frame, "sum", "v", filters={"m.name": ["a"]}).value == D(3)

    def test_distinct_by_nested_object(self):
        frame = frame_of(ev({"u": {"id": {"x": 1, "y": 2}}}), ev({"u": {"id": {"y": 2, "x": 1}}}), ev({"u": {"id": {"x": 2}}}))
        assert agg(frame, "unique_count", "u.id").value == D(2)


# =========================================================================== window


class TestWindow:
    def frame(self) -> EventFrame:
        return frame_of(ev({"v": 1}, at=0), ev({"v": 2}, at=60), ev({"v": 4}, at=120), ev({"v": 8}, at=180))

    def test_half_open(self):
        frame = self.frame()
        start, end = T0 + timedelta(seconds=60), T0 + timedelta(seconds=180)
        assert agg(frame, "sum", "v", start=start, end=end).value == D(6)  # at start: in; at end: out

    def test_one_microsecond_before_end_is_in(self):
        frame = self.frame()
        end = T0 + timedelta(seconds=180, microseconds=1)
        assert agg(frame, "sum", "v", start=T0, end=end).value == D(15)
        assert agg(frame, "sum", "v", start=T0 + timedelta(microseconds=1)).value == D(14)

    def test_bounds_as_microseconds_naive_and_offset_datetimes(self):
        frame = self.frame()
        t0_us = T0_S * US
        assert agg(frame, "sum", "v", start=t0_us + 60 * US, end=t0_us + 180 * US).value == D(6)
        naive = datetime(2026, 10, 3, 12, 1)  # naive = UTC
        assert agg(frame, "sum", "v", start=naive).value == D(14)
        plus2 = datetime(2026, 10, 3, 14, 2, tzinfo=timezone(timedelta(hours=2)))  # = 12:02Z
        assert agg(frame, "sum", "v", end=plus2).value == D(3)

    def test_open_bounds(self):
        frame = self.frame()
        assert agg(frame, "sum", "v").value == D(15)
        assert agg(frame, "sum", "v", end=T0).value == D(0)
        assert agg(frame, "count", start=T0 + timedelta(days=1)).events == 0

    def test_select_returns_store_order_indices(self):
        frame = frame_of(ev({}, at=5), ev({}, at=1, name="x"), ev({}, at=3))
        assert select(frame, metric()).tolist() == [0, 2]


# =========================================================================== per customer


class TestPerCustomer:
    def frame(self) -> EventFrame:
        return frame_of(
            ev({"v": 1, "g": "a"}, customer="c1"),
            ev({"v": 2, "g": "b"}, customer="c2"),
            ev({"v": 4, "g": "a"}, customer="c1"),
            ev({"v": "x"}, customer="c2"),
            ev({"v": 100}, customer="c3", name="other"),
        )

    def test_one_result_per_customer_with_events(self):
        per = aggregate_by_customer(self.frame(), metric("sum", "v"))
        assert set(per) == {"c1", "c2"}
        assert (per["c1"].value, per["c1"].events, per["c1"].skipped) == (D(5), 2, 0)
        assert (per["c2"].value, per["c2"].events, per["c2"].skipped) == (D(2), 2, 1)
        assert per["c2"].skip_reasons == {NOT_NUMBER.format("v"): 1}

    def test_customer_ids_restrict(self):
        frame = self.frame()
        per = aggregate_by_customer(frame, metric("sum", "v"), customer_ids=["c2", "c3", "nobody"])
        assert set(per) == {"c2"}
        assert agg(frame, "sum", "v", customer_ids=["c1"]).value == D(5)
        assert agg(frame, "sum", "v", customer_ids=[]).events == 0

    def test_groups_per_customer(self):
        per = aggregate_by_customer(self.frame(), metric("sum", "v", group_by=["g"]))
        assert groups(per["c1"]) == {("a",): (D(5), 2, 0)}
        assert groups(per["c2"]) == {("b",): (D(2), 1, 0), (None,): (D(0), 1, 1)}

    def test_per_customer_matches_aggregate_with_customer_filter(self):
        frame = self.frame()
        for aggregation in ("count", "sum", "max", "min", "unique_count", "latest"):
            m = metric(aggregation, "v", group_by=["g"])
            per = aggregate_by_customer(frame, m)
            for customer, result in per.items():
                alone = aggregate(frame, m, customer_ids=[customer])
                assert (result.value, result.events, result.skipped, result.skip_reasons) == (
                    alone.value, alone.events, alone.skipped, alone.skip_reasons
                )
                assert groups(result) == groups(alone)

    def test_window_applies_per_customer(self):
        frame = frame_of(ev({"v": 1}, at=0, customer="c1"), ev({"v": 2}, at=10, customer="c2"))
        per = aggregate_by_customer(frame, metric("sum", "v"), start=T0 + timedelta(seconds=5))
        assert set(per) == {"c2"}


# =========================================================================== literal text forms


class TestTextForms:
    def test_unique_count_text_forms(self):
        frame = frame_of(
            ev({"u": 3}), ev({"u": "3"}), ev({"u": D("3.0")}), ev({"u": True}), ev({"u": "true"}), ev({"u": {"a": 1}}), ev({"u": '{"a":1}'})
        )
        # "3", "3.0", "true", '{"a":1}'
        assert agg(frame, "unique_count", "u").value == D(4)

    def test_integer_negative_zero_reads_as_zero(self):
        # Integers are read by value (README rule), so the JSON number -0 is the text "0";
        # a *string* "-0" keeps its own text.
        frame = frame_of_jsonl(jsonl_event('{"g":-0}', 0), jsonl_event('{"g":0}', 1), jsonl_event('{"g":"-0"}', 2))
        result = agg(frame, group_by=["g"])
        assert groups(result) == {("0",): (D(2), 2, 0), ("-0",): (D(1), 1, 0)}
        assert agg(frame, filters={"g": ["-0"]}).value == D(1)
        assert agg(frame, filters={"g": ["0"]}).value == D(2)

    def test_big_integer_text(self):
        big = "123456789012345678901234567890123456789012345"
        frame = frame_of_jsonl(jsonl_event('{"g":%s}' % big, 0), jsonl_event('{"g":"%s"}' % big, 1))
        result = agg(frame, "unique_count", "g", group_by=["g"])
        assert result.value == D(1)
        assert groups(result) == {(big,): (D(1), 2, 0)}
