"""Placeholder until this page lands."""

import streamlit as st

st.title("invoices")
st.info("This page is being built.")
