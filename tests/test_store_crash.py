"""Crash safety of the event store with a real process killed (SIGKILL) in the middle of an
import: the store opens, answers exactly the committed events, says the import did not
finish, and a second import completes it without duplicates (issue 9's rule)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from metering import aggregation, ingest, simulate, store
from metering.engine.frame import EventFrame, FrameCache
from metering.engine.registry import store_for
from metering.models import MetricCreate

ROOT = Path(__file__).resolve().parents[1]
METRIC = MetricCreate(name="T", code="t", unit="tokens", event_name="llm.tokens", aggregation="sum",
                      value_property="tokens", group_by=["model"])


def _segments(url: str) -> int:
    engine = store.make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM event_segment")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_during_an_import_leaves_a_store_that_answers_the_committed_events(tmp_path):
    spec = simulate.template_spec("llm_tokens", customers=50, days=5, daily_volume=30_000, seed=3)
    csv_path = tmp_path / "events.csv"
    simulate.to_csv(simulate.simulate(spec), csv_path)
    total = spec.total_events
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**os.environ, "DATABASE_URL": url, "METERING_IMPORT_BLOCK_MB": "0.5", "METERING_DATA_DIR": str(tmp_path)}
    store.make_engine(url).dispose()
    child = subprocess.Popen([sys.executable, "-m", "metering.cli", "import", str(csv_path)], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _segments(url) < 3:
        assert child.poll() is None, f"the import ended before it could be killed: {child.stderr.read().decode()[-500:]}"
        assert time.monotonic() < deadline, "no segment was committed in time"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()

    engine = store.make_engine(url)
    committed = store.event_count(engine)
    assert 0 < committed < total
    frame = FrameCache().get(engine)
    assert len(frame) == committed
    parsed = ingest.read_events(csv_path)  # blocks commit in file order: the committed events are its first ones
    head = parsed.batch.take(np.arange(committed))
    expected = aggregation.aggregate(EventFrame.from_batch(head), METRIC)
    assert aggregation.aggregate(frame, METRIC) == expected
    with engine.connect() as conn:
        accepted, finished = conn.execute(text("SELECT accepted, finished_at FROM import_batch")).one()
    assert accepted == committed and finished is None  # right counts; shown as not finished
    assert store_for(engine).files.remove_orphans({s.name for s in store_for(engine).segments()}, older_than=0) >= 0

    again = ingest.import_file(engine, csv_path)
    assert (again.accepted, again.duplicates) == (total - committed, committed)
    assert store.event_count(engine) == total == len(FrameCache().get(engine))
    engine.dispose()
