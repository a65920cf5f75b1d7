"""Metering engine of the pricing workbench: events, billable metrics and exact aggregation.

Pure Python; the Streamlit app, the CLI and the API are thin callers of this package. In a
notebook, start from `metering.Workspace` (see README.md, "Notebooks"): it and the notebook
result types are imported on first use, so `import metering` (the CLI) stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Public names of metering.notebook, imported lazily (PEP 562).
_NOTEBOOK = (
    "Aggregate", "BacktestResult", "Comparison", "ImportReport", "InvoiceView", "Invoices", "MetricPreview",
    "RowProblem", "Timeline", "UsageSeries", "ValidationFailed", "Workspace",
)
__all__ = ["__version__", *_NOTEBOOK]


def __getattr__(name: str) -> Any:
    if name in _NOTEBOOK:
        from metering import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'metering' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_NOTEBOOK})
