"""Metric types over billing periods (contract §3): charge_metered, charge_recurring,
limit_metered (hard quota, rejected events) and limit_recurring (carryover, overage), plus the
timeline shape of `metering timeline`."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metering import billing, ingest
from metering.billing import Schedule
from metering.frame import EventFrame
from metering.models import MetricCreate
from metering.plans import Plan

D = Decimal
UTC = timezone.utc
OCT, NOV, DEC, JAN = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC),
                      datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def at(month: int, day: int = 5, second: int = 0, year: int = 2026) -> int:
    return int(datetime(year, month, day, 12, 0, second, tzinfo=UTC).timestamp())


def frame_of(events: list[dict[str, Any]]) -> EventFrame:
    """Events in store order (seq = position), each its own (no duplicates); each needs a timestamp."""
    lines = "".join(
        json.dumps({"event_name": "e", "customer_id": "c1", "idempotency_key": f"k{i}", **e}) + "\n"
        for i, e in enumerate(events)
    )
    parsed = ingest.parse_jsonl(lines)
    assert parsed.errors == [], parsed.errors
    return EventFrame.from_parsed(parsed)


def metric(aggregation: str = "count", metric_type: str = "charge_metered", **fields: Any) -> MetricCreate:
    data: dict[str, Any] = {"name": "M", "code": "m", "unit": "u", "event_name": "e",
                            "aggregation": aggregation, "metric_type": metric_type}
    if aggregation in ("sum", "max", "latest", "min"):
        data["value_property"] = "v"
    if aggregation == "unique_count":
        data["distinct_by"] = "user"
    data.update(fields)
    return MetricCreate.model_validate(data)


def plan(**fields: Any) -> Plan:
    return Plan.model_validate({"code": "p", "name": "P", "currency": "USD", **fields})


OCT_WINDOW = (OCT, NOV)


# --- charge_metered -------------------------------------------------------------------------


def test_charge_metered_resets_every_period_and_prices_500_calls_at_ten_cents() -> None:
    frame = frame_of(
        [{"timestamp": at(10, 1 + i % 28, i % 60)} for i in range(500)]
        + [{"timestamp": at(11, 3)} for _ in range(7)]
    )
    m = metric("count")
    chains = {"c1": Schedule(OCT, "month").first(3)}
    rows = billing.usage_chains(frame, m, chains)["c1"]
    assert [r.usage for r in rows] == [D(500), D(7), D(0)]
    assert all(r.available is None and r.carryover is None and r.rejected is None and r.overage is None for r in rows)
    p = plan(charges=[{"metric": "m", "model": "standard", "unit_price": "0.10"}])
    assert billing.price_usage(p, rows[0])[0] == D("50.00")
    assert str(billing.price_usage(p, rows[0])[0]) == "50.00"


def test_charge_metered_gives_customers_without_events_zero() -> None:
    frame = frame_of([{"timestamp": at(10)}, {"timestamp": at(10), "customer_id": "c2"}])
    out = billing.charge_metered(frame, metric("count"), {"c1": OCT_WINDOW, "c3": OCT_WINDOW})
    assert set(out) == {"c1", "c3"}
    assert out["c1"].usage == 1 and out["c3"].usage == 0 and out["c3"].events == 0


def test_charge_metered_windows_are_per_customer() -> None:
    frame = frame_of([{"timestamp": at(10, 10)}, {"timestamp": at(10, 20), "customer_id": "c2"}])
    mid = datetime(2026, 10, 15, tzinfo=UTC)
    out = billing.charge_metered(frame, metric("count"), {"c1": (OCT, mid), "c2": (OCT, mid)})
    assert out["c1"].usage == 1 and out["c2"].usage == 0
    out = billing.charge_metered(frame, metric("count"), {"c1": (mid, NOV), "c2": (mid, NOV)})
    assert out["c1"].usage == 0 and out["c2"].usage == 1


# --- charge_recurring -----------------------------------------------------------------------


def test_charge_recurring_unibee_example_100_150_225_never_resets() -> None:
    frame = frame_of([
        {"timestamp": at(10), "properties": {"v": 100}},
        {"timestamp": at(11), "properties": {"v": 50}},
        {"timestamp": at(12), "properties": {"v": 75}},
    ])
    m = metric("sum", "charge_recurring")
    rows = billing.usage_chains(frame, m, {"c1": Schedule(OCT, "month").first(4)})["c1"]
    assert [r.usage for r in rows] == [D(100), D(150), D(225), D(225)]
    # the per-event count still belongs to each period (a percentage fee charges each event once)
    assert [r.period_events for r in rows] == [1, 1, 1, 0]
    assert [r.events for r in rows] == [1, 2, 3, 3]


def test_charge_recurring_counts_events_before_the_anchor_however_early() -> None:
    frame = frame_of([
        {"timestamp": at(1, year=2020), "properties": {"v": 1000}},
        {"timestamp": at(10), "properties": {"v": 1}},
    ])
    out = billing.charge_recurring(frame, metric("sum", "charge_recurring"), {"c1": OCT_WINDOW})
    assert out["c1"].usage == D(1001)


def test_charge_recurring_keeps_groups_of_the_running_usage() -> None:
    frame = frame_of([
        {"timestamp": at(10), "properties": {"v": 2, "region": "eu"}},
        {"timestamp": at(11), "properties": {"v": 3, "region": "us"}},
        {"timestamp": at(11), "properties": {"v": 4, "region": "eu"}},
    ])
    m = metric("sum", "charge_recurring", group_by=["region"])
    out = billing.charge_recurring(frame, m, {"c1": (NOV, DEC)})["c1"]
    assert out.usage == 9
    assert {g.group["region"]: g.value for g in out.groups} == {"eu": D(6), "us": D(3)}


# --- limit_metered --------------------------------------------------------------------------


def test_limit_metered_count_rejects_past_the_limit_and_resets() -> None:
    frame = frame_of([{"timestamp": at(10, 1 + i)} for i in range(5)] + [{"timestamp": at(11)}])
    m = metric("count", "limit_metered")
    rows = billing.usage_chains(frame, m, {"c1": Schedule(OCT, "month").first(2)}, quota=_quota(3))["c1"]
    assert [(r.usage, r.rejected, r.available) for r in rows] == [(D(3), 2, D(3)), (D(1), 0, D(3))]
    assert rows[0].carryover is None and rows[0].overage is None  # unused quota is lost


def test_limit_metered_count_limit_admits_whole_events_only() -> None:
    frame = frame_of([{"timestamp": at(10, 1 + i)} for i in range(5)])
    out = billing.limit_metered(frame, metric("count", "limit_metered"), {"c1": OCT_WINDOW}, limit=D("2.5"))
    assert (out["c1"].usage, out["c1"].rejected) == (D(2), 3)


def test_limit_metered_sum_takes_events_in_time_order_and_later_small_ones_fit() -> None:
    # store order differs from time order: time order is 400, 500, 200 (rejected), 100
    frame = frame_of([
        {"timestamp": at(10, 4), "properties": {"v": 100}},
        {"timestamp": at(10, 1), "properties": {"v": 400}},
        {"timestamp": at(10, 3), "properties": {"v": 200}},
        {"timestamp": at(10, 2), "properties": {"v": 500}},
    ])
    out = billing.limit_metered(frame, metric("sum", "limit_metered"), {"c1": OCT_WINDOW}, limit=D(1000))["c1"]
    assert (out.usage, out.rejected, out.events) == (D(1000), 1, 4)


def test_limit_metered_ties_on_timestamp_follow_store_order() -> None:
    same = at(10, 2)
    frame = frame_of([
        {"timestamp": same, "properties": {"v": 7}},
        {"timestamp": same, "properties": {"v": 5}},
    ])
    out = billing.limit_metered(frame, metric("sum", "limit_metered"), {"c1": OCT_WINDOW}, limit=D(10))["c1"]
    assert (out.usage, out.rejected) == (D(7), 1)  # 7 came first; 5 would make 12
    latest = billing.limit_metered(frame, metric("latest", "limit_metered"), {"c1": OCT_WINDOW}, limit=D(10))["c1"]
    assert latest.usage == D(5)  # ties: the one stored last


def test_limit_metered_sum_is_exact_with_decimals() -> None:
    frame = frame_of([{"timestamp": at(10, 1, i), "properties": {"v": 0.1}} for i in range(12)])
    out = billing.limit_metered(frame, metric("sum", "limit_metered"), {"c1": OCT_WINDOW}, limit=D("0.3"))["c1"]
    assert (out.usage, out.rejected) == (D("0.3"), 9)


def test_limit_metered_sum_with_values_too_large_for_int64_uses_exact_decimals() -> None:
    frame = frame_of([{"timestamp": at(10, 1, i), "properties": {"v": v}} for i, v in enumerate(
        ["100000000000000000000.5", "200000000000000000000", "50000000000000000000.25"])])
    out = billing.limit_metered(frame, metric("sum", "limit_metered"), {"c1": OCT_WINDOW},
                                limit=D("200000000000000000000"))["c1"]
    assert (out.usage, out.rejected) == (D("150000000000000000000.75"), 1)


def test_limit_metered_sum_skipped_values_are_not_rejected() -> None:
    frame = frame_of([
        {"timestamp": at(10, 1), "properties": {"v": 8}},
        {"timestamp": at(10, 2), "properties": {"v": "lots"}},
        {"timestamp": at(10, 3), "properties": {}},
        {"timestamp": at(10, 4), "properties": {"v": 5}},
        {"timestamp": at(10, 5), "properties": {"v": -3}},
        {"timestamp": at(10, 6), "properties": {"v": 5}},
    ])
    out = billing.limit_metered(frame, metric("sum", "limit_metered"), {"c1": OCT_WINDOW}, limit=D(10))["c1"]
    # 8 ok; skip; skip; 5 rejected (13); -3 ok (5); 5 ok (10)
    assert (out.usage, out.rejected, out.skipped, out.events) == (D(10), 1, 2, 6)


def test_limit_metered_unique_count_known_values_pass_new_ones_need_room() -> None:
    users = ["a", "b", "a", "c", "b", "c", None, "d"]
    frame = frame_of([
        {"timestamp": at(10, 1, i), "properties": {} if u is None else {"user": u}} for i, u in enumerate(users)
    ])
    out = billing.limit_metered(frame, metric("unique_count", "limit_metered"), {"c1": OCT_WINDOW}, limit=D(2))["c1"]
    # a, b admitted; a, b again pass; c (twice) and d refused; the missing user is skipped
    assert (out.usage, out.rejected, out.skipped) == (D(2), 3, 1)


def test_limit_metered_max_and_latest_compare_each_value_with_the_limit() -> None:
    frame = frame_of([
        {"timestamp": at(10, 1), "properties": {"v": 5}},
        {"timestamp": at(10, 3), "properties": {"v": 12}},
        {"timestamp": at(10, 2), "properties": {"v": 8}},
    ])
    mx = billing.limit_metered(frame, metric("max", "limit_metered"), {"c1": OCT_WINDOW}, limit=D(10))["c1"]
    assert (mx.usage, mx.rejected) == (D(8), 1)
    lt = billing.limit_metered(frame, metric("latest", "limit_metered"), {"c1": OCT_WINDOW}, limit=D(10))["c1"]
    assert (lt.usage, lt.rejected) == (D(8), 1)  # 12 is the newest but was rejected
    all_out = billing.limit_metered(frame, metric("max", "limit_metered"), {"c1": OCT_WINDOW}, limit=D(1))["c1"]
    assert (all_out.usage, all_out.rejected) == (D(0), 3)


def test_limit_metered_refuses_min() -> None:
    m = MetricCreate.model_construct(**{**metric("min").model_dump(), "metric_type": "limit_metered"})
    with pytest.raises(ValueError, match="min"):
        billing.limit_metered(frame_of([{"timestamp": at(10)}]), m, {"c1": OCT_WINDOW}, limit=D(1))


def test_limit_metered_needs_a_quota() -> None:
    with pytest.raises(ValueError, match="needs a quota"):
        billing.usage_chains(frame_of([{"timestamp": at(10)}]), metric("count", "limit_metered"), {"c1": [OCT_WINDOW]})


def _reference(events: list[tuple[int, int, Any]], agg: str, limit: Decimal) -> tuple[Decimal, int]:
    """The contract's rule, one event at a time: (usage, rejected)."""
    used, rejected, known, latest = D(0), 0, set(), None
    best: Decimal | None = None
    for _, _, value in sorted(events, key=lambda e: (e[0], e[1])):
        if agg == "count":
            if used + 1 <= limit:
                used += 1
            else:
                rejected += 1
            continue
        if value is None:
            continue
        if agg == "unique_count":  # distinct text forms, as the metric reads them
            if str(value) in known:
                continue
            if len(known) + 1 <= limit:
                known.add(str(value))
            else:
                rejected += 1
            continue
        v = D(value)
        if agg == "sum":
            if used + v <= limit:
                used += v
            else:
                rejected += 1
        elif v <= limit:
            best = v if best is None or agg == "latest" else max(best, v)
        else:
            rejected += 1
    if agg == "unique_count":
        return D(len(known)), rejected
    if agg in ("max", "latest"):
        return (best if best is not None else D(0)), rejected
    return used, rejected


