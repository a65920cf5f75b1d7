"""Placeholder until this page lands."""

import streamlit as st

st.title("usage")
st.info("This page is being built.")
