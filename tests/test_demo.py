"""The demo workspace (metering.demo): a valid workspace that uses every charge model, about
50–100k simulated events whose history ends now, the SMS stream of UniBee's carryover example,
and one-call load / reset. Most tests pin "now" (NOW, mid-month) so their figures are fixed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from metering import billing, demo, ingest, invoices, metrics, plan_store, store
from metering.frame import EventFrame
from metering.models import MetricType
from metering.workspace import export_workspace, parse_workspace, workspace_from_store

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # the demo is built relative to "now"
MONTHS = ("2026-09", "2026-10", "2026-11")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, demo.DemoSummary]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    engine = store.make_engine(f"sqlite:///{path}")
    summary = demo.load_demo(engine, now=NOW)
    yield engine, summary
    engine.dispose()


def test_workspace_document_is_valid_and_covers_every_model() -> None:
    ws = parse_workspace(demo.workspace_document())
    codes = {m.code: m for m in ws.metrics}
    assert {"api_requests", "llm_tokens", "storage_gb", "unique_users", "sms_credits"} <= set(codes)
    assert codes["llm_tokens"].group_by == ["model"]
    assert codes["sms_credits"].metric_type == MetricType.limit_recurring
    assert codes["sms_credits"].event_name == demo.SMS_EVENT
    # the quick templates' definitions (contract §2)
    for key in ("api_requests", "llm_tokens", "storage_gb", "unique_users"):
        template = metrics.TEMPLATES[key]
        assert codes[key].event_name == template.event_name
        assert codes[key].aggregation.value == template.aggregation
    assert [p.name for p in ws.plans] == ["Starter", "Growth", "Scale"]
    models = {c.model for p in ws.plans for c in p.charges}
    assert models == {"standard", "graduated", "volume", "package", "percentage"}
    for plan in ws.plans:
        assert plan.base_fee > 0 and plan.included_credit > 0 and plan.fixed_charges
        assert {c.metric for c in plan.charges} == {m.code for m in ws.metrics if m.metric_type.value.startswith("charge")}
        assert plan.quota_for("sms_credits") is not None
    # every customer is subscribed; cus_unibee is on a plan with a 1000-credit SMS quota, no cap
    assert {s.customer_id for s in ws.subscriptions} == set(demo.CUSTOMERS) | {demo.UNIBEE}
    quota = ws.plan(ws.subscription(demo.UNIBEE).plan).quota_for("sms_credits")
    assert quota.limit == D(1000) and quota.max_carryover is None


def test_sms_stream_counts_per_customer_and_month() -> None:
    df = demo.sms_frame(NOW)
    months = Counter(zip(df["customer_id"], df["timestamp"].str[:7]))
    # the current month holds its share up to now: 450 × (24 days 15.5 h / 30 days) = 369.7 → 369
    assert [months[(demo.UNIBEE, m)] for m in MONTHS] == [700, 900, 369]
    for cid, counts in demo.sms_counts(NOW).items():
        assert [months[(cid, m)] for m in MONTHS] == list(counts)
        assert counts[:2] == demo.SMS_COUNTS[cid][:2]
    assert (df["event_name"] == demo.SMS_EVENT).all()
    assert df["timestamp"].is_monotonic_increasing and df["timestamp"].max() < "2026-11-25T15:30:00Z"
    assert not df.duplicated(["customer_id", "timestamp"]).any()


def test_the_history_ends_now_whatever_today_is() -> None:
    """Issue 8 #4: events to December 31 when today was November 25; now the history ends now."""
    for now in (NOW, datetime(2027, 3, 1, 0, 0, 5, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, tzinfo=UTC)):
        history = demo.span(now)
        stamps = [t for f in [*demo.usage_frames(now), demo.sms_frame(now)] for t in (f["timestamp"].min(), f["timestamp"].max())]
        assert max(stamps) < now.strftime("%Y-%m-%dT%H:%M:%SZ") and min(stamps) >= f"{history.start:%Y-%m-%d}"
        assert history.start.day == 1 and (history.end - history.start).days in range(59, 93)
    before = datetime.now(UTC)
    assert before <= demo.span().end <= datetime.now(UTC)  # by default, "now" is now
    assert demo.workspace_document(NOW)["subscriptions"][0]["start"] == "2026-09-01"


def test_sample_file_is_the_demo_sms_stream() -> None:
    path = ROOT / "sample_events" / "sms_credits.csv"
    assert path.read_text(encoding="utf-8") == demo.sms_csv_text()
    assert "sms_credits.csv" in (ROOT / "sample_events" / "README.md").read_text(encoding="utf-8")