_event = st.tuples(
    st.sampled_from(["c1", "c2", "c3"]),
    st.integers(0, 6),  # seconds: many ties
    st.one_of(st.none(), st.decimals(min_value=-5, max_value=40, places=2, allow_nan=False, allow_infinity=False)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(_event, max_size=40),
    agg=st.sampled_from(["count", "sum", "unique_count", "max", "latest"]),
    limit=st.decimals(min_value=0, max_value=120, places=1, allow_nan=False, allow_infinity=False),
)
def test_limit_metered_matches_the_sequential_rule(events: list[tuple[str, int, Any]], agg: str, limit: Decimal) -> None:
    records = []
    for customer, second, value in events:
        props = {} if value is None else {"v": str(value), "user": str(value)}
        records.append({"customer_id": customer, "timestamp": at(10, 1, second), "properties": props})
    if not records:
        records = [{"customer_id": "c1", "timestamp": at(9), "properties": {}}]
    frame = frame_of(records)
    out = billing.limit_metered(frame, metric(agg, "limit_metered"), {c: OCT_WINDOW for c in ("c1", "c2", "c3")}, limit=limit)
    for customer in ("c1", "c2", "c3"):
        mine = [(second, i, value) for i, (c, second, value) in enumerate(events) if c == customer]
        assert (out[customer].usage, out[customer].rejected) == _reference(mine, agg, limit), customer


# --- limit_recurring ------------------------------------------------------------------------


def _quota(limit: Any, **fields: Any) -> Any:
    from metering.plans import Quota

    return Quota.model_validate({"metric": "m", "limit": limit, **fields})


def test_limit_recurring_unibee_example_1000_1300_1400() -> None:
    frame = frame_of([
        {"timestamp": at(10), "properties": {"v": 300}},
        {"timestamp": at(10, 20), "properties": {"v": 400}},
        {"timestamp": at(11), "properties": {"v": 900}},
    ])
    m = metric("sum", "limit_recurring")
    rows = billing.usage_chains(frame, m, {"c1": Schedule(OCT, "month").first(3)}, quota=_quota(1000))["c1"]
    assert [r.usage for r in rows] == [D(700), D(900), D(0)]
    assert [r.available for r in rows] == [D(1000), D(1300), D(1400)]
    assert [r.carryover for r in rows][:2] == [D(300), D(400)]
    assert all(r.rejected is None and r.overage == 0 for r in rows)


def test_limit_recurring_max_carryover_caps_what_carries() -> None:
    frame = frame_of([{"timestamp": at(10), "properties": {"v": 700}}])
    rows = billing.limit_recurring(
        frame, metric("sum", "limit_recurring"), {"c1": Schedule(OCT, "month").first(3)},
        limit=D(1000), max_carryover=D(200),
    )["c1"]
    assert [(r.available, r.carryover) for r in rows] == [(D(1000), D(200)), (D(1200), D(200)), (D(1200), D(200))]


def test_limit_recurring_overage_is_billed_at_the_overage_price_or_not_at_all() -> None:
    frame = frame_of([{"timestamp": at(10, 1 + i % 28, i % 60)} for i in range(150)])
    m = metric("count", "limit_recurring")
    rows = billing.usage_chains(frame, m, {"c1": Schedule(OCT, "month").first(2)}, quota=_quota(100))["c1"]
    assert (rows[0].usage, rows[0].overage, rows[0].carryover) == (D(150), D(50), D(0))
    assert (rows[1].available, rows[1].overage) == (D(100), D(0))
    priced = plan(quotas=[{"metric": "m", "limit": 100, "overage_unit_price": "0.5"}])
    assert billing.price_usage(priced, rows[0])[0] == D("25.00")
    unpriced = plan(quotas=[{"metric": "m", "limit": 100}])
    assert billing.price_usage(unpriced, rows[0]) == (None, None)


def test_carry_chain_formula() -> None:
    out = billing.carry_chain([D(700), D(900), D(2000), D(0)], limit=D(1000))
    assert out == [(D(1000), D(300), D(0)), (D(1300), D(400), D(0)), (D(1400), D(0), D(600)), (D(1000), D(1000), D(0))]


def test_limit_recurring_refuses_other_aggregations() -> None:
    m = MetricCreate.model_construct(**{**metric("max").model_dump(), "metric_type": "limit_recurring"})
    with pytest.raises(ValueError, match="count or sum"):
        billing.limit_recurring(frame_of([{"timestamp": at(10)}]), m, {"c1": [OCT_WINDOW]}, limit=D(1))


def test_limit_recurring_customers_with_different_anchors() -> None:
    frame = frame_of([
        {"timestamp": at(10, 20), "properties": {"v": 10}},
        {"timestamp": at(10, 20), "customer_id": "c2", "properties": {"v": 10}},
    ])
    chains = {"c1": Schedule(OCT, "month").first(2),
              "c2": Schedule(datetime(2026, 10, 15, tzinfo=UTC), "month").first(2)}
    out = billing.limit_recurring(frame, metric("sum", "limit_recurring"), chains, limit=D(100))
    assert [r.usage for r in out["c1"]] == [D(10), D(0)]
    assert [r.usage for r in out["c2"]] == [D(10), D(0)]
    assert out["c2"][1].start == datetime(2026, 11, 15, tzinfo=UTC)
    assert out["c2"][1].available == D(190)


# --- schedules and timeline -----------------------------------------------------------------


def test_schedule_chain_to_a_window_runs_through_whole_earlier_periods() -> None:
    s = Schedule(OCT, "month")
    assert s.chain_to((DEC, JAN)) == [(OCT, NOV), (NOV, DEC), (DEC, JAN)]
    mid = datetime(2026, 11, 10, tzinfo=UTC)
    assert s.chain_to((mid, JAN)) == [(OCT, NOV), (mid, JAN)]
    assert s.chain_to((datetime(2026, 9, 1, tzinfo=UTC), OCT)) == [(datetime(2026, 9, 1, tzinfo=UTC), OCT)]


def test_schedule_period_in_month_is_none_before_the_anchor() -> None:
    s = Schedule(datetime(2026, 10, 15, tzinfo=UTC), "month")
    assert s.period_in_month(2026, 9) is None
    assert s.period_in_month(2026, 10) == (datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC))


