"""User text inside Markdown, shown as written.

Streamlit renders Markdown (with images, links, HTML-like tags, LaTeX, colour directives,
emoji and icon shortcodes) in st.markdown / st.caption / alerts / toasts, and in the labels,
help texts, radio and pill options, tab and expander titles of widgets. Names, descriptions,
customer ids, file names, CSV headers and property values are user text: wherever one goes into
such a place it goes through `md` (or `md_code`). Dataframes, st.text, st.code, selectbox and
multiselect options show plain text and need neither.

* `md(text)`: every character that starts markup backslash-escaped (CommonMark shows an escaped
  character as itself), a leading list marker too, line breaks as spaces; and, because GitHub-flavoured Markdown turns bare
  URLs, `www.` names and e-mail addresses into links even when escaped, an invisible word joiner
  (U+2060) after `://`, `www` and `@` breaks that pattern. The text reads and copies the same
  apart from that invisible character.
* `md_code(text)`: an inline code span that cannot be closed early (the fence is longer than any
  run of backticks in the text).
"""

from __future__ import annotations

import re
from typing import Any

WORD_JOINER = "\u2060"
# The characters that start Markdown or Streamlit markup mid-line: escapes, code, emphasis,
# links and images, HTML and autolinks, strikethrough, LaTeX, tables, headings, emoji / icon
# shortcodes and colour directives (`:` and `/`), entities, images (`!`).
_SPECIAL = re.compile(r"([\\`*_\[\]<>~$|#:/&!])")
# ... and at the start only: a list item ("- x", "+ x", "1. x", "2) x").
_BULLET = re.compile(r"^(\s*)([-+])(?=\s|$)")
_NUMBERED = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\u2028\u2029\x0b\x0c\x85]")
_SCHEME = re.compile(r"\\:\\/\\/")
_WWW = re.compile(r"(?i)\b(www)(?=\.)")
_AT = re.compile(r"@")


def md(text: Any) -> str:
    """`text` for a Markdown context, shown literally."""
    escaped = _SPECIAL.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text)))
    escaped = _BULLET.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)
    escaped = _NUMBERED.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)
    escaped = _SCHEME.sub(lambda m: "\\:" + WORD_JOINER + "\\/\\/", escaped)
    escaped = _WWW.sub(lambda m: m.group(1) + WORD_JOINER, escaped)
    return _AT.sub("@" + WORD_JOINER, escaped)


_ICON = re.compile(r"(?i):(?=material/)")


def md_code(text: Any) -> str:
    """`text` as an inline code span (monospace, nothing inside interpreted; Streamlit reads
    `:material/…:` icons even there, so a word joiner breaks that one pattern)."""
    body = _ICON.sub(":" + WORD_JOINER, _LINE_BREAKS.sub(" ", str(text)))
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or (body.startswith(" ") and body.endswith(" ") and body.strip()) else ""
    return f"{fence}{pad}{body}{pad}{fence}" if body else "` `"


_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def plain(markdown: str) -> str:
    """What Markdown made with `md` reads as (escapes and word joiners removed): for tests that
    compare the text a page shows."""
    return _ESCAPED.sub(r"\1", markdown).replace(WORD_JOINER, "")
