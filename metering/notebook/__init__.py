"""The pricing workbench as a notebook library: `Workspace` and its typed results.

    from metering import Workspace
    ws = Workspace.open("notebooks/pricing.json")
    ws.add_events("sample_events/llm_tokens.csv")
    ws.invoice("cus_001", "2026-10")

See `metering.notebook.workspace` for the API and README.md ("Notebooks").
"""

from metering.notebook.backtests import BacktestResult
from metering.notebook.invoicing import Comparison, InvoiceView, Invoices
from metering.notebook.results import (
    Aggregate,
    ImportReport,
    MetricPreview,
    RowProblem,
    Timeline,
    UsageSeries,
    ValidationFailed,
)
from metering.notebook.workspace import Workspace

__all__ = [
    "Aggregate", "BacktestResult", "Comparison", "ImportReport", "InvoiceView", "Invoices", "MetricPreview",
    "RowProblem", "Timeline", "UsageSeries", "ValidationFailed", "Workspace",
]
