"""The audit log: rows added, read back newest first with filters, exported as safe CSV, kept by reset."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from metering import audit, demo


def test_record_and_read_back_newest_first(engine) -> None:
    audit.record(engine, actor="ana@example.com", role="admin", action="metric.create", target="llm_tokens")
    audit.record(engine, actor="bob@example.com", role="viewer", action="workspace.reset", outcome=audit.DENIED)
    audit.record(engine, actor="ana@example.com", role="admin", action="plan.save", target="growth", detail="2 charges")
    rows = audit.entries(engine)
    assert [r.action for r in rows] == ["plan.save", "workspace.reset", "metric.create"]
    assert rows[0].at.tzinfo is not None and abs(rows[0].at - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert rows[1].outcome == "denied" and rows[0].detail == "2 charges"
    assert [r.action for r in audit.entries(engine, actor="ana@example.com")] == ["plan.save", "metric.create"]
    assert [r.target for r in audit.entries(engine, action="metric.create")] == ["llm_tokens"]
    assert len(audit.entries(engine, limit=1)) == 1
    assert audit.actors(engine) == ["ana@example.com", "bob@example.com"]


def test_time_filters_are_utc(engine) -> None:
    audit.record(engine, actor="a@b.co", role="admin", action="metric.create")
    now = datetime.now(timezone.utc)
    assert len(audit.entries(engine, since=now - timedelta(minutes=5))) == 1
    assert audit.entries(engine, since=now + timedelta(minutes=5)) == []
    assert audit.entries(engine, until=now - timedelta(minutes=5)) == []
    # the same instant in another timezone filters the same way
    later = (now + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=-8)))
    assert len(audit.entries(engine, until=later)) == 1


def test_unknown_action_is_refused(engine) -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(engine, actor="a", role="admin", action="metric.creat")


def test_csv_is_spreadsheet_safe(engine) -> None:
    audit.record(engine, actor="a@b.co", role="editor", action="events.import", target="=HYPERLINK(\"http://x\")",
                 detail="@SUM(1)")
    rows = list(csv.reader(io.StringIO(audit.to_csv(audit.entries(engine)))))
    assert rows[0] == audit.COLUMNS
    assert rows[1][4] == "'=HYPERLINK(\"http://x\")" and rows[1][5] == "'@SUM(1)"


def test_reset_keeps_the_log(engine) -> None:
    audit.record(engine, actor="a@b.co", role="admin", action="workspace.reset")
    demo.reset(engine)
    assert len(audit.entries(engine)) == 1
