"""Placeholder until this page lands."""

import streamlit as st

st.title("plans")
st.info("This page is being built.")
