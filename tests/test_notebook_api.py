"""The notebook API (`metering.Workspace`): opening, events through the importer, metrics and
plans with the app's validation and messages, typed results (exact Decimals in pandas, escaped
HTML, charts within Altair's row limit), and the same answers as the CLI and the app's helpers
for the same workspace and events."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import metering
from metering import ValidationFailed, Workspace, cli, demo, ingest, metrics, plans, store
from metering.engine import stored_events
from metering.notebook import charts
from metering.workspace import WorkspaceError

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_events"
OCTOBER = REPO / "notebooks" / "october.json"
FILES = [SAMPLES / f"{n}.csv" for n in ("api_requests", "emails_sent", "llm_tokens", "storage_gb", "unique_users",
                                          "worker_duration")]


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    assert cli.main(list(args)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def events_args(files: list[Path]) -> list[str]:
    return [a for f in files for a in ("--events", str(f))]


@pytest.fixture(scope="module")
def october() -> Workspace:
    ws = Workspace.open(OCTOBER)
    for path in FILES:
        ws.add_events(path)
    return ws


# --------------------------------------------------------------------------- the package


def test_import_metering_stays_cheap_and_workspace_is_lazy() -> None:
    code = ("import sys, metering; heavy = [m for m in ('metering.notebook', 'pandas', 'altair', 'sqlalchemy') "
            "if m in sys.modules]; print(heavy); print(metering.Workspace.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "metering.notebook.workspace"
    assert "Workspace" in dir(metering) and metering.Workspace is Workspace
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        metering.Nope  # noqa: B018


def test_every_public_name_has_a_docstring() -> None:
    import inspect

    for name in metering.notebook.__all__:
        obj = getattr(metering.notebook, name)
        assert obj.__doc__, name
        for attr, member in vars(obj).items():
            if not attr.startswith("_") and (inspect.isfunction(member) or isinstance(member, (property, classmethod))):
                fn = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                assert fn.__doc__, f"{name}.{attr}"


# --------------------------------------------------------------------------- opening


def test_open_a_workspace_file_keeps_it_in_memory_until_saved(tmp_path: Path) -> None:
    ws = Workspace.open(OCTOBER)
    assert ws.document == json.loads(OCTOBER.read_text())  # the file, read exactly (export order)
    ws.plan("starter", base_fee="39")
    assert json.loads(OCTOBER.read_text())["plans"][1]["base_fee"] == "29"  # the file is untouched
    saved = ws.save(tmp_path / "out.json")
    again = Workspace.open(saved)
    assert again.plan("starter").base_fee == Decimal("39") and again.document == ws.document


def test_open_refuses_bad_files_with_the_field_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    doc = json.loads(OCTOBER.read_text())
    doc["plans"][0]["charges"][0]["tiers"][1]["unit_price"] = "-1"
    bad.write_text(json.dumps(doc))
    with pytest.raises(WorkspaceError, match=r"^plans\[0\]\.charges\[0\]\.tiers\[1\]\.unit_price: "):
        Workspace.open(bad)
    with pytest.raises(ValueError, match="open a workspace file"):
        Workspace.open(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError, match="no database at"):
        Workspace.open(tmp_path / "missing.db")
    with pytest.raises(WorkspaceError, match="cannot read workspace"):
        Workspace.open(tmp_path / "missing.json")


def test_app_opens_the_store_the_app_and_the_command_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    ws = Workspace.app()
    ws.metric(template="emails_sent")
    assert [m["code"] for m in cli_json(capsys, "workspace", "export")["metrics"]] == ["emails_sent"]
    assert "app.db" in repr(ws)


def test_an_app_store_sees_notebook_changes_and_audits_them(tmp_path: Path) -> None:
    from metering import audit
    from metering.workspace import workspace_from_store

    url = f"sqlite:///{tmp_path / 'app.db'}"
    ws = Workspace.open(url)
    ws.metric(template="api_requests")
    ws.add_events(SAMPLES / "api_requests.csv")
    ws2 = Workspace.open(tmp_path / "app.db")  # the same store, by path
    assert [m.code for m in ws2.metrics] == ["api_requests"] and ws2.event_count == 2790
    other = store.make_engine(url)
    assert workspace_from_store(other).metric("api_requests").aggregation.value == "count"
    actions = [(e.action, e.target) for e in audit.entries(other)]
    assert ("metric.create", "api_requests") in actions and ("events.import", "api_requests.csv") in actions
    assert all(e.actor.startswith("notebook (") for e in audit.entries(other))
    assert audit.entries(Workspace.new().engine) == []  # a private workspace writes no audit rows


# --------------------------------------------------------------------------- events


def test_add_events_reports_rows_like_the_importer_and_is_idempotent() -> None:
    ws = Workspace.new()
    report = ws.add_events(SAMPLES / "bad_rows.csv")
    assert (report.accepted, report.duplicates, report.rejected) == (24, 1, 6)
    assert [e.line for e in report.errors] == [5, 10, 14, 20, 24, 29]
    assert report.to_json()["errors"][0] == {"line": 5, "field": "customer_id", "reason": "customer_id is required"}
    df = report.to_pandas()
    assert list(df.columns) == ["source", "line", "row", "field", "reason"] and len(df) == 6
    again = ws.add_events([SAMPLES / "bad_rows.csv"])
    assert (again.accepted, again.duplicates, again.rejected) == (0, 25, 6)
    assert ws.event_count == 24
    with pytest.raises(ingest.UnreadableFile):
        ws.add_events(SAMPLES / "README.md")
    with pytest.raises(FileNotFoundError, match="no events file"):
        ws.add_events([SAMPLES / "llm_tokens.csv", SAMPLES / "nope.csv"])
    assert ws.event_count == 24  # nothing stored when one of the files is missing
    assert "<th>source</th>" not in report._repr_html_() and "1 duplicate (already stored)" in report._repr_html_()
    both = Workspace.new().add_events([SAMPLES / "bad_rows.csv", SAMPLES / "api_requests.json"])
    assert "<th>source</th>" in both._repr_html_() and both.accepted == 24 + 50
    assert both.to_json()["errors"][0]["file"] == str(SAMPLES / "bad_rows.csv")  # as `metering import` names them


def test_a_frame_stores_what_its_csv_file_stores(tmp_path: Path) -> None:
    df = pd.read_csv(SAMPLES / "storage_gb.csv", dtype=str)
    from_frame, from_file = Workspace.new(), Workspace.new()
    a, b = from_frame.add_events(df), from_file.add_events(SAMPLES / "storage_gb.csv")
    assert (a.accepted, a.rejected) == (b.accepted, b.rejected) == (1860, 0)
    assert store.event_rows(from_frame.engine)[:3] == store.event_rows(from_file.engine)[:3]
    keys = lambda ws: sorted(r[4] for r in store.event_rows(ws.engine))  # noqa: E731
    assert keys(from_frame) == keys(from_file)  # the same idempotency keys: the same events
    assert from_frame.add_events(df).duplicates == 1860


def test_frame_rows_errors_and_exact_values() -> None:
    ws = Workspace.new()
    df = pd.DataFrame({
        "event_name": ["e", "bad name", "e", "e"],
        "customer_id": ["c1", "c2", None, "c4"],
        "timestamp": pd.to_datetime(["2026-10-01 10:00:00.123456", "2026-10-01 00:00:00.000000",
                                    "2026-10-02 00:00:00.000000", "2026-10-03 00:00:00.000000"]),
        "amount": [Decimal("0.10"), Decimal("1.000000000000000001"), None, Decimal("2")],
        "note": ["line\nbreak", "x", "y", "z"],
        "usage.tokens": [None, None, None, "7"],
    }, index=["a", "b", "c", "d"])
    report = ws.add_events(df)
    assert (report.accepted, report.rejected) == (2, 2)
    assert [(e.line, e.row, e.field) for e in report.errors] == [(2, "b", "event_name"), (3, "c", "customer_id")]
    ws.metric("amount", name="Amount", unit="USD", event_name="e", aggregation="sum", value_property="amount")
    ws.metric("tokens", name="Tokens", unit="t", event_name="e", aggregation="sum", value_property="usage.tokens")
    assert ws.aggregate("amount").value == Decimal("2.10")
    assert ws.aggregate("tokens").value == 7 and ws.aggregate("tokens").skip_reasons == {"usage.tokens is missing": 1}
    first = ws.aggregate("amount", "2026-10-01T10:00:00.123456Z", "2026-10-01T10:00:00.123457Z")
    assert first.events == 1  # microseconds kept
    with pytest.raises(ValueError, match="needs the column"):
        ws.add_events(df.drop(columns="timestamp"))


# --------------------------------------------------------------------------- metrics and plans


def test_metric_messages_are_the_editors() -> None:
    ws = Workspace.new()
    bad = {"name": "Tokens", "unit": "t", "event_name": "llm.tokens", "aggregation": "sum"}
    with pytest.raises(ValidationFailed) as refused:
        ws.metric(**bad)
    assert refused.value.errors == metrics.form_errors(ws.engine, {**bad, "code": "tokens"})
    assert "value_property" in refused.value.errors and ws.metrics == []
    made = ws.metric(**bad, value_property="tokens")
    assert made.code == "tokens"
    ws.metric(**{**bad, "unit": "tokens (k)"}, value_property="tokens")  # the same cell again: an edit
    assert [(m.code, m.unit) for m in ws.metrics] == [("tokens", "tokens (k)")]
    with pytest.raises(ValidationFailed, match="code cannot change"):
        ws.metric("tokens", code="tokens_2")
    with pytest.raises(ValidationFailed, match="unknown template"):
        ws.metric(template="nope")
    with pytest.raises(WorkspaceError, match=r"metric 'nope' is not in the workspace \(metrics: tokens\)"):
        ws.metric("nope")
    assert ws.metric(template="llm_tokens").group_by == ["model"]


def test_plan_messages_are_the_plan_forms_and_entries_merge() -> None:
    ws = Workspace.open(OCTOBER)
    types = {m.code: m.metric_type.value for m in ws.metrics}
    bad = {"charges": {"api_requests": {"unit_price": "-1"}}}
    with pytest.raises(ValidationFailed) as refused:
        ws.plan("starter", **bad)
    data = ws.plan("starter").model_dump(mode="json", exclude_none=True)
    data["charges"][0]["unit_price"] = "-1"
    assert refused.value.errors == dict(plans.plan_errors(data, types))
    assert refused.value.errors == {"charges.0.unit_price": "unit_price must be 0 or more"}
    assert ws.plan("starter").charges[0].unit_price == Decimal("0.02")  # nothing saved
    with pytest.raises(ValidationFailed, match="unknown metric 'nope'"):
        ws.plan("starter", charges={"nope": {"model": "standard", "unit_price": "1"}})
    changed = ws.plan("starter", charges={"api_requests": {"model": "package", "package_size": "100",
                                                           "package_price": "1"}, "emails_sent": None})
    assert changed.charge_for("api_requests").model == "package" and changed.charge_for("api_requests").unit_price is None
    assert changed.charge_for("emails_sent") is None
    copy = ws.plan("starter_eur", based_on="starter", name="Starter EUR", currency="eur")
    assert copy.currency == "EUR" and copy.charges == changed.charges
    with pytest.raises(WorkspaceError, match="plan 'nope' is not in the workspace"):
        ws.plan("x", based_on="nope")
    draft = ws.draft("growth", base_fee="159")
    assert (draft.code, draft.name, draft.base_fee) == ("growth_draft", "Growth (draft)", Decimal("159"))
    assert "growth_draft" not in [p.code for p in ws.plans]
    with pytest.raises(ValidationFailed, match="a plan with code 'starter' already exists"):
        ws.draft("growth", code="starter")
    with pytest.raises(ValidationFailed, match="base_fee"):
        ws.draft("growth", base_fee="-5")


def test_subscribe_is_checked_as_a_workspace_file() -> None:
    ws = Workspace.open(OCTOBER)
    ws.subscribe("cus_new", "growth", datetime(2026, 10, 15).date())
    assert ws.subscriptions.set_index("customer_id").loc["cus_new", "start"] == "2026-10-15"
    with pytest.raises(WorkspaceError, match="plan 'nope' is not in the workspace"):
        ws.subscribe("cus_x", "nope")
    with pytest.raises(WorkspaceError, match="epoch seconds"):
        ws.subscribe("cus_x", "growth", "1791028800")
    with pytest.raises(WorkspaceError, match="IANA"):
        ws.timezone = "Mars/Olympus"
    assert ws.subscribers("growth")[-1] == "cus_new"


# --------------------------------------------------------------------------- results


def test_results_keep_decimals_exact(october: Workspace) -> None:
    agg = october.aggregate("storage_gb", "2026-10-01", "2026-11-01", per_customer=True)
    groups = agg.to_pandas()
    assert groups["value"].dtype == object and all(isinstance(v, Decimal) for v in groups["value"])
    per = agg.to_pandas("customer")
    assert all(isinstance(v, Decimal) for v in per["value"])
    inv = october.invoices("2026-10").to_pandas()
    assert all(isinstance(v, Decimal) for col in ("subtotal", "credit", "total") for v in inv[col])
    lines = october.invoices("2026-10").lines()
    assert all(isinstance(v, Decimal) for v in lines["amount"])
    bt = october.backtest(["starter", "growth"], "2026-10").to_pandas()
    assert all(isinstance(v, Decimal) for v in bt["growth change"])
    series = october.usage_series("worker_duration", "2026-10-01", "2026-11-01").to_pandas()
    assert sum(series["value"], Decimal(0)) == october.aggregate("worker_duration", "2026-10-01", "2026-11-01").value


def test_html_escapes_user_text() -> None:
    ws = Workspace.new()
    ws.metric("clicks", name="<b>Clicks</b>", unit="<i>u</i>", event_name="click", aggregation="count",
              group_by=["tag"])
    ws.plan("p", name="<script>alert(1)</script>", currency="USD", charges=[
        {"metric": "clicks", "model": "standard", "unit_price": "0.5"}])
    ws.plan("q", name="Q & A", currency="USD", charges=[{"metric": "clicks", "model": "standard", "unit_price": "1"}])
    evil = "<img src=x onerror=alert(1)>"
    ws.add_events(pd.DataFrame({"event_name": ["click"] * 2, "customer_id": [evil, "c2"],
                                "timestamp": ["2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z"], "tag": ["<t>", "x"]}))
    ws.subscribe(evil, "p", "2026-10-01")
    pages = [ws.aggregate("clicks")._repr_html_(), ws.invoices("2026-10")._repr_html_(),
             ws.invoice(evil, "2026-10")._repr_html_(), ws.compare(["p", "q"], "2026-10")._repr_html_(),
             ws.backtest(["p", "q"], "2026-10")._repr_html_(), ws.timeline("p", "clicks", 1)._repr_html_(),
             ws.usage_series("clicks", split_by="tag")._repr_html_(), ws.preview_metric(
                 name="<b>x</b>", unit="u", event_name="click", aggregation="count", group_by=["tag"])._repr_html_()]
    for page in pages:
        assert "<img" not in page and "<script" not in page and "<b>" not in page and "<t>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[2] and "&lt;script&gt;" in pages[1]


def _rows(chart: Any) -> int:
    spec = chart.to_dict()
    return sum(len(v) for v in spec.get("datasets", {}).values())


def test_charts_stay_within_altairs_row_limit() -> None:
    ws = Workspace.new()
    ws.metric("calls", name="Calls", unit="calls", event_name="call", aggregation="count", group_by=["g"])
    ws.metric("peak", name="Peak", unit="GB", event_name="call", aggregation="max", value_property="n")
    days = pd.date_range("2013-01-01", "2026-12-31", freq="D", tz="UTC")  # 14 years, 5,113 days
    n = len(days) * 2
    ws.add_events(pd.DataFrame({"event_name": "call", "customer_id": [f"c{i % 50}" for i in range(n)],
                                "timestamp": list(days) * 2, "g": [f"g{i % 11}" for i in range(n)],
                                "n": [str(i % 97) for i in range(n)]}))
    series = ws.usage_series("calls", split_by="g")
    assert len(series.to_pandas()) > charts.MAX_ROWS
    chart = series.chart(top=4)
    assert 0 < _rows(chart) <= charts.MAX_ROWS
    data = next(iter(chart.to_dict()["datasets"].values()))
    assert sum(r["value"] for r in data) == n  # folded into weeks and "(other)", every event still counted
    assert {r["group"] for r in data} == {"g0", "g1", "g2", "g3", charts.OTHER}
    peak = ws.usage_series("peak")
    assert len(peak.to_pandas()) > charts.MAX_ROWS and _rows(peak.chart()) <= charts.MAX_ROWS
    agg = ws.aggregate("calls", per_customer=True)
    assert _rows(agg.chart()) == 11 and _rows(agg.chart(top=5)) == 6  # 5 + "(other)"
    assert _rows(agg.chart("customer")) == 31  # 30 + "(other)"
    ws.plan("p", name="P", currency="USD", interval="day", charges=[{"metric": "calls", "model": "standard",
                                                                     "unit_price": "1"}])
    timeline = ws.timeline("p", "calls", 1200)
    assert len(timeline.to_pandas()) > charts.MAX_ROWS and _rows(timeline.chart()) <= charts.MAX_ROWS
    invoices = ws.invoices("2026-10", plan="p")
    assert len(invoices) == 50 and _rows(invoices.chart()) == 41


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 2000)), min_size=1, max_size=60), st.integers(1, 12))
def test_top_n_keeps_the_largest_and_folds_the_rest_exactly(pairs: list[tuple[int, int]], n: int) -> None:
    df = pd.DataFrame({"label": [f"l{i}" for i in range(len(pairs))],
                       "value": [Decimal(v) / 100 for _, v in pairs]})
    out, folded = charts.top_n(df, label="label", value="value", n=n)
    assert sum(out["value"], Decimal(0)) == sum(df["value"], Decimal(0))  # nothing lost, nothing rounded
    kept = out[out["label"] != charts.OTHER]
    assert len(kept) == min(n, len(df)) and folded == len(df) - len(kept)
    assert min(kept["value"], default=0) >= max(df[~df["label"].isin(kept["label"])]["value"], default=0)


def test_bad_questions_are_clear_errors(october: Workspace) -> None:
    with pytest.raises(ValueError, match="end must be later than start"):
        october.aggregate("llm_tokens", "2026-11-01", "2026-10-01")
    with pytest.raises(ValueError, match="start: 'soon' is not an ISO 8601 time"):
        october.aggregate("llm_tokens", "soon")
    with pytest.raises(ValueError, match="not a month"):
        october.invoices("2026-13")
    with pytest.raises(ValueError, match="no billing period starting in 2025-01"):
        october.invoice("cus_001", "2025-01")
    with pytest.raises(ValueError, match="periods must be a whole number between 1 and 1200"):
        october.timeline("starter", "llm_tokens", 0)
    small = Workspace.new()
    small.metric(template="api_requests")
    small.metric(template="emails_sent")
    small.plan("p", name="P", currency="USD", charges=[{"metric": "api_requests", "model": "standard", "unit_price": "1"}])
    with pytest.raises(ValueError, match="plan 'p' has no charge or quota on metric 'emails_sent'"):
        small.timeline("p", "emails_sent")
    with pytest.raises(metering.backtest.BacktestError, match="at least 2 plans"):
        october.backtest(["starter"], "2026-10")
    with pytest.raises(metering.compare.ComparisonError, match="share a currency"):
        october.compare(["starter", october.draft("growth", currency="EUR")], "2026-10")
    with pytest.raises(ValueError, match="threshold"):
        october.backtest(["starter", "growth"], "2026-10", threshold=-1)


# --------------------------------------------------------------------------- same answers everywhere


@pytest.fixture(scope="module")
def app_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The app's store, filled with the `metering` command: the October workspace and events."""
    url = f"sqlite:///{tmp_path_factory.mktemp('app') / 'metering.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("DATABASE_URL", url)
    try:
        assert cli.main(["workspace", "import", str(OCTOBER)]) == 0
        assert cli.main(["import", *map(str, FILES)]) == 0
    finally:
        mp.undo()
    return url