def test_schedule_in_a_workspace_timezone() -> None:
    anchor = datetime(2026, 9, 30, 22, tzinfo=UTC)  # 1 Oct midnight in Berlin (CEST)
    s = Schedule(anchor, "month", "Europe/Berlin")
    assert s.bounds(1) == (datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 30, 23, tzinfo=UTC))


def test_default_anchor_is_first_of_the_month_of_the_earliest_event() -> None:
    frame = frame_of([{"timestamp": at(11, 20)}, {"timestamp": at(10, 17), "event_name": "other"}])
    assert billing.default_anchor(frame, tz="UTC") == OCT
    assert billing.default_anchor(EventFrame.empty(), tz="UTC") is None


def test_timeline_json_shape_and_nulls_per_metric_type() -> None:
    frame = frame_of([
        {"timestamp": at(10), "properties": {"v": 700}},
        {"timestamp": at(11), "properties": {"v": 1500}},
    ])
    schedules = {"c1": Schedule(OCT, "month")}
    keys = ["start", "end", "usage", "available", "carryover", "rejected", "overage", "amount"]

    recurring = plan(quotas=[{"metric": "m", "limit": 1000, "overage_unit_price": "0.01"}])
    out = billing.timeline_json("m", billing.timeline(frame, metric("sum", "limit_recurring"), recurring, schedules, periods_count=2))
    assert list(out) == ["metric", "timelines"] and out["metric"] == "m"
    periods = out["timelines"][0]["periods"]
    assert out["timelines"][0]["customer_id"] == "c1"
    assert [list(p) for p in periods] == [keys, keys]
    assert periods[0] == {"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z", "usage": "700",
                          "available": "1000", "carryover": "300", "rejected": None, "overage": "0", "amount": "0.00"}
    assert periods[1]["overage"] == "200" and periods[1]["amount"] == "2.00"

    metered = plan(quotas=[{"metric": "m", "limit": 1000}])
    p = billing.timeline_json("m", billing.timeline(frame, metric("sum", "limit_metered"), metered, schedules, periods_count=2))
    first, second = p["timelines"][0]["periods"]
    assert (first["usage"], first["available"], first["rejected"]) == ("700", "1000", 0)
    assert (second["usage"], second["rejected"]) == ("0", 1)
    assert first["carryover"] is None and first["overage"] is None and first["amount"] is None

    charged = plan(charges=[{"metric": "m", "model": "standard", "unit_price": "0.001"}])
    c = billing.timeline_json("m", billing.timeline(frame, metric("sum", "charge_recurring"), charged, schedules, periods_count=2))
    rows = c["timelines"][0]["periods"]
    assert [(r["usage"], r["amount"]) for r in rows] == [("700", "0.70"), ("2200", "2.20")]
    assert all(r[k] is None for r in rows for k in ("available", "carryover", "rejected", "overage"))


