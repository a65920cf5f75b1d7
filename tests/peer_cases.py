"""Workspaces and events for the peer export / import tests: a hand-made one that uses every
field, and hypothesis strategies for random valid workspaces (any field) and for workspaces in
the space Lago and OpenMeter express exactly (for round trips)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from metering import ingest
from metering.frame import EventFrame
from metering.workspace import Workspace, parse_workspace

KITCHEN: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "metrics": [
        {"name": "API calls", "code": "api_calls", "unit": "requests", "aggregation": "count", "event_name": "api.request",
         "group_by": ["endpoint"], "filters": {"status": ["200", "201"], "region": ["eu"]}},
        {"name": "Tokens", "code": "tokens", "unit": "tokens", "aggregation": "sum", "event_name": "tokens",
         "value_property": "usage.tokens", "group_by": ["model"]},
        {"name": "Peak GB", "code": "peak_gb", "unit": "GB", "aggregation": "max", "event_name": "storage",
         "value_property": "gb"},
        {"name": "Low water", "code": "low_water", "unit": "GB", "aggregation": "min", "event_name": "storage",
         "value_property": "gb"},
        {"name": "Users", "code": "users", "unit": "users", "aggregation": "unique_count", "event_name": "users",
         "distinct_by": "user_id"},
        {"name": "Seats now", "code": "seats_now", "unit": "seats", "aggregation": "latest", "event_name": "seats",
         "value_property": "count"},
        {"name": "Stored", "code": "stored", "unit": "GB", "aggregation": "sum", "event_name": "stored",
         "value_property": "gb", "metric_type": "charge_recurring"},
        {"name": "Payments", "code": "payments", "unit": "USD", "aggregation": "sum", "event_name": "payments",
         "value_property": "amount"},
        {"name": "SMS", "code": "sms", "unit": "sms", "aggregation": "count", "event_name": "sms",
         "metric_type": "limit_recurring"},
        {"name": "Builds", "code": "builds", "unit": "builds", "aggregation": "count", "event_name": "builds",
         "metric_type": "limit_metered"},
        {"name": "Bad code", "code": "bad__code_", "unit": "x", "aggregation": "count"},
    ],
    "plans": [
        {"code": "pro", "name": "Pro", "currency": "USD", "interval": "month", "base_fee": "49", "included_credit": "10",
         "fixed_charges": [{"name": "Seats", "quantity": 5, "unit_price": "10"},
                           {"name": "Support", "quantity": "0.5", "unit_price": "100"}],
         "charges": [
             {"metric": "api_calls", "model": "standard", "unit_price": "0.02", "free_units": 1000},
             {"metric": "tokens", "model": "graduated", "free_units": 100, "tiers": [
                 {"up_to": 1000, "unit_price": "0.01", "flat_fee": "5"}, {"up_to": None, "unit_price": "0.005"}]},
             {"metric": "peak_gb", "model": "volume", "tiers": [
                 {"up_to": "10.5", "unit_price": "2"}, {"up_to": None, "unit_price": "1.5"}]},
             {"metric": "low_water", "model": "standard", "unit_price": "1"},
             {"metric": "users", "model": "volume", "free_units": 5, "tiers": [
                 {"up_to": 10, "unit_price": "2"}, {"up_to": None, "unit_price": "1.5", "flat_fee": "3"}]},
             {"metric": "seats_now", "model": "package", "package_size": 10, "package_price": "4", "free_units": 20},
             {"metric": "stored", "model": "standard", "unit_price": "0.1"},
             {"metric": "payments", "model": "percentage", "rate": "2.9", "fixed_fee": "0.3"},
         ],
         "quotas": [{"metric": "sms", "limit": 1000, "max_carryover": 500, "overage_unit_price": "0.01"},
                    {"metric": "builds", "limit": 100}]},
        {"code": "daily", "name": "Daily", "currency": "JPY", "interval": "day", "base_fee": "100",
         "charges": [{"metric": "api_calls", "model": "package", "package_size": "2.5", "package_price": "7"},
                     {"metric": "payments", "model": "percentage", "rate": "1.5", "free_units": "100"}],
         "quotas": [{"metric": "sms", "limit": "10.5", "max_carryover": 0, "overage_unit_price": "2"}]},
        {"code": "weekly", "name": "Weekly", "currency": "KWD", "interval": "week", "base_fee": "1.0005",
         "charges": [{"metric": "api_calls", "model": "standard", "unit_price": "0.0000000000000001"},
                     {"metric": "payments", "model": "percentage", "rate": "2"}]},
    ],
    "subscriptions": [{"customer_id": "acme", "plan": "pro", "start": "2026-10-01"}],
}


def kitchen() -> Workspace:
    return parse_workspace(KITCHEN)


# --------------------------------------------------------------------------- hypothesis

DECIMALS = ["0", "0.02", "1", "2.5", "10", "0.001", "49", "10.005"]
WHOLE = ["1", "10", "100", "1000"]


@st.composite
def tiers(draw: st.DrawFn, *, whole_bounds: bool, flat: bool = True) -> list[dict[str, Any]]:
    bounds = sorted(set(draw(st.lists(st.sampled_from(WHOLE if whole_bounds else [*WHOLE, "2.5", "150.75"]),
                                      min_size=0, max_size=3))), key=float)
    out = [{"up_to": b, "unit_price": draw(st.sampled_from(DECIMALS)),
            "flat_fee": draw(st.sampled_from(["0", "5", "0.5"])) if flat else "0"} for b in bounds]
    out.append({"up_to": None, "unit_price": draw(st.sampled_from(DECIMALS)),
                "flat_fee": draw(st.sampled_from(["0", "3"])) if flat else "0"})
    return out


@st.composite
def charge(draw: st.DrawFn, metric: str, *, exact: bool) -> dict[str, Any]:
    """A charge; `exact` keeps to what both Lago and OpenMeter express exactly."""
    models = ["standard", "graduated", "volume", "package"] + ([] if exact else ["percentage"])
    model = draw(st.sampled_from(models))
    free = draw(st.sampled_from(["0", "0", "100"] if exact else ["0", "100", "0.5"]))
    c: dict[str, Any] = {"metric": metric, "model": model, "free_units": free}
    if model == "standard":
        c["unit_price"] = draw(st.sampled_from(DECIMALS))
    elif model in ("graduated", "volume"):
        c["tiers"] = draw(tiers(whole_bounds=exact))
        if model == "volume" and exact:
            c["free_units"] = "0"
    elif model == "package":
        c["package_size"] = draw(st.sampled_from(WHOLE if exact else [*WHOLE, "2.5"]))
        c["package_price"] = draw(st.sampled_from(DECIMALS))
    else:
        c["rate"] = draw(st.sampled_from(["0", "1.5", "2.9", "100"]))
        c["fixed_fee"] = draw(st.sampled_from(["0", "0.3"]))
    return c


AGGS = ["count", "sum", "max", "min", "unique_count", "latest"]


@st.composite
def metric(draw: st.DrawFn, code: str, *, exact: bool) -> dict[str, Any]:
    agg = draw(st.sampled_from(["count", "sum", "unique_count"] if exact else AGGS))
    if exact:
        kind = draw(st.sampled_from(["charge_metered", "charge_metered", "charge_recurring"]))
        if kind == "charge_recurring" and agg == "count":
            kind = "charge_metered"
    else:
        kind = draw(st.sampled_from(["charge_metered", "charge_recurring", "limit_metered", "limit_recurring"]))
        if kind == "limit_recurring" and agg not in ("count", "sum"):
            agg = "sum"
        if kind == "limit_metered" and agg == "min":
            agg = "max"
    m: dict[str, Any] = {"name": code.title(), "code": code, "unit": draw(st.sampled_from(["units", "tokens"])),
                         "metric_type": kind, "aggregation": agg,
                         "event_name": code if exact else draw(st.sampled_from([code, f"{code}.event"]))}
    if agg in ("sum", "max", "min", "latest"):
        m["value_property"] = draw(st.sampled_from(["tokens", "usage.tokens"] + ([] if exact else ["a-b"])))
    if agg == "unique_count":
        m["distinct_by"] = "user_id"
    m["filters"] = draw(st.sampled_from([{}, {"region": ["us"]}, {"region": ["us", "eu"], "tier": ["gold"]}]))
    m["group_by"] = draw(st.sampled_from([[], ["model"], ["model", "usage.model"]]))
    return m


@st.composite
def workspaces(draw: st.DrawFn, *, exact: bool = False) -> dict[str, Any]:
    n = draw(st.integers(1, 4))
    metrics = [draw(metric(f"m{i}", exact=exact)) for i in range(n)]
    plans = []
    for j in range(draw(st.integers(1, 2))):
        currency = draw(st.sampled_from(["USD"] if exact else ["USD", "JPY", "KWD"]))
        charges, quotas = [], []
        for m in metrics:
            if m["metric_type"].startswith("charge") and draw(st.booleans()):
                charges.append(draw(charge(m["code"], exact=exact)))
            elif m["metric_type"].startswith("limit") and draw(st.booleans()):
                q: dict[str, Any] = {"metric": m["code"], "limit": draw(st.sampled_from(["100", "2.5"]))}
                if m["metric_type"] == "limit_recurring":
                    q["max_carryover"] = draw(st.sampled_from([None, "0", "50"]))
                    q["overage_unit_price"] = draw(st.sampled_from([None, "0.01"]))
                quotas.append({k: v for k, v in q.items() if v is not None})
        fixed = [{"name": f"Seats {k}", "quantity": draw(st.sampled_from(["1", "3", "2.5"])),
                  "unit_price": draw(st.sampled_from(DECIMALS))} for k in range(draw(st.integers(0, 2)))]
        plans.append({
            "code": f"plan_{j}", "name": f"Plan {j}", "currency": currency,
            "interval": draw(st.sampled_from(["month", "week", "year"] if exact else ["day", "week", "month", "year"])),
            "base_fee": draw(st.sampled_from(["0", "49", "19.99"] if exact else ["0", "49", "10.005"])),
            "fixed_charges": fixed, "charges": charges, "quotas": quotas,
            "included_credit": "0" if exact else draw(st.sampled_from(["0", "5"])),
        })
    return {"timezone": "UTC", "metrics": metrics, "plans": plans, "subscriptions": []}


# --------------------------------------------------------------------------- events

START = datetime(2026, 10, 1, tzinfo=timezone.utc)


def events(codes: list[str], *, customers: int = 3, n: int = 400, seed: int = 7) -> EventFrame:
    """Events for metrics whose event name is their code (and for `<code>.event`), over
    October–November 2026, with every property the cases read."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        code = rng.choice(codes)
        name = code if rng.random() < 0.8 else f"{code}.event"
        tokens = rng.choice([1, 5, 120, 999, 2500, "7.25"])
        props = {"tokens": tokens, "usage": {"tokens": tokens, "model": rng.choice(["a", "b"])},
                 "user_id": f"u{rng.randint(1, 30)}", "region": rng.choice(["us", "eu", "ap"]),
                 "tier": rng.choice(["gold", "free"]), "model": rng.choice(["gpt", "claude"])}
        moment = START + timedelta(minutes=rng.randint(0, 60 * 24 * 60))
        records.append((i + 1, {"event_name": name, "customer_id": f"c{rng.randint(1, customers)}",
                                "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "properties": props}))
    parsed = ingest.parse_records(records)
    assert not parsed.errors, parsed.errors[:3]
    return EventFrame.from_parsed(parsed)
