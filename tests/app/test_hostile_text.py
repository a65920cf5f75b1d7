"""Hostile names, units, ids, file names, CSV headers and property values never reach a Markdown
context unescaped, on any page (tests/hostile.py has the data; the browser test checks the DOM).

Every string Streamlit would render as Markdown (bodies, captions, alerts, titles, metric labels
and values, widget labels and help, expander and tab labels, radio and pill options) is read from
the element tree; none may still hold the markup (`**bold**`, `![`, `<img`) once escaped characters
and code spans (inside which nothing is Markdown) are dropped: only live markup remains.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.message import Message
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from tests import hostile
from tests.app.conftest import page
from workbench.text import plain

PLAIN_TEXT_ELEMENTS = {  # shown as plain text by Streamlit: no Markdown inside
    "code", "arrow_data_frame", "dataframe", "html", "json", "text", "selectbox", "multiselect", "arrow_vega_lite_chart",
    "vega_lite_chart", "data_editor", "text_area",
}
PLAIN_FIELDS = {"id", "form_id", "value", "default", "placeholder", "icon", "raw_values", "url", "type", "key",
                "deprecation_warning", "options" , "format"}
ESCAPED = re.compile(r"\\[!-/:-@\[-`{-~]")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")  # nothing inside a code span is Markdown


def _strings(message: Message, *, options: bool) -> Iterator[str]:
    for field, value in message.ListFields():
        if field.name in PLAIN_FIELDS and not (options and field.name == "options"):
            continue
        values = value if getattr(field, "is_repeated", False) or (hasattr(value, "__len__") and not isinstance(value, (str, bytes, Message))) else [value]
        for v in values:
            if isinstance(v, str):
                yield v
            elif isinstance(v, Message):
                yield from _strings(v, options=options)


def markdown_strings(at: AppTest) -> list[str]:
    """Every string of the page that Streamlit renders as Markdown."""
    found: list[str] = []

    def walk(node: Any) -> None:
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                walk(child)
        proto = getattr(node, "proto", None)
        kind = getattr(node, "type", "")
        if isinstance(proto, Message) and kind not in PLAIN_TEXT_ELEMENTS:
            # radio, pills and segmented-control options are Markdown; selectbox options are not
            found.extend(_strings(proto, options=kind in ("radio", "button_group")))

    walk(at._tree)
    return found


def live_markup(texts: list[str]) -> list[str]:
    """The strings that still hold hostile markup once their escaped characters are dropped."""
    return [t for t in texts if any(m in CODE_SPAN.sub("", ESCAPED.sub("", t)) for m in hostile.MARKERS)]


@pytest.fixture
def hostile_engine(app_engine: Engine) -> Engine:
    hostile.load(app_engine)
    return app_engine


def visit(at: AppTest) -> list[str]:
    assert not at.exception, at.exception
    texts = markdown_strings(at)
    assert texts, "nothing collected"
    assert live_markup(texts) == []
    return [plain(t) for t in texts]


@pytest.mark.parametrize("name", ["metrics", "usage", "timeline", "invoices", "workspace", "developers", "audit"])
def test_pages_show_hostile_text_literally(hostile_engine: Engine, name: str) -> None:
    shown = " ".join(visit(page(name)))
    if name == "metrics":
        assert hostile.NAME in shown and hostile.UNIT in shown and hostile.PATH in shown
    if name == "usage":
        assert hostile.NAME in shown and hostile.PATH in shown


def test_editor_shows_the_hostile_metric_literally(hostile_engine: Engine) -> None:
    at = page("metrics")
    at.button(key="metrics:edit:hostile").click().run()
    shown = " ".join(visit(at))
    assert f"Edit metric · {hostile.NAME}" in shown and hostile.UNIT in shown
    assert hostile.PATH in shown  # the seen paths (pills) and the stored event names


def test_plans_page_with_the_editor_open(hostile_engine: Engine) -> None:
    at = page("plans")
    shown = " ".join(visit(at))
    assert hostile.PLAN in shown and hostile.FIXED in shown
    at.button(key="plans:edit:hostile_plan").click().run()
    shown = " ".join(visit(at))
    assert f"Edit plan · {hostile.PLAN}" in shown and hostile.NAME in shown and hostile.UNIT in shown
    at.button(key="plans:del:hostile_plan").click().run()
    shown = " ".join(visit(at))
    assert hostile.CUSTOMER in shown  # the dialog lists the subscribers


def test_events_page_imports_and_deletion_dialog(hostile_engine: Engine) -> None:
    at = page("events")
    visit(at)
    at.button(key="events:delete").click().run()
    assert hostile.FILE in " ".join(visit(at))


def test_a_hostile_file_name_in_the_upload_report(app_engine: Engine) -> None:
    at = page("events")
    at.file_uploader(key="events:uploader:0").set_value([(hostile.FILE, b"not,a\nvalid,file\n", "text/csv")]).run()
    at.button(key="events:import").click().run()
    shown = " ".join(visit(at))
    assert f"Could not read **{hostile.FILE}**" in shown


def test_timeline_and_invoice_tabs_name_the_hostile_customer(hostile_engine: Engine) -> None:
    at = page("timeline")
    assert hostile.CUSTOMER in " ".join(visit(at))
    inv = page("invoices")
    shown = " ".join(visit(inv))
    assert hostile.CUSTOMER in shown and hostile.FIXED in shown
