"""A workspace whose every user-supplied text is hostile Markdown / HTML, for the rendering tests.

`load(engine)` stores a metric, a plan with a fixed charge, a subscription and an imported file
whose names, unit, description, customer id, file name, CSV header (a property path), property
values and group label are Markdown images pointing at 127.0.0.1:1 (where nothing listens: a
fetch would show up as a request), bold text and an HTML tag. `tests/app/test_hostile_text.py`
checks what AppTest sees, `tests/e2e/test_security.py` what Chromium renders and fetches.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy.engine import Engine

from metering import importing, metrics, plan_store

TRAP_HOST = "127.0.0.1:1"  # nothing listens there; the browser test uses a live trap server instead


class Texts:
    """The hostile texts, with image URLs on `host`."""

    def __init__(self, host: str = TRAP_HOST) -> None:
        self.host = host
        self.image = f"![x](http://{host}/x.png)"
        self.name = f"{self.image} **bold** <img src=x>"
        self.unit = f"u![u](http://{host}/unit.png)"
        self.path = f"![p](http://{host}/p.png)"  # a CSV header, so a property path (no spaces: a valid path)
        self.label = "<img src=y>**label**"
        self.customer = f"cus ![c](http://{host}/c.png) **b**"
        self.file = f"![f](http://{host}/f.png) **file**.csv"
        self.plan = f"Plan ![q](http://{host}/q.png) **p** <b>x</b>"
        self.fixed = f"Seat ![s](http://{host}/s.png) **s**"

    def csv_file(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["event_name", "customer_id", "timestamp", self.path, "region"])
        for day in range(1, 29):
            writer.writerow(["hostile.event", self.customer, f"2026-10-{day:02d}T12:00:00Z", str(day), self.label])
            writer.writerow(["hostile.event", "cus_plain", f"2026-10-{day:02d}T13:00:00Z", "1", "eu"])
        return out.getvalue().encode()

    def load(self, engine: Engine) -> None:
        metrics.create_metric(engine, data={
            "name": self.name, "code": "hostile", "unit": self.unit, "description": self.name,
            "event_name": "hostile.event", "aggregation": "sum", "value_property": self.path,
            "group_by": ["region"], "filters": {},
        })
        result = importing.import_bytes(engine, self.csv_file(), name=self.file)
        assert result.accepted == 56 and not result.errors, result
        plan_store.save_plan(engine, plan={
            "code": "hostile_plan", "name": self.plan, "currency": "USD", "base_fee": "10",
            "fixed_charges": [{"name": self.fixed, "quantity": "2", "unit_price": "5"}],
            "charges": [{"metric": "hostile", "model": "standard", "unit_price": "0.5"}],
        })
        plan_store.set_subscription(engine, customer_id=self.customer, plan_code="hostile_plan", start="2026-10-01")


MARKERS = ("**bold**", "**b**", "**p**", "**s**", "**file**", "**label**", "<img", "<b>", "![")
_DEFAULT = Texts()
IMAGE, NAME, UNIT, PATH, LABEL = _DEFAULT.image, _DEFAULT.name, _DEFAULT.unit, _DEFAULT.path, _DEFAULT.label
CUSTOMER, FILE, PLAN, FIXED = _DEFAULT.customer, _DEFAULT.file, _DEFAULT.plan, _DEFAULT.fixed
load = _DEFAULT.load
