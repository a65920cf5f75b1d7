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

TRAP_HOST = "127.0.0.1:1"
IMAGE = f"![x](http://{TRAP_HOST}/x.png)"
NAME = f"{IMAGE} **bold** <img src=x>"
UNIT = f"u![u](http://{TRAP_HOST}/unit.png)"
PATH = f"![p](http://{TRAP_HOST}/p.png)"  # a CSV header, so a property path (no spaces: a valid path)
LABEL = "<img src=y>**label**"
CUSTOMER = f"cus ![c](http://{TRAP_HOST}/c.png) **b**"
FILE = f"![f](http://{TRAP_HOST}/f.png) **file**.csv"
PLAN = f"Plan ![q](http://{TRAP_HOST}/q.png) **p** <b>x</b>"
FIXED = f"Seat ![s](http://{TRAP_HOST}/s.png) **s**"
MARKERS = ("**bold**", "**b**", "**p**", "**s**", "**file**", "**label**", "<img", "<b>", "![")


def csv_file() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["event_name", "customer_id", "timestamp", PATH, "region"])
    for day in range(1, 29):
        writer.writerow(["hostile.event", CUSTOMER, f"2026-10-{day:02d}T12:00:00Z", str(day), LABEL])
        writer.writerow(["hostile.event", "cus_plain", f"2026-10-{day:02d}T13:00:00Z", "1", "eu"])
    return out.getvalue().encode()


def load(engine: Engine) -> None:
    metrics.create_metric(engine, data={
        "name": NAME, "code": "hostile", "unit": UNIT, "description": NAME, "event_name": "hostile.event",
        "aggregation": "sum", "value_property": PATH, "group_by": ["region"], "filters": {},
    })
    result = importing.import_bytes(engine, csv_file(), name=FILE)
    assert result.accepted == 56 and not result.errors, result
    plan_store.save_plan(engine, plan={
        "code": "hostile_plan", "name": PLAN, "currency": "USD", "base_fee": "10",
        "fixed_charges": [{"name": FIXED, "quantity": "2", "unit_price": "5"}],
        "charges": [{"metric": "hostile", "model": "standard", "unit_price": "0.5"}],
    })
    plan_store.set_subscription(engine, customer_id=CUSTOMER, plan_code="hostile_plan", start="2026-10-01")
