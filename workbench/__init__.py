"""Streamlit side of the pricing workbench: shared state, render helpers and chart builders.

Pages import from here and from `metering`; `metering` never imports this package.
"""
