"""One measured step in a fresh process (bench/run.py starts it): prints one JSON line with
the step's own time and the process's peak RSS.

    python bench/probe.py import CSV        # the real CLI import (DATABASE_URL names the store)
    python bench/probe.py preview           # open the store, first preview of the bench metric
    python bench/probe.py clear             # delete every stored event (METERING_EVENTS_URL's too)
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    step = sys.argv[1]
    if step == "import":
        from metering import cli

        out = io.StringIO()
        t = time.perf_counter()
        with contextlib.redirect_stdout(out):
            code = cli.main(["import", sys.argv[2]])
        elapsed = time.perf_counter() - t
        result = json.loads(out.getvalue())
        print(json.dumps({"code": code, "seconds": elapsed, "accepted": result["accepted"],
                          "duplicates": result["duplicates"], "rejected": result["rejected"], "rss_mb": peak_mb()}))
    elif step == "preview":
        from metering import aggregation, store
        from metering.engine import stored_events
        from run_metric import METRIC

        t = time.perf_counter()
        events = stored_events(store.make_engine())
        opened = time.perf_counter() - t
        result = aggregation.aggregate(events, METRIC)
        print(json.dumps({"since_start_s": time.perf_counter() - STARTED, "open_s": opened,
                          "value": str(result.value), "events": len(events), "rss_mb": peak_mb()}))
    elif step == "clear":
        from metering import store

        store.delete_all_events(store.make_engine())
        print(json.dumps({"cleared": True}))
    else:
        raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    main()
