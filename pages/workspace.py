"""Placeholder until this page lands."""

import streamlit as st

st.title("workspace")
st.info("This page is being built.")
