"""`metering invoice` and `metering timeline` (contract §6), run as the installed command."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from metering import cli, store
from metering.workspace import import_workspace

METERING = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "metering")

WORKSPACE: dict[str, Any] = {
    "timezone": "UTC",
    "metrics": [
        {"name": "API calls", "code": "api", "unit": "calls", "event_name": "api.request", "group_by": ["endpoint"]},
        {"name": "SMS credits", "code": "sms", "unit": "sms", "event_name": "sms", "aggregation": "sum",
         "value_property": "n", "metric_type": "limit_recurring"},
        {"name": "Seats", "code": "seats", "unit": "seats", "event_name": "seat", "metric_type": "limit_metered"},
        {"name": "Storage", "code": "storage", "unit": "GB", "event_name": "gb", "aggregation": "sum",
         "value_property": "gb", "metric_type": "charge_recurring"},
    ],
    "plans": [
        {"code": "pro", "name": "Pro", "currency": "USD", "base_fee": "10", "included_credit": "5",
         "charges": [{"metric": "api", "model": "standard", "free_units": 1000, "unit_price": "0.02"},
                     {"metric": "storage", "model": "standard", "unit_price": "0.1"}],
         "quotas": [{"metric": "sms", "limit": 1000, "overage_unit_price": "0.01"}, {"metric": "seats", "limit": 2}]},
        {"code": "payg", "name": "Pay as you go", "currency": "USD",
         "charges": [{"metric": "api", "model": "standard", "unit_price": "0.10"}]},
    ],
    "subscriptions": [{"customer_id": "acme", "plan": "pro", "start": "2026-10-01"}],
}


def _events() -> str:
    lines = ["event_name,customer_id,timestamp,endpoint,n,gb"]
    for i in range(2500):
        lines.append(f"api.request,acme,2026-10-{1 + i % 28:02d}T08:{i // 60 % 60:02d}:{i % 60:02d}Z,/v{i % 2},,")
    for i in range(500):
        lines.append(f"api.request,bob,2026-10-03T09:{i // 60:02d}:{i % 60:02d}Z,/v1,,")
    lines += ["sms,acme,2026-10-04T00:00:00Z,,700,", "sms,acme,2026-11-04T00:00:00Z,,900,"]
    lines += [f"seat,acme,2026-10-0{d}T00:00:00Z,,," for d in range(1, 6)]
    lines += ["gb,acme,2026-10-05T00:00:00Z,,,100", "gb,acme,2026-11-05T00:00:00Z,,,50", "gb,acme,2026-12-05T00:00:00Z,,,75"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    ws = tmp_path / "workspace.json"
    ws.write_text(json.dumps(WORKSPACE), encoding="utf-8")
    ev = tmp_path / "events.csv"
    ev.write_text(_events(), encoding="utf-8")
    return {"ws": str(ws), "ev": str(ev), "tmp": str(tmp_path)}


def run(args: list[str], tmp: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "METERING_DATA_DIR": tmp, "DATABASE_URL": f"sqlite:///{tmp}/unused.db", **(env or {})}
    return subprocess.run([METERING, *args], capture_output=True, text=True, env=full_env, timeout=120)


def ok(args: list[str], files: dict[str, str], **kw: Any) -> Any:
    result = run(args, files["tmp"], **kw)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def fails(args: list[str], files: dict[str, str]) -> str:
    """Run the installed command; it must fail with exit 2 and one line on stderr."""
    result = run(args, files["tmp"])
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def fails_in_process(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp: str) -> str:
    """The same check through cli.main (the command's entry point), without a new interpreter
    per case: the many bad-input cases would otherwise take seconds each."""
    monkeypatch.setenv("METERING_DATA_DIR", tmp)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp}/unused.db")
    assert cli.main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- invoice --------------------------------------------------------------------------------


def test_invoice_for_a_month_under_the_subscriptions(files: dict[str, str]) -> None:
    out = ok(["invoice", "--workspace", files["ws"], "--events", files["ev"], "--period", "2026-10"], files)
    assert out == {
        "period": {"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
        "currency": "USD",
        "invoices": [{
            "customer_id": "acme", "plan": "pro",
            "period": {"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
            "currency": "USD",
            "lines": [
                {"description": "Base fee", "metric": None, "units": "1", "amount": "10.00", "groups": []},
                {"description": "API calls", "metric": "api", "units": "2500", "amount": "30.00",
                 "groups": [{"group": {"endpoint": "/v0"}, "units": "1250"}, {"group": {"endpoint": "/v1"}, "units": "1250"}]},
                {"description": "Storage", "metric": "storage", "units": "100", "amount": "10.00", "groups": []},
                {"description": "SMS credits overage", "metric": "sms", "units": "0", "amount": "0.00", "groups": []},
            ],
            "subtotal": "50.00", "credit": "5.00", "total": "45.00",
        }],
        "total": "45.00",
    }


def test_invoice_what_if_plan_for_every_customer_and_one_customer(files: dict[str, str]) -> None:
    base = ["invoice", "--workspace", files["ws"], "--events", files["ev"], "--period", "2026-10", "--plan", "payg"]
    out = ok(base, files)
    assert [(i["customer_id"], i["plan"], i["total"]) for i in out["invoices"]] == [("acme", "payg", "250.00"), ("bob", "payg", "50.00")]
    assert out["total"] == "300.00"
    one = ok(base + ["--customer", "bob"], files)
    assert [i["customer_id"] for i in one["invoices"]] == ["bob"]
    assert one["invoices"][0]["lines"][0]["amount"] == "50.00"


def test_invoice_for_a_window_and_a_month_with_no_period(files: dict[str, str]) -> None:
    out = ok(["invoice", "--workspace", files["ws"], "--events", files["ev"], "--plan", "payg",
              "--from", "2026-10-03T09:00:00Z", "--to", "2026-10-03T09:01:00Z"], files)
    assert out["period"] == {"start": "2026-10-03T09:00:00Z", "end": "2026-10-03T09:01:00Z"}
    assert [(i["customer_id"], i["lines"][0]["units"]) for i in out["invoices"]] == [("acme", "0"), ("bob", "60")]
    none = ok(["invoice", "--workspace", files["ws"], "--events", files["ev"], "--period", "2026-09"], files)
    assert none == {"period": None, "currency": None, "invoices": [], "total": "0"}


def test_invoice_november_carries_sms_credit_and_storage_keeps_growing(files: dict[str, str]) -> None:
    out = ok(["invoice", "--workspace", files["ws"], "--events", files["ev"], "--period", "2026-11"], files)
    lines = {l["description"]: l for l in out["invoices"][0]["lines"]}
    assert lines["Storage"]["units"] == "150" and lines["Storage"]["amount"] == "15.00"
    assert lines["SMS credits overage"]["units"] == "0"  # 900 used of 1300 available
    assert lines["API calls"]["units"] == "0"


def test_invoice_without_workspace_uses_the_apps_own_setup(files: dict[str, str]) -> None:
    url = f"sqlite:///{files['tmp']}/app.db"
    engine = store.make_engine(url)
    import_workspace(engine, WORKSPACE)
    engine.dispose()
    out = ok(["invoice", "--events", files["ev"], "--period", "2026-10"], files, env={"DATABASE_URL": url})
    assert out["invoices"][0]["total"] == "45.00"


@pytest.mark.parametrize(("args", "message"), [
    (["--period", "2026-13"], "--period: period '2026-13' is not a month: write YYYY-MM"),
    (["--period", "october"], "is not a month"),
    ([], "give --period YYYY-MM, or --from and --to"),
    (["--from", "2026-10-01"], "give --period YYYY-MM, or --from and --to"),
    (["--period", "2026-10", "--from", "2026-10-01", "--to", "2026-11-01"], "either --period or --from and --to"),
    (["--from", "2026-11-01", "--to", "2026-10-01"], "--to must be later than --from"),
    (["--from", "yesterday", "--to", "2026-10-01"], "--from:"),
    (["--period", "2026-10", "--plan", "gold"], "plan 'gold' is not in the workspace (plans: payg, pro)"),
    (["--period", "2026-10", "--customer", "zed"], "customer 'zed' has no subscription"),
    (["--period", "2026-10", "--plan", "payg", "--customer", "zed"], "customer 'zed' has no events and no subscription"),
])
def test_invoice_bad_input_is_one_line_exit_2(files: dict[str, str], args: list[str], message: str,
                                              capsys: Any, monkeypatch: Any) -> None:
    line = fails_in_process(["invoice", "--workspace", files["ws"], "--events", files["ev"], *args], capsys, monkeypatch, files["tmp"])
    assert line.startswith("metering: error: ") and message in line, line


def test_invoice_bad_input_through_the_installed_command(files: dict[str, str]) -> None:
    line = fails(["invoice", "--workspace", files["ws"], "--events", files["ev"], "--period", "2026-13"], files)
    assert line == "metering: error: --period: period '2026-13' is not a month: write YYYY-MM, e.g. 2026-10"


def test_bad_files_are_one_line_exit_2(files: dict[str, str], tmp_path: Path) -> None:
    broken = json.loads(json.dumps(WORKSPACE))
    broken["plans"][0]["charges"][0]["unit_price"] = "-1"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken), encoding="utf-8")
    line = fails(["invoice", "--workspace", str(bad), "--events", files["ev"], "--period", "2026-10"], files)
    assert "plans[0].charges[0].unit_price: unit_price must be 0 or more" in line
    line = fails(["invoice", "--workspace", files["ws"], "--events", str(tmp_path / "nope.csv"), "--period", "2026-10"], files)
    assert "nope.csv" in line
    line = fails(["timeline", "--workspace", str(tmp_path / "missing.json"), "--events", files["ev"],
                  "--plan", "pro", "--metric", "sms", "--periods", "3"], files)
    assert "cannot read workspace" in line


# --- timeline -------------------------------------------------------------------------------


def test_timeline_unibee_carryover(files: dict[str, str]) -> None:
    out = ok(["timeline", "--workspace", files["ws"], "--events", files["ev"], "--plan", "pro", "--metric", "sms",
              "--periods", "3", "--customer", "acme"], files)
    assert out == {"metric": "sms", "timelines": [{"customer_id": "acme", "periods": [
        {"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z", "usage": "700", "available": "1000",
         "carryover": "300", "rejected": None, "overage": "0", "amount": "0.00"},
        {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z", "usage": "900", "available": "1300",
         "carryover": "400", "rejected": None, "overage": "0", "amount": "0.00"},
        {"start": "2026-12-01T00:00:00Z", "end": "2027-01-01T00:00:00Z", "usage": "0", "available": "1400",
         "carryover": "1400", "rejected": None, "overage": "0", "amount": "0.00"},
    ]}]}


def test_timeline_limit_metered_rejections_are_integers_and_all_customers(files: dict[str, str]) -> None:
    out = ok(["timeline", "--workspace", files["ws"], "--events", files["ev"], "--plan", "pro", "--metric", "seats",
              "--periods", "2"], files)
    assert [t["customer_id"] for t in out["timelines"]] == ["acme", "bob"]
    first = out["timelines"][0]["periods"][0]
    assert (first["usage"], first["available"], first["rejected"], first["amount"]) == ("2", "2", 3, None)
    assert first["carryover"] is None and first["overage"] is None
    assert out["timelines"][1]["periods"][0]["rejected"] == 0


def test_timeline_charge_recurring(files: dict[str, str]) -> None:
    out = ok(["timeline", "--workspace", files["ws"], "--events", files["ev"], "--plan", "pro", "--metric", "storage",
              "--periods", "3", "--customer", "acme"], files)
    assert [(p["usage"], p["amount"]) for p in out["timelines"][0]["periods"]] == [("100", "10.00"), ("150", "15.00"), ("225", "22.50")]


@pytest.mark.parametrize(("args", "message"), [
    (["--plan", "pro", "--metric", "sms", "--periods", "0"], "--periods must be between 1 and"),
    (["--plan", "pro", "--metric", "sms", "--periods", "three"], "--periods: 'three' is not a whole number"),
    (["--plan", "gold", "--metric", "sms", "--periods", "2"], "plan 'gold' is not in the workspace"),
    (["--plan", "pro", "--metric", "nope", "--periods", "2"], "metric 'nope' is not in the workspace"),
    (["--plan", "payg", "--metric", "sms", "--periods", "2"], "plan 'payg' has no charge or quota on metric 'sms'"),
    (["--plan", "pro", "--metric", "sms", "--periods", "2", "--customer", "zed"], "customer 'zed' has no events"),
    (["--plan", "pro", "--metric", "sms"], "required: --periods"),
])
def test_timeline_bad_input_is_one_line_exit_2(files: dict[str, str], args: list[str], message: str,
                                               capsys: Any, monkeypatch: Any) -> None:
    line = fails_in_process(["timeline", "--workspace", files["ws"], "--events", files["ev"], *args], capsys, monkeypatch, files["tmp"])
    assert line.startswith("metering: error: ") and message in line, line


def test_timeline_bad_input_through_the_installed_command(files: dict[str, str]) -> None:
    line = fails(["timeline", "--workspace", files["ws"], "--events", files["ev"], "--plan", "payg",
                  "--metric", "sms", "--periods", "2"], files)
    assert line == "metering: error: plan 'payg' has no charge or quota on metric 'sms'"