def test_timeline_needs_at_least_one_period() -> None:
    with pytest.raises(ValueError):
        billing.timeline(frame_of([{"timestamp": at(10)}]), metric(), plan(), {"c1": Schedule(OCT, "month")}, periods_count=0)


def test_iso_format() -> None:
    assert billing.iso(datetime(2026, 10, 1, tzinfo=UTC)) == "2026-10-01T00:00:00Z"
    assert billing.iso(datetime(2026, 10, 1, 0, 0, 0, 5, tzinfo=UTC)) == "2026-10-01T00:00:00.000005Z"


BIG = "12345678901234567890123456789012345.25"  # 37 significant digits: beyond Decimal's default 28


def test_huge_values_stay_exact_beyond_28_digits() -> None:
    frame = frame_of([{"timestamp": at(10, 1, i), "properties": {"v": BIG}} for i in range(3)])
    hard = billing.limit_metered(frame, metric("sum", "limit_metered"), {"c1": OCT_WINDOW}, limit=D(BIG) * 2)["c1"]
    assert (hard.usage, hard.rejected) == (D("24691357802469135780246913578024690.5"), 1)
    rows = billing.limit_recurring(frame, metric("sum", "limit_recurring"), {"c1": Schedule(OCT, "month").first(2)},
                                   limit=D(1))["c1"]
    assert rows[0].overage == D("37037036703703703670370370367037034.75")
    assert rows[1].available == D(1)
    p = plan(quotas=[{"metric": "m", "limit": 1, "overage_unit_price": "1"}])
    [period] = billing.timeline_json("m", billing.timeline(
        frame, metric("sum", "limit_recurring"), p, {"c1": Schedule(OCT, "month")}, periods_count=1))["timelines"][0]["periods"]
    assert period["usage"] == "37037036703703703670370370367037035.75"
    assert period["overage"] == "37037036703703703670370370367037034.75"
    assert period["amount"] == "37037036703703703670370370367037034.75"


