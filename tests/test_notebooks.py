"""The example notebooks (notebooks/*.ipynb) run top to bottom in a real Jupyter kernel.

Each notebook is executed with nbclient in a python3 kernel whose kernelspec is written for
this interpreter (ipykernel's `install(prefix=…)`, found through JUPYTER_PATH), from the
notebooks folder as Jupyter runs it; any cell error fails the test. The outputs are checked
against the same questions asked here through the API, and the kernel's interpreter is checked
to be this one (the venv's). Outputs are never written back: the committed notebooks hold none.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from metering import Workspace

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
SAMPLES = REPO / "sample_events"
NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
PROBE = "import sys; print(sys.executable)"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A python3 kernelspec for this interpreter, first on JUPYTER_PATH; this checkout first
    on the kernel's PYTHONPATH."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(prefix=str(prefix), kernel_name="python3", display_name="Python 3 (tests)")
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "PYTHONPATH")}
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(prefix / "share" / "jupyter"), saved["JUPYTER_PATH"]]))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), saved["PYTHONPATH"]]))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def run(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    except CellExecutionError as exc:  # the cell, the error and its traceback
        pytest.fail(f"{name} failed:\n{exc}")
    assert output(nb, PROBE).strip() == sys.executable  # the kernel ran this interpreter (the venv's)
    return nb


def output(nb: nbformat.NotebookNode, needle: str, kind: str = "text/plain") -> str:
    """The printed text and the `kind` output of the one code cell whose source holds `needle`."""
    cells = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert len(cells) == 1, f"{len(cells)} cells hold {needle!r}"
    cell = cells[0]
    texts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            texts.append(out.text)
        elif "data" in out and kind in out.data:
            texts.append(out.data[kind])
    assert texts, f"no {kind} output from the cell {needle!r}"
    return "".join(texts)


def _no_outputs_committed(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{name}: outputs are committed"


def test_every_notebook_is_listed_and_clean() -> None:
    assert NAMES == ["01_design_a_metric.ipynb", "02_price_a_month.ipynb", "03_backtest_a_price_change.ipynb"]
    for name in NAMES:
        nbformat.validate(nbformat.read(NOTEBOOKS / name, as_version=4))
        _no_outputs_committed(name)


@pytest.mark.usefixtures("kernel_env")
def test_design_a_metric() -> None:
    nb = run("01_design_a_metric.ipynb")
    assert output(nb, "again = ").strip() == "(0, 1240)"  # the same file again: only duplicates
    html = output(nb, 'report = ws.add_events(SAMPLES / "bad_rows.csv")', "text/html")
    assert "24 events stored · 1 duplicate (already stored) · 6 rejected rows" in html
    assert "llm tokens" in html and "line" in html  # the rejected rows with their reasons
    assert "value_property" in output(nb, "draft = dict(")  # what Save would refuse, by field
    # The skipped events, and why, as the engine counts them on the same events.
    ws = Workspace.new()
    ws.add_events(SAMPLES / "llm_tokens_nested.jsonl")
    ws.add_events(SAMPLES / "bad_rows.csv")
    import pandas as pd

    ws.add_events(pd.DataFrame({
        "event_name": ["llm.tokens"] * 3, "customer_id": ["cus_001", "cus_002", "cus_003"],
        "timestamp": pd.to_datetime(["2026-10-30 10:00", "2026-10-30 11:00", "2026-10-30 12:00"]),
        "model": ["gpt-4o", "gpt-4o", "llama3.1"], "usage.total_tokens": ["n/a", None, "1e400"]}))
    preview = ws.preview_metric(name="LLM tokens", unit="tokens", event_name="llm.tokens", aggregation="sum",
                                value_property="usage.total_tokens", group_by=["model"])
    text = output(nb, "print(preview.skipped)")
    assert preview.skipped and preview.skipped in text and preview.formula in text
    reasons = preview.skip_reasons
    assert reasons["usage.total_tokens is not a number"] == 1  # "n/a"
    assert reasons["usage.total_tokens has more than 18 decimal places or 40 integer digits"] == 1  # 1e400
    assert reasons["usage.total_tokens is missing"] == 25  # the empty cell, and bad_rows.csv's flat `tokens`
    assert all(f"'{reason}': {count}" in text for reason, count in reasons.items())
    assert output(nb, "from_cli == ws.aggregate").strip() == "True"  # the command prints the same document


@pytest.mark.usefixtures("kernel_env")
def test_price_a_month() -> None:
    nb = run("02_price_a_month.ipynb")
    ws = Workspace.open(NOTEBOOKS / "october.json")
    for name in ("api_requests", "emails_sent", "llm_tokens", "storage_gb", "unique_users", "worker_duration"):
        ws.add_events(SAMPLES / f"{name}.csv")
    invoice = ws.invoice("cus_021", "2026-10")
    html = output(nb, 'invoice = ws.invoice("cus_021"', "text/html")
    assert "cus_021" in html and "Growth (growth)" in html and "Subtotal" in html
    assert f"${invoice.total:,}" in html  # the total due, as the engine bills it
    what_if = ws.invoices("2026-10", plan="growth").total
    assert output(nb, "what_if = ").strip() == repr(what_if)
    october = ws.invoices("2026-10")
    assert f"{len(october)} invoices for 2026-10" in output(nb, "october = ", "text/html")


@pytest.mark.usefixtures("kernel_env")
def test_backtest_a_price_change() -> None:
    nb = run("03_backtest_a_price_change.ipynb")
    from metering import demo

    ws = Workspace.from_document(demo.workspace_document(now=demo.SAMPLE_NOW))
    ws.add_events(SAMPLES / "sms_credits.csv")
    for frame in demo.usage_frames(now=demo.SAMPLE_NOW):
        ws.add_events(frame, name="demo usage")
    draft = ws.draft("starter", base_fee="59", charges={"payments": {"rate": "3.2"}},
                     quotas={"sms_credits": {"overage_unit_price": "0.03"}})
    gentler = ws.draft("starter", code="starter_gentle",
                       charges={"payments": {"rate": "3.0"}, "api_requests": {"free_units": "2000"}},
                       quotas={"sms_credits": {"overage_unit_price": "0.025"}})
    result = ws.backtest(["starter", draft, gentler], ("2026-10", "2026-12"), cohort=ws.subscribers("starter"),
                         threshold=10)
    flagged = [(m.customer_id, m.change_percent) for m in result.guardrail("starter_draft").flagged]
    assert flagged  # the story holds: the first draft is past the guardrail, the gentler one is not
    assert output(nb, "rail = result.guardrail").strip() == repr((False, flagged))
    assert output(nb, "gentler = ws.draft(").strip() == repr(result.passed) == "{'starter_draft': False, 'starter_gentle': True}"
    html = output(nb, "cohort = ws.subscribers", "text/html")
    assert "guardrail: no customer pays more than +10 %" in html and "top movers" in html and "fails: 1 customer" in html
    totals = output(nb, "result.totals[plan], result.change_percent(plan)")
    assert all(repr(result.totals[p]) in totals for p in result.plans)
    assert "starter_2027 Starter 2027" in output(nb, 'if result.passed["starter_gentle"]')
    assert "'change_percent': '" + format(result.change_percent("starter_gentle"), "f") in output(nb, "document = result.to_json()")
