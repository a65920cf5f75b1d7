"""The workspace file (contract §5): typed plans and subscriptions, errors that name the field's
path, export → import → export round trips (same document, same invoices), and the plan store."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from metering import ingest, invoices, metrics, plan_store, store
from metering.frame import EventFrame
from metering.plans import Plan
from metering.workspace import (
    Workspace,
    WorkspaceError,
    export_workspace,
    import_workspace,
    load_workspace,
    parse_workspace,
    workspace_from_store,
    workspace_json,
)

DOC: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "metrics": [
        {"name": "API calls", "code": "api", "unit": "calls", "event_name": "api.request", "aggregation": "count",
         "group_by": ["endpoint"], "filters": {"status": [200, "201"]}},
        {"name": "LLM Tokens", "code": "tokens", "unit": "tokens", "event_name": "llm.tokens", "aggregation": "sum",
         "value_property": "tokens"},
        {"name": "SMS", "code": "sms", "unit": "sms", "aggregation": "count", "metric_type": "limit_recurring"},
    ],
    "plans": [
        {"code": "pro", "name": "Pro", "currency": "usd", "base_fee": 49, "included_credit": "10",
         "fixed_charges": [{"name": "Seats", "quantity": 3, "unit_price": 12.5}],
         "charges": [
             {"metric": "api", "model": "standard", "free_units": 1000, "unit_price": 0.02},
             {"metric": "tokens", "model": "graduated", "tiers": [
                 {"up_to": 100000, "unit_price": "0.00002"}, {"up_to": None, "unit_price": "0.00001", "flat_fee": 1}]},
         ],
         "quotas": [{"metric": "sms", "limit": 1000, "max_carryover": 500, "overage_unit_price": "0.01"}]},
        {"code": "basic", "name": "Basic", "currency": "USD",
         "charges": [{"metric": "api", "model": "package", "package_size": 1000, "package_price": 5}]},
    ],
    "subscriptions": [
        {"customer_id": "acme", "plan": "pro", "start": "2026-10-01"},
        {"customer_id": "beta", "plan": "basic"},
        {"customer_id": "gamma", "plan": "pro", "start": "2026-10-15T08:00:00Z"},
    ],
}


def events_frame() -> EventFrame:
    rows = []
    for i in range(2600):
        rows.append({"event_name": "api.request", "customer_id": ["acme", "beta", "gamma"][i % 3],
                     "timestamp": f"2026-10-{1 + i % 28:02d}T10:00:{i % 60:02d}Z", "idempotency_key": f"a{i}",
                     "properties": {"endpoint": f"/v{i % 2}", "status": 200 if i % 5 else 500}})
    for i in range(50):
        rows.append({"event_name": "llm.tokens", "customer_id": "acme", "timestamp": f"2026-10-{1 + i % 28:02d}T11:00:00Z",
                     "idempotency_key": f"t{i}", "properties": {"tokens": 4321}})
    for i in range(1400):
        rows.append({"event_name": "sms", "customer_id": "acme", "timestamp": f"2026-11-{1 + i % 28:02d}T12:00:{i % 60:02d}Z",
                     "idempotency_key": f"s{i}", "properties": {}})
    parsed = ingest.parse_jsonl("".join(json.dumps(r) + "\n" for r in rows))
    assert parsed.errors == []
    return EventFrame.from_parsed(parsed)


@pytest.fixture
def engine() -> Engine:
    e = store.make_engine("sqlite://")
    yield e
    e.dispose()


def write(tmp_path: Path, doc: Any, name: str = "ws.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


# --- parsing --------------------------------------------------------------------------------


def test_parse_gives_typed_plans_and_subscriptions(tmp_path: Path) -> None:
    ws = load_workspace(write(tmp_path, DOC))
    assert ws.timezone == "Europe/Berlin"
    assert [m.code for m in ws.metrics] == ["api", "tokens", "sms"]
    pro = ws.plan("pro")
    assert isinstance(pro, Plan) and pro.currency == "USD"
    assert str(pro.charges[0].unit_price) == "0.02"  # a JSON number read as exact text, no float noise
    assert [(s.customer_id, s.plan, s.start) for s in ws.subscriptions] == [
        ("acme", "pro", "2026-10-01"), ("beta", "basic", None), ("gamma", "pro", "2026-10-15T08:00:00Z")]
    assert ws.subscription("beta").plan == "basic" and ws.subscription("nobody") is None
    with pytest.raises(WorkspaceError, match="plan 'gold' is not in the workspace"):
        ws.plan("gold")
    with pytest.raises(WorkspaceError, match="metric 'nope' is not in the workspace"):
        ws.metric("nope")


def _broken(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DOC)
    change(doc)
    return doc


BAD_CASES = [
    (lambda d: d["plans"][0]["charges"][1]["tiers"].insert(1, {"up_to": 50, "unit_price": "1"}),
     "plans[0].charges[1].tiers[1].up_to: tiers must be in ascending order of up_to"),
    (lambda d: d["plans"][0]["charges"][0].update(unit_price="abc"),
     "plans[0].charges[0].unit_price: unit_price 'abc' is not a decimal number"),
    (lambda d: d["plans"][0]["charges"][0].update(metric="nope"), "plans[0].charges[0].metric: unknown metric 'nope'"),
    (lambda d: d["plans"][0]["quotas"][0].update(metric="api"),
     "plans[0].quotas[0].metric: 'api' is a charge_metered metric: a quota needs"),
    (lambda d: d["plans"][1].update(charges=[{"metric": "sms", "model": "standard", "unit_price": 1}]),
     "plans[1].charges[0].metric: 'sms' is a limit_recurring metric: a charge needs"),
    (lambda d: d["plans"][1].update(currency="XYZ"), "plans[1].currency: 'XYZ' is not an ISO 4217 currency"),
    (lambda d: d["plans"][1].update(code="pro"), "plans[1].code: 'pro' is used by another plan"),
    (lambda d: d["plans"][0]["fixed_charges"][0].pop("unit_price"), "plans[0].fixed_charges[0].unit_price: unit_price is required"),
    (lambda d: d["plans"].append("x"), "plans[2]: must be an object"),
    (lambda d: d["subscriptions"][1].update(plan="gold"), "subscriptions[1].plan: plan 'gold' is not in the workspace"),
    (lambda d: d["subscriptions"][2].update(customer_id="acme"), "subscriptions[2].customer_id: 'acme' already has a subscription"),
    (lambda d: d["subscriptions"][0].update(start="next tuesday"), "subscriptions[0].start: 'next tuesday' is not a timestamp"),
    (lambda d: d["subscriptions"][0].update(start="2026-02-30"), "subscriptions[0].start: '2026-02-30' is not a valid date"),
    (lambda d: d["subscriptions"][0].update(plna="pro"), "subscriptions[0].plna: unknown field"),
    (lambda d: d["subscriptions"][0].pop("customer_id"), "subscriptions[0].customer_id: is required"),
    (lambda d: d["subscriptions"][0].update(customer_id=7), "subscriptions[0].customer_id: is required"),
    (lambda d: d.update(subscriptions={}), "subscriptions: must be a list"),
    (lambda d: d["metrics"][1].pop("value_property"), "metrics[1].value_property: sum needs a value property"),
    (lambda d: d.update(timezone="Mars/Olympus"), "timezone: 'Mars/Olympus' is not an IANA time zone name"),
    (lambda d: d.update(extra=1), "extra: unknown field"),
]


@pytest.mark.parametrize(("change", "expected"), BAD_CASES, ids=[c[1].split(":")[0] for c in BAD_CASES])
def test_bad_workspace_files_name_the_path(tmp_path: Path, change: Any, expected: str) -> None:
    with pytest.raises(WorkspaceError) as info:
        load_workspace(write(tmp_path, _broken(change)))
    assert str(info.value).startswith(expected), str(info.value)
    assert "\n" not in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not valid JSON: line 1"):
        load_workspace(write(tmp_path, "{nope"))
    with pytest.raises(WorkspaceError, match="cannot read workspace"):
        load_workspace(tmp_path / "missing.json")
    (tmp_path / "latin.json").write_bytes(b'{"timezone": "\xe9"}')
    with pytest.raises(WorkspaceError, match="not UTF-8"):
        load_workspace(tmp_path / "latin.json")
    with pytest.raises(WorkspaceError, match="must be a JSON object"):
        parse_workspace([])


# --- export / import ------------------------------------------------------------------------


def test_export_import_export_is_identical_and_invoices_match(tmp_path: Path, engine: Engine) -> None:
    original = load_workspace(write(tmp_path, DOC))
    import_workspace(engine, original)
    exported = export_workspace(engine)
    assert exported == workspace_json(original)
    assert exported["timezone"] == "Europe/Berlin"
    assert [m["code"] for m in exported["metrics"]] == ["api", "sms", "tokens"]
    assert exported["plans"][1]["charges"][0]["unit_price"] == "0.02"

    second = store.make_engine("sqlite://")
    import_workspace(second, json.loads(json.dumps(exported)))  # through a file's text
    assert export_workspace(second) == exported

    frame = events_frame()
    for month in [(2026, 10), (2026, 11)]:
        before = invoices.report(invoices.run(frame, original, month=month))
        after = invoices.report(invoices.run(frame, workspace_from_store(second), month=month))
        assert after == before
        assert before["invoices"], month
    second.dispose()


def test_import_replace_removes_what_was_there_and_merge_keeps_it(engine: Engine) -> None:
    metrics.create_metric(engine, data={"name": "Old", "code": "old", "unit": "u"})
    plan_store.save_plan(engine, plan={"code": "legacy", "name": "Legacy", "currency": "EUR"})
    plan_store.set_subscription(engine, customer_id="zed", plan_code="legacy")
    import_workspace(engine, DOC, replace=False)
    assert {m.code for m in metrics.list_metrics(engine)} == {"old", "api", "tokens", "sms"}
    assert [p.code for p in plan_store.list_plans(engine)] == ["basic", "legacy", "pro"]
    import_workspace(engine, DOC)  # replace
    assert {m.code for m in metrics.list_metrics(engine)} == {"api", "tokens", "sms"}
    assert [p.code for p in plan_store.list_plans(engine)] == ["basic", "pro"]
    assert [s.customer_id for s in plan_store.list_subscriptions(engine)] == ["acme", "beta", "gamma"]


def test_import_of_a_bad_document_writes_nothing(engine: Engine) -> None:
    import_workspace(engine, DOC)
    before = export_workspace(engine)
    bad = _broken(lambda d: d["subscriptions"][0].update(plan="gold"))
    with pytest.raises(WorkspaceError, match=r"subscriptions\[0\]\.plan"):
        import_workspace(engine, bad)
    assert export_workspace(engine) == before


def test_a_hand_built_workspace_object_is_checked_on_import(engine: Engine) -> None:
    ws = parse_workspace(DOC)
    ws.subscriptions.append(plan_store.SubscriptionData("new", "gold"))
    with pytest.raises(WorkspaceError, match="plan 'gold'"):
        import_workspace(engine, ws)


def test_empty_store_exports_an_empty_workspace(engine: Engine) -> None:
    assert export_workspace(engine) == {"timezone": "UTC", "metrics": [], "plans": [], "subscriptions": []}
    assert workspace_from_store(engine) == Workspace()


# --- the plan store -------------------------------------------------------------------------


def test_plans_using_metric_names_charges_and_quotas(engine: Engine) -> None:
    import_workspace(engine, DOC)
    assert plan_store.plans_using_metric(engine, code="api") == ["basic", "pro"]
    assert plan_store.plans_using_metric(engine, code="sms") == ["pro"]
    assert plan_store.plans_using_metric(engine, code="tokens") == ["pro"]
    assert plan_store.plans_using_metric(engine, code="unused") == []


def test_plan_crud(engine: Engine) -> None:
    saved = plan_store.save_plan(engine, plan={"code": "a", "name": "A", "currency": "eur", "base_fee": "1.10"})
    assert saved.currency == "EUR"
    got = plan_store.get_plan(engine, code="a")
    assert got == saved and str(got.base_fee) == "1.10"
    plan_store.save_plan(engine, plan=got.model_copy(update={"name": "A2"}))
    assert plan_store.get_plan(engine, code="a").name == "A2"
    assert [p.code for p in plan_store.list_plans(engine)] == ["a"]
    assert plan_store.delete_plan(engine, code="a") is True
    assert plan_store.delete_plan(engine, code="a") is False
    assert plan_store.get_plan(engine, code="a") is None


def test_subscription_crud_and_timezone(engine: Engine) -> None:
    plan_store.set_subscription(engine, customer_id="c1", plan_code="pro", start="2026-10-01")
    plan_store.set_subscription(engine, customer_id="c1", plan_code="basic", start=" ")
    assert plan_store.list_subscriptions(engine) == [plan_store.SubscriptionData("c1", "basic", None)]
    assert plan_store.subscriptions_on_plan(engine, code="basic") == ["c1"]
    assert plan_store.get_subscription(engine, customer_id="c1").plan == "basic"
    assert plan_store.delete_subscription(engine, customer_id="c1") is True
    assert plan_store.list_subscriptions(engine) == []
    assert plan_store.get_timezone(engine) == "UTC"
    assert plan_store.set_timezone(engine, timezone=" Asia/Tokyo ") == "Asia/Tokyo"
    assert plan_store.get_timezone(engine) == "Asia/Tokyo"
    with pytest.raises(ValueError, match="IANA"):
        plan_store.set_timezone(engine, timezone="Nowhere/Land")
    assert plan_store.get_timezone(engine) == "Asia/Tokyo"