_spread_event = st.tuples(
    st.sampled_from(["c1", "c2", "c3"]),
    st.integers(-40, 100),  # days from 1 October: before the chain, inside, after it
    st.integers(0, 3),  # seconds: ties
    st.one_of(st.none(), st.sampled_from(["1", "2.5", "-3", "40", "x", "7"])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(_spread_event, min_size=1, max_size=40),
    agg=st.sampled_from(["count", "sum", "max", "min", "unique_count", "latest"]),
    kind=st.sampled_from(["charge_metered", "charge_recurring", "limit_metered"]),
)
def test_one_pass_chains_equal_one_window_at_a_time(events: list[tuple[str, int, int, Any]], agg: str, kind: str) -> None:
    if kind == "limit_metered" and agg == "min":
        agg = "max"
    from datetime import timedelta

    records = [
        {"customer_id": c, "timestamp": int((OCT + timedelta(days=d, seconds=s)).timestamp()),
         "properties": {} if v is None else {"v": v, "user": v}}
        for c, d, s, v in events
    ]
    frame = frame_of(records)
    m = metric(agg, kind)
    quota = _quota(7) if kind == "limit_metered" else None
    chain = Schedule(OCT, "month").first(3)
    customers = ["c1", "c2", "c3", "c4"]
    together = billing.usage_chains(frame, m, {c: chain for c in customers}, quota=quota)
    for w, window in enumerate(chain):
        alone = billing.usage_chains(frame, m, {c: [window] for c in customers}, quota=quota)
        for c in customers:
            a, b = together[c][w], alone[c][0]
            assert (a.start, a.end, a.usage, a.events, a.skipped, a.period_events, a.rejected, a.available) == (
                b.start, b.end, b.usage, b.events, b.skipped, b.period_events, b.rejected, b.available), (c, w)
