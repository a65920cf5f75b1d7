"""The live-quota domain (metering.quotas): entitlement math against an obviously-correct
reference (the sequential §3 walk, carryover chains), the ledger kept in memory by API events
against a computation from scratch, no-quota cases, alert thresholds on plans and their round
trip through the workspace file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metering import metrics, plan_store, store
from metering.api.backend import Backend
from metering.engine import event_writer
from metering.plans import Plan, plan_errors
from metering.quotas import entitlement as ent_mod
from metering.quotas.entitlement import NoQuota, check
from metering.quotas.ledger import Ledger
from metering.workspace import export_workspace, import_document

UTC = timezone.utc
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
START = datetime(2026, 9, 1, tzinfo=UTC)


def us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def metric_data(kind: str, agg: str) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "Quota metric", "code": "q", "unit": "units", "metric_type": kind,
                            "event_name": "use", "aggregation": agg}
    if agg in ("sum", "max", "latest"):
        data["value_property"] = "v"
    if agg == "unique_count":
        data["distinct_by"] = "v"
    return data


def workspace(kind: str, agg: str, quota: dict[str, Any]) -> Any:
    engine = store.make_engine("sqlite://")
    metrics.create_metric(engine, data=metric_data(kind, agg))
    plan_store.save_plan(engine, plan={"code": "p", "name": "P", "currency": "USD", "quotas": [{"metric": "q", **quota}]})
    plan_store.set_subscription(engine, customer_id="c1", plan_code="p", start="2026-09-01")
    return engine


def fresh_check(engine: Any, cid: str = "c1", metric: str = "q", **kwargs: Any) -> Any:
    """check() with a new ledger: computed from the store, nothing kept in memory."""
    ledger = Ledger(engine)
    original = ent_mod.ledger_for
    ent_mod.ledger_for = lambda _e: ledger  # type: ignore[assignment]
    try:
        return check(engine, cid, metric, **kwargs)
    finally:
        ent_mod.ledger_for = original  # type: ignore[assignment]


# --- the reference ---------------------------------------------------------------------------


def as_number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except Exception:  # noqa: BLE001
        return None


def reference_limit(values: list[Any], agg: str, limit: Decimal) -> Decimal:
    """§3 limit_metered, one event at a time in time order: an event that would break the
    limit is not counted."""
    used, known, seen = Decimal(0), set(), False
    for value in values:
        if agg == "count":
            if used + 1 <= limit:
                used += 1
            continue
        if agg == "unique_count":
            if value is None:
                continue
            text = str(value)
            if text in known or len(known) + 1 <= limit:
                known.add(text)
            used = Decimal(len(known))
            continue
        number = as_number(value)
        if number is None:
            continue
        if agg == "sum":
            if number < 0 or used + number <= limit:
                used += number
        elif number <= limit:  # max, latest
            used = number if agg == "latest" or not seen else max(used, number)
            seen = True
    return used


def reference_fits(agg: str, limit: Decimal, used: Decimal, quantity: Decimal) -> bool:
    return used + quantity <= limit if agg in ("count", "sum", "unique_count") else quantity <= limit


# --- limit_metered against the reference -----------------------------------------------------

VALUES = {
    "count": st.none(),
    "sum": st.one_of(st.integers(-3, 30), st.sampled_from(["2.5", "abc", None, True])),
    "max": st.one_of(st.integers(-3, 30), st.sampled_from(["7.5", "abc", None])),
    "latest": st.one_of(st.integers(-3, 30), st.sampled_from(["7.5", None])),
    "unique_count": st.one_of(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(1, 3), st.none()),
}


@st.composite
def scenarios(draw: Any) -> tuple[str, Decimal, list[tuple[str, int, Any]]]:
    agg = draw(st.sampled_from(sorted(VALUES)))
    limit = Decimal(draw(st.sampled_from(["0", "1", "2", "2.5", "3", "10", "25", "40"])))
    events = draw(st.lists(st.tuples(
        st.sampled_from(["c1", "c1", "c1", "c2"]),
        st.integers(0, 85 * 24) ,  # hours after 2026-09-01: three periods, up to late November
        VALUES[agg],
    ), max_size=25))
    return agg, limit, events


@given(scenarios(), st.sampled_from(["0", "1", "2.5", "7"]))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_limit_metered_entitlement_matches_the_sequential_rule(scenario, quantity):
    agg, limit, events = scenario
    engine = workspace("limit_metered", agg, {"limit": str(limit)})
    rows = []
    for n, (cid, hours, value) in enumerate(events):
        props = {} if value is None else {"v": value}
        rows.append(("use", cid, us(START + timedelta(hours=hours)), f"k{n}", json.dumps(props)))
    event_writer(engine).insert_rows(rows, import_id=None)
    got = check(engine, "c1", "q", quantity=Decimal(quantity), now=NOW)
    period = [(ts, n, json.loads(props).get("v")) for n, (_, cid, ts, _, props) in enumerate(rows)
              if cid == "c1" and us(datetime(2026, 11, 1, tzinfo=UTC)) <= ts < us(datetime(2026, 12, 1, tzinfo=UTC))]
    used = reference_limit([v for _, _, v in sorted(period)], agg, limit)
    assert got.used == used
    assert got.available == limit and got.limit == limit
    assert got.remaining == max(limit - used, Decimal(0))
    assert got.has_access is (got.remaining > 0)
    assert got.fits is reference_fits(agg, limit, used, Decimal(quantity))
    assert got.carryover is None and got.overage is None
    assert (got.period_start, got.period_end) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    engine.dispose()


# --- limit_recurring: carryover ------------------------------------------------------------


def test_worked_example_of_the_contract():
    engine = workspace("limit_recurring", "sum", {"limit": "1000"})
    rows = [("use", "c1", us(datetime(2026, m, 5, tzinfo=UTC)), f"k{m}", json.dumps({"v": v}))
            for m, v in ((9, 700), (10, 900), (11, 1450))]
    event_writer(engine).insert_rows(rows, import_id=None)
    got = check(engine, "c1", "q", now=NOW)
    assert (got.carryover, got.available, got.used, got.remaining, got.overage) == (400, 1400, 1450, 0, 50)
    assert got.has_access is True and got.fits is True
    assert got.to_json()["carryover"] == "400" and got.to_json()["overage"] == "50"
    engine.dispose()


@given(st.lists(st.integers(0, 40), min_size=3, max_size=3), st.sampled_from([None, "0", "5", "15"]),
       st.sampled_from(["count", "sum"]))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_limit_recurring_carryover_matches_the_chain(per_month, cap, agg):
    quota = {"limit": "20", **({"max_carryover": cap} if cap is not None else {})}
    engine = workspace("limit_recurring", agg, quota)
    rows = []
    for m, amount in zip((9, 10, 11), per_month):
        for i in range(amount if agg == "count" else 1):
            rows.append(("use", "c1", us(datetime(2026, m, 2, tzinfo=UTC) + timedelta(minutes=i)), f"k{m}-{i}",
                         json.dumps({"v": amount})))
    event_writer(engine).insert_rows(rows, import_id=None)
    carry = Decimal(0)
    for used in per_month[:2]:  # the obvious chain: available = limit + carry in
        carry = max(Decimal(20) + carry - used, Decimal(0))
        if cap is not None:
            carry = min(carry, Decimal(cap))
    got = check(engine, "c1", "q", now=NOW)
    assert got.carryover == carry and got.available == 20 + carry and got.used == per_month[2]
    assert got.overage == max(per_month[2] - (20 + carry), 0)
    assert got.remaining == max(20 + carry - per_month[2], 0)
    engine.dispose()


# --- the ledger kept by API events ---------------------------------------------------------


@given(st.sampled_from(["count", "sum", "unique_count", "max", "latest"]),
       st.lists(st.lists(st.tuples(st.sampled_from(["c1", "c2"]), st.integers(0, 12)), min_size=1, max_size=6),
                min_size=1, max_size=5),
       st.sampled_from(["3", "10", "20"]))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_ledger_advanced_by_api_events_equals_a_computation_from_the_store(agg, batches, limit):
    """Live events (times increasing), several batches: the in-memory state after each one is
    what a new ledger computes from the stored events, and nothing past the limit is stored."""
    engine = workspace("limit_metered", agg, {"limit": limit})
    plan_store.set_subscription(engine, customer_id="c1", plan_code="p")  # the default anchor
    plan_store.set_subscription(engine, customer_id="c2", plan_code="p")
    backend = Backend(engine)
    base = datetime.now(UTC) - timedelta(seconds=60)
    n = 0
    for events in batches:
        body = []
        for cid, value in events:
            n += 1
            body.append({"event_name": "use", "customer_id": cid, "timestamp": (base + timedelta(milliseconds=n)).isoformat(),
                         "idempotency_key": f"e{n}", "properties": {"v": value}})
        status, result = backend.ingest(json.dumps({"events": body}).encode())
        assert status == 200 and result["accepted"] + result["rejected"] == len(body)
        for cid in ("c1", "c2"):
            live, scratch = check(engine, cid, "q"), fresh_check(engine, cid)
            assert live == scratch
            if agg in ("count", "sum", "unique_count"):
                assert live.used <= Decimal(limit)
    engine.dispose()


def test_events_stored_elsewhere_are_seen_by_the_next_check():
    engine = workspace("limit_metered", "count", {"limit": "10"})
    assert check(engine, "c1", "q", now=NOW).used == 0
    event_writer(engine).insert_rows([("use", "c1", us(NOW - timedelta(days=1)), "x1", "{}")], import_id=None)
    assert check(engine, "c1", "q", now=NOW).used == 1  # the store's version moved: computed again
    engine.dispose()


# --- no quota ------------------------------------------------------------------------------


def test_no_quota_cases_say_what_is_missing():
    engine = workspace("limit_metered", "count", {"limit": "10"})
    metrics.create_metric(engine, data={**metric_data("charge_metered", "count"), "code": "charged", "name": "Charged"})
    metrics.create_metric(engine, data={**metric_data("limit_metered", "count"), "code": "other", "name": "Other"})
    plan_store.set_subscription(engine, customer_id="later", plan_code="p", start="2027-01-01")
    cases = {("c9", "q"): "no subscription", ("c1", "nope"): "no metric", ("c1", "charged"): "charge_metered",
             ("c1", "other"): "no quota on 'other'", ("later", "q"): "starts 2027-01-01"}
    for (cid, code), words in cases.items():
        with pytest.raises(NoQuota, match=words):
            check(engine, cid, code, now=NOW)
    with pytest.raises(ValueError):
        check(engine, "c1", "q", quantity=Decimal(-1), now=NOW)
    engine.dispose()


# --- alert thresholds on plans -------------------------------------------------------------


def test_alert_thresholds_are_validated_with_sentences():
    base = {"code": "p", "name": "P", "currency": "USD"}
    ok = Plan.model_validate({**base, "quotas": [{"metric": "q", "limit": "5", "alert_thresholds": [100, "80"]}]})
    assert ok.quotas[0].alert_thresholds == [Decimal(80), Decimal(100)]
    for bad, words in (([0], "greater than 0"), ([80, 80], "twice"), (["x"], "not a number"), ("80", "a list"),
                       ([1001], "at most 1000"), (list(range(1, 12)), "at most 10")):
        errors = plan_errors({**base, "quotas": [{"metric": "q", "limit": "5", "alert_thresholds": bad}]})
        assert errors and words in errors[0][1], (bad, errors)
        assert errors[0][0] == "quotas.0.alert_thresholds"


def test_alert_thresholds_round_trip_through_the_workspace_file():
    engine = workspace("limit_recurring", "sum", {"limit": "10", "alert_thresholds": ["80", "100.5"]})
    document = export_workspace(engine)
    assert document["plans"][0]["quotas"][0]["alert_thresholds"] == ["80", "100.5"]
    other = store.make_engine("sqlite://")
    import_document(other, json.loads(json.dumps(document)))
    assert export_workspace(other) == document
    plain = workspace("limit_recurring", "sum", {"limit": "10"})
    assert "alert_thresholds" not in export_workspace(plain)["plans"][0]["quotas"][0]
    for e in (engine, other, plain):
        e.dispose()


def test_hard_limit_and_entitlement_on_every_store(engine, monkeypatch):
    """The same rule over SQLite and PostgreSQL (conftest's `engine`): the ledger follows the
    store's version row on both."""
    monkeypatch.setenv("METERING_API_KEY", "mtr_test_key_for_the_quota_tests_0123456789")
    metrics.create_metric(engine, data=metric_data("limit_metered", "sum"))
    plan_store.save_plan(engine, plan={"code": "p", "name": "P", "currency": "USD", "quotas": [{"metric": "q", "limit": "10"}]})
    plan_store.set_subscription(engine, customer_id="c1", plan_code="p")
    backend = Backend(engine)
    now = datetime.now(UTC) - timedelta(seconds=5)
    body = {"events": [{"event_name": "use", "customer_id": "c1", "timestamp": (now + timedelta(milliseconds=i)).isoformat(),
                        "idempotency_key": f"k{i}", "properties": {"v": 4}} for i in range(4)]}
    status, result = backend.ingest(json.dumps(body).encode())
    assert (status, result["accepted"], result["rejected"]) == (200, 2, 2)
    assert [e["index"] for e in result["errors"]] == [2, 3]
    live = check(engine, "c1", "q", quantity=Decimal(2))
    assert (live.used, live.remaining, live.fits) == (8, 2, True)
    assert live == fresh_check(engine, quantity=Decimal(2))
    event_writer(engine).insert_rows([("use", "c1", us(now), "other", json.dumps({"v": 1}))], import_id=None)
    assert check(engine, "c1", "q").used == 9  # written elsewhere: seen through the store's version


# --- incoming events read as the engine reads stored ones ------------------------------------

JSON_VALUES = st.one_of(
    st.integers(-10**25, 10**25).map(str),
    st.sampled_from(["1.50", "1e3", "-0", "0.1", "2.5E-3", "1" + "0" * 45, "0.0000000000000000001", "-12.000"]),
    st.text(max_size=6).map(json.dumps),
    st.sampled_from([" 12 ", "3.5", "abc", "1e5", "true"]).map(json.dumps),
    st.sampled_from(["true", "false", "null", '{"a": 1}', "[1, 2.50]", "{}"]),
)


@given(JSON_VALUES)
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
def test_incoming_values_are_read_as_the_engine_reads_them(literal):
    """rules.Props (one incoming event) against the engine over the same stored text: the text
    form (unique_count, filters) and the number (sum, max, latest) agree, skips included."""
    from metering import ingest
    from metering.engine.frame import EventFrame
    from metering.models import MetricBase
    from metering.quotas import rules

    text = ingest.canonical_json(ingest.loads_exact('{"v": ' + literal + "}"))
    frame = EventFrame.from_rows([(1, "use", "c1", 0, text)])
    props = rules.properties_of(text)
    base = {"name": "M", "code": "m", "unit": "u", "event_name": "use"}
    grouped = frame.aggregate(MetricBase.model_validate({**base, "aggregation": "count", "group_by": ["v"]}))
    engine_text = grouped.groups[0].group["v"] if grouped.groups else None
    assert rules.text_at(props, "v") == engine_text
    summed = frame.aggregate(MetricBase.model_validate({**base, "aggregation": "sum", "value_property": "v"}))
    ours = rules.number_at(props, "v")
    assert (ours is None) == (summed.skipped == 1)
    if ours is not None:
        assert ours == summed.value


def test_api_events_in_an_earlier_period_change_the_carryover_into_the_current_one():
    engine = workspace("limit_recurring", "sum", {"limit": "100"})
    now = datetime.now(UTC)
    this_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    start = (this_month - timedelta(days=40)).replace(day=1)  # calendar months: two periods before this one
    plan_store.set_subscription(engine, customer_id="c1", plan_code="p", start=start.date().isoformat())
    backend = Backend(engine)
    before = check(engine, "c1", "q")
    late = this_month - timedelta(days=1)  # the previous period (monthly from the start's day)
    body = {"event_name": "use", "customer_id": "c1", "timestamp": late.isoformat(), "idempotency_key": "old", "properties": {"v": 30}}
    assert backend.ingest(json.dumps(body).encode())[0] == 200
    after = check(engine, "c1", "q")
    assert after == fresh_check(engine)
    assert (before.carryover, after.carryover) == (200, 170)
    engine.dispose()


def test_two_processes_on_postgresql_take_turns(postgres_engine):
    """Two ledgers on one PostgreSQL store (two server processes): the advisory lock makes
    them take turns, and each sees the other's events through the store's version row."""
    import threading

    engine = postgres_engine
    metrics.create_metric(engine, data=metric_data("limit_metered", "count"))
    plan_store.save_plan(engine, plan={"code": "p", "name": "P", "currency": "USD", "quotas": [{"metric": "q", "limit": "7"}]})
    plan_store.set_subscription(engine, customer_id="c1", plan_code="p")
    ledgers = [Ledger(engine), Ledger(engine)]
    now = us(datetime.now(UTC)) - 10_000_000
    accepted: list[int] = []

    def run(t: int) -> None:
        ledger = ledgers[t % 2]
        for n in range(4):
            row = ("use", "c1", now + t * 100 + n, f"k{t}-{n}", "{}")
            with ledger.admission() as gate:
                kept, _ = gate.screen([row])
                added = event_writer(engine).insert_rows(kept, import_id=None).added
                gate.stored(kept, added)
            accepted.append(added)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(accepted) == 7
    assert fresh_check(engine).used == 7


def test_unique_count_history_past_the_limit_knows_only_the_values_the_walk_accepted():
    """History imported past a unique_count limit: the values the §3 walk accepted (the first
    `limit` by first use) still pass; a value it refused is refused live too."""
    engine = workspace("limit_metered", "unique_count", {"limit": "2"})
    plan_store.set_subscription(engine, customer_id="c1", plan_code="p")
    base = datetime.now(UTC) - timedelta(minutes=30)
    history = [("use", "c1", us(base + timedelta(minutes=m)), f"h{m}", json.dumps({"v": v}))
               for m, v in ((3, "cy"), (1, "ana"), (2, "bo"), (4, "ana"))]  # stored out of time order
    event_writer(engine).insert_rows(history, import_id=None)
    assert check(engine, "c1", "q").used == 2
    backend = Backend(engine)

    def send(key: str, value: str) -> int:
        body = {"event_name": "use", "customer_id": "c1", "timestamp": datetime.now(UTC).isoformat(),
                "idempotency_key": key, "properties": {"v": value}}
        try:
            return backend.ingest(json.dumps(body).encode())[0]
        except Exception as exc:  # noqa: BLE001 - the API's 422
            return getattr(exc, "status", 500)

    assert [send("a", "ana"), send("b", "bo"), send("c", "cy"), send("d", "dee")] == [200, 200, 422, 422]
    engine.dispose()