def test_same_aggregate_everywhere(october: Workspace, app_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench import usage

    window = ("2026-10-01", "2026-11-01")
    mine = october.aggregate("llm_tokens", *window).to_json()
    assert mine == cli_json(capsys, "aggregate", "--workspace", str(OCTOBER), *events_args(FILES),
                            "--metric", "llm_tokens", "--from", window[0], "--to", window[1])
    engine = store.make_engine(app_store)
    from_app = Workspace.open(app_store).aggregate("llm_tokens", *window)
    assert from_app.to_json() == mine
    # The Usage page: aggregation over the store's frame, laid out by its helpers.
    metric = metrics.get_metric(engine, code="llm_tokens")
    sel = usage.Selection(metric, datetime(2026, 10, 1).date(), datetime(2026, 10, 31).date(), None)
    result = metering.aggregation.aggregate(stored_events(engine), metric, start=sel.start, end=sel.end)
    table = usage.groups_table(metric, result)
    assert list(table["value"]) == [metering.preview.fmt(g.value) for g in from_app.result.groups]
    assert str(result.value) == mine["value"]


def test_same_invoices_everywhere(october: Workspace, app_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench import invoices as page

    mine = october.invoices("2026-10")
    cli_doc = cli_json(capsys, "invoice", "--workspace", str(OCTOBER), *events_args(FILES), "--period", "2026-10")
    assert mine.to_json() == cli_doc and len(mine) == 30
    engine = store.make_engine(app_store)
    ws = page.load_workspace(engine)
    sel = page.Selection(None, (2026, 10), None, None, "2026-10")
    shown = page.compute(stored_events(engine), ws, sel)
    assert [(i.customer_id, i.total) for i in shown] == [(i.customer_id, i.total) for i in mine.invoices]
    assert page.totals_by_currency(shown)["USD"][0] == mine.totals["USD"] == Decimal(cli_doc["total"])
    one = october.invoice("cus_021", "2026-10")
    assert one.to_json() == next(i for i in cli_doc["invoices"] if i["customer_id"] == "cus_021")
    what_if = october.invoices("2026-10", plan="growth").to_json()
    assert what_if == cli_json(capsys, "invoice", "--workspace", str(OCTOBER), *events_args(FILES), "--period",
                               "2026-10", "--plan", "growth")
    comparison = october.compare(["starter", "growth"], "2026-10")
    app_comparison = metering.compare.compare_plans(stored_events(engine), ws.metrics, [ws.plan("starter"), ws.plan("growth")],
                                                    subscriptions=ws.subscriptions, tz=ws.timezone, month=(2026, 10))
    assert page.comparison_table(app_comparison).iloc[-1]["growth"] == page.money(comparison.totals["growth"], "USD")
    assert comparison.totals["growth"] == Decimal(what_if["total"])


def test_same_timeline_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench import timeline as page

    doc = tmp_path / "demo.json"
    doc.write_text(json.dumps(demo.workspace_document(now=demo.SAMPLE_NOW)))
    sms = SAMPLES / "sms_credits.csv"
    ws = Workspace.open(doc)
    ws.add_events(sms)
    mine = ws.timeline("starter", "sms_credits", 3)
    assert mine.to_json() == cli_json(capsys, "timeline", "--workspace", str(doc), "--events", str(sms),
                                      "--plan", "starter", "--metric", "sms_credits", "--periods", "3")
    domain = ws._workspace()
    shown = page.compute(stored_events(ws.engine), domain, domain.metric("sms_credits"), domain.plan("starter"), 3)
    assert {c: [(p.usage, p.available, p.overage, p.amount) for p in rows] for c, rows in shown.rows.items()} == \
        {c: [(p.usage, p.available, p.overage, p.amount) for p in rows] for c, rows in mine.periods.items()}
    unibee = mine.customer("cus_unibee")
    assert list(unibee["available"]) == [Decimal(1000), Decimal(1300), Decimal(1400)]  # UniBee's worked example


def test_same_backtest_everywhere(october: Workspace, app_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench import backtest as page

    mine = october.backtest(["starter", "growth"], ("2026-10", "2026-11"), threshold=50)
    cli_doc = cli_json(capsys, "backtest", "--workspace", str(OCTOBER), *events_args(FILES), "--plans",
                       "starter,growth", "--from", "2026-10", "--to", "2026-11")
    assert mine.to_json() == cli_doc
    engine = store.make_engine(app_store)
    ws = page.load_workspace(engine)
    bt = metering.backtest.run(stored_events(engine), ws, [ws.plan("starter"), ws.plan("growth")],
                               metering.backtest.month_range("2026-10", "2026-11"), cache=metering.backtest.BacktestCache())
    frame = page.months_frame(bt)
    assert list(frame["total"]) == list(mine.months_frame()["total"])
    assert page.customers_table(bt, {}).iloc[0, 1] == page.money(mine.backtest.customer_totals["starter"]["cus_001"], "USD")
    assert mine.totals["growth"] == Decimal(cli_doc["plans"][1]["total"])
    cohort = october.subscribers("growth")
    assert october.backtest(["starter", "growth"], "2026-10", cohort=cohort).to_json() == cli_json(
        capsys, "backtest", "--workspace", str(OCTOBER), *events_args(FILES), "--plans", "starter,growth", "--from",
        "2026-10", "--to", "2026-10", *[a for c in cohort for a in ("--customer", c)])
    rail = mine.guardrail("growth")
    assert rail.passed == all(pct is not None and pct <= 50 for _, pct in mine.backtest.customer_changes["growth"].values())


def test_a_store_on_either_database_gives_the_same_answers(engine: Any) -> None:
    """SQLite and PostgreSQL stores (the app's two databases) answer alike through the API."""
    ws = Workspace(engine, private=False)
    for name in ("api_requests", "llm_tokens"):
        ws.metric(template=name)
    ws.plan("p", name="P", currency="USD", base_fee="5", charges=[
        {"metric": "api_requests", "model": "standard", "free_units": "10", "unit_price": "0.01"},
        {"metric": "llm_tokens", "model": "graduated", "tiers": [{"up_to": "1000", "unit_price": "0"},
                                                                {"up_to": None, "unit_price": "0.0001"}]}])
    ws.subscribe("cus_001", "p", "2026-10-01")
    assert ws.add_events([SAMPLES / "api_requests.csv", SAMPLES / "llm_tokens.csv"]).accepted == 2790 + 1860
    memory = Workspace.from_document(ws.document)
    memory.add_events([SAMPLES / "api_requests.csv", SAMPLES / "llm_tokens.csv"])
    assert ws.aggregate("llm_tokens", "2026-10-01", "2026-11-01").to_json() == \
        memory.aggregate("llm_tokens", "2026-10-01", "2026-11-01").to_json()
    assert ws.invoices("2026-10", plan="p").to_json() == memory.invoices("2026-10", plan="p").to_json()
    assert ws.invoice("cus_001", "2026-10").to_json() == memory.invoice("cus_001", "2026-10").to_json()


def test_same_import_report_as_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(SAMPLES / "bad_rows.csv"), str(SAMPLES / "api_requests.json")]
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert Workspace.new().add_events(files).to_json() == cli_json(capsys, "import", *files)
    again = cli_json(capsys, "import", files[0])  # the command's store holds them already: all duplicates
    assert Workspace.new().add_events(files[0]).to_json() == again | {"accepted": 24, "duplicates": 1}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.booleans(),
                          st.none() | st.decimals(min_value=-10**9, max_value=10**9, places=4, allow_nan=False,
                                                  allow_infinity=False),
                          st.text(alphabet='ab ,"\n', max_size=6)), min_size=1, max_size=25))
def test_a_frame_round_trip_against_a_plain_reference(rows: list[tuple[bool, Decimal | None, str]]) -> None:
    """Rejected rows are named by their position and index label, whatever line breaks, commas
    and quotes the other cells hold; the stored values add up exactly to the frame's own sum."""
    df = pd.DataFrame({
        "event_name": ["bad name" if bad else "e" for bad, _, _ in rows],
        "customer_id": "c1",
        "timestamp": [f"2026-10-01T00:00:{i:02d}Z" for i in range(len(rows))],
        "amount": [amount for _, amount, _ in rows],
        "note": [note for _, _, note in rows],
    }, index=[f"r{i}" for i in range(len(rows))])
    ws = Workspace.new()
    report = ws.add_events(df)
    bad = [i for i, (is_bad, _, _) in enumerate(rows) if is_bad]
    assert [(e.line, e.row, e.field) for e in report.errors] == [(i + 1, f"r{i}", "event_name") for i in bad]
    assert report.accepted == len(rows) - len(bad)
    ws.metric("amount", name="Amount", unit="USD", event_name="e", aggregation="sum", value_property="amount")
    expected = sum((a for b, a, _ in rows if not b and a is not None), Decimal(0))
    assert ws.aggregate("amount").value == expected
