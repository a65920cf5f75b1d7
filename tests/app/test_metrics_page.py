"""Billable metrics page: the list with each metric's numbers, search, new / edit, and delete
with a confirmation that says what depends on the metric."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from metering import aggregation, ingest, metrics, plan_store, preview
from metering.frame import FrameCache
from tests.app.conftest import page

ROOT = Path(__file__).resolve().parents[2]


def text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_empty_store_invites_to_create_a_metric(app_engine):
    at = page("metrics")
    assert not at.exception
    assert any("No metrics yet" in i.value for i in at.info)


def test_metrics_are_listed_with_their_engine_numbers(app_engine):
    ingest.import_file(app_engine, ROOT / "sample_events" / "llm_tokens.csv")
    ingest.import_file(app_engine, ROOT / "sample_events" / "unique_users.csv")
    for key in ("llm_tokens", "unique_users", "storage_gb"):
        metrics.create_metric(app_engine, data=metrics.TEMPLATES[key].form())
    at = page("metrics")
    assert not at.exception
    shown = text(at)
    frame = FrameCache().get(app_engine)
    for m in metrics.list_metrics(app_engine):
        result = aggregation.aggregate(frame, m)
        assert f"**{m.name}**" in shown and f"`{m.code}`" in shown
        assert f"**{preview.fmt(result.value)}** {m.unit}" in shown
        assert preview.plural(result.events, "event") in shown
    assert "Charge metered" in shown and "unique\\_count" in shown
    assert "**0** GB" in shown  # storage_gb: no stored events → 0


def test_search_filters_the_list(app_engine):
    for key in ("llm_tokens", "api_requests"):
        metrics.create_metric(app_engine, data=metrics.TEMPLATES[key].form())
    at = page("metrics")
    at.text_input(key="metrics:search").input("api").run()
    shown = text(at)
    assert "`api_requests`" in shown and "`llm_tokens`" not in shown
    at.text_input(key="metrics:search").input("nothing like it").run()
    assert any("No metric matches" in i.value for i in at.info)


def test_new_metric_opens_a_blank_editor(app_engine):
    at = page("editor")
    at.text_input(key="_w:editor:name").input("Half-typed draft").run()
    metrics.create_metric(app_engine, data=metrics.TEMPLATES["llm_tokens"].form())
    at.switch_page("pages/metrics.py").run()
    at.button(key="metrics:new").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["New billable metric"]
    assert at.text_input(key="_w:editor:name").value == ""
    assert at.session_state["editor:code"] is None


def test_delete_confirmation_lists_dependents_and_deletes(app_engine):
    ingest.import_file(app_engine, ROOT / "sample_events" / "llm_tokens.csv")
    metrics.create_metric(app_engine, data=metrics.TEMPLATES["llm_tokens"].form())
    metrics.create_metric(app_engine, data={**metrics.TEMPLATES["llm_tokens"].form(), "name": "Big prompts",
                                            "code": "big_prompts", "aggregation": "max"})
    plan_store.save_plan(app_engine, plan={
        "code": "starter", "name": "Starter", "currency": "USD",
        "charges": [{"metric": "llm_tokens", "model": "standard", "unit_price": "0.001"}],
    })
    events = aggregation.aggregate(FrameCache().get(app_engine), metrics.get_metric(app_engine, code="llm_tokens")).events

    at = page("metrics")
    at.button(key="metrics:del:llm_tokens").click().run()
    assert not at.exception
    shown = text(at)
    assert "Delete **LLM Tokens** (`llm_tokens`)?" in shown
    assert f"Stored events named `llm.tokens`: **{preview.fmt(events)}**" in shown
    assert "Plans that use it: `starter` — their charges or quotas on this metric are removed" in shown
    assert "Other metrics reading the same events: `big_prompts`" in shown
    assert at.button(key="metrics:delete_yes").disabled  # plans depend on it: confirm first

    at.checkbox(key="metrics:delete_ack").check().run()
    assert not at.button(key="metrics:delete_yes").disabled
    at.button(key="metrics:delete_yes").click().run()
    assert not at.exception
    assert metrics.get_metric(app_engine, code="llm_tokens") is None
    assert any("Deleted LLM Tokens" in s.value for s in at.success)
    assert "Delete **LLM Tokens**" not in text(at)  # the dialog is closed
    assert len(FrameCache().get(app_engine)) == events  # the events stay stored
    assert plan_store.get_plan(app_engine, code="starter").charges == []  # no plan prices a deleted metric
    assert plan_store.plans_using_metric(app_engine, code="llm_tokens") == []


def test_delete_without_dependents_and_cancel(app_engine):
    metrics.create_metric(app_engine, data=metrics.TEMPLATES["emails_sent"].form())
    at = page("metrics")
    at.button(key="metrics:del:emails_sent").click().run()
    shown = text(at)
    assert "Stored events named `email.sent`: **0**." in shown and "No plan uses it." in shown
    at.button(key="metrics:delete_no").click().run()
    assert metrics.get_metric(app_engine, code="emails_sent") is not None
    assert "Delete **Emails Sent**" not in text(at)

    at.button(key="metrics:del:emails_sent").click().run()
    assert not at.button(key="metrics:delete_yes").disabled
    at.button(key="metrics:delete_yes").click().run()
    assert metrics.list_metrics(app_engine) == []
