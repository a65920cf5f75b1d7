"""Property: every backtest figure is the sum of the invoices it stands for (contract §7).

For random workspaces (every metric type, every charge model, quotas with carryover and priced
overage, credit, base fees, fixed charges, subscriptions starting anywhere, several timezones
and intervals) and random events, each customer's invoices in each month under each plan equal
what `metering invoice --plan P --period M` gives (`invoices.run` in-process; a few cases
through the installed command), and every total of the JSON document is the sum of those
invoices' totals.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from metering import backtest, ingest, invoices
from metering.backtest import months as bt_months
from metering.billing import Schedule
from metering.frame import EventFrame
from metering.workspace import parse_workspace

D = Decimal
METERING = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "metering")
CUSTOMERS = ["c1", "c2", "c3", "=c4"]  # "=c4": a formula trigger, for the CSV
START = datetime(2026, 8, 1, tzinfo=UTC)
SPAN_DAYS = 160  # Aug 2026 … early Jan 2027

METRICS = [
    {"name": "API calls", "code": "api", "unit": "calls", "event_name": "api", "aggregation": "count",
     "group_by": ["g"]},
    {"name": "Tokens", "code": "tok", "unit": "tokens", "event_name": "tok", "aggregation": "sum", "value_property": "n"},
    {"name": "Storage", "code": "gb", "unit": "GB", "event_name": "gb", "aggregation": "max", "value_property": "n"},
    {"name": "Users", "code": "users", "unit": "users", "event_name": "user", "aggregation": "unique_count",
     "distinct_by": "u"},
    {"name": "Stored", "code": "stored", "unit": "GB", "event_name": "tok", "aggregation": "sum", "value_property": "n",
     "metric_type": "charge_recurring"},
    {"name": "Latest", "code": "latest", "unit": "x", "event_name": "gb", "aggregation": "latest", "value_property": "n",
     "metric_type": "charge_recurring"},
    {"name": "SMS", "code": "sms", "unit": "sms", "event_name": "sms", "aggregation": "sum", "value_property": "n",
     "metric_type": "limit_recurring"},
    {"name": "Seats", "code": "seats", "unit": "seats", "event_name": "api", "aggregation": "count",
     "metric_type": "limit_metered"},
]
CHARGE_METRICS = ["api", "tok", "gb", "users", "stored", "latest"]
EVENT_NAMES = ["api", "tok", "gb", "user", "sms"]

money = st.decimals(min_value=0, max_value=50, places=3, allow_nan=False, allow_infinity=False).map(str)
small_price = st.decimals(min_value=0, max_value=2, places=4, allow_nan=False, allow_infinity=False).map(str)


@st.composite
def charges(draw: st.DrawFn, metric: str) -> dict[str, Any]:
    model = draw(st.sampled_from(["standard", "graduated", "volume", "package", "percentage"]))
    out: dict[str, Any] = {"metric": metric, "model": model}
    if draw(st.booleans()):
        out["free_units"] = str(draw(st.integers(0, 30)))
    if model == "standard":
        out["unit_price"] = draw(small_price)
    elif model in ("graduated", "volume"):
        bounds = sorted(draw(st.sets(st.integers(1, 60), max_size=3)))
        out["tiers"] = [{"up_to": str(b), "unit_price": draw(small_price), "flat_fee": draw(money)} for b in bounds]
        out["tiers"].append({"up_to": None, "unit_price": draw(small_price)})
    elif model == "package":
        out["package_size"] = str(draw(st.integers(1, 20)))
        out["package_price"] = draw(money)
    else:
        out["rate"] = str(draw(st.decimals(0, 100, places=2)))
        if draw(st.booleans()):
            out["fixed_fee"] = draw(small_price)
    return out


@st.composite
def plans(draw: st.DrawFn, code: str, currency: str, interval: str) -> dict[str, Any]:
    plan: dict[str, Any] = {"code": code, "name": code.upper(), "currency": currency, "interval": interval}
    if draw(st.booleans()):
        plan["base_fee"] = draw(money)
    if draw(st.booleans()):
        plan["included_credit"] = draw(money)
    if draw(st.booleans()):
        plan["fixed_charges"] = [{"name": "Seats", "quantity": str(draw(st.integers(0, 5))), "unit_price": draw(money)}]
    plan["charges"] = [draw(charges(m)) for m in draw(st.lists(st.sampled_from(CHARGE_METRICS), unique=True, max_size=4))]
    quotas = []
    if draw(st.booleans()):
        quota: dict[str, Any] = {"metric": "sms", "limit": str(draw(st.integers(0, 40)))}
        if draw(st.booleans()):
            quota["overage_unit_price"] = draw(small_price)
        if draw(st.booleans()):
            quota["max_carryover"] = str(draw(st.integers(0, 30)))
        quotas.append(quota)
    if draw(st.booleans()):
        quotas.append({"metric": "seats", "limit": str(draw(st.integers(0, 5)))})
    plan["quotas"] = quotas
    return plan


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    choice = draw(st.integers(0, 5))
    if choice == 0:  # exactly on a month boundary (UTC)
        month = draw(st.integers(8, 12))
        return datetime(2026, month, 1, tzinfo=UTC) + timedelta(microseconds=draw(st.sampled_from([0, -1, 1])))
    return START + timedelta(seconds=draw(st.integers(0, SPAN_DAYS * 86_400)))


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    tz = draw(st.sampled_from(["UTC", "UTC", "America/New_York", "Asia/Kolkata", "Pacific/Apia"]))
    currency = draw(st.sampled_from(["USD", "USD", "JPY", "KWD"]))
    interval = draw(st.sampled_from(["month", "month", "month", "week", "day", "year"]))
    n_plans = draw(st.integers(2, 4))
    plan_docs = [draw(plans(f"p{i}", currency, interval)) for i in range(n_plans)]
    subs = []
    for cid in draw(st.lists(st.sampled_from([*CUSTOMERS, "quiet"]), unique=True, max_size=3)):
        start: str | None = draw(st.sampled_from([
            None, "2026-08-01", "2026-09-15", "2026-10-01", "2026-10-31", "2026-11-20T13:30:00Z", "2027-03-01",
        ]))
        sub = {"customer_id": cid, "plan": draw(st.sampled_from([p["code"] for p in plan_docs]))}
        if start is not None:
            sub["start"] = start
        subs.append(sub)
    workspace = {"timezone": tz, "metrics": METRICS, "plans": plan_docs, "subscriptions": subs}
    events = []
    for i in range(draw(st.integers(0, 40))):
        name = draw(st.sampled_from(EVENT_NAMES))
        props: dict[str, Any] = {"g": draw(st.sampled_from(["a", "b"]))}
        if draw(st.integers(0, 9)):  # now and then a value is missing (skipped)
            props["n"] = str(draw(st.decimals(0, 30, places=2)))
        props["u"] = draw(st.sampled_from(["u1", "u2", "u3"]))
        events.append({
            "event_name": name, "customer_id": draw(st.sampled_from(CUSTOMERS)),
            "timestamp": draw(instants()).isoformat().replace("+00:00", "Z"),
            "idempotency_key": f"k{i}", "properties": props,
        })
    first = draw(st.sampled_from([(2026, 8), (2026, 9), (2026, 10), (2026, 11)]))
    count = draw(st.integers(1, 5))
    months = [first]
    while len(months) < count:
        months.append(bt_months.following(months[-1]))
    order = draw(st.permutations([p["code"] for p in plan_docs]))
    chosen = list(order[: draw(st.integers(2, n_plans))])
    everyone = sorted({e["customer_id"] for e in events})
    cohort = None
    if everyone and draw(st.booleans()):
        cohort = draw(st.lists(st.sampled_from(everyone + [s["customer_id"] for s in subs]), min_size=1, unique=True))
    return {"workspace": workspace, "events": events, "months": months, "plans": chosen, "cohort": cohort}


def frame_of(events: Sequence[dict[str, Any]]) -> EventFrame:
    parsed = ingest.parse_jsonl("".join(json.dumps(e) + "\n" for e in events))
    assert parsed.errors == [], parsed.errors
    return EventFrame.from_parsed(parsed)


def periods_starting_in(schedule: Schedule, month: tuple[int, int]) -> list[tuple[datetime, datetime]]:
    """Reference: walk the schedule from period 0 and keep the periods starting in the month."""
    lo_m, hi_m = bt_months.bounds(month, schedule.tz)
    out, k = [], 0
    while True:
        lo, hi = schedule.bounds(k)
        if lo >= hi_m:
            return out
        if lo >= lo_m and hi > lo:
            out.append((lo, hi))
        k += 1


def same_invoice(got: invoices.Invoice, want: invoices.Invoice) -> bool:
    """Equal JSON but for the lines' group breakdown: a backtest measures the months in one pass
    per metric, which sums usage without splitting it by group_by (the totals are the same)."""
    a, b = got.to_json(), want.to_json()
    for line in a["lines"] + b["lines"]:
        line.pop("groups")
    assert a == b, (a, b)
    return True


def check(case: dict[str, Any]) -> backtest.Backtest:
    ws = parse_workspace(case["workspace"])
    frame = frame_of(case["events"])
    bt = backtest.run_codes(frame, ws, case["plans"], bt_months.label(case["months"][0]),
                            bt_months.label(case["months"][-1]), customer_ids=case["cohort"])
    assert bt.customers == tuple(sorted(bt.customers))
    cohort = set(bt.customers)
    interval = bt.interval
    doc = bt.to_json()
    for code in case["plans"]:
        plan_doc = next(p for p in doc["plans"] if p["plan"] == code)
        grand = D(0)
        for i, month in enumerate(case["months"]):
            if interval == "month":  # `metering invoice --plan P --period M`, in-process
                ref = {inv.customer_id: inv for inv in invoices.run(frame, ws, plan_code=code, month=month)}
                wanted = set(ref) if case["cohort"] is None else set(ref) & set(case["cohort"])
                assert cohort >= wanted
                for cid in cohort - set(ref):  # chosen without events: `--customer`, as a subscriber
                    ref.update({inv.customer_id: inv for inv in invoices.run(
                        frame, ws, plan_code=code, month=month, customer_id=cid)})
                for cid in cohort:
                    cell = bt.invoices_of(code, cid)[i]
                    if cid in ref:
                        (got,) = cell
                        assert same_invoice(got, ref[cid])
                    else:
                        assert cell == ()
                month_total = sum((ref[c].total for c in cohort if c in ref), D(0))
            else:  # every period starting in the month, each billed as that window
                billed = invoices.assignments(frame, plans=ws.plans, subscriptions=ws.subscriptions, tz=ws.timezone,
                                              plan_code=code)
                anchors = {a.customer_id: a for a in billed}
                month_total = D(0)
                for cid in cohort:
                    a = anchors.get(cid) or invoices.assignments(
                        frame, plans=ws.plans, subscriptions=ws.subscriptions, tz=ws.timezone, plan_code=code,
                        customer_id=cid)[0]
                    want = periods_starting_in(a.schedule(ws.timezone), month)
                    cell = bt.invoices_of(code, cid)[i]
                    assert [(inv.start, inv.end) for inv in cell] == want
                    for inv, window in zip(cell, want):
                        (ref_inv,) = invoices.invoices_for(frame, ws.metrics, [a], tz=ws.timezone, window=window)
                        assert same_invoice(inv, ref_inv)
                        month_total += inv.total
            assert D(plan_doc["months"][i]["total"]) == month_total
            assert bt.month_totals[code][i] == month_total
            grand += month_total
        assert D(plan_doc["total"]) == grand
    # customers' totals are their invoices' totals; changes and counts follow
    base = doc["baseline"]
    for row in doc["customers"]:
        for code in case["plans"]:
            cells = bt.invoices_of(code, row["customer_id"])
            assert D(row["totals"][code]) == sum((inv.total for cell in cells for inv in cell), D(0))
        for code in case["plans"][1:]:
            change = D(row["totals"][code]) - D(row["totals"][base])
            assert D(row["change"][code]) == change
            base_total = D(row["totals"][base])
            want = None if base_total == 0 else format(backtest.percent(change, base_total), "f")
            assert row["change_percent"][code] == want
    for summary in doc["summary"]:
        ups = sum(1 for r in doc["customers"] if D(r["change"][summary["plan"]]) > 0)
        downs = sum(1 for r in doc["customers"] if D(r["change"][summary["plan"]]) < 0)
        assert (summary["customers_up"], summary["customers_down"]) == (ups, downs)
        assert ups + downs + summary["customers_unchanged"] == len(doc["customers"])
    # the CSV's rows add up to the same totals
    for code in case["plans"]:
        rows = [r for r in bt.csv_rows() if r["plan"] == code]
        assert sum((D(r["total"]) for r in rows), D(0)) == bt.totals[code]
    return bt


@settings(max_examples=int(os.environ.get("BACKTEST_EXAMPLES", "120")))
@given(case=scenarios())
def test_backtest_totals_are_the_sums_of_the_invoices(case: dict[str, Any]) -> None:
    check(case)


# --- through the installed command ----------------------------------------------------------


def _run(args: list[str], tmp: Path) -> dict[str, Any]:
    env = {**os.environ, "METERING_DATA_DIR": str(tmp), "DATABASE_URL": f"sqlite:///{tmp}/unused.db"}
    result = subprocess.run([METERING, *args], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@settings(max_examples=3)
@given(case=scenarios().filter(lambda c: c["workspace"]["plans"][0]["interval"] == "month" and c["events"]))
def test_the_command_agrees_with_metering_invoice(case: dict[str, Any], tmp_path_factory: Any) -> None:
    tmp = tmp_path_factory.mktemp("cli")
    ws_path, ev_path = tmp / "ws.json", tmp / "events.jsonl"
    ws_path.write_text(json.dumps(case["workspace"]), encoding="utf-8")
    ev_path.write_text("".join(json.dumps(e) + "\n" for e in case["events"]), encoding="utf-8")
    months = case["months"][:2]
    codes = case["plans"][:2]
    args = ["--workspace", str(ws_path), "--events", str(ev_path)]
    doc = _run(["backtest", *args, "--plans", ",".join(codes), "--from", bt_months.label(months[0]),
                "--to", bt_months.label(months[-1])], tmp)
    assert doc["baseline"] == codes[0] and doc["months"] == [bt_months.label(m) for m in months]
    for code in codes:
        plan_doc = next(p for p in doc["plans"] if p["plan"] == code)
        for i, month in enumerate(months):
            report = _run(["invoice", *args, "--plan", code, "--period", bt_months.label(month)], tmp)
            assert D(plan_doc["months"][i]["total"]) == sum((D(inv["total"]) for inv in report["invoices"]), D(0))
            for row in doc["customers"]:
                mine = [inv for inv in report["invoices"] if inv["customer_id"] == row["customer_id"]]
                assert len(mine) <= 1
        assert D(plan_doc["total"]) == sum((D(m["total"]) for m in plan_doc["months"]), D(0))
