"""CSV injection: formula triggers are neutralized, numbers are not (OWASP's rule)."""

from __future__ import annotations

import csv
import io

import pandas as pd
from hypothesis import given, strategies as st

from metering.csvsafe import frame_to_csv, neutralize, to_csv


def test_formula_cells_get_a_quote() -> None:
    for cell in ("=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\tx", "\rx"):
        assert neutralize(cell) == "'" + cell


def test_numbers_and_plain_text_unchanged() -> None:
    for cell in ("-12.50", "+3", "-0.5e3", "12", "gpt-4o", "", "a=b"):
        assert neutralize(cell) == cell
    assert neutralize(-3) == -3


def test_to_csv_and_frame() -> None:
    text = to_csv([{"customer_id": "=cmd", "amount": "-1.00"}], ["customer_id", "amount"])
    assert list(csv.reader(io.StringIO(text))) == [["customer_id", "amount"], ["'=cmd", "-1.00"]]
    df = pd.DataFrame({"=h": ["@x", "ok"], "n": [-1, 2]})
    rows = list(csv.reader(io.StringIO(frame_to_csv(df))))
    assert rows == [["'=h", "n"], ["'@x", "-1"], ["ok", "2"]]


@given(st.text())
def test_no_cell_starts_a_formula(cell: str) -> None:
    out = neutralize(cell)
    if out.startswith(("=", "+", "-", "@", "\t", "\r")):
        float(out)  # only numbers may keep a leading sign
    assert out in (cell, "'" + cell)
