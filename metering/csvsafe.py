"""CSV text that spreadsheets open without running anything (OWASP's CSV injection rule).

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (`=HYPERLINK(…)`, `+cmd|…`, `@SUM(…)`). Such a cell is written
with a leading `'`, which spreadsheets show as text. Numbers are left as they are (`-12.50`
stays a number): only text that does not read as a plain decimal number is changed. Every CSV
the app or the CLI writes goes through `to_csv` / `frame_to_csv`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where a frame is written: opening the store skips it
    import pandas as pd

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralize(value: Any) -> Any:
    """The cell as a spreadsheet should show it: text starting with a formula trigger gets `'`."""
    if not isinstance(value, str) or not value.startswith(_TRIGGERS):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV text (header + rows, `\\n` line ends) with every cell neutralized."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([neutralize(c) for c in columns])
    for row in rows:
        writer.writerow([neutralize(row.get(c, "")) for c in columns])
    return buffer.getvalue()


def frame_to_csv(frame: pd.DataFrame, *, index: bool = False) -> str:
    """A DataFrame as CSV text with every text cell (and the header) neutralized."""
    import pandas as pd

    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralize)
    safe.columns = [neutralize(str(c)) for c in safe.columns]
    return safe.to_csv(index=index, lineterminator="\n")
