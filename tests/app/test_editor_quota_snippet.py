"""The metric editor's Quick snippet for limit metrics: each language's tab shows the entitlement
check for the example event (its customer, the units it uses) before the send, exactly as
`metering.snippets` makes them; charge metrics show the send only."""

from __future__ import annotations

from decimal import Decimal as D

from metering import snippets
from metering.models import MetricCreate
from tests.app.conftest import page
from workbench import editor


def panel_codes(at) -> list[str]:
    return [c.value for c in at.container("panel-snippet").code]


def test_a_limit_metric_snippet_checks_the_entitlement_first(app_engine) -> None:
    at = page("editor")
    at.button(key="editor:tpl:llm_tokens").click().run()
    assert len(panel_codes(at)) == 3  # a charge metric: the send, per language
    at.radio(key="_w:" + editor._k("metric_type")).set_value("limit_metered").run()
    assert not at.exception, at.exception
    codes = panel_codes(at)
    assert len(codes) == 6
    form = {f: at.session_state[editor._k(f)] for f in ("name", "slug", "unit", "event_name", "aggregation",
                                                         "value_property")}
    metric = MetricCreate.model_validate({"name": form["name"], "code": form["slug"], "unit": form["unit"],
                                          "metric_type": "limit_metered", "event_name": form["event_name"],
                                          "aggregation": form["aggregation"], "value_property": form["value_property"]})
    expected = snippets.entitlement_snippets(metric, base_url="http://localhost:8501", api_key="YOUR_API_KEY",
                                             customer_id="cus_001", quantity=D(1250))
    assert [c.strip() for c in codes[0::2]] == [expected[lang].strip() for lang in ("curl", "python", "javascript")]
    assert "quantity=1250" in codes[0] and "requests.post" in codes[3] and "fetch(" in codes[5]
    captions = " ".join(c.value for c in at.container("panel-snippet").caption)
    assert "1 · Check the quota first" in captions and "refused (`field: quota`)" in captions
