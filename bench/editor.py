"""Benchmark of the Metric editor's live preview: prints one JSON line.

    python bench/editor.py [--events 1000000] [--changes 20]

Puts N simulated LLM-token events (1,000 customers, 30 days) in a temporary SQLite store
through the real import, then times what the editor's preview fragment computes on each form
change, warm (the frame and the property columns it reads are cached, as in the app):
`preview.editor_preview` (form errors with the code check in the store, example event, the
calculation written out with its groups and skipped events, snippets) and the seen-path /
event-name suggestions. The preview keeps calculations per frame and definition; the bench
drops them before each change, so every timed change computes for real.

Changes cycle through filters, group_by, aggregation, value property and window edits.
Target: preview_update_ms_median ≤ 300. Also reported: `store_check_ms_median`, the frame
cache's "did the store change?" query (`FrameCache.get` with nothing new), which the editor
runs at page entry, after a test event and at most every few seconds, not on every change.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from metering import aggregation, ingest, metrics, preview, store  # noqa: E402
from events import write_events_csv  # noqa: E402
from metering.frame import FrameCache  # noqa: E402
from metering.models import MetricCreate  # noqa: E402

NOW = datetime(2026, 11, 15, tzinfo=timezone.utc)  # 30-day window covers half the simulated month


def form_changes() -> list[tuple[dict[str, Any], str]]:
    """Successive form states (and window), each one field change away from the previous."""
    form = metrics.TEMPLATES["llm_tokens"].form()
    steps: list[tuple[dict[str, Any], str]] = []

    def step(window: str = "all", **change: Any) -> None:
        form.update(change)
        steps.append((dict(form), window))

    step()
    step(filters={"model": ["gpt-4o"]})
    step(filters={"model": ["gpt-4o", "claude-sonnet"]})
    step(group_by=["model", "region"])
    step(group_by=["region"])
    step(aggregation="max")
    step(aggregation="min")
    step(aggregation="latest")
    step(aggregation="count")
    step(aggregation="unique_count", distinct_by="region")
    step(aggregation="sum")
    step(filters={"model": ["gpt-4o", "claude-sonnet"], "region": ["us-east"]})
    step(filters={})
    step("30d")
    step("30d", group_by=["model"])
    step("30d", aggregation="max")
    step(aggregation="sum")
    step(name="LLM Tokens (all models)")
    step(code="llm_tokens_all")
    step(value_property="tokens", group_by=[])
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="metering-editor-bench-") as tmp:
        df, csv_path = write_events_csv(Path(tmp), events=args.events, seed=args.seed)
        engine = store.make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        imported = ingest.import_file(engine, csv_path)
        assert imported.accepted == len(df), imported.to_json()
        metrics.create_metric(engine, data=metrics.TEMPLATES["llm_tokens"].form())  # so code checks hit a row

        cache = FrameCache()
        frame = cache.get(engine)

        def update(data: dict[str, Any], window: str) -> preview.EditorPreview:
            """One form change, as the editor fragment computes it (workbench.editor)."""
            preview.forget_calculations(frame)
            out = preview.editor_preview(
                engine, frame, data, current_code="llm_tokens", window_key=window, now=NOW,
                base_url="http://localhost:8501", api_key="YOUR_API_KEY",
            )
            preview.event_name_counts(frame)
            preview.seen_paths(frame, out.metric.event_name if out.metric else data.get("event_name"))
            return out

        changes = form_changes()
        t = time.perf_counter()
        for data, window in changes:  # warm: load the frame and build each path column once
            update(data, window)
        warmup_ms = (time.perf_counter() - t) * 1000

        times = []
        results = []
        for i in range(args.changes):
            data, window = changes[i % len(changes)]
            t = time.perf_counter()
            out = update(data, window)
            times.append(time.perf_counter() - t)
            results.append((data, window, out))

        checks = []
        for _ in range(5):
            t = time.perf_counter()
            assert cache.get(engine) is frame  # nothing new: the same frame, no reload
            checks.append(time.perf_counter() - t)

        # the figures shown are the engine's
        for data, window, out in results:
            assert out.calculation is not None, out.preview_errors
            win = preview.window(window, now=NOW)
            expected = aggregation.aggregate(frame, MetricCreate.model_validate(data), start=win.start_us, end=win.end_us)
            assert out.calculation.value == expected.value and out.calculation.events == expected.events
        engine.dispose()

    times_ms = sorted(x * 1000 for x in times)
    print(json.dumps({
        "events": len(df),
        "changes": len(times),
        "preview_update_ms_median": round(statistics.median(times_ms), 1),
        "preview_update_ms_p90": round(times_ms[int(0.9 * (len(times_ms) - 1))], 1),
        "preview_update_ms_max": round(times_ms[-1], 1),
        "warmup_ms": round(warmup_ms),
        "store_check_ms_median": round(statistics.median(checks) * 1000, 1),
        "target_ms": 300,
    }))


if __name__ == "__main__":
    main()
