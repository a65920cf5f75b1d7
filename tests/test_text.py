"""User text in Markdown contexts: `md` and `md_code` keep it literal (what the browser shows is
checked end to end in tests/e2e/test_security.py)."""

from __future__ import annotations

import re

from hypothesis import given, strategies as st

from workbench.text import WORD_JOINER, md, md_code, plain

HOSTILE = ["![x](http://127.0.0.1:1/x.png)", "**bold**", "<img src=x onerror=alert(1)>", "[link](javascript:alert(1))",
           ":red[red] :smile: :material/home:", "$x^2$", "# heading", "- item", "1. item", "a | b", "~~s~~", "&amp;",
           "`code`", "www.example.com", "ana@example.com", "https://example.com/x", "line\nbreak", "\\*"]


def test_markup_characters_are_escaped() -> None:
    out = md("![x](http://127.0.0.1:1/x.png) **b** <img> $y$ :smile: :material/home: &amp; # | ~")
    for raw in ("![", "**", " <img", " $y", ":smile:", ":material/", " &amp;", " # ", " | ", " ~"):
        assert raw not in out, raw
    assert "\\!\\[x\\]" in out and "\\*\\*b\\*\\*" in out and "\\<img\\>" in out


def test_links_are_broken_by_an_invisible_word_joiner() -> None:
    assert md("https://example.com") == f"https\\:{WORD_JOINER}\\/\\/example.com"
    assert md("www.example.com") == f"www{WORD_JOINER}.example.com"
    assert md("ana@example.com") == f"ana@{WORD_JOINER}example.com"


def test_list_markers_only_at_the_start_and_numbers_unchanged() -> None:
    assert md("- item") == "\\- item" and md("3. x") == "3\\. x" and md("2) y") == "2\\) y"
    assert md("-12.5") == "-12.5" and md("1.5 GB") == "1.5 GB" and md("a - b") == "a - b"


def test_line_breaks_become_spaces() -> None:
    assert md("a\n# b\r\n- c") == "a \\# b - c"  # a marker not at the start is plain text


@given(st.one_of(st.sampled_from(HOSTILE), st.text()))
def test_md_reads_back_as_written(text: str) -> None:
    out = md(text)
    assert "\n" not in out and "\r" not in out
    assert plain(out) == re.sub(r"\r\n|[\r\n\u2028\u2029\x0b\x0c\x85]", " ", text).replace(WORD_JOINER, "")


@given(st.text(alphabet=st.sampled_from("`ab :material/x"), max_size=20))
def test_code_span_cannot_be_closed_early(text: str) -> None:
    out = md_code(text)
    fence = re.match(r"`+", out).group(0)
    inner = out[len(fence):-len(fence)]
    assert out.endswith(fence) and fence not in inner.replace(WORD_JOINER, "")  # no run as long as the fence
    assert ":material/" not in out
