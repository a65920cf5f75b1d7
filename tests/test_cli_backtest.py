"""`metering backtest` (contract §7), run as the installed command: on files, on the app's
store, and every bad input as one line on stderr with exit status 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from metering import ingest, store
from metering.workspace import import_workspace
from tests.test_cli_billing import fails, ok, run

WORKSPACE: dict[str, Any] = {
    "timezone": "UTC",
    "metrics": [{"name": "API calls", "code": "api", "unit": "calls", "event_name": "api.request"}],
    "plans": [
        {"code": "base", "name": "Base", "currency": "USD",
         "charges": [{"metric": "api", "model": "standard", "free_units": 1000, "unit_price": "0.02"}]},
        {"code": "pro", "name": "Pro", "currency": "USD", "base_fee": "10",
         "charges": [{"metric": "api", "model": "standard", "unit_price": "0.01"}]},
        {"code": "euro", "name": "Euro", "currency": "EUR", "base_fee": "9",
         "charges": [{"metric": "api", "model": "standard", "unit_price": "0.01"}]},
        {"code": "weekly", "name": "Weekly", "currency": "USD", "interval": "week",
         "charges": [{"metric": "api", "model": "standard", "unit_price": "0.01"}]},
    ],
    "subscriptions": [{"customer_id": "acme", "plan": "base", "start": "2026-10-01"}],
}


def _events() -> str:
    lines = ["event_name,customer_id,timestamp"]
    october, november = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    lines += [f"api.request,acme,{stamp(october + timedelta(minutes=7 * i))}" for i in range(2500)]
    lines += [f"api.request,bob,{stamp(november + timedelta(seconds=i))}" for i in range(500)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    ws = tmp_path / "workspace.json"
    ws.write_text(json.dumps(WORKSPACE), encoding="utf-8")
    ev = tmp_path / "events.csv"
    ev.write_text(_events(), encoding="utf-8")
    return {"ws": str(ws), "ev": str(ev), "tmp": str(tmp_path)}


EXPECTED = {
    "currency": "USD",
    "baseline": "base",
    "months": ["2026-10", "2026-11"],
    "plans": [
        {"plan": "base", "total": "30.00",
         "months": [{"month": "2026-10", "total": "30.00"}, {"month": "2026-11", "total": "0.00"}]},
        {"plan": "pro", "total": "70.00",
         "months": [{"month": "2026-10", "total": "45.00"}, {"month": "2026-11", "total": "25.00"}]},
    ],
    "customers": [
        {"customer_id": "acme", "totals": {"base": "30.00", "pro": "45.00"}, "change": {"pro": "15.00"},
         "change_percent": {"pro": "50.00"}},
        {"customer_id": "bob", "totals": {"base": "0.00", "pro": "25.00"}, "change": {"pro": "25.00"},
         "change_percent": {"pro": None}},
    ],
    "summary": [{"plan": "pro", "total": "70.00", "change": "40.00", "change_percent": "133.33",
                 "customers_up": 2, "customers_down": 0, "customers_unchanged": 0}],
}


def test_backtest_on_files(files: dict[str, str]) -> None:
    # acme: 2,500 calls in October: base 1,500 × $0.02 = $30.00, pro $10 + $25; November pro $10.
    # bob: anchored on 2026-10-01 (the earliest event's month) like acme: pro $10 in October,
    # $10 + 500 × $0.01 in November; base $0 (500 of 1,000 free)
    doc = ok(["backtest", "--workspace", files["ws"], "--events", files["ev"], "--plans", "base,pro",
              "--from", "2026-10", "--to", "2026-11"], files)
    assert doc == EXPECTED
    # acme pays $10 + 2,500 × $0.01 in October and only the base fee in November
    one = ok(["backtest", "--workspace", files["ws"], "--events", files["ev"], "--plans", "pro,base",
              "--from", "2026-10", "--to", "2026-11", "--customer", "acme"], files)
    assert one["baseline"] == "pro" and [c["customer_id"] for c in one["customers"]] == ["acme"]
    assert one["customers"][0]["change"] == {"base": "-15.00"}
    assert one["summary"][0]["customers_down"] == 1


def test_backtest_on_the_apps_store(files: dict[str, str]) -> None:
    url = f"sqlite:///{files['tmp']}/app.db"
    engine = store.make_engine(url)
    import_workspace(engine, WORKSPACE)
    ingest.import_file(engine, files["ev"])
    engine.dispose()
    doc = ok(["backtest", "--plans", "base,pro", "--from", "2026-10", "--to", "2026-11"], files,
             env={"DATABASE_URL": url})
    assert doc == EXPECTED


@pytest.mark.parametrize("args, message", [
    (["--plans", "base,nope"], "plan 'nope' is not in the workspace (plans: base, euro, pro, weekly)"),
    (["--plans", "base,euro"], "plans must share a currency: 'base' bills in USD, 'euro' in EUR"),
    (["--plans", "base,weekly"], "plans must share a billing interval: 'base' bills every month, 'weekly' every week"),
    (["--plans", "base"], "pick at least 2 plans"),
    (["--plans", "base,,pro"], "--plans: write plan codes separated by commas"),
    (["--plans", "base,base"], "plan 'base' is listed twice"),
    (["--plans", "base,pro", "--from", "2026-13"], "--from: period '2026-13' is not a month"),
    (["--plans", "base,pro", "--to", "2026-09"], "--to 2026-09 is before --from 2026-10"),
    (["--plans", "base,pro", "--to", "2028-10"], "a backtest covers at most 24 months: 2026-10 to 2028-10 is 25"),
    (["--plans", "base,pro", "--customer", "nobody"], "customer 'nobody' has no events and no subscription"),
])
def test_bad_input_is_one_line_and_exit_2(files: dict[str, str], args: list[str], message: str) -> None:
    full = ["backtest", "--workspace", files["ws"], "--events", files["ev"], "--from", "2026-10", "--to", "2026-11", *args]
    line = fails(full, files)
    assert line.startswith("metering: error: ") and message in line, line


def test_missing_arguments_and_unreadable_files(files: dict[str, str]) -> None:
    assert "--plans" in fails(["backtest", "--workspace", files["ws"], "--from", "2026-10", "--to", "2026-11"], files)
    line = fails(["backtest", "--workspace", files["ws"], "--events", files["tmp"] + "/missing.csv", "--plans",
                  "base,pro", "--from", "2026-10", "--to", "2026-11"], files)
    assert "missing.csv" in line
    result = run(["backtest", "--help"], files["tmp"])
    assert result.returncode == 0 and "--plans" in result.stdout
