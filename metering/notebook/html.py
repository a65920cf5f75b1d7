"""Small HTML tables for Jupyter's rich display (`_repr_html_`), with every cell escaped.

Customer ids, metric and plan names, descriptions and group values are user text: each is
passed through `html.escape`, so a customer named `<script>` is shown, never run. No styling
beyond what reads well in JupyterLab, VS Code and nbviewer (plain tables, right-aligned numbers).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

_NUMERIC_STYLE = ' style="text-align:right"'


def esc(value: Any) -> str:
    """Text of any value, HTML-escaped (quotes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: Iterable[int] = (),
    footer: Iterable[Sequence[Any]] = (),
    caption: str | None = None,
) -> str:
    """A `<table>`: `numeric` column indexes are right-aligned; `footer` rows are bold."""
    right = set(numeric)

    def cells(row: Sequence[Any], tag: str) -> str:
        return "".join(f"<{tag}{_NUMERIC_STYLE if i in right else ''}>{esc(v)}</{tag}>" for i, v in enumerate(row))

    out = ["<table>"]
    if caption:
        out.append(f'<caption style="text-align:left">{esc(caption)}</caption>')
    out.append("<thead><tr>" + cells(headers, "th") + "</tr></thead><tbody>")
    out.extend("<tr>" + cells(row, "td") + "</tr>" for row in rows)
    out.append("</tbody>")
    foot = [f"<tr style=\"font-weight:bold\">{cells(row, 'td')}</tr>" for row in footer]
    if foot:
        out.append("<tfoot>" + "".join(foot) + "</tfoot>")
    out.append("</table>")
    return "".join(out)


def heading(text: str, level: int = 4) -> str:
    """A heading of `level` (1–6) holding `text`."""
    return f"<h{level}>{esc(text)}</h{level}>"


def paragraph(text: str) -> str:
    """A paragraph of `text`."""
    return f"<p>{esc(text)}</p>"


def items(lines: Iterable[str]) -> str:
    """A bulleted list, one item per line of text."""
    return "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>"


def block(*parts: str) -> str:
    """Parts (already HTML) in one `<div>`."""
    return "<div>" + "".join(parts) + "</div>"