def test_sample_file_alone_shows_the_unibee_carryover() -> None:
    """sms_credits.csv (the demo's stream of three whole months, Oct–Dec 2026) with a limit-1000
    quota and no subscription (default anchor: 2026-10-01)."""
    parsed = ingest.read_events(ROOT / "sample_events" / "sms_credits.csv")
    assert not parsed.errors
    frame = EventFrame.from_parsed(parsed)
    ws = parse_workspace({
        "metrics": [m for m in demo.metric_documents() if m["code"] == "sms_credits"],
        "plans": [{"code": "sms", "name": "SMS", "currency": "USD",
                   "quotas": [{"metric": "sms_credits", "limit": "1000"}]}],
    })
    anchor = billing.default_anchor(frame, tz="UTC")
    assert anchor == datetime(2026, 10, 1, tzinfo=UTC)
    rows = billing.timeline(frame, ws.metric("sms_credits"), ws.plan("sms"),
                            {demo.UNIBEE: billing.Schedule(anchor, "month")}, periods_count=3)[demo.UNIBEE]
    assert [(r.usage, r.available, r.carryover) for r in rows] == [
        (D(700), D(1000), D(300)), (D(900), D(1300), D(400)), (D(450), D(1400), D(950))]


def test_usage_frames_are_deterministic_and_sized_for_a_demo() -> None:
    first, second = demo.usage_frames(NOW), demo.usage_frames(NOW)
    assert all(a.equals(b) for a, b in zip(first, second))
    total = sum(len(f) for f in first) + len(demo.sms_frame(NOW))
    assert 50_000 <= total <= 100_000
    customers = set().union(*(set(f["customer_id"]) for f in first))
    assert customers == set(demo.CUSTOMERS)
    stamps = sorted(t for f in first for t in (f["timestamp"].min(), f["timestamp"].max()))
    assert stamps[0] >= "2026-09-01" and stamps[-1] < "2026-11-25T15:30:00Z"


def test_load_demo_fills_the_store(loaded: tuple[Engine, demo.DemoSummary]) -> None:
    engine, summary = loaded
    assert summary.rejected == 0 and summary.duplicates == 0
    assert summary.events == store.event_count(engine)
    assert summary.events == sum(len(f) for f in demo.usage_frames(NOW)) + len(demo.sms_frame(NOW))
    assert (summary.start, summary.end) == (datetime(2026, 9, 1, tzinfo=UTC), NOW)
    assert (summary.metrics, summary.plans, summary.subscriptions) == (6, 3, 11)
    doc = export_workspace(engine)
    assert doc["timezone"] == "UTC"
    assert {m["code"] for m in doc["metrics"]} == {m["code"] for m in demo.metric_documents()}
    assert len(plan_store.list_subscriptions(engine)) == 11


def test_loaded_demo_bills_and_shows_the_unibee_timeline(loaded: tuple[Engine, demo.DemoSummary]) -> None:
    engine, _ = loaded
    frame = EventFrame.from_store(engine)
    ws = workspace_from_store(engine)
    october = invoices.run(frame, ws, month=(2026, 10))  # the last complete month
    assert [i.customer_id for i in october] == sorted(s.customer_id for s in ws.subscriptions)
    assert all(i.total > 0 for i in october)
    sub = ws.subscription(demo.UNIBEE)
    plan = ws.plan(sub.plan)
    billed = invoices.assignments(frame, plans=ws.plans, subscriptions=ws.subscriptions, plan_code=plan.code,
                                  customer_id=demo.UNIBEE)
    rows = billing.timeline(frame, ws.metric("sms_credits"), plan, {demo.UNIBEE: billed[0].schedule("UTC")},
                            periods_count=3)[demo.UNIBEE]
    assert [r.available for r in rows] == [D(1000), D(1300), D(1400)]
    assert [r.usage for r in rows] == [D(700), D(900), D(369)]


def test_load_demo_again_replaces_and_reset_empties(tmp_path: Path) -> None:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    metrics.create_metric(engine, data={"name": "Old", "code": "old", "unit": "x", "aggregation": "count"})
    ingest.import_file(engine, ROOT / "sample_events" / "api_requests.json")
    first = demo.load_demo(engine)
    assert metrics.get_metric(engine, code="old") is None
    second = demo.load_demo(engine)
    assert second.events == first.events == store.event_count(engine)
    demo.reset(engine)
    assert store.event_count(engine) == 0
    assert metrics.list_metrics(engine) == [] and plan_store.list_plans(engine) == []
    assert plan_store.list_subscriptions(engine) == [] and plan_store.get_timezone(engine) == "UTC"
    engine.dispose()
