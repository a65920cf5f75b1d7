"""Metering engine of the pricing workbench: events, billable metrics and exact aggregation.

Pure Python; the Streamlit app, the CLI and the API are thin callers of this package.
"""

__version__ = "0.1.0"
