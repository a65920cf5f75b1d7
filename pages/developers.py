"""Placeholder until this page lands."""

import streamlit as st

st.title("developers")
st.info("This page is being built.")
