"""Placeholder until this page lands."""

import streamlit as st

st.title("editor")
st.info("This page is being built.")
